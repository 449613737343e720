/**
 * Requests that need the leader, through a change of leader: the one request timeout (etcd's
 * ReqTimeout), bounded retries, and the one way a member forwards a request to the leader's
 * gateway, used by the HTTP APIs and by gRPC alike.
 *
 * As etcd's LeaseRenew / LeaseTimeToLive do (v3_server.go), a forwarded request waits for a
 * leader (waitLeader), sends the request to it, and tries again while the deadline allows when
 * the leader could not be reached (it died, or was not the leader any more); it fails with
 * etcd's retryable errors (code 14 Unavailable): "no leader" when no leader came within the
 * deadline, "request timed out" when one was there but did not answer in time. A failed
 * connection is never passed on as such (it was "fetch failed", code 2, HTTP 500).
 */
import { neverSent } from '../api/fetch_errors.js';
import { Buffer } from 'node:buffer';
import type { Logger } from 'pino';
import type { ClusterConfig } from './config.js';
import { RequestTimedOutError, TimeoutDueToLeaderFailError } from './errors.js';
import { fetchOver, type FetchInit, type TlsCredentials } from '../tls.js';

/** Sent with a forwarded request: the member that forwarded it (a forwarded request is never forwarded again). */
export const FORWARDED_HEADER = 'x-qkv-forwarded';
/** Set on the refusal of a forwarded request by a member that is not the leader (any more): nothing was done, try again. */
export const NOT_LEADER_HEADER = 'x-qkv-not-leader';

/**
 * etcd's request timeout: 5 s for queueing, computation and disk, plus two election timeouts
 * for a leader election. Bounds every request that waits for a leader, Raft, or the leader's answer.
 */
const REQUEST_TIMEOUT_BASE_MS = 5_000;

export function requestTimeoutMs(cluster: Pick<ClusterConfig, 'tickMs' | 'electionTicks'>): number {
  return REQUEST_TIMEOUT_BASE_MS + 2 * cluster.tickMs * cluster.electionTicks;
}

const RETRY_MIN_MS = 10;
const RETRY_MAX_MS = 200;

/** Pauses between tries: 10 ms, doubling up to 200 ms, never past the deadline (performance.now() clock). */
export class Retry {
  private delay = RETRY_MIN_MS;

  constructor(readonly deadline: number) {}

  get remainingMs(): number {
    return this.deadline - performance.now();
  }

  /** Waits before the next try; false at once when the deadline leaves no time for one. */
  async pause(): Promise<boolean> {
    if (this.remainingMs <= this.delay) return false;
    await new Promise((r) => setTimeout(r, this.delay));
    this.delay = Math.min(2 * this.delay, RETRY_MAX_MS);
    return true;
  }
}

export interface ForwardRequest {
  /** Path and query, as this member received it (the leader serves the same gateway routes). */
  path: string;
  method: string;
  contentType: string;
  body?: Uint8Array;
  /**
   * Safe to send twice (keep-alive, time-to-live, leader move): retried after any failed
   * connection. Otherwise (lease grant and revoke are writes) only when the request cannot have
   * reached the leader (connection refused); once it may have, a failure is etcd's "request
   * timed out, possibly due to previous leader failure".
   */
  idempotent: boolean;
  /** The caller's Authorization header (its auth token), relayed as it came. */
  authorization?: string;
}

/**
 * What forwarding needs of the member (src/server/member.ts's Member is one). Stated here rather
 * than imported from member.ts, which imports this module: the module graph stays acyclic.
 */
export interface ForwardingMember {
  readonly id: string;
  readonly log: Pick<Logger, 'debug'>;
  /** The deadline (performance.now() clock) of a request that starts now. */
  requestDeadline(): number;
  /** Undefined when this member leads, else the leader's client URL once there is one (waiting until `deadline`). */
  leaderClientUrl(deadline: number): Promise<string | undefined>;
  /** What it shows the leader's https:// client port: its own certificate, and the CA that verifies the leader's. */
  readonly clientTls: TlsCredentials | undefined;
}

export interface LeaderAnswer {
  status: number;
  contentType: string | null;
  body: Buffer;
}

/**
 * Sends `req` to the leader's client URL and returns its answer (any HTTP status: the leader's
 * own errors are its answer), waiting for a leader first; undefined when this member is (or
 * became) the leader: the caller answers locally.
 */
export async function forwardToLeader(member: ForwardingMember, req: ForwardRequest, deadline = member.requestDeadline()): Promise<LeaderAnswer | undefined> {
  const retry = new Retry(deadline);
  for (;;) {
    const leaderUrl = await member.leaderClientUrl(deadline);
    if (leaderUrl === undefined) return undefined;
    if (retry.remainingMs <= 0) throw new RequestTimedOutError();
    let answer: LeaderAnswer;
    let notLeader = false;
    try {
      const init: FetchInit = {
        method: req.method,
        headers: {
          'content-type': req.contentType,
          [FORWARDED_HEADER]: String(member.id),
          ...(req.authorization !== undefined ? { authorization: req.authorization } : {}),
        },
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(retry.remainingMs))),
      };
      if (req.body && req.method !== 'GET' && req.method !== 'HEAD') init.body = req.body;
      const res = await fetchOver(leaderUrl + req.path, init, member.clientTls);
      answer = { status: res.status, contentType: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
      notLeader = res.headers.get(NOT_LEADER_HEADER) !== null;
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new RequestTimedOutError();
      // The leader could not be reached: it died (an election follows), or it moved.
      if (!req.idempotent && !neverSent(err)) throw new TimeoutDueToLeaderFailError();
      member.log.debug({ err: (err as Error).message, leaderUrl, path: req.path }, 'forward to leader failed; retrying');
      if (await retry.pause()) continue;
      throw new RequestTimedOutError();
    }
    if (notLeader) {
      // Not the leader any more, and it did nothing: ask whoever leads now.
      if (await retry.pause()) continue;
      throw new RequestTimedOutError();
    }
    return answer;
  }
}
