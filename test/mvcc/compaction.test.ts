import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore, type MvccStoreOptions } from '../../src/mvcc/index.js';
import { ALL, Applier, b, rawTables, show, removeTempDirs, tempDir, tempStore } from './helpers.js';

/** rev 2 a1, 3 a2, 4 b1, 5 a3, 6 b2, 7 c1, 8 b3, 9 a4, 10 del b, 11 a5 */
async function load(ap: Applier): Promise<void> {
  for (const [k, v] of [
    ['a', 'a1'],
    ['a', 'a2'],
    ['b', 'b1'],
    ['a', 'a3'],
    ['b', 'b2'],
    ['c', 'c1'],
    ['b', 'b3'],
    ['a', 'a4'],
  ])
    await ap.put(k!, v!);
  await ap.del('b');
  await ap.put('a', 'a5');
}

const everything = { key: b('\0'), rangeEnd: ALL };

describe('compaction', () => {
  afterEach(removeTempDirs);

  it('keeps the newest revision <= the compaction point of each live key and drops the rest from disk', async () => {
    for (const step of [10_000, 2, 1]) {
      const dir = await tempDir('compact');
      const opts: MvccStoreOptions = { compactionStep: step };
      const store = await MvccStore.open(dir, opts);
      const ap = new Applier(store);
      await load(ap);
      const r = await ap.ok({ compaction: { revision: 10 } });
      expect(r).toEqual({ compaction: { header: { revision: 11 } } });
      const hashAt10 = await store.hashKV(10); // (deletion may be under way)
      expect(store.revision).toBe(11); // compaction is not a revision
      await ap.put('d', 'd1'); // 12
      await ap.put('a', 'a6'); // 13
      await store.compactionDone();

      expect(show((await store.range({ ...everything, revision: 10 })).kvs)).toEqual(['a=a4@9/2/v4', 'c=c1@7/7/v1']);
      expect(show((await store.range({ ...everything, revision: 11 })).kvs)).toEqual(['a=a5@11/2/v5', 'c=c1@7/7/v1']);
      expect(show((await store.range(everything)).kvs)).toEqual(['a=a6@13/2/v6', 'c=c1@7/7/v1', 'd=d1@12/12/v1']);
      await expect(store.range({ ...everything, revision: 9 })).rejects.toMatchObject({ code: 'ERR_COMPACTED' });
      expect(await store.hashKV(10)).toEqual({ ...hashAt10, header: { revision: 13 } });
      await store.close();
      // on disk: history a4 a5 a6 c1 d1; events of revisions 10 (the delete of b) to 13
      expect(await rawTables(dir)).toEqual({ c: 3, h: 5, e: 4, m: 1 });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['at the current compaction point', 4, 'ERR_COMPACTED', 'mvcc: required revision has been compacted'],
    ['below the current compaction point', 3, 'ERR_COMPACTED', 'mvcc: required revision has been compacted'],
    ['beyond the current revision', 12, 'ERR_FUTURE_REVISION', 'mvcc: required revision is a future revision'],
  ])('rejects compacting %s', async (_n, revision, code, message) => {
    const { store, cleanup } = await tempStore();
    try {
      const ap = new Applier(store);
      await load(ap);
      await ap.ok({ compaction: { revision: 4 } });
      const r = await ap.result({ compaction: { revision } });
      expect(r.status === 'error' && [r.error.code, r.error.message]).toEqual([code, message]);
      expect(store.compactRevision).toBe(4);
    } finally {
      await cleanup();
    }
  });

  it('compacts at the current revision, and twice in a row', async () => {
    const dir = await tempDir('compact');
    const store = await MvccStore.open(dir);
    const ap = new Applier(store);
    await load(ap);
    await ap.ok({ compaction: { revision: 6 } });
    await ap.ok({ compaction: { revision: 11 } });
    await store.compactionDone();
    expect(show((await store.range({ ...everything, revision: 11 })).kvs)).toEqual(['a=a5@11/2/v5', 'c=c1@7/7/v1']);
    await store.close();
    expect(await rawTables(dir)).toEqual({ c: 2, h: 2, e: 1, m: 1 });
    await rm(dir, { recursive: true, force: true });
  });

  it('a fresh store cannot compact at 0 (its compaction point starts at 0)', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const ap = new Applier(store);
      expect(await ap.err({ compaction: { revision: 0 } })).toBe('ERR_COMPACTED');
      expect((await ap.result({ compaction: { revision: 1 } })).status).toBe('ok');
    } finally {
      await cleanup();
    }
  });

  it('finishes a deletion interrupted by a restart', async () => {
    const dir = await tempDir('compact');
    let store = await MvccStore.open(dir, { deferPhysicalCompaction: true });
    const ap = new Applier(store);
    await load(ap);
    await ap.ok({ compaction: { revision: 10 } });
    const hash = await store.hashKV();
    await store.close();
    expect((await rawTables(dir))['h']).toBe(10); // nothing deleted yet
    store = await MvccStore.open(dir);
    expect(store.compactRevision).toBe(10);
    await store.compactionDone();
    expect(await store.hashKV()).toEqual(hash);
    await store.close();
    expect(await rawTables(dir)).toEqual({ c: 2, h: 3, e: 2, m: 1 }); // a4 a5 c1; events 10, 11
    await rm(dir, { recursive: true, force: true });
  });

  it('handles a new compaction arriving while one is being deleted', async () => {
    const dir = await tempDir('compact');
    const store = await MvccStore.open(dir, { compactionStep: 1 });
    const ap = new Applier(store);
    for (let i = 0; i < 30; i++) await ap.put(`k${i % 4}`, `v${i}`); // revs 2..31
    await ap.del('k0'); // 32
    // both compactions land while the first deletion walks one event per step
    const [r1, r2] = await Promise.all([ap.result({ compaction: { revision: 20 } }), ap.result({ compaction: { revision: 32 } })]);
    expect([r1.status, r2.status]).toEqual(['ok', 'ok']);
    await store.compactionDone();
    expect(show((await store.range(everything)).kvs)).toEqual(['k1=v29@31/3/v8', 'k2=v26@28/4/v7', 'k3=v27@29/5/v7']);
    await store.close();
    expect(await rawTables(dir)).toEqual({ c: 3, h: 3, e: 1, m: 1 });
    await rm(dir, { recursive: true, force: true });
  });

  it('reads keys with long histories at every revision (seeks over skipped records)', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const ap = new Applier(store);
      // k: 150 versions; j and l in between, so k's records are both newer and older than each read
      const want = new Map<number, string[]>();
      const state = new Map<string, string>();
      for (let i = 0; i < 150; i++) {
        const k = i % 50 === 7 ? 'j' : i % 50 === 33 ? 'l' : 'k';
        await ap.put(k, `${k}${i}`);
        state.set(k, `${k}${i}`);
        want.set(
          store.revision,
          [...state.entries()].sort().map(([x, v]) => `${x}=${v}`),
        );
      }
      await ap.ok({ compaction: { revision: 40 } });
      await store.compactionDone();
      for (let rev = 40; rev <= store.revision; rev += 3) {
        const got = (await store.range({ key: b('a'), rangeEnd: b('z'), revision: rev })).kvs.map((kv) => `${kv.key}=${kv.value}`);
        expect(got).toEqual(want.get(rev));
        const one = (await store.range({ key: b('k'), revision: rev })).kvs.map((kv) => `${kv.key}=${kv.value}`);
        expect(one).toEqual(want.get(rev)!.filter((x) => x.startsWith('k=')));
      }
    } finally {
      await cleanup();
    }
  });

  it('watch replay from the compaction point still sees a delete at that point', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const ap = new Applier(store);
      await load(ap);
      await ap.ok({ compaction: { revision: 10 } });
      await store.compactionDone();
      await expect(store.eventsSince(9, b('a'), ALL)).rejects.toMatchObject({ code: 'ERR_COMPACTED' });
      const r = await store.eventsSince(10, b('a'), ALL);
      expect(r.events.map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision}`)).toEqual(['DELETE b@10', 'PUT a@11']);
    } finally {
      await cleanup();
    }
  });
});
