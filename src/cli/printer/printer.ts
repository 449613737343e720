/**
 * What the CLI prints, one method per kind of response, as etcdctl's printer.go: each output
 * format (-w) is one implementation (`simple.ts`, `json.ts`, `table.ts`) and the commands call
 * the one selected, never looking at the format themselves. A format without its own form of a
 * response prints it as `simple` does.
 */
import { Buffer } from 'node:buffer';
import type * as api from '../../api/types.js';
import type * as kv from '../../api/kv.js';

export type OutputFormat = 'simple' | 'json' | 'table';

/** What etcdctl says of a member change: `Member <id> removed from cluster <id>` and the like. */
export type MemberChange = 'removed from' | 'updated in' | 'promoted in';

/** Where a printer writes: whole lines to stdout, or to stderr. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** How `get` prints its key-values (its flags of the same names). */
export interface GetPrintOptions {
  countOnly?: boolean;
  keysOnly?: boolean;
  printValueOnly?: boolean;
}

/** One endpoint's status; `endpoint` is its URL. */
export interface EndpointStatus {
  endpoint: string;
  status: api.StatusResponse;
}

/** One endpoint's health, as etcdctl's epHealth: `took` (ms, 3 decimals) when healthy, else `error`. */
export interface EndpointHealth {
  endpoint: string;
  health: boolean;
  took?: string;
  error?: string;
}

export interface Printer {
  put(r: kv.PutResponse): void;
  get(r: kv.RangeResponse, opts: GetPrintOptions): void;
  del(r: kv.DeleteRangeResponse): void;
  txn(r: kv.TxnResponse): void;
  compaction(revision: number): void;
  /** One watch response; false when the watch ends with it (canceled, printed as an error). */
  watch(r: api.WatchResponseMessage): boolean;
  leaseGrant(r: api.LeaseGrantResponse): void;
  leaseRevoke(id: number): void;
  leaseTimeToLive(r: api.LeaseTimeToLiveResponse, withKeys: boolean): void;
  leaseList(r: api.LeaseLeasesResponse): void;
  /** One keep-alive answer for lease `id` (TTL 0 or less: the lease is gone). */
  leaseKeepAlive(id: number, r: api.LeaseKeepAliveResponse): void;
  /** The key of a lock just acquired. */
  lock(key: Buffer): void;
  /** The leader of an election: its key and its proposal. */
  electionLeader(leader: { key: Buffer; value: Buffer }): void;
  memberList(r: api.MemberListResponse): void;
  /**
   * A member added; `name` is the name it was added with (it has none in the cluster until it
   * starts), `list` the members now (the simple form says what to start the member with).
   */
  memberAdd(r: api.MemberAddResponse, name: string, list: api.MemberListResponse): void;
  /** A member removed, updated or promoted (`id` decimal). */
  memberChanged(change: MemberChange, id: string, r: api.MemberListResponse): void;
  /** The statuses as they come (the endpoints that failed are left out by the caller). */
  endpointStatus(statuses: AsyncIterable<EndpointStatus>): Promise<void>;
  endpointHealth(h: EndpointHealth): void;
  endpointHashKV(endpoint: string, r: api.HashKVResponse): void;
  /** A snapshot file saved (etcdctl prints this line in every format). */
  snapshotSaved(path: string): void;
  snapshotStatus(s: SnapshotStatusFigures): void;
  /** A data dir built by `snapshot restore` (etcdctl only logs; qkv says what it built, and each lease id it changed). */
  snapshotRestored(r: RestoredDataDir): void;
  /** An auth change as etcdctl words it: `User alice created`, `Role r updated`, `Authentication Enabled`... */
  authChanged(sentence: string): void;
  /** A user's roles; with `detail`, each role's permissions (`roles` given then). */
  userGet(name: string, roles: string[], detail?: Array<{ role: string; perm: AuthPermission[] }>): void;
  /** User or role names, one a line. */
  names(names: string[]): void;
  roleGet(role: string, perm: AuthPermission[]): void;
}

/** A role's permission, as the printer takes it. */
export interface AuthPermission {
  permType: 'READ' | 'WRITE' | 'READWRITE';
  key: Buffer;
  rangeEnd?: Buffer;
}

/** The range end of the prefix `key` (etcd's GetPrefixRangeEnd): the last byte below 0xff bumped, "\0" for all 0xff. */
function prefixEnd(key: Buffer): Buffer {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i]! < 0xff) {
      const end = Buffer.from(key.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** etcdctl's lines of a role's permissions (printer_simple.go RoleGet): `KV Read:` then `KV Write:`, a range a line. */
export function roleLines(role: string, perm: AuthPermission[]): string[] {
  const lines = [`Role ${role}`];
  const range = (p: AuthPermission): string => {
    const key = p.key.toString();
    const end = p.rangeEnd ?? Buffer.alloc(0);
    let line = end.length === 0 ? `\t${key}` : end.length === 1 && end[0] === 0 ? `\t[${key}, <open ended>` : `\t[${key}, ${end.toString()})`;
    if (prefixEnd(p.key).equals(end)) line += ` (prefix ${key})`;
    return line;
  };
  lines.push('KV Read:', ...perm.filter((p) => p.permType !== 'WRITE').map(range));
  lines.push('KV Write:', ...perm.filter((p) => p.permType !== 'READ').map(range));
  return lines;
}

/** An endpoint as etcdctl prints it: without the scheme. */
export function hostOf(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '');
}

/** A member id as etcdctl prints it: hexadecimal. */
function hexId(id: string): string {
  return BigInt(id).toString(16);
}

/** A member or cluster id as etcdctl's `%16x`: hexadecimal, right-aligned in 16 columns. */
export function paddedHexId(id: string): string {
  return hexId(id).padStart(16, ' ');
}

/** etcdctl's line for a member added, in the simple and table forms (3.4's says nothing of a learner). */
export function memberAddedLine(r: api.MemberAddResponse): string {
  return `Member ${paddedHexId(r.member.id)} added to cluster ${paddedHexId(r.header.clusterId)}`;
}

export const MEMBER_LIST_HEADERS = ['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'];

/** The member list's rows, shared by `simple` and `table` (etcdctl's makeMemberListTable). */
export function memberListRows(r: api.MemberListResponse): string[][] {
  // A member that has not started has no name yet: etcdctl says "unstarted".
  return r.members.map((m) => [
    hexId(m.id),
    m.name === '' ? 'unstarted' : 'started',
    m.name,
    m.peerUrls.join(','),
    m.clientUrls.join(','),
    String(!!m.isLearner),
  ]);
}

export const ENDPOINT_STATUS_HEADERS = [
  'ENDPOINT',
  'ID',
  'VERSION',
  'DB SIZE',
  'IS LEADER',
  'IS LEARNER',
  'RAFT TERM',
  'RAFT INDEX',
  'RAFT APPLIED INDEX',
  'ERRORS',
];

/** One endpoint's status row, shared by `simple` and `table` (etcdctl's makeEndpointStatusTable). */
function endpointStatusRow({ endpoint, status: s }: EndpointStatus): string[] {
  return [
    hostOf(endpoint),
    hexId(s.header.memberId),
    s.version,
    humanBytes(s.dbSize),
    String(s.leader === s.header.memberId),
    String(!!s.isLearner),
    String(s.raftTerm),
    String(s.raftIndex),
    String(s.raftAppliedIndex),
    s.errors.join(', '),
  ];
}

/** The endpoint status rows, once every status has come. */
export async function endpointStatusRows(statuses: AsyncIterable<EndpointStatus>): Promise<string[][]> {
  const rows: string[][] = [];
  for await (const s of statuses) rows.push(endpointStatusRow(s));
  return rows;
}

/**
 * A byte size as etcdctl prints it (go-humanize's Bytes: powers of 1000, one decimal below 10,
 * Go's %.0f rounding half to even): 512 B, 4.1 kB, 20 kB.
 */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const v = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  if (v < 10) return `${v.toFixed(1)} ${units[e]}`;
  const whole = Math.floor(v);
  const rounded = v - whole === 0.5 ? whole + (whole % 2) : Math.round(v);
  return `${rounded} ${units[e]}`;
}

/** `snapshot status`'s figures (etcdctl's snapshot.Status; its JSON names). */
export interface SnapshotStatusFigures {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

export const SNAPSHOT_STATUS_HEADERS = ['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'];

/** The status row, shared by `simple` and `table` (etcdctl's makeDBStatusTable). */
export function snapshotStatusRow(s: SnapshotStatusFigures): string[] {
  return [s.hash.toString(16), String(s.revision), String(s.totalKey), humanBytes(s.totalSize)];
}

/** What `snapshot restore` built (src/server/backup.ts's RestoreSummary). */
export interface RestoredDataDir {
  dataDir: string;
  name: string;
  memberId: string;
  clusterId: string;
  revision: number;
  compactRevision: number;
  leases: number;
  remappedLeases: readonly { from: string; to: string }[];
}
