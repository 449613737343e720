/**
 * A slow disk and a failing disk under one member of a 3-member cluster (fault_shim.ts: an
 * LD_PRELOAD shim that delays fsync/fdatasync or fails them, or the writes, with EIO, on that
 * member's data dir only). A slow disk slows that member and shows in its WAL fsync histogram,
 * without an election; a disk that fails makes the member acknowledge nothing, log why and exit
 * 1, while the other two go on; restarted on a good disk, it catches up.
 *
 * Planted bug tried: wal.ts's datasync resolving on an fdatasync error (the error ignored)
 * makes "a leader whose WAL fsync fails acknowledges nothing" fail: the put is answered 200.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { startFaultyCluster, type FaultyCluster, type MemberFaults } from './fault_shim.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

let lab: FaultyCluster;
let cluster: LocalCluster;
let disks: Map<string, MemberFaults>;

async function put(name: string, key: string, value: string): Promise<Response | Error> {
  try {
    return await fetch(`${cluster.url(name)}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(key), value: b64(value) }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    return err as Error;
  }
}

/** The value of `key` in `name`'s own store (a serializable range), or undefined. */
async function localValue(name: string, key: string): Promise<string | undefined> {
  const res = await fetch(`${cluster.url(name)}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(key), serializable: true }) });
  const body = (await res.json()) as { kvs?: { value: string }[] };
  const kv = body.kvs?.[0];
  return kv ? Buffer.from(kv.value, 'base64').toString() : undefined;
}

function exitOf(name: string): Promise<number | null> {
  const p = cluster.procs.get(name)!;
  return new Promise((resolve) => p.child.once('exit', (code) => resolve(code)));
}

/** The WAL fsync histogram of a member: observations in all, and those above 64 ms. */
async function fsyncsOver64ms(name: string): Promise<{ count: number; over: number }> {
  const text = await (await fetch(`${cluster.url(name)}/metrics`)).text();
  const count = Number(/^etcd_disk_wal_fsync_duration_seconds_count (\S+)$/m.exec(text)?.[1]);
  const upTo64 = Number(/^etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.064"\} (\S+)$/m.exec(text)?.[1]);
  return { count, over: count - upTo64 };
}

beforeAll(async () => {
  lab = await startFaultyCluster(3);
  cluster = lab.cluster;
  disks = lab.faults;
}, 60_000);

afterAll(async () => {
  await lab?.destroy();
});

/** Back to three healthy members with a leader (a member that exited is restarted on a good disk). */
async function healAll(): Promise<string> {
  for (const [name, disk] of disks) {
    disk.disk({});
    if (!cluster.procs.has(name)) cluster.start(name);
  }
  return cluster.waitForLeader(cluster.names);
}

describe('a slow disk', () => {
  test('a follower whose fsync takes 100 ms slows down, reports it in its fsync histogram, and causes no election', async () => {
    const leader = await healAll();
    const follower = cluster.names.find((n) => n !== leader)!;
    const termBefore = (await cluster.status(leader))!.term;
    const before = await fsyncsOver64ms(follower);
    disks.get(follower)!.disk({ delayMs: 100 });
    for (let i = 0; i < 10; i++) {
      const res = await put(leader, `slow/${i}`, `v${i}`);
      expect(res instanceof Response && res.status).toBe(200);
    }
    await LocalCluster.until(async () => (await localValue(follower, 'slow/9')) === 'v9', 'the slow follower to apply the last put');
    const after = await fsyncsOver64ms(follower);
    expect(after.over - before.over).toBeGreaterThan(0);
    disks.get(follower)!.disk({});
    // Merely slow is not down: the same leader in the same term.
    expect((await cluster.status(follower))!.leader?.name).toBe(leader);
    expect((await cluster.status(leader))!.term).toBe(termBefore);
  }, 60_000);
});

describe('a failing disk', () => {
  test('a leader whose WAL fsync fails acknowledges nothing, says why and exits 1; the others go on; restarted, it catches up', async () => {
    const leader = await healAll();
    const exited = exitOf(leader);
    disks.get(leader)!.disk({ fail: 'sync' });
    const res = await put(leader, 'doomed', 'x');
    // Not acknowledged: an error answer, or the connection closed by the exiting member.
    if (res instanceof Response) expect(res.status).not.toBe(200);
    expect(await exited).toBe(1);
    const log = await readFile(cluster.logPath(leader), 'utf8');
    expect(log).toContain('raft node stopped after a storage failure');
    expect(log).toContain('EIO');
    const others = cluster.names.filter((n) => n !== leader);
    const next = await cluster.waitForLeader(others);
    const ok = await put(next, 'after-leader-disk', 'y');
    expect(ok instanceof Response && ok.status).toBe(200);
    // On a good disk again it restarts from what it made durable, and catches up.
    disks.get(leader)!.disk({});
    cluster.start(leader);
    await LocalCluster.until(async () => (await localValue(leader, 'after-leader-disk').catch(() => undefined)) === 'y', 'the restarted member to catch up');
  }, 90_000);

  test('a follower whose writes fail with EIO stops with exit code 1, and the other two keep taking writes', async () => {
    const leader = await healAll();
    const follower = cluster.names.find((n) => n !== leader)!;
    const exited = exitOf(follower);
    disks.get(follower)!.disk({ fail: 'write' });
    const res = await put(leader, 'with-follower-failing', 'z');
    expect(res instanceof Response && res.status).toBe(200);
    expect(await exited).toBe(1);
    expect(await readFile(cluster.logPath(follower), 'utf8')).toContain('raft node stopped after a storage failure');
    for (let i = 0; i < 5; i++) {
      const r = await put(leader, `two-left/${i}`, 'v');
      expect(r instanceof Response && r.status).toBe(200);
    }
    disks.get(follower)!.disk({});
    cluster.start(follower);
    await LocalCluster.until(async () => (await localValue(follower, 'two-left/4').catch(() => undefined)) === 'v', 'the restarted follower to catch up');
  }, 90_000);
});
