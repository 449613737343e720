/**
 * The etcd backend writer read back by the etcd snapshot reader: every revision (puts with
 * every field, tombstones, sub-revisions), leases with ids across the whole int64 range, the meta
 * bucket's index and compaction point, members and removed ids, users and roles (repeated
 * fields, a READ permission's zero type, a no_password user); and snapshot status's figures.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BboltDb } from '../../src/backup/bbolt.js';
import { readEtcdSnapshot, type EtcdRevisionRecord } from '../../src/backup/etcd_snapshot.js';
import { writeEtcdDatabase } from '../../src/backup/etcd_snapshot_writer.js';
import { snapshotStatus } from '../../src/backup/snapshot_status.js';

const revisions: EtcdRevisionRecord[] = [];
for (let main = 2; main < 400; main++) {
  const key = Buffer.from(`key/${main % 37}`);
  if (main % 11 === 0) {
    revisions.push({ revision: { main, sub: 0 }, tombstone: true, key });
    continue;
  }
  for (let sub = 0; sub < (main % 3) + 1; sub++) {
    const kv = {
      key: Buffer.from(`${key}/${sub}`),
      createRevision: 2,
      modRevision: main,
      version: main - 1,
      value: Buffer.from(`v${main}.${sub}`),
      lease: main % 5 === 0 ? 0x694d_a23a_9532_e509n : 0n,
    };
    revisions.push({ revision: { main, sub }, tombstone: false, kv });
  }
}
const leases = [
  { id: 7n, ttl: 60, remainingTtl: 0 },
  { id: 0x694d_a23a_9532_e509n, ttl: 600, remainingTtl: 0 },
  { id: 0x7fff_ffff_ffff_fffen, ttl: 9_000_000_000, remainingTtl: 30 },
];
const members = [
  { id: 0x8e9e_05c5_2164_694dn, name: 'm1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: ['http://127.0.0.1:2379'], isLearner: false },
  { id: 0xffff_ffff_ffff_fff0n, name: 'm2', peerUrls: ['http://127.0.0.1:2480'], clientUrls: [], isLearner: true },
];

const auth = {
  enabled: true,
  revision: 17,
  users: [
    { name: 'alice', password: '$2a$04$ifjy9GUXU1X.L2QQzwDtvuxoty/kApklGPV66tHd69XHkhHl2vW1O', roles: ['reader', 'writer'], noPassword: false },
    { name: 'carl', password: '', roles: [], noPassword: true },
    { name: 'root', password: '$2a$04$ifjy9GUXU1X.L2QQzwDtvuxoty/kApklGPV66tHd69XHkhHl2vW1O', roles: ['root'], noPassword: false },
  ],
  roles: [
    {
      name: 'reader',
      permissions: [
        { permType: 0 as const, key: Buffer.from('app/'), rangeEnd: Buffer.from('app0') },
        { permType: 2 as const, key: Buffer.from('app/w'), rangeEnd: Buffer.alloc(0) },
      ],
    },
    { name: 'root', permissions: [] },
    { name: 'writer', permissions: [{ permType: 1 as const, key: Buffer.from('z'), rangeEnd: Buffer.from([0]) }] },
  ],
};

describe("writing etcd's backend database", () => {
  let dir: string;
  let file: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-etcd-writer-'));
    const db = path.join(dir, 'db');
    await writeEtcdDatabase(db, {
      revisions,
      leases,
      consistentIndex: 1234,
      compactRevision: 50,
      members,
      removedMemberIds: [3n],
      alarms: [{ memberId: 5n, alarm: 1 }],
      auth,
    });
    const bytes = await readFile(db);
    file = Buffer.concat([bytes, createHash('sha256').update(bytes).digest()]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is read back as written: revisions, leases (64-bit ids), meta, members', () => {
    const snap = readEtcdSnapshot(file);
    expect([...snap.revisions()]).toEqual(revisions);
    expect(snap).toMatchObject({ revisionCount: revisions.length, lastRevision: 399 });
    expect(snap.leases).toEqual(leases);
    expect(snap).toMatchObject({ consistentIndex: 1234, compactRevision: 50, scheduledCompactRevision: 50, currentRevision: 399, term: undefined });
    expect(snap.members).toEqual(members);
    expect(snap.removedMemberIds).toEqual([3n]);
    expect(snap.auth).toEqual(auth);
  });

  it("has etcd 3.4's buckets, the cluster version and the alarm", () => {
    const db = BboltDb.open(file.subarray(0, file.length - 32));
    expect(db.bucketNames().map(String)).toEqual(['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta']);
    expect(db.bucket('cluster')!.get('clusterVersion')!.toString()).toBe('3.4.0');
    // etcdserverpb.AlarmMember{MemberID: 5, Alarm: NOSPACE} as the key, as etcd's alarm store writes it.
    expect([...db.bucket('alarm')!.pairs()].map((p) => p.key.toString('hex'))).toEqual(['08051001']);
    expect(db.bucket('members_removed')!.get('3')!.toString()).toBe('removed');
  });

  it("gives snapshot status's figures: the last revision, every pair counted, the pages' size", () => {
    const status = snapshotStatus(readEtcdSnapshot(file));
    // + removed, cluster version, alarm, meta's three, auth's two, the users and the roles
    const pairs = revisions.length + leases.length + members.length + 1 + 1 + 1 + 3 + 2 + auth.users.length + auth.roles.length;
    expect(status).toMatchObject({ revision: 399, totalKey: pairs, totalSize: file.length - 32 });
    // The hash covers every pair: one value byte changed (and the file re-hashed) changes it.
    const db = Buffer.from(file.subarray(0, file.length - 32));
    const at = db.indexOf('v398.0');
    db[at + 1] = 0x39;
    expect(snapshotStatus(readEtcdSnapshot(Buffer.concat([db, createHash('sha256').update(db).digest()]))).hash).not.toBe(status.hash);
  });
});
