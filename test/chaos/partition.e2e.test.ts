/**
 * Real processes with a fault proxy on every directed peer link: isolating the leader (both
 * directions), then only its outgoing links (asymmetric), forces a new election; healing brings
 * the old leader back as a follower that catches up. No acknowledged write is lost.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from '../server/cluster_harness.js';
import { ProxiedCluster } from './proxied_cluster.js';

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
});
