/**
 * The deterministic stream of entries of the crash test: entry i depends only on i, so the
 * parent can rebuild exactly what entries 1..n must have produced.
 */
import type { MvccRequest } from '../../src/mvcc/types.js';

const pad = 'x'.repeat(200);

export function entryFor(i: number): MvccRequest {
  const k = (n: number): Buffer => Buffer.from(`k${n % 37}\0${n % 3}`, 'latin1');
  // leases 1..4 are granted first; now and then one is revoked (deleting its keys) and granted again
  if (i <= 4) return { leaseGrant: { id: i, ttl: 60 } };
  if (i % 97 === 0) return { leaseRevoke: { id: (i % 4) + 1 } };
  if (i % 97 === 1) return { leaseGrant: { id: ((i - 1) % 4) + 1, ttl: 60 } };
  if (i % 50 === 0) return { compaction: { revision: Math.floor(i / 2) } };
  if (i % 17 === 0) return { deleteRange: { key: Buffer.from(`k${i % 7}`), rangeEnd: Buffer.from(`k${i % 7}\xff`, 'latin1'), prevKv: true } };
  if (i % 13 === 0) {
    return {
      txn: {
        compare: [{ key: k(i), target: 'VERSION', result: 'GREATER', version: 1 }],
        success: [{ requestPut: { key: k(i), value: Buffer.from(`t${i}`) } }, { requestDeleteRange: { key: k(i + 1) } }],
        failure: [{ requestPut: { key: k(i + 2), value: Buffer.from(`f${i}`), lease: 3 } }],
      },
    };
  }
  return { put: { key: k(i), value: Buffer.from(`v${i}${pad}`), lease: i % 5 } };
}
