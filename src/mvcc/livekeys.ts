/**
 * Which user keys may be live: a Bloom filter over CURRENT's keys, so that applying a put of a
 * key that does not exist (an insert) skips the LevelDB lookup of its current record. On a
 * million keys in random order that lookup was over half the cost of applying a put: the key
 * is in no cache, so LevelDB probes every level's table (LevelDB's own per-table Bloom filters
 * save the data block read, not the per-level index search and the native call).
 *
 * Correctness rests on one property: the filter never says "absent" for a live key. It holds
 * every key live at the LevelDB snapshot its build scanned, plus every key inserted by a batch
 * after that snapshot (the snapshot is taken between batches, under the write lock, and from
 * then on inserts go to the filter being built as well as the one in use). A key is added while
 * its batch is being built, before the batch is written; if the write fails the key is in the
 * filter without being live, which only costs a lookup. Deleted keys stay in the filter until
 * the next build. So whatever the filter's state, the lookup it skips would have found
 * nothing: results do not depend on it, and apply stays deterministic.
 *
 * Until the first build finishes (it runs in the background after open or restore) every key
 * may be live. Memory: 10 bits per key of capacity; a build sizes the filter to twice the live
 * keys (at least `minKeys`), and once more keys than its capacity were added (inserts, counting
 * re-inserts of deleted keys) a rebuild starts, so the filter stays at a few bytes per live key.
 */
import { tableEnd, tableStart, T_CUR } from './keys.js';
import type { Lock } from '../lock.js';
import type { Db, DbSnapshot } from './view.js';

/** Bits per key of capacity: about 1% false positives at capacity with 7 probes. */
const BITS_PER_KEY = 10;
const PROBES = 7;
const TWO_POW_NEG_32 = 1 / 4294967296;
/** Keys per native iterator call of a build. */
const SCAN_CHUNK = 1024;

/** Murmur3's finalizer: spreads every input bit over the 32-bit result. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A Bloom filter over byte strings: no false negatives. */
export class BloomFilter {
  private readonly words: Uint32Array;
  private readonly bits: number;
  /** Keys added (a key added twice counts twice). */
  added = 0;

  constructor(readonly capacity: number) {
    // At most 2^31 bits (256 MiB, 200M keys), so a bit index is a non-negative int32.
    this.bits = Math.min(2 ** 31, Math.max(64, Math.ceil(capacity * BITS_PER_KEY)));
    this.words = new Uint32Array(Math.ceil(this.bits / 32));
  }

  /** Bytes the filter takes. */
  get byteLength(): number {
    return this.words.byteLength;
  }

  /** Adds `key[from..]` (from: to hash a CURRENT key as its user key without a copy). */
  add(key: Buffer, from = 0): void {
    this.added++;
    this.probe(key, from, true);
  }

  mayContain(key: Buffer, from = 0): boolean {
    return this.probe(key, from, false);
  }

  /** Double hashing (Kirsch–Mitzenmacher) over two independent FNV-style 32-bit hashes. */
  private probe(key: Buffer, from: number, set: boolean): boolean {
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    for (let i = from; i < key.length; i++) {
      const c = key[i]!;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    let h = fmix32(a);
    const step = fmix32(b) | 1;
    const words = this.words;
    const bits = this.bits;
    for (let i = 0; i < PROBES; i++) {
      // h * bits / 2^32 maps h onto [0, bits) with a multiply: `h % bits` on a uint32 above
      // 2^31 is a floating-point modulo, several times slower.
      const bit = (h * bits * TWO_POW_NEG_32) | 0;
      const mask = 1 << (bit & 31);
      if (set) words[bit >>> 5]! |= mask;
      else if ((words[bit >>> 5]! & mask) === 0) return false;
      h = (h + step) >>> 0;
    }
    return true;
  }
}

/** What a build needs from the store. */
export interface LiveKeysHost {
  readonly db: Db;
  readonly lock: Lock;
  readonly closing: boolean;
}

/** The live-key filter of a store, and its background (re)builds. */
export class LiveKeys {
  /** The filter in use; undefined until the first build finishes (every key may be live). */
  private active: BloomFilter | undefined;
  /** The filter being built: it receives inserts from its snapshot on. */
  private pending: BloomFilter | undefined;
  /** Live keys (scanned plus inserts minus deletes since), for sizing only. */
  private live = 0;
  private pendingDelta = 0;
  private run: Promise<void> | undefined;

  constructor(
    private readonly host: LiveKeysHost,
    /** Smallest capacity a build gives the filter (0: no filter, every lookup goes to LevelDB). */
    private readonly minKeys: number,
  ) {}

  /** False only when `key` is certainly not live (nor written by the batch being built). */
  mayExist(key: Buffer): boolean {
    return this.active === undefined || this.active.mayContain(key);
  }

  /** A put made `key` live (it was not). */
  inserted(key: Buffer): void {
    this.active?.add(key);
    if (this.pending !== undefined) {
      this.pending.add(key);
      this.pendingDelta++;
    }
    this.live++;
  }

  /** A delete removed a live key (it stays in the filter until the next build). */
  deleted(): void {
    this.live--;
    if (this.pending !== undefined) this.pendingDelta--;
  }

  /**
   * Live keys: exact once the first build after open has scanned CURRENT (until then, only the
   * inserts minus deletes since open).
   */
  get count(): number {
    return Math.max(0, this.live);
  }

  /** Bytes the filters take (the one in use and the one being built). */
  get byteLength(): number {
    return (this.active?.byteLength ?? 0) + (this.pending?.byteLength ?? 0);
  }

  /** Starts a build when there is no filter yet or the one in use is over capacity. */
  kick(): void {
    if (this.minKeys <= 0 || this.run !== undefined || this.host.closing) return;
    if (this.active !== undefined && this.active.added <= this.active.capacity) return;
    this.run = this.build()
      .catch((err: unknown) => {
        // Without a filter every key may be live: slower inserts, same results. The next
        // kick (after the next batch) tries again.
        if (!this.host.closing) console.error('mvcc: live-key filter build failed', err);
      })
      .finally(() => {
        this.run = undefined;
      });
  }

  /** Resolves when the build in progress (if any) has finished. */
  async ready(): Promise<void> {
    await this.run;
  }

  private async build(): Promise<void> {
    const { db, lock } = this.host;
    let capacity = Math.max(this.minKeys, this.active === undefined ? 0 : 2 * Math.max(this.live, 0));
    for (;;) {
      let snap: DbSnapshot | undefined;
      const f = new BloomFilter(capacity);
      // Between batches: the snapshot then holds every batch written so far and none of the
      // next one, whose inserts reach `f` through `pending`.
      await lock.run(async () => {
        snap = db.snapshot();
        this.pending = f;
        this.pendingDelta = 0;
      });
      let scanned = 0;
      try {
        // A keys iterator (no [key, value] pair per entry) that leaves the block cache to reads.
        const it = db.keys<Buffer>({ gte: tableStart(T_CUR), lt: tableEnd(T_CUR), snapshot: snap!, highWaterMarkBytes: 1 << 20, fillCache: false });
        try {
          for (let chunk = await it.nextv(SCAN_CHUNK); chunk.length > 0 && scanned <= capacity; chunk = await it.nextv(SCAN_CHUNK)) {
            if (this.host.closing) return;
            for (const k of chunk) f.add(k, 1);
            scanned += chunk.length;
          }
        } finally {
          await it.close();
        }
      } finally {
        await snap!.close();
        // Inserts reached `f` through every await above. From here on the code is synchronous,
        // so no batch runs between dropping `pending` and putting `f` in use.
        if (this.pending === f) this.pending = undefined;
      }
      if (this.host.closing) return;
      if (scanned <= capacity) {
        this.active = f;
        this.live = scanned + this.pendingDelta;
        return;
      }
      // More live keys than the filter was sized for (the first build on a large store):
      // start over with room for them instead of finishing an overfull filter.
      capacity = 4 * scanned;
    }
  }

  /** Waits for the build in progress (the store is closing: it stops at its next chunk). */
  async stop(): Promise<void> {
    await this.run;
    this.pending = undefined;
  }
}
