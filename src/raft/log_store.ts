/**
 * The durable half of the Raft persistence contract (LogStore), and LevelLogStore, the LevelDB
 * implementation that members used before the WAL (wal.ts): a data directory from then is
 * migrated from it once, at start.
 *
 * Every save() is ONE LevelDB batch written with sync (fsync) before it resolves: hard state,
 * entries and snapshot of a Ready become durable together, so the messages that depend on them
 * may be sent. (A save that only moves the commit index may skip the fsync; see `sync`.) Saves
 * are serialized in call order.
 *
 * Layout (keys are bytes):
 *   'h'                    -> msgpack HardState
 *   'm'                    -> msgpack SnapshotMetadata (+ number of data chunks)
 *   'd' + uint32 BE chunk  -> snapshot data chunk
 *   'e' + uint64 BE index  -> msgpack Entry
 * Fixed-width big-endian indexes sort numerically, so the log is a contiguous key range.
 */
import { Buffer } from 'node:buffer';
import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import type { Entry, HardState, PersistentState, Snapshot, SnapshotMetadata } from './types.js';
import { RaftError } from './errors.js';
import { writeBatch, type BatchOp } from '../level_batch.js';
import { Lock } from '../lock.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const HARD_STATE_KEY = Buffer.from('h');
const SNAP_META_KEY = Buffer.from('m');
const SNAP_DATA = 0x64; // 'd'
const ENTRY = 0x65; // 'e'
/** Snapshot data is stored in pieces so no single LevelDB value is huge. */
const SNAP_CHUNK = 4 * 1024 * 1024;

export class LogStoreError extends RaftError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

function entryKey(index: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = ENTRY;
  k.writeBigUInt64BE(BigInt(index), 1);
  return k;
}

function snapDataKey(i: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = SNAP_DATA;
  k.writeUInt32BE(i, 1);
  return k;
}

function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new LogStoreError('ERR_LOG_CORRUPT', 'raft log store: entry data is not bytes');
}

function decodeEntry(raw: Buffer): Entry {
  const e = packr.unpack(raw) as Entry;
  return { term: e.term, index: e.index, type: e.type, data: toBytes(e.data) };
}

interface StoredSnapMeta {
  metadata: SnapshotMetadata;
  chunks: number;
}

export interface LogStoreUpdate {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /**
   * fsync before resolving (default true). Only a change of the commit index alone may skip it:
   * a lost commit index is re-learned from the leader (etcd's MustSync rule).
   */
  sync?: boolean;
}

/**
 * Throws ERR_LOG_GAP unless `entries` are contiguous and continue (or replace a suffix of) the
 * stored log [first, last]. Checked before anything is written: a refused save changes nothing.
 */
export function checkAppend(entries: readonly Entry[], first: number, last: number): void {
  const start = entries[0]!.index;
  entries.forEach((e, i) => {
    if (e.index !== start + i) throw new LogStoreError('ERR_LOG_GAP', `raft log store: entries not contiguous at ${e.index}`);
  });
  if (start > last + 1) throw new LogStoreError('ERR_LOG_GAP', `raft log store: entry ${start} would leave a gap after ${last}`);
  if (start < first && start <= last) {
    throw new LogStoreError('ERR_LOG_GAP', `raft log store: entry ${start} is before the first stored entry ${first}`);
  }
}

/** What RaftNode needs from stable storage. */
export interface LogStore {
  firstIndex(): number;
  lastIndex(): number;
  /** Everything a restarting node needs. */
  load(): Promise<PersistentState>;
  /** Durably writes one Ready's persistent part (all of it or nothing). */
  save(update: LogStoreUpdate): Promise<void>;
  /** Stores the application's snapshot and drops entries up to `compactIndex` (<= snapshot index). */
  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void>;
  close(): Promise<void>;
}

export class LevelLogStore implements LogStore {
  /** First stored entry index (lastIndex + 1 when the log is empty). */
  private first = 1;
  private last = 0;
  private snapIndex = 0;
  private snapChunks = 0;
  private readonly lock = new Lock();

  private constructor(private readonly db: Level<Buffer, Buffer>) {}

  static async open(dir: string): Promise<LevelLogStore> {
    await mkdir(dir, { recursive: true });
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const store = new LevelLogStore(db);
    await store.loadBounds();
    return store;
  }

  private async loadBounds(): Promise<void> {
    const meta = await this.db.get(SNAP_META_KEY);
    if (meta) {
      const m = packr.unpack(meta) as StoredSnapMeta;
      this.snapIndex = m.metadata.index;
      this.snapChunks = m.chunks;
    }
    const lo = entryKey(0);
    const hi = entryKey(Number.MAX_SAFE_INTEGER);
    const [firstKey] = await this.db.keys({ gte: lo, lt: hi, limit: 1 }).all();
    const [lastKey] = await this.db.keys({ gte: lo, lt: hi, limit: 1, reverse: true }).all();
    if (firstKey && lastKey) {
      this.first = Number(firstKey.readBigUInt64BE(1));
      this.last = Number(lastKey.readBigUInt64BE(1));
    } else {
      this.first = this.snapIndex + 1;
      this.last = this.snapIndex;
    }
  }

  firstIndex(): number {
    return this.first;
  }

  lastIndex(): number {
    return this.last;
  }

  /** Everything a restarting node needs. */
  async load(): Promise<PersistentState> {
    await this.lock.idle();
    const hsRaw = await this.db.get(HARD_STATE_KEY);
    const hardState: HardState = hsRaw ? (packr.unpack(hsRaw) as HardState) : { term: 0, vote: 0, commit: 0 };
    let snapshot: Snapshot | undefined;
    const metaRaw = await this.db.get(SNAP_META_KEY);
    if (metaRaw) {
      const m = packr.unpack(metaRaw) as StoredSnapMeta;
      const parts: Buffer[] = [];
      for (let i = 0; i < m.chunks; i++) {
        const part = await this.db.get(snapDataKey(i));
        if (!part) throw new LogStoreError('ERR_LOG_CORRUPT', `raft log store: snapshot chunk ${i} missing`);
        parts.push(part);
      }
      const data = Buffer.concat(parts);
      snapshot = { metadata: m.metadata, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }
    const entries = await this.entries(this.first, this.last + 1);
    return { hardState, ...(snapshot ? { snapshot } : {}), entries };
  }

  /** Entries in [lo, hi) as stored. */
  async entries(lo: number, hi: number): Promise<Entry[]> {
    if (hi <= lo) return [];
    const values = await this.db.values({ gte: entryKey(lo), lt: entryKey(hi) }).all();
    return values.map(decodeEntry);
  }

  /** Durably writes one Ready's persistent part (one synced batch). */
  save(update: LogStoreUpdate): Promise<void> {
    return this.lock.run(() => this.saveNow(update));
  }

  /** Stores the application's snapshot and drops entries up to `compactIndex` (<= snapshot index). */
  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    return this.lock.run(async () => {
      if (compactIndex > snapshot.metadata.index) {
        throw new LogStoreError('ERR_LOG_COMPACT', `raft log store: compact index ${compactIndex} beyond snapshot ${snapshot.metadata.index}`);
      }
      const ops: BatchOp[] = [];
      this.putSnapshotOps(ops, snapshot);
      const newFirst = Math.max(this.first, compactIndex + 1);
      for (let i = this.first; i < newFirst && i <= this.last; i++) ops.push({ type: 'del', key: entryKey(i) });
      await writeBatch(this.db, ops, true);
      this.snapIndex = snapshot.metadata.index;
      if (newFirst > this.last) {
        this.first = Math.max(newFirst, this.snapIndex + 1);
        this.last = Math.max(this.last, this.first - 1);
      } else {
        this.first = newFirst;
      }
    });
  }

  private putSnapshotOps(ops: BatchOp[], snapshot: Snapshot): void {
    const data = Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.byteLength);
    const chunks = Math.max(1, Math.ceil(data.length / SNAP_CHUNK));
    for (let i = 0; i < chunks; i++) ops.push({ type: 'put', key: snapDataKey(i), value: data.subarray(i * SNAP_CHUNK, (i + 1) * SNAP_CHUNK) });
    for (let i = chunks; i < this.snapChunks; i++) ops.push({ type: 'del', key: snapDataKey(i) });
    const meta: StoredSnapMeta = { metadata: snapshot.metadata, chunks };
    ops.push({ type: 'put', key: SNAP_META_KEY, value: packr.pack(meta) });
    this.snapChunks = chunks;
  }

  private async saveNow(update: LogStoreUpdate): Promise<void> {
    const ops: BatchOp[] = [];
    let first = this.first;
    let last = this.last;
    if (update.snapshot) {
      this.putSnapshotOps(ops, update.snapshot);
      // A received snapshot replaces the log up to its index.
      const snapIndex = update.snapshot.metadata.index;
      for (let i = first; i <= Math.min(last, snapIndex); i++) ops.push({ type: 'del', key: entryKey(i) });
      if (last <= snapIndex) {
        first = snapIndex + 1;
        last = snapIndex;
      } else {
        first = snapIndex + 1;
      }
    }
    if (update.entries.length > 0) {
      checkAppend(update.entries, first, last);
      const start = update.entries[0]!.index;
      const newLast = update.entries[update.entries.length - 1]!.index;
      // A leader replaced our suffix: stale entries beyond the new last must go.
      for (let i = newLast + 1; i <= last; i++) ops.push({ type: 'del', key: entryKey(i) });
      for (const e of update.entries) ops.push({ type: 'put', key: entryKey(e.index), value: packr.pack({ term: e.term, index: e.index, type: e.type, data: e.data }) });
      if (last < first) first = start;
      last = newLast;
    }
    if (update.hardState) ops.push({ type: 'put', key: HARD_STATE_KEY, value: packr.pack(update.hardState) });
    if (ops.length === 0) return;
    await writeBatch(this.db, ops, update.sync ?? true);
    this.first = first;
    this.last = last;
    if (update.snapshot) this.snapIndex = update.snapshot.metadata.index;
  }

  async close(): Promise<void> {
    await this.lock.idle();
    await this.db.close();
  }
}
