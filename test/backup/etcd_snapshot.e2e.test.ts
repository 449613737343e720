/**
 * The etcd snapshot reader on snapshots the real etcd 3.4 writes: a member started here is given
 * thousands of keys (branch pages), a 100 KB value (overflow pages), several revisions of some
 * keys, deletes, leases with keys attached and a compaction; `etcdctl snapshot save` writes the
 * file, and everything the reader finds is compared with what etcdctl reads from the live member.
 * A truncated, a flipped and a re-hashed but damaged copy of the file are refused.
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openEtcdSnapshotFile, readEtcdSnapshot, type EtcdKeyValue, type EtcdSnapshot } from '../../src/backup/etcd_snapshot.js';
import { etcdctl, hostOf, RealEtcd } from '../grpc/helpers.js';

/** A KeyValue as etcdctl's JSON prints it (lease quoted before parsing, as it exceeds 2^53). */
interface CtlKeyValue {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: string;
}

interface CtlGet {
  header: { revision: number };
  kvs?: CtlKeyValue[];
}

/** The same shape from the reader, for comparing. */
const asCtl = (kv: EtcdKeyValue): CtlKeyValue => ({
  key: kv.key.toString('base64'),
  ...(kv.value.length > 0 ? { value: kv.value.toString('base64') } : {}),
  create_revision: kv.createRevision,
  mod_revision: kv.modRevision,
  version: kv.version,
  ...(kv.lease !== 0n ? { lease: kv.lease.toString() } : {}),
});

/** The latest KeyValue of every live key in a snapshot, in key order. */
function liveKeys(snap: EtcdSnapshot): EtcdKeyValue[] {
  const latest = new Map<string, EtcdKeyValue | undefined>();
  for (const r of snap.revisions()) {
    if (r.tombstone) latest.set(r.key.toString('latin1'), undefined);
    else latest.set(r.kv.key.toString('latin1'), r.kv);
  }
  return [...latest.values()].filter((kv): kv is EtcdKeyValue => kv !== undefined).sort((a, b) => Buffer.compare(a.key, b.key));
}

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
/** A copy of a snapshot whose database is changed by `damage` and whose hash is recomputed, so that the damage reaches the bbolt reader. */
function rehashed(file: Buffer, damage: (db: Buffer) => void): Buffer {
  const db = Buffer.from(file.subarray(0, file.length - 32));
  damage(db);
  return Buffer.concat([db, sha256(db)]);
}

describe('reading snapshots saved from a real etcd 3.4', () => {
  let etcd: RealEtcd;
  let ep: string;
  let tmp: string;
  let file: Buffer;
  let snap: EtcdSnapshot;
  let compactedAt: number;
  const leaseIds: string[] = [];
  const bigValue = randomBytes(100 * 1024);

  const ctl = async (args: string[]): Promise<string> => {
    const r = await etcdctl(ep, args, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  /** One call of etcd's JSON gateway: writing thousands of keys one etcdctl process each would take minutes. */
  const gateway = async (route: string, body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const res = await fetch(`${etcd.endpoint}/v3/${route}`, { method: 'POST', body: JSON.stringify(body) });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
  const put = (key: string, value: string | Buffer, lease?: string) => gateway('kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  const del = (key: string, rangeEnd?: string) => gateway('kv/deleterange', { key: b64(key), ...(rangeEnd ? { range_end: b64(rangeEnd) } : {}) });
  const revision = async (): Promise<number> => Number(((await gateway('kv/range', { key: b64('x') })).header as { revision: string }).revision);
  const getAll = async (args: string[] = []): Promise<CtlGet> =>
    JSON.parse((await ctl(['get', '', '--prefix', '-w', 'json', ...args])).replace(/"lease":(\d+)/g, '"lease":"$1"')) as CtlGet;
  const save = async (name: string): Promise<string> => {
    const to = path.join(tmp, name);
    await ctl(['snapshot', 'save', to]);
    return to;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'qkv-etcd-snapshot-'));
    etcd = await RealEtcd.start();
    ep = hostOf(etcd.endpoint);
    // Thousands of keys, in parallel batches: several leaf pages under branch pages.
    for (let i = 0; i < 3000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => put(`bulk/${String(i + j).padStart(5, '0')}`, `value of ${i + j} `.repeat(1 + ((i + j) % 5)))));
    }
    for (let v = 1; v <= 5; v++) await put('hist/a', `a${v}`);
    for (let v = 1; v <= 3; v++) await put('hist/b', `b${v}`);
    await del('hist/b');
    await put('hist/b', 'b again');
    await put('big/value', bigValue);
    await put('empty/value', '');
    for (const ttl of [600, 900, 1200]) leaseIds.push(String((await gateway('lease/grant', { TTL: ttl })).ID));
    await put('leased/one', '1', leaseIds[0]);
    await put('leased/two', '2', leaseIds[0]);
    await put('leased/three', '3', leaseIds[1]);
    // A revoked lease deletes its keys: tombstones, and no lease left for it.
    const revoked = String((await gateway('lease/grant', { TTL: 60 })).ID);
    await put('leased/revoked', 'r', revoked);
    await gateway('lease/revoke', { ID: revoked });
    await del('bulk/00100', 'bulk/00150');
    // Compact the past, then keep writing: history after the compaction stays in the file.
    compactedAt = await revision();
    await ctl(['compact', String(compactedAt), '--physical']);
    for (let v = 6; v <= 8; v++) await put('hist/a', `a${v}`);
    await put('hist/b', 'b after');
    await put('leased/two', 'two again', leaseIds[2]);
    await del('bulk/02999');
    file = await readFile(await save('snap.db'));
    snap = readEtcdSnapshot(file);
  });

  afterAll(async () => {
    await etcd?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('every live key, value, create and mod revision, version and lease is what etcdctl reads, at the same revision', async () => {
    const live = await getAll();
    expect(live.kvs!.length).toBeGreaterThan(2900);
    expect(liveKeys(snap).map(asCtl)).toEqual(live.kvs);
    expect(snap.currentRevision).toBe(live.header.revision);
    const big = liveKeys(snap).find((kv) => kv.key.toString() === 'big/value')!;
    expect(big.value.equals(bigValue)).toBe(true);
  });

  test('the history after the compaction is every revision etcdctl reads there', async () => {
    expect(snap.compactRevision).toBe(compactedAt);
    expect(snap.scheduledCompactRevision).toBe(compactedAt);
    const history = [...snap.revisions()].filter((r) => r.revision.main > compactedAt);
    expect(history.length).toBe(6);
    for (const r of history) {
      const at = await getAll([`--rev=${r.revision.main}`]);
      const key = r.tombstone ? r.key : r.kv.key;
      const found = (at.kvs ?? []).find((kv) => kv.key === b64(key));
      if (r.tombstone) expect(found).toBeUndefined();
      else expect(found).toEqual(asCtl(r.kv));
    }
    // The compacted past keeps the latest revision of each key at the compaction (and no tombstone at or before it).
    const before = [...snap.revisions()].filter((r) => r.revision.main <= compactedAt);
    expect(before.some((r) => r.tombstone)).toBe(false);
    expect(before.filter((r) => !r.tombstone && r.kv.key.toString() === 'hist/a').map((r) => (r.tombstone ? '' : r.kv.value.toString()))).toEqual(['a5']);
  });

  test('the leases are those etcdctl lists, with their granted TTLs', async () => {
    // etcdctl prints lease ids as %016x: zero-padded.
    const listed = (await ctl(['lease', 'list'])).split('\n').slice(1).filter(Boolean).sort();
    expect(snap.leases.map((l) => l.id.toString(16).padStart(16, '0')).sort()).toEqual(listed);
    expect(snap.leases.map((l) => l.id.toString()).sort()).toEqual([...leaseIds].sort());
    for (const l of snap.leases) {
      const ttl = /"granted-ttl":(\d+)|"grantedTTL":(\d+)/.exec(await ctl(['lease', 'timetolive', l.id.toString(16), '-w', 'json']))!;
      expect(l.ttl).toBe(Number(ttl[1] ?? ttl[2]));
      expect(l.remainingTtl).toBe(0);
    }
  });

  test('the consistent index, the member and the bbolt meta are read', async () => {
    const status = JSON.parse((await ctl(['endpoint', 'status', '-w', 'json'])).replace(/:(\d{16,})/g, ':"$1"')) as { Status: { raftIndex: number } }[];
    expect(snap.consistentIndex).toBeGreaterThan(3000);
    expect(snap.consistentIndex).toBeLessThanOrEqual(Number(status[0]!.Status.raftIndex));
    expect(snap.members.map((m) => m.name)).toEqual(['e1']);
    expect(snap.db.pageSize).toBe(4096);
    expect(snap.db.pageCount * snap.db.pageSize + 32).toBe(file.length);
  });

  test('a compaction at the current revision after a delete removes the top tombstone, and the revision is still the compact revision', async () => {
    await del('hist/a');
    const rev = await revision();
    await ctl(['compact', String(rev), '--physical']);
    const again = await openEtcdSnapshotFile(await save('snap2.db'));
    try {
      expect(again.compactRevision).toBe(rev);
      expect(again.currentRevision).toBe(rev);
      expect(again.currentRevision).toBe((await getAll()).header.revision);
      expect(liveKeys(again).some((kv) => kv.key.toString() === 'hist/a')).toBe(false);
    } finally {
      await again.close();
    }
  });

  test('a truncated file, a flipped byte and damage under a recomputed hash are refused', () => {
    const refused = (f: Buffer): { code: string; message: string } => {
      try {
        readEtcdSnapshot(f);
      } catch (e) {
        return { code: (e as { code: string }).code, message: (e as Error).message };
      }
      throw new Error('accepted');
    };
    expect(refused(file.subarray(0, file.length - 1000))).toMatchObject({
      code: 'ERR_SNAPSHOT_INTEGRITY',
      message: expect.stringContaining('truncated or has no hash'),
    });
    expect(refused(file.subarray(0, file.length - 32))).toMatchObject({ code: 'ERR_SNAPSHOT_INTEGRITY' });
    // Whole pages cut off (the hash kept): the size still looks right, the hash does not.
    expect(refused(Buffer.concat([file.subarray(0, file.length - 32 - 8192), file.subarray(file.length - 32)]))).toMatchObject({
      code: 'ERR_SNAPSHOT_INTEGRITY',
      message: expect.stringContaining('sha256 mismatch'),
    });
    const flipped = Buffer.from(file);
    flipped[Math.floor(file.length / 2)]! ^= 0x01;
    expect(refused(flipped)).toMatchObject({ code: 'ERR_SNAPSHOT_INTEGRITY', message: expect.stringContaining('sha256 mismatch') });
    // Both meta pages damaged, the hash made to match: bbolt's own checks refuse it.
    const noMeta = rehashed(file, (db) => {
      db[16]! ^= 0xff;
      db[4096 + 16]! ^= 0xff;
    });
    expect(refused(noMeta)).toMatchObject({ code: 'ERR_BBOLT_CORRUPT', message: expect.stringContaining('no valid meta page') });
    // A tree page's header damaged: the page no longer names itself.
    const rootPage = snap.db.rootPageId * 4096;
    expect(refused(rehashed(file, (db) => void (db[rootPage]! ^= 0x40)))).toMatchObject({
      code: 'ERR_BBOLT_CORRUPT',
      message: expect.stringContaining('says it is page'),
    });
  });

  test('a damaged meta page 0 falls back to meta page 1 (one transaction older: the same data in a snapshot)', () => {
    const meta0 = rehashed(file, (db) => void (db[16 + 56]! ^= 0x01));
    const read = readEtcdSnapshot(meta0);
    expect(read.db.metaPage).toBe(1);
    expect(read.db.txid).toBe(snap.db.txid - 1n);
    expect(liveKeys(read).map(asCtl)).toEqual(liveKeys(snap).map(asCtl));
  });
});
