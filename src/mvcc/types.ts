/**
 * The MVCC store's own types: the requests Raft's apply loop feeds it (MvccRequest: etcd's KV and
 * alarm messages, which are src/api/kv.ts's, plus leases as applied), what applying returns, and
 * the results of its reads beyond Range (events, hashes, lease attachments).
 */
import type { Buffer } from 'node:buffer';
import type { MvccError } from './errors.js';
import type {
  AlarmMember,
  AlarmRequest,
  AlarmResponse,
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from '../api/kv.js';
import type { LeaseError } from '../lease/errors.js';
import type { ClusterRecord, MemberAttributesRequest, MemberChangeRequest, MembershipResponse } from './membership.js';
import type { AuthRecord, AuthRequest, AuthResponse, Caller } from './auth.js';

export type { ClusterRecord, MemberChangeRequest, MemberRecord, MembershipResponse } from './membership.js';
export type { AuthRecord, AuthRequest, Caller, Permission, PermissionType } from './auth.js';

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

/** What the Raft apply loop feeds the store: one committed entry's request. */
export type MvccRequest =
  | { range: RangeRequest }
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest }
  | { compaction: CompactionRequest }
  | { leaseGrant: LeaseGrantRequest }
  | { leaseRevoke: LeaseRevokeRequest }
  | { alarm: AlarmRequest }
  | { memberChange: MemberChangeRequest }
  | { memberAttributes: MemberAttributesRequest }
  | { auth: AuthRequest };

export type MvccResponse =
  | { range: RangeResponse }
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse }
  | { compaction: CompactionResponse }
  | { leaseGrant: LeaseGrantResponse }
  | { leaseRevoke: LeaseRevokeResponse }
  | { alarm: AlarmResponse }
  | { membership: MembershipResponse }
  | { auth: AuthResponse }
  /** An entry without a request (e.g. a new leader's empty entry): only the applied index moves. */
  | { noop: { header: ResponseHeader } };

export interface ApplyEntry {
  /** Raft log index; strictly increasing within a batch and across batches. */
  index: number;
  /** Undefined for an entry that carries no KV request; the applied index still advances. */
  request?: MvccRequest;
  /** Who made the request, once auth is enabled (auth.ts): what applying it checks. */
  caller?: Caller;
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

/**
 * One revision of one key as etcd's backend keeps it (its `key` bucket): a put with its whole
 * KeyValue, or a delete (a tombstone) naming the key. For backups in etcd's format (revisions.ts).
 */
export type StoreRevision =
  | { readonly main: number; readonly sub: number; readonly tombstone: false; readonly kv: KeyValue }
  | { readonly main: number; readonly sub: number; readonly tombstone: true; readonly key: Buffer };

/** A store snapshot as etcd's backend sees it (StoreSnapshot.export). */
export interface StoreExport {
  readonly revision: number;
  readonly compactRevision: number;
  readonly appliedIndex: number;
  readonly alarms: readonly AlarmMember[];
  /** The membership as applied; undefined if never seeded. */
  readonly cluster: ClusterRecord | undefined;
  /** Users, roles and permissions; undefined until the first auth change. */
  readonly auth: AuthRecord | undefined;
  readonly leases: readonly LeaseRecord[];
  /** Every revision a completed compaction keeps, in revision order, in chunks (each of about 1 MiB); read once. */
  readonly revisions: AsyncIterable<readonly StoreRevision[]>;
  /** Releases the scratch file the revisions are read from (also done when they are read to the end). */
  close(): Promise<void>;
}

/** What a store is built from by MvccStore.importRevisions: etcd's backend contents. */
export interface RevisionImport {
  /** The store's revision (at least the last revision given). */
  readonly revision: number;
  /** The compaction point: of each key's revisions at or below it, only the newest is kept, and only a put. */
  readonly compactRevision: number;
  /** In revision order (checked), each (main, sub) once; read once, as they come (not held). */
  readonly revisions: AsyncIterable<StoreRevision> | Iterable<StoreRevision>;
  readonly leases: readonly LeaseRecord[];
  /** The membership to seed, if known. */
  readonly cluster?: ClusterRecord;
  /** Users, roles and permissions, if any. */
  readonly auth?: AuthRecord;
}
