import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRequest, encodeRequest, type MvccStore } from '../../src/mvcc/index.js';
import {
  evtKey,
  histBounds,
  histKey,
  histSeekAt,
  keySpan,
  parseEvtKey,
  parseHistKey,
  REC_DEL,
  REC_PUT,
  sameHistUserKey,
  userKeyOfHist,
} from '../../src/mvcc/keys.js';
import { Packr } from 'msgpackr';
import { encodeCur, packValue, unpackFlat } from '../../src/mvcc/records.js';
import type { MvccRequest } from '../../src/mvcc/types.js';
import { Applier, b, bytes, norm, tempStore } from './helpers.js';

const key = fc.uint8Array({ minLength: 1, maxLength: 6 }).map((u) => Buffer.from(u.map((x) => [0, 1, 0xfe, 0xff, 0x61][x % 5]!)));
const rev = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const sub = fc.integer({ min: 0, max: 0xffff_ffff });

describe('key encoding', () => {
  it('orders history keys by user key, then newest revision first, and round-trips', () => {
    fc.assert(
      fc.property(key, rev, sub, key, rev, sub, (k1, m1, s1, k2, m2, s2) => {
        const a = histKey(k1, m1, s1, REC_PUT);
        const c = histKey(k2, m2, s2, REC_DEL);
        const byKey = Buffer.compare(k1, k2);
        const want = byKey !== 0 ? byKey : m1 !== m2 ? Math.sign(m2 - m1) : s1 !== s2 ? Math.sign(s2 - s1) : -1; // 'P' > 'D'... same rev: P vs D
        const got = Buffer.compare(a, c);
        if (byKey !== 0 || m1 !== m2 || s1 !== s2) expect(got).toBe(want);
        expect(userKeyOfHist(a).equals(k1)).toBe(true);
        expect(parseHistKey(a)).toMatchObject({ main: m1, sub: s1, type: REC_PUT });
        expect(sameHistUserKey(a, c)).toBe(byKey === 0);
      }),
    );
  });

  it('maps user-key ranges onto history keys exactly', () => {
    fc.assert(
      fc.property(key, key, key, rev, (lo, hi, x, m) => {
        const bounds = histBounds(keySpan(lo, hi));
        const toEnd = hi.length === 1 && hi[0] === 0; // range end "\0": every key >= lo
        const inRange = Buffer.compare(x, lo) >= 0 && (toEnd || Buffer.compare(x, hi) < 0);
        const hk = histKey(x, m, 0, REC_PUT);
        const inBounds = bounds !== undefined && Buffer.compare(hk, bounds.gte) >= 0 && Buffer.compare(hk, bounds.lt) < 0;
        expect(inBounds).toBe(inRange);
        // a point span holds exactly the key's records
        const p = histBounds(keySpan(x, undefined))!;
        const other = histKey(lo, m, 0, REC_PUT);
        expect(Buffer.compare(other, p.gte) >= 0 && Buffer.compare(other, p.lt) < 0).toBe(lo.equals(x));
        // everything from `lo` on (range end "\0")
        const all = histBounds(keySpan(lo, bytes(0)))!;
        expect(Buffer.compare(hk, all.gte) >= 0 && Buffer.compare(hk, all.lt) < 0).toBe(Buffer.compare(x, lo) >= 0);
      }),
    );
  });

  it('seeks to the newest record at or below a revision', () => {
    fc.assert(
      fc.property(key, rev, rev, sub, (k, m, at, s) => {
        const hk = histKey(k, m, s, REC_PUT);
        expect(Buffer.compare(hk, histSeekAt(k, at)) >= 0).toBe(m <= at);
      }),
    );
  });

  it('orders event keys by revision then sub-revision', () => {
    fc.assert(
      fc.property(rev, sub, rev, sub, (m1, s1, m2, s2) => {
        const want = m1 !== m2 ? Math.sign(m1 - m2) : Math.sign(s1 - s2);
        expect(Buffer.compare(evtKey(m1, s1), evtKey(m2, s2))).toBe(want);
        expect(parseEvtKey(evtKey(m1, s1))).toEqual({ main: m1, sub: s1 });
      }),
    );
  });
});

describe('request codec', () => {
  it('round-trips requests with binary keys and nested txns', () => {
    const reqs: MvccRequest[] = [
      { put: { key: bytes(0, 0xff), value: bytes(0xff, 0), lease: 2 ** 40, prevKv: true } },
      { deleteRange: { key: b('a'), rangeEnd: bytes(0) } },
      { range: { key: b('a'), rangeEnd: b('b'), limit: 3, revision: 9, sortOrder: 'DESCEND', sortTarget: 'VALUE', keysOnly: true } },
      { compaction: { revision: 12, physical: true } },
      {
        txn: {
          compare: [{ key: b('k'), target: 'VALUE', result: 'EQUAL', value: bytes(0) }],
          success: [{ requestTxn: { success: [{ requestPut: { key: b('x'), value: b('y') } }] } }],
          failure: [{ requestRange: { key: b('k'), rangeEnd: undefined } }],
        },
      },
    ];
    for (const r of reqs) expect(norm(decodeRequest(encodeRequest(r)))).toEqual(norm(r));
    expect(encodeRequest(reqs[4]!).equals(encodeRequest(decodeRequest(encodeRequest(reqs[4]!))))).toBe(true);
  });

  it('rejects what is not a request', () => {
    expect(() => decodeRequest(Buffer.from([0xc1]))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => decodeRequest(encodeRequest({ nope: 1 } as never))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  describe('the binary form of a plain put', () => {
    const put = (p: Record<string, unknown>): MvccRequest => ({ put: p }) as unknown as MvccRequest;
    const binary: { name: string; req: MvccRequest }[] = [
      { name: 'key and value', req: put({ key: b('k'), value: b('v') }) },
      { name: 'no value', req: put({ key: b('k') }) },
      { name: 'empty key and value', req: put({ key: bytes(), value: bytes() }) },
      { name: 'lease, prevKv', req: put({ key: bytes(0, 0xff), value: bytes(0xc1), lease: 2 ** 52, prevKv: true }) },
      { name: 'every boolean false', req: put({ key: b('k'), value: b('v'), lease: 0, prevKv: false, ignoreValue: false, ignoreLease: false }) },
      { name: 'ignore value and lease', req: put({ key: b('k'), ignoreValue: true, ignoreLease: true, value: undefined }) },
    ];
    it.each(binary)('$name: binary, and decodes to the same request', ({ req }) => {
      const data = encodeRequest(req);
      expect(data[0]).toBe(0xc1);
      expect(norm(decodeRequest(data))).toEqual(norm(req));
    });

    // Whatever the layout does not carry as is goes as msgpack, so the store sees (and rejects) it unchanged.
    const fallback: { name: string; req: MvccRequest }[] = [
      { name: 'negative lease', req: put({ key: b('k'), lease: -1 }) },
      { name: 'fractional lease', req: put({ key: b('k'), lease: 1.5 }) },
      { name: 'a boolean that is not one', req: put({ key: b('k'), prevKv: 1 }) },
      { name: 'an unknown field', req: put({ key: b('k'), extra: true }) },
      { name: 'a value that is not bytes', req: put({ key: b('k'), value: 'v' }) },
    ];
    it.each(fallback)('$name: msgpack, and decodes to the same request', ({ req }) => {
      const data = encodeRequest(req);
      expect(data[0]).not.toBe(0xc1);
      expect(norm(decodeRequest(data))).toEqual(norm(req));
    });

    it('round-trips any put (property)', () => {
      const optBool = fc.option(fc.boolean(), { nil: undefined });
      fc.assert(
        fc.property(
          fc.record({
            key: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
            value: fc.option(
              fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
              { nil: undefined },
            ),
            lease: fc.option(fc.maxSafeNat(), { nil: undefined }),
            prevKv: optBool,
            ignoreValue: optBool,
            ignoreLease: optBool,
          }),
          (p) => {
            const data = encodeRequest({ put: p });
            expect(data[0]).toBe(0xc1);
            expect(norm(decodeRequest(data))).toEqual(norm({ put: p }));
          },
        ),
      );
    });

    it('entries written as msgpack before the binary form still decode', () => {
      const legacy = packValue({ put: { key: b('k'), value: b('v'), prevKv: true } });
      expect(legacy[0]).not.toBe(0xc1);
      expect(norm(decodeRequest(legacy))).toEqual(norm({ put: { key: b('k'), value: b('v'), prevKv: true } }));
    });

    it('a malformed binary put is refused as invalid, whatever is cut or added', () => {
      const good = encodeRequest(put({ key: b('key'), value: b('value'), lease: 7, prevKv: true }));
      const bad = [
        ...Array.from({ length: good.length - 1 }, (_, n) => good.subarray(0, n + 1)), // every truncation
        Buffer.concat([good, Buffer.from([0])]), // a trailing byte
        Buffer.from([0xc1, 0x02, 0x00, 0, 0, 0, 0]), // an unknown form
        Buffer.from([0xc1, 0x01, 0x08, 1, 0, 0, 0, 0x6b]), // prevKv's value without its presence bit
      ];
      for (const data of bad) expect(() => decodeRequest(data), data.toString('hex')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    });
  });

  it('a decoded request applies like the original', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const r = await store.apply(1, decodeRequest(encodeRequest({ put: { key: bytes(0, 1), value: b('v') } })));
      expect(r).toEqual({ status: 'ok', response: { put: { header: { revision: 2 } } } });
      expect((await store.range({ key: bytes(0, 1) })).kvs[0]!.value.toString()).toBe('v');
    } finally {
      await cleanup();
    }
  });
});

describe('record decoding', () => {
  // The records' msgpack settings (records.ts): what stores written before unpackFlat hold.
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
  // bin8, bin16 and bin32 lengths; the long ones need no random content
  const arbValue = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.integer({ min: 256, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
  );
  // Buffers compared as hex: a deep equality over 65,536 elements is slow
  const hex = (items: unknown): unknown =>
    Array.isArray(items) ? items.map((x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x)) : items;
  const arbNum = fc.oneof(fc.nat(200), fc.nat(70_000), fc.nat(2 ** 32 + 5), fc.maxSafeNat());

  it('reads what the records hold exactly as msgpackr does', () => {
    fc.assert(
      fc.property(arbValue, arbNum, arbNum, arbNum, arbNum, arbNum, (value, create, mod, version, lease, sub) => {
        const raw = encodeCur({ key: b('k'), value: Buffer.from(value), createRevision: create, modRevision: mod, version, lease }, sub);
        const flat = unpackFlat(raw, 6);
        expect(flat).toBeDefined();
        expect(flat!.every((x, i) => (i === 0) === Buffer.isBuffer(x))).toBe(true);
        expect(hex(flat)).toEqual(hex(packr.unpack(raw)));
        // msgpackr's own encoding of the same items (bin, ints, float64) reads the same way
        const theirs = packr.pack([Buffer.from(value), create, mod, version, lease, sub]);
        expect(hex(unpackFlat(theirs, 6))).toEqual(hex(packr.unpack(theirs)));
      }),
      { numRuns: 200 },
    );
  });

  it('turns down anything else: other lengths, other types, truncated or trailing bytes', () => {
    const raw = encodeCur({ key: b('k'), value: b('value'), createRevision: 300, modRevision: 70_000, version: 1, lease: 2 ** 33 }, 0);
    expect(unpackFlat(raw, 5)).toBeUndefined();
    for (let cut = 0; cut < raw.length; cut++) expect(unpackFlat(raw.subarray(0, cut), 6)).toBeUndefined();
    expect(unpackFlat(Buffer.concat([raw, Buffer.from([0])]), 6)).toBeUndefined();
    expect(unpackFlat(packr.pack([b('v'), -1, 2, 3, 4, 5]), 6)).toBeUndefined(); // negative int
    expect(unpackFlat(packr.pack(['str', 1, 2, 3, 4, 5]), 6)).toBeUndefined(); // a string, not bytes
    expect(unpackFlat(packr.pack({ a: 1 }), 1)).toBeUndefined();
  });
});

describe('hashKV', () => {
  const build = async (s: MvccStore, v: string): Promise<void> => {
    const ap = new Applier(s);
    await ap.put('a', v);
    await ap.put('b', '1');
    await ap.del('a');
    await ap.put('c', '1');
  };

  it('covers history before a delete, and is equal for equal histories', async () => {
    const x = await tempStore();
    const y = await tempStore();
    const z = await tempStore();
    try {
      await build(x.store, 'one');
      await build(y.store, 'one');
      await build(z.store, 'two'); // differs only in a value that was deleted since
      expect(await x.store.hashKV()).toEqual(await y.store.hashKV());
      expect((await x.store.hashKV()).hash).not.toBe((await z.store.hashKV()).hash);
      expect((await x.store.hashKV(3)).hash).not.toBe((await x.store.hashKV(4)).hash);
      expect(await x.store.hashKV(3)).toMatchObject({ revision: 3, compactRevision: 0, header: { revision: 5 } });
      await expect(x.store.hashKV(6)).rejects.toMatchObject({ code: 'ERR_FUTURE_REVISION' });
      // once compacted past the delete, the deleted value no longer matters
      await new Applier(x.store).ok({ compaction: { revision: 5 } });
      await new Applier(z.store).ok({ compaction: { revision: 5 } });
      expect((await x.store.hashKV()).hash).toBe((await z.store.hashKV()).hash);
      await expect(x.store.hashKV(4)).rejects.toMatchObject({ code: 'ERR_COMPACTED' });
    } finally {
      await x.cleanup();
      await y.cleanup();
      await z.cleanup();
    }
  });

  it('does not change at a revision as later writes supersede or delete its versions', async () => {
    const { store, cleanup } = await tempStore();
    try {
      await build(store, 'one');
      const at5 = await store.hashKV(5);
      const ap = new Applier(store);
      await ap.put('b', '2');
      await ap.put('c', '2');
      await ap.del('b');
      expect(await store.hashKV(5)).toEqual({ ...at5, header: { revision: 8 } });
    } finally {
      await cleanup();
    }
  });
});
