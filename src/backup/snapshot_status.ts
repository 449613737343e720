/**
 * `snapshot status`: what etcdctl's v3Manager.Status reports of a snapshot file, computed as it
 * computes it: a CRC-32C (Castagnoli) over every top-level bucket's name and then its keys and
 * values in order, the main revision of the last key of the `key` bucket, the count of pairs in
 * all buckets, and the database's size (its pages in use). Unlike etcdctl, which only walks the
 * bbolt trees, the file is first checked as a restore checks it (its size, the sha256 after the
 * database, the buckets' contents: readEtcdSnapshot), so a status that prints means the file
 * restores.
 */
import type { Buffer } from 'node:buffer';
import { BboltDb } from './bbolt.js';
import { readEtcdSnapshot, SHA256_SIZE } from './etcd_snapshot.js';

/** etcdctl's snapshot.Status (its JSON field names). */
export interface SnapshotStatus {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

/** The reflected CRC-32C polynomial. */
const CASTAGNOLI = 0x82f63b78;

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** Extends a running CRC-32C (Go's crc32.Update with the Castagnoli table) with `bytes`. */
function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  let c = ~crc >>> 0;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The status of the snapshot file held in `file`; throws the reader's errors for a file that does not check out. */
export function snapshotStatus(file: Buffer): SnapshotStatus {
  const snap = readEtcdSnapshot(file);
  const db = BboltDb.open(file.subarray(0, file.length - SHA256_SIZE));
  let hash = 0;
  let totalKey = 0;
  for (const name of db.bucketNames()) {
    hash = crc32cUpdate(hash, name);
    for (const { key, value } of db.bucket(name)!.pairs()) {
      hash = crc32cUpdate(crc32cUpdate(hash, key), value);
      totalKey++;
    }
  }
  return { hash, revision: snap.revisions.at(-1)?.revision.main ?? 0, totalKey, totalSize: snap.db.pageCount * snap.db.pageSize };
}
