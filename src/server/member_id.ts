/**
 * Member and cluster ids, derived as etcd derives them (etcdserver/api/membership): a member's
 * id is the first 8 bytes of the SHA-1 of its sorted peer URLs, the cluster token and, for a
 * member added at runtime, the time; the cluster's id the first 8 bytes of the SHA-1 of its
 * bootstrap members' ids. So a new cluster's members agree on every id without talking, and a
 * cluster started again with the same flags has the same ids.
 *
 * Both are etcd's full 64 bits, kept as decimal strings (a uint64 does not fit a JS number); the
 * Raft core names members by a small raft id instead (mvcc/membership.ts' MemberRecord.raftId).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

/** etcd's NewMember id, as a decimal uint64. `addedAt` is a runtime addition's time (ms). */
export function memberIdOf(peerUrls: readonly string[], token: string, addedAt?: number): string {
  const parts = [...peerUrls].sort().join('') + token + (addedAt === undefined ? '' : String(Math.floor(addedAt / 1000)));
  return createHash('sha1').update(parts).digest().readBigUInt64BE(0).toString();
}

/** etcd's genID: the cluster id of these bootstrap member ids, as a decimal uint64. */
export function clusterIdOf(memberIds: readonly string[]): string {
  const ids = memberIds.map((id) => BigInt(id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => bytes.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(bytes).digest().readBigUInt64BE(0).toString();
}
