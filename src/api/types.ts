/**
 * etcd v3 API messages beyond the KV ones (kv.ts, which the MVCC store takes and answers as they
 * are): the full response header, leases, watches, members and status. camelCase, Buffers and numbers.
 */
import type { Event, KeyValue } from './kv.js';

export type { KeyValue, Event };

/** The header every response carries (the store's header plus the member's identity and term). */
export interface ApiHeader {
  /** uint64 ids are decimal strings: exact beyond 2^53. */
  clusterId: string;
  memberId: string;
  revision: number;
  raftTerm: number;
}

export interface LeaseGrantRequest {
  ttl: number;
  id?: number;
}
export interface LeaseGrantResponse {
  header: ApiHeader;
  id: number;
  ttl: number;
  error?: string;
}
export interface LeaseRevokeRequest {
  id: number;
}
export interface LeaseRevokeResponse {
  header: ApiHeader;
}
export interface LeaseKeepAliveRequest {
  id: number;
}
export interface LeaseKeepAliveResponse {
  header: ApiHeader;
  id: number;
  /** 0 when the lease is not found or expired (etcd's answer). */
  ttl: number;
}
export interface LeaseTimeToLiveRequest {
  id: number;
  keys?: boolean;
}
export interface LeaseTimeToLiveResponse {
  header: ApiHeader;
  id: number;
  /** Remaining seconds; -1 when the lease does not exist or has expired. */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}
export interface LeaseLeasesResponse {
  header: ApiHeader;
  leases: { id: number }[];
}

export type WatchFilterType = 'NOPUT' | 'NODELETE';

export interface WatchCreateRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  startRevision?: number;
  progressNotify?: boolean;
  filters?: WatchFilterType[];
  prevKv?: boolean;
  watchId?: number;
  fragment?: boolean;
}
export interface WatchRequestMessage {
  createRequest?: WatchCreateRequest;
  cancelRequest?: { watchId: number };
  progressRequest?: Record<string, never>;
}
export interface WatchResponseMessage {
  header: ApiHeader;
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
  fragment?: boolean;
  events: Event[];
}

export interface Member {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner?: boolean;
}
export interface MemberListResponse {
  header: ApiHeader;
  members: Member[];
}

/** MemberAdd's answer: the member added, and the members after it (remove, update and promote answer a MemberListResponse). */
export interface MemberAddResponse extends MemberListResponse {
  member: Member;
}

/** One message of Maintenance.Snapshot's stream: a blob of the backend database, or last the sha256 of it. */
export interface SnapshotResponse {
  header: ApiHeader;
  /** The bytes still to come after this blob (uint64, decimal). */
  remainingBytes: string;
  blob: Buffer;
}

export interface StatusResponse {
  header: ApiHeader;
  version: string;
  dbSize: number;
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors: string[];
  dbSizeInUse: number;
  isLearner?: boolean;
}

export interface HashKVResponse {
  header: ApiHeader;
  hash: number;
  compactRevision: number;
}
