/**
 * The protobuf wire format, read only as far as etcd's stored messages need (mvccpb.KeyValue,
 * leasepb.Lease, authpb.User and Role): varint and length-delimited fields, fixed-width ones skipped. src/api's codec is
 * the JSON gateway's and src/grpc decodes through @grpc/proto-loader from a stream; neither reads
 * a message out of a Buffer, so this is the one place that does.
 *
 * Varints are read as bigint, exact over all 64 bits; the caller decides which fields must be safe
 * JS numbers (revisions, versions: src/api/kv.ts's numbers) and which stay bigint (lease ids,
 * which etcd draws from the whole int64 range).
 */
import { Buffer } from 'node:buffer';
import { SnapshotContentError } from './errors.js';

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
/** A varint of 64 bits takes at most 10 bytes. */
const MAX_VARINT_BYTES = 10;

/** A decoded field's value: a varint's 64 bits (unsigned), or a length-delimited field's bytes (a view). */
type ProtoValue = bigint | Buffer;

/** The fields of a message by number; for a field given more than once, the last (proto3's rule for scalars). */
export type ProtoMessage = ReadonlyMap<number, ProtoValue>;

/** Varints of up to this many bytes (49 bits) are summed as a JS number, exact, before one conversion to bigint. */
const NUMBER_VARINT_BYTES = 7;

/** Reads a varint at `pos` of `buf`; returns its value and the position after it. */
function readVarint(buf: Buffer, pos: number, what: string): [bigint, number] {
  // Most varints (tags, lengths, revisions) are short: summed as a number, not a bigint per byte.
  let n = 0;
  let scale = 1;
  for (let i = 0, p = pos; i < NUMBER_VARINT_BYTES; i++) {
    if (p >= buf.length) throw new SnapshotContentError(`${what}: truncated varint`);
    const b = buf[p++]!;
    n += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [BigInt(n), p];
    scale *= 0x80;
  }
  let value = 0n;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (pos >= buf.length) throw new SnapshotContentError(`${what}: truncated varint`);
    const b = buf[pos++]!;
    value |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, value), pos];
  }
  throw new SnapshotContentError(`${what}: varint longer than ${MAX_VARINT_BYTES} bytes`);
}

/**
 * Every field of the message `buf` in wire order, a repeated one as often as it comes (etcd's
 * authpb.User roles, authpb.Role permissions); `what` names the message in errors.
 */
export function decodeFieldList(buf: Buffer, what: string): Array<readonly [field: number, value: ProtoValue]> {
  const fields: Array<readonly [number, ProtoValue]> = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos, what);
    pos = afterTag;
    const field = Number(tag >> 3n);
    if (field === 0) throw new SnapshotContentError(`${what}: field number 0`);
    const wireType = Number(tag & 7n);
    if (wireType === VARINT) {
      const [v, next] = readVarint(buf, pos, what);
      fields.push([field, v]);
      pos = next;
    } else if (wireType === LENGTH_DELIMITED) {
      const [len, next] = readVarint(buf, pos, what);
      if (len > BigInt(buf.length - next)) throw new SnapshotContentError(`${what}: field ${field} of ${len} bytes runs past the end of the message`);
      fields.push([field, buf.subarray(next, next + Number(len))]);
      pos = next + Number(len);
    } else if (wireType === FIXED64 || wireType === FIXED32) {
      pos += wireType === FIXED64 ? 8 : 4;
      if (pos > buf.length) throw new SnapshotContentError(`${what}: field ${field} runs past the end of the message`);
    } else {
      throw new SnapshotContentError(`${what}: field ${field} has unsupported wire type ${wireType}`);
    }
  }
  return fields;
}

/** Decodes the fields of the message `buf` by number, the last of a repeated one; `what` names it in errors. */
export function decodeMessage(buf: Buffer, what: string): ProtoMessage {
  return new Map(decodeFieldList(buf, what));
}

/** Every value of the repeated bytes (or string, or message) field `field`, in order. */
export function repeatedBytesField(fields: ReturnType<typeof decodeFieldList>, field: number, what: string): Buffer[] {
  return fields
    .filter(([f]) => f === field)
    .map(([, v]) => {
      if (typeof v === 'bigint') throw new SnapshotContentError(`${what}: field ${field} is a varint, expected bytes`);
      return v;
    });
}

/** An int64 field (two's complement in a varint), 0 when absent; exact. */
export function int64Field(msg: ProtoMessage, field: number, what: string): bigint {
  const v = msg.get(field);
  if (v === undefined) return 0n;
  if (typeof v !== 'bigint') throw new SnapshotContentError(`${what}: field ${field} is length-delimited, expected an int64`);
  return BigInt.asIntN(64, v);
}

/** An int64 field that must be a non-negative safe JS number (a revision, a version, a TTL). */
export function safeIntField(msg: ProtoMessage, field: number, what: string): number {
  const v = int64Field(msg, field, what);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SnapshotContentError(`${what}: field ${field} is ${v}, not a non-negative safe integer`);
  return Number(v);
}

/** A bytes field, empty when absent (a view into the message). */
export function bytesField(msg: ProtoMessage, field: number, what: string): Buffer {
  const v = msg.get(field);
  if (v === undefined) return Buffer.alloc(0);
  if (typeof v === 'bigint') throw new SnapshotContentError(`${what}: field ${field} is a varint, expected bytes`);
  return v;
}

/** A field to encode: an integer (a varint; negative ones as int64's two's complement) or bytes. */
export type ProtoField = readonly [field: number, value: bigint | number | Buffer];

/** The unsigned 64 bits of an integer field: a number while that is exact, else a bigint. */
function unsigned64(v: bigint | number): bigint | number {
  if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) return v;
  return BigInt.asUintN(64, BigInt(v));
}

function varintSize(u: bigint | number): number {
  let n = 1;
  if (typeof u === 'number') {
    for (; u >= 0x80; u = Math.floor(u / 0x80)) n++;
  } else {
    for (; u >= 0x80n; u >>= 7n) n++;
  }
  return n;
}

/** Writes the varint of `u` (unsigned64's) at `pos`; returns the position after it. */
function writeVarint(buf: Buffer, pos: number, u: bigint | number): number {
  if (typeof u === 'number') {
    for (; u >= 0x80; u = Math.floor(u / 0x80)) buf[pos++] = (u % 0x80) | 0x80;
    buf[pos++] = u;
    return pos;
  }
  for (; u >= 0x80n; u >>= 7n) buf[pos++] = Number(u & 0x7fn) | 0x80;
  buf[pos++] = Number(u);
  return pos;
}

/** The bytes encodeMessage gives the field `field` of `value`: none for a zero or empty one (proto3's rule). */
export function fieldSize(field: number, value: bigint | number | Buffer): number {
  if (Buffer.isBuffer(value)) return value.length > 0 ? varintSize((field << 3) | LENGTH_DELIMITED) + varintSize(value.length) + value.length : 0;
  return value !== 0 && value !== 0n ? varintSize((field << 3) | VARINT) + varintSize(unsigned64(value)) : 0;
}

/** Writes the field `field` of `value` as encodeMessage does at `pos` of `out` (which has fieldSize's room); returns the position after it. */
export function writeField(out: Buffer, pos: number, field: number, value: bigint | number | Buffer): number {
  if (Buffer.isBuffer(value)) {
    if (value.length === 0) return pos;
    pos = writeVarint(out, pos, (field << 3) | LENGTH_DELIMITED);
    pos = writeVarint(out, pos, value.length);
    return pos + value.copy(out, pos);
  }
  if (value === 0 || value === 0n) return pos;
  pos = writeVarint(out, pos, (field << 3) | VARINT);
  return writeVarint(out, pos, unsigned64(value));
}

/**
 * Encodes a message of varint and bytes fields, in the order given, leaving out zeros and empty
 * bytes (proto3's rule, as gogo/protobuf marshals etcd's messages). Sized first, then written
 * into one buffer. (A backup's revisions, one message each, are written with fieldSize and
 * writeField into a buffer reused: etcd_snapshot_writer.ts.)
 */
export function encodeMessage(fields: readonly ProtoField[]): Buffer {
  let size = 0;
  for (const [field, value] of fields) size += fieldSize(field, value);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const [field, value] of fields) pos = writeField(out, pos, field, value);
  return out;
}
