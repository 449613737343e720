/**
 * qkv across a wide-area network (wan_switch.py between network namespaces): 25 ms each way
 * between members (a 50 ms round trip, members in other regions) with jitter, then loss and
 * reordering on top. With etcd's default timing (100 ms heartbeats, 1 s election timeout, which
 * its tuning guide gives for such round trips) the cluster stays stable: no election while the
 * links are merely slow; under 2% loss writes still go through and every member agrees.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LabCluster } from './lab_cluster.js';

let cluster: LabCluster;

beforeAll(async () => {
  cluster = await LabCluster.create({ members: 3, wan: true, heartbeatMs: 100, electionMs: 1000 });
  for (const name of cluster.names) await cluster.lab.shape(name, { delayMs: 25, jitterMs: 5 });
  cluster.startAll();
  await cluster.waitForLeader();
}, 90_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** `count` sequential puts from the client host through the etcd3 npm client: how many were acknowledged. */
async function putLoad(prefix: string, count: number): Promise<{ ok: number; failed: number }> {
  const script = `
    const { Etcd3 } = require('etcd3');
    const c = new Etcd3({ hosts: ${JSON.stringify(cluster.endpoints)}, dialTimeout: 5000 });
    (async () => {
      let ok = 0, failed = 0;
      for (let i = 0; i < ${count}; i++) {
        try { await c.put('${prefix}/' + i).value('v' + i); ok++; } catch { failed++; }
      }
      console.log(JSON.stringify({ ok, failed }));
      c.close();
    })();`;
  const r = await cluster.lab.run('client', process.execPath, ['-e', script], 120_000);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { ok: number; failed: number };
}

/** Every member's own revision (serializable status), once they agree. */
async function agreedRevision(): Promise<number> {
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const statuses = await cluster.endpointStatuses();
    if (statuses) {
      const revs = statuses.map((s) => s.Status.header.revision);
      if (revs.length === 3 && new Set(revs).size === 1) return revs[0]!;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the members did not agree on a revision');
}

test('50 ms round trips with jitter: every write acknowledged, and no election', async () => {
  const before = await cluster.terms();
  expect(new Set(before).size).toBe(1);
  const { ok, failed } = await putLoad('slow', 100);
  expect({ ok, failed }).toEqual({ ok: 100, failed: 0 });
  expect(await cluster.terms()).toEqual(before);
  expect(await agreedRevision()).toBeGreaterThanOrEqual(101);
}, 120_000);

test('2% loss and 5% reordering on top: writes go through and the members agree', async () => {
  for (const name of cluster.names) await cluster.lab.shape(name, { delayMs: 25, jitterMs: 5, lossPct: 2, reorderPct: 5 });
  try {
    const { ok } = await putLoad('lossy', 50);
    // A put the client gave up on may or may not have landed; the ones acknowledged did.
    expect(ok).toBeGreaterThan(0);
    const rev = await agreedRevision();
    const count = await cluster.etcdctl(['get', 'lossy/', '--prefix', '--keys-only', '-w', 'json']);
    expect(Number((JSON.parse(count.stdout) as { count?: number }).count ?? 0)).toBeGreaterThanOrEqual(ok);
    expect(rev).toBeGreaterThan(101);
  } finally {
    for (const name of cluster.names) await cluster.lab.shape(name, { delayMs: 25, jitterMs: 5, lossPct: 0, reorderPct: 0 });
  }
}, 180_000);
