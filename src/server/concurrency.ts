/**
 * etcd's concurrency services, server side (etcd 3.4's v3lock and v3election, which run
 * clientv3/concurrency's Mutex and Election inside the server): one transport-neutral module
 * over the member's own operations (txn, range, deleteRange, lease grant, the watch hub), used by
 * both APIs through the service table (services.ts) and the Observe streams (http.ts, src/grpc/election.ts).
 *
 * The recipes, as clientv3/concurrency:
 *   - a contender of the lock or election `name` creates the key name + "/" + <lease id in hex>
 *     with its lease (or finds it, if that lease already contends: the same hold);
 *   - it holds the lock (leads) when its key has the lowest create revision under the prefix;
 *     until then it waits, each time for the deletion of the last key created before its own;
 *   - a lease of 0 means "a new lease": the server grants one of 60 seconds and does not keep it
 *     alive (etcd's concurrency.NewSession with the default TTL, orphaned at once).
 * Errors have etcd's messages and, as etcd (its in-process client turns every etcd error into a
 * plain error), the gRPC code Unknown (HTTP 500 through the gateway).
 *
 * Bounded: a wait ends when the caller goes away (the AbortSignal: a cancelled gRPC call, a
 * closed HTTP connection; the waiter's key is deleted then, as etcd does when the context is
 * cancelled), when the waiter's own key disappears (its lease expired or was revoked: etcd 3.4
 * would wait on and report a hold it no longer has; qkv answers as etcd 3.5's Mutex does), or
 * when the member stops.
 */
import { Buffer } from 'node:buffer';
import { prefixEnd } from '../api/keys.js';
import type { DeleteRangeRequest, DeleteRangeResponse, KeyValue, RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse } from '../api/kv.js';
import type { LeaseGrantResponse } from '../api/types.js';
import type { WatchHub, Watcher } from '../watch/hub.js';
import { WatchFilter, type WatchResponse } from '../watch/types.js';
import { CodedError, EtcdMessage, GrpcCode } from '../errors.js';
import { ServerStoppedError, toGrpcStatus } from './errors.js';

/** What the recipes need of a member (src/server/member.ts). */
export interface ConcurrencyMember {
  readonly hub: WatchHub;
  range(req: RangeRequest): Promise<RangeResponse>;
  txn(req: TxnRequest): Promise<TxnResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  leaseGrant(ttl: number, requestedId: number): Promise<LeaseGrantResponse>;
}

/** etcd's concurrency.defaultSessionTTL: the lease granted for a request without one. */
const DEFAULT_SESSION_TTL = 60;

// ---- errors (etcd's messages; code Unknown as etcd's servers return them) -----------------

/** concurrency.ErrElectionNoLeader @public */
export class ElectionNoLeaderError extends CodedError {
  constructor() {
    super('ERR_ELECTION_NO_LEADER', 'election: no leader');
  }
}

/** concurrency.ErrElectionNotLeader @public */
export class ElectionNotLeaderError extends CodedError {
  constructor() {
    super('ERR_ELECTION_NOT_LEADER', EtcdMessage.electionNotLeader);
  }
}

/** v3election.ErrMissingLeaderKey @public */
export class MissingLeaderKeyError extends CodedError {
  constructor() {
    super('ERR_MISSING_LEADER_KEY', '"leader" field must be provided');
  }
}

/** etcd 3.5's concurrency.ErrSessionExpired: the waiter's key vanished (its lease expired). @public */
export class SessionExpiredError extends CodedError {
  constructor() {
    super('ERR_SESSION_EXPIRED', 'mutex: session is expired');
  }
}

/** The caller went away (gRPC's "context canceled"). @public */
export class CanceledError extends CodedError {
  static override readonly grpcCode = GrpcCode.Canceled;
  constructor() {
    super('ERR_CANCELED', 'context canceled');
  }
}

/** Another error of a member operation, as etcd's in-process client relays it: its message, code Unknown. @public */
export class ConcurrencyError extends CodedError {
  constructor(message: string) {
    super('ERR_CONCURRENCY', message);
  }
}

/**
 * An error of a member operation as etcd's concurrency servers answer it: the same message, code
 * Unknown (their in-process client turns etcd's errors into plain ones). A cancellation stays one.
 */
function asEtcdClientError(err: unknown): CodedError {
  if (err instanceof CodedError && (err.grpcCode === GrpcCode.Unknown || err.grpcCode === GrpcCode.Canceled)) return err;
  return new ConcurrencyError(toGrpcStatus(err).message);
}

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asEtcdClientError(err);
  }
}

// ---- messages ------------------------------------------------------------------------------

export interface LockRequest {
  name: Buffer;
  lease: number;
}
export interface LockResponse {
  header: ResponseHeader;
  key: Buffer;
}
export interface UnlockRequest {
  key: Buffer;
}
export interface HeaderResponse {
  header: ResponseHeader;
}
interface LeaderKey {
  name: Buffer;
  key: Buffer;
  rev: number;
  lease: number;
}
export interface CampaignRequest {
  name: Buffer;
  lease: number;
  value: Buffer;
}
export interface CampaignResponse {
  header: ResponseHeader;
  leader: LeaderKey;
}
export interface ProclaimRequest {
  leader?: LeaderKey;
  value: Buffer;
}
export interface LeaderRequest {
  name: Buffer;
}
export interface LeaderResponse {
  header: ResponseHeader;
  kv: KeyValue;
}
export interface ResignRequest {
  leader?: LeaderKey;
}

// ---- helpers -------------------------------------------------------------------------------

/** A lock's or election's key prefix: its name and "/" (as NewMutex and NewElection append it). */
const prefixOf = (name: Buffer): Buffer => Buffer.concat([name, Buffer.from('/')]);

/** A contender's key: the prefix and its lease id in hex (Go's %x of the int64). */
const contenderKey = (prefix: Buffer, lease: number): Buffer => Buffer.concat([prefix, Buffer.from(lease.toString(16))]);

/** clientv3's WithFirstCreate / WithLastCreate: the one key under `prefix` created first (last). */
function byCreate(prefix: Buffer, order: 'ASCEND' | 'DESCEND', maxCreateRevision?: number): RangeRequest {
  return {
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    sortTarget: 'CREATE',
    sortOrder: order,
    limit: 1,
    ...(maxCreateRevision !== undefined ? { maxCreateRevision } : {}),
  };
}

const firstKv = (r: TxnResponse, i: number): KeyValue | undefined => {
  const op = r.responses[i];
  return op && 'responseRange' in op ? op.responseRange.kvs[0] : undefined;
};

/** concurrency.NewSession: the caller's lease, or (0) a new one of the default TTL. */
async function sessionLease(m: ConcurrencyMember, lease: number): Promise<number> {
  if (lease !== 0) return lease;
  return (await guarded(() => m.leaseGrant(DEFAULT_SESSION_TTL, 0))).id;
}

/** An AbortSignal's abort as a promise that never resolves otherwise. */
function aborted(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let onAbort = (): void => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(new CanceledError());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** The watcher's next response, or a cancellation; undefined when the hub stopped. */
async function nextResponse(w: Watcher, signal: AbortSignal): Promise<WatchResponse | undefined> {
  const abort = aborted(signal);
  try {
    const r = await Promise.race([w.next(), abort.promise]);
    return r.done ? undefined : r.value;
  } finally {
    abort.dispose();
  }
}

/**
 * concurrency's waitDeletes: waits until no key under `prefix` has a create revision at or below
 * `maxCreateRevision` (each time for the deletion of the last of them), and answers the header of
 * the read that found none. Ends with SessionExpiredError if `ownKey` is deleted meanwhile, with
 * `canceled` on abort. `fromRevision`: deletions from that revision on are seen.
 */
async function waitDeletes(
  m: ConcurrencyMember,
  prefix: Buffer,
  maxCreateRevision: number,
  ownKey: Buffer,
  fromRevision: number,
  signal: AbortSignal,
): Promise<ResponseHeader> {
  const rangeEnd = prefixEnd(prefix);
  // One watcher of the prefix's deletions for the whole wait: the predecessors' and our own.
  let watcher: Watcher | undefined;
  let start = fromRevision;
  try {
    for (;;) {
      if (signal.aborted) throw new CanceledError();
      if (!watcher) {
        watcher = m.hub.watch({ key: prefix, rangeEnd, startRevision: start, filters: [WatchFilter.NoPut] });
        if (start === 0) {
          // A fresh watcher (history was compacted): our key may have gone before it started.
          const own = await guarded(() => m.range({ key: ownKey }));
          if (own.kvs.length === 0) throw new SessionExpiredError();
        }
      }
      const r = await guarded(() => m.range(byCreate(prefix, 'DESCEND', maxCreateRevision)));
      const last = r.kvs[0];
      if (!last) return r.header;
      // Wait for the deletion of `last` (any deletion of it the watcher reports is later than
      // the read that saw it: a key deleted and created again would have a newer create revision).
      let gone = false;
      while (!gone) {
        const resp = await nextResponse(watcher, signal);
        if (signal.aborted) throw new CanceledError();
        if (!resp) throw asEtcdClientError(new ServerStoppedError());
        if (resp.canceled) {
          // Compacted (or canceled by the hub): look again with a fresh watcher.
          watcher.cancel();
          watcher = undefined;
          start = 0;
          break;
        }
        for (const e of resp.events) {
          if (e.type !== 'DELETE') continue;
          if (e.kv.key.equals(ownKey)) throw new SessionExpiredError();
          if (e.kv.key.equals(last.key)) gone = true;
        }
      }
    }
  } finally {
    watcher?.cancel();
  }
}

// ---- Lock ----------------------------------------------------------------------------------

/** v3lock's Lock: concurrency.Mutex.Lock with the request's lease. */
export async function lock(m: ConcurrencyMember, req: LockRequest, signal: AbortSignal): Promise<LockResponse> {
  const lease = await sessionLease(m, req.lease);
  const prefix = prefixOf(req.name);
  const key = contenderKey(prefix, lease);
  const owner = { requestRange: byCreate(prefix, 'ASCEND') };
  const res = await guarded(() =>
    m.txn({
      compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: 0 }],
      success: [{ requestPut: { key, value: Buffer.alloc(0), lease } }, owner],
      failure: [{ requestRange: { key } }, owner],
    }),
  );
  const myRev = res.succeeded ? res.header.revision : (firstKv(res, 0)?.createRevision ?? res.header.revision);
  const holder = firstKv(res, 1);
  if (!holder || holder.createRevision === myRev) return { header: res.header, key };
  try {
    const header = await waitDeletes(m, prefix, myRev - 1, key, res.header.revision + 1, signal);
    return { header, key };
  } catch (err) {
    // Mutex.Lock releases its key when the wait fails (unless it is already gone).
    if (!(err instanceof SessionExpiredError)) await m.deleteRange({ key }).catch(() => {});
    throw err;
  }
}

/** v3lock's Unlock: deletes the key. */
export async function unlock(m: ConcurrencyMember, req: UnlockRequest): Promise<HeaderResponse> {
  const r = await guarded(() => m.deleteRange({ key: req.key }));
  return { header: r.header };
}

// ---- Election ------------------------------------------------------------------------------

/** Election.Resign: deletes the leader key if it still is the one created at `rev`. */
async function resignKey(m: ConcurrencyMember, key: Buffer, rev: number): Promise<TxnResponse> {
  return guarded(() => m.txn({ compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: rev }], success: [{ requestDeleteRange: { key } }] }));
}

/** Election.Proclaim: puts the new value if the leader key still is the one created at `rev`. */
async function proclaimKey(m: ConcurrencyMember, key: Buffer, rev: number, lease: number, value: Buffer): Promise<TxnResponse> {
  const r = await guarded(() =>
    m.txn({ compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: rev }], success: [{ requestPut: { key, value, lease } }] }),
  );
  if (!r.succeeded) throw new ElectionNotLeaderError();
  return r;
}

/** v3election's Campaign: concurrency.Election.Campaign with the request's lease. */
export async function campaign(m: ConcurrencyMember, req: CampaignRequest, signal: AbortSignal): Promise<CampaignResponse> {
  const lease = await sessionLease(m, req.lease);
  const prefix = prefixOf(req.name);
  const key = contenderKey(prefix, lease);
  const res = await guarded(() =>
    m.txn({
      compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: 0 }],
      success: [{ requestPut: { key, value: req.value, lease } }],
      failure: [{ requestRange: { key } }],
    }),
  );
  let rev = res.header.revision;
  if (!res.succeeded) {
    // This lease already campaigns: the same candidacy, with the new value proclaimed.
    const kv = firstKv(res, 0);
    rev = kv?.createRevision ?? rev;
    if (kv && !kv.value.equals(req.value)) {
      try {
        await proclaimKey(m, key, rev, lease, req.value);
      } catch (err) {
        await resignKey(m, key, rev).catch(() => {});
        throw err;
      }
    }
  }
  try {
    await waitDeletes(m, prefix, rev - 1, key, res.header.revision + 1, signal);
  } catch (err) {
    // Election.Campaign resigns when its context is cancelled; other failures leave the key.
    if (signal.aborted) await resignKey(m, key, rev).catch(() => {});
    if (err instanceof SessionExpiredError) throw new ElectionNotLeaderError();
    throw err;
  }
  // etcd answers the header of the campaign's first txn.
  return { header: res.header, leader: { name: req.name, key, rev, lease } };
}

/** v3election's Proclaim. */
export async function proclaim(m: ConcurrencyMember, req: ProclaimRequest): Promise<HeaderResponse> {
  const leader = req.leader;
  if (!leader) throw new MissingLeaderKeyError();
  const lease = await sessionLease(m, leader.lease);
  const r = await proclaimKey(m, leader.key, leader.rev, lease, req.value);
  return { header: r.header };
}

/** v3election's Resign: no error if the key is not (or no longer) the leader's. */
export async function resign(m: ConcurrencyMember, req: ResignRequest): Promise<HeaderResponse> {
  const leader = req.leader;
  if (!leader) throw new MissingLeaderKeyError();
  // etcd's server opens a session first: a lease of 0 gets one granted there too.
  await sessionLease(m, leader.lease);
  const r = await resignKey(m, leader.key, leader.rev);
  return { header: r.header };
}

/** v3election's Leader: the key under the prefix created first. */
export async function leader(m: ConcurrencyMember, req: LeaderRequest): Promise<LeaderResponse> {
  const r = await guarded(() => m.range(byCreate(prefixOf(req.name), 'ASCEND')));
  const kv = r.kvs[0];
  if (!kv) throw new ElectionNoLeaderError();
  return { header: r.header, kv };
}

/**
 * v3election's Observe (concurrency.Election.Observe): the current leader's key-value, then each
 * new value it proclaims, and when it goes, the next leader's; with no leader, waits for the first
 * key put under the prefix. Ends (without error, as etcd's server stream) when a read or watch
 * fails; with `canceled` when the caller goes away.
 */
export async function* observe(m: ConcurrencyMember, req: LeaderRequest, signal: AbortSignal): AsyncGenerator<LeaderResponse> {
  const prefix = prefixOf(req.name);
  const rangeEnd = prefixEnd(prefix);
  const watchUntil = async function* (w: Watcher): AsyncGenerator<WatchResponse> {
    try {
      for (;;) {
        const resp = await nextResponse(w, signal);
        if (!resp || resp.canceled) return;
        yield resp;
      }
    } finally {
      w.cancel();
    }
  };
  for (;;) {
    let first: LeaderResponse | undefined;
    let r: RangeResponse;
    try {
      r = await m.range(byCreate(prefix, 'ASCEND'));
    } catch {
      return;
    }
    const kv0 = r.kvs[0];
    if (kv0) first = { header: r.header, kv: kv0 };
    else {
      // No leader: the first key put under the prefix (its revision as the header's).
      for await (const resp of watchUntil(m.hub.watch({ key: prefix, rangeEnd, startRevision: r.header.revision }))) {
        const put = resp.events.find((e) => e.type === 'PUT');
        if (put) {
          first = { header: { revision: put.kv.modRevision }, kv: put.kv };
          break;
        }
      }
      if (!first) return;
    }
    yield first;
    // The leader's every value until its key is deleted.
    let deleted = false;
    for await (const resp of watchUntil(m.hub.watch({ key: first.kv.key, startRevision: first.header.revision + 1 }))) {
      for (const e of resp.events) {
        if (e.type === 'DELETE') {
          deleted = true;
          break;
        }
        yield { header: { revision: resp.revision }, kv: e.kv };
      }
      if (deleted) break;
    }
    if (!deleted) return;
  }
}
