/**
 * The HTTP/2 front of a plaintext gRPC connection: the direct calls (direct_unary.ts: the unary
 * calls, and the watch stream of direct_stream.ts) are answered on the client's socket itself,
 * every other stream goes on to node:http2 (so grpc-js) through this Duplex, on the same
 * connection.
 *
 * Why: node:http2 sends a unary answer in two writes. Its trailers can only be given once the
 * stream's 'wantTrailers' fires, and that fires only after the DATA frame has been written to
 * the socket (a write to an Http2Stream completes once nghttp2 has sent it; only then does the
 * Writable call _final), a turn of the event loop later: the client reads its headers and
 * message, then waits for the trailers (about 0.1 ms a call on this machine, on the critical
 * path of every sequential call), and the server and the client each pay a second syscall and a
 * second wake-up per call. Here a call's HEADERS, DATA and trailers, and every other frame
 * written in the same turn of the event loop, go out in one write.
 *
 * How the connection is shared with nghttp2:
 * - Client to server: every frame is read here. A header block opening a stream is decoded
 *   (HPACK, hpack_decoder.ts: this side's table kept in step with the client's); a call the direct
 *   server takes is ours, any other is encoded again for nghttp2 (its table, `:authority` cut
 *   back to host:port as h2_authority.ts explains) and passed on. Frames of our streams stay
 *   here (their DATA credited back to the client with WINDOW_UPDATEs of our own); connection
 *   frames (SETTINGS, GOAWAY, PING ACKs) and frames of nghttp2's streams pass. The client's
 *   PINGs are answered here and its connection WINDOW_UPDATEs reach nghttp2 only when its DATA
 *   needs them: grpc-go sends both every few calls, and each frame nghttp2 reads costs a pass
 *   through Node's JS stream socket (at 256 clients, a tenth of the leader's CPU went there).
 *   nghttp2 never learns of our streams' ids: gaps in stream ids are allowed.
 * - Server to client: nghttp2's frames are read here too and go out in their order, ours among
 *   them (never inside a header block of nghttp2's). Our header blocks use only HPACK's static
 *   table and literals without indexing, so they change nothing in the client's dynamic table
 *   that nghttp2's encoder relies on.
 * - Flow control: the client's connection window is one, for nghttp2's DATA and ours, while
 *   nghttp2 counts only its own. So every DATA frame, nghttp2's too, goes out only when the
 *   connection window tracked here has room (held in order otherwise); nghttp2's stream
 *   windows are its own, ours are tracked here.
 *
 * TLS connections keep the native path (mux.ts): grpc-js and direct_stream.ts read the client's
 * certificate from the session's socket, which behind this Duplex would not be the TLS socket.
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import type { HpackHeader } from 'hpack.js';
import { type CallStream, type DirectUnaryServer, OK_TRAILERS, RESPONSE_HEADERS } from './direct_unary.js';
import {
  encodeHeaderBlock,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameReader,
  frameHeader,
  frameOf,
  H2_PREFACE,
  type HeaderBlock,
  headerBlockFrames,
  HeaderBlockCollector,
  HPACK_TABLE_BYTES,
  MAX_FRAME_PAYLOAD,
  serverHeaderEncoder,
  TYPE_CONTINUATION,
  TYPE_HEADERS,
  TYPE_SETTINGS,
  unpadded,
} from './h2_authority.js';
import { HpackDecoder } from './hpack_decoder.js';

const TYPE_DATA = 0x0;
const TYPE_PRIORITY = 0x2;
const TYPE_RST_STREAM = 0x3;
const TYPE_PUSH_PROMISE = 0x5;
const TYPE_PING = 0x6;
const TYPE_GOAWAY = 0x7;
const TYPE_WINDOW_UPDATE = 0x8;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
/** RFC 9113's initial flow-control window, of the connection and of every stream. */
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** SETTINGS_MAX_FRAME_SIZE's largest value (RFC 9113 §6.5.2): no frame from the client may be longer. */
const LARGEST_FRAME = 16_777_215;
/** nghttp2's writes acknowledged at once while this much is held for the connection window; beyond, held back. */
const HELD_HIGH_WATER = 1024 * 1024;
/** nghttp2's view of the connection window below which the client's increments are passed on to it. */
const SERVER_WINDOW_LOW = DEFAULT_WINDOW / 2;
/** A PING's payload (RFC 9113 §6.7). */
const PING_PAYLOAD_BYTES = 8;
/** How long a connection nghttp2 has ended waits for our calls in flight before its socket ends. */
const END_WAIT_MS = 5_000;
/** RST_STREAM's code for a stream answered before the client finished sending (RFC 9113 §8.1). */
const NO_ERROR = 0x0;

/** A frame to send: its bytes, and for DATA the flow-controlled length. */
interface Outgoing {
  bytes: Buffer;
  flowBytes: number;
}

/** A stream of nghttp2's: which sides have ended it. */
interface PassedStream {
  clientEnded: boolean;
  serverEnded: boolean;
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1), `first` holding the pattern bits. */
function hpackInteger(out: number[], value: number, prefixBits: number, first: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

function hpackString(out: number[], s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  hpackInteger(out, bytes.length, 7, 0);
  for (const b of bytes) out.push(b);
}

/**
 * A header block of ours: `:status: 200` from the static table, everything else a literal
 * without indexing with a literal name (RFC 7541 §6.2.2), so the client's dynamic table stays
 * nghttp2's alone.
 */
export function encodeLiteralHeaders(headers: http2.OutgoingHttpHeaders): Buffer {
  const out: number[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (name === ':status' && String(value) === '200') {
      out.push(0x88);
      continue;
    }
    out.push(0x00);
    hpackString(out, name.toLowerCase());
    hpackString(out, Array.isArray(value) ? value.join(', ') : String(value));
  }
  return Buffer.from(out);
}

/** The header blocks of every answer (its headers, the OK trailers), encoded once. */
const CONSTANT_BLOCKS = new Map<object, Buffer>([RESPONSE_HEADERS, OK_TRAILERS].map((h) => [h, encodeLiteralHeaders(h)]));
function headerBlockOf(headers: http2.OutgoingHttpHeaders): Buffer {
  return CONSTANT_BLOCKS.get(headers) ?? encodeLiteralHeaders(headers);
}

const UINT32_PLACEHOLDER = Buffer.alloc(4);
/** A frame whose payload is one 32-bit value: WINDOW_UPDATE's increment (below 2^31), RST_STREAM's code. */
function uint32Frame(type: number, streamId: number, value: number): Buffer {
  const f = frameOf(type, 0, streamId, UINT32_PLACEHOLDER);
  f.writeUInt32BE(value, FRAME_HEADER_BYTES);
  return f;
}

/** The client's headers as node:http2 gives them: lower-case names, repeated values joined. */
function incomingHeaders(list: HpackHeader[]): http2.IncomingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const h of list) {
    const prev = headers[h.name];
    headers[h.name] = prev === undefined ? h.value : `${prev}, ${h.value}`;
  }
  return headers;
}

/** node:http2's default high-water mark of a stream's writable side: beyond it write() asks to wait for 'drain'. */
const STREAM_HIGH_WATER = 16 * 1024;

/**
 * A stream of a call served on the front: what DirectCall (a unary call) and DirectStreamCall
 * (the watch stream) use of a ServerHttp2Stream.
 */
class FrontStream extends EventEmitter implements CallStream {
  destroyed = false;
  closed = false;
  readonly session: { readonly socket: net.Socket };
  /** The client's window for this stream: what may still be sent. */
  sendWindow: number;
  /** DATA payloads written and not yet sent (the stream's window is shut), in order. */
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private waitForTrailers = false;
  private ended = false;
  private trailers: Buffer | undefined;
  /** The client ended its side (END_STREAM, or the stream reset). */
  remoteEnded = false;
  /** write() returned false: 'drain' follows once the queue (and the front's held frames) are low again. */
  writableNeedDrain = false;
  /** pause(): the client's DATA is kept, and its stream window not credited back, until resume(). */
  private paused = false;
  private inbox: Buffer[] = [];
  private inboxEnded = false;
  private withheldCredit = 0;

  constructor(
    private readonly front: H2Front,
    readonly id: number,
    socket: net.Socket,
    initialWindow: number,
  ) {
    super();
    this.session = { socket };
    this.sendWindow = initialWindow;
  }

  respond(headers: http2.OutgoingHttpHeaders, options: { endStream?: boolean; waitForTrailers?: boolean }): void {
    if (this.closed) return;
    const endStream = options.endStream === true;
    this.front.send(headerBlockFrames(this.id, headerBlockOf(headers), endStream, this.front.maxFrame), 0);
    this.waitForTrailers = options.waitForTrailers === true;
    if (endStream) this.finish();
  }

  write(data: Buffer): boolean {
    if (this.closed || this.ended) return false;
    this.enqueue(data);
    this.pump();
    if (!this.closed && (this.queuedBytes >= STREAM_HIGH_WATER || this.front.congested())) {
      this.writableNeedDrain = true;
      this.front.waitForDrain(this);
    }
    return !this.writableNeedDrain;
  }

  end(data?: Buffer): void {
    if (this.closed || this.ended) return;
    this.ended = true;
    if (data !== undefined) this.enqueue(data);
    if (this.waitForTrailers) this.emit('wantTrailers');
    this.pump();
  }

  private enqueue(data: Buffer): void {
    this.queue.push(data);
    this.queuedBytes += data.length;
  }

  sendTrailers(trailers: http2.OutgoingHttpHeaders): void {
    if (this.closed || this.trailers !== undefined) return;
    this.trailers = headerBlockOf(trailers);
    this.pump();
  }

  /** Sends what the stream's window (and the frame size) allows of the queue, then the end of the stream. */
  pump(): void {
    if (this.closed) return;
    const { front } = this;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, front.maxFrame, this.sendWindow);
      if (n <= 0 && head.length > 0) break; // the client's WINDOW_UPDATE for this stream resumes it
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queuedBytes -= n;
      this.sendWindow -= n;
      const endStream = this.ended && !this.waitForTrailers && this.queue.length === 0;
      if (n > 0 || endStream) front.send(frameOf(TYPE_DATA, endStream ? FLAG_END_STREAM : 0, this.id, head.subarray(0, n)), n);
      if (endStream) {
        this.finish();
        return;
      }
    }
    if (this.writableNeedDrain) this.drained();
    if (!this.ended || this.queue.length > 0) return;
    if (!this.waitForTrailers) {
      // Ended with nothing written: an empty DATA frame ends the stream.
      front.send(frameHeader(0, TYPE_DATA, FLAG_END_STREAM, this.id), 0);
      this.finish();
    } else if (this.trailers !== undefined) {
      front.send(headerBlockFrames(this.id, this.trailers, true, front.maxFrame), 0);
      this.finish();
    }
  }

  /** 'drain', once the queue and the front's held frames are below their high-water marks. */
  drained(): void {
    if (!this.writableNeedDrain || this.queuedBytes >= STREAM_HIGH_WATER || this.front.congested()) return;
    this.writableNeedDrain = false;
    this.front.drainedStream(this);
    this.emit('drain');
  }

  /** DATA from the client: its payload (padding gone) and its flow-controlled length. */
  received(payload: Buffer, flowBytes: number, endStream: boolean): void {
    if (this.remoteEnded) return;
    if (endStream) this.remoteEnded = true;
    if (this.paused) {
      this.inbox.push(payload);
      if (!endStream) this.withheldCredit += flowBytes;
      this.inboxEnded = endStream;
      return;
    }
    if (!endStream) this.front.creditStream(this.id, flowBytes);
    if (payload.length > 0) this.emit('data', payload);
    if (endStream) this.emit('end');
  }

  /** The client ended its side with trailers (a header block with END_STREAM). */
  remoteEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    if (this.paused) this.inboxEnded = true;
    else this.emit('end');
  }

  pause(): void {
    this.paused = true;
  }

  /** What waited while paused is given, and its window credited back. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.withheldCredit > 0 && !this.remoteEnded) this.front.creditStream(this.id, this.withheldCredit);
    this.withheldCredit = 0;
    while (this.inbox.length > 0 && !this.paused) {
      const payload = this.inbox.shift()!;
      if (payload.length > 0) this.emit('data', payload);
    }
    if (this.inbox.length === 0 && this.inboxEnded && !this.paused) {
      this.inboxEnded = false;
      this.emit('end');
    }
  }

  /** This side has sent its END_STREAM. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.front.finished(this);
    this.emit('close');
  }

  /** The client reset the stream, or the connection is gone. */
  abort(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.remoteEnded = true;
    const wasClosed = this.closed;
    this.closed = true;
    if (!wasClosed) this.front.finished(this);
    this.emit('aborted');
    this.emit('close');
  }
}

/**
 * The Duplex node:http2 serves (grpc-js's connection injector): its readable side is what the
 * client sent for nghttp2, its writable side what nghttp2 sends, which goes out here.
 */
export class H2Front extends Duplex {
  private readonly clientFrames = new FrameReader();
  private readonly clientBlocks = new HeaderBlockCollector();
  private readonly serverFrames = new FrameReader();
  /** The client's HPACK table, as this side keeps it. */
  private readonly decoder = new HpackDecoder(HPACK_TABLE_BYTES);
  /** nghttp2's HPACK table, for the blocks passed on. */
  private readonly encoder = serverHeaderEncoder();
  private readonly ours = new Map<number, FrontStream>();
  private readonly passed = new Map<number, PassedStream>();
  /** The highest stream id the client has opened. */
  private lastStreamId = 0;
  /** The client's settings that our frames keep to. */
  maxFrame = MAX_FRAME_PAYLOAD;
  private initialWindow = DEFAULT_WINDOW;
  /** The client's connection window: what DATA (nghttp2's and ours) may still be sent. */
  private connectionWindow = DEFAULT_WINDOW;
  /**
   * The connection window as nghttp2 sees it (its own DATA taken from it, the increments it has
   * been given), and the client's increments not passed on yet: a WINDOW_UPDATE costs nghttp2 a
   * read through its JS stream socket, so it gets them only once its window runs low.
   */
  private serverWindow = DEFAULT_WINDOW;
  private unpassedIncrement = 0;
  /** Received DATA of our streams (and dropped DATA) not yet credited back to the client. */
  private connectionCredit = 0;
  /** Frames held in order: a DATA frame at the head waits for the connection window. */
  private readonly held: Outgoing[] = [];
  private heldBytes = 0;
  /** nghttp2's write callbacks waiting for the held frames to drain. */
  private readonly heldWrites: (() => void)[] = [];
  /** Our streams whose write() returned false. */
  private readonly drainWaiters = new Set<FrontStream>();
  /** Ready to go out in this turn's write. */
  private out: Buffer[] = [];
  private flushScheduled = false;
  /**
   * nghttp2 has not sent its SETTINGS yet (the server's preface, the first frame the client may
   * see), or is in the middle of a header block: our frames wait behind.
   */
  private serverBlockOpen = true;
  private readonly waitingForBlock: Outgoing[] = [];
  private ending = false;
  private endTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: net.Socket,
    seen: Buffer,
    private readonly direct: DirectUnaryServer,
  ) {
    super();
    this.push(H2_PREFACE);
    this.consume(seen.subarray(H2_PREFACE.length));
    socket.on('data', (chunk: Buffer) => this.consume(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  // ---- client to server ----------------------------------------------------------------

  private consume(chunk: Buffer): void {
    if (this.destroyed) return;
    this.clientFrames.push(chunk);
    try {
      for (let f = this.clientFrames.next(); f; f = this.clientFrames.next()) this.fromClient(f);
      if (this.clientFrames.buffered > FRAME_HEADER_BYTES + LARGEST_FRAME) throw new Error('h2: frame too large');
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  /** Hands bytes to nghttp2; the socket pauses while nghttp2 does not keep up. */
  private pass(bytes: Buffer): void {
    if (!this.push(bytes)) this.socket.pause();
  }

  private fromClient(f: Frame): void {
    switch (f.type) {
      case TYPE_HEADERS:
      case TYPE_CONTINUATION: {
        const block = this.clientBlocks.take(f);
        if (typeof block !== 'string') this.headerBlock(block);
        return;
      }
      case TYPE_DATA:
        this.clientData(f);
        return;
      case TYPE_WINDOW_UPDATE: {
        const increment = f.payload.length === 4 ? f.payload.readUInt32BE(0) & 0x7fffffff : 0;
        if (f.streamId === 0) {
          if (increment === 0 || this.connectionWindow + increment > MAX_WINDOW) {
            // A protocol or flow-control error: nghttp2 answers it (GOAWAY), its totals as the client's.
            this.passIncrement();
            this.pass(f.raw);
            return;
          }
          this.connectionWindow += increment;
          this.unpassedIncrement += increment;
          if (this.serverWindow < SERVER_WINDOW_LOW) this.passIncrement();
          this.drain();
          return;
        }
        const ours = this.ours.get(f.streamId);
        if (ours !== undefined) {
          ours.sendWindow += increment;
          ours.pump();
        } else if (this.passed.has(f.streamId)) this.pass(f.raw);
        return;
      }
      case TYPE_RST_STREAM: {
        const ours = this.ours.get(f.streamId);
        if (ours !== undefined) ours.abort();
        else if (this.passed.delete(f.streamId)) this.pass(f.raw);
        return;
      }
      case TYPE_PRIORITY:
        if (this.passed.has(f.streamId) || f.streamId > this.lastStreamId) this.pass(f.raw);
        return;
      case TYPE_SETTINGS:
        if (!(f.flags & FLAG_ACK)) this.clientSettings(f.payload);
        this.pass(f.raw);
        return;
      case TYPE_PING:
        // The client's own PINGs (grpc-go's BDP estimate, keep-alive) are answered here; an ACK
        // answers nghttp2's (grpc-js's keep-alive), and a malformed PING is nghttp2's to refuse.
        if (f.flags & FLAG_ACK || f.streamId !== 0 || f.payload.length !== PING_PAYLOAD_BYTES) this.pass(f.raw);
        else this.send(frameOf(TYPE_PING, FLAG_ACK, 0, f.payload), 0);
        return;
      default:
        this.pass(f.raw);
    }
  }

  /** Passes the client's connection increments held back to nghttp2 (which needs them only for DATA of its own). */
  private readonly passIncrement = (): void => {
    if (this.unpassedIncrement === 0 || this.destroyed) return;
    this.pass(uint32Frame(TYPE_WINDOW_UPDATE, 0, this.unpassedIncrement));
    this.serverWindow += this.unpassedIncrement;
    this.unpassedIncrement = 0;
  };

  private clientSettings(payload: Buffer): void {
    for (let i = 0; i + 6 <= payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE && value <= MAX_WINDOW) {
        const delta = value - this.initialWindow;
        this.initialWindow = value;
        for (const s of this.ours.values()) {
          s.sendWindow += delta;
          s.pump();
        }
      } else if (id === SETTINGS_MAX_FRAME_SIZE && value >= MAX_FRAME_PAYLOAD && value <= LARGEST_FRAME) {
        this.maxFrame = value;
      }
    }
  }

  private headerBlock(block: HeaderBlock): void {
    // Every block is decoded, ours or not: the client's encoder counts on the table it builds.
    const decoded = block.decode(this.decoder);
    const id = block.streamId;
    const ours = this.ours.get(id);
    if (ours !== undefined) {
      // Trailers of a request: nothing in them is read; they end the client's side.
      if (block.endStream) ours.remoteEnd();
      return;
    }
    const passed = this.passed.get(id);
    if (passed === undefined && id > this.lastStreamId && id % 2 === 1 && !this.ending) {
      this.lastStreamId = id;
      const stream = new FrontStream(this, id, this.socket, this.initialWindow);
      // A request without a body has ended with its headers (known before the call may answer, in its constructor).
      stream.remoteEnded = block.endStream;
      if (this.direct.serve(stream, incomingHeaders(decoded))) {
        if (!stream.closed) this.ours.set(id, stream);
        if (block.endStream) stream.emit('end');
        return;
      }
      this.passed.set(id, { clientEnded: block.endStream, serverEnded: false });
    } else if (passed !== undefined && block.endStream) {
      passed.clientEnded = true;
      this.forget(id, passed);
    }
    if (id > this.lastStreamId) this.lastStreamId = id;
    this.pass(encodeHeaderBlock(this.encoder, block, decoded));
  }

  private clientData(f: Frame): void {
    const ours = this.ours.get(f.streamId);
    if (ours === undefined) {
      const passed = this.passed.get(f.streamId);
      if (passed !== undefined) {
        if (f.flags & FLAG_END_STREAM) {
          passed.clientEnded = true;
          this.forget(f.streamId, passed);
        }
        this.pass(f.raw);
        return;
      }
      // A closed stream of ours (or one nghttp2 has closed): dropped, its bytes credited back.
      this.connectionCredit += f.payload.length;
      return;
    }
    // The connection's window is credited back with the next write (an answer's, soon); the stream's by the stream.
    this.connectionCredit += f.payload.length;
    ours.received(unpadded(f), f.payload.length, (f.flags & FLAG_END_STREAM) !== 0);
  }

  /** Credits DATA a stream of ours has taken back to the client (which is still sending) at once. */
  creditStream(streamId: number, bytes: number): void {
    if (bytes > 0) this.send(uint32Frame(TYPE_WINDOW_UPDATE, streamId, bytes), 0);
  }

  /** A stream of nghttp2's that both sides have ended is forgotten. */
  private forget(id: number, s: PassedStream): void {
    if (s.clientEnded && s.serverEnded) this.passed.delete(id);
  }

  // ---- server to client ----------------------------------------------------------------

  /** Queues a frame of one of our streams (`flowBytes`: a DATA frame's length). */
  send(bytes: Buffer, flowBytes: number): void {
    const frame = { bytes, flowBytes };
    if (this.serverBlockOpen) this.waitingForBlock.push(frame);
    else this.hold(frame);
  }

  /** Our stream has sent its END_STREAM. */
  finished(stream: FrontStream): void {
    this.ours.delete(stream.id);
    this.drainWaiters.delete(stream);
    // The client is still sending (a request answered early): it is told to stop, and what comes is dropped.
    if (!stream.remoteEnded && !stream.destroyed) this.send(uint32Frame(TYPE_RST_STREAM, stream.id, NO_ERROR), 0);
    if (this.ending && this.ours.size === 0) this.endSocket();
  }

  /** So many frames are held for the connection window that our streams' writers should wait. */
  congested(): boolean {
    return this.heldBytes >= HELD_HIGH_WATER;
  }

  waitForDrain(stream: FrontStream): void {
    this.drainWaiters.add(stream);
  }

  drainedStream(stream: FrontStream): void {
    this.drainWaiters.delete(stream);
  }

  /** Queues a frame in order behind the held ones: it goes out with this turn's write once the connection window allows. */
  private hold(frame: Outgoing): void {
    this.held.push(frame);
    this.heldBytes += frame.bytes.length;
    this.drain();
  }

  /** Moves held frames out as the connection window allows. */
  private drain(): void {
    while (this.held.length > 0) {
      const head = this.held[0]!;
      if (head.flowBytes > this.connectionWindow) break;
      this.held.shift();
      this.heldBytes -= head.bytes.length;
      this.connectionWindow -= head.flowBytes;
      this.out.push(head.bytes);
    }
    if (this.heldBytes < HELD_HIGH_WATER) {
      if (this.heldWrites.length > 0) for (const done of this.heldWrites.splice(0)) done();
      if (this.drainWaiters.size > 0) for (const s of [...this.drainWaiters]) s.drained();
    }
    this.scheduleFlush();
  }

  private fromServer(f: Frame): void {
    const streamId = f.streamId;
    let bytes = f.raw;
    let flowBytes = 0;
    switch (f.type) {
      case TYPE_DATA:
        flowBytes = f.payload.length;
        this.serverWindow -= flowBytes;
        // After nghttp2's write: nothing is handed to it while it writes.
        if (this.serverWindow < SERVER_WINDOW_LOW && this.unpassedIncrement > 0) process.nextTick(this.passIncrement);
        if (f.flags & FLAG_END_STREAM) this.serverEnd(streamId);
        break;
      case TYPE_HEADERS:
      case TYPE_PUSH_PROMISE:
        if (f.type === TYPE_HEADERS && f.flags & FLAG_END_STREAM) this.serverEnd(streamId);
        this.serverBlockOpen = !(f.flags & FLAG_END_HEADERS);
        break;
      case TYPE_CONTINUATION:
        this.serverBlockOpen = !(f.flags & FLAG_END_HEADERS);
        break;
      case TYPE_SETTINGS:
        // The first one is the server's preface: ours may follow it (none comes inside a header block).
        this.serverBlockOpen = false;
        break;
      case TYPE_RST_STREAM:
        this.passed.delete(streamId);
        break;
      case TYPE_GOAWAY: {
        // The last stream the server processed: ours count too, or the client would retry them.
        const lastOurs = Math.max(0, ...this.ours.keys());
        if (f.payload.length >= 8 && (f.payload.readUInt32BE(0) & 0x7fffffff) < lastOurs) {
          bytes = Buffer.from(f.raw);
          bytes.writeUInt32BE(lastOurs, FRAME_HEADER_BYTES);
        }
        break;
      }
    }
    this.hold({ bytes, flowBytes });
    if (!this.serverBlockOpen && this.waitingForBlock.length > 0) for (const frame of this.waitingForBlock.splice(0)) this.hold(frame);
  }

  private serverEnd(streamId: number): void {
    const s = this.passed.get(streamId);
    if (s === undefined) return;
    s.serverEnded = true;
    this.forget(streamId, s);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After the current callback and the promises it resolves (nextTick runs once the microtasks
    // queued with it have run): the answers of one apply batch, or of one read's requests, go in one write.
    process.nextTick(this.flush);
  }

  /** Everything this turn produced, in one write. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.connectionCredit > 0 && !this.serverBlockOpen) {
      this.out.push(uint32Frame(TYPE_WINDOW_UPDATE, 0, this.connectionCredit));
      this.connectionCredit = 0;
    }
    const out = this.out;
    if (out.length === 0 || this.socket.destroyed) return;
    this.out = [];
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  };

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.serverFrames.push(chunk);
    for (let f = this.serverFrames.next(); f; f = this.serverFrames.next()) this.fromServer(f);
    // nghttp2 writes what it has in one go already: out at once, with any of ours pending.
    this.flush();
    if (this.heldBytes >= HELD_HIGH_WATER) this.heldWrites.push(() => callback());
    else callback();
  }

  /** nghttp2 has ended the connection: the socket ends once our calls in flight have answered (bounded). */
  override _final(callback: (err?: Error | null) => void): void {
    this.ending = true;
    if (this.ours.size === 0) this.endSocket();
    else this.endTimer = setTimeout(() => this.endSocket(), END_WAIT_MS);
    callback();
  }

  private endSocket(): void {
    clearTimeout(this.endTimer);
    this.flush();
    this.socket.end();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.endTimer);
    for (const s of [...this.ours.values()]) s.abort();
    this.ours.clear();
    this.drainWaiters.clear();
    for (const done of this.heldWrites.splice(0)) done();
    this.socket.destroy();
    callback(err);
  }
}
