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
import { firstValueLength, InvalidRequestError } from './json.js';

// Defined with the JSON scanner (whose syntax errors are the first kind), part of the codec's surface.
export { InvalidRequestError } from './json.js';

export type FieldKind =
  | 'bytes'
  | 'int64'
  | 'uint32'
  /** Unsigned 64-bit ids (cluster and member ids): kept as decimal strings, exact. */
  | 'uint64'
  | 'bool'
  | 'string'
  /** `goType`: the enum's Go type, as etcd's errors name it; by default `<Message>_<FieldName>`. */
  | { enum: readonly string[]; goType?: string }
  | { message: () => Schema }
  | { list: FieldKind };

export interface FieldSpec {
  /** Internal (camelCase) name. */
  name: string;
  /** Proto field name, as etcd's gateway writes it. */
  json: string;
  kind: FieldKind;
  /** The proto field number, where it is 16 or more (its tag then takes two bytes); see protoSize. */
  highNumber?: number;
}

export interface Schema {
  /** Proto message name, for error messages. */
  type: string;
  fields: FieldSpec[];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function lowerCamel(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64_URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

function decodeBytes(v: Json): Buffer {
  if (typeof v !== 'string') throw cannotUnmarshal(v, '[]uint8');
  if (BASE64.test(v)) return Buffer.from(v, 'base64');
  if (BASE64_URL.test(v)) return Buffer.from(v, 'base64url');
  throw new InvalidRequestError('illegal base64 data at input byte 0');
}

/** A JSON type mismatch, as Go's encoding/json words it. */
function cannotUnmarshal(v: Json, goType: string): InvalidRequestError {
  return new InvalidRequestError(`json: cannot unmarshal ${jsonType(v)} into Go value of type ${goType}`);
}

const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * A 64-bit integer field: a JSON number or a string holding one (jsonpb reads the string's
 * contents as JSON). Returns the number's text, or throws Go's error.
 */
function integerText(v: Json, goType: string): string {
  let text: string;
  if (typeof v === 'number') text = String(v);
  else if (typeof v === 'string') {
    firstValueLength(v); // Go's syntax error for contents that are not JSON
    const inner = JSON.parse(v) as Json;
    if (typeof inner !== 'number') throw cannotUnmarshal(inner, goType);
    text = v.trim();
  } else throw cannotUnmarshal(v, goType);
  if (!/^-?\d+$/.test(text)) throw new InvalidRequestError(`json: cannot unmarshal number ${text} into Go value of type ${goType}`);
  return text;
}

function decodeInt64(v: Json, field: string): number {
  const text = integerText(v, 'int64');
  const big = BigInt(text);
  if (big > INT64_MAX || big < -INT64_MAX - 1n) throw new InvalidRequestError(`json: cannot unmarshal number ${text} into Go value of type int64`);
  // Valid for etcd, but beyond what qkv holds exactly in a number.
  if (!Number.isSafeInteger(Number(big))) throw new InvalidRequestError(`value out of range for field ${field}: ${JSON.stringify(v)}`);
  return Number(big);
}

function jsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'boolean' ? 'bool' : typeof v;
}

/** `RangeRequest_SortTarget` for the field sort_target of etcdserverpb.RangeRequest. */
function enumGoType(kind: { goType?: string }, field: string, schema: Schema): string {
  return kind.goType ?? `${schema.type}_${field.replace(/(^|_)([a-z])/g, (_, _s: string, c: string) => c.toUpperCase())}`;
}

function decodeValue(v: Json, kind: FieldKind, field: string, schema: Schema): unknown {
  if (kind === 'bytes') return decodeBytes(v);
  if (kind === 'int64') return decodeInt64(v, field);
  if (kind === 'uint32') {
    const text = integerText(v, 'uint32');
    const big = BigInt(text);
    if (big < 0n || big > 0xffffffffn) throw new InvalidRequestError(`json: cannot unmarshal number ${text} into Go value of type uint32`);
    return Number(big);
  }
  if (kind === 'uint64') {
    const text = integerText(v, 'uint64');
    const big = BigInt(text);
    if (big < 0n || big > UINT64_MAX) throw new InvalidRequestError(`json: cannot unmarshal number ${text} into Go value of type uint64`);
    // A JSON number past 2^53 has already lost its digits: only a string carries such an id exactly.
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new InvalidRequestError(`value out of range for field ${field}: ${JSON.stringify(v)}`);
    return big.toString();
  }
  if (kind === 'bool') {
    if (typeof v !== 'boolean') throw cannotUnmarshal(v, 'bool');
    return v;
  }
  if (kind === 'string') {
    if (typeof v !== 'string') throw cannotUnmarshal(v, 'string');
    return v;
  }
  if ('enum' in kind) {
    const goType = enumGoType(kind, field, schema);
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < kind.enum.length) return kind.enum[v];
    if (typeof v === 'string' && kind.enum.includes(v)) return v;
    // etcd also takes numbers outside the enum (and then misbehaves: 3.4 panics on sort_target 7); qkv refuses them.
    if (typeof v === 'string' || typeof v === 'number') throw new InvalidRequestError(`unknown value ${JSON.stringify(v)} for enum ${goType}`);
    throw cannotUnmarshal(v, goType);
  }
  if ('message' in kind) return decodeMessage(v, kind.message());
  if (!Array.isArray(v)) throw cannotUnmarshal(v, '[]json.RawMessage');
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
    throw cannotUnmarshal(raw, 'map[string]json.RawMessage');
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

function varintSize(n: number): number {
  if (n < 0) return 10;
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function valueSize(v: unknown, kind: FieldKind): number {
  if (kind === 'bytes') return varintSize((v as Uint8Array).byteLength) + (v as Uint8Array).byteLength;
  if (kind === 'string') {
    const n = Buffer.byteLength(v as string);
    return varintSize(n) + n;
  }
  if (kind === 'int64' || kind === 'uint32') return varintSize(v as number);
  if (kind === 'uint64') return BigInt(v as string) < 0x80n ? 1 : Math.ceil(BigInt(v as string).toString(2).length / 7);
  if (kind === 'bool') return 1;
  if ('enum' in kind) return varintSize(kind.enum.indexOf(v as string));
  if ('message' in kind) {
    const n = protoSize(v as object, kind.message());
    return varintSize(n) + n;
  }
  throw new Error('codec: a list inside a list');
}

/**
 * The size of the message in protobuf's binary encoding (proto3: zero values take no bytes),
 * the figure gRPC's message size limit is about, so that the gateway can apply it as etcd's
 * gateway does when it passes a request on to gRPC.
 */
export function protoSize(obj: object, schema: Schema): number {
  const src = obj as Record<string, unknown>;
  let size = 0;
  for (const f of schema.fields) {
    const v = src[f.name];
    if (isZero(v)) continue;
    const tag = f.highNumber !== undefined && f.highNumber >= 16 ? 2 : 1;
    if (typeof f.kind === 'object' && 'list' in f.kind) {
      for (const item of v as unknown[]) size += tag + valueSize(item, f.kind.list);
    } else if (typeof f.kind === 'object' && 'enum' in f.kind && v === f.kind.enum[0]) {
    } else {
      size += tag + valueSize(v, f.kind);
    }
  }
  return size;
}

/** Field helpers for the schema tables. */
export const field = {
  bytes: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'bytes' }),
  int64: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'int64' }),
  uint32: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'uint32' }),
  uint64: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'uint64' }),
  bool: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'bool' }),
  string: (name: string, json = snake(name)): FieldSpec => ({ name, json, kind: 'string' }),
  enum: (name: string, values: readonly string[], json = snake(name), goType?: string): FieldSpec => ({
    name,
    json,
    kind: goType ? { enum: values, goType } : { enum: values },
  }),
  message: (name: string, schema: () => Schema, json = snake(name)): FieldSpec => ({ name, json, kind: { message: schema } }),
  list: (name: string, kind: FieldKind, json = snake(name)): FieldSpec => ({ name, json, kind: { list: kind } }),
};

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
