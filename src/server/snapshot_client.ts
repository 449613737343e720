/**
 * Store snapshots between members: a member streams its MVCC snapshot on its peer port (over
 * the peers' TLS when they have it) as length-prefixed chunks (uint32 big-endian length, then
 * the chunk), and a follower that Raft told to install a snapshot pulls it from there. Also what
 * a client's Maintenance.Snapshot receives (gRPC and gateway): etcd's backend database, in blobs
 * with etcd's remaining_bytes.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MvccStore } from '../mvcc/index.js';
import { saveEtcdDatabase } from './backup.js';
import { FRAME_HEADER_BYTES, LengthPrefixedFrames } from './frames.js';
import { fetchOver, type TlsCredentials } from '../tls.js';

export const SNAPSHOT_PATH = '/internal/v1/snapshot';
/** No single chunk of a store snapshot is anywhere near this; larger means a corrupt stream. */
const MAX_CHUNK = 256 * 1024 * 1024;

/** The frames of a store snapshot, for the HTTP route to write. */
export async function* snapshotFrames(store: MvccStore): AsyncGenerator<Buffer> {
  for await (const chunk of store.snapshot()) {
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    head.writeUInt32BE(chunk.byteLength, 0);
    yield head;
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/** Pulls a store snapshot from the member whose peer port is `peerUrl` (with the peer credentials, if TLS), yielding its chunks. */
export async function* fetchSnapshot(peerUrl: string, peerTls: TlsCredentials | undefined): AsyncGenerator<Uint8Array> {
  const res = await fetchOver(peerUrl + SNAPSHOT_PATH, {}, peerTls);
  if (!res.ok || !res.body) throw new Error(`snapshot fetch from ${peerUrl} failed: HTTP ${res.status}`);
  const frames = new LengthPrefixedFrames(MAX_CHUNK, (len) => new Error(`snapshot chunk of ${len} bytes from ${peerUrl} is too large`));
  // The body's parts are fresh buffers (one per socket read), so frames may keep views of them.
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    yield* frames.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
  }
  if (frames.pending > 0) throw new Error(`snapshot stream from ${peerUrl} ended mid-chunk`);
}

/** etcd sends its snapshot in blobs of 32 KiB. */
const SNAPSHOT_BLOB = 32 * 1024;

/** One SnapshotResponse's content. */
export interface SnapshotBlob {
  remainingBytes: number;
  blob: Buffer;
}

/**
 * The store snapshot as Maintenance.Snapshot sends it: etcd 3.4's backend database (a bbolt file,
 * src/server/backup.ts), written to a temporary file first so that every blob carries the exact
 * remaining_bytes, as etcd's do; the last blob is the SHA-256 of the database, as etcd appends
 * to its snapshot. `etcdctl snapshot save` stores it, and `etcdctl snapshot status` and
 * `snapshot restore` read it as one of etcd's (so does `qkv snapshot restore`). Stopping the
 * iteration removes the temporary files.
 */
export async function* snapshotBlobs(store: MvccStore): AsyncGenerator<SnapshotBlob> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-snapshot-'));
  try {
    const file = path.join(dir, 'snapshot.db');
    const { size } = await saveEtcdDatabase(store, file, dir);
    const hash = createHash('sha256');
    // As etcd: remaining_bytes counts the snapshot still to come after this blob; the digest
    // follows the last blob (remaining 0) in a message of its own, also remaining 0.
    let remaining = size;
    for await (const chunk of createReadStream(file, { highWaterMark: SNAPSHOT_BLOB })) {
      const blob = chunk as Buffer;
      hash.update(blob);
      remaining = Math.max(0, remaining - blob.length);
      yield { remainingBytes: remaining, blob };
    }
    yield { remainingBytes: 0, blob: hash.digest() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
