/**
 * Reading HISTORY put records. The record of a key's current version holds no value (the value
 * is in CURRENT, so an insert writes it once); when the version is superseded or deleted, the
 * same write rewrites the record with its value. So a record without a value is always its
 * key's current version, and CURRENT has the value.
 */
import { CorruptError } from './errors.js';
import { curKey } from './keys.js';
import { decodeCur, decodeHistPut, encodeHistFull, type HistPut } from './records.js';
import type { KeyValue } from './types.js';
import { getRaw, type ReadSource } from './view.js';

/** The key-value a HISTORY put record stands for, its value fetched from CURRENT if need be. */
export function histKv(src: ReadSource, key: Buffer, modRevision: number, raw: Buffer): KeyValue {
  return kvWithCurrent(key, modRevision, decodeHistPut(raw), () => getRaw(src, curKey(key)));
}

/**
 * The record as it is once superseded, whatever its form on disk: what hashKV hashes and
 * snapshots carry, so they do not depend on which version happens to be current.
 */
export function histFullBytes(src: ReadSource, key: Buffer, modRevision: number, raw: Buffer): Buffer {
  const h = decodeHistPut(raw);
  return h.value !== undefined ? raw : encodeHistFull(kvWithCurrent(key, modRevision, h, () => getRaw(src, curKey(key))));
}

/**
 * histFullBytes of a record without a value (`h`, decoded), for a caller that walks CURRENT
 * itself: `current` is the key's CURRENT record, if any.
 */
export function fullFromCurrent(key: Buffer, modRevision: number, h: HistPut, current: Buffer | undefined): Buffer {
  return encodeHistFull(kvWithCurrent(key, modRevision, h, () => current));
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
