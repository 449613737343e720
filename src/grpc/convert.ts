/**
 * Proto messages <-> qkv's internal messages, driven by the same schemas as the JSON gateway
 * (src/api/schemas.ts: one table of etcd's field names and types for both APIs). The schema's
 * `json` name of a field is its proto field name, which proto-loader keeps (keepCase).
 *
 * 64-bit integers arrive as decimal strings and become JS numbers: qkv's revisions, versions,
 * limits and lease ids are safe integers. A value beyond 2^53 cannot name anything qkv has, so
 * it is clamped to the largest safe integer (a revision that large is a future revision, a lease
 * that large does not exist), never rounded to a neighbouring value. Cluster and member ids
 * (uint64) stay decimal strings, exact.
 */
import { Buffer } from 'node:buffer';
import type { FieldKind, Schema } from '../api/codec.js';
import { InvalidRequestError } from '../api/codec.js';
import type { ProtoMessage, ProtoValue } from './proto.js';

/** A decoded int64 (string with longs: String) as a safe JS integer, clamped beyond ±(2^53-1). */
export function int64(v: ProtoValue, field = 'int64'): number {
  if (v === undefined || v === null || v === '') return 0;
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new InvalidRequestError(`invalid value for int64 field ${field}: ${String(v)}`);
  const n = Number(v);
  if (Number.isSafeInteger(n)) return n;
  return BigInt(v) > 0n ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
}

function isMessage(v: ProtoValue): v is ProtoMessage {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function fromValue(v: ProtoValue, kind: FieldKind, field: string): unknown {
  if (kind === 'bytes') return Buffer.isBuffer(v) ? v : Buffer.alloc(0);
  if (kind === 'int64') return int64(v, field);
  if (kind === 'uint32') return typeof v === 'number' ? v : int64(v, field);
  if (kind === 'uint64') return v === undefined || v === null || v === '' ? '0' : String(v);
  if (kind === 'bool') return v === true;
  if (kind === 'string') return typeof v === 'string' ? v : '';
  if ('enum' in kind) {
    if (typeof v === 'string' && kind.enum.includes(v)) return v;
    if (typeof v === 'number' && kind.enum[v] !== undefined) return kind.enum[v];
    // An enum number this proto does not know (a newer client): proto3 keeps it; qkv refuses it.
    throw new InvalidRequestError(`unknown value ${String(v)} for enum field ${field}`);
  }
  if ('message' in kind) return fromProto(isMessage(v) ? v : {}, kind.message());
  return (Array.isArray(v) ? v : []).map((item) => fromValue(item, kind.list, field));
}

/**
 * A decoded proto message in the internal shape (camelCase names, numbers, Buffers), as the JSON
 * gateway's decodeMessage gives it: scalars and lists always present (proto3 zero values), an
 * absent nested message absent.
 */
export function fromProto<T>(msg: ProtoMessage, schema: Schema): T {
  const out: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const v = msg[f.json];
    if (typeof f.kind === 'object' && 'message' in f.kind && !isMessage(v)) continue;
    out[f.name] = fromValue(v, f.kind, f.json);
  }
  return out as T;
}

function toValue(v: unknown, kind: FieldKind): ProtoValue {
  if (kind === 'bytes') return Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
  if (kind === 'int64' || kind === 'uint32') return typeof v === 'string' ? v : Number(v);
  if (kind === 'uint64') return String(v);
  if (kind === 'bool') return Boolean(v);
  if (kind === 'string') return String(v);
  if ('enum' in kind) return String(v);
  if ('message' in kind) return toProto(v as object, kind.message());
  return (v as unknown[]).map((item) => toValue(item, kind.list));
}

/** An internal message as a proto object for the encoder (absent fields are proto3 zero values). */
export function toProto(obj: object, schema: Schema): ProtoMessage {
  const out: ProtoMessage = {};
  const src = obj as Record<string, unknown>;
  for (const f of schema.fields) {
    const v = src[f.name];
    if (v === undefined || v === null) continue;
    out[f.json] = toValue(v, f.kind);
  }
  return out;
}
