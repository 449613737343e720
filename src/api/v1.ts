/**
 * The /v1 API's answers (src/server/http_v1.ts), as JSON: what the server sends and what the
 * web console (src/ui) reads. Keys and values are text when valid UTF-8, else base64 under
 * `<name>_base64`; member ids are decimal strings (64-bit).
 */
export interface V1KeyValue {
  key?: string;
  key_base64?: string;
  value?: string;
  value_base64?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: number;
  lease_hex?: string;
}

export interface V1RangeResponse {
  revision: number;
  count: number;
  more: boolean;
  kvs: V1KeyValue[];
}

export interface V1Member {
  id: string;
  name: string;
  peer_urls: string[];
  client_urls: string[];
  is_learner: boolean;
}

export interface V1MembersResponse {
  members: V1Member[];
}

export interface V1StatusResponse {
  member: { id: string; name: string };
  leader: { id: string; name: string } | null;
  term: number;
  /** The committed index, as etcd's Status raftIndex. */
  raft_index: number;
  raft_applied_index: number;
  revision: number;
  compact_revision: number;
  db_size: number;
}

export interface V1LeasesResponse {
  leases: { id: number; id_hex: string }[];
}

export interface V1LeaseResponse {
  id: number;
  id_hex: string;
  ttl: number;
  granted_ttl: number;
  keys: string[];
}

/** The data of a /v1/watch `put` or `delete` event. */
export interface V1WatchEvent {
  type: 'PUT' | 'DELETE';
  revision: number;
  kv: V1KeyValue;
  prev_kv?: V1KeyValue;
}

/** GET /ui/config.json: what the console offers on this member (src/server/http_ui.ts). */
export interface V1ConsoleConfig {
  /** Put and delete offered (the member's --ui-writable); otherwise the console only reads. */
  writable: boolean;
  /** Auth is enabled on the cluster now: the console asks for a user and password first. */
  auth_enabled: boolean;
}
