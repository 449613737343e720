/**
 * Reading HISTORY put records. The record of a key's current version holds no value (the value
 * is in CURRENT, so an insert writes it once); when the version is superseded or deleted, the
 * same write rewrites the record with its value. So a record without a value is always its
 * key's current version, and CURRENT has the value.
 */
import { CorruptError } from './errors.js';
import { curKey, REC_PUT, tableEnd, tableStart, T_CUR, userKeyOfHist, type HistKeyParts } from './keys.js';
import { decodeCur, decodeHistPut, encodeHistFull, type HistPut } from './records.js';
import type { KeyValue } from '../api/kv.js';
import { ForwardLookup, getRaw, MergedIterator, NOT_IN_CHUNK, type ReadSource } from './view.js';

/** The key-value a HISTORY put record stands for, its value fetched from CURRENT if need be. */
export function histKv(src: ReadSource, key: Buffer, modRevision: number, raw: Buffer): KeyValue {
  return kvWithCurrent(key, modRevision, decodeHistPut(raw), () => getRaw(src, curKey(key)));
}

/**
 * HISTORY put records as they are once superseded, whatever their form on disk: what hashKV
 * hashes and snapshots carry, so they do not depend on which version happens to be current.
 * For a walk over HISTORY in key order: a current-version marker takes its value from CURRENT,
 * walked alongside (both tables are in user-key order), not looked up once per key.
 */
export class FullHistoryReader {
  private readonly current: ForwardLookup;

  constructor(src: ReadSource) {
    this.current = new ForwardLookup(new MergedIterator(src, tableStart(T_CUR), tableEnd(T_CUR), true, 1024));
  }

  /** The record `raw` at HISTORY key `k` (parsed: `p`); calls must come in key order. */
  bytes(k: Buffer, p: HistKeyParts, raw: Buffer): Buffer | Promise<Buffer> {
    if (p.type !== REC_PUT) return raw;
    const h = decodeHistPut(raw);
    if (h.value !== undefined) return raw;
    const kv = this.withCurrent(k, p, h);
    return kv instanceof Promise ? kv.then(encodeHistFull) : encodeHistFull(kv);
  }

  /** The key-value the put record `raw` at HISTORY key `k` (parsed: `p`) stands for, decoded (no record re-encoded); calls in key order. */
  put(k: Buffer, p: HistKeyParts, raw: Buffer): KeyValue | Promise<KeyValue> {
    const h = decodeHistPut(raw);
    if (h.value === undefined) return this.withCurrent(k, p, h);
    return { key: userKeyOfHist(k), value: h.value, createRevision: h.createRevision, modRevision: p.main, version: h.version, lease: h.lease };
  }

  /** A current-version marker's key-value, its value from CURRENT, walked alongside. */
  private withCurrent(k: Buffer, p: HistKeyParts, h: HistPut): KeyValue | Promise<KeyValue> {
    const key = userKeyOfHist(k);
    const full = (cur: Buffer | undefined): KeyValue => kvWithCurrent(key, p.main, h, () => cur);
    const known = this.current.findInChunk(curKey(key));
    return known === NOT_IN_CHUNK ? this.current.find(curKey(key)).then(full) : full(known);
  }

  close(): Promise<void> {
    return this.current.close();
  }
}

function kvWithCurrent(key: Buffer, modRevision: number, h: HistPut, current: () => Buffer | undefined): KeyValue {
  let value = h.value;
  if (value === undefined) {
    const cur = current();
    const c = cur === undefined ? undefined : decodeCur(key, cur);
    if (c === undefined || c.kv.modRevision !== modRevision) throw new CorruptError(`no current value for the version at ${modRevision}`);
    value = c.kv.value;
  }
  return { key, value, createRevision: h.createRevision, modRevision, version: h.version, lease: h.lease };
}
