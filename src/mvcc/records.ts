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
 *   META     { v, rev, compactRev, appliedIndex, physRev, physTarget, cursor, alarms? }
 *            alarms: [[memberId (decimal string), type], ...], only while some are active, so
 *            a store that never had one writes the meta of version 1 as before
 *            cluster: membership.ts's record; auth: auth.ts's blob, once an auth change was applied
 */
import { decodeCluster, encodeCluster, type ClusterRecord } from './membership.js';
import { decodeAuth, encodeAuth, type AuthRecord } from './auth.js';
import { Buffer } from 'node:buffer';
import { Packr } from 'msgpackr';
import { CorruptError } from './errors.js';
import type { AlarmMember, AlarmType, KeyValue } from '../api/kv.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

export const EMPTY = Buffer.alloc(0);

// Byte stores: Buffer's writeUInt16BE / writeUInt32BE check their arguments, which cost more
// than the write itself here.
function putU16(out: Buffer, o: number, x: number): number {
  out[o] = x >>> 8;
  out[o + 1] = x & 0xff;
  return o + 2;
}

function putU32(out: Buffer, o: number, x: number): number {
  out[o] = x >>> 24;
  out[o + 1] = (x >>> 16) & 0xff;
  out[o + 2] = (x >>> 8) & 0xff;
  out[o + 3] = x & 0xff;
  return o + 4;
}

/**
 * msgpack of a flat array of byte strings and non-negative integers, byte for byte as `packr`
 * writes it (fixint / uint8 / uint16 / uint32, float64 from 2^32 on; bin8 / bin16 / bin32), so
 * records keep the bytes stores already hold and hash. Applying a put encodes three such records;
 * packr's general path (type dispatch, its shared buffer) was most of that cost. Anything
 * else (a negative or fractional number) goes through packr.
 */
function packFlat(items: ReadonlyArray<Uint8Array | number>): Buffer {
  let size = 1; // fixarray header: every record has fewer than 16 items
  // Indexed loops: a for-of here allocated an iterator result per item (the heap profile's
  // largest allocation of a put).
  for (let i = 0; i < items.length; i++) {
    const x = items[i]!;
    if (typeof x === 'number') {
      if (!(x >= 0 && Number.isInteger(x))) return packr.pack(items);
      size += x < 0x80 ? 1 : x < 0x100 ? 2 : x < 0x10000 ? 3 : x < 0x1_0000_0000 ? 5 : 9;
    } else {
      size += x.length + (x.length < 0x100 ? 2 : x.length < 0x10000 ? 3 : 5);
    }
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x90 | items.length;
  let o = 1;
  for (let i = 0; i < items.length; i++) {
    const x = items[i]!;
    if (typeof x === 'number') {
      if (x < 0x80) out[o++] = x;
      else if (x < 0x100) {
        out[o++] = 0xcc;
        out[o++] = x;
      } else if (x < 0x10000) {
        out[o++] = 0xcd;
        o = putU16(out, o, x);
      } else if (x < 0x1_0000_0000) {
        out[o++] = 0xce;
        o = putU32(out, o, x);
      } else {
        out[o++] = 0xcb;
        o = out.writeDoubleBE(x, o);
      }
    } else {
      const n = x.length;
      if (n < 0x100) {
        out[o++] = 0xc4;
        out[o++] = n;
      } else if (n < 0x10000) {
        out[o++] = 0xc5;
        o = putU16(out, o, n);
      } else {
        out[o++] = 0xc6;
        o = putU32(out, o, n);
      }
      out.set(x, o);
      o += n;
    }
  }
  return out;
}

/**
 * Reads what packFlat writes (a fixarray of `len` byte strings and non-negative integers)
 * without msgpackr, giving the same values; undefined for anything else, which msgpackr reads.
 * msgpackr gives every buffer it reads a DataView of its own, and every LevelDB read returns a
 * fresh buffer: that was most of the cost of decoding a record in a point get.
 */
export function unpackFlat(raw: Buffer, len: number): Array<Buffer | number> | undefined {
  if (raw.length === 0 || raw[0] !== (0x90 | len) || len > 15) return undefined;
  const out = new Array<Buffer | number>(len);
  const end = raw.length;
  let o = 1;
  for (let i = 0; i < len; i++) {
    if (o >= end) return undefined;
    const tag = raw[o++]!;
    if (tag < 0x80) {
      out[i] = tag;
      continue;
    }
    let n: number; // length of a byte string
    switch (tag) {
      case 0xcc:
        if (o + 1 > end) return undefined;
        out[i] = raw[o]!;
        o += 1;
        continue;
      case 0xcd:
        if (o + 2 > end) return undefined;
        out[i] = raw.readUInt16BE(o);
        o += 2;
        continue;
      case 0xce:
        if (o + 4 > end) return undefined;
        out[i] = raw.readUInt32BE(o);
        o += 4;
        continue;
      case 0xcb:
        if (o + 8 > end) return undefined;
        out[i] = raw.readDoubleBE(o);
        o += 8;
        continue;
      case 0xc4:
        if (o + 1 > end) return undefined;
        n = raw[o]!;
        o += 1;
        break;
      case 0xc5:
        if (o + 2 > end) return undefined;
        n = raw.readUInt16BE(o);
        o += 2;
        break;
      case 0xc6:
        if (o + 4 > end) return undefined;
        n = raw.readUInt32BE(o);
        o += 4;
        break;
      default:
        return undefined;
    }
    if (o + n > end) return undefined;
    out[i] = raw.subarray(o, o + n);
    o += n;
  }
  return o === end ? out : undefined;
}

function arr(raw: Buffer, what: string, len: number): unknown[] {
  const flat = unpackFlat(raw, len);
  if (flat !== undefined) return flat;
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
  return packFlat([kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease, modSub]);
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
  return packFlat([kv.value, kv.createRevision, kv.version, kv.lease]);
}

/** A put record of a key's current version: its value is in CURRENT, not written twice. */
export function encodeHistMarker(kv: KeyValue): Buffer {
  return packFlat([kv.createRevision, kv.version, kv.lease]);
}

/** A decoded HISTORY put record; `value` undefined for a current-version marker. */
export interface HistPut {
  value: Buffer | undefined;
  createRevision: number;
  version: number;
  lease: number;
}

export function decodeHistPut(raw: Buffer): HistPut {
  // packFlat's records without msgpackr (a backup or a restore decodes one per revision), else msgpackr.
  const v: unknown = unpackFlat(raw, raw[0] === 0x93 ? 3 : 4) ?? packr.unpack(raw);
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
  return packFlat([key, type, prevMain, prevSub]);
}

export function decodeEvt(raw: Buffer): EventRecord {
  const a = arr(raw, 'event', 4);
  return { key: buf(a[0]), type: num(a[1]), prevMain: num(a[2]), prevSub: num(a[3]) };
}

export function encodeGrant(ttl: number): Buffer {
  return packFlat([ttl]);
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
  /**
   * Active alarms (replicated state, see alarm.ts), in their canonical order. Never mutated: a
   * change replaces the array, so a batch's copy of the meta cannot touch the committed one.
   */
  alarms: readonly AlarmMember[];
  /** The membership (replicated state, see membership.ts); undefined until seeded. Replaced, never mutated. */
  cluster?: ClusterRecord;
  /** Users, roles, permissions (replicated state, see auth.ts); undefined until the first auth change. Replaced, never mutated. */
  auth?: AuthRecord;
}

const META_VERSION = 1;

export function encodeMeta(m: Meta): Buffer {
  const o: Record<string, unknown> = {
    v: META_VERSION,
    rev: m.rev,
    compactRev: m.compactRev,
    appliedIndex: m.appliedIndex,
    physRev: m.physRev,
    physTarget: m.physTarget,
    cursor: m.cursor,
  };
  if (m.alarms.length > 0) o['alarms'] = encodeAlarms(m.alarms);
  if (m.cluster) o['cluster'] = encodeCluster(m.cluster);
  if (m.auth) o['auth'] = encodeAuth(m.auth);
  return packr.pack(o);
}

/** Alarms as the meta record and the snapshot header carry them: [[memberId, type], ...]. */
export function encodeAlarms(alarms: readonly AlarmMember[]): Array<[string, AlarmType]> {
  return alarms.map((a) => [a.memberId, a.alarm]);
}

const ALARM_TYPES: readonly string[] = ['NOSPACE', 'CORRUPT'];

/** Inverse of encodeAlarms; absent (a store or stream from before alarms) is none. */
export function decodeAlarms(v: unknown): AlarmMember[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CorruptError('bad alarms record');
  return v.map((x: unknown) => {
    if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== 'string' || !/^\d+$/.test(x[0]) || !ALARM_TYPES.includes(x[1] as string)) {
      throw new CorruptError('bad alarm record');
    }
    return { memberId: x[0], alarm: x[1] as AlarmType };
  });
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
    alarms: decodeAlarms(o['alarms']),
    ...withCluster(decodeCluster(o['cluster'])),
    ...withAuth(decodeAuth(o['auth'])),
  };
}

/** `{ auth }` when there is one. */
export function withAuth(auth: AuthRecord | undefined): { auth?: AuthRecord } {
  return auth ? { auth } : {};
}

/** `{ cluster }` when there is one (exactOptionalPropertyTypes: never an undefined field). */
export function withCluster(cluster: ClusterRecord | undefined): { cluster?: ClusterRecord } {
  return cluster ? { cluster } : {};
}

/** Generic msgpack helpers for the snapshot stream and the request codec. */
export function packValue(v: unknown): Buffer {
  return packr.pack(v);
}

export function unpackValue(raw: Uint8Array): unknown {
  return packr.unpack(raw);
}
