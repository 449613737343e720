/**
 * The writes of a batch not yet in LevelDB. The apply loop applies many Raft entries into one
 * LevelDB batch; each entry must see the ones before it, so every read goes through the overlay
 * first. While the batch is being written, readers outside the apply loop read through the same
 * (then sealed) overlay: its contents override LevelDB's for its keys whether or not the native
 * write has landed yet, so they see one consistent state either way.
 *
 * Bounded by the batch size. Keys are kept as latin1 strings, whose JS ordering (UTF-16 code
 * units, all < 256) is LevelDB's bytewise ordering.
 */

export interface OverlayEntry {
  readonly skey: string;
  readonly key: Buffer;
  /** null: deleted. */
  readonly value: Buffer | null;
}

export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

export class Overlay {
  private readonly map = new Map<string, OverlayEntry>();
  /** Keys in order, plus keys added since the last ordered read (merged in lazily). */
  private ordered: string[] = [];
  private unordered: string[] = [];

  /** Number of writes so far (to tell whether an operation wrote anything). */
  writes = 0;

  get size(): number {
    return this.map.size;
  }

  put(key: Buffer, value: Buffer): void {
    this.set(key, value);
  }

  del(key: Buffer): void {
    this.set(key, null);
  }

  private set(key: Buffer, value: Buffer | null): void {
    this.writes++;
    const skey = key.toString('latin1');
    if (!this.map.has(skey)) this.unordered.push(skey);
    this.map.set(skey, { skey, key, value });
  }

  /** undefined: not in the overlay; null: deleted by it. */
  lookup(key: Buffer): Buffer | null | undefined {
    const e = this.map.get(key.toString('latin1'));
    return e === undefined ? undefined : e.value;
  }

  /** Entries with gte <= key < lt, in key order (a copy: later writes do not affect it). */
  range(gte: Buffer, lt: Buffer): OverlayEntry[] {
    if (this.map.size === 0) return [];
    const keys = this.sortedKeys();
    const lo = gte.toString('latin1');
    const hi = lt.toString('latin1');
    const out: OverlayEntry[] = [];
    for (let i = lowerBound(keys, lo); i < keys.length && keys[i]! < hi; i++) out.push(this.map.get(keys[i]!)!);
    return out;
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

  /** Hands the pending writes, one per key (the last write wins), to a batch. */
  writeTo(batch: { put(key: Buffer, value: Buffer): unknown; del(key: Buffer): unknown }): void {
    for (const e of this.map.values()) {
      if (e.value === null) batch.del(e.key);
      else batch.put(e.key, e.value);
    }
  }
}

/** Index of the first element >= x in a sorted array. */
export function lowerBound(arr: readonly string[], x: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
