/**
 * Real processes with a fault proxy on every directed peer link: isolating the leader (both
 * directions), then only its outgoing links (asymmetric), forces a new election; healing brings
 * the old leader back as a follower that catches up. No acknowledged write is lost.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from '../server/cluster_harness.js';
import { FaultProxy } from './proxy.js';
import { freePorts } from '../server/ports.js';
import { hostPort } from '../../src/server/config.js';

describe('partitions through per-link fault proxies', () => {
  let cluster: LocalCluster;
  /** proxies.get(`${from}>${to}`): the link member `from` uses to reach `to`. */
  const proxies = new Map<string, FaultProxy>();

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    const members = cluster.config.members;
    const ports = await freePorts(members.length * (members.length - 1));
    let i = 0;
    for (const from of members) {
      const dial: string[] = [];
      for (const to of members) {
        if (from.id === to.id) continue;
        const port = ports[i++]!;
        const proxy = new FaultProxy(port, hostPort(to.peerUrl));
        await proxy.start();
        proxies.set(`${from.name}>${to.name}`, proxy);
        dial.push(`${to.id}=127.0.0.1:${port}`);
      }
      cluster.extraArgs.set(from.name, ['--peer-dial', dial.join(',')]);
    }
    cluster.startAll();
    await cluster.waitForLeader();
  });

  afterAll(async () => {
    await cluster?.destroy();
    await Promise.all([...proxies.values()].map((p) => p.stop()));
  });

  const links = (pred: (from: string, to: string) => boolean): FaultProxy[] =>
    [...proxies.entries()].filter(([k]) => pred(k.split('>')[0]!, k.split('>')[1]!)).map(([, p]) => p);

  test('an isolated leader is replaced, then rejoins and catches up', async () => {
    const leader = await cluster.waitForLeader();
    const others = cluster.names.filter((n) => n !== leader);
    const client = cluster.client(others);
    await client.put('p/before', '1');
    for (const p of links((f, t) => f === leader || t === leader)) p.cut();
    const next = await cluster.waitForLeader(others);
    expect(next).not.toBe(leader);
    await client.put('p/during', '2');
    for (const p of proxies.values()) p.heal();
    await LocalCluster.until(async () => (await cluster.status(leader))?.leader?.name === next, `${leader} to follow ${next}`);
    await LocalCluster.until(async () => (await cluster.client([leader]).get('p/during', { serializable: true })).count === 1, 'catch-up');
    expect((await client.get('p/', { prefix: true })).count).toBe(2);
  });

  test('a leader that can hear but not speak (asymmetric cut) is replaced', async () => {
    const leader = await cluster.waitForLeader();
    const others = cluster.names.filter((n) => n !== leader);
    for (const p of links((f) => f === leader)) p.cut();
    const next = await cluster.waitForLeader(others);
    expect(next).not.toBe(leader);
    await cluster.client(others).put('p/asym', '3');
    for (const p of proxies.values()) p.heal();
    await LocalCluster.until(async () => (await cluster.client([leader]).get('p/asym', { serializable: true })).count === 1, 'catch-up');
  });
});
