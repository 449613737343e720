/**
 * The Range operation, as etcd's applierV3backend.Range: fetch in key order (one extra key to
 * know `more`, or everything when sorting or filtering), prune by the min/max filters, sort,
 * truncate to the limit. `count` is the number of keys in the span at the revision, before
 * filters and limit.
 */
import { Buffer } from 'node:buffer';
import { EmptyKeyError } from './errors.js';
import { curKey, keySpan } from './keys.js';
import { decodeCur, EMPTY } from './records.js';
import { resolveReadRev, scanLive, type ReadCtx } from './scan.js';
import type { KeyValue, RangeRequest, RangeResponse, SortTarget } from '../api/kv.js';
import { getRaw, type ReadSource } from './view.js';

export async function range(ctx: ReadCtx, req: RangeRequest): Promise<RangeResponse> {
  if (req.key.length === 0) throw new EmptyKeyError();
  const rev = resolveReadRev(ctx, req.revision);
  const span = keySpan(req.key, req.rangeEnd);
  const header = { revision: ctx.rev };

  if (req.countOnly === true) {
    const count = await scanLive(ctx.src, span, rev, ctx.rev, { decodeLimit: 0, countAll: true });
    return { header, kvs: [], more: false, count };
  }

  const limit = req.limit !== undefined && req.limit > 0 ? req.limit : 0;
  const minMod = req.minModRevision ?? 0;
  const maxMod = req.maxModRevision ?? 0;
  const minCreate = req.minCreateRevision ?? 0;
  const maxCreate = req.maxCreateRevision ?? 0;
  let sortOrder = req.sortOrder ?? 'NONE';
  const sortTarget = req.sortTarget ?? 'KEY';
  const filtered = minMod !== 0 || maxMod !== 0 || minCreate !== 0 || maxCreate !== 0;

  // etcd fetches everything when it must sort or filter; note that a non-KEY target with order
  // NONE does not count as sorting here, but is sorted ASCEND below (etcd 3.4 behaviour).
  const fetch = sortOrder !== 'NONE' || filtered || limit === 0 ? Infinity : limit + 1;
  let kvs: KeyValue[] = [];
  let count: number;
  if (span.kind === 'point' && rev === ctx.rev) {
    // The common point get: one lookup in CURRENT, no scan machinery.
    const kv = currentKv(ctx.src, span.key);
    if (kv !== undefined) kvs.push(kv);
    count = kvs.length;
  } else {
    count = await scanLive(ctx.src, span, rev, ctx.rev, { decodeLimit: fetch, countAll: true, visit: (kv) => void kvs.push(kv) });
  }

  if (filtered) {
    kvs = kvs.filter(
      (kv) =>
        (maxMod === 0 || kv.modRevision <= maxMod) &&
        (minMod === 0 || kv.modRevision >= minMod) &&
        (maxCreate === 0 || kv.createRevision <= maxCreate) &&
        (minCreate === 0 || kv.createRevision >= minCreate),
    );
  }

  if (sortTarget !== 'KEY' && sortOrder === 'NONE') sortOrder = 'ASCEND';
  if (sortOrder !== 'NONE') {
    const cmp = comparator(sortTarget);
    // Stable sort: ties keep key order (etcd's sort.Sort leaves ties unspecified).
    kvs.sort(sortOrder === 'ASCEND' ? cmp : (a, b) => cmp(b, a));
  }

  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (req.keysOnly === true) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
  return { header, kvs, more, count };
}

/**
 * A Range that isPlainPointGet accepts, at the current revision `rev`: one lookup in CURRENT,
 * and the response range() would give (test/mvcc/pointget.test.ts compares the two).
 */
export function pointGet(src: ReadSource, rev: number, req: RangeRequest): RangeResponse {
  const header = { revision: rev };
  const kv = currentKv(src, req.key);
  if (kv === undefined) return { header, kvs: [], more: false, count: 0 };
  if (req.countOnly === true) return { header, kvs: [], more: false, count: 1 };
  return { header, kvs: [req.keysOnly === true ? { ...kv, value: EMPTY } : kv], more: false, count: 1 };
}

/** A live key's key-value at the current revision: one lookup in CURRENT. */
function currentKv(src: ReadSource, key: Buffer): KeyValue | undefined {
  const raw = getRaw(src, curKey(key));
  return raw === undefined ? undefined : decodeCur(key, raw).kv;
}

function comparator(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'KEY':
      return (a, b) => Buffer.compare(a.key, b.key);
    case 'VERSION':
      return (a, b) => a.version - b.version;
    case 'CREATE':
      return (a, b) => a.createRevision - b.createRevision;
    case 'MOD':
      return (a, b) => a.modRevision - b.modRevision;
    case 'VALUE':
      return (a, b) => Buffer.compare(a.value, b.value);
  }
}
