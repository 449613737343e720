/**
 * etcd's Go client sends some calls with a whole URL as the HTTP/2 `:authority`: given
 * `--endpoints=http://127.0.0.1:2379`, clientv3's per-endpoint dial (Maintenance.Status,
 * HashKV, Defragment, MoveLeader, and every `etcdctl ... --cluster` call) uses the target
 * `passthrough:///http://127.0.0.1:2379`, and grpc-go puts `http://127.0.0.1:2379` in
 * `:authority`. Go's HTTP/2 server takes it; nghttp2, under Node's http2 and so grpc-js, refuses
 * the request (RST_STREAM PROTOCOL_ERROR: '/' is not an authority character).
 *
 * qkv does not read `:authority`, so such a connection is served with its authority cut back
 * to host:port. (A plaintext connection goes through the gRPC front, h2_front.ts, which does the
 * same for every stream it passes to nghttp2, with this module's frames and re-encoding; what
 * follows is the path of TLS connections.) Every other connection keeps Node's native HTTP/2 path untouched: the client
 * port answers the client's connection preface with an empty SETTINGS frame of its own (grpc-go
 * sends no request before the server's SETTINGS), reads the client's frames up to its first
 * header block and decides from it. The client's acknowledgement of that SETTINGS frame is
 * taken out of what nghttp2 then reads, as nghttp2 never sent it. Only a connection whose
 * first request has a URL for an authority is passed through a rewriting stream, which decodes
 * and re-encodes its header blocks (HPACK) for the rest of the connection.
 */
import { Buffer } from 'node:buffer';
import { Duplex } from 'node:stream';
import type net from 'node:net';
import hpack, { type Compressor, type HpackHeader } from 'hpack.js';
import { HpackDecoder } from './hpack_decoder.js';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** A SETTINGS frame with no parameters: the server's connection preface, all defaults. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

export const FRAME_HEADER_BYTES = 9;
export const TYPE_HEADERS = 0x1;
export const TYPE_SETTINGS = 0x4;
export const TYPE_CONTINUATION = 0x9;
export const FLAG_ACK = 0x1;
export const FLAG_END_STREAM = 0x1;
export const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** SETTINGS_MAX_FRAME_SIZE's default, which both nghttp2 and the rewriter's frames keep to. */
export const MAX_FRAME_PAYLOAD = 16_384;
/** HPACK's default dynamic table size (SETTINGS_HEADER_TABLE_SIZE), on both sides of the rewriter. */
export const HPACK_TABLE_BYTES = 4096;
/** Bounds on the inspection: bytes held, and how long a silent client is waited for. */
const MAX_INSPECTED_BYTES = 1024 * 1024;
const FIRST_REQUEST_WAIT_MS = 1_000;
const SETTINGS_ACK_WAIT_MS = 10_000;
/** A header block (HEADERS + CONTINUATION) larger than this ends the connection. */
const MAX_HEADER_BLOCK_BYTES = 1024 * 1024;

/** nghttp2's check_authority: the characters of RFC 3986's authority. */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/** `http://127.0.0.1:2379/x` -> `127.0.0.1:2379`; an authority already valid is kept. */
export function hostOfAuthority(authority: string): string {
  if (AUTHORITY.test(authority)) return authority;
  const afterScheme = authority.includes('://') ? authority.slice(authority.indexOf('://') + 3) : authority;
  const host = afterScheme.split('/')[0] ?? '';
  return AUTHORITY.test(host) ? host : 'localhost';
}

/** One frame read: its header's fields and payload; `raw`, the whole frame's bytes, made only when asked for (a frame passed on as it came). */
export class Frame {
  constructor(
    readonly type: number,
    readonly flags: number,
    readonly streamId: number,
    readonly payload: Buffer,
    private readonly from: Buffer,
    private readonly start: number,
  ) {}

  get raw(): Buffer {
    return this.from.subarray(this.start, this.start + FRAME_HEADER_BYTES + this.payload.length);
  }
}

const NO_BYTES = Buffer.alloc(0);

/** Splits a byte stream into HTTP/2 frames. */
export class FrameReader {
  private buf: Buffer = NO_BYTES;
  /** Where the next frame starts in `buf` (an offset, not a subarray per frame). */
  private at = 0;

  push(chunk: Buffer): void {
    const left = this.buf.length - this.at;
    this.buf = left === 0 ? chunk : Buffer.concat([this.buf.subarray(this.at), chunk]);
    this.at = 0;
  }

  get buffered(): number {
    return this.buf.length - this.at;
  }

  /** The bytes not yet framed. */
  rest(): Buffer {
    const rest = this.buf.subarray(this.at);
    this.buf = NO_BYTES;
    this.at = 0;
    return rest;
  }

  next(): Frame | undefined {
    const { buf, at } = this;
    if (buf.length - at < FRAME_HEADER_BYTES) return undefined;
    const length = buf.readUIntBE(at, 3);
    const end = at + FRAME_HEADER_BYTES + length;
    if (buf.length < end) return undefined;
    this.at = end;
    return new Frame(buf[at + 3]!, buf[at + 4]!, buf.readUInt32BE(at + 5) & 0x7fffffff, buf.subarray(at + FRAME_HEADER_BYTES, end), buf, at);
  }
}

/** A DATA or HEADERS frame's payload without its padding (RFC 9113 §6.1, §6.2). */
export function unpadded(f: Frame): Buffer {
  if (!(f.flags & FLAG_PADDED)) return f.payload;
  const pad = f.payload[0] ?? 0;
  if (pad >= f.payload.length) throw new Error('h2: padding longer than the frame');
  return f.payload.subarray(1, f.payload.length - pad);
}

/** A HEADERS frame's header block fragment (padding and priority taken off) and its priority fields. */
function headersFragment(f: Frame): { fragment: Buffer; priority: Buffer | undefined } {
  const p = unpadded(f);
  if (!(f.flags & FLAG_PRIORITY)) return { fragment: p, priority: undefined };
  return { fragment: p.subarray(5), priority: p.subarray(0, 5) };
}

/** Writes a frame header (every one of its 9 bytes) at `at`. */
function writeFrameHeader(b: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  b.writeUIntBE(length, at, 3);
  b[at + 3] = type;
  b[at + 4] = flags;
  b.writeUInt32BE(streamId, at + 5);
}

// allocUnsafe, not alloc: every byte is written, and a small one is a slice of Node's pool (alloc
// makes an ArrayBuffer of its own each time, a cost on every frame of every answer).
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(h, 0, length, type, flags, streamId);
  return h;
}

/** A whole frame: its header and `payload`, in one Buffer. */
export function frameOf(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(f, 0, payload.length, type, flags, streamId);
  payload.copy(f, FRAME_HEADER_BYTES);
  return f;
}

/** A header block collected over HEADERS and CONTINUATION frames. */
export class HeaderBlock {
  readonly fragments: Buffer[] = [];
  private size = 0;

  constructor(
    readonly streamId: number,
    readonly endStream: boolean,
    readonly priority: Buffer | undefined,
  ) {}

  add(fragment: Buffer): void {
    this.size += fragment.length;
    if (this.size > MAX_HEADER_BLOCK_BYTES) throw new Error('h2: header block too large');
    this.fragments.push(fragment);
  }

  /** The block's bytes, its fragments joined. */
  bytes(): Buffer {
    return this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
  }

  /** The block's fields, with `decoder`: the client's table as this side keeps it. */
  decode(decoder: HpackDecoder): HpackHeader[] {
    return decoder.decode(this.bytes());
  }
}

/** Collects header blocks from a frame sequence; other frames are returned as they are. */
export class HeaderBlockCollector {
  private open: HeaderBlock | undefined;

  /** The block a frame completes, 'pending' while one is open, or 'other' for a frame outside any block. */
  take(f: Frame): HeaderBlock | 'pending' | 'other' {
    if (this.open) {
      if (f.type !== TYPE_CONTINUATION || f.streamId !== this.open.streamId) throw new Error('h2: header block interrupted');
      this.open.add(f.payload);
    } else if (f.type === TYPE_HEADERS) {
      const { fragment, priority } = headersFragment(f);
      this.open = new HeaderBlock(f.streamId, (f.flags & FLAG_END_STREAM) !== 0, priority);
      this.open.add(fragment);
    } else {
      return 'other';
    }
    if (!(f.flags & FLAG_END_HEADERS)) return 'pending';
    const done = this.open;
    this.open = undefined;
    return done;
  }
}

function authorityOf(headers: HpackHeader[]): string | undefined {
  return headers.find((h) => h.name === ':authority')?.value;
}

/**
 * The connection for a client that sends URLs as authorities: header blocks from the client are
 * decoded, their `:authority` cut back to host:port, and encoded again for nghttp2 (each side
 * keeps its own HPACK table); every other frame, and everything the server sends, passes as is.
 */
class AuthorityRewritingStream extends Duplex {
  private readonly reader = new FrameReader();
  private readonly blocks = new HeaderBlockCollector();
  private readonly decoder = new HpackDecoder(HPACK_TABLE_BYTES);
  private readonly encoder = serverHeaderEncoder();

  /** `replay`: the client's bytes already read (its preface first). */
  constructor(
    private readonly socket: net.Socket,
    replay: Buffer,
  ) {
    super();
    this.push(H2_PREFACE);
    this.consume(replay.subarray(H2_PREFACE.length));
    socket.on('data', (chunk: Buffer) => {
      if (!this.consume(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** Rewrites and passes on what the client sent; false when the reader should wait. */
  private consume(chunk: Buffer): boolean {
    this.reader.push(chunk);
    let more = true;
    try {
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        const taken = this.blocks.take(f);
        if (taken === 'other') more = this.push(f.raw);
        else if (taken !== 'pending') more = this.push(this.reencode(taken));
      }
      if (this.reader.buffered > MAX_HEADER_BLOCK_BYTES + FRAME_HEADER_BYTES) throw new Error('h2: frame too large');
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
    return more;
  }

  private reencode(block: HeaderBlock): Buffer {
    return encodeHeaderBlock(this.encoder, block, block.decode(this.decoder));
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy();
    callback(err);
  }
}

/**
 * An HPACK encoder for the header blocks nghttp2 decodes, its table kept to nghttp2's size.
 * (hpack.js reads the size from `maxSize`: given no such option, its table never evicts, grows
 * with every new field, and comes to refer to entries nghttp2 has evicted.)
 */
export function serverHeaderEncoder(): Compressor {
  return hpack.compressor.create({ table: { maxSize: HPACK_TABLE_BYTES } });
}

/**
 * A decoded header block encoded again, with `encoder` (the table of the side it goes to), as
 * HEADERS and CONTINUATION frames; `:authority` cut back to host:port (see the module comment).
 */
export function encodeHeaderBlock(encoder: Compressor, block: HeaderBlock, decoded: readonly HpackHeader[]): Buffer {
  const headers = decoded.map((h) => (h.name === ':authority' ? { ...h, value: hostOfAuthority(h.value) } : h));
  encoder.write(headers);
  const chunks: Buffer[] = [];
  for (let c = encoder.read(); c !== null; c = encoder.read()) chunks.push(c);
  return headerBlockFrames(block.streamId, Buffer.concat(chunks), block.endStream, MAX_FRAME_PAYLOAD, block.priority);
}

/** An encoded header block as a HEADERS frame (with `priority`'s fields) and CONTINUATION frames of at most `maxFrame` bytes. */
export function headerBlockFrames(streamId: number, encoded: Buffer, endStream: boolean, maxFrame: number, priority?: Buffer): Buffer {
  if (priority === undefined && encoded.length <= maxFrame)
    return frameOf(TYPE_HEADERS, (endStream ? FLAG_END_STREAM : 0) | FLAG_END_HEADERS, streamId, encoded);
  const prio = priority ?? NO_BYTES;
  let offset = Math.min(encoded.length, maxFrame - prio.length);
  const flags = (endStream ? FLAG_END_STREAM : 0) | (priority ? FLAG_PRIORITY : 0) | (offset === encoded.length ? FLAG_END_HEADERS : 0);
  const out: Buffer[] = [frameHeader(prio.length + offset, TYPE_HEADERS, flags, streamId), prio, encoded.subarray(0, offset)];
  while (offset < encoded.length) {
    const end = Math.min(encoded.length, offset + maxFrame);
    out.push(frameHeader(end - offset, TYPE_CONTINUATION, end === encoded.length ? FLAG_END_HEADERS : 0, streamId), encoded.subarray(offset, end));
    offset = end;
  }
  return Buffer.concat(out);
}

export interface H2Handover {
  /** Serve the socket natively; `bytes` (from the preface on) go back into it first. */
  native(bytes: Buffer): void;
  /** Serve the connection through a rewriting stream. */
  rewrite(stream: Duplex): void;
}

/**
 * Reads an HTTP/2 client connection up to its first header block (see the module comment) and
 * hands it over. `seen`: the bytes read so far, from the preface on.
 */
export function inspectH2Connection(socket: net.Socket, seen: Buffer, handover: H2Handover): void {
  const reader = new FrameReader();
  const blocks = new HeaderBlockCollector();
  const kept: Buffer[] = [H2_PREFACE];
  let settingsAcked = false;
  let verdict: 'native' | 'rewrite' | undefined;
  let done = false;

  const finish = (): void => {
    if (done || !settingsAcked || verdict === undefined) return;
    done = true;
    cleanup();
    const bytes = Buffer.concat([...kept, reader.rest()]);
    if (verdict === 'native') handover.native(bytes);
    else handover.rewrite(new AuthorityRewritingStream(socket, bytes));
  };
  const fail = (): void => {
    done = true;
    cleanup();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    reader.push(chunk);
    try {
      for (let f = reader.next(); f; f = reader.next()) {
        if (!settingsAcked && f.type === TYPE_SETTINGS && f.flags & FLAG_ACK) {
          settingsAcked = true; // the acknowledgement of our SETTINGS: not for nghttp2
          continue;
        }
        kept.push(f.raw);
        if (verdict !== undefined) continue;
        const taken = blocks.take(f);
        if (taken === 'other' || taken === 'pending') continue;
        const authority = authorityOf(taken.decode(new HpackDecoder(HPACK_TABLE_BYTES)));
        verdict = authority === undefined || hostOfAuthority(authority) === authority ? 'native' : 'rewrite';
      }
    } catch {
      fail();
      return;
    }
    if (reader.buffered + kept.reduce((n, b) => n + b.length, 0) > MAX_INSPECTED_BYTES) fail();
    else finish();
  };
  const firstRequestTimer = setTimeout(() => {
    verdict ??= 'native';
    finish();
  }, FIRST_REQUEST_WAIT_MS);
  const ackTimer = setTimeout(fail, SETTINGS_ACK_WAIT_MS);
  const onClose = (): void => fail();
  const cleanup = (): void => {
    clearTimeout(firstRequestTimer);
    clearTimeout(ackTimer);
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.off('error', onClose);
  };
  socket.on('data', onData);
  socket.on('close', onClose);
  socket.on('error', onClose);
  socket.write(EMPTY_SETTINGS);
  onData(seen.subarray(H2_PREFACE.length));
}
