/**
 * The client HTTP server of a member (fastify): etcd v3's JSON gateway under /v3, the
 * curl-friendly API under /v1 (http_v1.ts), /health, /metrics, /version, and the internal
 * snapshot stream. Every member serves every request: writes (and the leader-only lease
 * calls) that reach a follower are forwarded to the leader; reads are answered locally after a
 * ReadIndex barrier, or at once when serializable.
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { decodeMessage, encodeMessage, InvalidRequestError, type Schema } from '../api/codec.js';
import * as S from '../api/schemas.js';
import type { WatchCreateRequest, WatchRequestMessage, WatchResponseMessage } from '../api/types.js';
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from '../mvcc/types.js';
import { WatchFilter, type WatchResponse } from '../watch/types.js';
import type { Watcher } from '../watch/hub.js';
import type { Member } from './member.js';
import { QKV_VERSION } from './member.js';
import { leaderChanged, requestTooLarge, toHttpError } from './errors.js';
import { SNAPSHOT_PATH, snapshotFrames } from './snapshot_client.js';
import { registerV1 } from './http_v1.js';

export const FORWARDED_HEADER = 'x-qkv-forwarded';

export interface HttpServerOptions {
  member: Member;
  logger: Logger;
  /** Largest decoded request (keys and values), as etcd's --max-request-bytes. */
  maxRequestBytes: number;
}

type Json = Parameters<typeof decodeMessage>[0];

/** Parses a request body as JSON (etcd's gateway ignores the content type). */
export function parseJsonBody(body: unknown): Json {
  const text = Buffer.isBuffer(body) ? body.toString() : typeof body === 'string' ? body : '';
  if (text.trim().length === 0) return {};
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new InvalidRequestError((err as Error).message);
  }
}

/** Several JSON objects in one body (a client-streaming RPC through the gateway). */
function parseJsonStream(body: unknown): Json[] {
  const text = Buffer.isBuffer(body) ? body.toString() : '';
  const out: Json[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) out.push(parseJsonBody(Buffer.from(text.slice(start, i + 1))));
  }
  if (depth !== 0) throw new InvalidRequestError('unexpected end of JSON input');
  if (out.length === 0 && text.trim().length > 0) throw new InvalidRequestError('invalid JSON stream');
  return out;
}

const KEY_PATH = /^(\/v1\/(?:kv|watch)\/)[^?]*/;

/** /v1/kv/<any bytes>?q -> /v1/kv/key?q, so that routing never decodes the key. */
export function rewriteKeyPath(url: string): string {
  return url.replace(KEY_PATH, '$1key');
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toHttpError(err);
  return reply.status(e.status).header('content-type', 'application/json').send(JSON.stringify(e.body));
}

/** Sum of key and value bytes of a write: the part etcd's request size limit is about. */
export function requestBytes(req: unknown): number {
  if (Buffer.isBuffer(req)) return req.length;
  if (Array.isArray(req)) return req.reduce((n: number, x) => n + requestBytes(x), 0);
  if (typeof req === 'object' && req !== null) {
    let n = 0;
    for (const v of Object.values(req)) n += requestBytes(v);
    return n;
  }
  return 0;
}

/** Forwards the request to the leader and relays its answer. */
export async function forwardToLeader(member: Member, request: FastifyRequest, reply: FastifyReply, leaderUrl: string): Promise<FastifyReply> {
  if (request.headers[FORWARDED_HEADER]) throw leaderChanged();
  const body = Buffer.isBuffer(request.body) ? request.body : undefined;
  const init: RequestInit = {
    method: request.method,
    headers: { 'content-type': String(request.headers['content-type'] ?? 'application/json'), [FORWARDED_HEADER]: String(member.id) },
    signal: AbortSignal.timeout(30_000),
  };
  if (body && request.method !== 'GET' && request.method !== 'HEAD') init.body = new Uint8Array(body) as Uint8Array<ArrayBuffer>;
  const res = await fetch(leaderUrl + request.originalUrl, init);
  reply.status(res.status);
  const ct = res.headers.get('content-type');
  if (ct) reply.header('content-type', ct);
  return reply.send(Buffer.from(await res.arrayBuffer()));
}

export function buildHttpServer(opts: HttpServerOptions): FastifyInstance {
  const { member } = opts;
  // JSON and base64 make the body larger than the decoded request; the decoded size is checked below.
  // Request logs only at warn and above: one line per request would swamp the member's log.
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit: Math.ceil(opts.maxRequestBytes * 1.5) + 64 * 1024,
    // Keys in /v1 paths are percent-encoded bytes, not necessarily UTF-8, which the router would
    // refuse to decode: route on a placeholder; the handler reads the key from originalUrl.
    rewriteUrl: (req) => rewriteKeyPath(req.url ?? '/'),
    // Shutdown must not wait for clients: watch streams and keep-alive connections never end on their own.
    forceCloseConnections: true,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, _request, reply) => {
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply.status(413), requestTooLarge());
    return sendError(reply, err);
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).type('text/plain').send(`404 page not found: ${request.method} ${request.url}\n`));

  /**
   * A unary gateway route. `leaderOnly` requests (those that need the leader's lease clock) are
   * forwarded when this member is not the leader.
   */
  function unary<Req>(
    path: string,
    reqSchema: Schema,
    respSchema: Schema,
    handler: (req: Req) => Promise<object>,
    route: { leaderOnly?: (req: Req) => boolean; checkSize?: boolean } = {},
  ): void {
    app.post(path, async (request, reply) => {
      const req = decodeMessage<Req>(parseJsonBody(request.body), reqSchema);
      if (route.checkSize && requestBytes(req) > opts.maxRequestBytes) throw requestTooLarge();
      if (route.leaderOnly?.(req)) {
        const leaderUrl = member.leaderClientUrl();
        if (leaderUrl) return forwardToLeader(member, request, reply, leaderUrl);
      }
      const resp = await handler(req);
      return reply.header('content-type', 'application/json').send(JSON.stringify(encodeMessage(resp, respSchema)));
    });
  }

  const always = (): boolean => true;
  const withHeader = <T extends { header: { revision: number } }>(r: T): T & { header: ReturnType<Member['header']> } => ({
    ...r,
    header: member.header(r.header.revision),
  });

  unary<RangeRequest>('/v3/kv/range', S.RangeRequest, S.RangeResponse, async (req) => withHeader(await member.range(req)));
  // Writes are proposed on any member: a follower's proposal reaches the leader through Raft.
  unary<PutRequest>('/v3/kv/put', S.PutRequest, S.PutResponse, async (req) => withHeader(await member.put(req)), { checkSize: true });
  unary<DeleteRangeRequest>('/v3/kv/deleterange', S.DeleteRangeRequest, S.DeleteRangeResponse, async (req) => withHeader(await member.deleteRange(req)));
  unary<TxnRequest>('/v3/kv/txn', S.TxnRequest, S.TxnResponse, async (req) => withHeader(await member.txn(req)), { checkSize: true });
  unary<CompactionRequest>('/v3/kv/compaction', S.CompactionRequest, S.HeaderOnlyResponse, async (req) => ({ header: member.header((await member.compact(req)).revision) }));

  unary<{ ttl: number; id: number }>('/v3/lease/grant', S.LeaseGrantRequest, S.LeaseGrantResponse, (req) => member.leaseGrant(req.ttl, req.id), { leaderOnly: always });
  for (const p of ['/v3/lease/revoke', '/v3/kv/lease/revoke']) {
    unary<{ id: number }>(p, S.LeaseIdRequest, S.HeaderOnlyResponse, async (req) => ({ header: member.header((await member.leaseRevoke(req.id)).revision) }), {
      leaderOnly: always,
    });
  }
  for (const p of ['/v3/lease/timetolive', '/v3/kv/lease/timetolive']) {
    unary<{ id: number; keys: boolean }>(p, S.LeaseTimeToLiveRequest, S.LeaseTimeToLiveResponse, (req) => member.leaseTimeToLive(req.id, req.keys), {
      leaderOnly: always,
    });
  }
  const emptySchema: Schema = { type: 'etcdserverpb.Empty', fields: [] };
  for (const p of ['/v3/lease/leases', '/v3/kv/lease/leases']) {
    unary(p, emptySchema, S.LeaseLeasesResponse, async () => ({ header: member.header(), leases: member.leaseLeases() }));
  }
  unary('/v3/cluster/member/list', emptySchema, S.MemberListResponse, async () => ({ header: member.header(), members: member.members() }));
  unary('/v3/maintenance/status', emptySchema, S.StatusResponse, () => member.status());
  unary<{ revision: number }>('/v3/maintenance/hash', S.HashKVRequest, S.HashKVResponse, async (req) => {
    const h = await member.hashKV(req.revision);
    return { header: member.header(h.header.revision), hash: h.hash, compactRevision: h.compactRevision };
  });
  unary<{ targetID: string }>(
    '/v3/maintenance/transfer-leadership',
    { type: 'etcdserverpb.MoveLeaderRequest', fields: [{ name: 'targetID', json: 'targetID', kind: 'uint64' }] },
    S.HeaderOnlyResponse,
    async (req) => {
      member.transferLeadership(Number(req.targetID));
      return { header: member.header() };
    },
    { leaderOnly: always },
  );

  // Lease keep-alive is a bidirectional stream in gRPC: one {"result": ...} line per request object.
  app.post('/v3/lease/keepalive', async (request, reply) => {
    const reqs = parseJsonStream(request.body).map((j) => decodeMessage<{ id: number }>(j, S.LeaseIdRequest));
    const leaderUrl = member.leaderClientUrl();
    if (leaderUrl) return forwardToLeader(member, request, reply, leaderUrl);
    const lines = reqs.map((r) => JSON.stringify({ result: encodeMessage(member.leaseKeepAlive(r.id), S.LeaseKeepAliveResponse) }));
    return reply.header('content-type', 'application/json').send(lines.join('\n') + '\n');
  });

  app.post('/v3/watch', async (request, reply) => {
    const reqs = parseJsonStream(request.body).map((j) => decodeMessage<WatchRequestMessage>(j, S.WatchRequest));
    await serveWatchStream(member, reqs, reply);
    return reply;
  });

  app.get('/health', async (_request, reply) => {
    const h = member.health();
    (h.health ? member.metrics.healthSuccess : member.metrics.healthFailures).inc();
    return reply.status(h.health ? 200 : 503).send(h.health ? { health: 'true' } : { health: 'false', reason: h.reason });
  });
  app.get('/version', async () => ({ etcdserver: QKV_VERSION, etcdcluster: '3.4.0' }));
  app.get('/metrics', async (_request, reply) => {
    return reply.header('content-type', member.metrics.contentType).send(await member.metrics.text());
  });

  app.get(SNAPSHOT_PATH, async (_request, reply) => {
    reply.header('content-type', 'application/octet-stream');
    return reply.send(Readable.from(snapshotFrames(member.store)));
  });

  registerV1(app, member, opts.maxRequestBytes);
  return app;
}

/** The hub's response in the gateway's shape, with the full header. */
export function gatewayWatchResponse(member: Member, resp: WatchResponse, watchId: number): WatchResponseMessage {
  return {
    header: member.header(resp.revision),
    watchId,
    events: resp.events,
    ...(resp.created ? { created: true } : {}),
    ...(resp.canceled ? { canceled: true } : {}),
    ...(resp.compactRevision ? { compactRevision: resp.compactRevision } : {}),
    ...(resp.cancelReason ? { cancelReason: resp.cancelReason } : {}),
  };
}

export function toHubRequest(c: WatchCreateRequest): Parameters<Member['hub']['watch']>[0] {
  return {
    key: c.key.length === 0 ? Buffer.from([0]) : c.key,
    ...(c.rangeEnd && c.rangeEnd.length > 0 ? { rangeEnd: c.rangeEnd } : {}),
    ...(c.startRevision ? { startRevision: c.startRevision } : {}),
    ...(c.prevKv ? { prevKv: true } : {}),
    ...(c.progressNotify ? { progressNotify: true } : {}),
    filters: (c.filters ?? []).map((f) => (f === 'NOPUT' ? WatchFilter.NoPut : WatchFilter.NoDelete)),
  };
}

/** Streams watch responses as newline-delimited {"result": ...} objects until the client leaves. */
async function serveWatchStream(member: Member, reqs: WatchRequestMessage[], reply: FastifyReply): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  const watchers: { watcher: Watcher; streamId: number }[] = [];
  let nextStreamId = 0;
  for (const r of reqs) {
    if (r.createRequest) {
      const streamId = r.createRequest.watchId || nextStreamId++;
      try {
        watchers.push({ watcher: member.hub.watch(toHubRequest(r.createRequest)), streamId });
      } catch (err) {
        res.write(JSON.stringify({ error: toHttpError(err).body }) + '\n');
      }
    } else if (r.cancelRequest) {
      watchers.find((w) => w.streamId === r.cancelRequest!.watchId)?.watcher.cancel();
    } else if (r.progressRequest) {
      for (const w of watchers) member.hub.progressOf(w.watcher.id);
    }
  }
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const w of watchers) w.watcher.cancel();
  };
  res.on('close', close);
  await Promise.all(
    watchers.map(async ({ watcher, streamId }) => {
      for await (const resp of watcher) {
        if (closed) break;
        const line = JSON.stringify({ result: encodeMessage(gatewayWatchResponse(member, resp, streamId), S.WatchResponse) }) + '\n';
        if (!res.write(line)) await new Promise<void>((resolve) => res.once('drain', () => resolve()).once('close', () => resolve()));
        if (resp.canceled) break;
      }
    }),
  );
  close();
  if (!res.writableEnded) res.end();
}
