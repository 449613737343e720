/**
 * Leader forwarding for the gRPC API: the calls only the leader can answer (lease grant, revoke,
 * keep-alive and time-to-live, which need its lease clock; leader moves) that reach a follower
 * are sent to the leader's etcd JSON gateway (the entry's path in src/server/services.ts; the
 * routes the HTTP API forwards too), and its
 * answer decoded back into the internal shape. Writes need no forwarding: a follower proposes
 * them through Raft. Waiting for a leader, retries and the deadline are the HTTP API's
 * (src/server/leader.ts); a request already forwarded once is never forwarded again.
 */
import { Buffer } from 'node:buffer';
import { decodeMessage, encodeMessage, type Schema } from '../api/codec.js';
import { forwardToLeader } from '../server/leader.js';
import type { Member } from '../server/member.js';
import { GrpcCode } from '../errors.js';
import { ForwardedError } from '../server/errors.js';

type Json = Parameters<typeof decodeMessage>[0];

/** This member became the leader while waiting for one: the call is answered locally. */
export const LEADS_HERE: unique symbol = Symbol('this member leads');

export interface ForwardTarget {
  member: Member;
  /** The call's deadline (performance.now() clock): etcd's request timeout from its start. */
  deadline: number;
  /** The caller's auth token, relayed: tokens are known to every member (server/auth.ts). */
  token?: string | undefined;
}

async function post(target: ForwardTarget, path: string, body: string, idempotent: boolean): Promise<string | typeof LEADS_HERE> {
  const answer = await forwardToLeader(
    target.member,
    {
      path,
      method: 'POST',
      contentType: 'application/json',
      body: Buffer.from(body),
      idempotent,
      ...(target.token !== undefined ? { authorization: target.token } : {}),
    },
    target.deadline,
  );
  if (!answer) return LEADS_HERE;
  const text = answer.body.toString();
  if (answer.status !== 200) {
    let parsed: { code?: number; message?: string } = {};
    try {
      parsed = JSON.parse(text) as { code?: number; message?: string };
    } catch {
      // Not the gateway's error shape (a proxy, a crash): report the HTTP status.
    }
    const code = typeof parsed.code === 'number' && parsed.code in GrpcCode ? (parsed.code as GrpcCode) : GrpcCode.Unavailable;
    throw new ForwardedError(code, parsed.message ?? `leader answered HTTP ${answer.status}`);
  }
  return text;
}

/**
 * A unary call through the leader's gateway: internal request in, internal response out.
 * `idempotent`: safe to send twice (see ForwardRequest); lease grant and revoke are not.
 */
export async function forwardUnary<Req extends object, Resp>(
  target: ForwardTarget,
  path: string,
  req: Req,
  reqSchema: Schema,
  respSchema: Schema,
  opts: { idempotent: boolean },
): Promise<Resp | typeof LEADS_HERE> {
  const text = await post(target, path, JSON.stringify(encodeMessage(req, reqSchema)), opts.idempotent);
  if (text === LEADS_HERE) return text;
  return decodeMessage<Resp>(JSON.parse(text) as Json, respSchema);
}

/** One keep-alive through the leader's gateway (a one-message client stream there). */
export async function forwardKeepAlive<Resp>(target: ForwardTarget, id: number, respSchema: Schema): Promise<Resp | typeof LEADS_HERE> {
  const text = await post(target, '/v3/lease/keepalive', JSON.stringify({ ID: String(id) }), true);
  if (text === LEADS_HERE) return text;
  const first = text.split('\n').find((l) => l.trim().length > 0) ?? '{}';
  const line = JSON.parse(first) as { result?: Json; error?: { code?: number; message?: string } };
  if (line.error) throw new ForwardedError((line.error.code as GrpcCode) ?? GrpcCode.Unknown, line.error.message ?? 'keep-alive failed');
  return decodeMessage<Resp>(line.result ?? {}, respSchema);
}
