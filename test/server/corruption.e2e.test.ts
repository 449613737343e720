/**
 * Corruption at rest and on read.
 *
 * A flipped bit in a WAL segment of a stopped member: at start the member refuses with exit code
 * 1 and a message naming the file and offset, before it serves anything; the other members go on;
 * with the byte restored it starts and catches up. (Planted bug tried: treating every bad record
 * of the last segment as a torn write, as the WAL did before, starts the member on a log without
 * acknowledged entries; test/wal/wal.test.ts shows it at the store.)
 *
 * A flipped bit in a value in a table of a stopped member's store: at start the member finds it
 * (src/mvcc/verify.ts), says which file, fetches the store from a peer and serves what the others
 * do, never the flipped value. A block LevelDB cannot read, met by a read of a running member: the
 * store fails, the read gets an error, the member exits 1; restarted, it recovers the same way.
 * (Planted bug tried: MvccStore.open without verifyStoreFiles; the restarted member serves the
 * flipped value, and the read-time test's restart too.)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkTable } from '../../src/mvcc/verify.js';
import { flipBit } from '../mvcc/helpers.js';
import { LocalCluster } from './cluster_harness.js';

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await LocalCluster.create({ nodes: 3 });
  cluster.startAll();
  await cluster.waitForLeader();
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** Offsets of the records in a WAL segment: [u32 length][u32 crc][payload], zeros after the last. */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 8 <= buf.length && buf.readUInt32LE(off) !== 0; off += 8 + buf.readUInt32LE(off)) out.push(off);
  return out;
}

test('a member with a flipped bit in a WAL record refuses to start, naming the file; restored, it starts and catches up', async () => {
  const client = cluster.client();
  for (let i = 0; i < 20; i++) await client.put(`k${i}`, `v${i}`);
  const leader = await cluster.waitForLeader();
  const victim = cluster.names.find((n) => n !== leader)!;
  await LocalCluster.until(async () => (await cluster.status(victim))?.revision === 21, 'the follower to apply every put');
  await cluster.kill(victim, 'SIGTERM');

  const walDir = path.join(cluster.config.members.find((m) => m.name === victim)!.dataDir, 'raftlog', 'wal');
  const segment = path.join(walDir, (await readdir(walDir)).filter((n) => n.endsWith('.wal')).sort()[0]!);
  const offsets = recordOffsets(await readFile(segment));
  expect(offsets.length).toBeGreaterThan(3);
  // Inside the payload of a record in the middle of the log, followed by others.
  const target = offsets[Math.floor(offsets.length / 2)]! + 9;
  await flipBit(segment, target);

  cluster.start(victim);
  const exitCode = await new Promise<number | null>((resolve) => cluster.procs.get(victim)!.child.once('exit', resolve));
  expect(exitCode).toBe(1);
  const log = await readFile(cluster.logPath(victim), 'utf8');
  expect(log).toMatch(new RegExp(`qkv: raft log store: bad record in ${segment.replaceAll('/', '\\/')} at byte \\d+; refusing to start`));

  // The others go on meanwhile.
  await client.put('while-down', 'yes');

  await flipBit(segment, target);
  cluster.start(victim);
  await LocalCluster.until(async () => {
    const s = await cluster.status(victim);
    return s !== undefined && s.revision === 22;
  }, 'the repaired member to start and catch up');
}, 90_000);

// ---- the store ------------------------------------------------------------------------------

/** What every member must serve: key-i -> its latest value (random hex, so snappy leaves it as it is in the table). */
const written = new Map<string, string>();

async function writeKeys(from: number, to: number): Promise<void> {
  const client = cluster.client();
  for (let i = from; i < to; i++) {
    const value = `${i}-${randomBytes(40).toString('hex')}`;
    await client.put(`key-${i}`, value);
    written.set(`key-${i}`, value);
  }
}

const dataDirOf = (name: string): string => cluster.config.members.find((m) => m.name === name)!.dataDir;

async function caughtUp(name: string): Promise<number> {
  const leader = await cluster.waitForLeader();
  const rev = (await cluster.status(leader))!.revision;
  await LocalCluster.until(async () => (await cluster.status(name))?.revision === rev, `${name} at revision ${rev}`, 60_000);
  return rev;
}

/** The member's store written out of LevelDB's log into tables (as a long-running member's is), then the member stopped. */
async function storeInTablesThenStop(name: string): Promise<void> {
  const res = await fetch(`${cluster.url(name)}/v3/maintenance/defragment`, { method: 'POST', body: '{}' });
  expect(res.status).toBe(200);
  await cluster.kill(name, 'SIGTERM');
}

/** The table of `name`'s store holding `value` as it is, and where. */
async function tableHolding(name: string, value: string): Promise<{ file: string; at: number }> {
  const kv = path.join(dataDirOf(name), 'kv');
  for (const n of (await readdir(kv)).filter((f) => f.endsWith('.ldb'))) {
    const at = (await readFile(path.join(kv, n))).indexOf(value);
    if (at >= 0) return { file: path.join(kv, n), at };
  }
  throw new Error(`no table of ${name} holds ${value}`);
}

/** Every key, its revision and HashKV on `name` as on the leader. */
async function sameAsLeader(name: string): Promise<void> {
  const rev = await caughtUp(name);
  const leader = await cluster.waitForLeader();
  const mine = await cluster.client([name]).get('key-', { prefix: true, serializable: true });
  const theirs = await cluster.client([leader]).get('key-', { prefix: true, serializable: true });
  expect(mine.header.revision).toBe(rev);
  expect(mine.kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.modRevision])).toEqual(
    theirs.kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.modRevision]),
  );
  expect(new Map(mine.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]))).toEqual(written);
  const client = cluster.client();
  const [a, b] = await Promise.all([client.hashKV(cluster.url(name), rev), client.hashKV(cluster.url(leader), rev)]);
  expect(a.hash).toBe(b.hash);
}

/** Serializable reads of `key` on `name` until stopped: every value it answered that is not the written one. */
function watchServed(name: string, key: string): { stop: () => Promise<string[]> } {
  const wrong: string[] = [];
  let running = true;
  const loop = (async () => {
    const client = cluster.client([name]);
    while (running) {
      const r = await client.get(key, { serializable: true }).catch(() => undefined);
      const v = r?.kvs[0]?.value.toString();
      if (v !== undefined && v !== written.get(key)) wrong.push(v);
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return wrong;
    },
  };
}

test('a flipped bit in a table of a stopped member: it names the table, recovers its store from a peer, and never serves the flipped value', async () => {
  await writeKeys(0, 300);
  await writeKeys(0, 40); // overwritten: history in the store too
  const leader = await cluster.waitForLeader();
  const follower = cluster.names.find((n) => n !== leader)!;
  await caughtUp(follower);
  await storeInTablesThenStop(follower);
  const { file, at } = await tableHolding(follower, written.get('key-150')!);
  await flipBit(file, at + 2);

  cluster.start(follower);
  const served = watchServed(follower, 'key-150');
  await sameAsLeader(follower);
  expect(await served.stop()).toEqual([]);
  const log = await readFile(cluster.logPath(follower), 'utf8');
  expect(log).toContain(`mvcc: corrupt store file ${file} at byte`);
  expect(log).toContain('store is corrupt: recovering it from a peer');
  expect(log).toContain('recovered the store from a peer');
  expect((await readdir(dataDirOf(follower))).some((n) => n.startsWith('kv.corrupt-'))).toBe(true);
}, 120_000);

test('a block LevelDB cannot read, met by a read of a running member: the read fails, the member stops; restarted, it recovers from a peer', async () => {
  await writeKeys(300, 600);
  const leader = await cluster.waitForLeader();
  const victim = cluster.names.find((n) => n !== leader)!;
  await caughtUp(victim);
  await storeInTablesThenStop(victim);
  cluster.start(victim); // a fresh start: LevelDB's block cache holds none of the data blocks
  await caughtUp(victim);

  const { file, at } = await tableHolding(victim, written.get('key-450')!);
  const block = checkTable(file, await readFile(file)).find((h) => h.offset <= at && at < h.offset + h.size)!;
  // The block's compression type: LevelDB refuses it on read; the check at open sees the block's
  // checksum (which covers the type) fail first.
  await flipBit(file, block.offset + block.size);
  const exited = new Promise<number | null>((resolve) => cluster.procs.get(victim)!.child.once('exit', resolve));
  const read = await cluster
    .client([victim])
    .get('key-450', { serializable: true })
    .then(
      (r) => `answered ${r.kvs[0]?.value.toString()}`,
      (err: Error) => err.message,
    );
  expect(read).toMatch(/server stopped/);
  expect(await exited).toBe(1);
  expect(await readFile(cluster.logPath(victim), 'utf8')).toMatch(/store failed.*Corruption: bad block type/);

  // A corrupt store kept aside from an earlier recovery: only the newest one is kept.
  await mkdir(path.join(dataDirOf(victim), 'kv.corrupt-1'), { recursive: true });
  cluster.start(victim);
  const served = watchServed(victim, 'key-450');
  await sameAsLeader(victim);
  expect(await served.stop()).toEqual([]);
  expect(await readFile(cluster.logPath(victim), 'utf8')).toContain(`mvcc: corrupt store file ${file} at byte ${block.offset}: block checksum mismatch`);
  const aside = (await readdir(dataDirOf(victim))).filter((n) => n.startsWith('kv.corrupt-'));
  expect(aside).toHaveLength(1);
  expect(aside[0]).not.toBe('kv.corrupt-1');
}, 120_000);
