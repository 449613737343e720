/**
 * Leader forwarding for the gRPC API: the calls only the leader can answer (lease grant, revoke,
 * keep-alive and time-to-live, which need its lease clock; leader moves) that reach a follower
 * are sent to the leader's etcd JSON gateway (the routes the HTTP API forwards too), and its
 * answer decoded back into the internal shape. Writes need no forwarding: a follower proposes
 * them through Raft. Bounded by a timeout; a request already forwarded once is never forwarded
 * again (the leader answers "leader changed").
 */
import { decodeMessage, encodeMessage, type Schema } from '../api/codec.js';
import { FORWARDED_HEADER } from '../server/http.js';
import { forwardedError, GrpcCode, leaderChanged, requestTimedOut } from '../server/errors.js';

/** How long a forwarded call may take: etcd's default request timeout plus an election. */
export const FORWARD_TIMEOUT_MS = 15_000;

type Json = Parameters<typeof decodeMessage>[0];

export interface ForwardTarget {
  /** The leader's client URL. */
  leaderUrl: string;
  /** This member's id, sent in the forwarded-request header. */
  selfId: number;
}

async function post(target: ForwardTarget, path: string, body: string, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetch(target.leaderUrl + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [FORWARDED_HEADER]: String(target.selfId) },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    // The leader is gone or unreachable: the client should retry (on any member).
    if ((err as Error).name === 'TimeoutError') throw requestTimedOut();
    throw leaderChanged();
  }
  const text = await res.text();
  if (!res.ok) {
    let parsed: { code?: number; message?: string } = {};
    try {
      parsed = JSON.parse(text) as { code?: number; message?: string };
    } catch {
      // Not the gateway's error shape (a proxy, a crash): report the HTTP status.
    }
    const code = typeof parsed.code === 'number' && parsed.code in GrpcCode ? (parsed.code as GrpcCode) : GrpcCode.Unavailable;
    throw forwardedError(code, parsed.message ?? `leader answered HTTP ${res.status}`);
  }
  return text;
}

/** A unary call through the leader's gateway: internal request in, internal response out. */
export async function forwardUnary<Req extends object, Resp>(
  target: ForwardTarget,
  path: string,
  req: Req,
  reqSchema: Schema,
  respSchema: Schema,
  timeoutMs = FORWARD_TIMEOUT_MS,
): Promise<Resp> {
  const text = await post(target, path, JSON.stringify(encodeMessage(req, reqSchema)), timeoutMs);
  return decodeMessage<Resp>(JSON.parse(text) as Json, respSchema);
}

/** One keep-alive through the leader's gateway (a one-message client stream there). */
export async function forwardKeepAlive<Resp>(target: ForwardTarget, id: number, respSchema: Schema, timeoutMs = FORWARD_TIMEOUT_MS): Promise<Resp> {
  const text = await post(target, '/v3/lease/keepalive', JSON.stringify({ ID: String(id) }), timeoutMs);
  const first = text.split('\n').find((l) => l.trim().length > 0) ?? '{}';
  const line = JSON.parse(first) as { result?: Json; error?: { code?: number; message?: string } };
  if (line.error) throw forwardedError((line.error.code as GrpcCode) ?? GrpcCode.Unknown, line.error.message ?? 'keep-alive failed');
  return decodeMessage<Resp>(line.result ?? {}, respSchema);
}
