/**
 * MvccStore: etcd v3's key-value state machine over LevelDB, fed by Raft's committed entries.
 *
 * Writes: `applyBatch` applies many entries into ONE LevelDB batch that also carries the meta
 * record (revision, compaction point, applied index), so after a crash the store is exactly at
 * some applied index, and entries at or below it are skipped when Raft replays them. Batches
 * (and background compaction steps) are serialized by a lock.
 *
 * A batch is visible before it is written: once its results are computed, reads see it through
 * its overlay (see overlay.ts), the apply listeners learn of its revisions, and the caller may
 * answer its clients (`onVisible`), while LevelDB writes it. The Raft log, not the store, is the
 * durable record of an applied entry, so nothing waits for that write but the next batch.
 *
 * Reads: the committed LevelDB state, plus, while a batch is being written, that batch's
 * overlay, so every read sees whole batches. Reads spanning several LevelDB calls hold a
 * LevelDB snapshot.
 *
 * Nothing is kept on the JS heap beyond the batch in progress and a Bloom filter of the live keys
 * (a few bytes per key, see livekeys.ts): LevelDB holds the data and its own bounded caches.
 */
import { copyCluster, type ClusterRecord, type MemberRecord } from './membership.js';
import { Buffer } from 'node:buffer';
import { mkdir, readdir } from 'node:fs/promises';
import { Level } from 'level';
import { applyRequest } from './apply.js';
import { checkpointLevelDb } from './checkpoint.js';
import { Compactor, type CompactorHost } from './compaction.js';
import { Lock } from '../lock.js';
import { InternalError } from '../errors.js';
import { CorruptError, InvalidArgumentError, StoreClosedError, StoreFailedError } from './errors.js';
import { eventsSince } from './events.js';
import { hashHistory } from './hash.js';
import { keySpan, META_KEY } from './keys.js';
import { leaseAttachments, leaseKeys, leaseRecords } from './lease.js';
import { LiveKeys } from './livekeys.js';
import type { Overlay } from './overlay.js';
import { pointGet, range } from './range.js';
import { decodeMeta, encodeMeta, type Meta } from './records.js';
import { resolveReadRev, type ReadCtx } from './scan.js';
import { openSnapshot, restoreInto, type StoreSnapshot } from './snapshot.js';
import { importRevisions } from './revisions.js';
import { checkPath, compareToPath, execTxn, fillTxnHeaders, isTxnReadonly } from './txn.js';
import { alarmsOf } from './alarm.js';
import type { AuthRecord } from './auth.js';
import type { AlarmMember, AlarmType, Event, RangeRequest, RangeResponse, TxnRequest, TxnResponse } from '../api/kv.js';
import type {
  ApplyEntry,
  ApplyListener,
  ApplyResult,
  EventsResult,
  HashKVResult,
  LeaseAttachment,
  LeaseRecord,
  RevisionImport,
  StoreHashResult,
} from './types.js';
import { isPlainPointGet, validateRange, validateTxn } from './validate.js';
import { writeBatch, type BatchOp } from '../level_batch.js';
import type { Db } from './view.js';
import { Batch } from './write.js';
import { verifyStoreFiles } from './verify.js';

export interface MvccStoreOptions {
  /**
   * Check the store's files before LevelDB opens them (verify.ts). Default true; false only for a
   * directory this process checked and opened itself a moment ago (a fetched copy moved into
   * place), whose files were checked or written by LevelDB since.
   */
  checkFiles?: boolean;
  /** fsync every batch. Default false: the Raft log is the durable record, the store replays it. */
  sync?: boolean;
  /**
   * LevelDB block cache bytes (default 64 MiB; LevelDB's own default of 8 MiB halves point-get
   * throughput on a million keys). Bounded: the data itself stays on disk.
   */
  cacheSize?: number;
  /** LevelDB memtable bytes (default 16 MiB). */
  writeBufferSize?: number;
  /** LevelDB table file bytes (default 2 MiB). */
  maxFileSize?: number;
  /** Snappy-compress LevelDB blocks (default true). */
  compression?: boolean;
  /** EVENTS entries per physical compaction step (default 10,000). */
  compactionStep?: number;
  /**
   * Leave the physical deletion of compacted history until compactionDone() is called, instead
   * of starting it in the background right away (default false). Reads cannot tell the
   * difference; tests use it to prove that.
   */
  deferPhysicalCompaction?: boolean;
  /**
   * Smallest capacity, in keys, of the live-key filter that lets inserts skip a LevelDB lookup
   * (default 1,048,576: 1.25 MiB; it grows with the live keys). 0 turns the filter off.
   */
  liveKeyFilterKeys?: number;
  /** Receives exceptions thrown by apply listeners (default: console.error). */
  onListenerError?: (err: unknown) => void;
  /** Told how long each batch's LevelDB write took (ms), for etcd_disk_backend_commit_duration_seconds. */
  onBatchWritten?: (ms: number) => void;
  /** Told once the store has failed (a write failed after its batch was visible, or LevelDB reported corruption on a read). */
  onFailure?: (err: StoreFailedError) => void;
}

const noop = async (): Promise<void> => undefined;

/** classic-level's code for LevelDB's Status::Corruption, on the error or its cause. */
function isLevelCorruption(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if ((e as { code?: unknown }).code === 'LEVEL_CORRUPTION') return true;
  return false;
}

/** Bounds around every key of the layout (keys.ts: each starts with a table byte between them). */
const WHOLE_RANGE = { start: Buffer.from([0x00]), end: Buffer.from([0xff]) };

/** classic-level's maintenance methods, which the `level` typings (browser-level too) do not declare. */
interface LevelMaintenance {
  approximateSize(start: Buffer, end: Buffer): Promise<number>;
  compactRange(start: Buffer, end: Buffer): Promise<void>;
}
const levelMaintenance = (db: Db): LevelMaintenance => db as unknown as LevelMaintenance;

const FRESH_META: Meta = { rev: 1, compactRev: 0, appliedIndex: 0, physRev: 0, physTarget: 0, cursor: null, alarms: [] };

export class MvccStore {
  /** Committed (durable) bookkeeping. */
  private meta: Meta;
  private readonly lock = new Lock();
  private readonly sync: boolean;
  /** The batch being written: its overlay and the meta it leads to. */
  private inflight: { overlay: Overlay; meta: Meta } | undefined;
  private readonly listeners = new Set<ApplyListener>();
  private closing = false;
  private closed = false;
  /** Set when a batch that was already visible failed to be written. */
  private failure: StoreFailedError | undefined;
  private readonly compactor: Compactor;
  private readonly liveKeys: LiveKeys;
  /** The defragments under way, if any: close waits for them (LevelDB must not close under a compaction). */
  private defragmenting: Promise<void> = Promise.resolve();

  private constructor(
    private readonly db: Db,
    meta: Meta,
    private readonly opts: MvccStoreOptions,
  ) {
    this.meta = meta;
    this.sync = opts.sync ?? false;
    const store = this; // the compactor reads and moves the committed meta under the lock
    const host: CompactorHost = {
      db,
      lock: this.lock,
      sync: this.sync,
      get meta() {
        return store.meta;
      },
      set meta(m: Meta) {
        store.meta = m;
      },
      get closing() {
        return store.closing;
      },
    };
    this.compactor = new Compactor(host, opts.compactionStep ?? 10_000);
    if (opts.deferPhysicalCompaction !== true) this.compactor.kick(); // resume after a restart
    this.liveKeys = new LiveKeys(host, opts.liveKeyFilterKeys ?? 1 << 20);
    this.liveKeys.kick(); // built from CURRENT in the background; until then inserts look up
  }

  private static async openDb(dir: string, opts: MvccStoreOptions): Promise<Db> {
    await mkdir(dir, { recursive: true });
    const db = new Level<Buffer, Buffer>(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      cacheSize: opts.cacheSize ?? 64 << 20,
      writeBufferSize: opts.writeBufferSize ?? 16 << 20,
      ...(opts.maxFileSize !== undefined ? { maxFileSize: opts.maxFileSize } : {}),
      ...(opts.compression !== undefined ? { compression: opts.compression } : {}),
    });
    await db.open();
    return db;
  }

  /**
   * Opens (or creates) the store in `dir`, after checking its files (verify.ts): a store with a bad
   * file fails with StoreFileCorruptError naming it, before LevelDB reads or rewrites anything.
   */
  static async open(dir: string, opts: MvccStoreOptions = {}): Promise<MvccStore> {
    if (opts.checkFiles ?? true) await verifyStoreFiles(dir);
    const db = await MvccStore.openDb(dir, opts);
    try {
      const raw = db.getSync(META_KEY);
      let meta: Meta;
      if (raw === undefined) {
        const any = await db.keys({ limit: 1 }).all();
        if (any.length > 0) throw new CorruptError('database has data but no meta record (an unfinished restore?)');
        meta = { ...FRESH_META };
        await db.put(META_KEY, encodeMeta(meta), { sync: true });
      } else {
        meta = decodeMeta(raw);
      }
      return new MvccStore(db, meta, opts);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /**
   * Creates a store in `dir` (missing or empty) from a snapshot stream. To replace a running
   * store, restore next to it, close it, and swap the directories.
   */
  static async restore(dir: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: MvccStoreOptions = {}): Promise<MvccStore> {
    return MvccStore.build(dir, opts, (db) => restoreInto(db, chunks));
  }

  /** A store built in `dir` (missing or empty) by `fill`, which returns its meta. */
  private static async build(dir: string, opts: MvccStoreOptions, fill: (db: Db) => Promise<Meta>): Promise<MvccStore> {
    await mkdir(dir, { recursive: true });
    if ((await readdir(dir)).length > 0) throw new InternalError(`mvcc: restore target ${dir} is not empty`);
    const db = await MvccStore.openDb(dir, opts);
    try {
      return new MvccStore(db, await fill(db), opts);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /**
   * Creates a store in `dir` (missing or empty) holding etcd's view of a store (revisions,
   * leases, a membership: a restore from a backup in etcd's format), at applied index 0.
   */
  static async importRevisions(dir: string, input: RevisionImport, opts: MvccStoreOptions = {}): Promise<MvccStore> {
    return MvccStore.build(dir, opts, (db) => importRevisions(db, input, `${dir}.sort`));
  }

  /** Waits for queued batches and the current compaction step, then closes LevelDB. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.written();
    await this.defragmenting;
    await this.compactor.stop();
    await this.liveKeys.stop();
    this.closed = true;
    await this.db.close();
  }

  /** What reads see: the batch being written, else the committed state. */
  private get visibleMeta(): Meta {
    return this.inflight?.meta ?? this.meta;
  }

  /** Revision of the last visible batch. */
  get revision(): number {
    return this.visibleMeta.rev;
  }

  get compactRevision(): number {
    return this.visibleMeta.compactRev;
  }

  /** Raft index of the last applied entry visible to reads. */
  get appliedIndex(): number {
    return this.visibleMeta.appliedIndex;
  }

  /** Raft index of the last applied entry written to LevelDB (a restart resumes after it). */
  get durableAppliedIndex(): number {
    return this.meta.appliedIndex;
  }

  private assertOpen(): void {
    if (this.failure) throw this.failure;
    if (this.closing || this.closed) throw new StoreClosedError();
  }

  // ---- writes ----

  /**
   * Applies committed Raft entries in order, in one LevelDB batch. Entries at or below the
   * stored applied index are skipped. A rejected request is an 'error' result and still counts
   * as applied. The promise rejects only on a storage failure, and then nothing was applied.
   * The promise resolves once the batch is written to LevelDB (not fsync'd). Before that, as soon
   * as the batch is visible to reads, the listeners are called and then `onVisible` with the
   * results. A write that fails after that point leaves the store failed (StoreFailedError).
   */
  applyBatch(entries: readonly ApplyEntry[], onVisible?: (results: ApplyResult[]) => void): Promise<ApplyResult[]> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.lock.run(() => this.applyLocked(entries, onVisible));
  }

  /** Resolves once every batch applied so far is written to LevelDB. */
  written(): Promise<void> {
    return this.lock.idle();
  }

  /**
   * Resolves once every batch applied so far is on disk (fsync'd), for the Raft log to drop the
   * entries behind it: LevelDB's own log holds the unsynced batches, and one synced write
   * (the applied index again) flushes it.
   */
  durable(): Promise<void> {
    return this.lock.run(async () => {
      this.assertOpen();
      await this.db.put(META_KEY, encodeMeta(this.meta), { sync: true });
    });
  }

  /** One entry; see applyBatch. */
  async apply(index: number, request?: ApplyEntry['request']): Promise<ApplyResult> {
    const [r] = await this.applyBatch([request === undefined ? { index } : { index, request }]);
    return r!;
  }

  private async applyLocked(entries: readonly ApplyEntry[], onVisible?: (results: ApplyResult[]) => void): Promise<ApplyResult[]> {
    if (this.failure) throw this.failure; // queued behind a batch whose write failed
    const b = new Batch(this.db, { ...this.meta }, this.liveKeys);
    const results: ApplyResult[] = [];
    for (const e of entries) {
      if (!Number.isSafeInteger(e.index) || e.index <= 0) throw new InternalError(`mvcc: bad entry index ${e.index}`);
      if (e.index <= b.meta.appliedIndex) {
        results.push({ status: 'skipped' });
        continue;
      }
      const r = applyRequest(b, e.request, e.caller); // a put's result comes back synchronously
      results.push(r instanceof Promise ? await r : r);
      b.meta.appliedIndex = e.index;
    }
    if (b.meta.appliedIndex === this.meta.appliedIndex) {
      onVisible?.(results);
      return results;
    }
    const meta: BatchOp = { type: 'put', key: META_KEY, value: encodeMeta(b.meta) };
    this.inflight = { overlay: b.overlay, meta: b.meta };
    for (const r of b.revisions) this.emit(r.revision, r.events);
    onVisible?.(results);
    try {
      const started = performance.now();
      await writeBatch(this.db, b.overlay, this.sync, meta);
      this.opts.onBatchWritten?.(performance.now() - started);
    } catch (err) {
      // Reads and listeners have seen this batch: falling back to the state before it would
      // show them history going backwards.
      throw this.fail(err as Error);
    } finally {
      this.inflight = undefined;
    }
    this.meta = b.meta;
    if (this.opts.deferPhysicalCompaction !== true) this.compactor.kick();
    this.liveKeys.kick(); // a rebuild if the filter is over capacity
    return results;
  }

  /** The store fails once: every read and write refused from now on, the owner told. */
  private fail(cause: Error): StoreFailedError {
    if (this.failure) return this.failure;
    this.failure = new StoreFailedError(cause);
    this.opts.onFailure?.(this.failure);
    return this.failure;
  }

  /**
   * Runs a read; LevelDB reporting corruption (a block it cannot decode: damage since the check
   * at open, or what that check cannot see) fails the store instead of answering anything more.
   */
  private async guarded<T>(f: () => Promise<T> | T): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw isLevelCorruption(err) ? this.fail(err as Error) : err;
    }
  }

  /** Registers a listener of applied revisions; returns its removal. */
  onApply(listener: ApplyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(revision: number, events: readonly Event[]): void {
    for (const l of this.listeners) {
      try {
        l(revision, events);
      } catch (err) {
        (this.opts.onListenerError ?? ((e: unknown) => console.error('mvcc: apply listener failed', e)))(err);
      }
    }
  }

  /**
   * Resolves once the live-key filter build in progress (after open, restore, or growth) is
   * done; benchmarks and tests use it to measure or check the built filter.
   */
  liveKeyFilterReady(): Promise<void> {
    return this.liveKeys.ready();
  }

  /**
   * Live keys (etcd_debugging_mvcc_keys_total), kept by the live-key filter: exact once its first
   * scan after open has finished, until then the inserts minus deletes since open.
   */
  get keyCount(): number {
    return this.liveKeys.count;
  }

  /** Bytes the live-key filter takes on the JS heap. */
  get liveKeyFilterBytes(): number {
    return this.liveKeys.byteLength;
  }

  /** Resolves once history below the current compaction point is physically deleted. */
  compactionDone(): Promise<void> {
    return this.compactor.done();
  }

  // ---- reads ----

  /** A read position at the latest visible state; `snapshot` pins LevelDB for multi-call reads. */
  private beginRead(snapshot: boolean): { ctx: ReadCtx; end: () => Promise<void> } {
    this.assertOpen();
    const inflight = this.inflight;
    const meta = inflight?.meta ?? this.meta;
    const snap = snapshot ? this.db.snapshot() : undefined;
    return {
      ctx: { src: { db: this.db, overlay: inflight?.overlay, snapshot: snap }, rev: meta.rev, compactRev: meta.compactRev },
      end: snap === undefined ? noop : () => snap.close(),
    };
  }

  private read<T>(snapshot: boolean, f: (ctx: ReadCtx) => Promise<T>): Promise<T> {
    return this.guarded(async () => {
      const { ctx, end } = this.beginRead(snapshot);
      try {
        return await f(ctx);
      } finally {
        await end();
      }
    });
  }

  /** etcd Range (serializable: on this replica's applied state). */
  async range(req: RangeRequest): Promise<RangeResponse> {
    if (isPlainPointGet(req)) {
      return this.guarded(() => {
        const { ctx } = this.beginRead(false);
        return pointGet(ctx.src, ctx.rev, req);
      });
    }
    validateRange(req);
    // One key at the current revision is a single LevelDB get: no snapshot needed.
    const point = (req.rangeEnd === undefined || req.rangeEnd.length === 0) && (req.revision ?? 0) <= 0;
    if (point) return this.guarded(() => range(this.beginRead(false).ctx, req));
    return this.read(true, (ctx) => range(ctx, req));
  }

  /** A read-only txn evaluated locally (etcd serves serializable read-only txns this way). */
  async readTxn(req: TxnRequest): Promise<TxnResponse> {
    validateTxn(req);
    if (!isTxnReadonly(req)) throw new InternalError('mvcc: readTxn takes read-only txns; writes go through Raft');
    return this.read(true, async (ctx) => {
      const path = await compareToPath(ctx, req);
      checkPath(ctx, req, path, false, undefined);
      const resp = await execTxn(undefined, () => ctx, req, path);
      fillTxnHeaders(resp, ctx.rev);
      return resp;
    });
  }

  /**
   * Changes from `startRevision` on (watch replay), for one key, a range, or everything from a
   * key (rangeEnd 0x00). Whole revisions only: stops after the revision in which `limit` events
   * were reached, or `scanLimit` changes were looked at (default 100,000); continue from
   * `nextRevision`. Fails with CompactedError when startRevision is below the compaction point.
   */
  async eventsSince(
    startRevision: number,
    key: Buffer,
    rangeEnd?: Buffer,
    opts: { limit?: number; prevKv?: boolean; scanLimit?: number } = {},
  ): Promise<EventsResult> {
    if (!Number.isSafeInteger(startRevision)) throw new InvalidArgumentError('startRevision must be a safe integer');
    // etcd's watch server turns an empty key into "\0", the smallest key.
    const span = keySpan(key.length === 0 ? Buffer.from([0]) : key, rangeEnd);
    const o = { limit: opts.limit ?? 0, prevKv: opts.prevKv ?? false, scanLimit: opts.scanLimit ?? 100_000 };
    return this.read(true, (ctx) => eventsSince(ctx, startRevision, span, o));
  }

  /** etcd HashKV: a hash of the history from the compaction point up to `revision` (0: current). */
  async hashKV(revision = 0): Promise<HashKVResult> {
    return this.read(true, async (ctx) => {
      const rev = resolveReadRev(ctx, revision);
      const hash = await hashHistory(ctx.src, rev, ctx.compactRev);
      return { header: { revision: ctx.rev }, hash, compactRevision: ctx.compactRev, revision: rev };
    });
  }

  /**
   * Maintenance.Hash: a hash of the whole store's replicated state (data, history, leases,
   * alarms) at the latest written batch; see StoreSnapshot.hash.
   */
  async hash(): Promise<StoreHashResult> {
    return this.guarded(async () => {
      const snap = this.snapshot();
      return { revision: snap.revision, hash: await snap.hash() };
    });
  }

  /** The membership as applied (membership.ts), a copy; undefined before seedCluster. */
  cluster(): ClusterRecord | undefined {
    this.assertOpen();
    const c = this.visibleMeta.cluster;
    return c ? copyCluster(c) : undefined;
  }

  /**
   * One member of the applied membership, in place (no copy of the table, unlike cluster(): the
   * per-request learner check and response headers ask it). A membership change replaces the
   * table, never changes it, so what this returns is never changed under its caller.
   */
  clusterMember(match: (m: Readonly<MemberRecord>) => boolean): Readonly<MemberRecord> | undefined {
    this.assertOpen();
    return this.visibleMeta.cluster?.members.find(match);
  }

  /** The applied membership's cluster id, without copying the table; undefined before seedCluster. */
  get clusterId(): string | undefined {
    this.assertOpen();
    return this.visibleMeta.cluster?.id;
  }

  /**
   * Records the membership the cluster starts from, before any entry is applied (a new
   * cluster's initial members, or what a joining member learned from the cluster). Synced: the
   * Raft node starts from it. A store that has a membership keeps it.
   */
  seedCluster(cluster: ClusterRecord): Promise<void> {
    return this.lock.run(async () => {
      this.assertOpen();
      if (this.meta.cluster) return;
      const meta: Meta = { ...this.meta, cluster: copyCluster(cluster) };
      await this.db.put(META_KEY, encodeMeta(meta), { sync: true });
      this.meta = meta;
    });
  }

  /** The auth state as applied (auth.ts), undefined while no auth change was ever applied. Never mutated: read it, do not change it. */
  auth(): AuthRecord | undefined {
    this.assertOpen();
    return this.visibleMeta.auth;
  }

  /** Active alarms of `type` (NONE: all), in order (by type, then member id): etcd's AlarmStore.Get. */
  alarms(type: AlarmType = 'NONE'): AlarmMember[] {
    this.assertOpen();
    return alarmsOf(this.visibleMeta.alarms, type);
  }

  /**
   * A point-in-time snapshot of the whole store; iterate it for the chunks (once), or close it.
   * Its revision, compaction point and applied index are those of the data it streams.
   */
  snapshot(): StoreSnapshot {
    this.assertOpen();
    return openSnapshot(this.db);
  }

  /**
   * A consistent copy of the store's LevelDB files in `target` (a directory on the same file
   * system, removed first), taken while writes go on: see checkpoint.ts. Its applied index is at
   * least the one written when it was called.
   */
  async checkpoint(target: string): Promise<void> {
    this.assertOpen();
    await checkpointLevelDb(this.db.location, target);
  }

  /** Live keys attached to `lease`. */
  async leaseKeys(lease: number): Promise<Buffer[]> {
    if (!Number.isSafeInteger(lease) || lease < 0) throw new InvalidArgumentError('lease must be a non-negative safe integer');
    return this.read(true, (ctx) => leaseKeys(ctx.src, lease));
  }

  /** Granted leases, by id (the lessor loads them on start). */
  async leases(): Promise<LeaseRecord[]> {
    return this.read(true, (ctx) => leaseRecords(ctx.src));
  }

  /**
   * LevelDB's estimate of the bytes the store's table files take for the whole key range. It
   * leaves out what is still only in the write-ahead log (the memtable), and counts overwritten
   * and deleted records until LevelDB compacts the tables holding them.
   */
  async approximateSize(): Promise<number> {
    this.assertOpen();
    return levelMaintenance(this.db).approximateSize(WHOLE_RANGE.start, WHOLE_RANGE.end);
  }

  /**
   * etcd's defragment, for LevelDB: waits for the physical deletion of compacted history, then
   * has LevelDB compact the whole key range, which writes the memtable out and rewrites the
   * tables without the overwritten and deleted records (and so their files' space is freed), as
   * bbolt's defrag rewrites the file without its free pages. Reads and writes go on meanwhile:
   * LevelDB compacts beside them, unlike bbolt's defrag, which holds every transaction.
   *
   * Twice, with a meta write between: LevelDB's CompactRange merges each level only into the
   * next one down to the deepest level that had files when it began, and it may place the
   * memtable it writes out at that deepest level (up to level 2, when nothing there overlaps),
   * where nothing merges it: a small store's whole history would stay. The second pass writes
   * out a table holding only the meta key, which every memtable holds (every batch writes it), so
   * it overlaps such a table and is merged into it, rewriting it without its dead records.
   */
  async defragment(): Promise<void> {
    this.assertOpen();
    const run = (async () => {
      await this.compactionDone();
      await levelMaintenance(this.db).compactRange(WHOLE_RANGE.start, WHOLE_RANGE.end);
      await this.durable();
      await levelMaintenance(this.db).compactRange(WHOLE_RANGE.start, WHOLE_RANGE.end);
    })();
    const settled = run.catch(() => undefined);
    this.defragmenting = Promise.all([this.defragmenting, settled]).then(noop);
    return run;
  }

  /** Every (key, lease) pair of live keys with a lease, by lease then key, in chunks. */
  async *leaseAttachments(): AsyncGenerator<LeaseAttachment[]> {
    const { ctx, end } = this.beginRead(true);
    try {
      yield* leaseAttachments(ctx.src);
    } finally {
      await end();
    }
  }
}
