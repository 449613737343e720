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
import { evtKey, parseEvtKey, REC_DEL, REC_PUT, histKey, sameHistUserKey, type HistKeyParts } from './keys.js';
import type { BatchOp } from './overlay.js';
import { decodeEvt, type Meta } from './records.js';
import type { Db } from './view.js';

export interface CompactionStep {
  ops: BatchOp[];
  /** Bookkeeping after the step, to write with `ops`. */
  meta: Meta;
}

/** One bounded step of physical compaction: at most `maxEntries` EVENTS entries. */
export async function compactionStep(db: Db, meta: Meta, maxEntries: number): Promise<CompactionStep> {
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
