/**
 * etcd v3's unary calls, declared once for both client APIs: one entry per method (its service,
 * method name, the JSON gateway's path and aliases, request and response schemas, the handler
 * on the member, and how it is routed). The gateway (http.ts) registers a POST route per path of
 * each entry; the gRPC server (src/grpc/unary.ts) builds each service's unary handlers from its
 * entries, forwarding a leader-only one to the leader's gateway at the entry's `path`.
 * Streaming calls are hand-written where they are served (STREAMING_METHODS); the methods qkv
 * does not implement answer "not supported" over gRPC and have no gateway route
 * (UNSUPPORTED_METHODS). test/server/services.test.ts checks the table against the proto files.
 */
import type { Schema } from '../api/codec.js';
import * as S from '../api/schemas.js';
import type { AlarmRequest, CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from '../api/kv.js';
import * as C from './concurrency.js';
import * as M from './membership.js';
import { BadLeaderTransfereeError, BadRequestError, LeaderTransferTimeoutError, LearnerNotSupportedError, RequestTooLargeError } from './errors.js';
import type { Member } from './member.js';
import { requestBytes } from './requests.js';
import type { Caller } from '../mvcc/types.js';
import * as A from './auth_service.js';

/** The services of etcd's proto files (etcdserverpb, v3lockpb, v3electionpb). */
export type ServiceName = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth' | 'Lock' | 'Election';

export interface UnaryMethod<Req extends object = object> {
  service: ServiceName;
  /** The gRPC method name, as in the proto file. */
  method: string;
  /** The gateway's path (a leader-only call is forwarded to the leader there, from either API). */
  path: string;
  /** More gateway paths for the same call (etcd 3.4's /v3/kv/lease/...). */
  aliases?: readonly string[];
  request: Schema;
  response: Schema;
  /** The answer, in the internal shape. */
  handler(member: Member, req: Req, call: CallContext): Promise<object>;
  /**
   * Only the leader answers (it holds the lease clock): elsewhere the call goes to the leader's
   * gateway; `idempotent` ones may be sent twice (leader.ts).
   */
  leaderOnly?: { idempotent: boolean };
  /**
   * Run on the member that received a leader-only call before it goes to the leader (both APIs):
   * what etcd checks on the receiving member, which proposes the call itself (the space quota).
   */
  beforeLeader?(member: Member, req: Req): Promise<void>;
  /** A write whose keys and values count against --max-request-bytes. */
  checkSize?: boolean;
  /** The handler may wait indefinitely (Lock, Campaign): it gets a signal of the caller leaving. */
  waits?: boolean;
  /** gRPC-only steps: a check of the request before anything, and the answer after a leader-only call. */
  grpc?: {
    check?(member: Member, req: Req): void;
    after?(member: Member, req: Req): Promise<object>;
  };
}

/** What a handler knows of its call besides the request (the same for both APIs). */
export interface CallContext {
  /** Aborted when the caller goes away (only for `waits`). */
  signal: AbortSignal;
  /**
   * Who calls: undefined while auth is disabled. Resolved from the call's credentials when asked
   * (only the calls etcd checks ask, so a stale token does not fail the others); throws
   * "invalid auth token".
   */
  caller(): Caller | undefined;
  /**
   * The token a leader-only call carries to the leader: the call's own, else (a caller known by
   * its client certificate's CN) one issued here for that user, since the leader sees only
   * this member's certificate; none while auth is disabled or for the empty user.
   */
  forwardToken(): Promise<string | undefined>;
  /** The client's connection (address and port), for the bound on password guessing. */
  connection: string;
}

/** What a call came with to say who makes it. */
export interface CallCredentials {
  token: string | undefined;
  /** The CN of the client's verified certificate, given only on a client port with --client-cert-auth (gRPC). */
  commonName?: string | undefined;
}

/**
 * A call's context from its credentials as they came and its connection; the caller is resolved
 * once, when first asked (a token issued through another member, once this member has applied
 * its entry).
 */
export async function callContext(member: Member, credentials: CallCredentials, connection: string, signal: AbortSignal): Promise<CallContext> {
  const { token, commonName } = credentials;
  await member.tokenApplied(token);
  let resolved: { caller: Caller | undefined } | undefined;
  const caller = (): Caller | undefined => {
    resolved ??= { caller: member.authn.callerOf(token, commonName) };
    return resolved.caller;
  };
  return {
    signal,
    connection,
    caller,
    forwardToken: async () => {
      if (token !== undefined && token !== '') return token;
      const c = caller();
      return c && 'user' in c && c.user !== '' ? A.tokenToForward(member, c.user) : undefined;
    },
  };
}

/**
 * The member as Lock and Election's recipes see it, acting for `caller`: their reads and writes
 * are checked against the caller's permissions, as etcd's v3lock and v3election act through a
 * client with the caller's token.
 */
export function asCaller(m: Member, caller: Caller | undefined): C.ConcurrencyMember {
  return {
    hub: m.hub,
    range: (r) => m.range(r, caller),
    txn: (r) => m.txn(r, caller),
    deleteRange: (r) => m.deleteRange(r, caller),
    leaseGrant: (ttl, id) => m.leaseGrant(ttl, id),
  };
}

/** A method served as a stream, hand-written in the gateway (http.ts) and in src/grpc. */
export const STREAMING_METHODS: readonly { service: ServiceName; method: string }[] = [
  { service: 'Watch', method: 'Watch' },
  { service: 'Lease', method: 'LeaseKeepAlive' },
  { service: 'Maintenance', method: 'Snapshot' },
  { service: 'Election', method: 'Observe' },
];

/** Methods qkv does not implement: "not supported" (what) over gRPC, no gateway route. */
export const UNSUPPORTED_METHODS: readonly { service: ServiceName; method: string; what: string }[] = [];

export const EMPTY: Schema = S.Empty;
const MOVE_LEADER_REQUEST: Schema = { type: 'etcdserverpb.MoveLeaderRequest', fields: [{ name: 'targetID', json: 'targetID', kind: 'uint64' }] };

/** `r` with this member's full response header at its revision (cluster_id, member_id, revision, raft_term). */
export function withHeader<T extends { header: { revision: number } }>(member: Member, r: T): T & { header: ReturnType<Member['header']> } {
  return { ...r, header: member.header(r.header.revision) };
}

/** etcd's Cluster service header: cluster, member and term, no revision (membership is not keys). */
function clusterHeader(member: Member): ReturnType<Member['header']> {
  return member.header(0);
}

/**
 * etcd 3.4's learner interceptors: a learner answers only Status and a serializable Range; every
 * other call, unary or stream (Watch, LeaseKeepAlive, Snapshot, Observe), and every method qkv
 * does not implement, is refused with "rpc not supported for learner" (Unavailable: clients try
 * another endpoint). `req` is the decoded request (a stream has none). Both APIs ask this, and so
 * does /v1 for its equivalents; a member serves everything again once promoted.
 */
export function checkLearner(member: Member, call: { service: ServiceName; method: string }, req?: { serializable?: boolean }): void {
  if (!member.isLearner) return;
  if (call.service === 'Maintenance' && call.method === 'Status') return;
  if (call.service === 'KV' && call.method === 'Range' && req?.serializable === true) return;
  throw new LearnerNotSupportedError();
}

/** What either API checks of a decoded request before it runs: a write's size (RequestTooLargeError). */
export function checkRequest(method: UnaryMethod, req: object, maxRequestBytes: number): void {
  if (method.checkSize && requestBytes(req) > maxRequestBytes) throw new RequestTooLargeError();
}

function entry<Req extends object>(m: UnaryMethod<Req>): UnaryMethod {
  return m as unknown as UnaryMethod;
}

/** etcd's MoveLeader returns once the target leads (or times out after an election's worth of tries). */
async function waitForLeader(member: Member, target: string): Promise<void> {
  const cfg = member.opts.cluster;
  // The monotonic clock: a step of the wall clock must not end (or stretch) the wait.
  const deadline = performance.now() + Math.max(5_000, 3 * cfg.tickMs * cfg.electionTicks);
  while (member.memberIdOfRaft(member.raft.leader) !== target) {
    if (performance.now() > deadline) throw new LeaderTransferTimeoutError();
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const UNARY_METHODS: readonly UnaryMethod[] = [
  // ---- KV: writes are proposed on any member (a follower's proposal reaches the leader through
  // Raft); a linearizable read waits for the ReadIndex barrier; a read-only txn is a read.
  entry<RangeRequest>({
    service: 'KV',
    method: 'Range',
    path: '/v3/kv/range',
    request: S.RangeRequest,
    response: S.RangeResponse,
    handler: async (m, req, call) => withHeader(m, await m.range(req, call.caller())),
  }),
  entry<PutRequest>({
    service: 'KV',
    method: 'Put',
    path: '/v3/kv/put',
    request: S.PutRequest,
    response: S.PutResponse,
    handler: async (m, req, call) => withHeader(m, await m.put(req, call.caller())),
    checkSize: true,
  }),
  entry<DeleteRangeRequest>({
    service: 'KV',
    method: 'DeleteRange',
    path: '/v3/kv/deleterange',
    request: S.DeleteRangeRequest,
    response: S.DeleteRangeResponse,
    handler: async (m, req, call) => withHeader(m, await m.deleteRange(req, call.caller())),
  }),
  entry<TxnRequest>({
    service: 'KV',
    method: 'Txn',
    path: '/v3/kv/txn',
    request: S.TxnRequest,
    response: S.TxnResponse,
    handler: async (m, req, call) => withHeader(m, await m.txn(req, call.caller())),
    checkSize: true,
  }),
  entry<CompactionRequest>({
    service: 'KV',
    method: 'Compact',
    path: '/v3/kv/compaction',
    request: S.CompactionRequest,
    response: S.HeaderOnlyResponse,
    handler: async (m, req) => ({ header: m.header((await m.compact(req)).revision) }),
  }),

  // ---- Lease: grant, revoke and time-to-live are the leader's (keep-alive is a stream).
  entry<{ ttl: number; id: number }>({
    service: 'Lease',
    method: 'LeaseGrant',
    path: '/v3/lease/grant',
    request: S.LeaseGrantRequest,
    response: S.LeaseGrantResponse,
    handler: (m, req) => m.leaseGrant(req.ttl, req.id),
    leaderOnly: { idempotent: false },
    beforeLeader: async (m) => m.checkQuota({ leaseGrant: {} }),
    grpc: {
      check(_m, req) {
        // qkv keeps lease ids as JS numbers: an explicit id must be exact. The decoder clamps one
        // beyond 2^53 to ±(2^53 - 1), so that value, never granted (ids are drawn below 2^52), is refused too.
        if (Math.abs(req.id) >= Number.MAX_SAFE_INTEGER) throw new BadRequestError('etcdserver: qkv lease IDs must be below 2^53');
      },
    },
  }),
  entry<{ id: number }>({
    service: 'Lease',
    method: 'LeaseRevoke',
    path: '/v3/lease/revoke',
    aliases: ['/v3/kv/lease/revoke'],
    request: S.LeaseIdRequest,
    response: S.HeaderOnlyResponse,
    handler: async (m, req, call) => ({ header: m.header((await m.leaseRevoke(req.id, call.caller())).revision) }),
    leaderOnly: { idempotent: false },
  }),
  entry<{ id: number; keys: boolean }>({
    service: 'Lease',
    method: 'LeaseTimeToLive',
    path: '/v3/lease/timetolive',
    aliases: ['/v3/kv/lease/timetolive'],
    request: S.LeaseTimeToLiveRequest,
    response: S.LeaseTimeToLiveResponse,
    handler: (m, req) => m.leaseTimeToLive(req.id, req.keys),
    leaderOnly: { idempotent: true },
  }),
  entry({
    service: 'Lease',
    method: 'LeaseLeases',
    path: '/v3/lease/leases',
    aliases: ['/v3/kv/lease/leases'],
    request: EMPTY,
    response: S.LeaseLeasesResponse,
    handler: async (m) => ({ header: m.header(), leases: m.leaseLeases() }),
  }),

  // ---- Cluster: the list is served locally (as etcd 3.4); changes are the leader's
  // (membership.ts), which proposes one conf change at a time.
  entry({
    service: 'Cluster',
    method: 'MemberList',
    path: '/v3/cluster/member/list',
    request: EMPTY,
    response: S.MemberListResponse,
    handler: async (m) => ({ header: clusterHeader(m), members: m.members() }),
  }),
  entry<{ peerUrls: string[]; isLearner: boolean }>({
    service: 'Cluster',
    method: 'MemberAdd',
    path: '/v3/cluster/member/add',
    request: S.MemberAddRequest,
    response: S.MemberAddResponse,
    handler: async (m, req) => ({ header: clusterHeader(m), ...(await M.memberAdd(m, req.peerUrls, req.isLearner)) }),
    leaderOnly: { idempotent: false },
  }),
  entry<{ id: string }>({
    service: 'Cluster',
    method: 'MemberRemove',
    path: '/v3/cluster/member/remove',
    request: S.MemberRemoveRequest,
    response: S.MemberRemoveResponse,
    handler: async (m, req) => ({ header: clusterHeader(m), ...(await M.memberRemove(m, req.id)) }),
    leaderOnly: { idempotent: false },
  }),
  entry<{ id: string; peerUrls: string[] }>({
    service: 'Cluster',
    method: 'MemberUpdate',
    path: '/v3/cluster/member/update',
    request: S.MemberUpdateRequest,
    response: S.MemberUpdateResponse,
    handler: async (m, req) => ({ header: clusterHeader(m), ...(await M.memberUpdate(m, req.id, req.peerUrls)) }),
    leaderOnly: { idempotent: true },
  }),
  entry<{ id: string }>({
    service: 'Cluster',
    method: 'MemberPromote',
    path: '/v3/cluster/member/promote',
    request: S.MemberPromoteRequest,
    response: S.MemberPromoteResponse,
    handler: async (m, req) => ({ header: clusterHeader(m), ...(await M.memberPromote(m, req.id)) }),
    leaderOnly: { idempotent: true },
  }),

  // ---- Maintenance (Snapshot is a stream).
  entry({ service: 'Maintenance', method: 'Status', path: '/v3/maintenance/status', request: EMPTY, response: S.StatusResponse, handler: (m) => m.status() }),
  // etcd 3.4's gateway maps both Hash and HashKV to /v3/maintenance/hash, and Hash wins (a
  // revision in the body is ignored); HashKV gets etcd 3.5's /v3/maintenance/hashkv.
  entry({
    service: 'Maintenance',
    method: 'Hash',
    path: '/v3/maintenance/hash',
    request: EMPTY,
    response: S.HashResponse,
    handler: async (m, _req, call) => {
      m.checkMaintenanceAdmin(call.caller());
      const h = await m.hash();
      return { header: m.header(h.revision), hash: h.hash };
    },
  }),
  entry<{ revision: number }>({
    service: 'Maintenance',
    method: 'HashKV',
    path: '/v3/maintenance/hashkv',
    request: S.HashKVRequest,
    response: S.HashKVResponse,
    handler: async (m, req, call) => {
      m.checkMaintenanceAdmin(call.caller());
      const h = await m.hashKV(req.revision);
      return { header: m.header(h.header.revision), hash: h.hash, compactRevision: h.compactRevision };
    },
  }),
  // Alarms are replicated: raised, listed and disarmed through Raft.
  entry<AlarmRequest>({
    service: 'Maintenance',
    method: 'Alarm',
    path: '/v3/maintenance/alarm',
    request: S.AlarmRequest,
    response: S.AlarmResponse,
    handler: async (m, req) => withHeader(m, await m.alarm(req)),
  }),
  // Reclaims this member's space (LevelDB compacts its whole key range); etcd's answer is only a header.
  entry({
    service: 'Maintenance',
    method: 'Defragment',
    path: '/v3/maintenance/defragment',
    request: EMPTY,
    response: S.HeaderOnlyResponse,
    handler: async (m, _req, call) => {
      m.checkMaintenanceAdmin(call.caller());
      await m.defragment();
      return { header: m.header() };
    },
  }),
  entry<{ targetID: string }>({
    service: 'Maintenance',
    method: 'MoveLeader',
    path: '/v3/maintenance/transfer-leadership',
    request: MOVE_LEADER_REQUEST,
    response: S.HeaderOnlyResponse,
    handler: async (m, req, call) => {
      m.checkMaintenanceAdmin(call.caller());
      m.transferLeadership(req.targetID);
      return { header: m.header() };
    },
    leaderOnly: { idempotent: true },
    grpc: {
      check(m, req) {
        if (!m.members().some((x) => x.id === req.targetID)) throw new BadLeaderTransfereeError();
      },
      async after(m, req) {
        await waitForLeader(m, req.targetID);
        return { header: m.header() };
      },
    },
  }),

  // ---- Auth (auth_service.ts): changes through Raft, checked at apply; reads after a ReadIndex.
  entry<object>({
    service: 'Auth',
    method: 'AuthEnable',
    path: '/v3/auth/enable',
    request: EMPTY,
    response: S.HeaderOnlyResponse,
    handler: (m, _req, call) => A.authEnable(m, call.caller()),
  }),
  entry<object>({
    service: 'Auth',
    method: 'AuthDisable',
    path: '/v3/auth/disable',
    request: EMPTY,
    response: S.HeaderOnlyResponse,
    handler: (m, _req, call) => A.authDisable(m, call.caller()),
  }),
  entry<{ name: string; password: string }>({
    service: 'Auth',
    method: 'Authenticate',
    path: '/v3/auth/authenticate',
    request: S.AuthenticateRequest,
    response: S.AuthenticateResponse,
    handler: (m, req, call) => A.authenticate(m, req, call.connection),
  }),
  entry<{ name: string; password: string; options?: { noPassword?: boolean } }>({
    service: 'Auth',
    method: 'UserAdd',
    path: '/v3/auth/user/add',
    request: S.AuthUserAddRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.userAdd(m, req, call.caller()),
  }),
  entry<{ name: string }>({
    service: 'Auth',
    method: 'UserGet',
    path: '/v3/auth/user/get',
    request: S.AuthUserNameRequest,
    response: S.AuthUserGetResponse,
    handler: (m, req, call) => A.userGet(m, req.name, call.caller()),
  }),
  entry<object>({
    service: 'Auth',
    method: 'UserList',
    path: '/v3/auth/user/list',
    request: EMPTY,
    response: S.AuthUserListResponse,
    handler: (m, _req, call) => A.userList(m, call.caller()),
  }),
  entry<{ name: string }>({
    service: 'Auth',
    method: 'UserDelete',
    path: '/v3/auth/user/delete',
    request: S.AuthUserNameRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.userDelete(m, req.name, call.caller()),
  }),
  entry<{ name: string; password: string }>({
    service: 'Auth',
    method: 'UserChangePassword',
    path: '/v3/auth/user/changepw',
    request: S.AuthUserChangePasswordRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.userChangePassword(m, req, call.caller()),
  }),
  entry<{ user: string; role: string }>({
    service: 'Auth',
    method: 'UserGrantRole',
    path: '/v3/auth/user/grant',
    request: S.AuthUserGrantRoleRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.userGrantRole(m, req, call.caller()),
  }),
  entry<{ name: string; role: string }>({
    service: 'Auth',
    method: 'UserRevokeRole',
    path: '/v3/auth/user/revoke',
    request: S.AuthUserRevokeRoleRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.userRevokeRole(m, req, call.caller()),
  }),
  entry<{ name: string }>({
    service: 'Auth',
    method: 'RoleAdd',
    path: '/v3/auth/role/add',
    request: S.AuthRoleAddRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.roleAdd(m, req.name, call.caller()),
  }),
  entry<{ role: string }>({
    service: 'Auth',
    method: 'RoleGet',
    path: '/v3/auth/role/get',
    request: S.AuthRoleNameRequest,
    response: S.AuthRoleGetResponse,
    handler: (m, req, call) => A.roleGet(m, req.role, call.caller()),
  }),
  entry<object>({
    service: 'Auth',
    method: 'RoleList',
    path: '/v3/auth/role/list',
    request: EMPTY,
    response: S.AuthRoleListResponse,
    handler: (m, _req, call) => A.roleList(m, call.caller()),
  }),
  entry<{ role: string }>({
    service: 'Auth',
    method: 'RoleDelete',
    path: '/v3/auth/role/delete',
    request: S.AuthRoleNameRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.roleDelete(m, req.role, call.caller()),
  }),
  entry<Parameters<typeof A.roleGrantPermission>[1]>({
    service: 'Auth',
    method: 'RoleGrantPermission',
    path: '/v3/auth/role/grant',
    request: S.AuthRoleGrantPermissionRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.roleGrantPermission(m, req, call.caller()),
  }),
  entry<Parameters<typeof A.roleRevokePermission>[1]>({
    service: 'Auth',
    method: 'RoleRevokePermission',
    path: '/v3/auth/role/revoke',
    request: S.AuthRoleRevokePermissionRequest,
    response: S.HeaderOnlyResponse,
    handler: (m, req, call) => A.roleRevokePermission(m, req, call.caller()),
  }),

  // ---- Lock and Election: etcd's recipes in concurrency.ts (Observe is a stream). A waiting
  // Lock or Campaign ends when its caller goes away (its key is deleted then, as etcd does).
  entry<C.LockRequest>({
    service: 'Lock',
    method: 'Lock',
    path: '/v3/lock/lock',
    request: S.LockRequest,
    response: S.LockResponse,
    handler: async (m, req, call) => withHeader(m, await C.lock(asCaller(m, call.caller()), req, call.signal)),
    waits: true,
  }),
  entry<C.UnlockRequest>({
    service: 'Lock',
    method: 'Unlock',
    path: '/v3/lock/unlock',
    request: S.UnlockRequest,
    response: S.HeaderOnlyResponse,
    handler: async (m, req, call) => withHeader(m, await C.unlock(asCaller(m, call.caller()), req)),
  }),
  entry<C.CampaignRequest>({
    service: 'Election',
    method: 'Campaign',
    path: '/v3/election/campaign',
    request: S.CampaignRequest,
    response: S.CampaignResponse,
    handler: async (m, req, call) => withHeader(m, await C.campaign(asCaller(m, call.caller()), req, call.signal)),
    waits: true,
  }),
  entry<C.ProclaimRequest>({
    service: 'Election',
    method: 'Proclaim',
    path: '/v3/election/proclaim',
    request: S.ProclaimRequest,
    response: S.HeaderOnlyResponse,
    handler: async (m, req, call) => withHeader(m, await C.proclaim(asCaller(m, call.caller()), req)),
  }),
  entry<C.LeaderRequest>({
    service: 'Election',
    method: 'Leader',
    path: '/v3/election/leader',
    request: S.LeaderRequest,
    response: S.LeaderResponse,
    handler: async (m, req, call) => withHeader(m, await C.leader(asCaller(m, call.caller()), req)),
  }),
  entry<C.ResignRequest>({
    service: 'Election',
    method: 'Resign',
    path: '/v3/election/resign',
    request: S.ResignRequest,
    response: S.HeaderOnlyResponse,
    handler: async (m, req, call) => withHeader(m, await C.resign(asCaller(m, call.caller()), req)),
  }),
];

/** The table's entries of one service. */
export function unaryMethodsOf(service: ServiceName): UnaryMethod[] {
  return UNARY_METHODS.filter((m) => m.service === service);
}
