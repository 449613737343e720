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

/**
 * A walk over the fields of one message: the one reader of the wire format. Allocates nothing per
 * field but the views of length-delimited ones (a restore reads a message per revision, twice).
 * `what` names the message in errors; it is called only to build one.
 */
export class ProtoFieldReader {
  private pos = 0;
  /** The current field's number and wire type (after `next`). */
  field = 0;
  wireType = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: () => string,
  ) {}

  /** Moves to the next field; false at the end of the message. */
  next(): boolean {
    if (this.pos >= this.buf.length) return false;
    const tag = this.varint();
    const field = typeof tag === 'number' ? Math.floor(tag / 8) : Number(tag >> 3n);
    if (field === 0) throw new SnapshotContentError(`${this.what()}: field number 0`);
    this.field = field;
    this.wireType = typeof tag === 'number' ? tag % 8 : Number(tag & 7n);
    return true;
  }

  /**
   * The current field's value (read once, after `next`): a varint's 64 bits, unsigned (a number
   * when below 2^49, so exact; a bigint from there), a view of a length-delimited field's bytes,
   * or undefined for a fixed-width one (skipped).
   */
  value(): number | bigint | Buffer | undefined {
    const { wireType, field, buf } = this;
    if (wireType === VARINT) return this.varint();
    if (wireType === LENGTH_DELIMITED) {
      const len = this.varint();
      if (len > buf.length - this.pos) throw new SnapshotContentError(`${this.what()}: field ${field} of ${len} bytes runs past the end of the message`);
      const start = this.pos;
      this.pos += Number(len);
      return buf.subarray(start, this.pos);
    }
    if (wireType === FIXED64 || wireType === FIXED32) {
      this.pos += wireType === FIXED64 ? 8 : 4;
      if (this.pos > buf.length) throw new SnapshotContentError(`${this.what()}: field ${field} runs past the end of the message`);
      return undefined;
    }
    throw new SnapshotContentError(`${this.what()}: field ${field} has unsupported wire type ${wireType}`);
  }

  /** The varint at the current position (see `value`), and moves past it. */
  private varint(): number | bigint {
    const buf = this.buf;
    // Most varints (tags, lengths, revisions) are short: summed as a number, not a bigint per byte.
    let n = 0;
    let scale = 1;
    for (let i = 0, p = this.pos; i < NUMBER_VARINT_BYTES; i++) {
      if (p >= buf.length) throw new SnapshotContentError(`${this.what()}: truncated varint`);
      const b = buf[p++]!;
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        this.pos = p;
        return n;
      }
      scale *= 0x80;
    }
    let value = 0n;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= buf.length) throw new SnapshotContentError(`${this.what()}: truncated varint`);
      const b = buf[this.pos++]!;
      value |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return BigInt.asUintN(64, value);
    }
    throw new SnapshotContentError(`${this.what()}: varint longer than ${MAX_VARINT_BYTES} bytes`);
  }
}

/**
 * Every field of the message `buf` in wire order, a repeated one as often as it comes (etcd's
 * authpb.User roles, authpb.Role permissions); `what` names the message in errors.
 */
export function decodeFieldList(buf: Buffer, what: string): Array<readonly [field: number, value: ProtoValue]> {
  const fields: Array<readonly [number, ProtoValue]> = [];
  const r = new ProtoFieldReader(buf, () => what);
  while (r.next()) {
    const v = r.value();
    if (v !== undefined) fields.push([r.field, typeof v === 'number' ? BigInt(v) : v]);
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

/** A field's value as ProtoFieldReader reads it, or as decodeMessage holds it; undefined when absent. */
export type FieldValue = number | bigint | Buffer | undefined;

/** An int64 field's value (two's complement in a varint), 0 when absent; exact. */
export function int64Value(v: FieldValue, field: number, what: () => string): bigint {
  if (v === undefined) return 0n;
  if (Buffer.isBuffer(v)) throw new SnapshotContentError(`${what()}: field ${field} is length-delimited, expected an int64`);
  return BigInt.asIntN(64, BigInt(v));
}

/** An int64 field's value that must be a non-negative safe JS number (a revision, a version, a TTL). */
export function safeIntValue(v: FieldValue, field: number, what: () => string): number {
  // A varint read as a number is below 2^49: non-negative and exact as an int64 too.
  if (typeof v === 'number') return v;
  const n = int64Value(v, field, what);
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new SnapshotContentError(`${what()}: field ${field} is ${n}, not a non-negative safe integer`);
  return Number(n);
}

/** A bytes field's value, empty when absent (a view into the message). */
export function bytesValue(v: FieldValue, field: number, what: () => string): Buffer {
  if (v === undefined) return EMPTY;
  if (!Buffer.isBuffer(v)) throw new SnapshotContentError(`${what()}: field ${field} is a varint, expected bytes`);
  return v;
}

const EMPTY = Buffer.alloc(0);

/** An int64 field (two's complement in a varint), 0 when absent; exact. */
export function int64Field(msg: ProtoMessage, field: number, what: string): bigint {
  return int64Value(msg.get(field), field, () => what);
}

/** An int64 field that must be a non-negative safe JS number (a revision, a version, a TTL). */
export function safeIntField(msg: ProtoMessage, field: number, what: string): number {
  return safeIntValue(msg.get(field), field, () => what);
}

/** A bytes field, empty when absent (a view into the message). */
export function bytesField(msg: ProtoMessage, field: number, what: string): Buffer {
  return bytesValue(msg.get(field), field, () => what);
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
