/**
 * Store snapshots between members: a member streams a consistent copy of its store's LevelDB
 * files on its peer port (over the peers' TLS when they have it) as length-prefixed frames
 * (uint32 big-endian length, then a kind byte and the body: a header listing the files, their
 * contents, their SHA-256), and a follower that Raft told to install a snapshot pulls it from
 * there into a staging directory, checking all of it before it opens it. Also what
 * a client's Maintenance.Snapshot receives (gRPC and gateway): etcd's backend database, in blobs
 * with etcd's remaining_bytes.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CorruptError, MvccStore, STORE_FILE_NAME } from '../mvcc/index.js';
import { syncDir } from '../sync_dir.js';
import { saveEtcdDatabase } from './backup.js';
import { FRAME_HEADER_BYTES, LengthPrefixedFrames } from './frames.js';
import { fetchOver, type TlsCredentials } from '../tls.js';

export const SNAPSHOT_PATH = '/internal/v1/snapshot';
/** No single frame of a store snapshot is anywhere near this; larger means a corrupt stream. */
const MAX_CHUNK = 256 * 1024 * 1024;
/** Bytes of file content per data frame. */
const DATA_FRAME_BYTES = 1 << 20;
const FORMAT = 'qkv-store-files';
/** The store copies being sent are directories of the data dir named so (a restart removes them). */
export const CHECKPOINT_PREFIX = 'kv.checkpoint-';
const FORMAT_VERSION = 1;
/** A frame's first byte: what it holds. */
enum Frame {
  /** JSON: { format, version, files: [{ name, size }] }, the files in the order they come. */
  Header = 0x48,
  /** The next bytes of the files' contents, one file after the other. */
  Data = 0x44,
  /** The SHA-256 of all the contents (32 bytes). */
  End = 0x45,
}

interface StoreFile {
  name: string;
  size: number;
}

function frameHead(tag: Frame, payloadBytes: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1);
  head.writeUInt32BE(payloadBytes + 1, 0);
  head[FRAME_HEADER_BYTES] = tag;
  return head;
}

/**
 * The frames of a store snapshot, for the HTTP route to write: a consistent copy of the store's
 * LevelDB files (MvccStore.checkpoint, made in a directory under `scratchParent`, which must be
 * on the store's file system, and removed at the end), sent as they are. The receiver opens its
 * own copy of them (receiveStoreFiles): the checkpoint's tables are the store's own files.
 */
export async function* snapshotFrames(store: MvccStore, scratchParent: string): AsyncGenerator<Buffer> {
  const dir = await mkdtemp(path.join(scratchParent, CHECKPOINT_PREFIX));
  try {
    await store.checkpoint(dir);
    const names = (await readdir(dir)).filter((n) => STORE_FILE_NAME.test(n)).sort();
    const files: StoreFile[] = [];
    for (const name of names) files.push({ name, size: (await stat(path.join(dir, name))).size });
    const header = Buffer.from(JSON.stringify({ format: FORMAT, version: FORMAT_VERSION, files }));
    yield frameHead(Frame.Header, header.length);
    yield header;
    const hash = createHash('sha256');
    for (const f of files) {
      let sent = 0;
      // Up to the size listed: a table still being written (one no MANIFEST names yet) may grow.
      if (f.size > 0) {
        for await (const chunk of createReadStream(path.join(dir, f.name), { highWaterMark: DATA_FRAME_BYTES, end: f.size - 1 })) {
          const data = chunk as Buffer;
          sent += data.length;
          hash.update(data);
          yield frameHead(Frame.Data, data.length);
          yield data;
        }
      }
      if (sent !== f.size) throw new Error(`store copy ${f.name} shrank while it was sent`);
    }
    const digest = hash.digest();
    yield frameHead(Frame.End, digest.length);
    yield digest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseHeader(body: Buffer): StoreFile[] {
  let h: unknown;
  try {
    h = JSON.parse(body.toString('utf8'));
  } catch {
    throw new CorruptError('store snapshot header is not JSON');
  }
  const header = h as { format?: unknown; version?: unknown; files?: unknown };
  if (header.format !== FORMAT || header.version !== FORMAT_VERSION) throw new CorruptError(`not a ${FORMAT} stream of version ${FORMAT_VERSION}`);
  if (!Array.isArray(header.files)) throw new CorruptError('store snapshot header lists no files');
  const seen = new Set<string>();
  const files = header.files.map((f: unknown): StoreFile => {
    const { name, size } = (f ?? {}) as { name?: unknown; size?: unknown };
    if (typeof name !== 'string' || !STORE_FILE_NAME.test(name) || seen.has(name))
      throw new CorruptError(`store snapshot file name ${JSON.stringify(name)} is not a LevelDB file's`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new CorruptError(`store snapshot file ${name} has a bad size`);
    seen.add(name);
    return { name, size };
  });
  if (!seen.has('CURRENT')) throw new CorruptError('store snapshot has no CURRENT file');
  return files;
}

/**
 * Writes the store snapshot that `frames` carry into `dir` (new or empty), each file fsync'd and
 * the directory too, once the whole stream checked out (names, sizes, SHA-256). Throws
 * CorruptError for a stream that is not one; `dir` then holds a partial copy the caller removes.
 */
export async function receiveStoreFiles(frames: AsyncIterable<Buffer>, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new Error(`store snapshot target ${dir} is not empty`);
  let files: StoreFile[] | undefined;
  let digest: Buffer | undefined;
  const hash = createHash('sha256');
  let index = 0;
  let written = 0;
  let out: FileHandle | undefined;
  try {
    /** Opens the next file with room left (empty files are created as they are passed). */
    const nextFile = async (): Promise<FileHandle | undefined> => {
      while (files !== undefined && index < files.length) {
        const f = files[index]!;
        if (out === undefined) {
          out = await open(path.join(dir, f.name), 'wx');
          written = 0;
        }
        if (written < f.size) return out;
        await out.sync();
        await out.close();
        out = undefined;
        index++;
      }
      return undefined;
    };
    for await (const frame of frames) {
      if (digest !== undefined) throw new CorruptError('store snapshot has data after its end');
      const tag = frame[0];
      const body = frame.subarray(1);
      if (files === undefined) {
        if (tag !== Frame.Header) throw new CorruptError('store snapshot does not start with its header');
        files = parseHeader(body);
        continue;
      }
      if (tag === Frame.End) {
        if ((await nextFile()) !== undefined) throw new CorruptError('store snapshot ended before all its files');
        digest = body;
        continue;
      }
      if (tag !== Frame.Data) throw new CorruptError(`store snapshot frame of unknown kind ${String(tag)}`);
      hash.update(body);
      let rest = body;
      while (rest.length > 0) {
        const fh = await nextFile();
        if (fh === undefined) throw new CorruptError('store snapshot carries more bytes than its files');
        const n = Math.min(rest.length, files[index]!.size - written);
        await fh.write(rest, 0, n);
        written += n;
        rest = rest.subarray(n);
      }
    }
    if (digest === undefined) throw new CorruptError('store snapshot stream ended early');
    if (!hash.digest().equals(digest)) throw new CorruptError('store snapshot sha256 mismatch');
  } finally {
    await out?.close();
  }
  await syncDir(dir);
}

/**
 * The header (value `files`) of a request to a peer's SNAPSHOT_PATH for the files stream, and of
 * the answer that is one. Members of versions before the files stream ask without it and are sent
 * the record stream they read (recordStreamFrames); they answer without it, with the record
 * stream, read here too: members of both versions catch each other up during a rolling upgrade.
 */
export const STREAM_HEADER = 'qkv-store-stream';

/**
 * The record stream of earlier versions: the store's MVCC snapshot (MvccStore.snapshot, one
 * LevelDB snapshot read record by record), its chunks length-prefixed. Sent to a member that
 * asks without STREAM_HEADER; stopping the iteration releases the LevelDB snapshot.
 */
export async function* recordStreamFrames(store: MvccStore): AsyncGenerator<Buffer> {
  for await (const chunk of store.snapshot()) {
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    head.writeUInt32BE(chunk.byteLength, 0);
    yield head;
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/** Pulls a store snapshot from the member whose peer port is `peerUrl` (with the peer credentials, if TLS): which stream it sent, and its frames. */
async function fetchSnapshot(peerUrl: string, peerTls: TlsCredentials | undefined): Promise<{ files: boolean; frames: AsyncGenerator<Buffer> }> {
  const res = await fetchOver(peerUrl + SNAPSHOT_PATH, { headers: { [STREAM_HEADER]: 'files' } }, peerTls);
  if (!res.ok || !res.body) throw new Error(`snapshot fetch from ${peerUrl} failed: HTTP ${res.status}`);
  const body = res.body as unknown as AsyncIterable<Uint8Array>;
  async function* frames(): AsyncGenerator<Buffer> {
    const split = new LengthPrefixedFrames(MAX_CHUNK, (len) => new Error(`snapshot chunk of ${len} bytes from ${peerUrl} is too large`));
    // The body's parts are fresh buffers (one per socket read), so frames may keep views of them.
    for await (const part of body) yield* split.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
    if (split.pending > 0) throw new Error(`snapshot stream from ${peerUrl} ended mid-chunk`);
  }
  return { files: res.headers.get(STREAM_HEADER) === 'files', frames: frames() };
}

/**
 * A peer's whole store received into `staging` (emptied first): the files stream checked as it
 * comes (receiveStoreFiles) and opened (its files checked), or, from a member of an earlier
 * version, its record stream rebuilt into a new store (checked record by record); synced and
 * closed. Its applied index.
 */
export async function fetchStoreInto(staging: string, peerUrl: string, peerTls: TlsCredentials | undefined): Promise<number> {
  await rm(staging, { recursive: true, force: true });
  const { files, frames } = await fetchSnapshot(peerUrl, peerTls);
  let restored: MvccStore;
  if (files) {
    await receiveStoreFiles(frames, staging);
    restored = await MvccStore.open(staging);
  } else {
    restored = await MvccStore.restore(staging, frames);
  }
  const applied = restored.appliedIndex;
  // LevelDB's open may have rewritten its MANIFEST and tables (synced); the meta record too.
  await restored.durable();
  await restored.close();
  return applied;
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
