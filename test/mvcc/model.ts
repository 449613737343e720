/**
 * A deliberately naive in-memory model of etcd 3.4's KV semantics, written independently of the
 * store: every revision's full state is a Map kept in memory, ranges filter and sort whole maps,
 * txn duplicate-key rejection is decided by enumerating every combination of nested branches.
 * Property tests compare the store against it.
 */
import type {
  Compare,
  DeleteRangeRequest,
  Event,
  KeyValue,
  PutRequest,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../../src/api/kv.js';
import type { ApplyResult, MvccRequest } from '../../src/mvcc/types.js';

class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

const EMPTY = Buffer.alloc(0);
type State = Map<string, KeyValue>; // latin1 key -> kv

interface Span {
  lo: string;
  hi: string | null; // null: unbounded
  point: boolean;
}

function span(key: Buffer, end: Buffer | undefined): Span {
  const lo = key.toString('latin1');
  if (end === undefined || end.length === 0) return { lo, hi: null, point: true };
  if (end.length === 1 && end[0] === 0) return { lo, hi: null, point: false };
  return { lo, hi: end.toString('latin1'), point: false };
}

function inSpan(s: Span, k: string): boolean {
  if (s.point) return k === s.lo;
  return k >= s.lo && (s.hi === null || k < s.hi);
}

function keysIn(state: State, s: Span): string[] {
  return [...state.keys()].filter((k) => inSpan(s, k)).sort();
}

export class Model {
  rev = 1;
  compactRev = 0;
  private readonly states = new Map<number, State>([[1, new Map()]]);
  /** Events of each revision, with prev kv as known when applied. */
  readonly events = new Map<number, Event[]>();
  /** Granted leases: id -> ttl. */
  readonly leases = new Map<number, number>();

  stateAt(rev: number): State {
    const s = this.states.get(rev);
    if (s === undefined) throw new Error(`model has no state at ${rev}`);
    return s;
  }

  // ---- reads ----

  range(req: RangeRequest, curRev = this.rev, current: State = this.stateAt(this.rev)): RangeResponse {
    if (req.key.length === 0) throw new ModelError('ERR_EMPTY_KEY');
    let rev = req.revision ?? 0;
    if (rev > curRev) throw new ModelError('ERR_FUTURE_REVISION');
    if (rev <= 0) rev = curRev;
    if (rev < this.compactRev) throw new ModelError('ERR_COMPACTED');
    const state = rev === curRev ? current : this.stateAt(rev);
    const all = keysIn(state, span(req.key, req.rangeEnd)).map((k) => state.get(k)!);
    const header = { revision: curRev };
    if (req.countOnly) return { header, kvs: [], more: false, count: all.length };
    const limit = (req.limit ?? 0) > 0 ? req.limit! : 0;
    const f = { minM: req.minModRevision ?? 0, maxM: req.maxModRevision ?? 0, minC: req.minCreateRevision ?? 0, maxC: req.maxCreateRevision ?? 0 };
    const filtered = f.minM !== 0 || f.maxM !== 0 || f.minC !== 0 || f.maxC !== 0;
    let order = req.sortOrder ?? 'NONE';
    const target = req.sortTarget ?? 'KEY';
    let kvs = order !== 'NONE' || filtered || limit === 0 ? all : all.slice(0, limit + 1);
    kvs = kvs.filter(
      (kv) =>
        (f.maxM === 0 || kv.modRevision <= f.maxM) &&
        (f.minM === 0 || kv.modRevision >= f.minM) &&
        (f.maxC === 0 || kv.createRevision <= f.maxC) &&
        (f.minC === 0 || kv.createRevision >= f.minC),
    );
    if (target !== 'KEY' && order === 'NONE') order = 'ASCEND';
    if (order !== 'NONE') {
      const val = (kv: KeyValue): number | string =>
        target === 'KEY'
          ? kv.key.toString('latin1')
          : target === 'VALUE'
            ? kv.value.toString('latin1')
            : target === 'VERSION'
              ? kv.version
              : target === 'CREATE'
                ? kv.createRevision
                : kv.modRevision;
      const asc = (a: KeyValue, b: KeyValue): number => {
        const x = val(a);
        const y = val(b);
        return x < y ? -1 : x > y ? 1 : 0;
      };
      kvs = [...kvs].sort(order === 'ASCEND' ? asc : (a, b) => asc(b, a));
    }
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
    return { header, kvs, more, count: all.length };
  }

  /** Events of revisions >= start for a span, as watch replay reports them. */
  eventsSince(start: number, key: Buffer, rangeEnd: Buffer | undefined, prevKv: boolean): Event[] {
    if (start < this.compactRev) throw new ModelError('ERR_COMPACTED');
    const s = span(key, rangeEnd);
    const out: Event[] = [];
    for (let r = Math.max(start, 1); r <= this.rev; r++) {
      for (const e of this.events.get(r) ?? []) {
        if (!inSpan(s, e.kv.key.toString('latin1'))) continue;
        const ev: Event = { type: e.type, kv: e.kv };
        if (prevKv && e.prevKv !== undefined && r - 1 >= this.compactRev) ev.prevKv = e.prevKv;
        out.push(ev);
      }
    }
    return out;
  }

  // ---- writes ----

  apply(req: MvccRequest): ApplyResult {
    try {
      if ('range' in req) return { status: 'ok', response: { range: this.range(req.range) } };
      if ('put' in req) return { status: 'ok', response: { put: this.txnOf({ success: [{ requestPut: req.put }] }, 'put') } as never };
      if ('deleteRange' in req) {
        return { status: 'ok', response: { deleteRange: this.txnOf({ success: [{ requestDeleteRange: req.deleteRange }] }, 'deleteRange') } as never };
      }
      if ('txn' in req) return { status: 'ok', response: { txn: this.txn(req.txn) } };
      if ('leaseGrant' in req) {
        const { id, ttl } = req.leaseGrant;
        if (ttl > 9_000_000_000) throw new ModelError('ERR_LEASE_TTL_TOO_LARGE');
        if (this.leases.has(id)) throw new ModelError('ERR_LEASE_EXISTS');
        this.leases.set(id, ttl);
        return { status: 'ok', response: { leaseGrant: { header: { revision: this.rev } } } };
      }
      if ('leaseRevoke' in req) {
        const id = req.leaseRevoke.id;
        if (!this.leases.has(id)) throw new ModelError('ERR_LEASE_NOT_FOUND');
        const cur = this.stateAt(this.rev);
        const doomed = [...cur.keys()].filter((k) => cur.get(k)!.lease === id).sort();
        if (doomed.length > 0) this.txn({ success: doomed.map((k) => ({ requestDeleteRange: { key: Buffer.from(k, 'latin1') } })) }, false);
        this.leases.delete(id);
        return { status: 'ok', response: { leaseRevoke: { header: { revision: this.rev } } } };
      }
      if ('alarm' in req) throw new Error('model: alarms are not modelled (test/mvcc/alarm.test.ts covers them)');
      if ('memberChange' in req || 'memberAttributes' in req) throw new Error('model: membership is not modelled (test/mvcc/membership.test.ts covers it)');
      if ('auth' in req) throw new Error('model: auth is not modelled (test/mvcc/auth.test.ts covers it)');
      const c = req.compaction.revision;
      if (c <= this.compactRev) throw new ModelError('ERR_COMPACTED');
      if (c > this.rev) throw new ModelError('ERR_FUTURE_REVISION');
      this.compactRev = c;
      for (const r of [...this.states.keys()]) if (r < c) this.states.delete(r);
      return { status: 'ok', response: { compaction: { header: { revision: this.rev } } } };
    } catch (err) {
      if (err instanceof ModelError) return { status: 'error', error: err as never };
      throw err;
    }
  }

  /** A lone put / delete behaves as a one-op txn; return its op response. */
  private txnOf(t: TxnRequest, kind: 'put' | 'deleteRange'): unknown {
    const op = t.success![0]!;
    if (kind === 'put') {
      const p = (op as { requestPut: PutRequest }).requestPut;
      checkPut(p);
      // a lone put checks its lease before its key (etcd applierV3backend.Put)
      if ((p.lease ?? 0) !== 0 && !this.leases.has(p.lease!)) throw new ModelError('ERR_LEASE_NOT_FOUND');
    } else if ((op as { requestDeleteRange: DeleteRangeRequest }).requestDeleteRange.key.length === 0) throw new ModelError('ERR_EMPTY_KEY');
    const resp = this.txn(t, false);
    const r = resp.responses[0]!;
    return 'responsePut' in r ? r.responsePut : 'responseDeleteRange' in r ? r.responseDeleteRange : undefined;
  }

  txn(t: TxnRequest, validate = true): TxnResponse {
    if (validate) validateTxn(t);
    const pre = this.stateAt(this.rev);
    const cur = this.rev;
    // 1. the path: every compare on the state before the txn
    const path = (tx: TxnRequest): boolean[] => {
      const ok = (tx.compare ?? []).every((c) => this.compare(pre, c));
      const out = [ok];
      for (const op of (ok ? tx.success : tx.failure) ?? []) if ('requestTxn' in op) out.push(...path(op.requestTxn));
      return out;
    };
    const p = path(t);
    // 2. checks along the path
    const write = !readonly(t);
    const walk = (tx: TxnRequest, pi: { i: number }, f: (op: RequestOp) => void): void => {
      const ok = p[pi.i++]!;
      for (const op of (ok ? tx.success : tx.failure) ?? []) {
        f(op);
        if ('requestTxn' in op) walk(op.requestTxn, pi, f);
      }
    };
    if (write) {
      walk(t, { i: 0 }, (op) => {
        if (!('requestPut' in op)) return;
        const q = op.requestPut;
        if ((q.ignoreValue || q.ignoreLease) && !pre.has(q.key.toString('latin1'))) throw new ModelError('ERR_KEY_NOT_FOUND');
        if ((q.lease ?? 0) !== 0 && !this.leases.has(q.lease!)) throw new ModelError('ERR_LEASE_NOT_FOUND');
      });
    }
    walk(t, { i: 0 }, (op) => {
      if (!('requestRange' in op)) return;
      const r = op.requestRange.revision ?? 0;
      if (r === 0) return;
      if (r > cur) throw new ModelError('ERR_FUTURE_REVISION');
      if (r < this.compactRev) throw new ModelError('ERR_COMPACTED');
    });
    // 3. execution on a working copy
    const R = cur + 1;
    const work: State = new Map(pre);
    const events: Event[] = [];
    let changed = false;
    const readRev = (): number => (changed ? R : cur);
    const exec = (tx: TxnRequest, pi: { i: number }): TxnResponse => {
      const ok = p[pi.i++]!;
      const responses: ResponseOp[] = [];
      for (const op of (ok ? tx.success : tx.failure) ?? []) {
        if ('requestRange' in op) {
          // reads see the txn's own writes, unless an explicit older revision is asked
          responses.push({ responseRange: this.range(op.requestRange, readRev(), work) });
        } else if ('requestPut' in op) {
          const q = op.requestPut;
          const k = q.key.toString('latin1');
          const old = work.get(k);
          const kv: KeyValue = {
            key: q.key,
            value: q.ignoreValue ? old!.value : (q.value ?? EMPTY),
            createRevision: old ? old.createRevision : R,
            modRevision: R,
            version: old ? old.version + 1 : 1,
            lease: q.ignoreLease ? old!.lease : (q.lease ?? 0),
          };
          work.set(k, kv);
          changed = true;
          events.push(old ? { type: 'PUT', kv, prevKv: old } : { type: 'PUT', kv });
          responses.push({ responsePut: q.prevKv && old ? { header: { revision: R }, prevKv: old } : { header: { revision: R } } });
        } else if ('requestDeleteRange' in op) {
          const q = op.requestDeleteRange;
          const keys = keysIn(work, span(q.key, q.rangeEnd));
          const prev = keys.map((k) => work.get(k)!);
          for (const k of keys) {
            const old = work.get(k)!;
            work.delete(k);
            changed = true;
            events.push({ type: 'DELETE', kv: { key: old.key, value: EMPTY, createRevision: 0, modRevision: R, version: 0, lease: 0 }, prevKv: old });
          }
          responses.push({ responseDeleteRange: { header: { revision: readRev() }, deleted: keys.length, prevKvs: q.prevKv ? prev : [] } });
        } else {
          responses.push({ responseTxn: exec(op.requestTxn, pi) });
        }
      }
      return { header: { revision: 0 }, succeeded: ok, responses };
    };
    const resp = exec(t, { i: 0 });
    if (changed) {
      this.rev = R;
      this.states.set(R, work);
      this.events.set(R, events);
    }
    // Only the outer response gets the revision: etcd's nested txn responses have an empty header.
    resp.header = { revision: this.rev };
    return resp;
  }

  private compare(state: State, c: Compare): boolean {
    const kvs = keysIn(state, span(c.key, c.rangeEnd)).map((k) => state.get(k)!);
    if (kvs.length === 0) {
      if (c.target === 'VALUE') return false;
      kvs.push({ key: c.key, value: EMPTY, createRevision: 0, modRevision: 0, version: 0, lease: 0 });
    }
    return kvs.every((kv) => {
      let r: number;
      if (c.target === 'VALUE') r = Buffer.compare(kv.value, c.value ?? EMPTY);
      else {
        const a = c.target === 'VERSION' ? kv.version : c.target === 'CREATE' ? kv.createRevision : c.target === 'MOD' ? kv.modRevision : kv.lease;
        const b = (c.target === 'VERSION' ? c.version : c.target === 'CREATE' ? c.createRevision : c.target === 'MOD' ? c.modRevision : c.lease) ?? 0;
        r = Math.sign(a - b);
      }
      return c.result === 'EQUAL' ? r === 0 : c.result === 'NOT_EQUAL' ? r !== 0 : c.result === 'GREATER' ? r > 0 : r < 0;
    });
  }
}

function checkPut(p: PutRequest): void {
  if (p.key.length === 0) throw new ModelError('ERR_EMPTY_KEY');
  if (p.ignoreValue && p.value !== undefined && p.value.length > 0) throw new ModelError('ERR_VALUE_PROVIDED');
  if (p.ignoreLease && (p.lease ?? 0) !== 0) throw new ModelError('ERR_LEASE_PROVIDED');
}

function readonly(t: TxnRequest): boolean {
  return [...(t.success ?? []), ...(t.failure ?? [])].every((op) => 'requestRange' in op || ('requestTxn' in op && readonly(op.requestTxn)));
}

/** etcd's order: every op of every nested txn is checked first, then duplicate keys. */
function validateTxn(t: TxnRequest): void {
  checkOps(t);
  if (branchConflicts(t.success ?? []) || branchConflicts(t.failure ?? [])) throw new ModelError('ERR_DUPLICATE_KEY');
}

function checkOps(t: TxnRequest): void {
  for (const c of t.compare ?? []) if (c.key.length === 0) throw new ModelError('ERR_EMPTY_KEY');
  for (const op of [...(t.success ?? []), ...(t.failure ?? [])]) {
    if ('requestPut' in op) checkPut(op.requestPut);
    else if ('requestRange' in op && op.requestRange.key.length === 0) throw new ModelError('ERR_EMPTY_KEY');
    else if ('requestDeleteRange' in op && op.requestDeleteRange.key.length === 0) throw new ModelError('ERR_EMPTY_KEY');
    else if ('requestTxn' in op) checkOps(op.requestTxn);
  }
}

/**
 * Whether some execution of a branch (some choice of then/else in each nested txn) writes a key
 * twice: puts it twice, or puts it and deletes a span containing it.
 */
function branchConflicts(ops: RequestOp[]): boolean {
  for (const w of executions(ops)) {
    const puts = w.filter((x): x is { put: string } => 'put' in x).map((x) => x.put);
    const dels = w.filter((x): x is { del: Span } => 'del' in x).map((x) => x.del);
    if (new Set(puts).size !== puts.length) return true;
    if (puts.some((k) => dels.some((d) => inSpan(d, k)))) return true;
  }
  return false;
}

type Write = { put: string } | { del: Span };

function executions(ops: RequestOp[]): Write[][] {
  let outs: Write[][] = [[]];
  for (const op of ops) {
    let alts: Write[][];
    if ('requestPut' in op) alts = [[{ put: op.requestPut.key.toString('latin1') }]];
    else if ('requestDeleteRange' in op) {
      const s = span(op.requestDeleteRange.key, op.requestDeleteRange.rangeEnd);
      alts = [s.hi !== null && s.hi <= s.lo && !s.point ? [] : [{ del: s }]];
    } else if ('requestTxn' in op) alts = [...executions(op.requestTxn.success ?? []), ...executions(op.requestTxn.failure ?? [])];
    else alts = [[]];
    outs = outs.flatMap((o) => alts.map((a) => [...o, ...a]));
  }
  return outs;
}
