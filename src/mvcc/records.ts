/**
 * Value encodings of the tables (msgpack arrays: compact, and the same input always gives the
 * same bytes, which the hash relies on).
 *
 *   CURRENT  [value, createRevision, modRevision, version, lease, modSub]
 *   HISTORY  put, superseded:     [value, createRevision, version, lease]   (mod revision is in the key)
 *            put, current version: [createRevision, version, lease]          (the value is in CURRENT)
 *            delete:               empty                                      (everything is in the key)
 *   EVENTS   [key, type, prevMain, prevSub]   prev = the put this change superseded (0 = none)
 *   GRANTS   [ttl]
 *   META     { v, rev, compactRev, appliedIndex, physRev, physTarget, cursor }
 */
import { Packr } from 'msgpackr';
import { CorruptError } from './errors.js';
import type { KeyValue } from './types.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

export const EMPTY = Buffer.alloc(0);

function arr(raw: Buffer, what: string, len: number): unknown[] {
  const v: unknown = packr.unpack(raw);
  if (!Array.isArray(v) || v.length !== len) throw new CorruptError(`bad ${what} record`);
  return v;
}

function buf(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new CorruptError('expected bytes');
}

function num(v: unknown): number {
  if (typeof v !== 'number') throw new CorruptError('expected a number');
  return v;
}

/** A live key as CURRENT holds it: the KeyValue plus the sub-revision of its last write. */
export interface CurrentRecord {
  kv: KeyValue;
  modSub: number;
}

export function encodeCur(kv: KeyValue, modSub: number): Buffer {
  return packr.pack([kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease, modSub]);
}

export function decodeCur(key: Buffer, raw: Buffer): CurrentRecord {
  const a = arr(raw, 'current', 6);
  return {
    kv: { key, value: buf(a[0]), createRevision: num(a[1]), modRevision: num(a[2]), version: num(a[3]), lease: num(a[4]) },
    modSub: num(a[5]),
  };
}

/** A put record of a superseded version: it carries its value. */
export function encodeHistFull(kv: KeyValue): Buffer {
  return packr.pack([kv.value, kv.createRevision, kv.version, kv.lease]);
}

/** A put record of a key's current version: its value is in CURRENT, not written twice. */
export function encodeHistMarker(kv: KeyValue): Buffer {
  return packr.pack([kv.createRevision, kv.version, kv.lease]);
}

/** A decoded HISTORY put record; `value` undefined for a current-version marker. */
export interface HistPut {
  value: Buffer | undefined;
  createRevision: number;
  version: number;
  lease: number;
}

export function decodeHistPut(raw: Buffer): HistPut {
  const v: unknown = packr.unpack(raw);
  if (Array.isArray(v) && v.length === 4) return { value: buf(v[0]), createRevision: num(v[1]), version: num(v[2]), lease: num(v[3]) };
  if (Array.isArray(v) && v.length === 3) return { value: undefined, createRevision: num(v[0]), version: num(v[1]), lease: num(v[2]) };
  throw new CorruptError('bad history record');
}

export interface EventRecord {
  key: Buffer;
  type: number;
  prevMain: number;
  prevSub: number;
}

export function encodeEvt(key: Buffer, type: number, prevMain: number, prevSub: number): Buffer {
  return packr.pack([key, type, prevMain, prevSub]);
}

export function decodeEvt(raw: Buffer): EventRecord {
  const a = arr(raw, 'event', 4);
  return { key: buf(a[0]), type: num(a[1]), prevMain: num(a[2]), prevSub: num(a[3]) };
}

export function encodeGrant(ttl: number): Buffer {
  return packr.pack([ttl]);
}

export function decodeGrant(raw: Buffer): number {
  return num(arr(raw, 'grant', 1)[0]);
}

/** The store's durable bookkeeping, written in every batch together with the data it describes. */
export interface Meta {
  /** Current revision (etcd starts a fresh store at 1). */
  rev: number;
  /** Revisions below this cannot be read (0: never compacted). */
  compactRev: number;
  /** Last Raft index applied. */
  appliedIndex: number;
  /** Compaction point up to which history is physically deleted (<= compactRev). */
  physRev: number;
  /** Compaction point the walk in progress deletes up to (meaningful when cursor is set). */
  physTarget: number;
  /** Where the physical compaction walk over EVENTS resumes (null: no walk in progress). */
  cursor: Buffer | null;
}

export const META_VERSION = 1;

export function encodeMeta(m: Meta): Buffer {
  return packr.pack({ v: META_VERSION, rev: m.rev, compactRev: m.compactRev, appliedIndex: m.appliedIndex, physRev: m.physRev, physTarget: m.physTarget, cursor: m.cursor });
}

export function decodeMeta(raw: Buffer): Meta {
  const v: unknown = packr.unpack(raw);
  if (typeof v !== 'object' || v === null) throw new CorruptError('bad meta record');
  const o = v as Record<string, unknown>;
  if (o['v'] !== META_VERSION) throw new CorruptError(`unsupported meta version ${String(o['v'])}`);
  return {
    rev: num(o['rev']),
    compactRev: num(o['compactRev']),
    appliedIndex: num(o['appliedIndex']),
    physRev: num(o['physRev']),
    physTarget: num(o['physTarget']),
    cursor: o['cursor'] === null || o['cursor'] === undefined ? null : buf(o['cursor']),
  };
}

/** Generic msgpack helpers for the snapshot stream and the request codec. */
export function packValue(v: unknown): Buffer {
  return packr.pack(v);
}

export function unpackValue(raw: Uint8Array): unknown {
  return packr.unpack(raw);
}
