/**
 * The register workload of the chaos runs: each worker picks a key and does a read, a write or
 * a compare-and-set on it, recording the operation's invocation, completion and outcome for the
 * linearizability checker (checker.ts). Used by the chaos harness (run.ts) and by the clients on
 * separate hosts (test/hosts/register_clients.ts).
 */
import type { Client } from '../../src/client/client.js';
import { NoEndpointError, QkvServerError } from '../../src/client/errors.js';
import type { HistoryEntry, RegisterOp } from './checker.js';

/** Keys are retired after this many operations each (Jepsen's "independent" keys). */
const OPS_PER_KEY = 80;

/** The key names in use once `invoked` operations have been started on `keys` keys at a time. */
export function registerKeys(invoked: number, keys: number): string[] {
  const gen = Math.floor(invoked / (OPS_PER_KEY * keys));
  return Array.from({ length: keys }, (_, i) => `r/g${gen}/k${i}`);
}

/** What a failed operation means for the history: it did not happen, or it may have. */
function classify(err: unknown, isRead: boolean): 'fail' | 'unknown' {
  if (isRead) return 'fail';
  // Never reached a server: it cannot have happened.
  if (err instanceof NoEndpointError && err.causes.every((c) => /ECONNREFUSED/.test(String((c as { cause?: unknown }).cause ?? c.message)))) return 'fail';
  // A 4xx is a refusal before anything was proposed.
  if (err instanceof QkvServerError && err.httpStatus < 500) return 'fail';
  return 'unknown';
}

/** The next operation of worker `w`: 40% reads, 30% writes, 30% compare-and-sets against what it last saw. */
export function nextRegisterOp(dice: number, w: number, seq: number, key: string, seen: Map<string, string | null>): RegisterOp {
  if (dice < 4) return { kind: 'read', key };
  if (dice < 7) return { kind: 'write', key, value: `w${w}-${seq}` };
  return { kind: 'cas', key, expected: seen.get(key) ?? null, value: `c${w}-${seq}` };
}

/**
 * Runs `entry`'s operation with `client` and records its outcome and completion time; resolves
 * after the back-off a failure calls for (while the cluster is unavailable every timed-out write
 * is an op of unknown outcome, and each one doubles what the checker may have to consider).
 */
export async function performRegisterOp(client: Client, entry: HistoryEntry, seen: Map<string, string | null>, now: () => number): Promise<void> {
  const op = entry.op;
  try {
    if (op.kind === 'read') {
      const r = await client.get(op.key);
      op.value = r.kvs[0]?.value.toString() ?? null;
      seen.set(op.key, op.value);
    } else if (op.kind === 'write') {
      await client.put(op.key, op.value);
    } else {
      const r = await client.txn({
        compare: [
          op.expected === null
            ? { key: Buffer.from(op.key), target: 'VERSION', result: 'EQUAL', version: 0 }
            : { key: Buffer.from(op.key), target: 'VALUE', result: 'EQUAL', value: Buffer.from(op.expected) },
        ],
        success: [{ requestPut: { key: Buffer.from(op.key), value: Buffer.from(op.value) } }],
      });
      op.succeeded = r.succeeded;
    }
    entry.status = 'ok';
    entry.complete = now();
  } catch (err) {
    entry.status = classify(err, op.kind === 'read');
    if (entry.status === 'fail') entry.complete = now();
    await new Promise((r) => setTimeout(r, entry.status === 'unknown' ? 500 : 50));
  }
}
