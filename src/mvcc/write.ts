/**
 * Writing one revision into a batch under construction.
 *
 * A put of key k at revision (main, sub) writes:
 *   CURRENT[k]               = the new key-value (with the sub, so a later change can point at it)
 *   HISTORY[k, main, sub, P] = a marker without the value (the value is in CURRENT)
 *   HISTORY[k, old rev]      = rewritten with the old value, if k was live (see history.ts)
 *   EVENTS[main, sub]        = k, put, and the revision of the put it superseded (if k was live)
 *   LEASES                   = moved from the old lease to the new one when they differ
 * A delete removes CURRENT[k] and its lease mark, gives the old HISTORY record its value, and
 * writes a delete record in HISTORY and EVENTS. So an insert writes its value once, and every
 * value is written at most twice.
 *
 *
 * The superseded-revision pointer in EVENTS is what makes compaction a linear walk (see
 * compaction.ts) and gives watch replay its prev_kv without a search.
 */
import { curKey, evtKey, grantKey, histKey, leaseKey, REC_DEL, REC_PUT } from './keys.js';
import type { LiveKeys } from './livekeys.js';
import { Overlay } from './overlay.js';
import { decodeCur, EMPTY, encodeCur, encodeEvt, encodeHistFull, encodeHistMarker, type CurrentRecord, type Meta } from './records.js';
import type { ReadCtx } from './scan.js';
import type { Event, KeyValue } from '../api/kv.js';
import { getRaw, type Db, type ReadSource } from './view.js';

/** The state of a batch being applied: pending writes and the bookkeeping they lead to. */
export class Batch {
  readonly overlay = new Overlay();
  /** Changes of each new revision, in order, for the apply listeners. */
  readonly revisions: Array<{ revision: number; events: Event[] }> = [];
  readonly src: ReadSource;
  /** Lease existence from the store's own GRANTS, which include grants earlier in this batch. */
  readonly leaseCheck: (lease: number) => boolean;

  constructor(
    readonly db: Db,
    readonly meta: Meta,
    /** Tells keys that are certainly not live, whose CURRENT lookup can be skipped. */
    private readonly liveKeys: LiveKeys,
  ) {
    this.src = { db, overlay: this.overlay };
    this.leaseCheck = (lease) => getRaw(this.src, grantKey(lease)) !== undefined;
  }

  /** A read position at the batch's current state. */
  readCtx(rev = this.meta.rev): ReadCtx {
    return { src: this.src, rev, compactRev: this.meta.compactRev };
  }

  /** The key's record in CURRENT as of the batch so far; `ck` is curKey(key) if at hand. */
  currentRecord(key: Buffer, ck = curKey(key)): CurrentRecord | undefined {
    let raw = this.overlay.lookup(ck);
    if (raw === undefined) {
      // Not written by this batch: the filter knows every key live before it (see livekeys.ts).
      raw = this.liveKeys.mayExist(key) ? this.db.getSync(ck) : undefined;
    }
    return raw === undefined || raw === null ? undefined : decodeCur(key, raw);
  }

  /** Keeps the live-key filter in step with a put or delete of this batch. */
  keyInserted(key: Buffer): void {
    this.liveKeys.inserted(key);
  }

  keyDeleted(): void {
    this.liveKeys.deleted();
  }
}

/**
 * The writes of one revision (a Put, a DeleteRange or a whole Txn). Every write gets the same
 * main revision and the next sub-revision. The revision only counts if something was written.
 */
export class RevisionWriter {
  readonly rev: number;
  private sub = 0;
  private readonly events: Event[] = [];

  constructor(private readonly batch: Batch) {
    this.rev = batch.meta.rev + 1;
  }

  get changed(): boolean {
    return this.sub > 0;
  }

  /** The revision reads inside this write see: its own if it already wrote (etcd storeTxnWrite). */
  get readRev(): number {
    return this.changed ? this.rev : this.batch.meta.rev;
  }

  readCtx(): ReadCtx {
    return this.batch.readCtx(this.readRev);
  }

  current(key: Buffer): CurrentRecord | undefined {
    return this.batch.currentRecord(key);
  }

  /** Puts a key; `known` passes its current record when the caller already read it. */
  put(key: Buffer, value: Buffer, lease: number, known?: { old: CurrentRecord | undefined }): void {
    const ck = curKey(key);
    const old = known !== undefined ? known.old : this.batch.currentRecord(key, ck);
    if (old === undefined) this.batch.keyInserted(key);
    const sub = this.sub++;
    const kv: KeyValue = {
      key,
      value,
      createRevision: old === undefined ? this.rev : old.kv.createRevision,
      modRevision: this.rev,
      version: old === undefined ? 1 : old.kv.version + 1,
      lease,
    };
    const ov = this.batch.overlay;
    ov.put(ck, encodeCur(kv, sub));
    ov.put(histKey(key, this.rev, sub, REC_PUT), encodeHistMarker(kv));
    if (old !== undefined) ov.put(histKey(key, old.kv.modRevision, old.modSub, REC_PUT), encodeHistFull(old.kv));
    ov.put(evtKey(this.rev, sub), encodeEvt(key, REC_PUT, old?.kv.modRevision ?? 0, old?.modSub ?? 0));
    const oldLease = old?.kv.lease ?? 0;
    if (oldLease !== lease) {
      if (oldLease !== 0) ov.del(leaseKey(oldLease, key));
      if (lease !== 0) ov.put(leaseKey(lease, key), EMPTY);
    }
    this.events.push(old === undefined ? { type: 'PUT', kv } : { type: 'PUT', kv, prevKv: old.kv });
  }

  /** Deletes a live key; `old` is its current record. */
  del(old: CurrentRecord): void {
    const key = old.kv.key;
    const sub = this.sub++;
    const ov = this.batch.overlay;
    this.batch.keyDeleted();
    ov.del(curKey(key));
    ov.put(histKey(key, old.kv.modRevision, old.modSub, REC_PUT), encodeHistFull(old.kv));
    ov.put(histKey(key, this.rev, sub, REC_DEL), EMPTY);
    ov.put(evtKey(this.rev, sub), encodeEvt(key, REC_DEL, old.kv.modRevision, old.modSub));
    if (old.kv.lease !== 0) ov.del(leaseKey(old.kv.lease, key));
    this.events.push({ type: 'DELETE', kv: tombstoneKv(key, this.rev), prevKv: old.kv });
  }

  /** Ends the write: the batch moves to the new revision if anything was written. */
  commit(): void {
    if (!this.changed) return;
    this.batch.meta.rev = this.rev;
    this.batch.revisions.push({ revision: this.rev, events: this.events });
  }
}

/** The kv of a DELETE event, as etcd reports tombstones: the key and the delete's revision. */
export function tombstoneKv(key: Buffer, rev: number): KeyValue {
  return { key, value: EMPTY, createRevision: 0, modRevision: rev, version: 0, lease: 0 };
}
