/**
 * etcdserverpb.Watch over gRPC: one bidirectional stream carries any number of watchers, each a
 * watcher of the member's WatchHub. As in etcd 3.4's watch server:
 *   - create: watch_id 0 picks the lowest free id on the stream (from 0); a duplicate id is
 *     refused with a created+canceled response for watch id -1; the `created` response is the
 *     watcher's first, written before anything else of that watcher;
 *   - cancel: a `canceled` response, then nothing more for that id (unknown ids: no answer);
 *   - progress: one response with watch_id -1 whose header revision every watcher of the stream
 *     has been brought up to (sent once all of them are synced, after their queued events);
 *   - a start revision below the compaction point: `created`, then `canceled` with
 *     compact_revision;
 *   - fragment: a response larger than the request limit plus etcd's gRPC overhead allowance
 *     is split into several, all but the last marked `fragment`.
 * A client's half-close leaves the stream open (etcd keeps delivering); a shutdown ends it with
 * "etcdserver: server stopped" so clients reconnect elsewhere.
 */
import { Buffer } from 'node:buffer';
import type tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import type { WatchRequestMessage, WatchResponseMessage } from '../api/types.js';
import type { Event } from '../api/kv.js';
import type { WatchResponse } from '../watch/types.js';
import type { Watcher } from '../watch/hub.js';
import { GRPC_OVERHEAD_BYTES } from '../server/requests.js';
import { toHubRequest, watchRefusal, watchResponseMessage } from '../server/watch_responses.js';
import { ServerStoppedError } from '../server/errors.js';
import { callerOfCall, tokenOf, type GrpcContext } from './context.js';
import { fromProto, toProto } from './convert.js';
import { etcdServices, type ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';

/**
 * What the watch stream uses of its call: grpc-js's ServerDuplexStream, or direct_stream.ts's
 * DirectStreamCall (the one the client port serves). Responses are messages, or already encoded
 * (proto.ts and direct_stream.ts send a Buffer as it is).
 */
export interface WatchCall {
  readonly metadata: grpc.Metadata;
  readonly cancelled: boolean;
  on(event: 'data', listener: (msg: ProtoMessage) => void): unknown;
  on(event: 'end' | 'cancelled' | 'error' | 'close' | 'drain', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  emit(event: 'error', status: Error): boolean;
  setMaxListeners(n: number): unknown;
  write(resp: ProtoMessage | Buffer): boolean;
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: tls.PeerCertificate } | null;
}

/** mvcc.ErrWatcherDuplicateID's message. */
const DUPLICATE_ID = 'mvcc: duplicate watch ID provided on the WatchStream';
/** How often a progress request waiting for unsynced watchers looks again. */
const PROGRESS_RETRY_MS = 50;

interface StreamWatch {
  /** The id the client knows the watch by. */
  id: number;
  watcher: Watcher;
  fragment: boolean;
  /** Its watch_id field, encoded (each of its event responses has it). */
  encodedId: Buffer;
}

/**
 * A WatchResponse's fields encoded (proto-loader's encoder). Fields of one message encoded apart
 * and concatenated in field order are that message's encoding, byte for byte: so a response is
 * its header (shared by a stream's responses of one revision), its watch_id and its events, each
 * event encoded once for all the watchers it goes to (the hub hands them all the same object).
 */
export const encodeWatchFields = (m: ProtoMessage): Buffer => etcdServices().Watch['Watch']!.responseSerialize(m);
const encodedEvents = new WeakMap<Event, Buffer>();

function encodedEvent(e: Event): Buffer {
  let bytes = encodedEvents.get(e);
  if (bytes === undefined) {
    bytes = encodeWatchFields({ events: [toProto(e, S.Event)] });
    encodedEvents.set(e, bytes);
  }
  return bytes;
}

/** A response of only events, from its encoded header and watch_id: what encoding the whole message gives. */
export const encodeEventResponse = (header: Buffer, watchId: Buffer, events: readonly Event[]): Buffer =>
  Buffer.concat([header, watchId, ...events.map(encodedEvent)]);

/** Only a header, a watch_id and events: encoded from its parts (the other fields are zero). */
const isPlainEvents = (m: WatchResponseMessage): boolean =>
  !m.created && !m.canceled && !m.compactRevision && !m.cancelReason && !m.fragment && m.events.length > 0;

export function watchService(ctx: GrpcContext): { Watch: (call: WatchCall) => void } {
  return { Watch: (call: WatchCall) => new WatchStream(ctx, call).start() };
}

/** Approximate encoded size of an event (for fragmenting): its bytes plus field overhead. */
function eventSize(e: Event): number {
  const kv = (k: { key: Buffer; value: Buffer } | undefined): number => (k ? k.key.length + k.value.length + 48 : 0);
  return kv(e.kv) + kv(e.prevKv) + 8;
}

/** etcd's watchBatchMaxRevs: at most this many revisions in one response. */
const MAX_REVISIONS_PER_RESPONSE = 1000;

const hasOnlyEvents = (r: WatchResponse): boolean => r.events.length > 0 && !r.created && !r.canceled && !r.compactRevision;

/**
 * Merges consecutive event responses (whole revisions each) into one, as etcd sends a catching-up
 * watcher's history: up to 1000 revisions, and (unlike etcd) no more than about `maxBytes` of
 * events unless a single revision is larger. The header revision is the last merged one's.
 */
function coalesce(resps: WatchResponse[], maxBytes: number): WatchResponse[] {
  const out: WatchResponse[] = [];
  let revisions = 0;
  let bytes = 0;
  for (const r of resps) {
    const size = r.events.reduce((n, e) => n + eventSize(e), 0);
    const last = out[out.length - 1];
    if (last && hasOnlyEvents(last) && hasOnlyEvents(r) && revisions < MAX_REVISIONS_PER_RESPONSE && bytes + size <= maxBytes) {
      out[out.length - 1] = { ...last, revision: r.revision, events: last.events.concat(r.events) };
      revisions++;
      bytes += size;
    } else {
      out.push(r);
      revisions = 1;
      bytes = size;
    }
  }
  return out;
}

class WatchStream {
  private readonly watches = new Map<number, StreamWatch>();
  private nextAutoId = 0;
  private closed = false;
  /** Watchers whose progress marker is queued, and the revision they will all have reached. */
  private progress: { waiting: Set<StreamWatch>; revision: number } | undefined;
  private progressWanted = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private untrack: () => void = () => {};

  constructor(
    private readonly ctx: GrpcContext,
    private readonly call: WatchCall,
  ) {}

  start(): void {
    this.untrack = this.ctx.track({ abort: (err) => this.abort(err) });
    // Every watcher of the stream may wait for 'drain' at once.
    this.call.setMaxListeners(0);
    // A token issued through another member: its requests wait (buffered by the stream) until
    // this member has applied its Authenticate entry (Member.tokenApplied, bounded).
    const applied = this.ctx.member.tokenApplied(tokenOf(this.call.metadata));
    if (applied === undefined) this.listen();
    else
      void applied.then(
        () => this.listen(),
        () => this.listen(),
      );
  }

  private listen(): void {
    if (this.call.cancelled) {
      this.close();
      return;
    }
    this.call.on('data', (msg: ProtoMessage) => {
      try {
        this.onRequest(fromProto<WatchRequestMessage>(msg, S.WatchRequest));
      } catch (err) {
        this.abort(err);
      }
    });
    // Half-close: etcd keeps the stream (and its watchers) until the client cancels it.
    this.call.on('end', () => {});
    this.call.on('cancelled', () => this.close());
    this.call.on('error', () => this.close());
    this.call.on('close', () => this.close());
  }

  private onRequest(r: WatchRequestMessage): void {
    if (this.closed) return;
    if (r.createRequest) this.create(r.createRequest);
    else if (r.cancelRequest) this.watches.get(r.cancelRequest.watchId)?.watcher.cancel();
    else if (r.progressRequest) {
      this.progressWanted++;
      this.requestProgress();
    }
  }

  private create(c: NonNullable<WatchRequestMessage['createRequest']>): void {
    const { member } = this.ctx;
    let id = c.watchId ?? 0;
    if (id !== 0 && this.watches.has(id)) {
      this.writeRaw({ header: member.header(), watchId: -1, created: true, canceled: true, cancelReason: DUPLICATE_ID, events: [] });
      return;
    }
    if (id === 0) {
      while (this.watches.has(this.nextAutoId)) this.nextAutoId++;
      id = this.nextAutoId++;
    }
    const refused = watchRefusal(member, () => callerOfCall(member, this.call), c);
    if (refused) {
      this.writeRaw(refused);
      return;
    }
    let watcher: Watcher;
    try {
      watcher = member.hub.watch(toHubRequest(c));
    } catch (err) {
      this.writeRaw({ header: member.header(), watchId: -1, created: true, canceled: true, cancelReason: toServiceError(err).details, events: [] });
      return;
    }
    const w: StreamWatch = { id, watcher, fragment: !!c.fragment, encodedId: encodeWatchFields({ watch_id: id }) };
    this.watches.set(id, w);
    // The created response (and a compaction cancel) now, before any later request is handled.
    for (const resp of watcher.drain()) if (!this.deliver(w, resp)) return;
    void this.pump(w);
  }

  private async pump(w: StreamWatch): Promise<void> {
    while (!this.closed && this.watches.get(w.id) === w) {
      const r = await w.watcher.next();
      if (r.done) {
        // Closed without a cancel of ours: the hub stopped (member shutdown).
        if (this.watches.get(w.id) === w) this.abort(new ServerStoppedError());
        return;
      }
      for (const resp of coalesce([r.value, ...w.watcher.drain()], this.ctx.maxRequestBytes)) {
        if (!this.deliver(w, resp)) return;
      }
      if (this.needsDrain) await this.drained();
    }
  }

  private needsDrain = false;

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.call.off('drain', done);
        this.call.off('close', done);
        resolve();
      };
      this.call.on('drain', done);
      this.call.on('close', done);
    }).then(() => {
      this.needsDrain = false;
    });
  }

  /** Writes one hub response for `w`; false once `w` is finished. */
  private deliver(w: StreamWatch, resp: WatchResponse): boolean {
    const isProgress = resp.events.length === 0 && !resp.created && !resp.canceled && !resp.compactRevision;
    if (isProgress && this.progress?.waiting.has(w)) {
      this.progressReached(w);
      return true;
    }
    const msg = watchResponseMessage(this.ctx.member, resp, w.id);
    if (w.fragment) for (const part of this.fragments(msg)) this.writeRaw(part, w);
    else this.writeRaw(msg, w);
    if (resp.canceled) {
      this.watches.delete(w.id);
      if (this.progress?.waiting.has(w)) this.progressReached(w);
      return false;
    }
    return true;
  }

  /** etcd's sendFragments: as many events per part as fit its limit (at least one). */
  private fragments(msg: WatchResponseMessage): WatchResponseMessage[] {
    // etcd's watch server limit is --max-request-bytes plus grpcOverheadBytes.
    const max = this.ctx.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    const total = msg.events.reduce((n, e) => n + eventSize(e), 0);
    if (total < max || msg.events.length <= 1) return [msg];
    const parts: WatchResponseMessage[] = [];
    let cur: Event[] = [];
    let size = 0;
    for (const e of msg.events) {
      const s = eventSize(e);
      if (cur.length > 0 && size + s > max) {
        parts.push({ ...msg, events: cur, fragment: true });
        cur = [];
        size = 0;
      }
      cur.push(e);
      size += s;
    }
    parts.push({ ...msg, events: cur });
    return parts;
  }

  /** The last header this stream encoded: a revision's responses to all its watchers share it. */
  private encodedHeader: { revision: number; raftTerm: number; bytes: Buffer } | undefined;

  private headerBytes(h: WatchResponseMessage['header']): Buffer {
    const last = this.encodedHeader;
    if (last?.revision === h.revision && last.raftTerm === h.raftTerm) return last.bytes;
    const bytes = encodeWatchFields({ header: toProto(h, S.ResponseHeader) });
    this.encodedHeader = { revision: h.revision, raftTerm: h.raftTerm, bytes };
    return bytes;
  }

  private writeRaw(msg: WatchResponseMessage, w?: StreamWatch): void {
    if (this.closed || this.call.cancelled) return;
    const out =
      w?.id === msg.watchId && isPlainEvents(msg) ? encodeEventResponse(this.headerBytes(msg.header), w.encodedId, msg.events) : toProto(msg, S.WatchResponse);
    if (!this.call.write(out)) this.needsDrain = true;
  }

  // ---- progress requests -------------------------------------------------------------------

  /**
   * Answers one outstanding progress request once every watcher of the stream is synced: a
   * marker goes through each watcher's own queue, so the -1 response follows all their events.
   */
  private requestProgress(): void {
    if (this.closed || this.progress || this.progressWanted === 0) return;
    const hub = this.ctx.member.hub;
    const all = [...this.watches.values()];
    if (!all.every((w) => w.watcher.synced)) {
      this.progressTimer ??= setTimeout(() => {
        this.progressTimer = undefined;
        this.requestProgress();
      }, PROGRESS_RETRY_MS);
      return;
    }
    this.progressWanted--;
    const revision = this.ctx.member.store.revision;
    this.progress = { waiting: new Set(), revision };
    for (const w of all) if (hub.progressOf(w.watcher.id)) this.progress.waiting.add(w);
    if (this.progress.waiting.size === 0) this.progressDone();
  }

  private progressReached(w: StreamWatch): void {
    this.progress?.waiting.delete(w);
    if (this.progress && this.progress.waiting.size === 0) this.progressDone();
  }

  private progressDone(): void {
    const p = this.progress!;
    this.progress = undefined;
    this.writeRaw({ header: this.ctx.member.header(p.revision), watchId: -1, events: [] });
    this.requestProgress();
  }

  // ---- end -------------------------------------------------------------------------------

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.untrack();
    if (this.progressTimer) clearTimeout(this.progressTimer);
    for (const w of this.watches.values()) w.watcher.cancel();
    this.watches.clear();
  }

  private abort(err: unknown): void {
    if (this.closed) return;
    this.close();
    if (!this.call.cancelled) this.call.emit('error', toServiceError(err));
  }
}
