/**
 * `snapshot status`: what etcdctl's v3Manager.Status reports of a snapshot file, computed as it
 * computes it: a CRC-32C (Castagnoli) over every top-level bucket's name and then its keys and
 * values in order, the main revision of the last key of the `key` bucket, the count of pairs in
 * all buckets, and the database's size (its pages in use). Unlike etcdctl, which only walks the
 * bbolt trees, the file is first checked as a restore checks it (its size, the sha256 after the
 * database, the buckets' contents: readEtcdSnapshot), so a status that prints means the file
 * restores.
 */
import { crc32cUpdate } from './crc32c.js';
import type { EtcdSnapshot } from './etcd_snapshot.js';

/** etcdctl's snapshot.Status (its JSON field names). */
export interface SnapshotStatus {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

/** The status of a snapshot read and checked (readEtcdSnapshot, openEtcdSnapshotFile): one more walk of every bucket. */
export function snapshotStatus(snap: EtcdSnapshot): SnapshotStatus {
  const db = snap.database;
  let hash = 0;
  let totalKey = 0;
  for (const name of db.bucketNames()) {
    hash = crc32cUpdate(hash, name);
    for (const { key, value } of db.bucket(name)!.pairs()) {
      hash = crc32cUpdate(crc32cUpdate(hash, key), value);
      totalKey++;
    }
  }
  return { hash, revision: snap.lastRevision, totalKey, totalSize: snap.db.pageCount * snap.db.pageSize };
}
