/**
 * The chaos runs' register clients, as a process of their own on a lab's client host (test/hosts:
 * the test process cannot reach the lab's addresses). Runs `--workers` register workers against
 * `--endpoints` for `--seconds`, then reads every key once more, and prints the history as one
 * JSON line for the linearizability checker.
 *
 *   register_child.ts --endpoints http://10.1.0.1:2379,... --seconds 20 --workers 4 --keys 3 --seed 7
 */
import { parseArgs } from 'node:util';
import { Client } from '../../src/client/client.js';
import type { HistoryEntry } from '../chaos/checker.js';
import { nextRegisterOp, performRegisterOp, registerKeys } from '../chaos/register.js';
import { seededRandom } from '../raft/harness.js';

const { values } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    workers: { type: 'string', default: '4' },
    keys: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
  },
});
const endpoints = (values.endpoints ?? '').split(',').filter(Boolean);
const seconds = Number(values.seconds);
const workers = Number(values.workers);
const keys = Number(values.keys);
const seed = Number(values.seed);

const t0 = performance.now();
const now = (): number => performance.now() - t0;
const history: HistoryEntry[] = [];
let nextId = 0;
let invoked = 0;
const end = t0 + seconds * 1000;

async function worker(w: number): Promise<void> {
  // Each worker on its own member first, as the chaos harness's (failing over to the others).
  const client = new Client({ endpoints: [...endpoints.slice(w % endpoints.length), ...endpoints.slice(0, w % endpoints.length)], timeoutMs: 3_000 });
  const wrand = seededRandom(seed * 1000 + w);
  const seen = new Map<string, string | null>();
  for (let seq = 1; performance.now() < end; seq++) {
    const names = registerKeys(invoked, keys);
    const key = names[wrand(names.length)]!;
    invoked++;
    const entry: HistoryEntry = { id: nextId++, client: w, op: nextRegisterOp(wrand(10), w, seq, key, seen), invoke: now(), status: 'unknown' };
    history.push(entry);
    await performRegisterOp(client, entry, seen, now);
  }
}

await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
// Final reads, on a healed cluster (the test heals before the clients stop): they pin down what was kept.
const finalClient = new Client({ endpoints, timeoutMs: 10_000 });
for (const key of registerKeys(invoked, keys)) {
  const entry: HistoryEntry = { id: nextId++, client: workers, op: { kind: 'read', key }, invoke: now(), status: 'unknown' };
  const r = await finalClient.get(key);
  if (entry.op.kind === 'read') entry.op.value = r.kvs[0]?.value.toString() ?? null;
  entry.status = 'ok';
  entry.complete = now();
  history.push(entry);
}
process.stdout.write(`${JSON.stringify(history)}\n`);
