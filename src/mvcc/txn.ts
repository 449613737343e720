/**
 * Put, DeleteRange and Txn as etcd 3.4's applierV3backend applies them.
 *
 * A txn runs in three steps, all on the state before it: evaluate the compares of the txn and
 * of the nested txns in the taken branches (the "path"), check the ops of that path (ignore_value
 * / ignore_lease keys exist, leases exist, range revisions are readable), then execute. Only the
 * execution writes, and it cannot fail, so a rejected txn leaves nothing behind. Reads executed
 * inside a txn see its earlier writes.
 */
import { Buffer } from 'node:buffer';
import { LeaseNotFoundError } from '../lease/errors.js';
import { CompactedError, FutureRevisionError, KeyNotFoundError } from './errors.js';
import { curBounds, curKey, keySpan, userKeyOfCur } from './keys.js';
import { range } from './range.js';
import { decodeCur, EMPTY, type CurrentRecord } from './records.js';
import { scanLive, type ReadCtx } from './scan.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../api/kv.js';
import { getRaw, MergedIterator } from './view.js';
import type { RevisionWriter } from './write.js';

/** Tells whether a lease exists. */
export type LeaseCheck = (lease: number) => boolean;

/** The branches taken: this txn's, and one path per nested txn of the taken branch, in order. */
export interface TxnPath {
  succeeded: boolean;
  nested: TxnPath[];
}

function branch(t: TxnRequest, succeeded: boolean): RequestOp[] {
  return (succeeded ? t.success : t.failure) ?? [];
}

// ---- compares ----

function cmpInt(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let r: number;
  switch (c.target) {
    case 'VALUE':
      r = Buffer.compare(kv.value, c.value ?? EMPTY);
      break;
    case 'CREATE':
      r = cmpInt(kv.createRevision, c.createRevision ?? 0);
      break;
    case 'MOD':
      r = cmpInt(kv.modRevision, c.modRevision ?? 0);
      break;
    case 'VERSION':
      r = cmpInt(kv.version, c.version ?? 0);
      break;
    case 'LEASE':
      r = cmpInt(kv.lease, c.lease ?? 0);
      break;
  }
  switch (c.result) {
    case 'EQUAL':
      return r === 0;
    case 'NOT_EQUAL':
      return r !== 0;
    case 'GREATER':
      return r > 0;
    case 'LESS':
      return r < 0;
  }
}

/** etcd's applyCompare: every key of the span must pass; no key compares as a zero key-value. */
async function applyCompare(ctx: ReadCtx, c: Compare): Promise<boolean> {
  let seen = false;
  let ok = true;
  await scanLive(ctx.src, keySpan(c.key, c.rangeEnd), ctx.rev, ctx.rev, {
    decodeLimit: Infinity,
    countAll: false,
    visit: (kv) => {
      seen = true;
      if (!compareKv(c, kv)) ok = false;
      return ok;
    },
  });
  if (seen) return ok;
  // A missing value cannot be told from an empty one, so a VALUE compare on no key fails.
  if (c.target === 'VALUE') return false;
  return compareKv(c, { key: c.key, value: EMPTY, createRevision: 0, modRevision: 0, version: 0, lease: 0 });
}

export async function compareToPath(ctx: ReadCtx, t: TxnRequest): Promise<TxnPath> {
  let succeeded = true;
  for (const c of t.compare ?? []) {
    if (!(await applyCompare(ctx, c))) {
      succeeded = false;
      break;
    }
  }
  const nested: TxnPath[] = [];
  for (const op of branch(t, succeeded)) {
    if ('requestTxn' in op) nested.push(await compareToPath(ctx, op.requestTxn));
  }
  return { succeeded, nested };
}

export function isTxnReadonly(t: TxnRequest): boolean {
  for (const op of [...(t.success ?? []), ...(t.failure ?? [])]) {
    if ('requestRange' in op) continue;
    if ('requestTxn' in op && isTxnReadonly(op.requestTxn)) continue;
    return false;
  }
  return true;
}

// ---- checks of the taken path, on the state before the txn ----

function forEachOnPath(t: TxnRequest, path: TxnPath, f: (op: RequestOp) => void): void {
  let n = 0;
  for (const op of branch(t, path.succeeded)) {
    f(op);
    if ('requestTxn' in op) forEachOnPath(op.requestTxn, path.nested[n++]!, f);
  }
}

/** etcd's checkPut then checkRange over the path, in that order. */
export function checkPath(ctx: ReadCtx, t: TxnRequest, path: TxnPath, write: boolean, leaseExists: LeaseCheck | undefined): void {
  if (write) forEachOnPath(t, path, (op) => 'requestPut' in op && checkPut(ctx, op.requestPut, leaseExists));
  forEachOnPath(t, path, (op) => {
    if (!('requestRange' in op)) return;
    const rev = op.requestRange.revision ?? 0;
    if (rev === 0) return;
    if (rev > ctx.rev) throw new FutureRevisionError();
    if (rev < ctx.compactRev) throw new CompactedError();
  });
}

/**
 * etcd's checks of a put that need data: an ignore_value / ignore_lease key must exist, a lease
 * must exist. A lone put checks the lease first (applierV3backend.Put), a txn op the key first
 * (checkPut).
 */
export function checkPut(ctx: ReadCtx, p: PutRequest, leaseExists: LeaseCheck | undefined, leaseFirst = false): void {
  const lease = p.lease ?? 0;
  const leaseMissing = lease !== 0 && leaseExists !== undefined && !leaseExists(lease);
  if (leaseFirst && leaseMissing) throw new LeaseNotFoundError();
  if ((p.ignoreValue === true || p.ignoreLease === true) && getRaw(ctx.src, curKey(p.key)) === undefined) {
    throw new KeyNotFoundError();
  }
  if (leaseMissing) throw new LeaseNotFoundError();
}

// ---- execution ----

export function doPut(w: RevisionWriter, p: PutRequest): PutResponse {
  const needOld = p.ignoreValue === true || p.ignoreLease === true || p.prevKv === true;
  const old = needOld ? w.current(p.key) : undefined;
  if ((p.ignoreValue === true || p.ignoreLease === true) && old === undefined) throw new KeyNotFoundError();
  const value = p.ignoreValue === true ? old!.kv.value : (p.value ?? EMPTY);
  const lease = p.ignoreLease === true ? old!.kv.lease : (p.lease ?? 0);
  w.put(p.key, value, lease, needOld ? { old } : undefined);
  const resp: PutResponse = { header: { revision: w.rev } };
  if (p.prevKv === true && old !== undefined) resp.prevKv = old.kv;
  return resp;
}

/** The live records of a span at the writer's current state (CURRENT with pending writes). */
async function currentRecords(w: RevisionWriter, key: Buffer, rangeEnd: Buffer | undefined): Promise<CurrentRecord[]> {
  const span = keySpan(key, rangeEnd);
  if (span.kind === 'point') {
    const r = w.current(key);
    return r === undefined ? [] : [r];
  }
  const b = curBounds(span);
  if (b === undefined) return [];
  const it = new MergedIterator(w.readCtx().src, b.gte, b.lt, true);
  const out: CurrentRecord[] = [];
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) out.push(decodeCur(userKeyOfCur(e.key), e.value));
    }
  } finally {
    await it.close();
  }
  return out;
}

export async function doDeleteRange(w: RevisionWriter, d: DeleteRangeRequest): Promise<DeleteRangeResponse> {
  const recs = await currentRecords(w, d.key, d.rangeEnd);
  for (const r of recs) w.del(r);
  return {
    header: { revision: w.readRev },
    deleted: recs.length,
    prevKvs: d.prevKv === true ? recs.map((r) => r.kv) : [],
  };
}

/**
 * Executes the taken path. `w` is undefined for a read-only txn served outside the apply loop;
 * `readCtx` then gives the read position.
 */
export async function execTxn(w: RevisionWriter | undefined, readCtx: () => ReadCtx, t: TxnRequest, path: TxnPath): Promise<TxnResponse> {
  const responses: ResponseOp[] = [];
  let n = 0;
  for (const op of branch(t, path.succeeded)) {
    if ('requestRange' in op) {
      responses.push({ responseRange: await range(readCtx(), op.requestRange) });
    } else if ('requestTxn' in op) {
      responses.push({ responseTxn: await execTxn(w, readCtx, op.requestTxn, path.nested[n++]!) });
    } else if (w === undefined) {
      throw new Error('mvcc: write op in a read-only txn');
    } else if ('requestPut' in op) {
      responses.push({ responsePut: doPut(w, op.requestPut) });
    } else {
      responses.push({ responseDeleteRange: await doDeleteRange(w, op.requestDeleteRange) });
    }
  }
  // The header is filled in by the caller once the txn's revision is known.
  return { header: { revision: 0 }, succeeded: path.succeeded, responses };
}

/** Gives a txn response its final header. Nested txn responses keep an empty one, as etcd's do. */
export function fillTxnHeaders(resp: TxnResponse, revision: number): void {
  resp.header = { revision };
}
