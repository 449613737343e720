/**
 * etcd's unary gRPC calls served on node:http2 directly, in front of grpc-js. grpc-js costs every
 * call its interceptor chain, a Metadata object each way, a Readable of messages and several
 * closures and events; a unary call needs none of them: its request is the stream's body, its
 * answer one DATA frame and the trailers. Profiled under serializable ranges from 64 clients,
 * grpc-js's own JavaScript was about a third of the leader's busy time.
 *
 * On a plaintext connection the HTTP/2 front (h2_front.ts) reads the call's frames and offers it
 * here first (serve), with a stream of its own that writes the answer in one write; on a TLS
 * connection node:http2 does, through grpc-js's connection injector (takeOver).
 *
 * This server takes a stream when it is a plain unary call of the one table
 * (src/server/services.ts) that does not wait (`waits`: Lock, Campaign... need the call's
 * cancellation): content type application/grpc, no compressed request (`grpc-encoding` absent or
 * identity), and the streams added with addStream (Watch). Everything else goes on to grpc-js, on the same
 * connection (grpc-js keeps the sessions: keep-alive, drain and shutdown).
 *
 * What it answers is what grpc-js would: the same response headers and trailers, its status texts
 * for protocol faults (no request message, a second one, a message over the limit, a bad
 * grpc-timeout), the deadline of `grpc-timeout`, and the go-grpc-prometheus counters
 * (instrument.ts). Requests are decoded, checked and answered by GrpcContext, as on the
 * grpc-js path: both go from the message bytes to the internal shape (wire.ts).
 */
import { Buffer } from 'node:buffer';
import type http2 from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { toGrpcStatus } from '../server/errors.js';
import type { GrpcMethodStats, GrpcServerMetrics } from '../server/metrics.js';
import { unaryMethodsOf, type ServiceName, type UnaryMethod } from '../server/services.js';
import { callCredentials, type GrpcContext } from './context.js';
import { etcdServices } from './proto.js';
import { methodStats } from './instrument.js';

/** grpc-js's response headers (server-interceptors' defaultResponseHeaders, and with a message its defaultCompressionHeaders). */
export const STATUS_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' } as const;
export const RESPONSE_HEADERS = { ...STATUS_HEADERS, 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' } as const;
export const OK_TRAILERS = { 'grpc-status': '0', 'grpc-message': 'OK' } as const;
/** No date header: grpc-go's server (etcd) sends none, and Node's would cost every answer a header more to build and pack. */
export const WAIT_FOR_TRAILERS = { waitForTrailers: true, sendDate: false } as const;
export const END_STREAM = { endStream: true, sendDate: false } as const;

/** A status as grpc-js sends it, in the trailers or in a trailers-only answer. */
export const statusFields = (code: number, details: string): { 'grpc-status': string; 'grpc-message': string } => ({
  'grpc-status': String(code),
  'grpc-message': encodeURI(details),
});

/** grpc-js's RESOURCE_EXHAUSTED text for a request message over the limit. */
export const tooLargeStatus = (length: number, max: number): string => `Received message larger than max (${length} vs ${max})`;

/** grpc-timeout: digits and a unit (grpc-js's DEADLINE_REGEX and units). */
const TIMEOUT = /(\d{1,8})\s*([HMSmun])/;
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A message's prefix: the compressed flag and the length. */
export const PREFIX_BYTES = 5;

/** A message with its prefix (not compressed), as it goes in a DATA frame. */
export function framed(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, PREFIX_BYTES);
  return frame;
}

/** A grpc-timeout header's time in ms (grpc-js's parse), undefined when it does not parse. */
export function deadlineMs(header: string | string[]): number | undefined {
  const match = TIMEOUT.exec(String(header));
  return match === null ? undefined : (Number(match[1]) * TIMEOUT_UNIT_MS[match[2]!]!) | 0;
}

/** grpc-js's INTERNAL status text for a grpc-timeout that does not parse. */
export const grpcTimeoutStatus = (header: string | string[]): string => `Invalid grpc-timeout value "${String(header)}"`;

interface DirectMethod {
  method: UnaryMethod;
  /** The gRPC path, e.g. /etcdserverpb.KV/Range. */
  path: string;
  stats: GrpcMethodStats;
}

/**
 * What a call served here uses of its HTTP/2 stream (a unary call the first part, the watch
 * stream, direct_stream.ts, all of it): node:http2's ServerHttp2Stream has it, and so does the
 * HTTP/2 front's own stream (h2_front.ts).
 */
export interface CallStream {
  readonly destroyed: boolean;
  readonly closed: boolean;
  readonly session?: { readonly socket: net.Socket | tls.TLSSocket } | undefined;
  respond(headers: http2.OutgoingHttpHeaders, options: { endStream?: boolean; waitForTrailers?: boolean; sendDate?: boolean }): void;
  end(data?: Buffer): void;
  sendTrailers(trailers: http2.OutgoingHttpHeaders): void;
  resume(): void;
  /** A streaming call's: queues a DATA frame's payload; false when the client is not keeping up ('drain' follows). */
  write(data: Buffer): boolean;
  readonly writableNeedDrain: boolean;
  pause(): void;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'drain' | 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'wantTrailers', listener: (this: CallStream) => void): this;
  once(event: 'end' | 'close' | 'wantTrailers', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
}

/** A stream's client connection, for its peer and TLS certificate. */
type StreamOfSession = { readonly session?: { readonly socket: net.Socket | tls.TLSSocket } | undefined };

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

const ignoreError = (): void => {};

/** The 'wantTrailers' listener of an answered call (the stream is `this`: one function for all calls). */
function sendOkTrailers(this: CallStream): void {
  this.sendTrailers(OK_TRAILERS);
}

export class DirectUnaryServer {
  private readonly methods = new Map<string, DirectMethod>();
  /** Streaming methods served here too, by path: each starts its call on the HTTP/2 stream. */
  private readonly streams = new Map<string, (stream: CallStream, headers: http2.IncomingHttpHeaders) => void>();

  constructor(
    private readonly ctx: GrpcContext,
    private readonly metrics: GrpcServerMetrics,
    /** The largest request message accepted (grpc-js's grpc.max_receive_message_length). */
    readonly maxReceiveBytes: number,
  ) {
    const definitions = etcdServices();
    for (const service of Object.keys(definitions) as ServiceName[]) {
      for (const method of unaryMethodsOf(service)) {
        if (method.waits) continue;
        const def = definitions[service][method.method];
        if (def === undefined) throw new Error(`grpc: ${service}.${method.method} is not in the proto files`);
        this.methods.set(def.path, { method, path: def.path, stats: methodStats(metrics, def) });
      }
    }
  }

  /**
   * Puts this server in front of `server`'s connection injector (its HTTP/2 server, the last
   * one grpc-js made): each new stream is offered here first, then to grpc-js. grpc-js exposes
   * no hook for it; the shape read here is checked, so a grpc-js that changed it fails at start.
   */
  takeOver(server: grpc.Server): void {
    const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server, unknown> }).http2Servers;
    const h2 = servers instanceof Map ? [...servers.keys()].at(-1) : undefined;
    const listeners = h2?.listeners('stream') ?? [];
    if (h2 === undefined || listeners.length !== 1) throw new Error('grpc: cannot find the HTTP/2 server of grpc-js connection injector');
    const grpcJs = listeners[0] as StreamListener;
    h2.removeAllListeners('stream');
    h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      if (!this.serve(stream, headers)) grpcJs.call(h2, stream, headers, flags, rawHeaders);
    });
  }

  /** Serves the streaming method at `path` here (direct_stream.ts), under the same conditions as the unary calls. */
  addStream(path: string, start: (stream: CallStream, headers: http2.IncomingHttpHeaders) => void): void {
    this.streams.set(path, start);
  }

  /** Takes the stream (node:http2's, or the HTTP/2 front's) if it is a call this server answers; false leaves it untouched. */
  serve(stream: CallStream, headers: http2.IncomingHttpHeaders): boolean {
    const path = headers[':path'] ?? '';
    const m = this.methods.get(path);
    const start = m === undefined ? this.streams.get(path) : undefined;
    if ((m === undefined && start === undefined) || !servable(headers)) return false;
    if (m !== undefined) new DirectCall(this, m, stream, headers);
    else start!(stream, headers);
    return true;
  }

  /** Decodes, checks and answers one request; the answer is the response message's bytes. */
  async answer(m: DirectMethod, bytes: Buffer, stream: CallStream, headers: http2.IncomingHttpHeaders): Promise<Buffer> {
    const { ctx } = this;
    this.metrics.receivedBytes.value += bytes.length;
    m.stats.received.value++;
    const req = ctx.decodeRequest(m.method, bytes);
    const resp = ctx.encodeResponse(
      m.method,
      await ctx.answer(m.method, req, {
        credentials: callCredentials(ctx.member, (key) => metadataValue(headers[key]), { getAuthContext: () => authContextOf(stream) }),
        peer: peerOf(stream),
      }),
    );
    this.metrics.sentBytes.value += resp.length;
    m.stats.sent.value++;
    return resp;
  }

  logFailure(err: unknown, path: string): void {
    this.ctx.log.debug({ err: (err as Error).message, path }, 'grpc call failed');
  }
}

/** One unary call: the body gathered, the answer or the status sent once. */
class DirectCall {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  /** The first message's length, once its prefix is in. */
  private messageBytes = -1;
  private done = false;
  private deadline: NodeJS.Timeout | undefined;
  private readonly started = performance.now();

  constructor(
    private readonly server: DirectUnaryServer,
    private readonly m: DirectMethod,
    private readonly stream: CallStream,
    private readonly headers: http2.IncomingHttpHeaders,
  ) {
    m.stats.started.value++;
    // As grpc-js: an error is followed by 'close'; there is nothing to answer it with. (`on`,
    // not `once`, here and below: each fires at most once that matters, and once wraps the
    // listener in a closure of its own on every call.)
    stream.on('error', ignoreError);
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) this.startDeadline(timeout);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd());
  }

  private startDeadline(header: string | string[]): void {
    const ms = deadlineMs(header);
    if (ms === undefined) {
      this.finishWithStatus(grpc.status.INTERNAL, grpcTimeoutStatus(header));
      return;
    }
    // Cleared when the call ends (every call ends: a handler answers or fails within etcd's request timeout).
    this.deadline = setTimeout(() => this.finishWithStatus(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), ms);
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.messageBytes < 0 && this.received >= PREFIX_BYTES) {
      this.messageBytes = this.body().readUInt32BE(1);
      if (this.messageBytes > this.server.maxReceiveBytes) {
        this.finishWithStatus(grpc.status.RESOURCE_EXHAUSTED, tooLargeStatus(this.messageBytes, this.server.maxReceiveBytes));
        return;
      }
    }
    if (this.messageBytes >= 0 && this.received >= 2 * PREFIX_BYTES + this.messageBytes) {
      this.finishWithStatus(grpc.status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.m.path}`);
    }
  }

  /** What came so far, as one Buffer (usually the one chunk). */
  private body(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0]!;
  }

  private onEnd(): void {
    if (this.done) return;
    if (this.messageBytes < 0 || this.received < PREFIX_BYTES + this.messageBytes) {
      this.finishWithStatus(grpc.status.UNIMPLEMENTED, `Received no request message for server streaming method ${this.m.path}`);
      return;
    }
    // With no grpc-encoding the compressed flag is ignored, as grpc-js does.
    const message = this.body().subarray(PREFIX_BYTES, PREFIX_BYTES + this.messageBytes);
    this.server.answer(this.m, message, this.stream, this.headers).then(
      (resp) => this.finishWithMessage(resp),
      (err: unknown) => {
        this.server.logFailure(err, this.m.path);
        const { code, message: details } = toGrpcStatus(err);
        this.finishWithStatus(code as number, details);
      },
    );
  }

  /** Counted once, as instrument.ts counts a unary call: by the code it ended with. */
  private end(code: number): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.deadline);
    const { stats } = this.m;
    stats.handled[code]!.value++;
    stats.seconds.observe((performance.now() - this.started) / 1000);
    return !(this.stream.destroyed || this.stream.closed);
  }

  private finishWithMessage(resp: Buffer): void {
    if (!this.end(grpc.status.OK)) return;
    const { stream } = this;
    stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
    stream.on('wantTrailers', sendOkTrailers);
    stream.end(framed(resp));
  }

  /** A trailers-only response, as grpc-js sends a status before any message. */
  private finishWithStatus(code: number, details: string): void {
    if (!this.end(code)) return;
    const { stream } = this;
    stream.respond({ ...STATUS_HEADERS, ...statusFields(code, details) }, END_STREAM);
    // What the client still sends is read and dropped (grpc-js resumes the stream likewise).
    stream.resume();
  }
}

/** Content type application/grpc, the request not compressed: what the direct server answers (else grpc-js does). */
function servable(headers: http2.IncomingHttpHeaders): boolean {
  const contentType = headers['content-type'];
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) return false;
  const encoding = headers['grpc-encoding'];
  return encoding === undefined || encoding === 'identity';
}

/** The call's client, `host:port`, as grpc-js's getPeer. */
export function peerOf(stream: StreamOfSession): string {
  const socket = stream.session?.socket;
  if (!socket?.remoteAddress) return 'unknown';
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress;
}

/** A custom metadata header's first value, as grpc-js's Metadata.fromHttp2Headers splits it. */
function metadataValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v.split(',')[0];
  return first?.trim();
}

/** grpc-js's getAuthContext: the verified client certificate of a TLS session. */
export function authContextOf(stream: StreamOfSession): { sslPeerCertificate?: tls.PeerCertificate } {
  const socket = stream.session?.socket;
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return {};
  const cert = socket.getPeerCertificate();
  return cert.raw ? { sslPeerCertificate: cert } : {};
}
