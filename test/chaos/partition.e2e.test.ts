/**
 * Real processes with a fault proxy on every directed peer link: isolating the leader (both
 * directions), then only its outgoing links (asymmetric), forces a new election; healing brings
 * the old leader back as a follower that catches up. No acknowledged write is lost.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from '../server/cluster_harness.js';
import { ProxiedCluster } from './proxied_cluster.js';
import { etcdctl } from '../grpc/helpers.js';

describe('partitions through per-link fault proxies', () => {
  let pc: ProxiedCluster;
  let cluster: LocalCluster;

  beforeAll(async () => {
    pc = await ProxiedCluster.create({ nodes: 3 });
    cluster = pc.cluster;
    cluster.startAll();
    await cluster.waitForLeader();
  });

  afterAll(async () => {
    await pc?.destroy();
  });

  test('an isolated leader is replaced, then rejoins and catches up', async () => {
    const leader = await cluster.waitForLeader();
    const others = cluster.names.filter((n) => n !== leader);
    const client = cluster.client(others);
    await client.put('p/before', '1');
    pc.split([leader]);
    const next = await cluster.waitForLeader(others);
    expect(next).not.toBe(leader);
    await client.put('p/during', '2');
    pc.heal();
    await LocalCluster.until(async () => (await cluster.status(leader))?.leader?.name === next, `${leader} to follow ${next}`);
    await LocalCluster.until(async () => (await cluster.client([leader]).get('p/during', { serializable: true })).count === 1, 'catch-up');
    expect((await client.get('p/', { prefix: true })).count).toBe(2);
  });

  test('a leader that can hear but not speak (asymmetric cut) is replaced', async () => {
    const leader = await cluster.waitForLeader();
    const others = cluster.names.filter((n) => n !== leader);
    pc.silence(leader);
    const next = await cluster.waitForLeader(others);
    expect(next).not.toBe(leader);
    await cluster.client(others).put('p/asym', '3');
    pc.heal();
    await LocalCluster.until(async () => (await cluster.client([leader]).get('p/asym', { serializable: true })).count === 1, 'catch-up');
  });

  test('a member added at runtime gets its links through proxies too: cut off, it misses writes; healed, it catches up', async () => {
    const leader = await cluster.waitForLeader();
    const n4 = await pc.addJoiner('n4');
    const added = await etcdctl(cluster.url(leader), ['member', 'add', 'n4', `--peer-urls=${n4.peerUrl}`, '--learner']);
    expect(added.code, added.stderr).toBe(0);
    cluster.setJoinCluster('n4', [...cluster.names.filter((n) => n !== 'n4'), 'n4']);
    cluster.start('n4');
    const client = cluster.client(cluster.names.filter((n) => n !== 'n4'));
    await client.put('p/joined', '4');
    const onN4 = async (key: string): Promise<number> =>
      (
        await cluster
          .client(['n4'])
          .get(key, { serializable: true })
          .catch(() => ({ count: 0 }))
      ).count;
    await LocalCluster.until(async () => (await onN4('p/joined')) === 1, 'n4 to catch up');
    // Its traffic went through the proxies of both directions (dialled directly, these would carry nothing).
    expect(pc.link(leader, 'n4').forwarded).toBeGreaterThan(0);
    expect(pc.link('n4', leader).forwarded).toBeGreaterThan(0);
    // Cut off: a write the others commit does not reach it until the links heal.
    pc.split(['n4']);
    await client.put('p/cut', '5');
    const leaderNow = await cluster.waitForLeader(cluster.names.filter((n) => n !== 'n4'));
    await LocalCluster.until(async () => (await cluster.client([leaderNow]).get('p/cut', { serializable: true })).count === 1, 'the write on the leader');
    expect(await onN4('p/cut')).toBe(0);
    pc.heal();
    await LocalCluster.until(async () => (await onN4('p/cut')) === 1, 'n4 to catch up after the heal');
  });
});
