/**
 * The chaos checks on separate hosts: register clients on the client host (register_child.ts,
 * the chaos runs' workload) against 3 members on a WAN lab (5 ms each way), while links are cut
 * the way a real network loses them (interfaces down: the leader's, a follower's, two at once,
 * which loses the quorum), the leader killed (SIGKILL) and restarted, and the leader's link made
 * slow (150 ms each way, jittered, in wan_switch.py); then the history must be linearizable and
 * the members' HashKV equal. About a minute.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkRegisterHistory, type HistoryEntry } from '../chaos/checker.js';
import { LabCluster } from './lab_cluster.js';

const TSX = path.resolve(import.meta.dirname, '../../node_modules/.bin/tsx');
const CHILD = path.join(import.meta.dirname, 'register_child.ts');
const SECONDS = 38;

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

test('register clients under cut links, a killed leader and a slow link: linearizable, and every member ends with the same HashKV', async () => {
  const clients = cluster.lab.run(
    'client',
    TSX,
    [CHILD, '--endpoints', cluster.endpoints.join(','), '--seconds', String(SECONDS), '--workers', '4', '--keys', '3', '--seed', '11'],
    (SECONDS + 90) * 1000,
  );
  /** Each fault: what it does, and what undoes it 4 s later. */
  const cut = (pick: () => Promise<string[]>) => async (): Promise<() => Promise<void>> => {
    const hosts = await pick();
    for (const n of hosts) cluster.lab.linkDown(n);
    return async () => {
      for (const n of hosts) cluster.lab.linkUp(n);
    };
  };
  const schedule: [string, () => Promise<() => Promise<void>>][] = [
    ["the leader's link cut", cut(async () => [await cluster.waitForLeader()])],
    ["a follower's link cut", cut(async () => [cluster.names.find((n) => n !== 'n1')!])],
    ['two links cut (no quorum)', cut(async () => ['n1', 'n2'])],
    [
      'the leader killed, then restarted',
      async () => {
        const leader = await cluster.waitForLeader();
        await cluster.kill(leader, 'SIGKILL');
        return async () => cluster.start(leader);
      },
    ],
    [
      "the leader's link slow",
      async () => {
        const leader = await cluster.waitForLeader();
        await cluster.lab.shape(leader, { delayMs: 150, jitterMs: 20 });
        return () => cluster.lab.shape(leader, { delayMs: 5, jitterMs: 1 });
      },
    ],
  ];
  await sleep(3_000);
  for (const [, fault] of schedule) {
    const heal = await fault();
    await sleep(4_000);
    await heal();
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
