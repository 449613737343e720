// src/grpc/wire.ts against the path it replaces: @grpc/proto-loader's protobufjs (de)serializer
// with convert.ts's fromProto/toProto, for every schema of the unary methods (and Watch's, the
// only packed list), both ways, plus the malformed inputs and the codec's own choices.
import { Buffer } from 'node:buffer';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldKind, Schema } from '../../src/api/codec.js';
import { field } from '../../src/api/codec.js';
import * as S from '../../src/api/schemas.js';
import { GrpcCode, InternalError } from '../../src/errors.js';
import { fromProto, toProto } from '../../src/grpc/convert.js';
import { etcdServices, methodMessageTypes, type ProtoMessage, type ProtoValue, protoPackage } from '../../src/grpc/proto.js';
import { ProtoDecodeError, wireCodec } from '../../src/grpc/wire.js';
import { toGrpcStatus } from '../../src/server/errors.js';
import { type ServiceName, unaryMethodsOf } from '../../src/server/services.js';

// ---- the messages under test ------------------------------------------------------------

interface Case {
  label: string;
  schema: Schema;
  protoType: string;
}

function topLevelCases(): Case[] {
  const cases = new Map<string, Case>();
  const add = (label: string, schema: Schema, protoType: string): void => {
    const key = `${schema.type} as ${protoType}`;
    if (!cases.has(key)) cases.set(key, { label: `${label} (${key})`, schema, protoType });
  };
  for (const service of Object.keys(etcdServices()) as ServiceName[]) {
    for (const m of unaryMethodsOf(service)) {
      const types = methodMessageTypes(service, m.method);
      add(`${service}/${m.method} request`, m.request, types.request);
      add(`${service}/${m.method} response`, m.response, types.response);
    }
  }
  // Watch is a stream, not in the table; its WatchCreateRequest.filters is the protos' only packed list.
  add('Watch/Watch request', S.WatchRequest, 'etcdserverpb.WatchRequest');
  add('Watch/Watch response', S.WatchResponse, 'etcdserverpb.WatchResponse');
  return [...cases.values()];
}

const CASES = topLevelCases();

function itemKind(kind: FieldKind): Exclude<FieldKind, { list: FieldKind }> {
  return typeof kind === 'object' && 'list' in kind ? itemKind(kind.list) : kind;
}

/** Every message type a schema reaches, itself included. */
function reachableTypes(schema: Schema, into = new Set<string>()): Set<string> {
  if (into.has(schema.type)) return into;
  into.add(schema.type);
  for (const f of schema.fields) {
    const k = itemKind(f.kind);
    if (typeof k === 'object' && 'message' in k) reachableTypes(k.message(), into);
  }
  return into;
}

/** proto-loader's serializer and deserializer of a message (the path wire.ts replaces). */
function reference(protoType: string): { serialize(m: ProtoMessage): Buffer; deserialize(b: Buffer): ProtoMessage } {
  const def = protoPackage()[protoType] as MessageTypeDefinition<ProtoMessage, ProtoMessage> | undefined;
  if (!def?.serialize) throw new Error(`no message ${protoType}`);
  return def;
}

/** The proto's declared type of each field of a message (TYPE_INT64...), by proto name. */
function protoFieldTypes(protoType: string): Map<string, string> {
  const desc = protoPackage()[protoType]?.type as { field: { name: string; type: string }[] };
  return new Map(desc.field.map((f) => [f.name, f.type]));
}

/** A call's result or its error, as the class and message (the two paths must agree on both). */
function outcome(f: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: f() };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

// ---- arbitraries ------------------------------------------------------------------------

const MAX_GEN_DEPTH = 3;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const bytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.uint8Array({ maxLength: 8 }),
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ minLength: 60, maxLength: 300 }).map((a) => Buffer.from(a)),
);
const stringArb = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 12 }), fc.constant(''));

/** An int64 as handlers give it: mostly safe integers, also decimal strings and numbers past 2^53. */
const internalInt64Arb: fc.Arbitrary<number | string> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.maxSafeInteger(),
  fc.constantFrom(
    0,
    -1,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    -(2 ** 31),
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    2 ** 53,
    2 ** 60,
    -(2 ** 62),
    1e19,
    -1e19,
    1.5,
    -2.5,
  ),
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map(String),
  fc.constantFrom('0', '-0', '9223372036854775807', '-9223372036854775808', '9007199254740993'),
);
const internalUint64Arb: fc.Arbitrary<number | string> = fc.oneof(
  fc.bigInt({ min: 0n, max: UINT64_MAX }).map(String),
  fc.maxSafeNat(),
  fc.constantFrom('0', 0, '14841639068965178418', '10276657743932975437', '18446744073709551615'),
);

/** A message in the internal shape (what handlers return): fields absent, undefined or null now and then. */
function internalArb(schema: Schema, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of schema.fields) {
    const list = typeof f.kind === 'object' && 'list' in f.kind;
    const k = itemKind(f.kind);
    let item: fc.Arbitrary<unknown>;
    if (k === 'bytes') item = bytesArb;
    else if (k === 'string') item = stringArb;
    else if (k === 'bool') item = fc.boolean();
    else if (k === 'int64') item = internalInt64Arb;
    else if (k === 'uint64') item = internalUint64Arb;
    else if (k === 'uint32') item = fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constant(0));
    else if ('enum' in k) item = fc.constantFrom(...k.enum);
    else if (depth >= MAX_GEN_DEPTH) {
      model[f.name] = fc.constantFrom(undefined, null);
      continue;
    } else {
      const sub = internalArb(k.message(), depth + 1);
      item = list ? sub : fc.oneof(sub, fc.constantFrom(undefined, null));
    }
    model[f.name] = list ? fc.array(item, { maxLength: 3 }) : item;
  }
  return fc.record(model, { requiredKeys: [] });
}

/** A proto object as protobufjs takes it (proto names, 64-bit integers as strings, enums as names or any int32). */
function protoArb(schema: Schema, protoType: string, depth = 0): fc.Arbitrary<ProtoMessage> {
  const types = protoFieldTypes(protoType);
  const model: Record<string, fc.Arbitrary<ProtoValue>> = {};
  for (const f of schema.fields) {
    const list = typeof f.kind === 'object' && 'list' in f.kind;
    const k = itemKind(f.kind);
    const protoFieldType = types.get(f.json);
    let item: fc.Arbitrary<ProtoValue>;
    if (k === 'bytes') item = bytesArb.map((b) => Buffer.from(b));
    else if (k === 'string') item = stringArb;
    else if (k === 'bool') item = fc.boolean();
    else if (protoFieldType === 'TYPE_INT64') item = fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map(String);
    else if (protoFieldType === 'TYPE_UINT64') item = fc.oneof(fc.bigInt({ min: 0n, max: UINT64_MAX }), fc.bigInt({ min: 0n, max: 2n ** 53n })).map(String);
    else if (k === 'uint32') item = fc.integer({ min: 0, max: 2 ** 32 - 1 });
    else if (typeof k === 'object' && 'enum' in k) {
      // Known names, known numbers, and numbers the enum does not name (negative ones too: 10-byte varints).
      item = fc.oneof(fc.constantFrom(...k.enum), fc.integer({ min: -3, max: k.enum.length + 3 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
    } else if (typeof k === 'object' && 'message' in k) {
      if (depth >= MAX_GEN_DEPTH) continue;
      const sub = k.message();
      item = protoArb(sub, sub.type, depth + 1);
    } else throw new Error(`no arbitrary for ${f.json}`);
    model[f.json] = list ? fc.array(item, { maxLength: 3 }) : item;
  }
  return fc.record(model, { requiredKeys: [] });
}

// ---- hand-built wire bytes --------------------------------------------------------------

function varint(n: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const tag = (number: number, wireType: number): Buffer => varint(number * 8 + wireType);
const delimited = (number: number, body: Buffer): Buffer => Buffer.concat([tag(number, 2), varint(body.length), body]);

/** Unknown fields of every wire type (groups nested, holding any field numbers), numbers not in `known`. */
function unknownFieldsArb(known: ReadonlySet<number>): fc.Arbitrary<Buffer> {
  const number = fc.integer({ min: 1, max: 2 ** 29 - 1 }).filter((n) => !known.has(n));
  const { value } = fc.letrec<{ value: Buffer; group: Buffer }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.tuple(number, fc.bigInt({ min: 0n, max: UINT64_MAX })).map(([n, v]) => Buffer.concat([tag(n, 0), varint(v)])),
      fc.tuple(number, fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([n, b]) => Buffer.concat([tag(n, 1), b])),
      fc.tuple(number, fc.uint8Array({ maxLength: 20 })).map(([n, b]) => delimited(n, Buffer.from(b))),
      fc.tuple(number, fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([n, b]) => Buffer.concat([tag(n, 5), b])),
      tie('group'),
    ),
    // A group's own number is unknown too; the fields inside it are skipped with it, whatever their numbers.
    group: fc.tuple(number, fc.array(tie('value'), { maxLength: 3 })).map(([n, inner]) => Buffer.concat([tag(n, 3), ...inner, tag(n, 4)])),
  }));
  return fc.array(value, { maxLength: 4 }).map((parts) => Buffer.concat(parts));
}

function fieldNumbers(protoType: string): Set<number> {
  const desc = protoPackage()[protoType]?.type as { field: { number: number }[] };
  return new Set(desc.field.map((f) => f.number));
}

// ---- the properties ---------------------------------------------------------------------

describe('wire codec against proto-loader + convert.ts', () => {
  it('covers every message type the unary methods reach', () => {
    const reachable = new Set<string>();
    for (const c of CASES) reachableTypes(c.schema, reachable);
    const generated = new Set<string>();
    const collect = (schema: Schema, v: Record<string, unknown>): void => {
      generated.add(schema.type);
      for (const f of schema.fields) {
        const k = itemKind(f.kind);
        const value = v[f.name];
        if (typeof k !== 'object' || !('message' in k) || value === undefined || value === null) continue;
        for (const item of Array.isArray(value) ? value : [value]) collect(k.message(), item as Record<string, unknown>);
      }
    };
    for (const c of CASES) for (const sample of fc.sample(internalArb(c.schema), 300)) collect(c.schema, sample);
    expect([...reachable].filter((t) => !generated.has(t))).toEqual([]);
    expect(reachable.size).toBeGreaterThan(60);
  });

  describe.each(CASES)('$label', ({ schema, protoType }) => {
    const codec = wireCodec<Record<string, unknown>>(schema, protoType);
    const ref = reference(protoType);
    const known = fieldNumbers(protoType);

    it('encodes internal messages to what decodes as protobufjs encoding of toProto decodes', () => {
      fc.assert(
        fc.property(internalArb(schema), (x) => {
          const ours = codec.encode(x);
          const theirs = ref.serialize(toProto(x, schema));
          expect(codec.decode(ours)).toStrictEqual(fromProto(ref.deserialize(theirs), schema));
          expect(ref.deserialize(ours)).toStrictEqual(ref.deserialize(theirs));
        }),
        { numRuns: 150 },
      );
    });

    it('decodes protobufjs encodings, with unknown fields around them and a message given twice, as fromProto', () => {
      fc.assert(
        fc.property(
          protoArb(schema, protoType),
          protoArb(schema, protoType),
          unknownFieldsArb(known),
          unknownFieldsArb(known),
          fc.boolean(),
          (a, b, before, after, twice) => {
            const bytes = Buffer.concat([before, ref.serialize(a), after, twice ? ref.serialize(b) : Buffer.alloc(0)]);
            expect(outcome(() => codec.decode(bytes))).toStrictEqual(outcome(() => fromProto(ref.deserialize(bytes), schema)));
          },
        ),
        { numRuns: 150 },
      );
    });
  });
});

describe('wire codec decoding', () => {
  const range = wireCodec<Record<string, unknown>>(S.RangeRequest);
  const rangeRef = reference('etcdserverpb.RangeRequest');
  const decodedByReference = (bytes: Buffer, schema: Schema, protoType = schema.type): ReturnType<typeof outcome> =>
    outcome(() => fromProto(reference(protoType).deserialize(bytes), schema));

  it('gives int64s as numbers, negative ones from 10-byte varints, clamped beyond 2^53; uint64s as exact strings', () => {
    const cases: [bigint, number][] = [
      [-1n, -1],
      [-(2n ** 31n), -(2 ** 31)],
      [-(2n ** 32n) - 5n, -(2 ** 32) - 5],
      [2n ** 53n - 1n, Number.MAX_SAFE_INTEGER],
      [2n ** 53n, Number.MAX_SAFE_INTEGER],
      [-(2n ** 53n) + 1n, Number.MIN_SAFE_INTEGER],
      [-(2n ** 53n), Number.MIN_SAFE_INTEGER],
      [INT64_MAX, Number.MAX_SAFE_INTEGER],
      [INT64_MIN, Number.MIN_SAFE_INTEGER],
      [2n ** 40n + 3n, 2 ** 40 + 3],
    ];
    for (const [wire, number] of cases) {
      const bytes = Buffer.concat([tag(3, 0), varint(wire)]);
      expect(range.decode(bytes).limit, String(wire)).toBe(number);
      expect(outcome(() => range.decode(bytes))).toStrictEqual(decodedByReference(bytes, S.RangeRequest));
    }
    const remove = wireCodec<{ id: string }>(S.MemberRemoveRequest);
    for (const id of [0n, 1n, 2n ** 53n + 1n, 14841639068965178418n, UINT64_MAX]) {
      expect(remove.decode(Buffer.concat([tag(1, 0), varint(id)])).id).toBe(id.toString());
    }
  });

  it('keeps the last of a field given twice, and appends to a list given twice', () => {
    const bytes = Buffer.concat([tag(3, 0), varint(5), delimited(1, Buffer.from('a')), tag(3, 0), varint(7), delimited(1, Buffer.from('b'))]);
    expect(range.decode(bytes)).toMatchObject({ limit: 7, key: Buffer.from('b') });
    const resp = wireCodec<{ header: { revision: number; raftTerm: number }; kvs: { key: Buffer }[] }>(S.RangeResponse);
    const header = (body: Buffer): Buffer => delimited(1, body);
    const kv = (key: string): Buffer => delimited(2, delimited(1, Buffer.from(key)));
    const twice = Buffer.concat([
      header(Buffer.concat([tag(3, 0), varint(4), tag(4, 0), varint(2)])),
      kv('x'),
      header(Buffer.concat([tag(3, 0), varint(9)])),
      kv('y'),
    ]);
    const decoded = resp.decode(twice);
    // The second header replaces the first (protobufjs), not merged into it (Go): raft_term is 0 again.
    expect(decoded.header).toStrictEqual({ clusterId: '0', memberId: '0', revision: 9, raftTerm: 0 });
    expect(decoded.kvs.map((k) => k.key.toString())).toEqual(['x', 'y']);
    expect(outcome(() => resp.decode(twice))).toStrictEqual(decodedByReference(twice, S.RangeResponse));
  });

  it('reads repeated numeric fields packed, unpacked, and both in one message', () => {
    const watch = wireCodec<{ createRequest: { filters: string[] } }>(S.WatchRequest);
    const create = (body: Buffer): Buffer => delimited(1, body);
    const packed = create(delimited(5, Buffer.from([1, 0, 1])));
    const unpacked = create(Buffer.concat([tag(5, 0), varint(0), tag(5, 0), varint(1)]));
    const mixed = create(Buffer.concat([tag(5, 0), varint(1), delimited(5, Buffer.from([0, 0])), tag(5, 0), varint(1)]));
    expect(watch.decode(packed).createRequest.filters).toEqual(['NODELETE', 'NOPUT', 'NODELETE']);
    expect(watch.decode(unpacked).createRequest.filters).toEqual(['NOPUT', 'NODELETE']);
    expect(watch.decode(mixed).createRequest.filters).toEqual(['NODELETE', 'NOPUT', 'NOPUT', 'NODELETE']);
    for (const bytes of [packed, unpacked, mixed]) expect(outcome(() => watch.decode(bytes))).toStrictEqual(decodedByReference(bytes, S.WatchRequest));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -2, max: 3 }), { maxLength: 6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), (values, packedAt) => {
        // Runs of values, each run packed or one field per value, in one WatchCreateRequest.
        const parts = values.map((v, i) => (packedAt[i] ? delimited(5, varint(v)) : Buffer.concat([tag(5, 0), varint(v)])));
        const bytes = create(Buffer.concat(parts));
        expect(outcome(() => watch.decode(bytes))).toStrictEqual(decodedByReference(bytes, S.WatchRequest));
      }),
    );
  });

  it('refuses an enum number the proto does not name as fromProto does: after the message, first in schema order, a later valid value winning', () => {
    const later = Buffer.concat([tag(5, 0), varint(7), tag(5, 0), varint(1)]);
    expect(range.decode(later).sortOrder).toBe('ASCEND');
    // sort_target (6) before sort_order (5) on the wire; fromProto names sort_order, first in the schema.
    const both = Buffer.concat([tag(6, 0), varint(9), tag(5, 0), varint(-1)]);
    expect(() => range.decode(both)).toThrow('unknown value -1 for enum field sort_order');
    for (const bytes of [later, both]) expect(outcome(() => range.decode(bytes))).toStrictEqual(decodedByReference(bytes, S.RangeRequest));
    // Large values keep only their low 32 bits as an int32, as protobufjs reads them: 2^32 + 1 is ASCEND.
    expect(range.decode(Buffer.concat([tag(5, 0), varint(2n ** 32n + 1n)])).sortOrder).toBe('ASCEND');
  });

  it('skips unknown fields of every wire type, nested groups too', () => {
    const group = Buffer.concat([
      tag(90, 3),
      tag(1, 0),
      varint(5),
      tag(91, 3),
      delimited(3, Buffer.from('zz')),
      tag(91, 4),
      tag(2, 1),
      Buffer.alloc(8),
      tag(90, 4),
    ]);
    const unknown = Buffer.concat([
      tag(100, 0),
      varint(-1),
      tag(101, 1),
      Buffer.alloc(8, 1),
      delimited(102, Buffer.from('abc')),
      tag(103, 5),
      Buffer.alloc(4, 2),
      group,
    ]);
    const known = Buffer.concat([delimited(1, Buffer.from('k')), tag(7, 0), varint(1)]);
    const bytes = Buffer.concat([unknown, known, unknown]);
    expect(range.decode(bytes)).toStrictEqual(range.decode(known));
    expect(range.decode(known)).toMatchObject({ key: Buffer.from('k'), serializable: true });
    expect(outcome(() => range.decode(bytes))).toStrictEqual(decodedByReference(bytes, S.RangeRequest));
  });

  it('gives proto3 zero values for absent fields, absent nested messages absent, views of the input for bytes', () => {
    expect(range.decode(Buffer.alloc(0))).toStrictEqual(fromProto(rangeRef.deserialize(Buffer.alloc(0)), S.RangeRequest));
    const resp = wireCodec<Record<string, unknown>>(S.PutResponse);
    expect(resp.decode(Buffer.alloc(0))).toStrictEqual({});
    const input = Buffer.concat([delimited(1, Buffer.from('key')), delimited(2, Buffer.from('end'))]);
    const decoded = range.decode(input) as { key: Buffer; rangeEnd: Buffer };
    expect(Buffer.isBuffer(decoded.key)).toBe(true);
    expect(decoded.key.buffer).toBe(input.buffer);
    // A Uint8Array that is not a Buffer decodes to Buffers too.
    const plain = range.decode(new Uint8Array(input)) as { key: Buffer };
    expect(Buffer.isBuffer(plain.key)).toBe(true);
    expect(plain.key.toString()).toBe('key');
    // Invalid UTF-8 in a string becomes replacement characters, as protobufjs reads it.
    const auth = Buffer.concat([delimited(1, Buffer.from([0x61, 0xff, 0xc3]))]);
    const authCodec = wireCodec<{ name: string }>(S.AuthenticateRequest);
    expect(outcome(() => authCodec.decode(auth))).toStrictEqual(decodedByReference(auth, S.AuthenticateRequest));
  });

  it('refuses messages nested deeper than protobufjs does (100), and groups as deep', () => {
    const txn = wireCodec<unknown>(S.TxnRequest);
    /** A TxnRequest whose deepest message is `depth` levels below it: RequestOp{request_txn: TxnRequest{success: [...]}}. */
    const nested = (depth: number): Buffer => {
      // An odd depth ends in an empty RequestOp, an even one in an empty TxnRequest.
      let body: Buffer = depth % 2 === 1 ? delimited(2, Buffer.alloc(0)) : Buffer.alloc(0);
      for (let i = 0; i < Math.floor(depth / 2); i++) body = delimited(2, delimited(4, body));
      return body;
    };
    for (const depth of [99, 100, 101, 102]) {
      const bytes = nested(depth);
      const ours = outcome(() => txn.decode(bytes));
      expect('error' in ours, String(depth)).toBe(depth > 100);
      if ('error' in ours) expect(ours.error).toBe('ProtoDecodeError: grpc: error unmarshalling request: exceeded maximum recursion depth');
      expect('error' in decodedByReference(bytes, S.TxnRequest), String(depth)).toBe(depth > 100);
    }
    const groups = (n: number): Buffer =>
      Buffer.concat([...Array.from({ length: n }, () => tag(99, 3)), tag(1, 0), varint(1), ...Array.from({ length: n }, () => tag(99, 4))]);
    for (const n of [99, 100, 101]) {
      const bytes = groups(n);
      expect('error' in outcome(() => range.decode(bytes)), String(n)).toBe(n > 100);
      expect('error' in decodedByReference(bytes, S.RangeRequest), String(n)).toBe(n > 100);
    }
  });

  describe('malformed input is a ProtoDecodeError worded as etcd 3.4 words it', () => {
    const malformed: [string, Buffer, string][] = [
      ['a truncated varint', Buffer.from([0x18, 0x80]), 'unexpected EOF'],
      ['a truncated tag', Buffer.from([0x80]), 'unexpected EOF'],
      ['a varint longer than 10 bytes', Buffer.concat([Buffer.from([0x18]), Buffer.alloc(10, 0xff), Buffer.from([0x01])]), 'proto: integer overflow'],
      ['an unknown varint longer than 10 bytes', Buffer.concat([tag(100, 0), Buffer.alloc(10, 0x80), Buffer.from([0x01])]), 'proto: integer overflow'],
      ['a length past the end', Buffer.from([0x0a, 0x05, 0x61]), 'unexpected EOF'],
      ['an unknown field length past the end', Buffer.concat([tag(100, 2), varint(3), Buffer.from('ab')]), 'unexpected EOF'],
      ['a negative length', Buffer.concat([Buffer.from([0x0a]), varint(-1)]), 'proto: negative length found during unmarshaling'],
      ['a truncated fixed64', Buffer.concat([tag(100, 1), Buffer.alloc(7)]), 'unexpected EOF'],
      ['a truncated fixed32', Buffer.concat([tag(100, 5), Buffer.alloc(3)]), 'unexpected EOF'],
      ['wire type 6', Buffer.concat([tag(100, 6), varint(0)]), 'proto: illegal wireType 6'],
      ['wire type 7', Buffer.concat([tag(100, 7), varint(0)]), 'proto: illegal wireType 7'],
      ['wire type 7 on a known field', Buffer.concat([tag(1, 7)]), 'proto: wrong wireType = 7 for field Key'],
      ['a varint where bytes are declared', Buffer.concat([tag(1, 0), varint(1)]), 'proto: wrong wireType = 0 for field Key'],
      ['bytes where a bool is declared', delimited(7, Buffer.from([1])), 'proto: wrong wireType = 2 for field Serializable'],
      ['a fixed64 where an int64 is declared', Buffer.concat([tag(3, 1), Buffer.alloc(8)]), 'proto: wrong wireType = 1 for field Limit'],
      ['field number 0', Buffer.from([0x00, 0x00]), 'proto: RangeRequest: illegal tag 0 (wire type 0)'],
      ['a tag beyond 32 bits', varint(2n ** 35n + 8n), 'proto: RangeRequest: illegal tag 1 (wire type 0)'],
      ['an end group outside a group', tag(5, 4), 'proto: RangeRequest: wiretype end group for non-group'],
      ['an unclosed group', Buffer.concat([tag(100, 3), tag(1, 0), varint(1)]), 'unexpected EOF'],
      ['wire type 6 inside a group', Buffer.concat([tag(100, 3), tag(1, 6), tag(100, 4)]), 'proto: illegal wireType 6'],
    ];
    it.each(malformed)('%s', (_, bytes, detail) => {
      expect(() => range.decode(bytes)).toThrow(ProtoDecodeError);
      expect(() => range.decode(bytes)).toThrow(`grpc: error unmarshalling request: ${detail}`);
    });

    it('reads nothing past a nested message, nor past a packed list', () => {
      // The header is 2 bytes; its varint goes on past them, into bytes of the outer message.
      const resp = wireCodec<unknown>(S.RangeResponse);
      expect(() => resp.decode(Buffer.from([0x0a, 0x02, 0x18, 0x80, 0x01]))).toThrow('grpc: error unmarshalling request: unexpected EOF');
      expect(() => resp.decode(Buffer.from([0x12, 0x03, 0x0a, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05]))).toThrow('unexpected EOF');
      const watch = wireCodec<unknown>(S.WatchRequest);
      expect(() => watch.decode(delimited(1, Buffer.concat([tag(5, 2), varint(1), Buffer.from([0x81, 0x01])])))).toThrow('unexpected EOF');
    });

    it('is an INTERNAL status for gRPC', () => {
      const status = toGrpcStatus(new ProtoDecodeError('unexpected EOF'));
      expect(status.code).toBe(GrpcCode.Internal);
      expect(status.message).toBe('grpc: error unmarshalling request: unexpected EOF');
    });
  });
});

describe('wire codec encoding', () => {
  it('omits zero values, writes a present nested message even when empty, packs numeric lists', () => {
    const range = wireCodec<object>(S.RangeRequest);
    expect(
      range.encode({ key: Buffer.alloc(0), limit: 0, revision: '0', sortOrder: 'NONE', serializable: false, keysOnly: undefined, countOnly: null }),
    ).toEqual(Buffer.alloc(0));
    const op = wireCodec<object>(S.ResponseOp);
    expect(op.encode({ responsePut: {} })).toEqual(Buffer.from([0x12, 0x00]));
    expect(op.encode({ responsePut: { header: { clusterId: '1', memberId: 2, revision: 3, raftTerm: 0 } } })).toEqual(
      Buffer.from([0x12, 0x08, 0x0a, 0x06, 0x08, 0x01, 0x10, 0x02, 0x18, 0x03]),
    );
    const create = wireCodec<object>(S.WatchCreateRequest);
    expect(create.encode({ filters: ['NOPUT', 'NODELETE', 'NOPUT'] })).toEqual(Buffer.from([0x2a, 0x03, 0x00, 0x01, 0x00]));
    // A negative int64 is ten bytes of two's complement.
    expect(range.encode({ limit: -1 })).toEqual(Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(range.encode({ limit: '-2' })).toEqual(Buffer.from([0x18, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    // Compare.range_end is field 64: a two-byte tag.
    expect(wireCodec<object>(S.Compare).encode({ rangeEnd: Buffer.from('z') })).toEqual(Buffer.from([0x82, 0x04, 0x01, 0x7a]));
  });

  it('writes a present member of a oneof even when it is zero (Compare.target_union), as Go does', () => {
    const compare = wireCodec<object>(S.Compare);
    const bytes = compare.encode({ result: 'EQUAL', target: 'VALUE', key: Buffer.from('k'), value: Buffer.alloc(0), version: 0 });
    // target (2) = VALUE (3), key (3), version (4) = 0 and value (7) empty: both members of target_union.
    expect(bytes).toEqual(Buffer.from([0x10, 0x03, 0x1a, 0x01, 0x6b, 0x20, 0x00, 0x3a, 0x00]));
    expect(reference('etcdserverpb.Compare').deserialize(bytes).target_union).toBe('value');
    // A zero field outside the oneof is still omitted.
    expect(compare.encode({ key: Buffer.alloc(0), result: 'EQUAL' })).toEqual(Buffer.alloc(0));
  });

  it('writes strings as valid UTF-8: a lone surrogate becomes U+FFFD', () => {
    const auth = wireCodec<{ name: string; password: string }>(S.AuthenticateRequest);
    const bytes = auth.encode({ name: 'a\ud800b', password: 'é🙂' });
    expect(bytes).toEqual(Buffer.concat([delimited(1, Buffer.from('a\ufffdb')), delimited(2, Buffer.from('é🙂'))]));
    expect(auth.decode(bytes)).toStrictEqual({ name: 'a\ufffdb', password: 'é🙂' });
  });

  it('encodes each uint64 id right when they alternate (the cache of the last one)', () => {
    const header = wireCodec<{ clusterId: string; memberId: string }>(S.ResponseHeader);
    const ids = ['14841639068965178418', '1', '10276657743932975437', '14841639068965178418', '0', '18446744073709551615'];
    for (const [i, id] of ids.entries()) {
      const other = ids[(i + 1) % ids.length]!;
      expect(header.decode(header.encode({ clusterId: id, memberId: other }))).toMatchObject({ clusterId: id, memberId: other });
    }
  });

  it('refuses an enum value that is not a name of the enum (a bug of qkv, not the client)', () => {
    const range = wireCodec<object>(S.RangeRequest);
    expect(() => range.encode({ sortOrder: 'SIDEWAYS' })).toThrow(InternalError);
    expect(() => range.encode({ limit: 'ten' })).toThrow(InternalError);
  });
});

describe('wire codec compilation', () => {
  it('fails for a schema field the proto lacks, naming it', () => {
    const schema: Schema = { type: 'etcdserverpb.PutRequest', fields: [field.bytes('key'), field.bytes('valu')] };
    expect(() => wireCodec(schema)).toThrow('field valu of etcdserverpb.PutRequest (proto etcdserverpb.PutRequest) is not in the proto message');
    // Asked again, it fails again: nothing half-compiled was kept.
    expect(() => wireCodec(schema)).toThrow('field valu of etcdserverpb.PutRequest');
    const nested: Schema = {
      type: 'etcdserverpb.PutResponse',
      fields: [field.message('prevKv', () => ({ type: 'mvccpb.KeyValue', fields: [field.bytes('kee')] }))],
    };
    expect(() => wireCodec(nested)).toThrow('field kee of mvccpb.KeyValue');
    // A cycle (A -> B -> A) whose first message fails after the second compiled: neither is kept.
    const a: Schema = { type: 'etcdserverpb.RequestOp', fields: [field.message('requestTxn', () => b), field.bytes('nope')] };
    const b: Schema = { type: 'etcdserverpb.TxnRequest', fields: [field.list('success', { message: () => a })] };
    expect(() => wireCodec(a)).toThrow('field nope of etcdserverpb.RequestOp');
    expect(() => wireCodec(b)).toThrow('field nope of etcdserverpb.RequestOp');
  });

  it('fails for a type, list or enum the proto declares otherwise, and for a message the protos lack', () => {
    expect(() => wireCodec({ type: 'etcdserverpb.PutRequest', fields: [field.string('key')] })).toThrow('is string in the schema, TYPE_BYTES in the proto');
    expect(() => wireCodec({ type: 'etcdserverpb.PutRequest', fields: [field.list('key', 'bytes')] })).toThrow('is a list in the schema');
    expect(() => wireCodec({ type: 'etcdserverpb.RangeRequest', fields: [field.enum('sortOrder', ['NONE', 'DESCEND', 'ASCEND'])] })).toThrow(
      "the schema's enum [NONE,DESCEND,ASCEND] is not the proto's [NONE,ASCEND,DESCEND]",
    );
    // HeaderOnlyResponse stands for many messages: it needs the method's (proto.ts's methodMessageTypes).
    expect(() => wireCodec(S.HeaderOnlyResponse)).toThrow('message etcdserverpb.Response (schema etcdserverpb.Response) is not in the proto files');
    expect(wireCodec(S.HeaderOnlyResponse, 'etcdserverpb.LeaseRevokeResponse')).toBe(wireCodec(S.HeaderOnlyResponse, 'etcdserverpb.LeaseRevokeResponse'));
  });
});
