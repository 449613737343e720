/**
 * Member and cluster ids, derived as etcd derives them (etcdserver/api/membership): a member's
 * id is the first 8 bytes of the SHA-1 of its sorted peer URLs, the cluster token and, for a
 * member added at runtime, the time; the cluster's id the first 8 bytes of the SHA-1 of its
 * bootstrap members' ids. So a new cluster's members agree on every id without talking, and a
 * cluster started again with the same flags has the same ids.
 *
 * One difference: a member id keeps only the low 53 bits of etcd's 64, since the Raft core and
 * the peer wire carry ids as exact JavaScript numbers. On the client APIs it is a uint64 like
 * any other (decimal in JSON, hex in etcdctl's output); the cluster id keeps all 64 bits.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

const ID_MASK = (1n << 53n) - 1n;

/** etcd's NewMember id, within 53 bits (never 0: 0 means "nobody" to Raft). `addedAt` is a runtime addition's time (ms). */
export function memberIdOf(peerUrls: readonly string[], token: string, addedAt?: number): number {
  const parts = [...peerUrls].sort().join('') + token + (addedAt === undefined ? '' : String(Math.floor(addedAt / 1000)));
  const id = createHash('sha1').update(parts).digest().readBigUInt64BE(0) & ID_MASK;
  return Number(id) || 1;
}

/** etcd's genID: the cluster id of these bootstrap member ids, as a decimal uint64. */
export function clusterIdOf(memberIds: readonly (number | string)[]): string {
  const ids = memberIds.map((id) => BigInt(id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => bytes.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(bytes).digest().readBigUInt64BE(0).toString();
}
