import fc from 'fast-check';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore, type MvccStoreOptions } from '../../src/mvcc/index.js';
import { curKey } from '../../src/mvcc/keys.js';
import { BloomFilter, LiveKeys } from '../../src/mvcc/livekeys.js';
import { Lock } from '../../src/lock.js';
import { encodeCur, encodeEvt, encodeGrant, encodeHistFull, encodeHistMarker, packValue } from '../../src/mvcc/records.js';
import type { ApplyEntry, MvccRequest } from '../../src/mvcc/types.js';
import { ALL, Applier, b, norm, removeTempDirs, tempDir } from './helpers.js';

afterEach(removeTempDirs);

const keyOf = (i: number): Buffer => b(`k/${String(i).padStart(6, '0')}`);

describe('BloomFilter', () => {
  it('has no false negatives and few false positives at capacity', () => {
    const f = new BloomFilter(20_000);
    for (let i = 0; i < 20_000; i++) f.add(keyOf(i));
    for (let i = 0; i < 20_000; i++) expect(f.mayContain(keyOf(i))).toBe(true);
    let fp = 0;
    for (let i = 20_000; i < 40_000; i++) if (f.mayContain(keyOf(i))) fp++;
    expect(fp / 20_000).toBeLessThan(0.03); // ~1% expected at 10 bits per key
    expect(f.byteLength).toBeLessThanOrEqual(Math.ceil((20_000 * 10) / 8) + 8);
  });

  it('hashes key[from..] as the key itself', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (u) => {
        const key = Buffer.from(u);
        const f = new BloomFilter(4);
        f.add(curKey(key), 1);
        expect(f.mayContain(key)).toBe(true);
      }),
    );
  });
});

describe('LiveKeys', () => {
  it('a build holds every CURRENT key, including keys inserted while it scans', async () => {
    const dir = await tempDir('livekeys');
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    try {
      const batch = db.batch();
      for (let i = 0; i < 5000; i++) batch.put(curKey(keyOf(i)), b('x'));
      batch.put(b('h-not-current'), b('x')); // other tables are not keys
      await batch.write();
      const lock = new Lock();
      const lk = new LiveKeys({ db, lock, closing: false }, 16);
      expect(lk.mayExist(keyOf(999_999))).toBe(true); // no filter yet: anything may exist
      lk.kick();
      // An insert applied while the build scans (as a batch would: under the lock).
      await lock.run(async () => {
        await db.put(curKey(keyOf(7777)), b('x'));
        lk.inserted(keyOf(7777));
      });
      await lk.ready();
      for (let i = 0; i < 5000; i++) expect(lk.mayExist(keyOf(i))).toBe(true);
      expect(lk.mayExist(keyOf(7777))).toBe(true);
      let fp = 0;
      for (let i = 10_000; i < 20_000; i++) if (lk.mayExist(keyOf(i))) fp++;
      expect(fp).toBeLessThan(500);
      // Over capacity: a rebuild sized to the live keys starts on the next kick. These inserts
      // are never written (as after a failed batch): the rebuild, a fresh scan, drops them.
      const before = lk.byteLength;
      for (let i = 20_000; i < 40_000; i++) lk.inserted(keyOf(i));
      lk.kick();
      await lk.ready();
      expect(lk.byteLength).toBeGreaterThan(before);
      for (let i = 0; i < 5000; i++) expect(lk.mayExist(keyOf(i))).toBe(true);
      expect(lk.mayExist(keyOf(7777))).toBe(true);
      let stale = 0;
      for (let i = 20_000; i < 40_000; i++) if (lk.mayExist(keyOf(i))) stale++;
      expect(stale).toBeLessThan(500);
      await lk.stop();
    } finally {
      await db.close();
    }
  });
});

/** Puts with prevKv: a false "absent" from the filter would show as a missing prevKv / version 1. */
async function putAll(ap: Applier, keys: number[], tag: string): Promise<Array<{ version: number; prev: string | undefined }>> {
  const out: Array<{ version: number; prev: string | undefined }> = [];
  for (const i of keys) {
    const r = await ap.ok({ put: { key: keyOf(i), value: b(`${tag}${i}`), prevKv: true } });
    if (!('put' in r)) throw new Error('not a put response');
    const got = await ap.store.range({ key: keyOf(i) });
    out.push({ version: got.kvs[0]!.version, prev: r.put.prevKv?.value.toString() });
  }
  return out;
}

describe('MvccStore with the live-key filter', () => {
  it('finds the previous record of every live key after a restart, and none of deleted or compacted keys', async () => {
    const dir = await tempDir();
    let s = await MvccStore.open(dir, { liveKeyFilterKeys: 64 });
    try {
      const ap = new Applier(s);
      const keys = Array.from({ length: 300 }, (_, i) => i);
      expect(await putAll(ap, keys, 'a')).toEqual(keys.map(() => ({ version: 1, prev: undefined })));
      await ap.del(keyOf(0), keyOf(100)); // keys 0..99 deleted
      expect(s.keyCount).toBe(200);
      await ap.ok({ compaction: { revision: s.revision } });
      await s.compactionDone();
      await s.close();

      s = await MvccStore.open(dir, { liveKeyFilterKeys: 64 });
      await s.liveKeyFilterReady();
      expect(s.keyCount).toBe(200); // counted by the filter's scan
      const ap2 = new Applier(s);
      expect(await putAll(ap2, keys, 'b')).toEqual(keys.map((i) => (i < 100 ? { version: 1, prev: undefined } : { version: 2, prev: `a${i}` })));
      expect(s.keyCount).toBe(300);
      // deleted again in the same batch as its re-insert: the batch's own writes win
      const r = await s.applyBatch([
        { index: ++ap2.index, request: { deleteRange: { key: keyOf(5) } } },
        { index: ++ap2.index, request: { put: { key: keyOf(5), value: b('c'), prevKv: true } } },
        { index: ++ap2.index, request: { put: { key: keyOf(5), value: b('d'), prevKv: true } } },
      ]);
      expect(norm(r.map((x) => (x.status === 'ok' && 'put' in x.response ? x.response.put.prevKv?.value : undefined)))).toEqual([
        undefined,
        undefined,
        norm(b('c')),
      ]);
    } finally {
      await s.close();
    }
  });

  it('a restored store builds its filter from the restored keys', async () => {
    const dirA = await tempDir();
    const dirB = await tempDir();
    const a = await MvccStore.open(dirA);
    const ap = new Applier(a);
    const keys = Array.from({ length: 200 }, (_, i) => i);
    await putAll(ap, keys, 'a');
    await ap.del(keyOf(50));
    const snap = a.snapshot();
    const restored = await MvccStore.restore(dirB, snap, { liveKeyFilterKeys: 16 });
    await a.close();
    try {
      await restored.liveKeyFilterReady();
      const got = await putAll(new Applier(restored), keys, 'b');
      expect(got).toEqual(keys.map((i) => (i === 50 ? { version: 1, prev: undefined } : { version: 2, prev: `a${i}` })));
    } finally {
      await restored.close();
    }
  });

  it('gives the same results and hash with or without the filter, through rebuilds', async () => {
    // Random puts, deletes and lease revokes over a small key space, with a filter small enough
    // to be rebuilt many times while batches are applied (builds run concurrently with them).
    const gen = fc.array(
      fc.oneof(
        {
          arbitrary: fc
            .record({ k: fc.integer({ min: 0, max: 150 }), lease: fc.constantFrom(0, 0, 0, 7), prev: fc.boolean() })
            .map(({ k, lease, prev }): MvccRequest => ({ put: { key: keyOf(k), value: b(`v${k}`), lease, prevKv: prev } })),
          weight: 8,
        },
        fc.integer({ min: 0, max: 150 }).map((k): MvccRequest => ({ deleteRange: { key: keyOf(k), rangeEnd: keyOf(k + 3), prevKv: true } })),
        fc.constant<MvccRequest>({ leaseRevoke: { id: 7 } }),
        fc.constant<MvccRequest>({ leaseGrant: { id: 7, ttl: 60 } }),
      ),
      { minLength: 100, maxLength: 400 },
    );
    await fc.assert(
      fc.asyncProperty(gen, fc.integer({ min: 1, max: 40 }), async (reqs, size) => {
        const run = async (opts: MvccStoreOptions): Promise<unknown> => {
          const s = await MvccStore.open(await tempDir('lkprop'), opts);
          try {
            const results: unknown[] = [];
            let index = 0;
            for (let i = 0; i < reqs.length; i += size) {
              const entries: ApplyEntry[] = reqs.slice(i, i + size).map((request) => ({ index: ++index, request }));
              results.push(...(await s.applyBatch(entries)).map(norm));
            }
            return { results, hash: await s.hashKV(), all: norm(await s.range({ key: b('\0'), rangeEnd: ALL })) };
          } finally {
            await s.close();
          }
        };
        expect(await run({ liveKeyFilterKeys: 2 })).toEqual(await run({ liveKeyFilterKeys: 0 }));
      }),
      // A failure shrinks within the test's time, so its stores are closed and removed.
      { numRuns: 8, interruptAfterTimeLimit: 50_000 },
    );
  }, 60_000);

  it('stays bounded under churn: the size follows the live keys, not the keys ever inserted', async () => {
    const s = await MvccStore.open(await tempDir(), { liveKeyFilterKeys: 16 });
    try {
      let index = 0;
      for (let round = 0; round < 40; round++) {
        // 100 new keys in, the previous round's 100 out: 100 live keys at every batch boundary
        const entries: ApplyEntry[] = [];
        for (let j = 0; j < 100; j++) entries.push({ index: ++index, request: { put: { key: keyOf(round * 100 + j), value: b('v') } } });
        if (round > 0) entries.push({ index: ++index, request: { deleteRange: { key: keyOf((round - 1) * 100), rangeEnd: keyOf(round * 100) } } });
        await s.applyBatch(entries);
        await s.liveKeyFilterReady();
        // at most two filters (in use, being built) of twice the live keys (with this round's
        // inserts counted before its deletes) at 10 bits per key
        expect(s.liveKeyFilterBytes).toBeLessThanOrEqual(2 * ((2 * 200 * 10) / 8 + 8));
      }
      expect((await s.range({ key: b('\0'), rangeEnd: ALL, countOnly: true })).count).toBe(100);
    } finally {
      await s.close();
    }
  });
});

describe('record encodings', () => {
  // The hand-written encoder must give packr's bytes: stored records and HashKV depend on them.
  const uint = fc.oneof(fc.constantFrom(0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.nat(), fc.maxSafeNat());
  const bytesOf = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.constantFrom(255, 256, 65535, 65536).map((n) => new Uint8Array(n).fill(3)),
  );
  it('are byte for byte what msgpackr writes', () => {
    fc.assert(
      fc.property(bytesOf, uint, uint, uint, uint, uint, (u, c, m, v, l, sub) => {
        const value = Buffer.from(u);
        const kv = { key: b('k'), value, createRevision: c, modRevision: m, version: v, lease: l };
        // hex: deep equality of large Buffers is slow
        const same = (x: Buffer, y: Buffer): void => expect(x.toString('hex')).toBe(y.toString('hex'));
        same(encodeCur(kv, sub), packValue([value, c, m, v, l, sub]));
        same(encodeHistFull(kv), packValue([value, c, v, l]));
        same(encodeHistMarker(kv), packValue([c, v, l]));
        same(encodeEvt(value, 0x50, m, sub), packValue([value, 0x50, m, sub]));
        same(encodeGrant(l), packValue([l]));
      }),
    );
  });

  it('fall back to msgpackr for numbers outside the fast path', () => {
    expect(encodeGrant(-5)).toEqual(packValue([-5]));
    expect(encodeGrant(1.5)).toEqual(packValue([1.5]));
  });
});
