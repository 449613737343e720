/**
 * The cluster's membership as replicated state, as etcd keeps it in its backend's `members` and
 * `members_removed` buckets: the members (id, name, peer and client URLs, learner or not), the
 * ids ever removed (never to come back), the cluster's id and token, and the members it was
 * bootstrapped with (what the configuration was at index 0, before any entry: a member that
 * joins later starts its Raft log from there and replays every change in order).
 *
 * Changed only by applied entries: a conf change's member (add, promote, remove, update its
 * peer URLs: the Raft node hands the store the conf change's context) and a member's attributes
 * (its name and client URLs, which it publishes through Raft once it runs, as etcd's publish).
 * Kept in the meta record, written in the same LevelDB batch as the applied index, and carried
 * by the snapshot stream's header; seeded once, before the first entry, by `seedCluster`.
 *
 * Whether a change is allowed (a duplicate peer URL, an unknown id...) is decided before it is
 * proposed, on the leader, which proposes one conf change at a time against its applied table:
 * applying never refuses a conf change, since the Raft core has applied it already.
 */
import { CorruptError } from './errors.js';

/** One member, as the store keeps it. Ids are decimal strings of etcd's uint64 member ids. */
export interface MemberRecord {
  id: string;
  /**
   * The member's id in the Raft core (its messages, configuration, progress): a small positive
   * integer, given in order of addition (the bootstrap members 1..n by member id, then
   * ClusterRecord.nextRaftId), so every member derives the same from the replicated table and a
   * Raft id is never reused. etcd's 64-bit member id stays the id of every API.
   */
  raftId: number;
  /** Empty until the member has started and published its attributes (etcd's "unstarted"). */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface ClusterRecord {
  /** etcd's cluster id (a hash of the bootstrap members' ids), decimal. */
  id: string;
  /** --initial-cluster-token (cluster.config.json: the cluster's name). */
  token: string;
  /** The members at index 0, as seeded (their peer URLs; no names or client URLs yet). */
  bootstrap: MemberRecord[];
  members: MemberRecord[];
  /** Ids removed from the cluster, in the order removed. */
  removed: string[];
  /** The raft id the next member added gets (above every one ever given). */
  nextRaftId: number;
}

/** A conf change's effect on the table. A remove carries the id only; the others a whole record. */
export interface MemberChangeRequest {
  change: 'add' | 'promote' | 'remove' | 'update';
  member: MemberRecord;
}

/** etcd's publish: a started member's name and client URLs. */
export interface MemberAttributesRequest {
  id: string;
  name: string;
  clientUrls: string[];
}

export interface MembershipResponse {
  header: { revision: number };
  members: MemberRecord[];
}

const byId = (a: MemberRecord, b: MemberRecord): number => {
  const x = BigInt(a.id);
  const y = BigInt(b.id);
  return x < y ? -1 : x > y ? 1 : 0;
};

export const copyMember = (m: MemberRecord): MemberRecord => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] });

export const copyCluster = (c: ClusterRecord): ClusterRecord => ({
  ...c,
  bootstrap: c.bootstrap.map(copyMember),
  members: c.members.map(copyMember),
  removed: [...c.removed],
});

/** The membership after a conf change's member (a new record: the one given is not touched). */
export function withMemberChange(cluster: ClusterRecord, r: MemberChangeRequest): ClusterRecord {
  const next = copyCluster(cluster);
  const at = next.members.findIndex((m) => m.id === r.member.id);
  switch (r.change) {
    case 'add':
      if (at >= 0) next.members[at] = copyMember(r.member);
      else next.members.push(copyMember(r.member));
      next.nextRaftId = Math.max(next.nextRaftId, r.member.raftId + 1);
      break;
    case 'promote':
      if (at >= 0) next.members[at]!.isLearner = false;
      break;
    case 'update':
      if (at >= 0) next.members[at]!.peerUrls = [...r.member.peerUrls];
      break;
    case 'remove':
      if (at >= 0) next.members.splice(at, 1);
      if (!next.removed.includes(r.member.id)) next.removed.push(r.member.id);
      break;
  }
  next.members.sort(byId);
  return next;
}

/** The membership after a member's published name and client URLs; a member not (or no longer) in the table is ignored, as etcd does. */
export function withMemberAttributes(cluster: ClusterRecord, r: MemberAttributesRequest): ClusterRecord {
  const at = cluster.members.findIndex((m) => m.id === r.id);
  if (at < 0) return cluster;
  const next = copyCluster(cluster);
  next.members[at] = { ...next.members[at]!, name: r.name, clientUrls: [...r.clientUrls] };
  return next;
}

// ---- the record's form in the meta record and the snapshot header ----------------------

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isId = (v: unknown): v is string => typeof v === 'string' && /^[1-9]\d*$/.test(v);
const isRaftId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

function decodeMember(v: unknown): MemberRecord {
  const o = v as Record<string, unknown> | null;
  if (
    typeof o !== 'object' ||
    o === null ||
    !isId(o['id']) ||
    !isRaftId(o['raftId']) ||
    typeof o['name'] !== 'string' ||
    !isStrings(o['peerUrls']) ||
    !isStrings(o['clientUrls'])
  ) {
    throw new CorruptError('bad member record');
  }
  return {
    id: o['id'],
    raftId: o['raftId'],
    name: o['name'],
    peerUrls: [...o['peerUrls']],
    clientUrls: [...o['clientUrls']],
    isLearner: o['isLearner'] === true,
  };
}

/** The cluster record as msgpack carries it (plain fields). */
export function encodeCluster(c: ClusterRecord): Record<string, unknown> {
  return { id: c.id, token: c.token, bootstrap: c.bootstrap, members: c.members, removed: c.removed, nextRaftId: c.nextRaftId };
}

/** Inverse of encodeCluster; absent (a store not seeded yet) is undefined. */
export function decodeCluster(v: unknown): ClusterRecord | undefined {
  if (v === undefined || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o !== 'object' || !isId(o['id']) || typeof o['token'] !== 'string' || !Array.isArray(o['bootstrap']) || !Array.isArray(o['members'])) {
    throw new CorruptError('bad cluster record');
  }
  const removed = o['removed'];
  if (!isStrings(removed) || !removed.every(isId)) throw new CorruptError('bad cluster record (removed ids)');
  if (!isRaftId(o['nextRaftId'])) throw new CorruptError('bad cluster record (next raft id)');
  return {
    id: o['id'],
    token: o['token'],
    bootstrap: o['bootstrap'].map(decodeMember),
    members: o['members'].map(decodeMember),
    removed: [...removed],
    nextRaftId: o['nextRaftId'],
  };
}
