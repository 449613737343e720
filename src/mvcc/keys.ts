/**
 * The LevelDB key layout. LevelDB orders keys bytewise; every table is one leading byte:
 *
 *   'm'                                  -> meta (revision, compaction point, applied index)
 *   'c' key                              -> current key-value of a live key        (CURRENT)
 *   'h' esc(key) 00 01 ~main(8) ~sub(4) t -> one revision of a key (t = 'P' put / 'D' delete) (HISTORY)
 *   'e' main(8) sub(4)                   -> the change made at that revision: key, type, previous rev (EVENTS)
 *   'l' lease(8) key                     -> marks a live key attached to a lease (LEASES)
 *   'g' lease(8)                         -> a granted lease: its TTL (GRANTS)
 *
 * CURRENT needs no escaping: the user key is the whole rest of the key, so 'c'+key sorts as key.
 * HISTORY appends a suffix, so the user key is escaped (0x00 -> 00 FF) and terminated by 00 01:
 * the encoding keeps the order of user keys and no key's encoding is a prefix of another's, so a
 * range [a, b) of user keys is the range ['h'+esc(a), 'h'+esc(b)) of encoded keys. Revisions are
 * stored complemented (~x = MAX - x) so a key's newest revision comes first, which makes "latest
 * revision <= R" one seek. Numbers are big-endian so they sort numerically.
 */
import { Buffer } from 'node:buffer';

const T_META = 0x6d; // 'm'
export const T_CUR = 0x63; // 'c'
export const T_HIST = 0x68; // 'h'
export const T_EVT = 0x65; // 'e'
export const T_LEASE = 0x6c; // 'l'
export const T_GRANT = 0x67; // 'g'

export const META_KEY = Buffer.from([T_META]);

/** Record type byte at the end of a HISTORY key (and the `type` of an EVENTS record). */
export const REC_PUT = 0x50; // 'P'
export const REC_DEL = 0x44; // 'D'

const TWO32 = 0x1_0000_0000;
const MAX_MAIN = Number.MAX_SAFE_INTEGER;
const MAX_SUB = 0xffff_ffff;
/** Length of the suffix after esc(key) in a HISTORY key: terminator, ~main, ~sub, type. */
const HIST_SUFFIX = 2 + 8 + 4 + 1;

function writeU64(buf: Buffer, offset: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO32), offset);
  buf.writeUInt32BE(v % TWO32, offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO32 + buf.readUInt32BE(offset + 4);
}

/** The user key escaped: every 0x00 becomes 00 FF. */
function escapedLength(key: Buffer): number {
  let n = key.length;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) n++;
  return n;
}

function writeEscaped(out: Buffer, offset: number, key: Buffer): number {
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    out[offset++] = b;
    if (b === 0) out[offset++] = 0xff;
  }
  return offset;
}

/** Inverse of the escaping of `buf[start, end)`. */
function unescapeKey(buf: Buffer, start: number, end: number): Buffer {
  let zeros = 0;
  for (let i = start; i < end; i++) if (buf[i] === 0) zeros++;
  if (zeros === 0) return buf.subarray(start, end);
  const out = Buffer.allocUnsafe(end - start - zeros);
  let o = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    out[o++] = b;
    if (b === 0) i++; // skip the 0xFF escape byte
  }
  return out;
}

// ---- CURRENT ----

export function curKey(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1);
  out[0] = T_CUR;
  key.copy(out, 1);
  return out;
}

export function userKeyOfCur(k: Buffer): Buffer {
  return k.subarray(1);
}

// ---- HISTORY ----

/** A buffer of 'h' esc(key) followed by `extra` bytes to fill; esc(key) ends at `1 + escLen`. */
function histBuf(key: Buffer, escLen: number, extra: number): Buffer {
  const buf = Buffer.allocUnsafe(1 + escLen + extra);
  buf[0] = T_HIST;
  writeEscaped(buf, 1, key);
  return buf;
}

/** Lower bound of the encoded keys of user keys >= key. */
function histLowerBound(key: Buffer): Buffer {
  return histBuf(key, escapedLength(key), 0);
}

/** The common prefix of all HISTORY keys of `key`. */
function histKeyPrefix(key: Buffer): Buffer {
  const at = 1 + escapedLength(key);
  const buf = histBuf(key, at - 1, 2);
  buf[at] = 0x00;
  buf[at + 1] = 0x01;
  return buf;
}

/** Upper bound (exclusive) of the HISTORY keys of `key`: the terminator bumped to 00 02. */
export function histKeyPrefixEnd(key: Buffer): Buffer {
  const at = 1 + escapedLength(key);
  const buf = histBuf(key, at - 1, 2);
  buf[at] = 0x00;
  buf[at + 1] = 0x02;
  return buf;
}

/** First HISTORY key of `key` at a revision <= main (all subs of `main` included). */
export function histSeekAt(key: Buffer, main: number): Buffer {
  const at = 1 + escapedLength(key);
  const buf = histBuf(key, at - 1, 2 + 8 + 4);
  buf[at] = 0x00;
  buf[at + 1] = 0x01;
  writeU64(buf, at + 2, MAX_MAIN - main);
  buf.writeUInt32BE(0, at + 10);
  return buf;
}

export function histKey(key: Buffer, main: number, sub: number, type: number): Buffer {
  const at = 1 + escapedLength(key);
  const buf = histBuf(key, at - 1, HIST_SUFFIX);
  buf[at] = 0x00;
  buf[at + 1] = 0x01;
  writeU64(buf, at + 2, MAX_MAIN - main);
  buf.writeUInt32BE(MAX_SUB - sub, at + 10);
  buf[at + 14] = type;
  return buf;
}

export interface HistKeyParts {
  /** End offset (exclusive) of esc(key) in the encoded key; esc(key) starts at 1. */
  escEnd: number;
  main: number;
  sub: number;
  type: number;
}

export function parseHistKey(k: Buffer): HistKeyParts {
  const escEnd = k.length - HIST_SUFFIX;
  return {
    escEnd,
    main: MAX_MAIN - readU64(k, escEnd + 2),
    sub: MAX_SUB - k.readUInt32BE(escEnd + 10),
    type: k[k.length - 1]!,
  };
}

export function userKeyOfHist(k: Buffer): Buffer {
  return unescapeKey(k, 1, k.length - HIST_SUFFIX);
}

/** True when two HISTORY keys belong to the same user key. */
export function sameHistUserKey(a: Buffer, b: Buffer): boolean {
  const la = a.length - HIST_SUFFIX;
  if (la !== b.length - HIST_SUFFIX) return false;
  return a.compare(b, 1, la, 1, la) === 0;
}

// ---- EVENTS ----

export function evtKey(main: number, sub: number): Buffer {
  const buf = Buffer.allocUnsafe(13);
  buf[0] = T_EVT;
  writeU64(buf, 1, main);
  buf.writeUInt32BE(sub, 9);
  return buf;
}

export function parseEvtKey(k: Buffer): { main: number; sub: number } {
  return { main: readU64(k, 1), sub: k.readUInt32BE(9) };
}

// ---- LEASES ----

export function leasePrefix(lease: number): Buffer {
  const buf = Buffer.allocUnsafe(9);
  buf[0] = T_LEASE;
  writeU64(buf, 1, lease);
  return buf;
}

export function leaseKey(lease: number, key: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(9 + key.length);
  buf[0] = T_LEASE;
  writeU64(buf, 1, lease);
  key.copy(buf, 9);
  return buf;
}

export function grantKey(lease: number): Buffer {
  const buf = Buffer.allocUnsafe(9);
  buf[0] = T_GRANT;
  writeU64(buf, 1, lease);
  return buf;
}

export function parseGrantKey(k: Buffer): number {
  return readU64(k, 1);
}

export function parseLeaseKey(k: Buffer): { lease: number; key: Buffer } {
  return { lease: readU64(k, 1), key: k.subarray(9) };
}

/** The single byte following table `t`: the exclusive upper bound of the whole table. */
export function tableEnd(t: number): Buffer {
  return Buffer.from([t + 1]);
}

export function tableStart(t: number): Buffer {
  return Buffer.from([t]);
}

// ---- user-key ranges ----

/**
 * A request's key selection, as etcd reads (key, range_end): no range end = one key; range end
 * 0x00 = every key >= key; otherwise [key, rangeEnd) (empty when rangeEnd <= key).
 */
export type KeySpan = { kind: 'point'; key: Buffer } | { kind: 'range'; start: Buffer; end: Buffer | null };

export function keySpan(key: Buffer, rangeEnd: Buffer | undefined): KeySpan {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'point', key };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'range', start: key, end: null };
  return { kind: 'range', start: key, end: rangeEnd };
}

export function spanContains(span: KeySpan, key: Buffer): boolean {
  if (span.kind === 'point') return span.key.equals(key);
  if (Buffer.compare(key, span.start) < 0) return false;
  return span.end === null || Buffer.compare(key, span.end) < 0;
}

/** Encoded bounds of CURRENT for a range span; undefined when the span is empty. */
export function curBounds(span: KeySpan & { kind: 'range' }): { gte: Buffer; lt: Buffer } | undefined {
  if (span.end !== null && Buffer.compare(span.end, span.start) <= 0) return undefined;
  return { gte: curKey(span.start), lt: span.end === null ? tableEnd(T_CUR) : curKey(span.end) };
}

/** Encoded bounds of HISTORY for a span; undefined when the span is empty. */
export function histBounds(span: KeySpan): { gte: Buffer; lt: Buffer } | undefined {
  if (span.kind === 'point') return { gte: histKeyPrefix(span.key), lt: histKeyPrefixEnd(span.key) };
  if (span.end !== null && Buffer.compare(span.end, span.start) <= 0) return undefined;
  return { gte: histLowerBound(span.start), lt: span.end === null ? tableEnd(T_HIST) : histLowerBound(span.end) };
}
