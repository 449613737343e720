/**
 * The protobuf binary format straight between gRPC's message bytes and qkv's internal messages
 * (camelCase names, numbers, Buffers; src/api/schemas.ts), one codec compiled per schema. It
 * gives what @grpc/proto-loader's decode followed by convert.ts's fromProto gives, and encodes
 * what toProto followed by proto-loader's encode means, without the proto object in between.
 *
 * Field numbers and types come from the .proto files qkv loads (proto.ts's protoPackage); a
 * schema field the proto lacks, or whose type disagrees with it, fails at compile time.
 *
 * Decoding, as proto-loader's protobufjs and fromProto do it:
 * - every scalar and list field present, with proto3's zero value when absent; an absent nested
 *   message absent;
 * - int64 a JS number, clamped to ±Number.MAX_SAFE_INTEGER beyond 2^53 (convert.ts's int64);
 *   uint64 an exact decimal string; uint32, bool and enums from the varint's low 32 bits (as
 *   protobufjs reads them); an enum number the proto does not name is fromProto's
 *   InvalidRequestError, reported after the whole message is read, for the first such field in
 *   schema order (fromProto's order), so a later valid value of the same field still wins;
 * - a field given twice: the last wins (a nested message is replaced, not merged, as protobufjs
 *   does); repeated numeric fields packed or not; bytes are views of the input;
 * - unknown fields skipped for every wire type, groups too (as protobufjs and gogo skip them);
 * - malformed input is a ProtoDecodeError worded as etcd 3.4's gogo-generated decoders word
 *   theirs (`unexpected EOF`, `proto: integer overflow`, ...): a varint of more than 10 bytes,
 *   anything running past the end of its message, wire types 6 and 7, field number 0, an end
 *   group outside a group, messages or groups nested more than 100 deep (protobufjs's limit),
 *   and a known field with a wire type its type does not have (gogo refuses it as well, where
 *   protobufjs would misread it).
 *
 * Encoding (two passes: sizes, then one Buffer written in place) omits proto3's zero values as
 * Go does, but always writes a present nested message and a present oneof member (their
 * presence is the answer: ResponseOp's response, Compare's target_union), and packs repeated
 * numeric fields.
 */
import { Buffer } from 'node:buffer';
import type { FieldKind, Schema } from '../api/codec.js';
import { InvalidRequestError } from '../api/codec.js';
import { CodedError, GrpcCode, InternalError } from '../errors.js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import { protoPackage } from './proto.js';

/**
 * A request whose bytes are not a protobuf message. grpc-go answers it with INTERNAL and
 * "grpc: error unmarshalling request: " before the decoder's own error.
 */
export class ProtoDecodeError extends CodedError {
  static override readonly grpcCode = GrpcCode.Internal;
  constructor(detail: string) {
    super('ERR_PROTO_DECODE', `grpc: error unmarshalling request: ${detail}`);
  }
}

export interface WireCodec<T> {
  /** The message in the internal shape; throws ProtoDecodeError (malformed) or InvalidRequestError (an unknown enum value). */
  decode(bytes: Uint8Array): T;
  encode(msg: T): Buffer;
}

// ---- compiling a schema against the proto's descriptor ------------------------------------

/** proto-loader's descriptors (protobufjs's toDescriptor), as far as the codec reads them. */
interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface EnumDescriptor {
  name: string;
  value: { name: string; number: number }[];
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  enumType: EnumDescriptor[];
  oneofDecl: { name: string }[];
}

/** What a field's value is, on the wire and inside. */
enum Op {
  Bytes,
  String,
  Bool,
  Int64,
  /** A uint64 in the proto held as a JS number (raft terms and indexes), clamped at 2^53-1 as convert.ts's int64. */
  Uint64Number,
  Uint64,
  Uint32,
  Enum,
  Message,
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

/** protobufjs's (and protoc's) limit of nested messages, groups counted too. */
const MAX_DEPTH = 100;

/** Each scalar kind: the proto types it may be declared with, and its op for each. */
const SCALARS: Record<Exclude<FieldKind, object>, Readonly<Record<string, Op>>> = {
  bytes: { TYPE_BYTES: Op.Bytes },
  string: { TYPE_STRING: Op.String },
  bool: { TYPE_BOOL: Op.Bool },
  // etcd's raft terms and indexes are uint64 in the proto, numbers in qkv.
  int64: { TYPE_INT64: Op.Int64, TYPE_UINT64: Op.Uint64Number },
  uint64: { TYPE_UINT64: Op.Uint64 },
  uint32: { TYPE_UINT32: Op.Uint32 },
};

const EMPTY_BYTES = Buffer.alloc(0);

class WireField {
  /** The tag written before each value (a packed list's: one tag, length-delimited). */
  readonly tag: number;
  readonly tagSize: number;
  /** A packed list's values are varints in one length-delimited field; such a list also takes them one by one. */
  readonly packed: boolean;
  /** Written whenever present, zero or not: a nested message, or a member of a oneof (its presence is its meaning). */
  readonly writtenWhenPresent: boolean;
  /** The nested message (set once the whole cycle of schemas is compiled). */
  message: WireMessage | undefined = undefined;
  /** The last uint64 encoded in this field and its 64 bits: cluster and member ids repeat on every header. */
  lastText: unknown = undefined;
  lastLo = 0;
  lastHi = 0;

  constructor(
    /** Internal (camelCase) name, proto name, and Go's field name (for gogo's error texts). */
    readonly name: string,
    readonly json: string,
    readonly goName: string,
    readonly number: number,
    readonly op: Op,
    readonly repeated: boolean,
    /** The wire type of one value. */
    readonly wireType: number,
    /** An enum's names by number (0..n-1); empty for other ops. */
    readonly enumNames: readonly string[],
    oneofMember: boolean,
  ) {
    this.packed = repeated && wireType === VARINT;
    this.writtenWhenPresent = op === Op.Message || oneofMember;
    this.tag = number * 8 + (this.packed ? LENGTH_DELIMITED : wireType);
    this.tagSize = varint32Size(this.tag);
  }
}

class WireMessage {
  /** Fields by number (undefined: unknown to the schema, skipped). */
  readonly byNumber: (WireField | undefined)[] = [];
  readonly fields: WireField[] = [];
  /** The decoded message with every field absent: scalars' zero values, no lists or messages. */
  readonly template: Record<string, unknown> = {};
  readonly listNames: string[] = [];
  /** Whether a field of this message is an enum (reachesEnum looks into the nested ones). */
  hasEnums = false;

  constructor(
    /** The proto's full name, and Go's message name for gogo's error texts. */
    readonly type: string,
    readonly goName: string,
  ) {}
}

/** Go's name of a proto field (protoc-gen-go's CamelCase): range_end → RangeEnd, peerURLs → PeerURLs. */
function goFieldName(protoName: string): string {
  return protoName.replace(/(?:^|_)([a-z])/g, (_, c: string) => c.toUpperCase());
}

function messageDescriptor(fullName: string): MessageDescriptor | undefined {
  const def = protoPackage()[fullName];
  return def && 'format' in def && def.format === 'Protocol Buffer 3 DescriptorProto' ? (def.type as MessageDescriptor) : undefined;
}

/** The enum a field of message `owner` (full name) names by `typeName`: nested in it, or in its package. */
function enumDescriptor(owner: string, desc: MessageDescriptor, typeName: string): EnumDescriptor | undefined {
  const nested = desc.enumType.find((e) => e.name === typeName);
  if (nested) return nested;
  const pkg = owner.slice(0, owner.lastIndexOf('.'));
  for (const full of [`${pkg}.${typeName}`, typeName]) {
    const def = protoPackage()[full];
    if (def && 'format' in def && def.format === 'Protocol Buffer 3 EnumDescriptorProto') return def.type as EnumDescriptor;
    const dot = full.lastIndexOf('.');
    const parent = dot > 0 ? messageDescriptor(full.slice(0, dot)) : undefined;
    const inParent = parent?.enumType.find((e) => e.name === full.slice(dot + 1));
    if (inParent) return inParent;
  }
  return undefined;
}

/**
 * The fields of a message that are members of a oneof, by proto name. proto-loader's descriptors
 * give every field a oneofIndex (0 when it has none), so membership is read from the message's
 * own serializer: a member set alone decodes with its oneof's virtual property naming it.
 */
function oneofMembers(protoType: string, desc: MessageDescriptor): Set<string> {
  const members = new Set<string>();
  if (desc.oneofDecl.length === 0) return members;
  const def = protoPackage()[protoType] as MessageTypeDefinition<Record<string, unknown>, Record<string, unknown>>;
  const zero: Record<string, unknown> = { TYPE_BYTES: EMPTY_BYTES, TYPE_STRING: '', TYPE_BOOL: false, TYPE_MESSAGE: {} };
  for (const f of desc.field) {
    const decoded = def.deserialize(def.serialize({ [f.name]: zero[f.type] ?? 0 }));
    if (desc.oneofDecl.some((o) => decoded[o.name] === f.name)) members.add(f.name);
  }
  return members;
}

/** Compiled messages by schema and proto type (one schema may stand for several proto messages). */
const compiled = new WeakMap<Schema, Map<string, WireMessage>>();

/**
 * Compiles `schema` as `protoType` and the messages it reaches; `added` collects the ones this
 * call registers, so that a failure can take them all back (none half-compiled stays cached).
 */
function compile(schema: Schema, protoType: string, added: [Schema, string][]): WireMessage {
  let byType = compiled.get(schema);
  const known = byType?.get(protoType);
  if (known) return known;
  const desc = messageDescriptor(protoType);
  if (!desc) throw new Error(`wire: message ${protoType} (schema ${schema.type}) is not in the proto files`);
  const msg = new WireMessage(protoType, protoType.slice(protoType.lastIndexOf('.') + 1));
  // Registered before its fields are compiled: a cycle of schemas (RequestOp, TxnRequest) ends here.
  if (!byType) compiled.set(schema, (byType = new Map()));
  byType.set(protoType, msg);
  added.push([schema, protoType]);
  const nested: [WireField, Schema, string][] = [];
  const inOneof = oneofMembers(protoType, desc);
  for (const spec of schema.fields) {
    const where = `field ${spec.json} of ${schema.type} (proto ${protoType})`;
    const fd = desc.field.find((f) => f.name === spec.json);
    if (!fd) throw new Error(`wire: ${where} is not in the proto message`);
    const repeated = typeof spec.kind === 'object' && 'list' in spec.kind;
    if (repeated !== (fd.label === 'LABEL_REPEATED'))
      throw new Error(`wire: ${where} is ${repeated ? '' : 'not '}a list in the schema, ${fd.label} in the proto`);
    const kind = typeof spec.kind === 'object' && 'list' in spec.kind ? spec.kind.list : spec.kind;
    let op: Op;
    let wireType: number;
    let enumNames: readonly string[] = [];
    if (typeof kind === 'string') {
      const scalar = SCALARS[kind][fd.type];
      if (scalar === undefined) throw new Error(`wire: ${where} is ${kind} in the schema, ${fd.type} in the proto`);
      op = scalar;
      wireType = op === Op.Bytes || op === Op.String ? LENGTH_DELIMITED : VARINT;
    } else if ('enum' in kind) {
      op = Op.Enum;
      wireType = VARINT;
      const ed = fd.type === 'TYPE_ENUM' ? enumDescriptor(protoType, desc, fd.typeName) : undefined;
      if (!ed) throw new Error(`wire: ${where} is an enum in the schema, ${fd.type} ${fd.typeName} in the proto`);
      const protoNames = [...ed.value].sort((a, b) => a.number - b.number).map((v, i) => (v.number === i ? v.name : `${v.name}=${v.number}`));
      if (protoNames.join() !== kind.enum.join())
        throw new Error(`wire: ${where}: the schema's enum [${kind.enum.join()}] is not the proto's [${protoNames.join()}]`);
      enumNames = kind.enum;
      msg.hasEnums = true;
    } else if ('message' in kind) {
      op = Op.Message;
      wireType = LENGTH_DELIMITED;
      const sub = kind.message();
      if (fd.type !== 'TYPE_MESSAGE' || (sub.type !== fd.typeName && !sub.type.endsWith(`.${fd.typeName}`))) {
        throw new Error(`wire: ${where} is message ${sub.type} in the schema, ${fd.type} ${fd.typeName} in the proto`);
      }
      const field = new WireField(spec.name, spec.json, goFieldName(spec.json), fd.number, op, repeated, wireType, enumNames, inOneof.has(fd.name));
      nested.push([field, sub, sub.type]);
      addField(msg, field);
      continue;
    } else {
      throw new Error(`wire: ${where}: a list of lists`);
    }
    addField(msg, new WireField(spec.name, spec.json, goFieldName(spec.json), fd.number, op, repeated, wireType, enumNames, inOneof.has(fd.name)));
  }
  for (const [field, sub, type] of nested) {
    field.message = compile(sub, type, added);
  }
  return msg;
}

function addField(msg: WireMessage, field: WireField): void {
  msg.fields.push(field);
  while (msg.byNumber.length <= field.number) msg.byNumber.push(undefined);
  msg.byNumber[field.number] = field;
  if (field.repeated) msg.listNames.push(field.name);
  else if (field.op !== Op.Message) msg.template[field.name] = zeroValue(field);
}

function zeroValue(field: WireField): unknown {
  switch (field.op) {
    case Op.Bytes:
      return EMPTY_BYTES;
    case Op.String:
      return '';
    case Op.Bool:
      return false;
    case Op.Int64:
    case Op.Uint64Number:
    case Op.Uint32:
      return 0;
    case Op.Uint64:
      return '0';
    default:
      return field.enumNames[0];
  }
}

/** Whether `msg`, or a message it reaches, has an enum field. */
function reachesEnum(msg: WireMessage, seen = new Set<WireMessage>()): boolean {
  if (msg.hasEnums) return true;
  seen.add(msg);
  return msg.fields.some((f) => f.message !== undefined && !seen.has(f.message) && reachesEnum(f.message, seen));
}

const codecs = new WeakMap<Schema, Map<string, WireCodec<unknown>>>();

/**
 * The codec of `schema` as the proto message `protoType` (by default the schema's own type; a
 * schema shared by several methods, such as HeaderOnlyResponse, names each method's message,
 * see proto.ts's methodMessageTypes). Compiled once per schema and type.
 */
export function wireCodec<T>(schema: Schema, protoType: string = schema.type): WireCodec<T> {
  let byType = codecs.get(schema);
  let codec = byType?.get(protoType);
  if (!codec) {
    const added: [Schema, string][] = [];
    let msg: WireMessage;
    try {
      msg = compile(schema, protoType, added);
    } catch (err) {
      for (const [s, t] of added) compiled.get(s)?.delete(t);
      throw err;
    }
    const checkEnums = reachesEnum(msg);
    codec = {
      decode: (bytes) => decodeTop(msg, bytes, checkEnums),
      encode: (value) => encodeTop(msg, value as object),
    };
    if (!byType) codecs.set(schema, (byType = new Map()));
    byType.set(protoType, codec);
  }
  return codec as WireCodec<T>;
}

// ---- decoding -------------------------------------------------------------------------------

/** The input and the position in it; `hi` holds the high 32 bits of the last varint read. */
class Reader {
  pos = 0;
  hi = 0;
  /** An enum field held a number its enum does not name (checked once the message is read). */
  unknownEnum = false;
  constructor(readonly buf: Buffer) {}
}

const TWO_32 = 4294967296;

function eof(): ProtoDecodeError {
  return new ProtoDecodeError('unexpected EOF');
}

/**
 * Reads a varint that ends before `end` (at most 10 bytes, as gogo's decoders: bits beyond the
 * 64th dropped): returns its low 32 bits, unsigned, and leaves the high 32 in `r.hi`.
 */
function readVarint(r: Reader, end: number): number {
  const buf = r.buf;
  let p = r.pos;
  if (p >= end) throw eof();
  let b = buf[p++]!;
  if (b < 0x80) {
    r.pos = p;
    r.hi = 0;
    return b;
  }
  let lo = b & 0x7f;
  let hi = 0;
  for (let i = 1; i < 10; i++) {
    if (p >= end) throw eof();
    b = buf[p++]!;
    // Bytes 0-3 fill lo's bits 0-27; byte 4 lo's 28-31 and hi's 0-2; bytes 5-9 the rest of hi.
    if (i < 4) lo |= (b & 0x7f) << (7 * i);
    else if (i === 4) {
      lo |= (b & 0x0f) << 28;
      hi = (b & 0x7f) >> 4;
    } else hi |= (b & 0x7f) << (7 * i - 32);
    if (b < 0x80) {
      r.pos = p;
      r.hi = hi >>> 0;
      return lo >>> 0;
    }
  }
  throw new ProtoDecodeError('proto: integer overflow');
}

/** Reads a length-delimited field's length; returns where the field ends (within `end`). */
function readLength(r: Reader, end: number): number {
  const len = readVarint(r, end);
  if (r.hi !== 0 || len > end - r.pos) {
    // gogo reads the length as a signed 64-bit int.
    if (r.hi >= 0x80000000) throw new ProtoDecodeError('proto: negative length found during unmarshaling');
    throw eof();
  }
  return r.pos + len;
}

/** An int64's 64 bits as a JS number, clamped to ±(2^53-1) as convert.ts's int64. */
function int64Number(lo: number, hi: number): number {
  const high = hi | 0;
  if (high >= 0x200000) return Number.MAX_SAFE_INTEGER;
  if (high < -0x200000) return Number.MIN_SAFE_INTEGER;
  const v = high * TWO_32 + lo;
  return Math.max(v, Number.MIN_SAFE_INTEGER);
}

/** A uint64's 64 bits as an exact decimal string. */
function uint64Text(lo: number, hi: number): string {
  if (hi < 0x200000) return String(hi * TWO_32 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** One value of a varint field (its wire type already checked). */
function readVarintValue(r: Reader, f: WireField, end: number): unknown {
  const lo = readVarint(r, end);
  switch (f.op) {
    case Op.Bool:
      return lo !== 0;
    case Op.Int64:
      return int64Number(lo, r.hi);
    case Op.Uint64Number:
      return r.hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : r.hi * TWO_32 + lo;
    case Op.Uint64:
      return uint64Text(lo, r.hi);
    case Op.Uint32:
      return lo;
    default: {
      const n = lo | 0;
      const name = f.enumNames[n];
      if (name !== undefined) return name;
      // Kept as the number, as protobufjs keeps it; decodeTop refuses it once the message is read.
      r.unknownEnum = true;
      return n;
    }
  }
}

/** One value of a length-delimited field (bytes, string or message). */
function readDelimitedValue(r: Reader, f: WireField, end: number, depth: number): unknown {
  const valueEnd = readLength(r, end);
  const start = r.pos;
  if (f.op === Op.Message) {
    if (depth >= MAX_DEPTH) throw new ProtoDecodeError('exceeded maximum recursion depth');
    return decodeMessage(r, f.message!, valueEnd, depth + 1);
  }
  r.pos = valueEnd;
  return f.op === Op.Bytes ? r.buf.subarray(start, valueEnd) : r.buf.toString('utf8', start, valueEnd);
}

/** Skips the value of an unknown field (its tag read) with wire type `wireType`. */
function skipValue(r: Reader, wireType: number, end: number, depth: number): void {
  switch (wireType) {
    case VARINT:
      readVarint(r, end);
      return;
    case FIXED64:
    case FIXED32: {
      const n = wireType === FIXED64 ? 8 : 4;
      if (end - r.pos < n) throw eof();
      r.pos += n;
      return;
    }
    case LENGTH_DELIMITED:
      r.pos = readLength(r, end);
      return;
    case START_GROUP: {
      // Fields up to the matching end group, nested groups counted (no recursion).
      // protobufjs's depth: a field inside `open` groups is at the message's depth + open.
      let open = 1;
      while (open > 0) {
        const wt = readVarint(r, end) & 7;
        if (wt === END_GROUP) {
          open--;
          continue;
        }
        if (depth + open > MAX_DEPTH) throw new ProtoDecodeError('exceeded maximum recursion depth');
        if (wt === START_GROUP) open++;
        else skipValue(r, wt, end, depth);
      }
      return;
    }
    case END_GROUP:
      throw new ProtoDecodeError('proto: unexpected end of group');
    default:
      throw new ProtoDecodeError(`proto: illegal wireType ${wireType}`);
  }
}

function decodeMessage(r: Reader, m: WireMessage, end: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...m.template };
  const lists = m.listNames;
  for (let i = 0; i < lists.length; i++) out[lists[i]!] = [];
  const byNumber = m.byNumber;
  while (r.pos < end) {
    const tag = readVarint(r, end);
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (r.hi !== 0 || number === 0) {
      throw new ProtoDecodeError(`proto: ${m.goName}: illegal tag ${(r.hi << 29) | number | 0} (wire type ${wireType})`);
    }
    if (wireType === END_GROUP) throw new ProtoDecodeError(`proto: ${m.goName}: wiretype end group for non-group`);
    const f = number < byNumber.length ? byNumber[number] : undefined;
    if (f === undefined) {
      skipValue(r, wireType, end, depth);
      continue;
    }
    if (wireType === f.wireType) {
      const v = wireType === VARINT ? readVarintValue(r, f, end) : readDelimitedValue(r, f, end, depth);
      if (f.repeated) (out[f.name] as unknown[]).push(v);
      else out[f.name] = v;
    } else if (f.packed && wireType === LENGTH_DELIMITED) {
      const listEnd = readLength(r, end);
      const list = out[f.name] as unknown[];
      while (r.pos < listEnd) list.push(readVarintValue(r, f, listEnd));
    } else {
      throw new ProtoDecodeError(`proto: wrong wireType = ${wireType} for field ${f.goName}`);
    }
  }
  return out;
}

/** fromProto's refusal of an enum number the proto does not name: the first in schema order. */
function checkEnums(m: WireMessage, out: Record<string, unknown>): void {
  for (const f of m.fields) {
    const v = out[f.name];
    if (f.op === Op.Enum) {
      for (const item of f.repeated ? (v as unknown[]) : [v]) {
        if (typeof item === 'number') throw new InvalidRequestError(`unknown value ${item} for enum field ${f.json}`);
      }
    } else if (f.op === Op.Message && v !== undefined) {
      for (const item of f.repeated ? (v as Record<string, unknown>[]) : [v as Record<string, unknown>]) checkEnums(f.message!, item);
    }
  }
}

function decodeTop(m: WireMessage, bytes: Uint8Array, enums: boolean): unknown {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  const out = decodeMessage(r, m, buf.length, 0);
  if (enums && r.unknownEnum) checkEnums(m, out);
  return out;
}

// ---- encoding -------------------------------------------------------------------------------

/**
 * The sizes the first pass measured that the second writes: nested messages' lengths and
 * strings' UTF-8 lengths, in the order both passes meet them. Module state: an encode runs to
 * its end without yielding.
 */
const sizes: number[] = [];
let sizeCount = 0;
let sizeNext = 0;

/** The two 32-bit halves of the last 64-bit value converted (int64's two's complement, uint64's bits). */
let lo64 = 0;
let hi64 = 0;

/** The bytes of a varint of `n` (below 2^32): 7 bits a byte. */
function varint32Size(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

/** The bytes of a varint of the 64 bits hi:lo. */
function varint64Size(lo: number, hi: number): number {
  return hi === 0 ? varint32Size(lo) : Math.ceil((64 - Math.clz32(hi)) / 7);
}

function invalid(f: WireField, v: unknown): InternalError {
  return new InternalError(`wire: invalid value ${String(v)} for ${f.op === Op.Enum ? 'enum' : 'integer'} field ${f.json}`);
}

/** Sets lo64/hi64 to a bigint's low 64 bits. */
function setBits(b: bigint): void {
  const u = BigInt.asUintN(64, b);
  lo64 = Number(u & 0xffffffffn);
  hi64 = Number(u >> 32n);
}

/** Sets lo64/hi64 to the bits of a safe integer (a negative one in two's complement). */
function setNumberBits(n: number): void {
  const hi = Math.floor(n / TWO_32);
  lo64 = n - hi * TWO_32;
  hi64 = hi >>> 0;
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Sets lo64/hi64 to a 64-bit field's value as protobufjs's Long.fromValue takes it: a number
 * truncated and saturated at the range of the field's proto type (a negative one is 0 for a
 * uint64), NaN 0; a decimal string wrapped to 64 bits.
 */
function setInt64Bits(f: WireField, v: unknown): void {
  const unsigned = f.op !== Op.Int64;
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && (v >= 0 || !unsigned)) return setNumberBits(v);
    if (Number.isNaN(v)) return setNumberBits(0);
    const [min, max] = unsigned ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
    if (v === Number.POSITIVE_INFINITY || v === Number.NEGATIVE_INFINITY) return setBits(v > 0 ? max : min);
    const b = BigInt(Math.trunc(v));
    return setBits(b > max ? max : b < min ? min : b);
  }
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return setBits(BigInt(v));
  if (typeof v === 'bigint') return setBits(v);
  throw invalid(f, v);
}

/** Sets lo64/hi64 to a uint64 value, through the field's cache of its last value. */
function setUint64Bits(f: WireField, v: unknown): void {
  if (v === f.lastText) {
    lo64 = f.lastLo;
    hi64 = f.lastHi;
    return;
  }
  setInt64Bits(f, v);
  f.lastText = v;
  f.lastLo = lo64;
  f.lastHi = hi64;
}

function enumNumber(f: WireField, v: unknown): number {
  const n = f.enumNames.indexOf(v as string);
  if (n < 0) throw invalid(f, v);
  return n;
}

/** Sets lo64/hi64 to the varint a bool, integer or enum value is written as. */
function setVarintBits(f: WireField, v: unknown): void {
  switch (f.op) {
    case Op.Bool:
      lo64 = v ? 1 : 0;
      hi64 = 0;
      return;
    case Op.Enum:
      lo64 = enumNumber(f, v);
      hi64 = 0;
      return;
    case Op.Uint32:
      lo64 = Number(v) >>> 0;
      hi64 = 0;
      return;
    case Op.Uint64:
      return setUint64Bits(f, v);
    default:
      // Most int64s (revisions, versions, counts) are small and non-negative.
      if (typeof v === 'number' && (v | 0) === v && v >= 0) {
        lo64 = v;
        hi64 = 0;
        return;
      }
      return setInt64Bits(f, v);
  }
}

/** The size of one value, tag excluded; -1 for a zero scalar when `omitZero` (a field, not a list item). */
function valueSize(f: WireField, v: unknown, depth: number, omitZero: boolean): number {
  switch (f.op) {
    case Op.Bytes: {
      const n = (v as Uint8Array).byteLength;
      return n === 0 && omitZero ? -1 : varint32Size(n) + n;
    }
    case Op.String: {
      const s = typeof v === 'string' ? v : String(v);
      if (s.length === 0 && omitZero) return -1;
      const n = s.length === 0 ? 0 : Buffer.byteLength(s);
      sizes[sizeCount++] = n;
      return varint32Size(n) + n;
    }
    case Op.Message: {
      if (depth >= MAX_DEPTH) throw new InternalError(`wire: ${f.message!.type} nested more than ${MAX_DEPTH} deep`);
      const slot = sizeCount++;
      const n = messageSize(f.message!, v as Record<string, unknown>, depth + 1);
      sizes[slot] = n;
      return varint32Size(n) + n;
    }
    default:
      setVarintBits(f, v);
      return lo64 === 0 && hi64 === 0 && omitZero ? -1 : varint64Size(lo64, hi64);
  }
}

function messageSize(m: WireMessage, obj: Record<string, unknown>, depth: number): number {
  let size = 0;
  const fields = m.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = obj[f.name];
    if (v === undefined || v === null) continue;
    if (!f.repeated) {
      const n = valueSize(f, v, depth, !f.writtenWhenPresent);
      if (n >= 0) size += f.tagSize + n;
      continue;
    }
    const list = v as unknown[];
    if (list.length === 0) continue;
    if (f.packed) {
      let n = 0;
      for (let j = 0; j < list.length; j++) n += valueSize(f, list[j], depth, false);
      sizes[sizeCount++] = n;
      size += f.tagSize + varint32Size(n) + n;
    } else {
      for (let j = 0; j < list.length; j++) size += f.tagSize + valueSize(f, list[j], depth, false);
    }
  }
  return size;
}

function writeVarint32(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

function writeVarint64(buf: Buffer, pos: number, lo: number, hi: number): number {
  while (hi !== 0) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  return writeVarint32(buf, pos, lo);
}

/** Writes one value, tag excluded (the first pass decided it is written). */
function writeValue(f: WireField, v: unknown, buf: Buffer, pos: number): number {
  switch (f.op) {
    case Op.Bytes: {
      const bytes = v as Uint8Array;
      const n = bytes.byteLength;
      pos = writeVarint32(buf, pos, n);
      if (n < 64) for (let i = 0; i < n; i++) buf[pos + i] = bytes[i]!;
      else buf.set(bytes, pos);
      return pos + n;
    }
    case Op.String: {
      const n = sizes[sizeNext++]!;
      pos = writeVarint32(buf, pos, n);
      if (n > 0) buf.write(typeof v === 'string' ? v : String(v), pos, n, 'utf8');
      return pos + n;
    }
    case Op.Message: {
      const n = sizes[sizeNext++]!;
      pos = writeVarint32(buf, pos, n);
      return writeMessage(f.message!, v as Record<string, unknown>, buf, pos);
    }
    default:
      setVarintBits(f, v);
      return writeVarint64(buf, pos, lo64, hi64);
  }
}

/** Whether a field's value is proto3's zero (not written), as valueSize decided for it. */
function isZero(f: WireField, v: unknown): boolean {
  switch (f.op) {
    case Op.Bytes:
      return (v as Uint8Array).byteLength === 0;
    case Op.String:
      return (typeof v === 'string' ? v : String(v)).length === 0;
    case Op.Message:
      return false;
    default:
      setVarintBits(f, v);
      return lo64 === 0 && hi64 === 0;
  }
}

function writeMessage(m: WireMessage, obj: Record<string, unknown>, buf: Buffer, pos: number): number {
  const fields = m.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = obj[f.name];
    if (v === undefined || v === null) continue;
    if (!f.repeated) {
      if (!f.writtenWhenPresent && isZero(f, v)) continue;
      pos = writeVarint32(buf, pos, f.tag);
      pos = writeValue(f, v, buf, pos);
      continue;
    }
    const list = v as unknown[];
    if (list.length === 0) continue;
    if (f.packed) {
      pos = writeVarint32(buf, pos, f.tag);
      pos = writeVarint32(buf, pos, sizes[sizeNext++]!);
      for (let j = 0; j < list.length; j++) pos = writeValue(f, list[j], buf, pos);
    } else {
      for (let j = 0; j < list.length; j++) {
        pos = writeVarint32(buf, pos, f.tag);
        pos = writeValue(f, list[j], buf, pos);
      }
    }
  }
  return pos;
}

function encodeTop(m: WireMessage, obj: object): Buffer {
  sizeCount = 0;
  const size = messageSize(m, obj as Record<string, unknown>, 0);
  const buf = Buffer.allocUnsafe(size);
  sizeNext = 0;
  const end = writeMessage(m, obj as Record<string, unknown>, buf, 0);
  if (end !== size || sizeNext !== sizeCount) throw new InternalError(`wire: ${m.type} measured ${size} bytes, wrote ${end}`);
  return buf;
}
