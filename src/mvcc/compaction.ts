/**
 * Compaction at revision C keeps, of each key's history at or below C, only its newest record,
 * and only if that is a put (etcd's keyIndex.compact); records above C stay.
 *
 * Applying a Compaction entry only moves the compaction point (logical compaction, atomic with
 * the entry). The deletion happens afterwards in small batches, so a compaction of millions of
 * revisions never builds one huge batch. Until it is done, readers cannot tell: reads below C
 * are refused, reads at or above C never choose a record the compaction removes, and hashKV and
 * snapshots skip such records by the same rule (`survivesCompaction`).
 *
 * The deletion is a linear walk over EVENTS from the previous compaction point up to C. Every
 * record that must go is either a delete in that window or a put superseded by a change in that
 * window, and EVENTS holds, for each change, the revision of the put it superseded. So each
 * EVENTS entry in the window yields its deletions directly, without searching HISTORY:
 *   - the superseded put (if the key was live), and
 *   - the record itself if it is a delete.
 * EVENTS entries below C are dropped too (watch replay cannot start below C); those at C stay
 * so a watch from C still sees deletes at C.
 */
import { Buffer } from 'node:buffer';
import { StoreClosedError } from './errors.js';
import { evtKey, histKey, META_KEY, parseEvtKey, REC_DEL, REC_PUT, sameHistUserKey, type HistKeyParts } from './keys.js';
import type { Lock } from '../lock.js';
import { decodeEvt, encodeMeta, type Meta } from './records.js';
import { writeBatch, type BatchOp } from '../level_batch.js';
import type { Db } from './view.js';

interface CompactionStep {
  ops: BatchOp[];
  /** Bookkeeping after the step, to write with `ops`. */
  meta: Meta;
}

/** One bounded step of physical compaction: at most `maxEntries` EVENTS entries. */
async function compactionStep(db: Db, meta: Meta, maxEntries: number): Promise<CompactionStep> {
  const m: Meta = { ...meta };
  if (m.cursor === null) {
    // A new walk, up to the compaction point as it is now. A later compaction starts another
    // walk when this one ends, from this target (whose EVENTS entries it then drops).
    m.physTarget = m.compactRev;
    m.cursor = evtKey(m.physRev, 0);
  }
  const target = m.physTarget;
  const entries = await db.iterator<Buffer, Buffer>({ gte: m.cursor, lt: evtKey(target + 1, 0), limit: maxEntries }).all();
  const ops: BatchOp[] = [];
  for (const [k, v] of entries) {
    const { main, sub } = parseEvtKey(k);
    // Entries at the previous compaction point were walked by the previous walk.
    if (main > m.physRev) {
      const e = decodeEvt(v);
      if (e.prevMain > 0) ops.push({ type: 'del', key: histKey(e.key, e.prevMain, e.prevSub, REC_PUT) });
      if (e.type === REC_DEL) ops.push({ type: 'del', key: histKey(e.key, main, sub, REC_DEL) });
    }
    if (main < target) ops.push({ type: 'del', key: k });
  }
  if (entries.length < maxEntries) {
    m.physRev = target;
    m.cursor = null;
  } else {
    const last = entries[entries.length - 1]![0];
    m.cursor = Buffer.concat([last, Buffer.from([0])]); // the smallest key after `last`
  }
  return { ops, meta: m };
}

/**
 * A filter over HISTORY records in stored order (key, then newest first) that keeps what a
 * completed compaction at `compactRev` would keep. Call it on every record, in order.
 */
export function survivesCompaction(compactRev: number): (k: Buffer, p: HistKeyParts) => boolean {
  let cur: Buffer | undefined;
  let seenCompacted = false;
  return (k, p) => {
    if (cur === undefined || !sameHistUserKey(k, cur)) {
      cur = k;
      seenCompacted = false;
    }
    if (p.main > compactRev) return true;
    if (seenCompacted) return false;
    seenCompacted = true; // the key's newest record at or below the compaction point
    return p.type === REC_PUT;
  };
}

/** What the background deletion needs from the store. */
export interface CompactorHost {
  readonly db: Db;
  readonly lock: Lock;
  readonly sync: boolean;
  /** The committed meta (read and replaced under the lock). */
  meta: Meta;
  readonly closing: boolean;
}

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Runs physical compaction in the background, one step per turn of the write lock, until the
 * deleted history reaches the compaction point. Each step's deletions and its new position are
 * one batch, so a restart resumes where it stopped.
 */
export class Compactor {
  private run: Promise<void> | undefined;
  private error: unknown;
  private waiters: Waiter[] = [];

  constructor(
    private readonly host: CompactorHost,
    private readonly stepSize: number,
  ) {}

  /** Starts the background run if there is history to delete and none is running. */
  kick(): void {
    if (this.run !== undefined || this.host.meta.physRev >= this.host.meta.compactRev) return;
    this.run = this.loop().finally(() => {
      this.run = undefined;
    });
  }

  private async loop(): Promise<void> {
    const h = this.host;
    try {
      while (!h.closing && h.meta.physRev < h.meta.compactRev) {
        await h.lock.run(async () => {
          const step = await compactionStep(h.db, h.meta, this.stepSize);
          step.ops.push({ type: 'put', key: META_KEY, value: encodeMeta(step.meta) });
          await writeBatch(h.db, step.ops, h.sync);
          h.meta = step.meta;
        });
        this.waiters = this.waiters.filter((w) => {
          if (h.meta.physRev < w.target) return true;
          w.resolve();
          return false;
        });
        // Let applies queued behind this step go first.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.error = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
    }
  }

  /** Resolves once history below the current compaction point is deleted (starting the run if needed). */
  done(): Promise<void> {
    const target = this.host.meta.compactRev;
    if (this.host.meta.physRev >= target) return Promise.resolve();
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.host.closing) return Promise.reject(new StoreClosedError());
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ target, resolve, reject }));
    this.kick();
    return p;
  }

  /** Waits for the step in progress (the host is closing), then fails the waiters. */
  async stop(): Promise<void> {
    await this.run;
    for (const w of this.waiters.splice(0)) w.reject(new StoreClosedError());
  }
}
