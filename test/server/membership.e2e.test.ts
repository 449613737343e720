/**
 * Runtime membership changes on real processes, driven by the real etcdctl as an operator would:
 * add a learner, start it with etcd's flags (--initial-cluster-state existing), promote it, add
 * a voter, remove the leader and another member, under a steady write load that must lose no
 * acknowledged write; every remaining member ends with the same HashKV.
 */
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { etcdctl } from '../grpc/helpers.js';
import { freePorts } from './ports.js';

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
    let leader = await c.waitForLeader();
    const initial = await memberList(c, leader);
    expect(initial.map((m) => m.name).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const m of initial) {
      // etcd's 64-bit ids, not 1, 2, 3.
      expect(BigInt(m.ID) > 2n ** 32n).toBe(true);
      expect(m.isLearner ?? false).toBe(false);
    }

    // A steady write load through every member that stays: each acknowledged key must survive.
    const acknowledged: string[] = [];
    let stopping = false;
    let failures = 0;
    // The initial members: the client fails over when the one it uses is removed.
    const loadClient = (): ReturnType<LocalCluster['client']> => c.client(['n1', 'n2', 'n3']);
    const writer = (async () => {
      let i = 0;
      const client = loadClient();
      while (!stopping) {
        const key = `load/${String(i++).padStart(6, '0')}`;
        try {
          await client.put(key, 'v');
          acknowledged.push(key);
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();

    // 1. n4 as a learner: etcdctl prints what to start it with.
    const n4 = await c.addJoiner('n4');
    const added = await etcdctl(c.url(leader), ['member', 'add', 'n4', `--peer-urls=${n4.peerUrl}`, '--learner']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^Member +[0-9a-f]+ added to cluster +[0-9a-f]+/);
    expect(added.stdout).toContain('ETCD_INITIAL_CLUSTER_STATE="existing"');
    const n4Id = /Member +([0-9a-f]+) added/.exec(added.stdout)![1]!;
    let members = await memberList(c, 'n2');
    expect(members.find((m) => hex(m.ID) === n4Id)).toMatchObject({ isLearner: true, peerURLs: [n4.peerUrl] });
    // Not started: no name yet, and it cannot be promoted.
    const early = await etcdctl(c.url('n2'), ['member', 'promote', n4Id]);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toContain('etcdserver: can only promote a learner member which is in sync with leader');
    c.setJoinCluster('n4', ['n1', 'n2', 'n3', 'n4']);
    c.start('n4');
    // It catches up, publishes its name, and then the promotion goes through.
    await LocalCluster.until(async () => (await memberList(c, 'n1')).some((m) => m.name === 'n4' && m.clientURLs?.[0] === n4.clientUrl), 'n4 to publish');
    await LocalCluster.until(async () => (await etcdctl(c.url('n1'), ['member', 'promote', n4Id])).code === 0, 'n4 promoted');
    members = await memberList(c, 'n4');
    expect(members.find((m) => hex(m.ID) === n4Id)?.isLearner ?? false).toBe(false);

    // n4 moves to another peer port: member update, then a restart there; the others follow it.
    const [movedPort] = await freePorts(1);
    const movedUrl = `http://127.0.0.1:${movedPort}`;
    const updated = await etcdctl(c.url('n2'), ['member', 'update', n4Id, `--peer-urls=${movedUrl}`]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toMatch(new RegExp(`^Member +${n4Id} updated in cluster +[0-9a-f]+`));
    await c.kill('n4', 'SIGTERM');
    c.config.members.find((m) => m.name === 'n4')!.peerUrl = movedUrl;
    c.setJoinCluster('n4', ['n1', 'n2', 'n3', 'n4']);
    c.start('n4');
    const marker = `moved/${Date.now()}`;
    await c.client(['n1']).put(marker, 'x');
    const n4Reads = c.client(['n4']);
    await LocalCluster.until(
      async () => (await n4Reads.range({ key: Buffer.from(marker), serializable: true }).catch(() => ({ kvs: [] }))).kvs.length === 1,
      'n4 to get writes on its new peer URL',
    );
    expect((await memberList(c, 'n1')).find((m) => hex(m.ID) === n4Id)?.peerURLs).toEqual([movedUrl]);

    // 2. n5 as a voter.
    const n5 = await c.addJoiner('n5');
    const added5 = await etcdctl(c.url('n3'), ['member', 'add', 'n5', `--peer-urls=${n5.peerUrl}`]);
    expect(added5.code, added5.stderr).toBe(0);
    c.setJoinCluster('n5', ['n1', 'n2', 'n3', 'n4', 'n5']);
    c.start('n5');
    await LocalCluster.until(async () => (await memberList(c, 'n1')).some((m) => m.name === 'n5'), 'n5 to publish');

    // 3. Remove the leader: its process stops by itself, another member leads.
    leader = await c.waitForLeader();
    const leaderId = (await memberList(c, leader)).find((m) => m.name === leader)!.ID;
    const removed = await etcdctl(c.url('n4'), ['member', 'remove', hex(leaderId)]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(new RegExp(`^Member +${hex(leaderId)} removed from cluster +[0-9a-f]+`));
    await LocalCluster.until(() => !c.procs.has(leader), `${leader} to stop`);
    const left = ['n1', 'n2', 'n3', 'n4', 'n5'].filter((n) => n !== leader);
    const newLeader = await c.waitForLeader(left);
    expect(newLeader).not.toBe(leader);

    // 4. Remove one more, a follower.
    const second = left.find((n) => n !== newLeader)!;
    const secondId = (await memberList(c, newLeader)).find((m) => m.name === second)!.ID;
    const removed2 = await etcdctl(c.url(newLeader), ['member', 'remove', hex(secondId)]);
    expect(removed2.code, removed2.stderr).toBe(0);
    await LocalCluster.until(() => !c.procs.has(second), `${second} to stop`);
    const remaining = left.filter((n) => n !== second);
    members = await memberList(c, remaining[0]!);
    expect(members.map((m) => m.name).sort()).toEqual([...remaining].sort());

    // A removed member restarted on its old data dir refuses to rejoin, and says why.
    c.start(second);
    await LocalCluster.until(() => !c.procs.has(second), `${second} to refuse`);
    expect(await readFile(c.logPath(second), 'utf8')).toContain('the member has been permanently removed from the cluster');

    stopping = true;
    await writer;
    expect(acknowledged.length).toBeGreaterThan(100);
    // Every acknowledged write is there, on every remaining member, and they hold the same data.
    const reader = c.client(remaining);
    const got = await reader.range({ key: Buffer.from('load/'), rangeEnd: Buffer.from('load0'), keysOnly: true });
    const have = new Set(got.kvs.map((kv) => kv.key.toString()));
    expect(acknowledged.filter((k) => !have.has(k))).toEqual([]);
    const rev = got.header.revision;
    await LocalCluster.until(async () => (await Promise.all(remaining.map((n) => c.status(n)))).every((s) => s && s.revision >= rev), 'members to converge');
    const hashes = await Promise.all(remaining.map((n) => reader.hashKV(c.url(n), rev)));
    expect(new Set(hashes.map((h) => h.hash)).size).toBe(1);
    void failures;
  }, 180_000);

  test("replace a failed member, as the README's runbook says (it catches up from a snapshot); a joiner with the wrong token refuses to start", async () => {
    // Snapshots every 40 entries, keeping 5: the new member cannot replay the log from its start.
    cluster = await LocalCluster.create({ nodes: 3, snapshotEvery: 40, snapshotCatchUpEntries: 5 });
    const c = cluster;
    c.startAll();
    await c.waitForLeader();
    const client = c.client(['n1', 'n3']);
    for (let i = 0; i < 120; i++) await client.put(`before/${i}`, String(i));
    // n2 dies with its disk.
    await c.kill('n2');
    const dead = (await memberList(c, 'n1')).find((m) => m.name === 'n2')!;
    const removed = await etcdctl(`${c.url('n1')},${c.url('n3')}`, ['member', 'remove', hex(dead.ID)]);
    expect(removed.code, removed.stderr).toBe(0);
    const n4 = await c.addJoiner('n4');
    const added = await etcdctl(`${c.url('n1')},${c.url('n3')}`, ['member', 'add', 'n4', `--peer-urls=${n4.peerUrl}`]);
    expect(added.code, added.stderr).toBe(0);
    // What member add printed is what n4 starts with.
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added.stdout)![1]!;
    expect(initial.split(',').sort()).toEqual([`n1=${c.config.members[0]!.peerUrl}`, `n3=${c.config.members[2]!.peerUrl}`, `n4=${n4.peerUrl}`].sort());
    // With another cluster's token, n4 refuses to start and says why; nothing is joined.
    c.setJoinCluster('n4', ['n1', 'n3', 'n4']);
    c.extraArgs.set('n4', ['--initial-cluster-token', 'not-the-token']);
    c.start('n4');
    const exitCode = await new Promise<number | null>((resolve) => c.procs.get('n4')!.child.once('exit', resolve));
    expect(exitCode).toBe(1);
    expect(await readFile(c.logPath('n4'), 'utf8')).toMatch(/cluster mismatch: --initial-cluster-token "not-the-token"/);
    c.extraArgs.delete('n4');
    // This time etcd's flags come as QKV_* environment variables (QKV_INITIAL_CLUSTER...).
    c.setJoinCluster('n4', ['n1', 'n3', 'n4'], true);
    c.start('n4');
    await LocalCluster.until(async () => (await memberList(c, 'n1')).some((m) => m.name === 'n4'), 'n4 to start');
    for (let i = 0; i < 50; i++) await client.put(`after/${i}`, String(i));
    const n4Client = c.client(['n4']);
    await LocalCluster.until(async () => (await n4Client.range({ key: Buffer.from('after/49'), serializable: true })).kvs.length === 1, 'n4 to catch up');
    const all = await n4Client.range({ key: Buffer.from('after/'), rangeEnd: Buffer.from('after0') });
    expect(all.kvs).toHaveLength(50);
    expect((await n4Client.range({ key: Buffer.from('before/'), rangeEnd: Buffer.from('before0'), serializable: true })).kvs).toHaveLength(120);
    // (Logged a moment after the store is served.)
    await c.untilLogged('n4', 'restored store from snapshot');
    const rev = all.header.revision;
    const hashes = await Promise.all(['n1', 'n3', 'n4'].map((n) => client.hashKV(c.url(n), rev)));
    expect(new Set(hashes.map((h) => h.hash)).size).toBe(1);
    expect((await memberList(c, 'n4')).map((m) => m.name).sort()).toEqual(['n1', 'n3', 'n4']);
  }, 120_000);
});
