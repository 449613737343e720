import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MvccStore } from '../../src/mvcc/index.js';
import type { RangeRequest, SortOrder, SortTarget } from '../../src/api/kv.js';
import { ALL, Applier, b, bytes, prefixEnd, show, tempStore } from './helpers.js';

/** Keys including 0x00 and 0xff bytes, in byte order. */
const K = {
  nul: bytes(0x00),
  nul1: bytes(0x00, 0x01),
  a: b('a'),
  aNul: bytes(0x61, 0x00),
  ab: b('ab'),
  abc: b('abc'),
  b: b('b'),
  ff: bytes(0xff),
  ffff: bytes(0xff, 0xff),
};

describe('range', () => {
  let store: MvccStore;
  let cleanup: () => Promise<void>;
  let ap: Applier;
  /** Revision after the initial load, before the updates. */
  let loaded: number;

  beforeAll(async () => {
    ({ store, cleanup } = await tempStore());
    ap = new Applier(store);
    // rev 2..10: one put per key, in this order (so create revisions differ from key order)
    for (const k of [K.b, K.a, K.ff, K.nul, K.abc, K.aNul, K.ffff, K.ab, K.nul1]) await ap.put(k, Buffer.concat([b('v'), k]));
    loaded = store.revision;
    // updates: versions and mod revisions diverge from create order; values chosen for VALUE sort
    await ap.put(K.a, b('zz')); // a: v2
    await ap.put(K.a, b('zzz')); // a: v3
    await ap.put(K.b, b('m')); // b: v2
    await ap.del(K.abc); // gone
  });
  afterAll(async () => cleanup());

  it('starts at revision 1 and counts one revision per write', () => {
    expect(loaded).toBe(10);
    expect(store.revision).toBe(14);
  });

  const keysOf = async (req: RangeRequest): Promise<string[]> => (await store.range(req)).kvs.map((kv) => kv.key.toString('hex'));
  const hex = (...ks: Buffer[]): string[] => ks.map((k) => k.toString('hex'));

  it.each<[string, RangeRequest, Buffer[]]>([
    ['one key', { key: K.a }, [K.a]],
    ['one binary key', { key: K.aNul }, [K.aNul]],
    ['one 0x00 key', { key: K.nul }, [K.nul]],
    ['a missing key', { key: b('zzz') }, []],
    ['a deleted key', { key: K.abc }, []],
    ['[a, b)', { key: K.a, rangeEnd: K.b }, [K.a, K.aNul, K.ab]],
    ['prefix a', { key: K.a, rangeEnd: prefixEnd(K.a) }, [K.a, K.aNul, K.ab]],
    ['prefix 0x00', { key: K.nul, rangeEnd: prefixEnd(K.nul) }, [K.nul, K.nul1]],
    ['prefix 0xff (range end "\\0")', { key: K.ff, rangeEnd: prefixEnd(K.ff) }, [K.ff, K.ffff]],
    ['from b on (range end "\\0")', { key: K.b, rangeEnd: ALL }, [K.b, K.ff, K.ffff]],
    ['everything', { key: K.nul, rangeEnd: ALL }, [K.nul, K.nul1, K.a, K.aNul, K.ab, K.b, K.ff, K.ffff]],
    ['range end before key', { key: K.b, rangeEnd: K.a }, []],
    ['range end equal to key', { key: K.b, rangeEnd: K.b }, []],
    ['[0x00 0x01, a 0x00)', { key: K.nul1, rangeEnd: K.aNul }, [K.nul1, K.a]],
  ])('selects %s', async (_name, req, want) => {
    expect(await keysOf(req)).toEqual(hex(...want));
    const r = await store.range({ ...req, countOnly: true });
    expect(r.count).toBe(want.length);
    expect(r.kvs).toEqual([]);
  });

  it('returns full key-values with revisions and versions, and the current header', async () => {
    const r = await store.range({ key: K.a, rangeEnd: K.b });
    expect(r.header.revision).toBe(14);
    expect(show(r.kvs)).toEqual(['a=zzz@12/3/v3', 'a\0=va\0@7/7/v1', 'ab=vab@9/9/v1']);
  });

  it.each<[number | undefined, string[], boolean]>([
    [undefined, ['a', 'a\0', 'ab', 'b'], false],
    [0, ['a', 'a\0', 'ab', 'b'], false],
    [-1, ['a', 'a\0', 'ab', 'b'], false],
    [1, ['a'], true],
    [3, ['a', 'a\0', 'ab'], true],
    [4, ['a', 'a\0', 'ab', 'b'], false],
    [9, ['a', 'a\0', 'ab', 'b'], false],
  ])('limit %s: keys %j, more %s, count of all', async (limit, want, more) => {
    const r = await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), ...(limit === undefined ? {} : { limit }) });
    expect(r.kvs.map((kv) => kv.key.toString('latin1'))).toEqual(want);
    expect(r.more).toBe(more);
    expect(r.count).toBe(4);
  });

  // keys a (create 3, mod 12, v3, "zzz"), a\0 (7, 7, v1, "va\0"), ab (9, 9, v1, "vab"), b (2, 13, v2, "m")
  it.each<[SortTarget, SortOrder | undefined, string[]]>([
    ['KEY', undefined, ['a', 'a\0', 'ab', 'b']],
    ['KEY', 'NONE', ['a', 'a\0', 'ab', 'b']],
    ['KEY', 'ASCEND', ['a', 'a\0', 'ab', 'b']],
    ['KEY', 'DESCEND', ['b', 'ab', 'a\0', 'a']],
    ['VERSION', 'ASCEND', ['a\0', 'ab', 'b', 'a']],
    ['VERSION', 'DESCEND', ['a', 'b', 'a\0', 'ab']], // ties keep key order
    ['VERSION', 'NONE', ['a\0', 'ab', 'b', 'a']], // etcd: a non-KEY target sorts ASCEND
    ['CREATE', 'ASCEND', ['b', 'a', 'a\0', 'ab']],
    ['CREATE', 'DESCEND', ['ab', 'a\0', 'a', 'b']],
    ['MOD', 'ASCEND', ['a\0', 'ab', 'a', 'b']],
    ['MOD', 'DESCEND', ['b', 'a', 'ab', 'a\0']],
    ['VALUE', 'ASCEND', ['b', 'a\0', 'ab', 'a']],
    ['VALUE', 'DESCEND', ['a', 'ab', 'a\0', 'b']],
  ])('sorts by %s %s', async (sortTarget, sortOrder, want) => {
    const req: RangeRequest = { key: K.a, rangeEnd: prefixEnd(K.b), sortTarget, ...(sortOrder ? { sortOrder } : {}) };
    const r = await store.range(req);
    expect(r.kvs.map((kv) => kv.key.toString('latin1'))).toEqual(want);
    expect(r.count).toBe(4);
  });

  it('sorts before applying the limit', async () => {
    const r = await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), sortTarget: 'MOD', sortOrder: 'DESCEND', limit: 2 });
    expect(r.kvs.map((kv) => kv.key.toString('latin1'))).toEqual(['b', 'a']);
    expect(r.more).toBe(true);
    expect(r.count).toBe(4);
  });

  it('with a non-KEY target and order NONE, sorts only the first limit+1 keys (etcd 3.4)', async () => {
    const r = await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), sortTarget: 'MOD', limit: 2 });
    // fetched a (12), a\0 (7), ab (9) in key order; sorted by mod: a\0, ab, a; truncated to 2
    expect(r.kvs.map((kv) => kv.key.toString('latin1'))).toEqual(['a\0', 'ab']);
    expect(r.more).toBe(true);
  });

  it.each<[string, Partial<RangeRequest>, string[]]>([
    ['minModRevision', { minModRevision: 9 }, ['a', 'ab', 'b']],
    ['maxModRevision', { maxModRevision: 9 }, ['a\0', 'ab']],
    ['minCreateRevision', { minCreateRevision: 7 }, ['a\0', 'ab']],
    ['maxCreateRevision', { maxCreateRevision: 3 }, ['a', 'b']],
    ['mod and create together', { minModRevision: 8, maxCreateRevision: 8 }, ['a', 'b']],
    ['filter and limit', { minModRevision: 9, limit: 1 }, ['a']],
  ])('filters by %s (count stays the whole range)', async (_n, f, want) => {
    const r = await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), ...f });
    expect(r.kvs.map((kv) => kv.key.toString('latin1'))).toEqual(want);
    expect(r.count).toBe(4);
    expect(r.more).toBe(f.limit !== undefined && want.length > 0 && f.limit < 3);
  });

  it('keys_only drops values but keeps the rest', async () => {
    const r = await store.range({ key: K.a, rangeEnd: K.b, keysOnly: true });
    expect(show(r.kvs)).toEqual(['a=@12/3/v3', 'a\0=@7/7/v1', 'ab=@9/9/v1']);
  });

  it('count_only returns only the count, even with a limit', async () => {
    const r = await store.range({ key: K.nul, rangeEnd: ALL, countOnly: true, limit: 1 });
    expect(r).toEqual({ header: { revision: 14 }, kvs: [], more: false, count: 8 });
  });

  it('reads older revisions, including deleted keys and old values', async () => {
    const at = async (revision: number): Promise<string[]> => show((await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), revision })).kvs);
    expect(await at(1)).toEqual([]);
    expect(await at(2)).toEqual(['b=vb@2/2/v1']);
    expect(await at(10)).toEqual(['a=va@3/3/v1', 'a\0=va\0@7/7/v1', 'ab=vab@9/9/v1', 'abc=vabc@6/6/v1', 'b=vb@2/2/v1']);
    expect(await at(11)).toEqual(['a=zz@11/3/v2', 'a\0=va\0@7/7/v1', 'ab=vab@9/9/v1', 'abc=vabc@6/6/v1', 'b=vb@2/2/v1']);
    expect(await at(13)).toEqual(['a=zzz@12/3/v3', 'a\0=va\0@7/7/v1', 'ab=vab@9/9/v1', 'abc=vabc@6/6/v1', 'b=m@13/2/v2']);
    expect(await at(14)).toEqual(['a=zzz@12/3/v3', 'a\0=va\0@7/7/v1', 'ab=vab@9/9/v1', 'b=m@13/2/v2']);
    // one key at old revisions, and the header is always the current revision
    const r = await store.range({ key: K.abc, revision: 13 });
    expect(show(r.kvs)).toEqual(['abc=vabc@6/6/v1']);
    expect(r.header.revision).toBe(14);
    expect((await store.range({ key: K.abc, revision: 5 })).kvs).toEqual([]);
    // limit, count and sort at an old revision
    const old = await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), revision: 10, limit: 2, sortOrder: 'DESCEND' });
    expect(old.kvs.map((kv) => kv.key.toString('latin1'))).toEqual(['b', 'abc']);
    expect(old.count).toBe(5);
    expect(old.more).toBe(true);
    expect((await store.range({ key: K.a, rangeEnd: prefixEnd(K.b), revision: 10, countOnly: true })).count).toBe(5);
  });

  it('rejects a future revision and an empty key', async () => {
    await expect(store.range({ key: K.a, revision: 15 })).rejects.toMatchObject({
      code: 'ERR_FUTURE_REVISION',
      message: 'mvcc: required revision is a future revision',
    });
    await expect(store.range({ key: Buffer.alloc(0) })).rejects.toMatchObject({
      code: 'ERR_EMPTY_KEY',
      message: 'etcdserver: key is not provided',
    });
    await expect(store.range({ key: K.a, sortOrder: 'SIDEWAYS' as SortOrder })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(store.range({ key: K.a, limit: 1.5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('serves a range as an applied entry with the same answer', async () => {
    const r = await ap.ok({ range: { key: K.a, rangeEnd: K.b } });
    expect(r).toEqual({ range: await store.range({ key: K.a, rangeEnd: K.b }) });
    expect(store.revision).toBe(14); // a read does not make a revision
  });
});

describe('range over compacted history', () => {
  it('fails below the compaction point and works at and above it', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const ap = new Applier(store);
      for (let i = 0; i < 5; i++) await ap.put('k', `v${i}`); // revs 2..6
      await ap.ok({ compaction: { revision: 4 } });
      await expect(store.range({ key: b('k'), revision: 3 })).rejects.toMatchObject({
        code: 'ERR_COMPACTED',
        message: 'mvcc: required revision has been compacted',
      });
      expect(show((await store.range({ key: b('k'), revision: 4 })).kvs)).toEqual(['k=v2@4/2/v3']);
      expect(show((await store.range({ key: b('k'), revision: 5 })).kvs)).toEqual(['k=v3@5/2/v4']);
      expect(show((await store.range({ key: b('k') })).kvs)).toEqual(['k=v4@6/2/v5']);
    } finally {
      await cleanup();
    }
  });
});
