/**
 * restoreDataDir on files written here: lease ids beyond 2^53 come back under ids within it
 * (their low 52 bits, the next free one on a collision), the keys attached follow, ids within
 * range stay; the data dir holds the store, the membership from the flags and the identity
 * `qkv serve` derives; a damaged file or an existing data dir is refused with nothing written.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdRevisionRecord } from '../../src/backup/etcd_snapshot.js';
import { writeEtcdDatabase } from '../../src/backup/etcd_snapshot_writer.js';
import { RestoreTargetExistsError, SnapshotIntegrityError } from '../../src/backup/errors.js';
import { MvccStore } from '../../src/mvcc/index.js';
import { restoreDataDir } from '../../src/server/backup.js';
import { clusterIdOf, memberIdOf } from '../../src/server/member_id.js';

const BIG = 0x694d_a23a_9532_e509n;
/** Another id with BIG's low 52 bits, and smaller: it takes them, BIG (after it in id order) the next id up. */
const COLLIDING = BIG ^ (0x7n << 60n);
const SMALL = 0x1234n;
const LOW52 = BIG & ((1n << 52n) - 1n);

const put = (main: number, key: string, lease: bigint): EtcdRevisionRecord => ({
  revision: { main, sub: 0 },
  tombstone: false,
  kv: { key: Buffer.from(key), createRevision: main, modRevision: main, version: 1, value: Buffer.from(key), lease },
});

describe('restoring a member data dir from a snapshot file', () => {
  let dir: string;
  let file: string;
  const flags = (name: string) => ({
    name,
    dataDir: path.join(dir, name),
    initialCluster: 'a=http://127.0.0.1:7001,b=http://127.0.0.1:7002',
    initialAdvertisePeerUrls: name === 'a' ? 'http://127.0.0.1:7001' : 'http://127.0.0.1:7002',
    initialClusterToken: 'tok',
  });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-restore-unit-'));
    const db = path.join(dir, 'db');
    await writeEtcdDatabase(db, {
      revisions: [put(2, 'big', BIG), put(3, 'colliding', COLLIDING), put(4, 'small', SMALL), put(5, 'none', 0n)],
      leases: [
        { id: SMALL, ttl: 100, remainingTtl: 0 },
        { id: BIG, ttl: 200, remainingTtl: 0 },
        { id: COLLIDING, ttl: 300, remainingTtl: 0 },
      ],
      consistentIndex: 99,
      compactRevision: 0,
      members: [],
      removedMemberIds: [],
      alarms: [],
    });
    const bytes = await readFile(db);
    file = path.join(dir, 'snap.db');
    await writeFile(file, Buffer.concat([bytes, createHash('sha256').update(bytes).digest()]));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps ids within 2^53, gives the others their low 52 bits (the next free on a collision), and the keys follow', async () => {
    const summary = await restoreDataDir(file, flags('a'));
    expect(summary.remappedLeases).toEqual([
      { from: COLLIDING.toString(), to: LOW52.toString() },
      { from: BIG.toString(), to: (LOW52 + 1n).toString() },
    ]);
    const store = await MvccStore.open(path.join(dir, 'a', 'kv'));
    try {
      expect(await store.leases()).toEqual([
        { id: Number(SMALL), ttl: 100 },
        { id: Number(LOW52), ttl: 300 },
        { id: Number(LOW52 + 1n), ttl: 200 },
      ]);
      expect((await store.leaseKeys(Number(LOW52))).map(String)).toEqual(['colliding']);
      expect((await store.leaseKeys(Number(LOW52 + 1n))).map(String)).toEqual(['big']);
      expect((await store.leaseKeys(Number(SMALL))).map(String)).toEqual(['small']);
      expect(store.revision).toBe(5);
      // A new Raft log: the original's applied index is not kept.
      expect(store.appliedIndex).toBe(0);
      const ids = [memberIdOf(['http://127.0.0.1:7001'], 'tok'), memberIdOf(['http://127.0.0.1:7002'], 'tok')];
      expect(store.cluster()).toMatchObject({
        id: clusterIdOf(ids),
        token: 'tok',
        members: [...ids].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1)).map((id, i) => ({ id, raftId: i + 1 })),
      });
      const identity = JSON.parse(await readFile(path.join(dir, 'a', 'member.json'), 'utf8')) as unknown;
      expect(identity).toEqual({ id: ids[0], clusterId: clusterIdOf(ids) });
      expect(summary).toMatchObject({ memberId: ids[0], clusterId: clusterIdOf(ids), revision: 5, leases: 3 });
    } finally {
      await store.close();
    }
  });

  it('never writes over a data dir that is there', async () => {
    await expect(restoreDataDir(file, flags('a'))).rejects.toThrow(RestoreTargetExistsError);
    await expect(restoreDataDir(file, flags('a'))).rejects.toThrow(`data-dir "${path.join(dir, 'a')}" exists`);
  });

  it('refuses a damaged file before writing anything: no data dir, no staging left beside it', async () => {
    const bytes = await readFile(file);
    bytes[5000] = bytes[5000]! ^ 1;
    const bad = path.join(dir, 'bad.db');
    await writeFile(bad, bytes);
    const before = await readdir(dir);
    await expect(restoreDataDir(bad, flags('b'))).rejects.toThrow(SnapshotIntegrityError);
    expect(await readdir(dir)).toEqual(before);
  });
});
