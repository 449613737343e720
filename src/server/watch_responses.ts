/**
 * Between etcd's watch messages and the member's watch hub, for every transport alike (the
 * gateway's /v3/watch in http.ts, Watch.Watch in src/grpc/watch.ts): a create request as a hub
 * request, a hub response as etcd's watch server sends it.
 */
import { Buffer } from 'node:buffer';
import type { WatchCreateRequest, WatchResponseMessage } from '../api/types.js';
import { WatchFilter, type WatchResponse } from '../watch/types.js';
import type { Member } from './member.js';
import type { Caller } from '../mvcc/types.js';

/**
 * A hub response as etcd's watch server sends it (gRPC and gateway alike). The header carries
 * the store's current revision, as etcd's does (clients measure progress by it), except on the
 * cancel of a watch from a compacted revision, whose header has no revision and which carries
 * compact_revision alone (clients turn that into ErrCompacted), not a cancel reason.
 */
export function watchResponseMessage(member: Member, resp: WatchResponse, watchId: number): WatchResponseMessage {
  return {
    header: member.header(resp.compactRevision ? 0 : Math.max(resp.revision, member.store.revision)),
    watchId,
    events: resp.events,
    ...(resp.created ? { created: true } : {}),
    ...(resp.canceled ? { canceled: true } : {}),
    ...(resp.compactRevision ? { compactRevision: resp.compactRevision } : {}),
    ...(resp.cancelReason && !resp.compactRevision ? { cancelReason: resp.cancelReason } : {}),
  };
}

/** etcd 3.4's cancel reason for a watch its caller may not read (the gRPC status as Go prints it). */
const PERMISSION_DENIED_REASON = 'rpc error: code = PermissionDenied desc = etcdserver: permission denied';

/**
 * etcd's answer to a watch create its caller may not read, checked on the member that serves
 * the watch (any member, followers too): created and canceled at once, for watch id -1. Any
 * failure to authorize it (no token, a stale one, a range not covered) is that answer, as etcd's
 * isWatchPermitted makes it.
 */
export function watchRefusal(member: Member, caller: () => Caller | undefined, c: WatchCreateRequest): WatchResponseMessage | undefined {
  try {
    member.checkRead(caller(), [{ access: 'READ', range: { key: c.key.length === 0 ? Buffer.from([0]) : c.key, rangeEnd: c.rangeEnd } }]);
    return undefined;
  } catch {
    return { header: member.header(), watchId: -1, created: true, canceled: true, cancelReason: PERMISSION_DENIED_REASON, events: [] };
  }
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
