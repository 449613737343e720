/**
 * WalLogStore: the durable half of the Raft persistence contract as a write-ahead log of
 * preallocated segment files, the way etcd keeps its WAL.
 *
 * Why not LevelDB for the Raft log: a synced LevelDB write appends to a file that grows, so
 * every fdatasync also commits the file's new size to the filesystem journal, and each entry is
 * written again by LevelDB's flushes and compactions although it is read back only at start.
 * A segment here is zero-filled when created, so it never changes size while records are
 * written into it and fdatasync flushes only the data blocks.
 *
 * Every save() is ONE record written at the end of the active segment (a plain write into the
 * page cache) and then fdatasync'd before it resolves (a batch of entries on the WAL's own
 * thread, sync_thread.ts; a lone entry on the main thread: see append), unless the Ready's
 * `mustSync` is false (a commit index alone): the hard state and entries of a Ready become
 * durable together; save() resolves with the fdatasync's duration. An unsynced record is made
 * durable by the next fdatasync of its segment (the next synced save, or the rotation that closes
 * the segment). Saves are serialized in call order.
 *
 * Layout of `dir`:
 *   wal/<16 hex digits>.wal  segments in write order, each `segmentBytes` long (a record larger
 *                            than that gets a segment of its own size);
 *   snap                     the latest snapshot, its metadata and the index up to which entries
 *                            are dropped; replaced atomically (write, fsync, rename, fsync dir).
 * A record is [u32 payload length][u32 crc32 of payload][payload], the payload as encodeRecord
 * writes it. A zero length ends a segment (the rest is the zeros it was created with).
 *
 * At start the records are replayed in order: entries replace the log from their first index
 * on, the last hard state wins. A record that fails its checksum in the last segment with a
 * sector of it still all zeros is a write torn by a crash, never acknowledged: replay stops
 * there and the next record overwrites it; any other bad record (a flipped bit, or one before
 * the last segment) is damage and the store refuses to open, naming the file. The first
 * record of every segment repeats the current hard state, so segments whose entries are all
 * compacted can be deleted whole.
 */
import { Buffer } from 'node:buffer';
import { existsSync, fdatasyncSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Entry, HardState, PersistentState, Snapshot, SnapshotMetadata } from '../raft/types.js';
import { LogCompactError, LogCorruptError, LogUnsupportedError, checkAppend, type LogStore, type LogStoreUpdate } from './log_store.js';
import { Lock } from '../lock.js';
import { SyncThread } from './sync_thread.js';
import { syncDir } from '../sync_dir.js';

const HEADER_BYTES = 8;
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);
const HAS_HARD_STATE = 1;
const HAS_ENTRIES = 2;
/** term, index (float64 each), type (u8), data length (u32). */
const ENTRY_HEADER_BYTES = 21;
const HARD_STATE_BYTES = 24;

export interface WalLogStoreOptions {
  /** Bytes per segment file (default 16 MiB). */
  segmentBytes?: number;
}

interface StoredSnapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
  /** Entries up to here are dropped (the snapshot index, or less to keep a catch-up tail). */
  compactIndex: number;
}

interface Segment {
  seq: number;
  file: string;
  /** Largest entry index written into this segment (0 if none). */
  maxIndex: number;
}

/** What replaying the segments found. */
interface Replayed {
  hardState: HardState;
  entries: Entry[];
  segments: Segment[];
  /** Where the next record goes in the last segment. */
  tailOffset: number;
  /** False if bytes of a torn write lie after tailOffset. */
  tailClean: boolean;
}

const segmentName = (seq: number): string => `${seq.toString(16).padStart(16, '0')}.wal`;

function allZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZERO_CHUNK.length) {
    const part = buf.subarray(off, off + ZERO_CHUNK.length);
    if (!part.equals(ZERO_CHUNK.subarray(0, part.length))) return false;
  }
  return true;
}

/** The disk's unit of an atomic write: a crash leaves each sector either written or not. */
const SECTOR_BYTES = 512;

/**
 * Whether the bad record at [off, end) of a segment is a torn write, as etcd's WAL decides it:
 * some sector's part of the record is all zeros (never written: segments are zero-filled when
 * made). A record whose every sector was written but which fails its checksum is damage.
 */
function isTornRecord(buf: Buffer, off: number, end: number): boolean {
  const stop = Math.min(end, buf.length);
  for (let start = off; start < stop; ) {
    const chunkEnd = Math.min(stop, (Math.floor(start / SECTOR_BYTES) + 1) * SECTOR_BYTES);
    if (allZero(buf.subarray(start, chunkEnd))) return true;
    start = chunkEnd;
  }
  return false;
}

async function isEmptySegment(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead < 4 || head.readUInt32LE(0) === 0;
  } finally {
    await fh.close();
  }
}

/** Writes zeros over [from, to) of a file. */
async function zeroFill(fh: FileHandle, from: number, to: number): Promise<void> {
  for (let off = from; off < to; off += ZERO_CHUNK.length) await fh.write(ZERO_CHUNK, 0, Math.min(ZERO_CHUNK.length, to - off), off);
}

/**
 * The payload: a flags byte; the hard state (term, vote, commit as float64: exact for every
 * safe integer); the entries (count, then term, index, type, data length and data each).
 * Fixed-width fields instead of msgpack: this runs once per Ready on every member.
 */
function encodeRecord(hardState: HardState | undefined, entries: readonly Entry[]): Buffer {
  let size = 1;
  if (hardState) size += HARD_STATE_BYTES;
  if (entries.length > 0) {
    size += 4;
    for (const e of entries) size += ENTRY_HEADER_BYTES + e.data.byteLength;
  }
  const out = Buffer.allocUnsafe(HEADER_BYTES + size);
  let off = HEADER_BYTES;
  out[off++] = (hardState ? HAS_HARD_STATE : 0) | (entries.length > 0 ? HAS_ENTRIES : 0);
  if (hardState) {
    off = out.writeDoubleLE(hardState.term, off);
    off = out.writeDoubleLE(hardState.vote, off);
    off = out.writeDoubleLE(hardState.commit, off);
  }
  if (entries.length > 0) {
    off = out.writeUInt32LE(entries.length, off);
    for (const e of entries) {
      if (!(e.data instanceof Uint8Array)) throw new LogCorruptError('entry data is not bytes');
      off = out.writeDoubleLE(e.term, off);
      off = out.writeDoubleLE(e.index, off);
      out[off++] = e.type;
      off = out.writeUInt32LE(e.data.byteLength, off);
      out.set(e.data, off);
      off += e.data.byteLength;
    }
  }
  out.writeUInt32LE(size, 0);
  out.writeUInt32LE(crc32(out.subarray(HEADER_BYTES)), 4);
  return out;
}

/** Reads payloads written by encodeRecord; anything else is corruption. Entry data is copied. */
class PayloadReader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new LogCorruptError('record payload ends early');
  }

  private uint(): number {
    const v = this.buf.readDoubleLE(this.off);
    this.off += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new LogCorruptError(`bad number ${v} in a record`);
    return v;
  }

  read(): { hardState?: HardState; entries: Entry[] } {
    this.need(1);
    const flags = this.buf[this.off++]!;
    if ((flags & ~(HAS_HARD_STATE | HAS_ENTRIES)) !== 0) throw new LogCorruptError(`unknown record flags ${flags}`);
    let hardState: HardState | undefined;
    if (flags & HAS_HARD_STATE) {
      this.need(HARD_STATE_BYTES);
      hardState = { term: this.uint(), vote: this.uint(), commit: this.uint() };
    }
    const entries: Entry[] = [];
    if (flags & HAS_ENTRIES) {
      this.need(4);
      const n = this.buf.readUInt32LE(this.off);
      this.off += 4;
      for (let i = 0; i < n; i++) {
        this.need(ENTRY_HEADER_BYTES);
        const term = this.uint();
        const index = this.uint();
        const type = this.buf[this.off++]!;
        const len = this.buf.readUInt32LE(this.off);
        this.off += 4;
        this.need(len);
        const data = new Uint8Array(this.buf.subarray(this.off, this.off + len));
        this.off += len;
        entries.push({ term, index, type, data });
      }
    }
    if (this.off !== this.buf.length) throw new LogCorruptError('trailing bytes in a record');
    return hardState ? { hardState, entries } : { entries };
  }
}

/** Entries replace `log` from their first index on (a leader may have overwritten a suffix). */
function spliceEntries(log: Entry[], entries: readonly Entry[]): Entry[] {
  if (entries.length === 0) return log;
  const start = entries[0]!.index;
  const first = log[0]?.index;
  if (first === undefined || start < first || start > log[log.length - 1]!.index + 1) return entries.slice();
  log.length = start - first;
  for (const e of entries) log.push(e);
  return log;
}

export class WalLogStore implements LogStore {
  private readonly walDir: string;
  private readonly snapFile: string;
  private readonly segmentBytes: number;
  private segments: Segment[] = [];
  private fh: FileHandle | undefined;
  /** Write offset in the active (last) segment. */
  private offset = 0;
  /** The next segment, zero-filled ahead of need so that rotating does not stall a save. */
  private nextSegment: Promise<FileHandle> | undefined;
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snapshot: StoredSnapshot | undefined;
  /** What open() replayed, handed to the first load() and then dropped (the core keeps the log). */
  private replayed: Entry[] | undefined;
  private first = 1;
  private last = 0;
  private readonly lock = new Lock();
  /** Started at the first batch to sync: a store that never syncs one (a restore, a lone writer) needs no thread. */
  private syncThread: SyncThread | undefined;

  private constructor(
    private readonly dir: string,
    opts: WalLogStoreOptions,
  ) {
    this.walDir = path.join(dir, 'wal');
    this.snapFile = path.join(dir, 'snap');
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  static async open(dir: string, opts: WalLogStoreOptions = {}): Promise<WalLogStore> {
    const store = new WalLogStore(dir, opts);
    await mkdir(store.walDir, { recursive: true });
    await store.start();
    return store;
  }

  firstIndex(): number {
    return this.first;
  }

  lastIndex(): number {
    return this.last;
  }

  async load(): Promise<PersistentState> {
    await this.lock.idle();
    const entries = this.replayed ?? (await this.replay()).entries;
    this.replayed = undefined;
    const snap = this.snapshot;
    // A snapshot is committed state: the stored commit index may lag it (it is written with a
    // later record), never the other way round.
    const hardState = snap ? { ...this.hardState, commit: Math.max(this.hardState.commit, snap.metadata.index) } : { ...this.hardState };
    return { hardState, ...(snap ? { snapshot: { metadata: snap.metadata, data: snap.data } } : {}), entries };
  }

  save(update: LogStoreUpdate): Promise<number | undefined> {
    return this.serialized(() => this.saveNow(update));
  }

  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    return this.serialized(async () => {
      if (compactIndex > snapshot.metadata.index) {
        throw new LogCompactError(compactIndex, snapshot.metadata.index);
      }
      const newFirst = Math.max(this.first, compactIndex + 1);
      await this.writeSnapshot({ metadata: snapshot.metadata, data: snapshot.data, compactIndex: Math.max(compactIndex, this.snapshot?.compactIndex ?? 0) });
      if (newFirst > this.last) {
        this.first = Math.max(newFirst, snapshot.metadata.index + 1);
        this.last = Math.max(this.last, this.first - 1);
      } else {
        this.first = newFirst;
      }
      await this.deleteCompactedSegments(this.first - 1);
    });
  }

  async close(): Promise<void> {
    await this.lock.idle();
    await this.fh?.close();
    this.fh = undefined;
    const next = await this.nextSegment?.catch(() => undefined);
    await next?.close();
    this.nextSegment = undefined;
    await this.syncThread?.stop();
  }

  // ---- writing ---------------------------------------------------------------------------

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    // What open() replayed no longer describes the log.
    this.replayed = undefined;
    return this.lock.run(fn);
  }

  private async saveNow(update: LogStoreUpdate): Promise<number | undefined> {
    const snapIndex = update.snapshot?.metadata.index;
    const first = snapIndex !== undefined ? snapIndex + 1 : this.first;
    const last = snapIndex !== undefined && this.last <= snapIndex ? snapIndex : this.last;
    if (update.entries.length > 0) checkAppend(update.entries, first, last);
    if (update.snapshot) {
      // A received snapshot replaces the log up to its index; newer entries stay.
      await this.writeSnapshot({ metadata: update.snapshot.metadata, data: update.snapshot.data, compactIndex: snapIndex! });
      this.first = first;
      this.last = last;
    }
    let fsyncMs: number | undefined;
    if (update.entries.length > 0 || update.hardState) {
      fsyncMs = await this.append(encodeRecord(update.hardState, update.entries), update.mustSync ?? true, update.entries);
      if (update.hardState) this.hardState = { term: update.hardState.term, vote: update.hardState.vote, commit: update.hardState.commit };
    }
    if (update.entries.length > 0) {
      if (this.last < this.first) this.first = update.entries[0]!.index;
      this.last = update.entries[update.entries.length - 1]!.index;
    }
    if (update.snapshot) await this.deleteCompactedSegments(snapIndex!);
    return fsyncMs;
  }

  /**
   * Writes one record at the end of the log, rotating to a new segment when it does not fit;
   * with `sync`, fdatasyncs it and returns how long the fdatasync took (ms).
   */
  private async append(record: Buffer, sync: boolean, entries: readonly Entry[]): Promise<number | undefined> {
    if (!this.fh || this.offset + record.length > this.segmentBytes) await this.rotate(record.length);
    const fh = this.fh!;
    // A write into the page cache is short; the fdatasync is what takes time.
    writeSync(fh.fd, record, 0, record.length, this.offset);
    this.offset += record.length;
    if (entries.length > 0) {
      const segment = this.segments[this.segments.length - 1]!;
      segment.maxIndex = Math.max(segment.maxIndex, entries[entries.length - 1]!.index);
    }
    // A lone entry (a sequential client, an idle cluster) is synced on this thread: handing the
    // fdatasync to another thread and back costs two thread wake-ups, more than the wait blocks.
    // A batch goes to the sync thread, so the loop keeps taking requests (the next batch) meanwhile.
    let fsyncMs: number | undefined;
    if (sync && entries.length <= 1) {
      const started = performance.now();
      fdatasyncSync(fh.fd);
      fsyncMs = performance.now() - started;
    } else if (sync) {
      this.syncThread ??= new SyncThread();
      fsyncMs = await this.syncThread.sync(fh.fd);
    }
    // Half full: zero-fill the next segment in the background.
    if (!this.nextSegment && this.offset > this.segmentBytes / 2) {
      const p = this.createSegmentFile(this.segments[this.segments.length - 1]!.seq + 1, this.segmentBytes);
      p.catch(() => undefined);
      this.nextSegment = p;
    }
    return fsyncMs;
  }

  /** Makes the active segment durable and closed, and opens the next, starting with the hard state. */
  private async rotate(needed: number): Promise<void> {
    const seq = (this.segments[this.segments.length - 1]?.seq ?? 0) + 1;
    const header = encodeRecord(this.hardState, []);
    const size = Math.max(this.segmentBytes, header.length + needed + HEADER_BYTES);
    let fh: FileHandle;
    if (this.nextSegment && size === this.segmentBytes) {
      fh = await this.nextSegment;
    } else {
      await (await this.nextSegment?.catch(() => undefined))?.close();
      fh = await this.createSegmentFile(seq, size);
    }
    this.nextSegment = undefined;
    if (this.fh) {
      await this.fh.datasync();
      await this.fh.close();
    }
    this.fh = fh;
    this.segments.push({ seq, file: path.join(this.walDir, segmentName(seq)), maxIndex: 0 });
    this.writeSegmentHeader(header);
  }

  /** The first record of the active segment: the current hard state, so older segments may go. */
  private writeSegmentHeader(header = encodeRecord(this.hardState, [])): void {
    writeSync(this.fh!.fd, header, 0, header.length, 0);
    this.offset = header.length;
  }

  /** A zero-filled, fsync'd segment file, durable in its directory. */
  private async createSegmentFile(seq: number, size: number): Promise<FileHandle> {
    const file = path.join(this.walDir, segmentName(seq));
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w+');
    try {
      await zeroFill(fh, 0, size);
      await fh.sync();
      await rename(tmp, file);
      await syncDir(this.walDir);
    } catch (err) {
      await fh.close();
      throw err;
    }
    return fh;
  }

  private async writeSnapshot(s: StoredSnapshot): Promise<void> {
    const meta = Buffer.from(JSON.stringify({ metadata: s.metadata, compactIndex: s.compactIndex }));
    const body = Buffer.allocUnsafe(4 + meta.length + s.data.byteLength);
    body.writeUInt32LE(meta.length, 0);
    meta.copy(body, 4);
    body.set(s.data, 4 + meta.length);
    const head = Buffer.allocUnsafe(HEADER_BYTES);
    head.writeUInt32LE(body.length, 0);
    head.writeUInt32LE(crc32(body), 4);
    const tmp = `${this.snapFile}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writev([head, body]);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.snapFile);
    await syncDir(this.dir);
    this.snapshot = { metadata: s.metadata, data: s.data, compactIndex: s.compactIndex };
  }

  /** Deletes the oldest segments whose entries are all at or below `index` (never the active one). */
  private async deleteCompactedSegments(index: number): Promise<void> {
    let deleted = false;
    while (this.segments.length > 1 && this.segments[0]!.maxIndex <= index) {
      await rm(this.segments.shift()!.file, { force: true });
      deleted = true;
    }
    if (deleted) await syncDir(this.walDir);
  }

  // ---- start -----------------------------------------------------------------------------

  private async start(): Promise<void> {
    this.snapshot = await this.readSnapshot();
    // Leftovers of a segment being zero-filled when the process died.
    for (const n of await readdir(this.walDir)) if (n.endsWith('.tmp')) await rm(path.join(this.walDir, n), { force: true });
    // A segment made ready ahead of need but never written to: without it, the segment before
    // is the last again, where a torn write may be.
    const names = await this.segmentNames();
    while (names.length > 1 && (await isEmptySegment(path.join(this.walDir, names[names.length - 1]!)))) {
      await rm(path.join(this.walDir, names.pop()!));
      await syncDir(this.walDir);
    }
    const r = await this.replay();
    this.hardState = r.hardState;
    this.segments = r.segments;
    this.replayed = r.entries;
    const last = r.segments[r.segments.length - 1];
    if (last) {
      const fh = await open(last.file, 'r+');
      this.fh = fh;
      this.offset = r.tailOffset;
      if (!r.tailClean) {
        // Zero the torn write, so that no stale bytes lie behind the records written next.
        await zeroFill(fh, r.tailOffset, (await fh.stat()).size);
        await fh.datasync();
      }
      if (this.offset === 0) this.writeSegmentHeader();
    }
    const compactIndex = this.snapshot?.compactIndex ?? 0;
    const snapIndex = this.snapshot?.metadata.index ?? 0;
    if (r.entries.length > 0) {
      this.first = r.entries[0]!.index;
      this.last = r.entries[r.entries.length - 1]!.index;
    } else {
      this.first = Math.max(compactIndex, snapIndex) + 1;
      this.last = this.first - 1;
    }
  }

  private async segmentNames(): Promise<string[]> {
    return (await readdir(this.walDir)).filter((n) => /^[0-9a-f]{16}\.wal$/.test(n)).sort();
  }

  /** Reads every segment: the hard state and the entries after the compaction point. */
  private async replay(): Promise<Replayed> {
    const names = await this.segmentNames();
    let hardState: HardState = { term: 0, vote: 0, commit: 0 };
    let entries: Entry[] = [];
    const segments: Segment[] = [];
    let tailOffset = 0;
    let tailClean = true;
    for (let i = 0; i < names.length; i++) {
      const file = path.join(this.walDir, names[i]!);
      const isLast = i === names.length - 1;
      const buf = await readFile(file);
      const segment: Segment = { seq: parseInt(names[i]!.slice(0, 16), 16), file, maxIndex: 0 };
      let off = 0;
      while (off + HEADER_BYTES <= buf.length) {
        const len = buf.readUInt32LE(off);
        if (len === 0) break;
        const end = off + HEADER_BYTES + len;
        const body = end <= buf.length ? buf.subarray(off + HEADER_BYTES, end) : undefined;
        if (!body || crc32(body) !== buf.readUInt32LE(off + 4)) {
          // A write torn by a crash, at the end of the log, was never acknowledged; anything else
          // (a flipped bit in a record written whole, a bad record before the last segment) is
          // damage, and replaying past it would drop acknowledged entries.
          if (isLast && isTornRecord(buf, off, end)) break;
          throw new LogCorruptError(`bad record in ${file} at byte ${off}`);
        }
        const payload = new PayloadReader(body).read();
        if (payload.hardState) hardState = payload.hardState;
        if (payload.entries.length > 0) {
          entries = spliceEntries(entries, payload.entries);
          segment.maxIndex = Math.max(segment.maxIndex, payload.entries[payload.entries.length - 1]!.index);
        }
        off = end;
      }
      segments.push(segment);
      if (isLast) {
        tailOffset = off;
        tailClean = allZero(buf.subarray(off));
      }
    }
    const compactIndex = this.snapshot?.compactIndex ?? 0;
    if (entries.length > 0 && entries[0]!.index <= compactIndex) entries = entries.filter((e) => e.index > compactIndex);
    return { hardState, entries, segments, tailOffset, tailClean };
  }

  private async readSnapshot(): Promise<StoredSnapshot | undefined> {
    let buf: Buffer;
    try {
      buf = await readFile(this.snapFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    // The file is replaced by rename only once complete: a bad one is damage, not a torn write.
    const len = buf.length >= HEADER_BYTES ? buf.readUInt32LE(0) : -1;
    const body = buf.subarray(HEADER_BYTES, HEADER_BYTES + Math.max(0, len));
    if (len < 4 || body.length !== len || crc32(body) !== buf.readUInt32LE(4)) throw new LogCorruptError('bad snapshot file');
    const metaLen = body.readUInt32LE(0);
    if (4 + metaLen > body.length) throw new LogCorruptError('bad snapshot file');
    const meta = JSON.parse(body.subarray(4, 4 + metaLen).toString()) as { metadata: SnapshotMetadata; compactIndex: number };
    const data = new Uint8Array(body.subarray(4 + metaLen));
    // A snapshot written before learners existed has none.
    return { metadata: { ...meta.metadata, learners: meta.metadata.learners ?? [] }, data, compactIndex: meta.compactIndex };
  }
}

/**
 * A member's Raft log: a WAL under `<dataDir>/raftlog`. Data directories of earlier versions,
 * which kept the Raft log in LevelDB under `raft/`, are not supported: such a directory is
 * refused rather than started with an empty log beside a store that has applied entries.
 */
export async function openRaftLog(dataDir: string, opts: WalLogStoreOptions = {}): Promise<WalLogStore> {
  const walDir = path.join(dataDir, 'raftlog');
  if (existsSync(path.join(dataDir, 'raft')) && !existsSync(walDir)) {
    throw new LogUnsupportedError(dataDir);
  }
  return WalLogStore.open(walDir, opts);
}
