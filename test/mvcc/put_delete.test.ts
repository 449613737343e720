import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MvccStore } from '../../src/mvcc/index.js';
import type { MvccRequest } from '../../src/mvcc/types.js';
import { ALL, Applier, b, bytes, prefixEnd, show, tempStore } from './helpers.js';

describe('put and delete', () => {
  let store: MvccStore;
  let cleanup: () => Promise<void>;
  let ap: Applier;
  beforeEach(async () => {
    ({ store, cleanup } = await tempStore());
    ap = new Applier(store);
  });
  afterEach(async () => cleanup());

  const get = async (k: string | Buffer): Promise<string[]> => show((await store.range({ key: typeof k === 'string' ? b(k) : k })).kvs);

  it('tracks create revision, mod revision and version across puts and deletes', async () => {
    expect(await ap.put('k', '1')).toBe(2);
    expect(await get('k')).toEqual(['k=1@2/2/v1']);
    expect(await ap.put('k', '2')).toBe(3);
    expect(await ap.put('k', '2')).toBe(4); // same value still makes a revision
    expect(await get('k')).toEqual(['k=2@4/2/v3']);
    expect(await ap.del('k')).toBe(1);
    expect(await get('k')).toEqual([]);
    expect(await ap.put('k', '3')).toBe(6); // a new generation: version 1, new create revision
    expect(await get('k')).toEqual(['k=3@6/6/v1']);
  });

  it('stores any bytes in keys and values', async () => {
    const key = bytes(0x00, 0xff, 0x00, 0x00, 0x01, 0xff);
    const value = bytes(0xff, 0x00, 0x80, 0x00);
    await ap.put(key, value);
    const r = await store.range({ key });
    expect(r.kvs[0]!.key.equals(key)).toBe(true);
    expect(r.kvs[0]!.value.equals(value)).toBe(true);
    expect((await store.range({ key: bytes(0x00, 0xff, 0x00) })).kvs).toEqual([]); // a prefix is not the key
    await ap.put(b('empty'), Buffer.alloc(0));
    expect(show((await store.range({ key: b('empty') })).kvs)).toEqual(['empty=@3/3/v1']);
  });

  it('returns prev_kv when asked and the key existed', async () => {
    expect(await ap.ok({ put: { key: b('k'), value: b('1'), prevKv: true } })).toEqual({ put: { header: { revision: 2 } } });
    const r = await ap.ok({ put: { key: b('k'), value: b('2'), prevKv: true } });
    expect('put' in r && show([r.put.prevKv!])).toEqual(['k=1@2/2/v1']);
    const noPrev = await ap.ok({ put: { key: b('k'), value: b('3') } });
    expect(noPrev).toEqual({ put: { header: { revision: 4 } } });
  });

  it('attaches leases, and ignore_value / ignore_lease keep the current ones', async () => {
    await ap.grant(7, 9);
    await ap.put('k', 'v1', 7);
    expect(await get('k')).toEqual(['k=v1@2/2/v1/l7']);
    await ap.ok({ put: { key: b('k'), ignoreValue: true, lease: 9 } });
    expect(await get('k')).toEqual(['k=v1@3/2/v2/l9']);
    await ap.ok({ put: { key: b('k'), value: b('v2'), ignoreLease: true } });
    expect(await get('k')).toEqual(['k=v2@4/2/v3/l9']);
    await ap.ok({ put: { key: b('k'), ignoreValue: true, ignoreLease: true, prevKv: true } });
    expect(await get('k')).toEqual(['k=v2@5/2/v4/l9']);
    await ap.ok({ put: { key: b('k'), value: b('v3') } }); // a plain put detaches the lease
    expect(await get('k')).toEqual(['k=v3@6/2/v5']);
  });

  it.each<[string, MvccRequest, string, string]>([
    ['ignore_value on a missing key', { put: { key: b('nope'), ignoreValue: true } }, 'ERR_KEY_NOT_FOUND', 'etcdserver: key not found'],
    ['ignore_lease on a missing key', { put: { key: b('nope'), ignoreLease: true } }, 'ERR_KEY_NOT_FOUND', 'etcdserver: key not found'],
    ['ignore_value with a value', { put: { key: b('k'), value: b('x'), ignoreValue: true } }, 'ERR_VALUE_PROVIDED', 'etcdserver: value is provided'],
    ['ignore_lease with a lease', { put: { key: b('k'), lease: 3, ignoreLease: true } }, 'ERR_LEASE_PROVIDED', 'etcdserver: lease is provided'],
    ['an empty key', { put: { key: Buffer.alloc(0), value: b('x') } }, 'ERR_EMPTY_KEY', 'etcdserver: key is not provided'],
    ['a missing key field', { put: { value: b('x') } as never }, 'ERR_EMPTY_KEY', 'etcdserver: key is not provided'],
    ['a negative lease', { put: { key: b('k'), lease: -1 } }, 'ERR_INVALID_ARGUMENT', 'mvcc: invalid argument: lease must not be negative'],
    ['a string key', { put: { key: 'k' as never } }, 'ERR_INVALID_ARGUMENT', 'mvcc: invalid argument: key must be a Buffer'],
    ['an empty delete key', { deleteRange: { key: Buffer.alloc(0) } }, 'ERR_EMPTY_KEY', 'etcdserver: key is not provided'],
    ['an unknown request', { frobnicate: {} } as never, 'ERR_INVALID_ARGUMENT', 'mvcc: invalid argument: unknown request kind'],
  ])('rejects %s without changing anything', async (_n, req, code, message) => {
    await ap.put('k', 'v');
    const before = await store.hashKV();
    const r = await ap.result(req);
    expect(r.status).toBe('error');
    if (r.status === 'error') {
      expect(r.error.code).toBe(code);
      expect(r.error.message).toBe(message);
    }
    expect(store.revision).toBe(2);
    expect(store.appliedIndex).toBe(2); // the entry still counts as applied
    expect(await store.hashKV()).toEqual(before);
  });

  describe('delete range', () => {
    beforeEach(async () => {
      for (const k of ['a', 'ab', 'abc', 'b', 'c']) await ap.put(k, k); // revs 2..6
      await ap.put(bytes(0x00), 'z'); // 7
      await ap.put(bytes(0xff), 'f'); // 8
    });

    it.each<[string, Buffer, Buffer | undefined, string[]]>([
      ['one key', b('ab'), undefined, ['ab']],
      ['a missing key', b('zz'), undefined, []],
      ['[ab, b)', b('ab'), b('b'), ['ab', 'abc']],
      ['prefix a', b('a'), prefixEnd(b('a')), ['a', 'ab', 'abc']],
      ['from b on', b('b'), ALL, ['b', 'c', '\xff']],
      ['everything', bytes(0), ALL, ['\0', 'a', 'ab', 'abc', 'b', 'c', '\xff']],
      ['an empty range', b('c'), b('a'), []],
    ])('deletes %s', async (_n, key, rangeEnd, gone) => {
      const r = await ap.ok({ deleteRange: rangeEnd ? { key, rangeEnd, prevKv: true } : { key, prevKv: true } });
      if (!('deleteRange' in r)) throw new Error('wrong response');
      expect(r.deleteRange.deleted).toBe(gone.length);
      expect(r.deleteRange.prevKvs.map((kv) => kv.key.toString('latin1'))).toEqual(gone);
      // one revision for the whole delete, none when nothing was deleted (etcd)
      expect(r.deleteRange.header.revision).toBe(gone.length > 0 ? 9 : 8);
      expect(store.revision).toBe(gone.length > 0 ? 9 : 8);
      const left = (await store.range({ key: bytes(0), rangeEnd: ALL })).kvs.map((kv) => kv.key.toString('latin1'));
      expect(left.filter((k) => gone.includes(k))).toEqual([]);
      expect(left.length + gone.length).toBe(7);
      // history still has them
      expect((await store.range({ key: bytes(0), rangeEnd: ALL, revision: 8, countOnly: true })).count).toBe(7);
    });

    it('returns no prev_kvs unless asked', async () => {
      const r = await ap.ok({ deleteRange: { key: b('a'), rangeEnd: b('b') } });
      expect(r).toEqual({ deleteRange: { header: { revision: 9 }, deleted: 3, prevKvs: [] } });
    });
  });
});
