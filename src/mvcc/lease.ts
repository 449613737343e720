/**
 * Leases as replicated state, as etcd keeps them in its backend:
 *
 *   GRANTS  one record (id -> TTL) per granted lease, written by applying LeaseGrant entries;
 *   LEASES  one entry (lease, key) per live key attached to a lease, kept in step with CURRENT
 *           by every put and delete (write.ts).
 *
 * A put may only attach an existing lease; LeaseRevoke deletes every key attached to the lease
 * in one revision (keys in order, as etcd sorts them) and forgets the lease. Expiry (a clock) is
 * not replicated state: the lessor keeps it on the leader and proposes revocations.
 */
import { LeaseExistsError, LeaseNotFoundError, LeaseTTLTooLargeError } from '../lease/errors.js';
import { grantKey, leasePrefix, parseGrantKey, parseLeaseKey, tableEnd, tableStart, T_GRANT, T_LEASE } from './keys.js';
import { decodeGrant, encodeGrant } from './records.js';
import type { LeaseAttachment, LeaseGrantRequest, LeaseGrantResponse, LeaseRecord, LeaseRevokeRequest, LeaseRevokeResponse } from './types.js';
import { getRaw, MergedIterator, type ReadSource } from './view.js';
import { RevisionWriter, type Batch } from './write.js';
import { MAX_LEASE_TTL } from '../lease/lessor.js';

function leaseExists(src: ReadSource, id: number): boolean {
  return getRaw(src, grantKey(id)) !== undefined;
}

export async function leaseKeys(src: ReadSource, lease: number): Promise<Buffer[]> {
  const it = new MergedIterator(src, leasePrefix(lease), leasePrefix(lease + 1), false);
  const out: Buffer[] = [];
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) out.push(parseLeaseKey(e.key).key);
    }
  } finally {
    await it.close();
  }
  return out;
}

export async function* leaseAttachments(src: ReadSource): AsyncGenerator<LeaseAttachment[]> {
  const it = new MergedIterator(src, tableStart(T_LEASE), tableEnd(T_LEASE), false, 1024);
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      yield chunk.map((e) => parseLeaseKey(e.key));
    }
  } finally {
    await it.close();
  }
}

export async function leaseRecords(src: ReadSource): Promise<LeaseRecord[]> {
  const it = new MergedIterator(src, tableStart(T_GRANT), tableEnd(T_GRANT), true, 1024);
  const out: LeaseRecord[] = [];
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) out.push({ id: parseGrantKey(e.key), ttl: decodeGrant(e.value) });
    }
  } finally {
    await it.close();
  }
  return out;
}

/** Grants a lease. The KV revision does not change (as in etcd). */
export function applyLeaseGrant(b: Batch, g: LeaseGrantRequest): LeaseGrantResponse {
  if (g.ttl > MAX_LEASE_TTL) throw new LeaseTTLTooLargeError();
  if (leaseExists(b.src, g.id)) throw new LeaseExistsError();
  b.overlay.put(grantKey(g.id), encodeGrant(g.ttl));
  return { header: { revision: b.meta.rev } };
}

/** Revokes a lease: its keys are deleted in one revision (none if it had no keys). */
export async function applyLeaseRevoke(b: Batch, r: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
  if (!leaseExists(b.src, r.id)) throw new LeaseNotFoundError();
  const keys = await leaseKeys(b.src, r.id); // in key order
  const w = new RevisionWriter(b);
  for (const key of keys) {
    const rec = w.current(key);
    if (rec !== undefined) w.del(rec);
  }
  w.commit();
  b.overlay.del(grantKey(r.id));
  return { header: { revision: b.meta.rev } };
}
