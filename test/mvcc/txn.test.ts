import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateTxn, type MvccStore } from '../../src/mvcc/index.js';
import type { Compare, CompareResult, CompareTarget, Event, RequestOp, TxnRequest, TxnResponse } from '../../src/api/kv.js';
import { ALL, Applier, b, bytes, show, tempStore } from './helpers.js';

const put = (k: string, v = 'x'): RequestOp => ({ requestPut: { key: b(k), value: b(v) } });
const del = (k: string, end?: Buffer | string): RequestOp => ({
  requestDeleteRange: end === undefined ? { key: b(k) } : { key: b(k), rangeEnd: typeof end === 'string' ? b(end) : end },
});
const get = (k: string, end?: Buffer | string, revision?: number): RequestOp => ({
  requestRange: {
    key: b(k),
    ...(end === undefined ? {} : { rangeEnd: typeof end === 'string' ? b(end) : end }),
    ...(revision === undefined ? {} : { revision }),
  },
});
const txn = (t: TxnRequest): RequestOp => ({ requestTxn: t });
const cmp = (key: string, target: CompareTarget, result: CompareResult, v: number | string, rangeEnd?: Buffer): Compare => {
  const c: Compare = { key: b(key), target, result, ...(rangeEnd ? { rangeEnd } : {}) };
  if (target === 'VALUE') c.value = b(String(v));
  else if (target === 'VERSION') c.version = Number(v);
  else if (target === 'CREATE') c.createRevision = Number(v);
  else if (target === 'MOD') c.modRevision = Number(v);
  else c.lease = Number(v);
  return c;
};

describe('txn', () => {
  let store: MvccStore;
  let cleanup: () => Promise<void>;
  let ap: Applier;
  beforeEach(async () => {
    ({ store, cleanup } = await tempStore());
    ap = new Applier(store);
    await ap.grant(5);
    await ap.put('k', 'v1', 5); // rev 2
    await ap.put('k', 'v2', 5); // rev 3: k = v2, create 2, mod 3, version 2, lease 5
    await ap.put('j', 'a'); // rev 4
  });
  afterEach(async () => cleanup());

  const run = async (t: TxnRequest): Promise<TxnResponse> => {
    const r = await ap.ok({ txn: t });
    if (!('txn' in r)) throw new Error('not a txn response');
    return r.txn;
  };
  const succeeded = async (c: Compare): Promise<boolean> => (await run({ compare: [c] })).succeeded;

  it.each<[CompareTarget, CompareResult, number | string, boolean]>([
    ['VALUE', 'EQUAL', 'v2', true],
    ['VALUE', 'EQUAL', 'v1', false],
    ['VALUE', 'NOT_EQUAL', 'v1', true],
    ['VALUE', 'GREATER', 'v1', true],
    ['VALUE', 'LESS', 'v3', true],
    ['VALUE', 'LESS', 'v2', false],
    ['VERSION', 'EQUAL', 2, true],
    ['VERSION', 'GREATER', 1, true],
    ['VERSION', 'LESS', 2, false],
    ['VERSION', 'NOT_EQUAL', 2, false],
    ['CREATE', 'EQUAL', 2, true],
    ['CREATE', 'LESS', 3, true],
    ['MOD', 'EQUAL', 3, true],
    ['MOD', 'GREATER', 3, false],
    ['LEASE', 'EQUAL', 5, true],
    ['LEASE', 'NOT_EQUAL', 0, true],
  ])('compares %s %s %s on an existing key: %s', async (target, result, v, want) => {
    expect(await succeeded(cmp('k', target, result, v))).toBe(want);
  });

  it.each<[CompareTarget, CompareResult, number | string, boolean]>([
    ['VERSION', 'EQUAL', 0, true],
    ['CREATE', 'EQUAL', 0, true],
    ['MOD', 'EQUAL', 0, true],
    ['LEASE', 'EQUAL', 0, true],
    ['VERSION', 'GREATER', 0, false],
    ['MOD', 'LESS', 1, true],
    ['VALUE', 'EQUAL', '', false], // a VALUE compare on a missing key is always false
    ['VALUE', 'NOT_EQUAL', 'x', false],
    ['VALUE', 'GREATER', '', false],
  ])('compares %s %s %s on a missing key: %s', async (target, result, v, want) => {
    expect(await succeeded(cmp('missing', target, result, v))).toBe(want);
  });

  it('compares every key of a range; an empty range compares as a missing key', async () => {
    expect(await succeeded(cmp('j', 'VERSION', 'GREATER', 0, b('l')))).toBe(true); // j v1, k v2
    expect(await succeeded(cmp('j', 'VERSION', 'EQUAL', 1, b('l')))).toBe(false); // k is v2
    expect(await succeeded(cmp('a', 'CREATE', 'LESS', 5, ALL))).toBe(true);
    expect(await succeeded(cmp('x', 'VERSION', 'EQUAL', 0, b('z')))).toBe(true);
    expect(await succeeded(cmp('x', 'VALUE', 'EQUAL', '', b('z')))).toBe(false);
  });

  it('needs every compare to hold', async () => {
    expect((await run({ compare: [cmp('k', 'VERSION', 'EQUAL', 2), cmp('j', 'VALUE', 'EQUAL', 'a')] })).succeeded).toBe(true);
    expect((await run({ compare: [cmp('k', 'VERSION', 'EQUAL', 2), cmp('j', 'VALUE', 'EQUAL', 'b')] })).succeeded).toBe(false);
  });

  it('runs the chosen branch in one revision with increasing sub-revisions', async () => {
    const events: Array<[number, Event[]]> = [];
    store.onApply((rev, evs) => events.push([rev, [...evs]]));
    const r = await run({
      compare: [cmp('k', 'VALUE', 'EQUAL', 'v2')],
      success: [put('a', '1'), get('a'), del('j'), put('b', '2'), get('a', ALL)],
      failure: [put('never')],
    });
    expect(r.succeeded).toBe(true);
    expect(r.header.revision).toBe(5);
    expect(store.revision).toBe(5);
    const [r0, r1, r2, r3, r4] = r.responses;
    expect(r0).toEqual({ responsePut: { header: { revision: 5 } } });
    // reads inside the txn see its earlier writes, at the txn's revision
    expect(r1 && 'responseRange' in r1 && show(r1.responseRange.kvs)).toEqual(['a=1@5/5/v1']);
    expect(r1 && 'responseRange' in r1 && r1.responseRange.header.revision).toBe(5);
    expect(r2).toEqual({ responseDeleteRange: { header: { revision: 5 }, deleted: 1, prevKvs: [] } });
    expect(r4 && 'responseRange' in r4 && show(r4.responseRange.kvs)).toEqual(['a=1@5/5/v1', 'b=2@5/5/v1', 'k=v2@3/2/v2/l5']);
    expect(r3).toEqual({ responsePut: { header: { revision: 5 } } });
    // the listener sees the three writes of revision 5 in order
    expect(events.map(([rev, evs]) => [rev, evs.map((e) => `${e.type} ${e.kv.key.toString()}@${e.kv.modRevision}`)])).toEqual([
      [5, ['PUT a@5', 'DELETE j@5', 'PUT b@5']],
    ]);
    expect((await store.range({ key: b('never') })).count).toBe(0);
  });

  it('reads before any write in a write txn are at the current revision', async () => {
    const r = await run({ success: [get('k'), put('a')] });
    const r0 = r.responses[0]!;
    expect('responseRange' in r0 && r0.responseRange.header.revision).toBe(4);
    expect(r.header.revision).toBe(5);
  });

  it('a range at an explicit earlier revision inside a txn reads history', async () => {
    const r = await run({ success: [put('k', 'new'), get('k', undefined, 4), get('k', undefined, 2)] });
    const [, r1, r2] = r.responses;
    expect(r1 && 'responseRange' in r1 && show(r1.responseRange.kvs)).toEqual(['k=v2@3/2/v2/l5']);
    expect(r2 && 'responseRange' in r2 && show(r2.responseRange.kvs)).toEqual(['k=v1@2/2/v1/l5']);
  });

  it('evaluates nested compares on the state before the txn (etcd compareToPath)', async () => {
    const r = await run({
      success: [put('j', 'changed'), txn({ compare: [cmp('j', 'VALUE', 'EQUAL', 'a')], success: [put('saw-old')], failure: [put('saw-new')] })],
    });
    const nested = r.responses[1]!;
    expect('responseTxn' in nested && nested.responseTxn.succeeded).toBe(true);
    // etcd's nested txn response has an empty header; the outer one carries the revision.
    expect('responseTxn' in nested && nested.responseTxn.header).toEqual({ revision: 0 });
    expect(r.header.revision).toBe(5);
    expect((await store.range({ key: b('saw-old') })).count).toBe(1);
    expect((await store.range({ key: b('saw-new') })).count).toBe(0);
  });

  it('runs the failure branch, with nested txns, and reports their responses', async () => {
    const r = await run({
      compare: [cmp('k', 'VERSION', 'EQUAL', 99)],
      success: [put('s')],
      failure: [txn({ compare: [cmp('j', 'VERSION', 'EQUAL', 1)], success: [put('n1'), get('n1')], failure: [put('n2')] }), put('f')],
    });
    expect(r.succeeded).toBe(false);
    const inner = r.responses[0]!;
    if (!('responseTxn' in inner)) throw new Error('expected a txn response');
    expect(inner.responseTxn.succeeded).toBe(true);
    expect(inner.responseTxn.responses[0]).toEqual({ responsePut: { header: { revision: 5 } } });
    const ranged = inner.responseTxn.responses[1]!;
    expect('responseRange' in ranged && show(ranged.responseRange.kvs)).toEqual(['n1=x@5/5/v1']);
    expect(r.responses[1]).toEqual({ responsePut: { header: { revision: 5 } } });
    expect((await store.range({ key: b('a'), rangeEnd: ALL })).kvs.map((kv) => kv.key.toString())).toEqual(['f', 'j', 'k', 'n1']);
  });

  it('does not make a revision for a read-only txn or a write txn that changes nothing', async () => {
    const ro = await run({ compare: [cmp('k', 'VERSION', 'EQUAL', 2)], success: [get('k')], failure: [txn({ success: [get('j')] })] });
    expect(ro.header.revision).toBe(4);
    const noop = await run({ success: [del('missing'), get('k')] });
    expect(noop.header.revision).toBe(4);
    expect(noop.responses[0]).toEqual({ responseDeleteRange: { header: { revision: 4 }, deleted: 0, prevKvs: [] } });
    const empty = await run({});
    expect(empty).toEqual({ header: { revision: 4 }, succeeded: true, responses: [] });
    expect(store.revision).toBe(4);
  });

  it.each<[string, TxnRequest]>([
    ['put/put of one key', { success: [put('a'), put('a')] }],
    ['put then delete', { success: [put('a'), del('a')] }],
    ['delete then put', { success: [del('a'), put('a')] }],
    ['a put inside a deleted range', { success: [del('a', 'c'), put('b')] }],
    ['a put inside a deleted "\\0" range', { success: [del('a', bytes(0)), put('zzz')] }],
    ['a nested put and an outer put', { success: [txn({ success: [put('a')] }), put('a')] }],
    ['a nested put and an outer delete', { success: [del('a'), txn({ failure: [put('a')] })] }],
    ['puts in two nested txns', { success: [txn({ success: [put('a')] }), txn({ failure: [put('a')] })] }],
    ['a nested put and a later nested delete', { success: [txn({ success: [put('a')] }), txn({ success: [del('a')] })] }],
    ['a dup in the failure branch, even when success is taken', { compare: [], success: [put('a')], failure: [put('b'), put('b')] }],
    ['a dup deep in a nested branch', { success: [txn({ success: [txn({ failure: [put('q'), del('p', 'r')] })] })] }],
  ])('rejects %s as a duplicate key, changing nothing', async (_n, t) => {
    const before = await store.hashKV();
    const r = await ap.result({ txn: t });
    expect(r.status === 'error' && [r.error.code, r.error.message]).toEqual(['ERR_DUPLICATE_KEY', 'etcdserver: duplicate key given in txn request']);
    expect(store.revision).toBe(4);
    expect(await store.hashKV()).toEqual(before);
    expect(() => validateTxn(t)).toThrow('duplicate key');
  });

  it.each<[string, TxnRequest]>([
    ['then and else of one nested txn writing one key', { success: [txn({ success: [put('a')], failure: [put('a')] })] }],
    ['then puts, else deletes the key', { success: [txn({ success: [put('a')], failure: [del('a')] })] }],
    ['success and failure branches', { success: [put('a')], failure: [put('a')] }],
    ['two overlapping deletes', { success: [del('a', 'c'), del('b', 'd')] }],
    ['a put beside a range not containing it', { success: [del('a', 'b'), put('b')] }],
  ])('allows %s', async (_n, t) => {
    expect((await ap.result({ txn: t })).status).toBe('ok');
  });

  it.each<[string, TxnRequest, string]>([
    ['ignore_value on a missing key in the taken branch', { success: [put('a'), { requestPut: { key: b('nope'), ignoreValue: true } }] }, 'ERR_KEY_NOT_FOUND'],
    [
      'ignore_lease on a missing key in a nested taken branch',
      { success: [put('a'), txn({ success: [{ requestPut: { key: b('nope'), ignoreLease: true } }] })] },
      'ERR_KEY_NOT_FOUND',
    ],
    ['a range at a future revision', { success: [put('a'), get('k', undefined, 5)] }, 'ERR_FUTURE_REVISION'],
    [
      'a value with ignore_value, in the branch not taken',
      { compare: [cmp('k', 'VERSION', 'EQUAL', 0)], success: [{ requestPut: { key: b('k'), value: b('x'), ignoreValue: true } }] },
      'ERR_VALUE_PROVIDED',
    ],
    ['an empty compare key', { compare: [{ key: Buffer.alloc(0), target: 'VERSION', result: 'EQUAL' }] }, 'ERR_EMPTY_KEY'],
    ['an empty range key', { success: [{ requestRange: { key: Buffer.alloc(0) } }] }, 'ERR_EMPTY_KEY'],
    ['an empty request op (etcd: key not found)', { success: [{} as RequestOp] }, 'ERR_KEY_NOT_FOUND'],
    ['a compare without a target', { compare: [{ key: b('k'), result: 'EQUAL' } as Compare] }, 'ERR_INVALID_ARGUMENT'],
  ])('rejects %s before writing anything', async (_n, t, code) => {
    const r = await ap.result({ txn: t });
    expect(r.status === 'error' && r.error.code).toBe(code);
    expect(store.revision).toBe(4);
    expect((await store.range({ key: b('a') })).count).toBe(0);
  });

  it('ignores problems in the branch not taken that need data (etcd checks the path only)', async () => {
    const r = await run({ compare: [cmp('k', 'VERSION', 'EQUAL', 0)], success: [{ requestPut: { key: b('nope'), ignoreValue: true } }], failure: [put('a')] });
    expect(r.succeeded).toBe(false);
    expect(store.revision).toBe(5);
  });

  it('checks ranges at compacted revisions on the path', async () => {
    await ap.ok({ compaction: { revision: 3 } });
    expect(await ap.err({ txn: { success: [get('k', undefined, 2)] } })).toBe('ERR_COMPACTED');
    expect(await ap.err({ txn: { success: [get('k', undefined, -1)] } })).toBe('ERR_COMPACTED'); // etcd's checkRange quirk
    const r = await run({ success: [get('k', undefined, 3)] });
    const r0 = r.responses[0]!;
    expect('responseRange' in r0 && show(r0.responseRange.kvs)).toEqual(['k=v2@3/2/v2/l5']);
  });

  it('applies ignore_value and prev_kv inside a txn', async () => {
    const r = await run({ success: [{ requestPut: { key: b('k'), ignoreValue: true, lease: 0, prevKv: true } }] });
    const r0 = r.responses[0]!;
    expect('responsePut' in r0 && show([r0.responsePut.prevKv!])).toEqual(['k=v2@3/2/v2/l5']);
    expect(show((await store.range({ key: b('k') })).kvs)).toEqual(['k=v2@5/2/v3']);
  });

  it('limits ops per txn when the server asks (etcd maxTxnOps)', () => {
    const t: TxnRequest = { success: [put('a'), put('b'), put('c')] };
    expect(() => validateTxn(t, 2)).toThrow('etcdserver: too many operations in txn request');
    expect(() => validateTxn(t, 3)).not.toThrow();
    expect(() => validateTxn({ success: [txn({ success: [put('a'), put('b')] })] }, 2)).toThrow('too many operations');
  });

  it('serves read-only txns locally with readTxn', async () => {
    const r = await store.readTxn({ compare: [cmp('j', 'VALUE', 'EQUAL', 'a')], success: [get('j'), txn({ success: [get('k')] })] });
    expect(r.succeeded).toBe(true);
    expect(r.header.revision).toBe(4);
    const r0 = r.responses[0]!;
    expect('responseRange' in r0 && show(r0.responseRange.kvs)).toEqual(['j=a@4/4/v1']);
    await expect(store.readTxn({ success: [put('a')] })).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    await expect(store.readTxn({ success: [get('k', undefined, 9)] })).rejects.toMatchObject({ code: 'ERR_FUTURE_REVISION' });
  });
});
