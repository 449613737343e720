/**
 * The peer wire format (src/server/peer_codec.ts): exact round trips, including the property
 * set and order of the decoded objects, and a PeerFrameError (nothing else) for any malformed body.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { message } from '../../src/raft/raft.js';
import { EntryType, MessageType, type Entry, type Message, type SnapshotChunk } from '../../src/raft/types.js';
import { decodeMessages, encodedSize, encodeMessages, FORMAT_VERSION, PeerFrameError, PeerMessageError } from '../../src/server/peer_codec.js';
import { FrameDecoder, encodeFrame } from '../../src/server/transport.js';

const MAX = Number.MAX_SAFE_INTEGER;

/**
 * A JSON-able picture of a value that keeps what toEqual forgives: property order, keys whose
 * value is undefined, and Uint8Array versus number[].
 */
function plain(v: unknown): unknown {
  if (v === undefined) return '<undefined>';
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([k, x]) => [k, plain(x)]);
  return v;
}

function expectRoundTrip(msgs: Message[]): void {
  const body = encodeMessages(msgs);
  expect(body.length).toBe(encodedSize(msgs));
  const got = decodeMessages(body);
  expect(JSON.stringify(plain(got))).toBe(JSON.stringify(plain(msgs)));
  // The format has one encoding per batch: what decodes encodes back to the same bytes.
  expect(encodeMessages(got).equals(body)).toBe(true);
}

function expectFrameError(body: Buffer | number[]): PeerFrameError {
  let caught: unknown;
  try {
    decodeMessages(Buffer.from(body));
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(PeerFrameError);
  expect((caught as PeerFrameError).code).toBe('ERR_PEER_FRAME');
  return caught as PeerFrameError;
}

const bytes = (...xs: number[]): Uint8Array => new Uint8Array(xs);
const entry = (index: number, data: Uint8Array, term = 3): Entry => ({ term, index, type: EntryType.Normal, data });
const chunk = (over: Partial<SnapshotChunk> = {}): SnapshotChunk => ({
  metadata: { index: 900, term: 4, voters: [1, 2, 3], learners: [4] },
  offset: 0,
  totalBytes: 5,
  data: bytes(1, 2, 3, 4, 5),
  done: true,
  ...over,
});

/** One or more representative messages of each type, built as raft.ts builds them. */
const TABLE: Array<[string, Message]> = [
  ['Hup', message({ type: MessageType.Hup })],
  ['Beat', message({ type: MessageType.Beat, from: 1, to: 1 })],
  ['CheckQuorum', message({ type: MessageType.CheckQuorum, from: 1, to: 1 })],
  ['Prop forwarded', message({ type: MessageType.Prop, from: 2, to: 1, entries: [entry(0, bytes(9, 8, 7), 0)] })],
  ['App heartbeat-like (no entries)', message({ type: MessageType.App, from: 1, to: 2, term: 3, index: 10, logTerm: 3, commit: 9 })],
  [
    'App with entries, one of zero length',
    message({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 3,
      index: 10,
      logTerm: 2,
      commit: 9,
      entries: [entry(11, bytes()), entry(12, new Uint8Array(300).fill(0xab)), { ...entry(13, bytes(3, 0, 0, 0, 0, 0, 0, 0, 4)), type: EntryType.ConfChange }],
    }),
  ],
  ['AppResp', message({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 12 })],
  ['AppResp reject', message({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 12, reject: true, rejectHint: 7, logTerm: 2 })],
  ['Vote', message({ type: MessageType.Vote, from: 3, to: 1, term: 5, index: 40, logTerm: 4 })],
  ['Vote transfer campaign', message({ type: MessageType.Vote, from: 3, to: 1, term: 5, index: 40, logTerm: 4, context: bytes(1) })],
  ['VoteResp reject', message({ type: MessageType.VoteResp, from: 1, to: 3, term: 5, reject: true })],
  ['PreVote', message({ type: MessageType.PreVote, from: 3, to: 1, term: 6, index: 40, logTerm: 4 })],
  ['PreVoteResp', message({ type: MessageType.PreVoteResp, from: 1, to: 3, term: 6 })],
  ['Snap first chunk', message({ type: MessageType.Snap, from: 1, to: 2, term: 3, snapshot: chunk({ done: false, totalBytes: 10 }) })],
  [
    'Snap empty data, no voters',
    message({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 3,
      snapshot: chunk({ data: bytes(), totalBytes: 0, metadata: { index: 1, term: 1, voters: [], learners: [] } }),
    }),
  ],
  ['SnapResp', message({ type: MessageType.SnapResp, from: 2, to: 1, term: 3, index: 900, logTerm: 4, rejectHint: 5 })],
  ['Heartbeat', message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 12 })],
  ['Heartbeat with read context', message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 12, context: bytes(0, 0, 0, 0, 0, 0, 0, 42) })],
  ['HeartbeatResp with empty context', message({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 3, context: bytes() })],
  ['ReadIndex', message({ type: MessageType.ReadIndex, from: 2, to: 1, context: bytes(7, 7) })],
  ['ReadIndexResp', message({ type: MessageType.ReadIndexResp, from: 1, to: 2, term: 3, index: 12, context: bytes(7, 7) })],
  ['TransferLeader', message({ type: MessageType.TransferLeader, from: 3, to: 1, term: 3 })],
  ['TimeoutNow', message({ type: MessageType.TimeoutNow, from: 1, to: 3, term: 3 })],
  [
    'every number at MAX_SAFE_INTEGER',
    message({
      type: MessageType.Snap,
      from: MAX,
      to: MAX,
      term: MAX,
      logTerm: MAX,
      index: MAX,
      commit: MAX,
      rejectHint: MAX,
      reject: true,
      entries: [entry(MAX, bytes(1), MAX)],
      context: bytes(0xff),
      snapshot: chunk({ metadata: { index: MAX, term: MAX, voters: [MAX, 0], learners: [MAX] }, offset: MAX, totalBytes: MAX }),
    }),
  ],
  ...[127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32, 2 ** 49 - 1, 2 ** 49, 2 ** 52].map((n): [string, Message] => [
    `varint boundary ${n}`,
    message({ type: MessageType.App, from: 1, to: 2, term: n, index: n, logTerm: n, commit: n, rejectHint: n, entries: [entry(n, bytes(), n)] }),
  ]),
];

describe('peer codec round trip', () => {
  test('the table has every message type', () => {
    const covered = new Set(TABLE.map(([, m]) => m.type));
    expect([...Object.values(MessageType)].filter((t) => !covered.has(t))).toEqual([]);
  });

  test.each(TABLE)('%s', (_name, m) => {
    expectRoundTrip([m]);
  });

  test('the whole table as one batch, and an empty batch', () => {
    expectRoundTrip(TABLE.map(([, m]) => m));
    expectRoundTrip([]);
    expect(encodeMessages([])).toEqual(Buffer.from([FORMAT_VERSION, 0]));
  });

  test('decoded bytes are copies: they do not change with the frame', () => {
    const m = message({ type: MessageType.App, from: 1, to: 2, entries: [entry(1, bytes(1, 2, 3))], context: bytes(4) });
    const body = encodeMessages([m]);
    const [got] = decodeMessages(body);
    body.fill(0);
    expect(got!.entries[0]!.data).toEqual(Buffer.from([1, 2, 3]));
    expect(got!.context).toEqual(Buffer.from([4]));
    expect(got!.entries[0]!.data).toBeInstanceOf(Uint8Array);
  });

  test('a number the format cannot carry is refused when encoding', () => {
    for (const bad of [-1, 1.5, Number.NaN, Infinity, MAX + 1]) {
      const msgs = [message({ type: MessageType.App, index: bad })];
      expect(() => encodeMessages(msgs)).toThrow(PeerMessageError);
      expect(() => encodeFrame(msgs)).toThrow(expect.objectContaining({ code: 'ERR_PEER_MESSAGE' }));
    }
    expect(() => encodeMessages([message({ type: MessageType.App, entries: [entry(-3, bytes())] })])).toThrow(PeerMessageError);
    expect(() => encodeMessages([message({ type: MessageType.Snap, snapshot: chunk({ offset: 0.5 }) })])).toThrow(PeerMessageError);
    // Only a cast can make these; they must not go out as type code 0.
    expect(() => encodeMessages([message({ type: 'MsgBogus' as MessageType })])).toThrow(/message type MsgBogus has no wire code/);
    const badEntry = { ...entry(1, bytes()), type: 9 as EntryType };
    expect(() => encodeMessages([message({ type: MessageType.App, entries: [badEntry] })])).toThrow(/entry type 9 has no wire code/);
  });
});

const num = fc.oneof(fc.nat(300), fc.maxSafeNat(), fc.constantFrom(0, 127, 128, 2 ** 32, MAX));
const data = fc.uint8Array({ maxLength: 40 });
const entryArb = fc.record({ term: num, index: num, type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange), data });
const chunkArb = fc.record({
  metadata: fc.record({ index: num, term: num, voters: fc.array(num, { maxLength: 5 }), learners: fc.array(num, { maxLength: 3 }) }),
  offset: num,
  totalBytes: num,
  data,
  done: fc.boolean(),
});
const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...Object.values(MessageType)),
    from: num,
    to: num,
    term: num,
    logTerm: num,
    index: num,
    entries: fc.array(entryArb, { maxLength: 4 }),
    commit: num,
    reject: fc.boolean(),
    rejectHint: num,
    context: fc.option(data, { nil: undefined }),
    snapshot: fc.option(chunkArb, { nil: undefined }),
  })
  // As raft.ts does: an absent optional field is no key at all, not a key holding undefined.
  .map(({ context, snapshot, ...rest }) => message({ ...rest, ...(context ? { context } : {}), ...(snapshot ? { snapshot } : {}) }));
const batchArb = fc.array(messageArb, { maxLength: 4 });

describe('peer codec properties', () => {
  test('random batches round-trip exactly', () => {
    fc.assert(
      fc.property(batchArb, (msgs) => expectRoundTrip(msgs)),
      { numRuns: 300 },
    );
  });

  /** Decodes or throws PeerFrameError; anything decoded re-encodes to the same bytes. */
  function decodesOrRefuses(body: Uint8Array): void {
    const buf = Buffer.from(body);
    let got: Message[];
    try {
      got = decodeMessages(buf);
    } catch (err) {
      expect(err).toBeInstanceOf(PeerFrameError);
      return;
    }
    expect(encodeMessages(got).equals(buf)).toBe(true);
  }

  test('random bytes decode or throw PeerFrameError', () => {
    const afterVersion = fc.uint8Array({ maxLength: 80 }).map((u) => Uint8Array.from([FORMAT_VERSION, ...u]));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), afterVersion), decodesOrRefuses), { numRuns: 2000 });
  });

  test('every truncation of a valid body throws PeerFrameError', () => {
    fc.assert(
      fc.property(
        batchArb.filter((b) => b.length > 0),
        (msgs) => {
          const body = encodeMessages(msgs);
          for (let cut = 0; cut < body.length; cut++) expectFrameError(body.subarray(0, cut));
        },
      ),
      { numRuns: 100 },
    );
  });

  test('valid bodies with bytes changed decode or throw PeerFrameError', () => {
    const mutated = fc.tuple(batchArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 })).map(([msgs, edits]) => {
      const body = Uint8Array.from(encodeMessages(msgs));
      for (const [at, byte] of edits) body[at % body.length] = byte;
      return body;
    });
    fc.assert(fc.property(mutated, decodesOrRefuses), { numRuns: 2000 });
  });
});

describe('peer codec refuses malformed bodies', () => {
  // A minimal valid batch: version, count 1, then an App message with numbers 1..7, no flags, no entries.
  const HEAD = [FORMAT_VERSION, 1];
  const MSG = [4, 1, 2, 3, 4, 5, 6, 7];
  const ok = [...HEAD, ...MSG, 0, 0];

  test('the minimal batch itself decodes', () => {
    const [m] = decodeMessages(Buffer.from(ok));
    expect(m).toMatchObject({ type: MessageType.App, from: 1, to: 2, term: 3, logTerm: 4, index: 5, commit: 6, rejectHint: 7 });
  });

  const snapOk = [...HEAD, ...MSG, 4, 0, /* snapshot */ 9, 2, 1, 1, /* learners */ 1, 4, /* offset, total */ 0, 1, /* done */ 1, 1, 0xaa];
  test('the minimal snapshot batch itself decodes', () => {
    expect(decodeMessages(Buffer.from(snapOk))[0]!.snapshot).toMatchObject({ offset: 0, totalBytes: 1, done: true });
  });

  const cases: Array<[string, number[], RegExp]> = [
    ['empty body', [], /truncated: format version/],
    ['unknown version 0', [0, 0], /unknown format version 0/],
    ['unknown version 1 (before learners)', [1, 0], /unknown format version 1/],
    ['unknown version 3', [3, 0], /unknown format version 3/],
    ['no message count', [FORMAT_VERSION], /truncated: message count/],
    ['message count past the bytes left', [FORMAT_VERSION, 2, ...MSG, 0, 0], /message count 2 exceeds/],
    ['huge message count', [FORMAT_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], /message count \d+ exceeds/],
    ['unknown message type', [...HEAD, 18, 1, 2, 3, 4, 5, 6, 7, 0, 0], /unknown message type code 18/],
    ['message type 255', [...HEAD, 255, 1, 2, 3, 4, 5, 6, 7, 0, 0], /unknown message type code 255/],
    ['varint past MAX_SAFE_INTEGER', [...HEAD, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10, 2, 3, 4, 5, 6, 7, 0, 0], /from exceeds MAX_SAFE_INTEGER/],
    ['varint of nine bytes', [...HEAD, 4, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0x01, 2, 3, 4, 5, 6, 7, 0, 0], /from exceeds MAX_SAFE_INTEGER/],
    ['varint not in its shortest form', [...HEAD, 4, 0x81, 0x00, 2, 3, 4, 5, 6, 7, 0, 0], /from is not in its shortest form/],
    ['varint cut short', [...HEAD, ...MSG, 2, 0, 0x80], /truncated: context at byte/],
    ['unknown flag bit', [...HEAD, ...MSG, 8, 0], /unknown flags 0x8/],
    ['no flags', [...HEAD, ...MSG], /message count 1 exceeds/],
    ['second message cut before its flags', [FORMAT_VERSION, 2, ...MSG, 0, 1, 1, 1, 0, 20, ...new Array<number>(20).fill(0), ...MSG], /truncated: flags/],
    ['entry count past the bytes left', [...HEAD, ...MSG, 0, 1, 1, 1, 0], /entry count 1 exceeds/],
    ['unknown entry type', [...HEAD, ...MSG, 0, 1, 1, 1, 2, 0], /unknown entry type code 2/],
    ['entry data past the end', [...HEAD, ...MSG, 0, 1, 1, 1, 0, 5, 1, 2], /entry data of 5 bytes exceeds the 2 bytes left/],
    ['context flag without context', [...HEAD, ...MSG, 2, 0], /truncated: context at byte/],
    ['context past the end', [...HEAD, ...MSG, 2, 0, 3, 1], /context of 3 bytes exceeds/],
    ['snapshot flag without snapshot', [...HEAD, ...MSG, 4, 0], /truncated: snapshot index/],
    ['voter count past the bytes left', [...HEAD, ...MSG, 4, 0, 9, 2, 100, 1], /voter count 100 exceeds/],
    ['learner count past the bytes left', [...HEAD, ...MSG, 4, 0, 9, 2, 1, 1, 100, 1], /learner count 100 exceeds/],
    ['snapshot done not 0 or 1', [...snapOk.slice(0, -3), 2, 1, 0xaa], /snapshot done is 2/],
    ['snapshot data past the end', [...snapOk.slice(0, -2), 2, 0xaa], /snapshot data of 2 bytes exceeds/],
    ['trailing bytes', [...ok, 0], /1 trailing bytes after 1 messages/],
    ['a second batch appended', [...ok, ...ok], /trailing bytes/],
  ];

  test.each(cases)('%s', (_name, body, want) => {
    expect(expectFrameError(body).message).toMatch(want);
  });

  test('FrameDecoder throws the codec error for a malformed body', () => {
    const body = Buffer.from([...ok, 0]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
    expect(() => new FrameDecoder(1 << 20).push(frame)).toThrow(PeerFrameError);
  });
});
