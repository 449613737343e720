/**
 * Encoding of MVCC requests as Raft entry data (msgpack). Buffers stay binary. Decoding only
 * checks the outer shape: the store validates the fields when it applies the entry, so a bad
 * request becomes the same error response on every replica rather than a crash.
 */
import { InvalidArgumentError } from './errors.js';
import { packValue, unpackValue } from './records.js';
import type { MvccRequest } from './types.js';

/** Drops undefined fields (msgpack would encode them) so equal requests give equal bytes. */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean);
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = clean(x);
    return out;
  }
  return v;
}

export function encodeRequest(req: MvccRequest): Buffer {
  return packValue(clean(req));
}

const KINDS = ['range', 'put', 'deleteRange', 'txn', 'compaction', 'leaseGrant', 'leaseRevoke'];

export function decodeRequest(data: Uint8Array): MvccRequest {
  let v: unknown;
  try {
    v = unpackValue(data);
  } catch {
    throw new InvalidArgumentError('request is not msgpack');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('request must be an object');
  const keys = Object.keys(v);
  if (keys.length !== 1 || !KINDS.includes(keys[0]!)) throw new InvalidArgumentError('request must have exactly one kind');
  return v as MvccRequest;
}
