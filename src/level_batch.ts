/**
 * Atomic LevelDB batches, the one way the MVCC store writes.
 *
 * A chained batch hands each op to LevelDB as it comes. abstract-level's array form
 * (`db.batch(ops)`) clones every op into an object of a new shape and re-validates it first,
 * which missed V8's inline caches on every op: the largest cost of applying puts, and a tenth
 * of a member's main thread under load when the Raft log used it.
 */
import type { Level } from 'level';

export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** Anything that adds its own operations to a batch (the MVCC store's overlay of pending writes). */
export interface BatchSource {
  writeTo(batch: { put(key: Buffer, value: Buffer): unknown; del(key: Buffer): unknown }): void;
}

/** Writes `ops` (then `extra`) as one atomic batch; with `sync`, fsync'd before it resolves. */
export async function writeBatch(db: Level<Buffer, Buffer>, ops: Iterable<BatchOp> | BatchSource, sync: boolean, extra?: BatchOp): Promise<void> {
  const batch = db.batch();
  try {
    if ('writeTo' in ops) ops.writeTo(batch);
    else for (const op of ops) addOp(batch, op);
    if (extra !== undefined) addOp(batch, extra);
  } catch (err) {
    await batch.close();
    throw err;
  }
  await batch.write({ sync });
}

function addOp(batch: ReturnType<Level<Buffer, Buffer>['batch']>, op: BatchOp): void {
  if (op.type === 'put') batch.put(op.key, op.value);
  else batch.del(op.key);
}
