/**
 * Encoding of MVCC requests as Raft entry data. Buffers stay binary. Decoding only checks the
 * outer shape: the store validates the fields when it applies the entry, so a bad request
 * becomes the same error response on every replica rather than a crash.
 *
 * Two forms. A plain put, the request every member decodes most, has a fixed binary layout
 * (encodePut): msgpack named each field and cost a member more than 2% of its main thread under
 * sequential puts. Everything else, and any put with a field the layout does not carry, is
 * msgpack. The put form starts with 0xc1, a byte msgpack never uses, so the two cannot be taken
 * for one another, and entries written in either form decode alike.
 */
import { Buffer } from 'node:buffer';
import { InvalidArgumentError } from './errors.js';
import { packValue, unpackValue } from './records.js';
import type { PutRequest } from '../api/kv.js';
import type { Caller, MvccRequest } from './types.js';

/** First byte of the binary forms: "never used" in msgpack. */
const BINARY_TAG = 0xc1;
const PUT_FORM = 0x01;
const HAS_VALUE = 1;
const HAS_LEASE = 2;
/** Each optional boolean takes two bits: present, and its value. */
const BOOLEAN_FLAGS = { prevKv: 4, ignoreValue: 16, ignoreLease: 64 } as const;
const BOOLEANS = ['prevKv', 'ignoreValue', 'ignoreLease'] as const;
const PUT_FIELDS = new Set(['key', 'value', 'lease', 'prevKv', 'ignoreValue', 'ignoreLease']);

/** The binary form of `p`, or undefined if it has anything the form does not carry as is. */
function encodePut(p: PutRequest): Buffer | undefined {
  if (typeof p !== 'object' || p === null || !(p.key instanceof Uint8Array)) return undefined;
  // for-in, not Object.keys: no array of the field names of every put.
  for (const k in p) if (p[k as keyof PutRequest] !== undefined && !PUT_FIELDS.has(k)) return undefined;
  if (p.value !== undefined && !(p.value instanceof Uint8Array)) return undefined;
  if (p.lease !== undefined && !(Number.isSafeInteger(p.lease) && p.lease >= 0)) return undefined;
  let flags = 0;
  if (p.value !== undefined) flags |= HAS_VALUE;
  if (p.lease !== undefined) flags |= HAS_LEASE;
  for (const name of BOOLEANS) {
    const v = p[name];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') return undefined;
    flags |= BOOLEAN_FLAGS[name] | (v ? BOOLEAN_FLAGS[name] << 1 : 0);
  }
  const valueBytes = p.value?.byteLength ?? 0;
  const out = Buffer.allocUnsafe(3 + (p.lease !== undefined ? 8 : 0) + 4 + p.key.byteLength + (p.value !== undefined ? 4 + valueBytes : 0));
  out[0] = BINARY_TAG;
  out[1] = PUT_FORM;
  out[2] = flags;
  let off = 3;
  if (p.lease !== undefined) off = out.writeDoubleLE(p.lease, off);
  off = out.writeUInt32LE(p.key.byteLength, off);
  out.set(p.key, off);
  off += p.key.byteLength;
  if (p.value !== undefined) {
    off = out.writeUInt32LE(valueBytes, off);
    out.set(p.value, off);
  }
  return out;
}

function badPut(): never {
  throw new InvalidArgumentError('request is not a valid binary put');
}

/** The length-prefixed bytes at `off` of a binary put: a view of them, not a copy. */
function putField(buf: Buffer, off: number): Buffer {
  if (off + 4 > buf.length) badPut();
  const n = buf.readUInt32LE(off);
  if (off + 4 + n > buf.length) badPut();
  return buf.subarray(off + 4, off + 4 + n);
}

// Every member decodes every put it applies: no closures, no placeholder Buffer, no second view
// of an entry's data that already is a Buffer.
function decodePut(data: Uint8Array): MvccRequest {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 3 || buf[1] !== PUT_FORM) badPut();
  const flags = buf[2]!;
  let off = 3;
  let lease: number | undefined;
  if (flags & HAS_LEASE) {
    if (off + 8 > buf.length) badPut();
    lease = buf.readDoubleLE(off);
    off += 8;
  }
  const key = putField(buf, off);
  off += 4 + key.length;
  const put: PutRequest = { key };
  if (lease !== undefined) put.lease = lease;
  if (flags & HAS_VALUE) {
    const value = putField(buf, off);
    off += 4 + value.length;
    put.value = value;
  }
  if (off !== buf.length) badPut();
  for (const name of BOOLEANS) {
    const present = (flags & BOOLEAN_FLAGS[name]) !== 0;
    const value = (flags & (BOOLEAN_FLAGS[name] << 1)) !== 0;
    if (value && !present) badPut();
    if (present) put[name] = value;
  }
  return { put };
}

/** Drops undefined fields (msgpack would encode them) so equal requests give equal bytes. */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean);
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = clean(x);
    return out;
  }
  return v;
}

/** Whether `o` has one own enumerable field (counted without an array of the names). */
function onlyField(o: object): boolean {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k) && ++n > 1) return false;
  return n === 1;
}

/**
 * A request's entry data; with its caller (proposed while auth is enabled), msgpack of
 * { caller: [user, authRevision] or [], req }, which no request is (a request has one key).
 */
export function encodeRequest(req: MvccRequest, caller?: Caller): Buffer {
  if (caller !== undefined) return packValue({ caller: 'member' in caller ? [] : [caller.user, caller.authRevision], req: clean(req) });
  if ('put' in req && onlyField(req)) {
    const binary = encodePut(req.put);
    if (binary) return binary;
  }
  return packValue(clean(req));
}

const KINDS = ['range', 'put', 'deleteRange', 'txn', 'compaction', 'leaseGrant', 'leaseRevoke', 'alarm', 'memberChange', 'memberAttributes', 'auth'];

/** An entry's request and, if it came with one, its caller (see encodeRequest). */
export function decodeEntryRequest(data: Uint8Array): { request: MvccRequest; caller?: Caller } {
  if (data[0] === BINARY_TAG) return { request: decodePut(data) };
  const v = unpack(data);
  if (!('caller' in v)) return { request: oneKind(v) };
  const c = v['caller'];
  if (Object.keys(v).length !== 2 || !Array.isArray(c) || (c.length !== 0 && (c.length !== 2 || typeof c[0] !== 'string' || !Number.isSafeInteger(c[1])))) {
    throw new InvalidArgumentError('request has a bad caller');
  }
  const request = oneKind(typeof v['req'] === 'object' && v['req'] !== null ? (v['req'] as Record<string, unknown>) : {});
  return { request, caller: c.length === 0 ? { member: true } : { user: c[0] as string, authRevision: c[1] as number } };
}

function unpack(data: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = unpackValue(data);
  } catch {
    throw new InvalidArgumentError('request is not msgpack');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('request must be an object');
  return v as Record<string, unknown>;
}

function oneKind(v: Record<string, unknown>): MvccRequest {
  const keys = Object.keys(v);
  if (keys.length !== 1 || !KINDS.includes(keys[0]!)) throw new InvalidArgumentError('request must have exactly one kind');
  return v as MvccRequest;
}

export function decodeRequest(data: Uint8Array): MvccRequest {
  return decodeEntryRequest(data).request;
}
