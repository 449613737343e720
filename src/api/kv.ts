/**
 * etcd v3's KV messages (etcdserverpb.RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest,
 * CompactionRequest and their responses, mvccpb.KeyValue and mvccpb.Event) and Maintenance's
 * alarm messages, field for field, in camelCase: what a client sends and receives, and what the
 * MVCC store (src/mvcc) takes and answers. Their header is the store's (its revision); a member
 * answers with the full one (types.ts's ApiHeader).
 *
 * Bytes are Buffers (any byte string). Revisions, versions and lease ids are `number`s and must be
 * safe integers. As in proto3, an absent field and its zero value mean the same thing: an empty
 * `rangeEnd` is "no range end", `revision: 0` is "the current revision", `limit: 0` is "no limit".
 */

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

export type RequestOp = { requestRange: RangeRequest } | { requestPut: PutRequest } | { requestDeleteRange: DeleteRangeRequest } | { requestTxn: TxnRequest };

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

type EventType = 'PUT' | 'DELETE';

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
