/**
 * Reading LevelDB through an overlay of pending writes: point gets and ordered iteration that
 * merge the two (the overlay wins for its keys).
 *
 * A read that takes several LevelDB calls (iterators) uses an explicit LevelDB snapshot, so a
 * batch landing in the middle of it cannot show it half the old state and half the new.
 */
import { Buffer } from 'node:buffer';
import type { Level } from 'level';
import type { Overlay, OverlayEntry } from './overlay.js';

export type Db = Level<Buffer, Buffer>;
export type DbSnapshot = ReturnType<Db['snapshot']>;

export interface ReadSource {
  readonly db: Db;
  readonly overlay?: Overlay | undefined;
  readonly snapshot?: DbSnapshot | undefined;
}

/** Bytes LevelDB may buffer per native iterator call: large enough that a range is a few calls. */
const HIGH_WATER_MARK = 1 << 20;

export function getRaw(src: ReadSource, key: Buffer): Buffer | undefined {
  if (src.overlay !== undefined) {
    const o = src.overlay.lookup(key);
    if (o !== undefined) return o === null ? undefined : o;
  }
  return src.snapshot === undefined ? src.db.getSync(key) : src.db.getSync(key, { snapshot: src.snapshot });
}

export interface RawEntry {
  key: Buffer;
  value: Buffer;
}

type DbIterator = ReturnType<typeof iteratorOf>;

// Only here to name the iterator type with Buffer keys and values.
function iteratorOf(db: Db) {
  return db.iterator<Buffer, Buffer>({});
}

/**
 * Forward iteration over [gte, lt), LevelDB merged with the overlay, delivered in chunks so the
 * per-entry cost stays synchronous. Values are empty buffers when `values` is false.
 */
export class MergedIterator {
  private readonly it: DbIterator;
  private readonly ov: OverlayEntry[];
  private ovPos = 0;
  private dbDone = false;
  private readonly lt: Buffer;

  constructor(
    src: ReadSource,
    gte: Buffer,
    lt: Buffer,
    private readonly values: boolean,
    private readonly chunk = 512,
  ) {
    this.lt = lt;
    this.it = src.db.iterator<Buffer, Buffer>({
      gte,
      lt,
      values,
      highWaterMarkBytes: HIGH_WATER_MARK,
      ...(src.snapshot !== undefined ? { snapshot: src.snapshot } : {}),
    });
    this.ov = src.overlay === undefined ? [] : src.overlay.range(gte, lt);
  }

  /** The next entries in order; undefined once exhausted. Never returns an empty array. */
  async nextChunk(): Promise<RawEntry[] | undefined> {
    for (;;) {
      if (this.dbDone) {
        const out: RawEntry[] = [];
        while (this.ovPos < this.ov.length && out.length < this.chunk) this.pushOv(out, this.ov[this.ovPos++]!);
        if (out.length > 0) return out;
        if (this.ovPos >= this.ov.length) return undefined;
        continue;
      }
      const batch = await this.it.nextv(this.chunk);
      if (batch.length === 0) {
        this.dbDone = true;
        continue;
      }
      const out: RawEntry[] = [];
      for (const [k, v] of batch) {
        let shadowed = false;
        while (this.ovPos < this.ov.length) {
          const o = this.ov[this.ovPos]!;
          const c = o.key.compare(k);
          if (c > 0) break;
          this.ovPos++;
          this.pushOv(out, o);
          if (c === 0) {
            shadowed = true;
            break;
          }
        }
        if (!shadowed) out.push({ key: k, value: this.values && v !== undefined ? v : EMPTY });
      }
      if (out.length > 0) return out;
    }
  }

  private pushOv(out: RawEntry[], o: OverlayEntry): void {
    if (o.value !== null) out.push({ key: o.key, value: this.values ? o.value : EMPTY });
  }

  /** Continue from the first key >= target (drop what the caller holds of the current chunk). */
  seek(target: Buffer): void {
    if (target.compare(this.lt) >= 0) {
      this.dbDone = true;
      this.ovPos = this.ov.length;
      return;
    }
    this.it.seek(target);
    this.dbDone = false;
    this.ovPos = lowerBoundEntries(this.ov, target.toString('latin1'));
  }

  async close(): Promise<void> {
    await this.it.close();
  }
}

/** Point lookups in one table, made in increasing key order, as one forward walk. */
export class ForwardLookup {
  private chunk: RawEntry[] = [];
  private pos = 0;
  private done = false;

  constructor(private readonly it: MergedIterator) {}

  async find(key: Buffer): Promise<Buffer | undefined> {
    for (;;) {
      const known = this.findInChunk(key);
      if (known !== NOT_IN_CHUNK) return known;
      if (this.done) return undefined;
      const next = await this.it.nextChunk();
      if (next === undefined) this.done = true;
      else {
        this.chunk = next;
        this.pos = 0;
      }
    }
  }

  /**
   * find's answer if the entries in hand settle it, without a LevelDB call (NOT_IN_CHUNK if
   * not): a walk over a large table then costs no promise per key.
   */
  findInChunk(key: Buffer): Buffer | undefined | typeof NOT_IN_CHUNK {
    while (this.pos < this.chunk.length) {
      const e = this.chunk[this.pos]!;
      const c = e.key.compare(key);
      if (c === 0) return e.value;
      if (c > 0) return undefined;
      this.pos++;
    }
    return this.done ? undefined : NOT_IN_CHUNK;
  }

  close(): Promise<void> {
    return this.it.close();
  }
}

export const NOT_IN_CHUNK: unique symbol = Symbol('not in chunk');

const EMPTY = Buffer.alloc(0);

function lowerBoundEntries(arr: readonly OverlayEntry[], x: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]!.skey < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
