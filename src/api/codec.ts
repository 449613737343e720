/**
 * JSON codec of etcd v3's HTTP gateway (grpc-gateway / jsonpb), driven by a schema per message:
 * bytes are base64, 64-bit integers are strings, enums are names, field names are the proto
 * names (snake_case, or `ID`/`TTL` where the proto says so). Decoding accepts what etcd's
 * gateway accepts (proto or lowerCamel names, int64 as number or string, enum as name or
 * number) and ignores unknown fields; encoding omits zero values as etcd does.
 *
 * Internally every message is a plain object with camelCase names, Buffers and numbers.
 */
import { Buffer } from 'node:buffer';
import { CodedError } from '../errors.js';

export type FieldKind =
  | 'bytes'
  | 'int64'
  | 'uint32'
  /** Unsigned 64-bit ids (cluster and member ids): kept as decimal strings, exact. */
  | 'uint64'
  | 'bool'
  | 'string'
  | { enum: readonly string[] }
  | { message: () => Schema }
  | { list: FieldKind };

export interface FieldSpec {
  /** Internal (camelCase) name. */
  name: string;
  /** Proto field name, as etcd's gateway writes it. */
  json: string;
  kind: FieldKind;
}

export interface Schema {
  /** Proto message name, for error messages. */
  type: string;
  fields: FieldSpec[];
}

export class InvalidRequestError extends CodedError {
  constructor(message: string) {
    super('ERR_INVALID_REQUEST', message);
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function lowerCamel(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64_URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

function decodeBytes(v: Json): Buffer {
  if (typeof v !== 'string') throw new InvalidRequestError(`json: cannot unmarshal ${jsonType(v)} into Go value of type []uint8`);
  if (BASE64.test(v)) return Buffer.from(v, 'base64');
  if (BASE64_URL.test(v)) return Buffer.from(v, 'base64url');
  throw new InvalidRequestError('illegal base64 data at input byte 0');
}

function decodeInt64(v: Json, field: string): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^-?\d+$/.test(v)) n = Number(v);
  else throw new InvalidRequestError(`invalid value for int64 field ${field}: ${JSON.stringify(v)}`);
  if (!Number.isSafeInteger(n)) throw new InvalidRequestError(`value out of range for field ${field}: ${JSON.stringify(v)}`);
  return n;
}

function jsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function decodeValue(v: Json, kind: FieldKind, field: string, schema: Schema): unknown {
  if (kind === 'bytes') return decodeBytes(v);
  if (kind === 'int64') return decodeInt64(v, field);
  if (kind === 'uint32') {
    const n = decodeInt64(v, field);
    if (n < 0 || n > 0xffffffff) throw new InvalidRequestError(`value out of range for field ${field}: ${JSON.stringify(v)}`);
    return n;
  }
  if (kind === 'uint64') {
    const str = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v;
    if (typeof str !== 'string' || !/^\d+$/.test(str) || BigInt(str) > 0xffffffffffffffffn) {
      throw new InvalidRequestError(`invalid value for uint64 field ${field}: ${JSON.stringify(v)}`);
    }
    return str;
  }
  if (kind === 'bool') {
    if (typeof v !== 'boolean') throw new InvalidRequestError(`json: cannot unmarshal ${jsonType(v)} into Go value of type bool (field ${field})`);
    return v;
  }
  if (kind === 'string') {
    if (typeof v !== 'string') throw new InvalidRequestError(`json: cannot unmarshal ${jsonType(v)} into Go value of type string (field ${field})`);
    return v;
  }
  if ('enum' in kind) {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < kind.enum.length) return kind.enum[v];
    if (typeof v === 'string' && kind.enum.includes(v)) return v;
    throw new InvalidRequestError(`unknown value ${JSON.stringify(v)} for enum ${schema.type}.${field}`);
  }
  if ('message' in kind) return decodeMessage(v, kind.message());
  if (!Array.isArray(v)) throw new InvalidRequestError(`json: cannot unmarshal ${jsonType(v)} into Go value of type []${field}`);
  return v.map((item) => decodeValue(item, kind.list, field, schema));
}

/** Proto3's default of an absent field; undefined for a nested message (absent stays absent). */
function zeroValue(kind: FieldKind): unknown {
  switch (kind) {
    case 'bytes':
      return Buffer.alloc(0);
    case 'int64':
    case 'uint32':
      return 0;
    case 'uint64':
      return '0';
    case 'bool':
      return false;
    case 'string':
      return '';
  }
  if ('enum' in kind) return kind.enum[0];
  if ('list' in kind) return [];
  return undefined;
}

/** Decodes a gateway JSON object into the internal shape; absent scalars and lists get proto3's zero values. */
export function decodeMessage<T>(raw: Json | undefined, schema: Schema): T {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidRequestError(`json: cannot unmarshal ${jsonType(raw)} into Go value of type map[string]json.RawMessage`);
  }
  const out: Record<string, unknown> = {};
  for (const f of schema.fields) {
    let v = raw[f.json];
    if (v === undefined) v = raw[lowerCamel(f.json)];
    if (v === undefined || v === null) {
      const zero = zeroValue(f.kind);
      if (zero !== undefined) out[f.name] = zero;
      continue;
    }
    out[f.name] = decodeValue(v, f.kind, f.json, schema);
  }
  return out as T;
}

function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '' || v === '0') return true;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return v.byteLength === 0;
  if (Array.isArray(v)) return v.length === 0;
  return false;
}

function encodeValue(v: unknown, kind: FieldKind): Json {
  if (kind === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (kind === 'int64') return String(v);
  if (kind === 'uint32') return v as number;
  if (kind === 'uint64') return String(v);
  if (kind === 'bool') return v as boolean;
  if (kind === 'string') return v as string;
  if ('enum' in kind) return v as string;
  if ('message' in kind) return encodeMessage(v as object, kind.message());
  return (v as unknown[]).map((item) => encodeValue(item, kind.list));
}

/** Encodes the internal shape as etcd's gateway does (zero values omitted). */
export function encodeMessage(obj: object, schema: Schema): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  const src = obj as Record<string, unknown>;
  for (const f of schema.fields) {
    const v = src[f.name];
    if (isZero(v)) continue;
    if (typeof f.kind === 'object' && 'enum' in f.kind && v === f.kind.enum[0]) continue;
    out[f.json] = encodeValue(v, f.kind);
  }
  return out;
}

/** Field helpers for the schema tables. */
export const field = {
  bytes: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'bytes' }),
  int64: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'int64' }),
  uint32: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'uint32' }),
  uint64: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'uint64' }),
  bool: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'bool' }),
  string: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'string' }),
  enum: (name: string, values: readonly string[], json = snake(name)): FieldSpec => ({ name, json, kind: { enum: values } }),
  message: (name: string, schema: () => Schema, json = snake(name)): FieldSpec => ({ name, json, kind: { message: schema } }),
  list: (name: string, kind: FieldKind, json = snake(name)): FieldSpec => ({ name, json, kind: { list: kind } }),
};

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
