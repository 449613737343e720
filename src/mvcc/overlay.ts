/**
 * The writes of a batch not yet in LevelDB. The apply loop applies many Raft entries into one
 * LevelDB batch; each entry must see the ones before it, so every read goes through the overlay
 * first. While the batch is being written, readers outside the apply loop read through the same
 * (then sealed) overlay: its contents override LevelDB's for its keys whether or not the native
 * write has landed yet, so they see one consistent state either way.
 *
 * Bounded by the batch size. Keys are kept as latin1 strings, whose JS ordering (UTF-16 code
 * units, all < 256) is LevelDB's bytewise ordering.
 *
 * HISTORY and EVENTS writes (two or three of a put's four) are only appended to a log, and
 * indexed the first time a read needs those tables: applying puts reads CURRENT, never them, and
 * indexing every write (a string per key, a map entry) was a large share of a put's cost.
 */
import { Buffer } from 'node:buffer';
import { tableStart, T_EVT, T_HIST } from './keys.js';

export interface OverlayEntry {
  readonly skey: string;
  readonly key: Buffer;
  /** null: deleted. */
  readonly value: Buffer | null;
}

export class Overlay {
  private readonly map = new Map<string, OverlayEntry>();
  /** Keys in order, plus keys added since the last ordered read (merged in lazily). */
  private ordered: string[] = [];
  private unordered: string[] = [];
  /**
   * HISTORY / EVENTS writes not indexed yet, in order (the same key may appear twice), as
   * key, value, key, value...: no object per write.
   */
  private deferred: Array<Buffer | null> = [];

  /** Number of writes so far (to tell whether an operation wrote anything). */
  writes = 0;

  /** Pending writes (a key written twice may count twice). */
  get size(): number {
    return this.map.size + this.deferred.length / 2;
  }

  put(key: Buffer, value: Buffer): void {
    this.set(key, value);
  }

  del(key: Buffer): void {
    this.set(key, null);
  }

  private set(key: Buffer, value: Buffer | null): void {
    this.writes++;
    if (key[0] === T_HIST || key[0] === T_EVT) this.deferred.push(key, value);
    else this.index(key, value);
  }

  private index(key: Buffer, value: Buffer | null): void {
    const skey = key.toString('latin1');
    if (!this.map.has(skey)) this.unordered.push(skey);
    this.map.set(skey, { skey, key, value });
  }

  /** undefined: not in the overlay; null: deleted by it. */
  lookup(key: Buffer): Buffer | null | undefined {
    if (key[0] === T_HIST || key[0] === T_EVT) this.indexDeferred();
    const e = this.map.get(key.toString('latin1'));
    return e === undefined ? undefined : e.value;
  }

  /** Entries with gte <= key < lt, in key order (a copy: later writes do not affect it). */
  range(gte: Buffer, lt: Buffer): OverlayEntry[] {
    // The deferred tables lie in [T_EVT, T_HIST]; a range reaching into them indexes them.
    if (this.deferred.length > 0 && (gte.length === 0 || gte[0]! <= T_HIST) && Buffer.compare(lt, EVT_START) > 0) this.indexDeferred();
    if (this.map.size === 0) return [];
    const keys = this.sortedKeys();
    const lo = gte.toString('latin1');
    const hi = lt.toString('latin1');
    const out: OverlayEntry[] = [];
    for (let i = lowerBound(keys, lo); i < keys.length && keys[i]! < hi; i++) out.push(this.map.get(keys[i]!)!);
    return out;
  }

  private indexDeferred(): void {
    if (this.deferred.length === 0) return;
    const d = this.deferred;
    for (let i = 0; i < d.length; i += 2) this.index(d[i]!, d[i + 1] as Buffer | null);
    this.deferred = [];
  }

  private sortedKeys(): string[] {
    if (this.unordered.length > 0) {
      // Sorting only the new keys and merging keeps interleaved writes and range reads O(n) each.
      const add = this.unordered.sort();
      const old = this.ordered;
      const merged: string[] = new Array<string>(old.length + add.length);
      let i = 0;
      let j = 0;
      let k = 0;
      while (i < old.length && j < add.length) merged[k++] = old[i]! < add[j]! ? old[i++]! : add[j++]!;
      while (i < old.length) merged[k++] = old[i++]!;
      while (j < add.length) merged[k++] = add[j++]!;
      this.ordered = merged;
      this.unordered = [];
    }
    return this.ordered;
  }

  /**
   * Hands the pending writes to a batch. Within a LevelDB batch the last write of a key wins, as
   * in the overlay: indexed writes go first, one per key, then the deferred ones in order, which
   * are newer than any indexed write of the same key (indexing empties the log).
   */
  writeTo(batch: { put(key: Buffer, value: Buffer): unknown; del(key: Buffer): unknown }): void {
    for (const e of this.map.values()) {
      if (e.value === null) batch.del(e.key);
      else batch.put(e.key, e.value);
    }
    const d = this.deferred;
    for (let i = 0; i < d.length; i += 2) {
      const value = d[i + 1] as Buffer | null;
      if (value === null) batch.del(d[i]!);
      else batch.put(d[i]!, value);
    }
  }
}

const EVT_START = tableStart(T_EVT);

/** Index of the first element >= x in a sorted array. */
function lowerBound(arr: readonly string[], x: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
