/**
 * Request / response types of the MVCC store, mirroring etcd v3.4's KV service protos
 * (etcdserverpb.RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest, CompactionRequest,
 * mvccpb.KeyValue, mvccpb.Event) field for field, in camelCase.
 *
 * Bytes are Buffers (any byte string). Revisions, versions and lease ids are `number`s and must be
 * safe integers. As in proto3, an absent field and its zero value mean the same thing: an empty
 * `rangeEnd` is "no range end", `revision: 0` is "the current revision", `limit: 0` is "no limit".
 */
import type { MvccError } from './errors.js';
import type { LeaseError } from '../lease/errors.js';

export interface ResponseHeader {
  /** The store's revision when the response was produced (etcd's header.revision). */
  revision: number;
}

export interface KeyValue {
  key: Buffer;
  /** Revision of the put that created the key in its current generation (since its last delete). */
  createRevision: number;
  /** Revision of the last modification of the key. */
  modRevision: number;
  /** 1 on create, +1 on each put; a delete resets it (the key's next put is version 1 again). */
  version: number;
  value: Buffer;
  /** Lease attached to the key, 0 for none. */
  lease: number;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeRequest {
  key: Buffer;
  /**
   * Empty: only `key`. A single 0x00 byte: every key >= `key`. Otherwise the half-open range
   * [key, rangeEnd) (a prefix p is the range [p, p+1) as etcd clients compute it).
   */
  rangeEnd?: Buffer;
  /** Maximum number of keys returned; 0 (or negative) means no limit. */
  limit?: number;
  /** Revision to read at; 0 (or negative) means the current revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Linearizable vs serializable read: a concern of the server layer, ignored by the store. */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** More keys matched than `limit` allowed to return. */
  more: boolean;
  /** Number of keys in the range at the read revision (before limit and the min/max filters, as etcd). */
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value?: Buffer;
  lease?: number;
  prevKv?: boolean;
  /** Keep the key's current value (the key must exist; `value` must be empty). */
  ignoreValue?: boolean;
  /** Keep the key's current lease (the key must exist; `lease` must be 0). */
  ignoreLease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  /** The deleted key-values, only when `prevKv` was asked for. */
  prevKvs: KeyValue[];
}

export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';

/**
 * One comparison of a txn guard. As etcd's `target_union`, only the field matching `target` is
 * read (absent = zero). With `rangeEnd`, every key of the range must satisfy it; an empty range
 * compares as a missing key (version, create, mod and lease 0; a VALUE compare is false).
 */
export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Buffer;
  rangeEnd?: Buffer;
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: Buffer;
  lease?: number;
}

export type RequestOp =
  | { requestRange: RangeRequest }
  | { requestPut: PutRequest }
  | { requestDeleteRange: DeleteRangeRequest }
  | { requestTxn: TxnRequest };

export type ResponseOp =
  | { responseRange: RangeResponse }
  | { responsePut: PutResponse }
  | { responseDeleteRange: DeleteRangeResponse }
  | { responseTxn: TxnResponse };

export interface TxnRequest {
  compare?: Compare[];
  success?: RequestOp[];
  failure?: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  /**
   * etcd: the RPC returns only once the compaction is physically done. The store applies the
   * compaction logically at once and deletes in the background; a server honours `physical` by
   * awaiting `MvccStore.compactionDone()`.
   */
  physical?: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader;
}

/** etcd LeaseGrantRequest as applied: the id is chosen before proposing (never 0 here). */
export interface LeaseGrantRequest {
  id: number;
  /** Seconds. */
  ttl: number;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
}

/** Revoking a lease deletes every key attached to it, in one revision. */
export interface LeaseRevokeRequest {
  id: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

/** A granted lease as the store keeps it (replicated state; expiry is the lessor's business). */
export interface LeaseRecord {
  id: number;
  ttl: number;
}

export type EventType = 'PUT' | 'DELETE';

/**
 * A change of one key. For a DELETE, `kv` holds only the key and `modRevision` (the revision of
 * the delete), the other fields zero, as etcd's tombstone events.
 */
export interface Event {
  type: EventType;
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** etcd's AlarmType. NONE is no alarm: in a GET it means every type. */
export type AlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';

/** etcd's AlarmMember: an alarm raised for a member (any uint64 id, as a decimal string). */
export interface AlarmMember {
  memberId: string;
  alarm: AlarmType;
}

/**
 * etcd's AlarmRequest as applied: ACTIVATE and DEACTIVATE go through Raft (alarms are replicated
 * state); GET is a read (MvccStore.alarms), answered here too if one is ever applied.
 */
export interface AlarmRequest {
  action: 'GET' | 'ACTIVATE' | 'DEACTIVATE';
  memberId: string;
  alarm: AlarmType;
}

export interface AlarmResponse {
  header: ResponseHeader;
  /** GET: the alarms of the type (all for NONE); ACTIVATE / DEACTIVATE: the alarm raised or removed, if any. */
  alarms: AlarmMember[];
}

/** What the Raft apply loop feeds the store: one committed entry's request. */
export type MvccRequest =
  | { range: RangeRequest }
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest }
  | { compaction: CompactionRequest }
  | { leaseGrant: LeaseGrantRequest }
  | { leaseRevoke: LeaseRevokeRequest }
  | { alarm: AlarmRequest };

export type MvccResponse =
  | { range: RangeResponse }
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse }
  | { compaction: CompactionResponse }
  | { leaseGrant: LeaseGrantResponse }
  | { leaseRevoke: LeaseRevokeResponse }
  | { alarm: AlarmResponse }
  /** An entry without a request (e.g. a new leader's empty entry): only the applied index moves. */
  | { noop: { header: ResponseHeader } };

export interface ApplyEntry {
  /** Raft log index; strictly increasing within a batch and across batches. */
  index: number;
  /** Undefined for an entry that carries no KV request; the applied index still advances. */
  request?: MvccRequest;
}

export type ApplyResult =
  /** The entry's index was at or below the stored applied index: it was applied before a restart. */
  | { status: 'skipped' }
  | { status: 'ok'; response: MvccResponse }
  /** The request was rejected (the entry still counts as applied; nothing changed). */
  | { status: 'error'; error: MvccError | LeaseError };

/** Listener of applied changes: called once per new revision, in order, after it is durable. */
export type ApplyListener = (revision: number, events: readonly Event[]) => void;

export interface EventsResult {
  header: ResponseHeader;
  compactRevision: number;
  /** Events of whole revisions, in revision order then in order within each revision. */
  events: Event[];
  /** Every revision below this one was covered: pass it as the next start revision. */
  nextRevision: number;
}

export interface HashKVResult {
  header: ResponseHeader;
  hash: number;
  compactRevision: number;
  /** The revision the hash covers (history from the compaction point up to here). */
  revision: number;
}

/** The whole-store hash (Maintenance.Hash), see StoreSnapshot.hash. */
export interface StoreHashResult {
  /** The store's revision the hash was taken at. */
  revision: number;
  hash: number;
}

export interface LeaseAttachment {
  key: Buffer;
  lease: number;
}
