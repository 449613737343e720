/**
 * The qkv client: etcd v3's API over the JSON gateway (`/v3/...`), which qkv and etcd both
 * serve, so this client also talks to a real etcd. Endpoints fail over in order.
 */
import { Buffer } from 'node:buffer';
import { decodeMessage, encodeMessage, type Schema } from '../api/codec.js';
import * as S from '../api/schemas.js';
import type {
  ApiHeader,
  HashKVResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveResponse,
  MemberAddResponse,
  MemberListResponse,
  SnapshotResponse,
  StatusResponse,
  WatchCreateRequest,
  WatchResponseMessage,
} from '../api/types.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
} from '../api/kv.js';
import { HttpTransport } from './http.js';
import type { TlsFiles } from '../tls.js';
import { LoginError } from './errors.js';
import { keyRange } from '../api/keys.js';

export type Bytes = string | Buffer | Uint8Array;

export function toBuffer(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export interface ClientOptions {
  endpoints: string[];
  timeoutMs?: number;
  /** For https:// endpoints: etcdctl's --cacert, --cert and --key (see HttpOptions). */
  tls?: TlsFiles;
  /**
   * A user to act as (etcdctl's --user): the client authenticates on its first call and sends
   * the token with every call after; against a cluster without auth it goes on without one.
   */
  user?: { name: string; password: string };
}

/** A permission as the Auth service takes and answers it. */
export interface AuthPermission {
  permType: 'READ' | 'WRITE' | 'READWRITE';
  key: Buffer;
  rangeEnd?: Buffer;
}

export interface GetOptions {
  prefix?: boolean;
  rangeEnd?: Bytes;
  /** All keys >= key (etcdctl --from-key). */
  fromKey?: boolean;
  revision?: number;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  serializable?: boolean;
  sortOrder?: RangeRequest['sortOrder'];
  sortTarget?: RangeRequest['sortTarget'];
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface WatchOptions {
  prefix?: boolean;
  rangeEnd?: Bytes;
  startRevision?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
  progressNotify?: boolean;
}

type WithHeader<T> = Omit<T, 'header'> & { header: ApiHeader };

/** The request's key and range end from the prefix / fromKey / rangeEnd options. */
function rangeOf(key: Bytes, opts: { prefix?: boolean; fromKey?: boolean; rangeEnd?: Bytes }): { key: Buffer; rangeEnd?: Buffer } {
  return keyRange(toBuffer(key), {
    ...(opts.prefix ? { prefix: true } : {}),
    ...(opts.fromKey ? { fromKey: true } : {}),
    ...(opts.rangeEnd !== undefined ? { rangeEnd: toBuffer(opts.rangeEnd) } : {}),
  });
}

/**
 * Calls that may be sent again, to another member, whatever became of the first try: they read,
 * or (a keep-alive) do the same again. Every other call changes the store and fails over only
 * when it cannot have taken effect (http.ts).
 */
const IDEMPOTENT_PATHS = new Set(['/v3/kv/range', '/v3/lease/timetolive', '/v3/lease/leases', '/v3/cluster/member/list']);

export class Client {
  readonly http: HttpTransport;

  private token: Promise<string | undefined> | undefined;

  constructor(opts: ClientOptions) {
    const user = opts.user;
    this.http = new HttpTransport({
      ...opts,
      ...(user ? { authorization: (path: string) => (path === '/v3/auth/authenticate' ? Promise.resolve(undefined) : (this.token ??= this.login(user))) } : {}),
    });
  }

  /** The token of `user`, or none if the cluster has auth disabled (as clientv3 goes on). */
  private async login(user: { name: string; password: string }): Promise<string | undefined> {
    try {
      return (await this.authenticate(user.name, user.password)).token;
    } catch (err) {
      if (err instanceof Error && /authentication is not enabled/.test(err.message)) return undefined;
      this.token = undefined;
      throw new LoginError(err as Error);
    }
  }

  // ---- Auth ----

  authenticate(name: string, password: string): Promise<{ header: ApiHeader; token: string }> {
    return this.call('/v3/auth/authenticate', { name, password }, S.AuthenticateRequest, S.AuthenticateResponse);
  }

  authEnable(): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/enable', {}, S.Empty, S.HeaderOnlyResponse);
  }

  authDisable(): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/disable', {}, S.Empty, S.HeaderOnlyResponse);
  }

  userAdd(name: string, password: string, noPassword = false): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/user/add', { name, password, ...(noPassword ? { options: { noPassword } } : {}) }, S.AuthUserAddRequest, S.HeaderOnlyResponse);
  }

  userGet(name: string): Promise<{ header: ApiHeader; roles: string[] }> {
    return this.call('/v3/auth/user/get', { name }, S.AuthUserNameRequest, S.AuthUserGetResponse);
  }

  userList(): Promise<{ header: ApiHeader; users: string[] }> {
    return this.call('/v3/auth/user/list', {}, S.Empty, S.AuthUserListResponse);
  }

  userDelete(name: string): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/user/delete', { name }, S.AuthUserNameRequest, S.HeaderOnlyResponse);
  }

  userChangePassword(name: string, password: string): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/user/changepw', { name, password }, S.AuthUserChangePasswordRequest, S.HeaderOnlyResponse);
  }

  userGrantRole(user: string, role: string): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/user/grant', { user, role }, S.AuthUserGrantRoleRequest, S.HeaderOnlyResponse);
  }

  userRevokeRole(name: string, role: string): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/user/revoke', { name, role }, S.AuthUserRevokeRoleRequest, S.HeaderOnlyResponse);
  }

  roleAdd(name: string): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/role/add', { name }, S.AuthRoleAddRequest, S.HeaderOnlyResponse);
  }

  roleGet(role: string): Promise<{ header: ApiHeader; perm: AuthPermission[] }> {
    return this.call('/v3/auth/role/get', { role }, S.AuthRoleNameRequest, S.AuthRoleGetResponse);
  }

  roleList(): Promise<{ header: ApiHeader; roles: string[] }> {
    return this.call('/v3/auth/role/list', {}, S.Empty, S.AuthRoleListResponse);
  }

  roleDelete(role: string): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/role/delete', { role }, S.AuthRoleNameRequest, S.HeaderOnlyResponse);
  }

  roleGrantPermission(name: string, perm: AuthPermission): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/role/grant', { name, perm }, S.AuthRoleGrantPermissionRequest, S.HeaderOnlyResponse);
  }

  roleRevokePermission(role: string, key: Buffer, rangeEnd?: Buffer): Promise<{ header: ApiHeader }> {
    return this.call('/v3/auth/role/revoke', { role, key, ...(rangeEnd ? { rangeEnd } : {}) }, S.AuthRoleRevokePermissionRequest, S.HeaderOnlyResponse);
  }

  private async call<T>(path: string, req: object, reqSchema: Schema, respSchema: Schema): Promise<T> {
    const json = await this.http.post<Record<string, never>>(path, encodeMessage(req, reqSchema), IDEMPOTENT_PATHS.has(path));
    return decodeMessage<T>(json, respSchema);
  }

  range(req: RangeRequest): Promise<WithHeader<RangeResponse>> {
    return this.call('/v3/kv/range', req, S.RangeRequest, S.RangeResponse);
  }

  get(key: Bytes, opts: GetOptions = {}): Promise<WithHeader<RangeResponse>> {
    const { prefix: _p, rangeEnd: _r, fromKey: _f, ...rest } = opts;
    return this.range({ ...rangeOf(key, opts), ...rest });
  }

  /** The value of one key, or undefined. */
  async getValue(key: Bytes): Promise<Buffer | undefined> {
    const r = await this.get(key);
    return r.kvs[0]?.value;
  }

  put(key: Bytes, value: Bytes, opts: Omit<PutRequest, 'key' | 'value'> = {}): Promise<WithHeader<PutResponse>> {
    return this.call('/v3/kv/put', { key: toBuffer(key), value: toBuffer(value), ...opts }, S.PutRequest, S.PutResponse);
  }

  delete(key: Bytes, opts: { prefix?: boolean; fromKey?: boolean; rangeEnd?: Bytes; prevKv?: boolean } = {}): Promise<WithHeader<DeleteRangeResponse>> {
    const req: DeleteRangeRequest = { ...rangeOf(key, opts), ...(opts.prevKv ? { prevKv: true } : {}) };
    return this.call('/v3/kv/deleterange', req, S.DeleteRangeRequest, S.DeleteRangeResponse);
  }

  txn(req: TxnRequest): Promise<WithHeader<TxnResponse>> {
    return this.call('/v3/kv/txn', req, S.TxnRequest, S.TxnResponse);
  }

  compact(revision: number, physical = false): Promise<{ header: ApiHeader }> {
    return this.call('/v3/kv/compaction', { revision, physical }, S.CompactionRequest, S.HeaderOnlyResponse);
  }

  leaseGrant(ttl: number, id = 0): Promise<LeaseGrantResponse> {
    return this.call('/v3/lease/grant', { ttl, id }, S.LeaseGrantRequest, S.LeaseGrantResponse);
  }

  leaseRevoke(id: number): Promise<{ header: ApiHeader }> {
    return this.call('/v3/lease/revoke', { id }, S.LeaseIdRequest, S.HeaderOnlyResponse);
  }

  /** One keep-alive; TTL 0 in the answer means the lease is gone. */
  async leaseKeepAliveOnce(id: number): Promise<LeaseKeepAliveResponse> {
    const json = await this.http.post<{ result?: Record<string, never> } & Record<string, never>>(
      '/v3/lease/keepalive',
      encodeMessage({ id }, S.LeaseIdRequest),
      true,
    );
    // The gateway answers a streaming RPC: one `{"result": ...}` object.
    return decodeMessage<LeaseKeepAliveResponse>(json.result ?? json, S.LeaseKeepAliveResponse);
  }

  leaseTimeToLive(id: number, keys = false): Promise<LeaseTimeToLiveResponse> {
    return this.call('/v3/lease/timetolive', { id, keys }, S.LeaseTimeToLiveRequest, S.LeaseTimeToLiveResponse);
  }

  leases(): Promise<LeaseLeasesResponse> {
    return this.call('/v3/lease/leases', {}, { type: 'etcdserverpb.LeaseLeasesRequest', fields: [] }, S.LeaseLeasesResponse);
  }

  memberList(): Promise<MemberListResponse> {
    return this.call('/v3/cluster/member/list', {}, { type: 'etcdserverpb.MemberListRequest', fields: [] }, S.MemberListResponse);
  }

  /** Adds a member by its peer URLs (etcd's runbook: add it, then start it with --initial-cluster-state existing). */
  memberAdd(peerUrls: string[], isLearner = false): Promise<MemberAddResponse> {
    return this.call('/v3/cluster/member/add', { peerUrls, isLearner }, S.MemberAddRequest, S.MemberAddResponse);
  }

  /** `id` is the member's 64-bit id as decimal digits. */
  memberRemove(id: string): Promise<MemberListResponse> {
    return this.call('/v3/cluster/member/remove', { id }, S.MemberRemoveRequest, S.MemberRemoveResponse);
  }

  /** A member's new peer URLs (it is then restarted there). */
  memberUpdate(id: string, peerUrls: string[]): Promise<MemberListResponse> {
    return this.call('/v3/cluster/member/update', { id, peerUrls }, S.MemberUpdateRequest, S.MemberUpdateResponse);
  }

  /** Refused (FailedPrecondition) until the learner has caught up with the leader. */
  memberPromote(id: string): Promise<MemberListResponse> {
    return this.call('/v3/cluster/member/promote', { id }, S.MemberPromoteRequest, S.MemberPromoteResponse);
  }

  /** Status of one endpoint (not failed over: the answer is about that member). */
  async status(endpoint: string): Promise<StatusResponse> {
    const single = this.http.single(endpoint);
    const json = await single.post<Record<string, never>>('/v3/maintenance/status', {});
    return decodeMessage<StatusResponse>(json, S.StatusResponse);
  }

  /**
   * Maintenance.Snapshot from one endpoint (one member's store, not failed over): etcd's backend
   * database in blobs, then its sha256 in a message of its own. Ends early when `signal` aborts.
   */
  async *snapshot(endpoint: string, signal: AbortSignal = new AbortController().signal): AsyncGenerator<SnapshotResponse> {
    const single = this.http.single(endpoint);
    for await (const raw of single.stream<Record<string, never>>('/v3/maintenance/snapshot', {}, signal)) {
      yield decodeMessage<SnapshotResponse>(raw, S.SnapshotResponse);
    }
  }

  async hashKV(endpoint: string, revision = 0): Promise<HashKVResponse> {
    const single = this.http.single(endpoint);
    // qkv's path (etcd 3.5's): etcd 3.4's gateway maps /v3/maintenance/hash to Hash and so never reaches HashKV.
    const json = await single.post<Record<string, never>>('/v3/maintenance/hashkv', encodeMessage({ revision }, S.HashKVRequest));
    return decodeMessage<HashKVResponse>(json, S.HashKVResponse);
  }

  /**
   * Watches a key, prefix or range. Iterate the result; `cancel()` (or breaking out of the loop)
   * ends the stream.
   */
  watch(key: Bytes, opts: WatchOptions = {}): WatchStream {
    const range = rangeOf(key, opts);
    const filters: ('NOPUT' | 'NODELETE')[] = [];
    if (opts.noPut) filters.push('NOPUT');
    if (opts.noDelete) filters.push('NODELETE');
    const create: WatchCreateRequest = {
      ...range,
      ...(opts.startRevision ? { startRevision: opts.startRevision } : {}),
      ...(opts.prevKv ? { prevKv: true } : {}),
      ...(opts.progressNotify ? { progressNotify: true } : {}),
      ...(filters.length ? { filters } : {}),
    };
    return new WatchStream(this.http, create);
  }
}

export class WatchStream implements AsyncIterable<WatchResponseMessage> {
  private readonly abort = new AbortController();

  constructor(
    private readonly http: HttpTransport,
    private readonly create: WatchCreateRequest,
  ) {}

  cancel(): void {
    this.abort.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchResponseMessage> {
    const body = encodeMessage({ createRequest: this.create }, S.WatchRequest);
    try {
      for await (const raw of this.http.stream<Record<string, never>>('/v3/watch', body, this.abort.signal)) {
        yield decodeMessage<WatchResponseMessage>(raw, S.WatchResponse);
      }
    } finally {
      this.abort.abort();
    }
  }
}

/** Txn builder helpers, in the spirit of clientv3's Compare/OpPut. */
export const op = {
  put: (key: Bytes, value: Bytes, opts: Omit<PutRequest, 'key' | 'value'> = {}): RequestOp => ({
    requestPut: { key: toBuffer(key), value: toBuffer(value), ...opts },
  }),
  get: (key: Bytes, opts: GetOptions = {}): RequestOp => {
    const { prefix: _p, rangeEnd: _r, fromKey: _f, ...rest } = opts;
    return { requestRange: { ...rangeOf(key, opts), ...rest } };
  },
  delete: (key: Bytes, opts: { prefix?: boolean; prevKv?: boolean } = {}): RequestOp => ({
    requestDeleteRange: { ...rangeOf(key, opts), ...(opts.prevKv ? { prevKv: true } : {}) },
  }),
  txn: (t: TxnRequest): RequestOp => ({ requestTxn: t }),
};

export const compare = {
  value: (key: Bytes, result: Compare['result'], value: Bytes): Compare => ({ key: toBuffer(key), target: 'VALUE', result, value: toBuffer(value) }),
  version: (key: Bytes, result: Compare['result'], version: number): Compare => ({ key: toBuffer(key), target: 'VERSION', result, version }),
  createRevision: (key: Bytes, result: Compare['result'], createRevision: number): Compare => ({
    key: toBuffer(key),
    target: 'CREATE',
    result,
    createRevision,
  }),
  modRevision: (key: Bytes, result: Compare['result'], modRevision: number): Compare => ({ key: toBuffer(key), target: 'MOD', result, modRevision }),
  lease: (key: Bytes, result: Compare['result'], lease: number): Compare => ({ key: toBuffer(key), target: 'LEASE', result, lease }),
};

export type { KeyValue };
