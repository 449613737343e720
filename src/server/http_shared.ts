/**
 * What both HTTP APIs of a member (etcd's gateway in http.ts, the /v1 API in http_v1.ts) share
 * over fastify: an error as the reply, and relaying a request only the leader answers. Here so
 * that http_v1.ts needs nothing from http.ts (which registers it).
 */
import { Buffer } from 'node:buffer';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Member } from './member.js';
import { LeaderChangedError, toHttpError } from './errors.js';
import { FORWARDED_HEADER, forwardToLeader, NOT_LEADER_HEADER } from './leader.js';

/** The client's connection as address:port, for the bound on password guessing. */
export function connectionOf(request: FastifyRequest): string {
  return `${request.socket.remoteAddress ?? ''}:${request.socket.remotePort ?? 0}`;
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toHttpError(err);
  return reply.status(e.status).header('content-type', 'application/json').send(JSON.stringify(e.body));
}

/**
 * For a request only the leader answers: false when this member is the leader (the caller
 * answers it); else it is relayed to the leader, waiting for one through a change of leader
 * (leader.ts), and true once the leader's answer is sent. A request another member forwarded
 * here is never forwarded again: a member that no longer leads refuses it ("leader changed",
 * marked so that the forwarding member asks the new leader).
 */
export async function relayToLeader(member: Member, request: FastifyRequest, reply: FastifyReply, opts: { idempotent: boolean }): Promise<boolean> {
  if (request.headers[FORWARDED_HEADER]) {
    if (member.raft.isLeader) return false;
    sendError(reply.header(NOT_LEADER_HEADER, '1'), new LeaderChangedError());
    return true;
  }
  const answer = await forwardToLeader(member, {
    path: request.originalUrl,
    method: request.method,
    contentType: String(request.headers['content-type'] ?? 'application/json'),
    ...(Buffer.isBuffer(request.body) ? { body: request.body } : {}),
    ...(typeof request.headers.authorization === 'string' ? { authorization: request.headers.authorization } : {}),
    idempotent: opts.idempotent,
  });
  if (!answer) return false;
  reply.status(answer.status);
  if (answer.contentType) reply.header('content-type', answer.contentType);
  reply.send(answer.body);
  return true;
}
