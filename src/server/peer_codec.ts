/**
 * The peer wire format: a batch of Raft messages as the body of one transport frame.
 *
 * Hand-written rather than msgpack: a Message is a fixed set of fields, so naming every key and
 * the enum `type` as strings in every frame (and matching them again on the way in) was most of
 * the decoding time a follower spent on peer frames.
 *
 * Body (all integers are unsigned LEB128 varints unless sized; lengths count bytes):
 *
 *   u8      format version (FORMAT_VERSION); any other value is rejected
 *   varint  message count
 *   then per message:
 *     u8      type code (MESSAGE_TYPE_CODES)
 *     varint  from, to, term, logTerm, index, commit, rejectHint
 *     u8      flags: bit 0 reject, bit 1 context present, bit 2 snapshot present; no other bits
 *     varint  entry count, then per entry:
 *               varint term, varint index, u8 entry type code (ENTRY_TYPE_CODES),
 *               varint data length, data bytes
 *     if context:  varint length, bytes
 *     if snapshot: varint metadata.index, varint metadata.term,
 *                  varint voter count, varint voter ids,
 *                  varint learner count, varint learner ids (since version 2),
 *                  varint offset, varint totalBytes, u8 done (0 or 1),
 *                  varint data length, data bytes
 *
 * Varints: 7 bits a byte, least significant first, high bit set on all but the last byte. A value
 * is a non-negative integer up to Number.MAX_SAFE_INTEGER (at most 8 bytes), in its shortest
 * form: a longer form (a trailing zero byte) is rejected, so every message has exactly one
 * encoding. Varints over float64s: Raft's ids, terms and indexes are small, so most take one to
 * three bytes, and reading them byte by byte measured faster than Buffer.readDoubleLE.
 *
 * Decoding trusts nothing: a truncated body, a length or count beyond what is left, an unknown
 * version, type or flag, a number past MAX_SAFE_INTEGER and trailing bytes all throw
 * PeerFrameError, and every loop is bounded by the bytes left.
 */
import { Buffer } from 'node:buffer';
import { CodedError } from '../errors.js';
import { EntryType, MessageType, type Entry, type Message, type NodeId, type SnapshotChunk } from '../raft/types.js';

/** Errors of the peer wire format. */
export abstract class PeerWireError extends CodedError {}

/** A frame body from a peer that is not a valid encoding; the transport drops the connection. */
export class PeerFrameError extends PeerWireError {
  constructor(detail: string) {
    super('ERR_PEER_FRAME', `peer frame: ${detail}`);
  }
}

/** A message this format cannot carry (a number that is not a safe non-negative integer, a type without a code): a bug in the sender. */
export class PeerMessageError extends PeerWireError {
  constructor(detail: string) {
    super('ERR_PEER_MESSAGE', `peer message: ${detail}`);
  }
}

/** Bumped on any change of the layout above, so that a member of another version is refused, not misread. */
export const FORMAT_VERSION = 2;

/**
 * The wire code of each message type. Fixed by hand, never derived from the enum's order: a
 * code, once used, keeps its meaning. `Record` makes a new MessageType without a code a compile error.
 */
const MESSAGE_TYPE_CODES: Record<MessageType, number> = {
  [MessageType.Hup]: 0,
  [MessageType.Beat]: 1,
  [MessageType.CheckQuorum]: 2,
  [MessageType.Prop]: 3,
  [MessageType.App]: 4,
  [MessageType.AppResp]: 5,
  [MessageType.Vote]: 6,
  [MessageType.VoteResp]: 7,
  [MessageType.PreVote]: 8,
  [MessageType.PreVoteResp]: 9,
  [MessageType.Snap]: 10,
  [MessageType.SnapResp]: 11,
  [MessageType.Heartbeat]: 12,
  [MessageType.HeartbeatResp]: 13,
  [MessageType.ReadIndex]: 14,
  [MessageType.ReadIndexResp]: 15,
  [MessageType.TransferLeader]: 16,
  [MessageType.TimeoutNow]: 17,
};

const ENTRY_TYPE_CODES: Record<EntryType, number> = {
  [EntryType.Normal]: 0,
  [EntryType.ConfChange]: 1,
};

/**
 * code -> value, for all 256 byte values (undefined: unknown), so that a lookup never reads past
 * the end of the array (a slower path in V8).
 */
function byCode<T extends string | number>(values: readonly T[], codes: Record<T, number>): ReadonlyArray<T | undefined> {
  const out = new Array<T | undefined>(256).fill(undefined);
  for (const v of values) {
    const code = codes[v];
    if (!(code >= 0 && code <= 0xff) || out[code] !== undefined) throw new Error(`peer codec: wire code ${code} is not a free byte`);
    out[code] = v;
  }
  return out;
}

const MESSAGE_TYPES = byCode(Object.values(MessageType), MESSAGE_TYPE_CODES);
// A numeric enum's object also maps names back from values; only the numbers are entry types.
const ENTRY_TYPES = byCode(
  Object.values(EntryType).filter((v): v is EntryType => typeof v === 'number'),
  ENTRY_TYPE_CODES,
);

const FLAG_REJECT = 1;
const FLAG_CONTEXT = 2;
const FLAG_SNAPSHOT = 4;
const KNOWN_FLAGS = FLAG_REJECT | FLAG_CONTEXT | FLAG_SNAPSHOT;

/** Bytes of the shortest message (type, seven varints, flags, entry count) and entry (term, index, type, length). */
const MIN_MESSAGE_BYTES = 10;
const MIN_ENTRY_BYTES = 4;
/** 8 varint bytes carry 56 bits; MAX_SAFE_INTEGER needs 53, so the 8th byte may carry only its low 4. */
const MAX_VARINT_BYTES = 8;
const LAST_VARINT_BYTE_MAX = 0x0f;

// ---------------------------------------------------------------- encoding

/** Bytes of `v` as a varint; throws if `v` is not a safe non-negative integer. */
function uintSize(v: number, what: string): number {
  if (v < 0x80 && v >= 0 && Number.isInteger(v)) return 1; // the common case, checked cheaply
  if (!Number.isSafeInteger(v) || v < 0) throw new PeerMessageError(`${what} ${v} is not a non-negative safe integer`);
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

function bytesSize(b: Uint8Array): number {
  return uintSize(b.byteLength, 'length') + b.byteLength;
}

/** A type without a wire code would go out as whatever 0 means; only a cast can make one, but it costs one lookup to refuse. */
function checkCode(code: number | undefined, what: string, value: unknown): void {
  if (code === undefined) throw new PeerMessageError(`${what} ${String(value)} has no wire code`);
}

function messageSize(m: Message): number {
  checkCode(MESSAGE_TYPE_CODES[m.type], 'message type', m.type);
  let n = 2; // type code and flags
  n += uintSize(m.from, 'from') + uintSize(m.to, 'to') + uintSize(m.term, 'term') + uintSize(m.logTerm, 'logTerm');
  n += uintSize(m.index, 'index') + uintSize(m.commit, 'commit') + uintSize(m.rejectHint, 'rejectHint');
  n += uintSize(m.entries.length, 'entry count');
  for (const e of m.entries) {
    checkCode(ENTRY_TYPE_CODES[e.type], 'entry type', e.type);
    n += uintSize(e.term, 'entry term') + uintSize(e.index, 'entry index') + 1 + bytesSize(e.data);
  }
  if (m.context !== undefined) n += bytesSize(m.context);
  if (m.snapshot !== undefined) n += snapshotSize(m.snapshot);
  return n;
}

function snapshotSize(s: SnapshotChunk): number {
  let n = uintSize(s.metadata.index, 'snapshot index') + uintSize(s.metadata.term, 'snapshot term');
  n += uintSize(s.metadata.voters.length, 'voter count');
  for (const v of s.metadata.voters) n += uintSize(v, 'voter');
  n += uintSize(s.metadata.learners.length, 'learner count');
  for (const l of s.metadata.learners) n += uintSize(l, 'learner');
  return n + uintSize(s.offset, 'snapshot offset') + uintSize(s.totalBytes, 'snapshot size') + 1 + bytesSize(s.data);
}

/** The size of encodeMessages(msgs); also checks every number, so writing cannot fail half-way. */
export function encodedSize(msgs: Message[]): number {
  let n = 1 + uintSize(msgs.length, 'message count');
  for (const m of msgs) n += messageSize(m);
  return n;
}

/** Writes a varint (checked by uintSize) at `pos`; returns the position after it. */
function putUint(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80; // & takes v modulo 2^32: its low 7 bits are right at any size
    v = v > 0xffffffff ? Math.floor(v / 0x80) : v >>> 7;
  }
  buf[pos++] = v;
  return pos;
}

function putBytes(buf: Buffer, pos: number, b: Uint8Array): number {
  pos = putUint(buf, pos, b.byteLength);
  buf.set(b, pos);
  return pos + b.byteLength;
}

function putMessage(buf: Buffer, pos: number, m: Message): number {
  buf[pos++] = MESSAGE_TYPE_CODES[m.type];
  pos = putUint(buf, pos, m.from);
  pos = putUint(buf, pos, m.to);
  pos = putUint(buf, pos, m.term);
  pos = putUint(buf, pos, m.logTerm);
  pos = putUint(buf, pos, m.index);
  pos = putUint(buf, pos, m.commit);
  pos = putUint(buf, pos, m.rejectHint);
  buf[pos++] = (m.reject ? FLAG_REJECT : 0) | (m.context !== undefined ? FLAG_CONTEXT : 0) | (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0);
  pos = putUint(buf, pos, m.entries.length);
  for (const e of m.entries) {
    pos = putUint(buf, pos, e.term);
    pos = putUint(buf, pos, e.index);
    buf[pos++] = ENTRY_TYPE_CODES[e.type];
    pos = putBytes(buf, pos, e.data);
  }
  if (m.context !== undefined) pos = putBytes(buf, pos, m.context);
  if (m.snapshot !== undefined) pos = putSnapshot(buf, pos, m.snapshot);
  return pos;
}

function putSnapshot(buf: Buffer, pos: number, s: SnapshotChunk): number {
  pos = putUint(buf, pos, s.metadata.index);
  pos = putUint(buf, pos, s.metadata.term);
  pos = putUint(buf, pos, s.metadata.voters.length);
  for (const v of s.metadata.voters) pos = putUint(buf, pos, v);
  pos = putUint(buf, pos, s.metadata.learners.length);
  for (const l of s.metadata.learners) pos = putUint(buf, pos, l);
  pos = putUint(buf, pos, s.offset);
  pos = putUint(buf, pos, s.totalBytes);
  buf[pos++] = s.done ? 1 : 0;
  return putBytes(buf, pos, s.data);
}

/**
 * Writes the body of `msgs` into `buf` at `pos`, which must have encodedSize(msgs) bytes free
 * (the transport reserves its length prefix in front, saving a copy). Returns the end position.
 */
export function writeMessages(msgs: Message[], buf: Buffer, pos: number): number {
  buf[pos++] = FORMAT_VERSION;
  pos = putUint(buf, pos, msgs.length);
  for (const m of msgs) pos = putMessage(buf, pos, m);
  return pos;
}

/** The frame body for `msgs`. Throws PeerMessageError for a number the format cannot carry. */
export function encodeMessages(msgs: Message[]): Buffer {
  const buf = Buffer.allocUnsafe(encodedSize(msgs));
  writeMessages(msgs, buf, 0);
  return buf;
}

// ---------------------------------------------------------------- decoding

/** A cursor over one body; every read checks the bytes left first. */
class Reader {
  pos = 0;
  readonly end: number;

  constructor(readonly buf: Buffer) {
    this.end = buf.length;
  }

  left(): number {
    return this.end - this.pos;
  }

  byte(what: string): number {
    if (this.pos >= this.end) throw new PeerFrameError(`truncated: ${what} at byte ${this.pos}`);
    return this.buf[this.pos++]!;
  }

  uint(what: string): number {
    const b = this.byte(what);
    return b < 0x80 ? b : this.longUint(b, what);
  }

  /** The rest of a varint of more than one byte, `first` already read. */
  private longUint(first: number, what: string): number {
    let value = first & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < MAX_VARINT_BYTES; i++) {
      const b = this.byte(what);
      if (i === MAX_VARINT_BYTES - 1 && b > LAST_VARINT_BYTE_MAX) throw new PeerFrameError(`${what} exceeds MAX_SAFE_INTEGER at byte ${this.pos - 1}`);
      value += (b & 0x7f) * scale; // multiplication, not shifts: values go past 32 bits
      if (b < 0x80) {
        if (b === 0) throw new PeerFrameError(`${what} is not in its shortest form at byte ${this.pos - 1}`);
        return value;
      }
      scale *= 0x80;
    }
    throw new PeerFrameError(`${what} exceeds MAX_SAFE_INTEGER at byte ${this.pos - 1}`); // unreachable: the 8th byte is checked above
  }

  /** A count of items each at least `minBytes` long, so no count can exceed what the body holds. */
  count(what: string, minBytes: number): number {
    const n = this.uint(what);
    if (n * minBytes > this.left()) throw new PeerFrameError(`${what} ${n} exceeds the ${this.left()} bytes left`);
    return n;
  }

  /**
   * A length-prefixed byte string, COPIED out of the frame. A view would cost less (about 0.3 us
   * less per entry), but entries stay in the Raft log until the next compaction, thousands of
   * them, and a view keeps its whole socket chunk alive (up to 64 KiB, many frames, for a few
   * hundred bytes of entry): the log's memory would no longer be what RaftNode bounds it by,
   * the sum of data.byteLength. A copy under 4 KiB comes from Node's Buffer pool and keeps at most
   * its 8 KiB slab alive, which entries received together mostly fill; a larger one is exact.
   */
  bytes(what: string): Buffer {
    const n = this.uint(what); // `what` rather than a built "... length": no string made per call
    if (n > this.left()) throw new PeerFrameError(`${what} of ${n} bytes exceeds the ${this.left()} bytes left`);
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bool(what: string): boolean {
    const b = this.byte(what);
    if (b > 1) throw new PeerFrameError(`${what} is ${b}, not 0 or 1`);
    return b === 1;
  }
}

function readEntry(r: Reader): Entry {
  const term = r.uint('entry term');
  const index = r.uint('entry index');
  const code = r.byte('entry type');
  const type = ENTRY_TYPES[code];
  if (type === undefined) throw new PeerFrameError(`unknown entry type code ${code}`);
  const data = r.bytes('entry data');
  return { term, index, type, data };
}

function readSnapshot(r: Reader): SnapshotChunk {
  const index = r.uint('snapshot index');
  const term = r.uint('snapshot term');
  const n = r.count('voter count', 1);
  const voters: NodeId[] = [];
  for (let i = 0; i < n; i++) voters.push(r.uint('voter'));
  const nl = r.count('learner count', 1);
  const learners: NodeId[] = [];
  for (let i = 0; i < nl; i++) learners.push(r.uint('learner'));
  const offset = r.uint('snapshot offset');
  const totalBytes = r.uint('snapshot size');
  const done = r.bool('snapshot done');
  const data = r.bytes('snapshot data');
  // Properties in the order Raft.sendSnapshotChunk creates them.
  return { metadata: { index, term, voters, learners }, offset, totalBytes, data, done };
}

function readMessage(r: Reader): Message {
  const code = r.byte('message type');
  const type = MESSAGE_TYPES[code];
  if (type === undefined) throw new PeerFrameError(`unknown message type code ${code}`);
  const from = r.uint('from');
  const to = r.uint('to');
  const term = r.uint('term');
  const logTerm = r.uint('logTerm');
  const index = r.uint('index');
  const commit = r.uint('commit');
  const rejectHint = r.uint('rejectHint');
  const flags = r.byte('flags');
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new PeerFrameError(`unknown flags 0x${flags.toString(16)}`);
  const n = r.count('entry count', MIN_ENTRY_BYTES);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) entries.push(readEntry(r));
  // Properties in the order raft.ts's message() gives them (its defaults, then `type`, then the
  // optional fields): decoded and local messages then share one hidden class in V8.
  const m: Message = { from, to, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint, type };
  if ((flags & FLAG_CONTEXT) !== 0) m.context = r.bytes('context');
  if ((flags & FLAG_SNAPSHOT) !== 0) m.snapshot = readSnapshot(r);
  return m;
}

/** The messages of a frame body. Throws PeerFrameError, and nothing else, for any malformed body. */
export function decodeMessages(body: Buffer): Message[] {
  const r = new Reader(body);
  const version = r.byte('format version');
  if (version !== FORMAT_VERSION) throw new PeerFrameError(`unknown format version ${version}`);
  const n = r.count('message count', MIN_MESSAGE_BYTES);
  const out: Message[] = [];
  for (let i = 0; i < n; i++) out.push(readMessage(r));
  if (r.left() !== 0) throw new PeerFrameError(`${r.left()} trailing bytes after ${n} messages`);
  return out;
}
