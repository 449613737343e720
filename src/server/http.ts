/**
 * The client HTTP server of a member (fastify): etcd v3's JSON gateway under /v3, the
 * curl-friendly API under /v1 (http_v1.ts), the web console under /ui (http_ui.ts), /health,
 * /metrics, /version, and the internal snapshot stream. Every member serves every request: writes (and the leader-only lease
 * calls) that reach a follower are forwarded to the leader; reads are answered locally after a
 * ReadIndex barrier, or at once when serializable.
 */
import type { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { decodeMessage, encodeMessage } from '../api/codec.js';
import * as S from '../api/schemas.js';
import type { WatchRequestMessage } from '../api/types.js';
import type { Watcher } from '../watch/hub.js';
import type { Member } from './member.js';
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION, QKV_VERSION } from '../version.js';
import { httpStatusOf, MessageTooLargeError, toGrpcStatus, toHttpError } from './errors.js';
import { snapshotBlobs } from './snapshot_client.js';
import { registerV1 } from './http_v1.js';
import { registerUi } from './http_ui.js';
import * as C from './concurrency.js';
import { connectionOf, relayToLeader, sendError } from './http_shared.js';
import { FORWARDED_HEADER } from './leader.js';
import { peerCommonName } from '../tls.js';
import { checkMessageSize, GRPC_OVERHEAD_BYTES, parseJsonBody, parseJsonStream } from './requests.js';
import { asCaller, callContext, checkLearner, checkRequest, EMPTY, UNARY_METHODS, withHeader, type ServiceName } from './services.js';
import { toHubRequest, watchRefusal, watchResponseMessage } from './watch_responses.js';

export interface HttpServerOptions {
  member: Member;
  logger: Logger;
  /** Largest decoded request (keys and values), as etcd's --max-request-bytes. */
  maxRequestBytes: number;
  /** The console at /ui offers put and delete (--ui-writable). */
  uiWritable: boolean;
}

const KEY_PATH = /^(\/v1\/(?:kv|watch)\/)[^?]*/;

/** /v1/kv/<any bytes>?q -> /v1/kv/key?q, so that routing never decodes the key. */
function rewriteKeyPath(url: string): string {
  return url.replace(KEY_PATH, '$1key');
}

/**
 * The largest gateway body read: twice gRPC's message limit, so that a request somewhat over
 * that limit is still decoded and answered with its size, as etcd's gateway does. A larger body
 * is refused unread, with its length.
 */
function gatewayBodyLimit(maxRequestBytes: number): number {
  return 2 * (maxRequestBytes + GRPC_OVERHEAD_BYTES);
}

/** etcd's words for a gateway request with a client certificate's CN under auth (HTTP 400, plain text). */
const GATEWAY_COMMON_NAME_REFUSED = 'CommonName of client sending a request against gateway will be ignored and not used as expected';

export function buildHttpServer(opts: HttpServerOptions): FastifyInstance {
  const { member } = opts;
  // JSON and base64 make the body larger than the decoded request; the decoded size is checked below.
  // Request logs only at warn and above: one line per request would swamp the member's log.
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit: gatewayBodyLimit(opts.maxRequestBytes),
    // Keys in /v1 paths are percent-encoded bytes, not necessarily UTF-8, which the router would
    // refuse to decode: route on a placeholder; the handler reads the key from originalUrl.
    rewriteUrl: (req) => rewriteKeyPath(rewriteV3beta(req.url ?? '/')),
    // Shutdown must not wait for clients: watch streams and keep-alive connections never end on their own.
    forceCloseConnections: true,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, _request, reply) => {
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // Not read: its size is all that is known of it.
      return sendError(reply, new MessageTooLargeError(Number(_request.headers['content-length'] ?? 0), opts.maxRequestBytes + GRPC_OVERHEAD_BYTES));
    }
    return sendError(reply, err);
  });
  app.addHook('onRequest', async (request, reply) => {
    // etcd 3.4 (embed/serve.go) refuses a gateway request whose client certificate has a CN once
    // auth is on with --client-cert-auth: the gateway would not take the CN as the user. A call
    // a member forwards to the leader shows that member's certificate and carries its caller as
    // a token: never refused, the CN being ignored here either way.
    if (!request.url.startsWith('/v3/') || request.headers[FORWARDED_HEADER] !== undefined) return;
    if (member.clientCertAuth && member.authn.enabled && peerCommonName(request.raw.socket) !== undefined) {
      return reply.status(400).type('text/plain; charset=utf-8').send(`${GATEWAY_COMMON_NAME_REFUSED}\n`);
    }
  });
  app.setNotFoundHandler((request, reply) => {
    // etcd's gateway: another method on one of its POST paths is 405 (OPTIONS aside).
    if (isOtherMethodOnPost(app, request)) return reply.status(405).type('text/plain; charset=utf-8').send('Method Not Allowed\n');
    return reply.status(404).type('text/plain').send(`404 page not found: ${request.method} ${request.url}\n`);
  });

  /**
   * A POST route per path of each unary method in the table (services.ts). A leader-only call is
   * relayed to the leader when this member is not the leader; a waiting one is aborted when the
   * client's connection closes.
   */
  for (const method of UNARY_METHODS) {
    for (const path of [method.path, ...(method.aliases ?? [])]) {
      app.post(path, async (request, reply) => {
        const req = decodeMessage<object>(parseJsonBody(request.body), method.request);
        checkMessageSize(req, method.request, request.body, opts.maxRequestBytes);
        checkRequest(method, req, opts.maxRequestBytes);
        checkLearner(member, method, req);
        if (method.leaderOnly) await method.beforeLeader?.(member, req);
        if (method.leaderOnly && (await relayToLeader(member, request, reply, method.leaderOnly))) return reply;
        // etcd's gateway never takes the client certificate's CN as the user (AuthInfoFromTLS's grpcgateway-accept check).
        const call = await callContext(
          member,
          { token: request.headers.authorization },
          connectionOf(request),
          method.waits ? closedSignal(reply) : NEVER_ABORTED,
        );
        const resp = await method.handler(member, req, call);
        return reply.header('content-type', 'application/json').send(JSON.stringify(encodeMessage(resp, method.response)));
      });
    }
  }

  // A server-streaming RPC through the gateway: one {"result": SnapshotResponse} line per blob.
  app.post('/v3/maintenance/snapshot', async (request, reply) => {
    decodeMessage(parseJsonBody(request.body), EMPTY);
    if (refusedOnLearner(member, reply, 'Maintenance', 'Snapshot')) return reply;
    member.checkMaintenanceAdmin(member.authn.callerOf(request.headers.authorization));
    await serveSnapshotStream(member, reply);
    return reply;
  });
  // Lease keep-alive is a bidirectional stream in gRPC: one {"result": ...} line per request object.
  app.post('/v3/lease/keepalive', async (request, reply) => {
    const reqs = parseJsonStream(request.body).map((j) => decodeMessage<{ id: number }>(j, S.LeaseIdRequest));
    if (refusedOnLearner(member, reply, 'Lease', 'LeaseKeepAlive')) return reply;
    if (await relayToLeader(member, request, reply, { idempotent: true })) return reply;
    const lines = reqs.map((r) => JSON.stringify({ result: encodeMessage(member.leaseKeepAlive(r.id), S.LeaseKeepAliveResponse) }));
    return reply.header('content-type', 'application/json').send(lines.join('\n') + '\n');
  });

  app.post('/v3/watch', async (request, reply) => {
    const reqs = parseJsonStream(request.body).map((j) => decodeMessage<WatchRequestMessage>(j, S.WatchRequest));
    if (refusedOnLearner(member, reply, 'Watch', 'Watch')) return reply;
    await serveWatchStream(member, reqs, reply, request.headers.authorization);
    return reply;
  });

  registerConcurrencyRoutes();

  app.get('/health', async (_request, reply) => {
    const h = member.health();
    (h.health ? member.metrics.healthSuccess : member.metrics.healthFailures).inc();
    return reply.status(h.health ? 200 : 503).send(h.health ? { health: 'true' } : { health: 'false', reason: h.reason });
  });
  app.get('/version', async () => ({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: ETCD_CLUSTER_VERSION, qkv: QKV_VERSION }));
  app.get('/metrics', async (_request, reply) => {
    // Readable cross-origin: the web console served by one member reads every member's metrics.
    return reply
      .header('access-control-allow-origin', '*')
      .header('content-type', member.metrics.contentType)
      .send(await member.metrics.text());
  });

  // ---- Election.Observe: /v3/election/observe (the other lock and election calls are in the table)
  function registerConcurrencyRoutes(): void {
    // Observe is a server stream, answered as grpc-gateway streams: one {"result": ...} line per
    // leader response; the status line and headers go with the first (none while there is no
    // leader); a failure is a last {"error": {...}} chunk (or the status, before anything else).
    app.post('/v3/election/observe', async (request, reply) => {
      const req = decodeMessage<C.LeaderRequest>(parseJsonBody(request.body), S.LeaderRequest);
      if (refusedOnLearner(member, reply, 'Election', 'Observe')) return reply;
      const signal = closedSignal(reply);
      const res = reply.raw;
      let started = false;
      const start = (status: number): void => {
        started = true;
        reply.hijack();
        res.writeHead(status, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      };
      try {
        for await (const resp of C.observe(asCaller(member, member.authn.callerOf(request.headers.authorization)), req, signal)) {
          if (!started) start(200);
          const line = JSON.stringify({ result: encodeMessage(withHeader(member, resp), S.LeaderResponse) }) + '\n';
          if (!res.write(line)) await new Promise<void>((resolve) => res.once('drain', () => resolve()).once('close', () => resolve()));
        }
      } catch (err) {
        if (!signal.aborted) {
          const { status, body } = streamError(err);
          if (!started) start(status);
          res.write(body);
        }
      }
      if (!started) {
        // Ended before any leader (or the client left): an empty 200 (nothing, to a client gone).
        if (signal.aborted) reply.hijack();
        else start(200);
      }
      if (!res.writableEnded) res.end();
      return reply;
    });
  }

  registerV1(app, member, opts.maxRequestBytes);
  registerUi(app, member, { writable: opts.uiWritable });
  return app;
}

/** etcd serves every /v3 gateway path under /v3beta/ too (its accessController rewrites the path). */
function rewriteV3beta(url: string): string {
  return url.startsWith('/v3beta/') ? '/v3/' + url.slice('/v3beta/'.length) : url;
}

/** A request with another method than POST (OPTIONS aside) on a path served by POST. */
function isOtherMethodOnPost(app: FastifyInstance, request: FastifyRequest): boolean {
  if (request.method === 'POST' || request.method === 'OPTIONS') return false;
  const url = request.url.split('?')[0]!;
  return url.startsWith('/v3/') && app.hasRoute({ method: 'POST', url });
}

const NEVER_ABORTED = new AbortController().signal;

/** A stream's error as grpc-gateway writes it: {"error": {"grpc_code", "http_code", "message", "http_status"}}. */
function streamError(err: unknown): { status: number; body: string } {
  const { code, message } = toGrpcStatus(err);
  const status = httpStatusOf(code);
  return { status, body: JSON.stringify({ error: { grpc_code: code, http_code: status, message, http_status: STATUS_CODES[status] ?? '' } }) };
}

/** A stream a learner refuses (services.ts' checkLearner): its status and stream error sent, true. Checked after the body decodes, as etcd's gateway does. */
function refusedOnLearner(member: Member, reply: FastifyReply, service: ServiceName, method: string): boolean {
  try {
    checkLearner(member, { service, method });
    return false;
  } catch (err) {
    const { status, body } = streamError(err);
    reply.status(status).header('content-type', 'application/json').send(body);
    return true;
  }
}

/** Aborted when the client's connection closes before the response is sent. */
function closedSignal(reply: FastifyReply): AbortSignal {
  const ctl = new AbortController();
  const res = reply.raw;
  res.once('close', () => {
    if (!res.writableEnded) ctl.abort();
  });
  return ctl.signal;
}

/**
 * Streams Maintenance.Snapshot's blobs (the same as over gRPC) as newline-delimited {"result":
 * ...} objects. A failure before the first blob is an ordinary error response; after it, an
 * {"error": ...} line ends the stream, as grpc-gateway reports a stream's error.
 */
async function serveSnapshotStream(member: Member, reply: FastifyReply): Promise<void> {
  const blobs = snapshotBlobs(member.store);
  const line = (b: { remainingBytes: number; blob: Buffer }): string =>
    JSON.stringify({ result: encodeMessage({ header: member.header(), ...b }, S.SnapshotResponse) }) + '\n';
  const first = await blobs.next(); // spools the snapshot: errors so far are the response's
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  let closed = false;
  res.on('close', () => (closed = true));
  try {
    for (let r = first; !r.done; r = await blobs.next()) {
      if (closed) break;
      if (!res.write(line(r.value))) await new Promise<void>((resolve) => res.once('drain', () => resolve()).once('close', () => resolve()));
    }
  } catch (err) {
    if (!closed) res.write(JSON.stringify({ error: toHttpError(err).body }) + '\n');
  } finally {
    await blobs.return(undefined);
    if (!res.writableEnded) res.end();
  }
}

/** Streams watch responses as newline-delimited {"result": ...} objects until the client leaves. */
async function serveWatchStream(member: Member, reqs: WatchRequestMessage[], reply: FastifyReply, token: string | undefined): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  const watchers: { watcher: Watcher; streamId: number }[] = [];
  let nextStreamId = 0;
  await member.tokenApplied(token);
  for (const r of reqs) {
    if (r.createRequest) {
      const refused = watchRefusal(member, () => member.authn.callerOf(token), r.createRequest);
      if (refused) {
        res.write(JSON.stringify({ result: encodeMessage(refused, S.WatchResponse) }) + '\n');
        continue;
      }
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
        const line = JSON.stringify({ result: encodeMessage(watchResponseMessage(member, resp, streamId), S.WatchResponse) }) + '\n';
        if (!res.write(line)) await new Promise<void>((resolve) => res.once('drain', () => resolve()).once('close', () => resolve()));
        if (resp.canceled) break;
      }
    }),
  );
  close();
  if (!res.writableEnded) res.end();
}
