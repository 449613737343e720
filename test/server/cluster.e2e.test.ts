/**
 * End to end, on real member processes over loopback: replication, failover without losing
 * acknowledged writes, catch-up by log and by snapshot, lease expiry seen by a watcher on
 * another member, and forwarding from followers.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';

describe('a 3-member cluster of real processes', () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    // Small snapshotEvery so a restarted member catches up by snapshot.
    cluster = await LocalCluster.create({ nodes: 3, snapshotEvery: 200, snapshotCatchUpEntries: 20 });
    cluster.startAll();
    await cluster.waitForLeader();
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  test('a write through one member is readable from every member', async () => {
    const [a, b, c] = cluster.names;
    const put = await cluster.client([b!]).put('/tour/greeting', 'hello');
    expect(put.header.revision).toBeGreaterThan(1);
    for (const n of [a!, b!, c!]) {
      const got = await cluster.client([n]).get('/tour/greeting');
      expect(got.kvs.map((kv) => kv.value.toString())).toEqual(['hello']);
      expect(got.header.revision).toBeGreaterThanOrEqual(put.header.revision);
    }
    // The curl API on a follower forwards the write and reads it back.
    const res = await fetch(`${cluster.url(c!)}/v1/kv/tour/curl`, { method: 'PUT', body: 'via-curl' });
    expect(res.status).toBe(200);
    const raw = await fetch(`${cluster.url(a!)}/v1/kv/tour/curl?raw`);
    expect(await raw.text()).toBe('via-curl');
  });

  test('killing the leader elects a new one and loses no acknowledged write', async () => {
    const leader = await cluster.waitForLeader();
    const others = cluster.names.filter((n) => n !== leader);
    const client = cluster.client(others);
    const acked: string[] = [];
    for (let i = 0; i < 50; i++) {
      await client.put(`/failover/k${i}`, `v${i}`);
      acked.push(`/failover/k${i}`);
    }
    await cluster.kill(leader, 'SIGKILL');
    const next = await cluster.waitForLeader(others);
    expect(next).not.toBe(leader);
    // Writes continue on the survivors.
    for (let i = 50; i < 60; i++) {
      await client.put(`/failover/k${i}`, `v${i}`);
      acked.push(`/failover/k${i}`);
    }
    const got = await client.get('/failover/', { prefix: true });
    expect(got.kvs.map((kv) => kv.key.toString()).sort()).toEqual(acked.sort());

    // The old leader restarts from its data dir and catches up (by log or snapshot).
    for (let i = 0; i < 400; i++) await client.put(`/catchup/k${i % 50}`, `round-${i}`);
    cluster.start(leader);
    await LocalCluster.until(async () => {
      const s = await cluster.status(leader);
      const ref = await cluster.status(next);
      return !!s && !!ref && s.revision === ref.revision;
    }, `${leader} to catch up`);
    const fromRestarted = await cluster.client([leader]).get('/catchup/', { prefix: true, serializable: true });
    expect(fromRestarted.count).toBe(50);
    expect(fromRestarted.kvs.find((kv) => kv.key.toString() === '/catchup/k49')!.value.toString()).toBe('round-399');
    // It was too far behind the leader's compacted log: it installed the leader's store snapshot.
    // (Logged a moment after the store is served.)
    await cluster.untilLogged(leader, 'restored store from snapshot');
    const hashes = await Promise.all(cluster.names.map((n) => cluster.client([n]).hashKV(cluster.url(n))));
    expect(new Set(hashes.map((h) => h.hash)).size).toBe(1);
    // And it keeps serving writes made after the snapshot.
    await client.put('/catchup/after', 'snapshot');
    await LocalCluster.until(async () => (await cluster.client([leader]).get('/catchup/after', { serializable: true })).count === 1, 'the post-snapshot write');
  });

  test('an expired lease deletes its keys, and a watcher on another member sees the deletes', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.names.find((n) => n !== leader)!;
    const client = cluster.client([leader]);
    const lease = await client.leaseGrant(3);
    expect(lease.ttl).toBe(3);
    await client.put('/lease/a', '1', { lease: lease.id });
    const put = await client.put('/lease/b', '2', { lease: lease.id });
    const ttl = await client.leaseTimeToLive(lease.id, true);
    expect(ttl.keys.map((k) => k.toString()).sort()).toEqual(['/lease/a', '/lease/b']);
    // From the revision after the puts: whenever the watch starts, it sees the deletes.
    const watch = cluster.client([follower]).watch('/lease/', { prefix: true, startRevision: put.header.revision + 1 });
    const deleted: string[] = [];
    let deleteRevisions = new Set<number>();
    const done = (async () => {
      for await (const resp of watch) {
        for (const e of resp.events) {
          if (e.type === 'DELETE') {
            deleted.push(e.kv.key.toString());
            deleteRevisions.add(e.kv.modRevision);
          }
        }
        if (deleted.length >= 2) break;
      }
    })();
    await LocalCluster.until(() => deleted.length >= 2, 'the lease to expire', 20_000);
    watch.cancel();
    await done.catch(() => {});
    expect(deleted.sort()).toEqual(['/lease/a', '/lease/b']);
    // Revoking deletes all of a lease's keys in one revision.
    expect(deleteRevisions.size).toBe(1);
    const gone = await client.get('/lease/', { prefix: true });
    expect(gone.count).toBe(0);
    const after = await client.leaseTimeToLive(lease.id);
    expect(after.ttl).toBe(-1);
    deleteRevisions = new Set();
  });
});
