/**
 * The chaos checks on separate hosts: register clients on the client host (register_child.ts,
 * the chaos runs' workload) against 3 members on a WAN lab (5 ms each way), while links are cut
 * the way a real network loses them (interfaces down: the leader's, a follower's, two at once,
 * which loses the quorum); then the history must be linearizable and the members' HashKV equal.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkRegisterHistory, type HistoryEntry } from '../chaos/checker.js';
import { LabCluster } from './lab_cluster.js';

const TSX = path.resolve(import.meta.dirname, '../../node_modules/.bin/tsx');
const CHILD = path.join(import.meta.dirname, 'register_child.ts');
const SECONDS = 24;

let cluster: LabCluster;

beforeAll(async () => {
  cluster = await LabCluster.create({ members: 3, wan: true });
  for (const name of cluster.names) await cluster.lab.shape(name, { delayMs: 5, jitterMs: 1 });
  cluster.startAll();
  await cluster.waitForLeader();
}, 90_000);

afterAll(async () => {
  await cluster?.destroy();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('register clients under cut links: linearizable, and every member ends with the same HashKV', async () => {
  const clients = cluster.lab.run(
    'client',
    TSX,
    [CHILD, '--endpoints', cluster.endpoints.join(','), '--seconds', String(SECONDS), '--workers', '4', '--keys', '3', '--seed', '11'],
    (SECONDS + 90) * 1000,
  );
  const schedule: [string, () => Promise<string[]>][] = [
    ['the leader', async () => [await cluster.waitForLeader()]],
    ['a follower', async () => [cluster.names.find((n) => n !== 'n1')!]],
    ['two members (no quorum)', async () => ['n1', 'n2']],
  ];
  await sleep(3_000);
  for (const [, pick] of schedule) {
    const cut = await pick();
    for (const n of cut) cluster.lab.linkDown(n);
    await sleep(4_000);
    for (const n of cut) cluster.lab.linkUp(n);
    await sleep(2_500);
  }
  const r = await clients;
  expect(r.code, r.stderr).toBe(0);
  const history = JSON.parse(r.stdout) as HistoryEntry[];
  const ok = history.filter((e) => e.status === 'ok').length;
  expect(ok).toBeGreaterThan(50);
  const check = checkRegisterHistory(history, { timeoutMs: 60_000 });
  expect(check.timedOut ?? false).toBe(false);
  expect(check.linearizable, JSON.stringify(check.window)).toBe(true);

  // Every member at the same revision holds the same data.
  await cluster.waitForLeader();
  let hashes = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const status = await cluster.etcdctl(['endpoint', 'hashkv', '-w', 'json']);
    if (status.code === 0) {
      const parsed = JSON.parse(status.stdout) as { HashKV: { header: { revision: number }; hash: number } }[];
      hashes = new Set(parsed.map((p) => `${p.HashKV.header.revision}:${p.HashKV.hash}`));
      if (hashes.size === 1 && parsed.length === 3) break;
    }
    await sleep(200);
  }
  expect(hashes.size).toBe(1);
}, 180_000);
