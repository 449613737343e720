/**
 * A bidirectional gRPC stream served directly (direct_unary.ts takes the HTTP/2 stream: node:http2's,
 * or on a plaintext connection the HTTP/2 front's, h2_front.ts), with the face of a grpc-js ServerDuplexStream that the watch stream (watch.ts) uses:
 * 'data' per request message, 'end', 'cancelled' and 'close', write() with back-pressure and
 * 'drain', `metadata`, `cancelled`, getPeer(), getAuthContext(), and an emitted 'error' that ends
 * the call with its status, as grpc-js does.
 *
 * Why: a put reaches every watcher of a stream at once, and grpc-js writes each watcher's response
 * as its own HTTP/2 write (1000 watchers: 1000 writes per put, the leader's CPU per delivered event
 * 4.6x etcd's). Here the responses written in one turn of the event loop go out as one write: gRPC
 * frames each message with its own length, so several fit one DATA frame.
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { GrpcMethodStats, GrpcServerMetrics } from '../server/metrics.js';
import { toGrpcStatus } from '../server/errors.js';
import {
  authContextOf,
  type CallStream,
  deadlineMs,
  END_STREAM,
  framed,
  grpcTimeoutStatus,
  peerOf,
  PREFIX_BYTES,
  RESPONSE_HEADERS,
  STATUS_HEADERS,
  statusFields,
  tooLargeStatus,
  WAIT_FOR_TRAILERS,
} from './direct_unary.js';
import type { ProtoMessage } from './proto.js';

export interface DirectStreamMethod {
  path: string;
  stats: GrpcMethodStats;
  /** A request message's bytes as a proto object (throws on bytes that are not one). */
  decode(bytes: Buffer): ProtoMessage;
  /** A response (a proto object, or already encoded) as its message's bytes. */
  encode(resp: ProtoMessage | Buffer): Buffer;
}

export class DirectStreamCall extends EventEmitter {
  readonly metadata: grpc.Metadata;
  cancelled = false;
  private headersSent = false;
  private ended = false;
  /** Framed responses waiting for this turn's write. */
  private pending: Buffer[] = [];
  private flushQueued = false;
  /** Request bytes not yet a whole message. */
  private partial: Buffer = Buffer.alloc(0);
  private deadline: NodeJS.Timeout | undefined;
  /** Requests that came before anyone listened for them (the watch stream may first wait for its token). */
  private inbox: ProtoMessage[] = [];
  private readonly started = performance.now();

  constructor(
    private readonly m: DirectStreamMethod,
    private readonly metrics: GrpcServerMetrics,
    private readonly stream: CallStream,
    headers: http2.IncomingHttpHeaders,
    private readonly maxReceiveBytes: number,
  ) {
    super();
    m.stats.started.value++;
    this.metadata = grpc.Metadata.fromHttp2Headers(headers);
    // The status an emitted 'error' carries ends the call (grpc-js's own listener does the same).
    this.on('error', (err: unknown) => this.finish(err));
    // As a Readable holds its data until it is read: the first 'data' listener gets what waited.
    this.on('newListener', (event: string) => {
      if (event !== 'data' || this.inbox.length === 0) return;
      queueMicrotask(() => {
        const waiting = this.inbox;
        this.inbox = [];
        for (const msg of waiting) this.emit('data', msg);
        if (!this.ended) this.stream.resume();
      });
    });
    stream.once('error', () => {});
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.once('end', () => this.emit('end'));
    stream.on('drain', () => this.emit('drain'));
    stream.once('close', () => {
      clearTimeout(this.deadline);
      if (!this.ended) {
        this.ended = true;
        this.cancelled = true;
        this.handled(grpc.status.CANCELLED);
        this.emit('cancelled');
      }
      this.emit('close');
    });
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = deadlineMs(timeout);
      if (ms === undefined) queueMicrotask(() => this.finishWith(grpc.status.INTERNAL, grpcTimeoutStatus(timeout)));
      else this.deadline = setTimeout(() => this.finishWith(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), ms);
    }
  }

  /** Counted once, as instrument.ts counts a stream: by the code it ended with, and how long it lasted. */
  private handled(code: number): void {
    this.m.stats.handled[code]!.value++;
    this.m.stats.seconds.observe((performance.now() - this.started) / 1000);
  }

  getPeer(): string {
    return peerOf(this.stream);
  }

  getAuthContext(): ReturnType<typeof authContextOf> {
    return authContextOf(this.stream);
  }

  /** Queues a response for this turn's write; false when the client is not keeping up (wait for 'drain'). */
  write(resp: ProtoMessage | Buffer): boolean {
    if (this.ended) return false;
    const message = this.m.encode(resp);
    this.pending.push(framed(message));
    this.metrics.sentBytes.value += message.length;
    this.m.stats.sent.value++;
    if (!this.flushQueued) {
      this.flushQueued = true;
      // After the other watchers of this stream have written what the same revision gave them.
      queueMicrotask(() => this.flush());
    }
    return !this.stream.writableNeedDrain;
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.pending.length === 0 || this.ended || this.stream.destroyed) return;
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
    }
    const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.stream.write(out);
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    let buf = this.partial.length === 0 ? chunk : Buffer.concat([this.partial, chunk]);
    while (buf.length >= PREFIX_BYTES) {
      const length = buf.readUInt32BE(1);
      if (length > this.maxReceiveBytes) {
        this.finishWith(grpc.status.RESOURCE_EXHAUSTED, tooLargeStatus(length, this.maxReceiveBytes));
        return;
      }
      if (buf.length < PREFIX_BYTES + length) break;
      const message = buf.subarray(PREFIX_BYTES, PREFIX_BYTES + length);
      buf = buf.subarray(PREFIX_BYTES + length);
      this.metrics.receivedBytes.value += length;
      this.m.stats.received.value++;
      let msg: ProtoMessage;
      try {
        msg = this.m.decode(message);
      } catch {
        this.finishWith(grpc.status.INTERNAL, 'Error deserializing request');
        return;
      }
      if (this.listenerCount('data') === 0 || this.inbox.length > 0) {
        this.inbox.push(msg);
        this.stream.pause();
      } else this.emit('data', msg);
      if (this.ended) return;
    }
    this.partial = buf;
  }

  /** Ends the call with the status of `err` (a ServiceError's code and details, or a qkv error's). */
  private finish(err: unknown): void {
    const e = err as { code?: unknown; details?: unknown };
    if (typeof e?.code === 'number' && typeof e.details === 'string') this.finishWith(e.code, e.details);
    else {
      const { code, message } = toGrpcStatus(err);
      this.finishWith(code as number, message);
    }
  }

  private finishWith(code: number, details: string): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    clearTimeout(this.deadline);
    this.handled(code);
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    const status = statusFields(code, details);
    if (this.headersSent) {
      stream.once('wantTrailers', () => stream.sendTrailers(status));
      stream.end();
    } else {
      // Trailers only, as grpc-js answers a status before any message.
      stream.respond({ ...STATUS_HEADERS, ...status }, END_STREAM);
    }
    stream.resume();
  }
}
