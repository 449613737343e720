/**
 * Walking the live key-values of a key span at a revision, in key order.
 *
 * At the current revision CURRENT answers directly (one get for a key, one ordered scan for a
 * range). At an older revision the answer is in HISTORY: for each key, its newest record at or
 * below the revision, unless that record is a delete. Records of a key are newest-first, so this
 * is a forward scan that takes the first qualifying record of each key and skips the rest; when
 * a key has many records to skip, one seek jumps over them (a seek costs one native round trip,
 * about as much as reading a few dozen entries).
 */
import { CompactedError, FutureRevisionError } from './errors.js';
import {
  curBounds,
  curKey,
  histBounds,
  histKeyPrefixEnd,
  histSeekAt,
  parseHistKey,
  REC_DEL,
  sameHistUserKey,
  userKeyOfCur,
  userKeyOfHist,
  type KeySpan,
} from './keys.js';
import { histKv } from './history.js';
import { decodeCur } from './records.js';
import type { KeyValue } from '../api/kv.js';
import { getRaw, MergedIterator, type ReadSource } from './view.js';

/** A consistent read position: where to read, the revision it is at, and its compaction point. */
export interface ReadCtx {
  readonly src: ReadSource;
  /** The store's current revision as this reader sees it. */
  readonly rev: number;
  readonly compactRev: number;
}

/** Records of one key skipped in a row before a seek jumps over the rest. */
const SEEK_AFTER = 48;

/**
 * The revision a request reads at, checked in etcd's order (rangeKeys): beyond the current
 * revision is an error, 0 or negative means current, below the compaction point is an error.
 */
export function resolveReadRev(ctx: ReadCtx, requested: number | undefined): number {
  const r = requested ?? 0;
  if (r > ctx.rev) throw new FutureRevisionError();
  const rev = r <= 0 ? ctx.rev : r;
  if (rev < ctx.compactRev) throw new CompactedError();
  return rev;
}

export interface ScanOptions {
  /** Decode and visit at most this many key-values; the rest of the span is only counted. */
  decodeLimit: number;
  /** Count the whole span even past decodeLimit (etcd's Range count); otherwise stop there. */
  countAll: boolean;
  /** Called for each decoded key-value in key order; returning false stops the scan. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a visitor that returns nothing goes on, as one that returns true
  visit?: (kv: KeyValue) => boolean | void;
}

/** Visits the live key-values of `span` at `rev` (<= curRev). Returns how many were counted. */
export async function scanLive(src: ReadSource, span: KeySpan, rev: number, curRev: number, opts: ScanOptions): Promise<number> {
  return rev === curRev ? scanCurrent(src, span, opts) : scanHistory(src, span, rev, opts);
}

async function scanCurrent(src: ReadSource, span: KeySpan, opts: ScanOptions): Promise<number> {
  if (span.kind === 'point') {
    const raw = getRaw(src, curKey(span.key));
    if (raw === undefined) return 0;
    if (opts.decodeLimit > 0 && opts.visit !== undefined) opts.visit(decodeCur(span.key, raw).kv);
    return 1;
  }
  const b = curBounds(span);
  if (b === undefined) return 0;
  const it = new MergedIterator(src, b.gte, b.lt, opts.decodeLimit > 0);
  let count = 0;
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) {
        if (count < opts.decodeLimit) {
          count++;
          if (opts.visit !== undefined && opts.visit(decodeCur(userKeyOfCur(e.key), e.value).kv) === false) return count;
        } else if (opts.countAll) {
          count++;
        } else {
          return count;
        }
      }
    }
    return count;
  } finally {
    await it.close();
  }
}

async function scanHistory(src: ReadSource, span: KeySpan, rev: number, opts: ScanOptions): Promise<number> {
  const b = histBounds(span);
  if (b === undefined) return 0;
  // For one key, start right at its newest record <= rev: the first entry is the answer.
  const point = span.kind === 'point';
  const gte = point ? histSeekAt(span.key, rev) : b.gte;
  const it = new MergedIterator(src, gte, b.lt, true, point ? 1 : 512);
  let count = 0;
  let cur: Buffer | undefined; // a HISTORY key of the key being looked at
  let found = false; // its record at rev was found (later ones of the same key are older)
  let skipped = 0;
  try {
    chunks: for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) {
        const k = e.key;
        if (cur === undefined || !sameHistUserKey(k, cur)) {
          cur = k;
          found = false;
          skipped = 0;
        } else if (found) {
          if (++skipped > SEEK_AFTER) {
            it.seek(histKeyPrefixEnd(userKeyOfHist(k)));
            skipped = 0;
            continue chunks;
          }
          continue;
        }
        const p = parseHistKey(k);
        if (p.main > rev) {
          if (++skipped > SEEK_AFTER) {
            it.seek(histSeekAt(userKeyOfHist(k), rev));
            skipped = 0;
            continue chunks;
          }
          continue;
        }
        found = true;
        skipped = 0;
        if (p.type === REC_DEL) {
          if (point) return count;
          continue;
        }
        if (count < opts.decodeLimit) {
          count++;
          if (opts.visit !== undefined && opts.visit(histKv(src, userKeyOfHist(k), p.main, e.value)) === false) return count;
        } else if (opts.countAll) {
          count++;
        } else {
          return count;
        }
        if (point) return count;
      }
    }
    return count;
  } finally {
    await it.close();
  }
}
