import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { ApplyEntry, MvccRequest } from '../../src/mvcc/types.js';
import { ALL, Applier, b, norm, show, removeTempDirs, tempDir, tempStore } from './helpers.js';

const putReq = (k: string, v: string): MvccRequest => ({ put: { key: b(k), value: b(v) } });
const entries = (from: number, reqs: Array<MvccRequest | undefined>): ApplyEntry[] =>
  reqs.map((request, i) => (request === undefined ? { index: from + i } : { index: from + i, request }));

describe('applying Raft entries', () => {
  afterEach(removeTempDirs);

  it('skips entries at or below the applied index, and applies the rest', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const first = await store.applyBatch(entries(1, [putReq('a', '1'), putReq('b', '1'), putReq('c', '1')]));
      expect(first.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
      // Raft replays 2..5 after a restart: 2 and 3 were applied
      const again = await store.applyBatch(entries(2, [putReq('b', 'X'), putReq('c', 'X'), putReq('d', '1'), putReq('e', '1')]));
      expect(again.map((r) => r.status)).toEqual(['skipped', 'skipped', 'ok', 'ok']);
      expect(store.appliedIndex).toBe(5);
      expect(show((await store.range({ key: b('a'), rangeEnd: ALL })).kvs)).toEqual(['a=1@2/2/v1', 'b=1@3/3/v1', 'c=1@4/4/v1', 'd=1@5/5/v1', 'e=1@6/6/v1']);
      // a batch of only old entries writes nothing
      expect((await store.applyBatch(entries(1, [putReq('z', '1')]))).map((r) => r.status)).toEqual(['skipped']);
      expect(store.revision).toBe(6);
    } finally {
      await cleanup();
    }
  });

  it('advances the applied index over rejected requests and entries without a request', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const rs = await store.applyBatch(
        entries(10, [putReq('a', '1'), { put: { key: b('missing'), ignoreValue: true } }, undefined, { compaction: { revision: 99 } }, putReq('a', '2')]),
      );
      expect(rs.map((r) => (r.status === 'error' ? r.error.code : r.status === 'ok' ? r.response : r.status))).toEqual([
        { put: { header: { revision: 2 } } },
        'ERR_KEY_NOT_FOUND',
        { noop: { header: { revision: 2 } } },
        'ERR_FUTURE_REVISION',
        { put: { header: { revision: 3 } } },
      ]);
      expect(store.appliedIndex).toBe(14);
      expect(store.revision).toBe(3);
      const noop = await store.apply(15);
      expect(noop).toEqual({ status: 'ok', response: { noop: { header: { revision: 3 } } } });
      expect(store.appliedIndex).toBe(15);
    } finally {
      await cleanup();
    }
  });

  it('rejects a batch in which a put meets a corrupt record, and applies none of it', async () => {
    const { store, cleanup } = await tempStore();
    try {
      await store.applyBatch(entries(1, [putReq('a', '1')]));
      // Not msgpack: decoding a's current record throws CorruptError, which must abort the batch.
      const db = (store as unknown as { db: { put(k: Buffer, v: Buffer): Promise<void> } }).db;
      await db.put(Buffer.concat([b('c'), b('a')]), Buffer.from([0xc1]));
      await expect(store.applyBatch(entries(2, [putReq('b', '1'), putReq('a', '2')]))).rejects.toMatchObject({ code: 'ERR_CORRUPT' });
      expect(store.appliedIndex).toBe(1);
      expect(store.revision).toBe(2);
      expect((await store.range({ key: b('b') })).count).toBe(0);
    } finally {
      await cleanup();
    }
  });

  it('rejects a batch with an invalid index and applies none of it', async () => {
    const { store, cleanup } = await tempStore();
    try {
      await expect(
        store.applyBatch([
          { index: 1, request: putReq('a', '1') },
          { index: 2.5, request: putReq('b', '1') },
        ]),
      ).rejects.toMatchObject({
        code: 'ERR_INTERNAL',
      });
      expect(store.appliedIndex).toBe(0);
      expect((await store.range({ key: b('a') })).count).toBe(0);
    } finally {
      await cleanup();
    }
  });

  it('reopens with the same revision, compaction point, applied index and data', async () => {
    const dir = await tempDir('restart');
    let store = await MvccStore.open(dir);
    const ap = new Applier(store);
    await ap.grant(1, 2);
    for (let i = 0; i < 20; i++) await ap.put(`k${i % 5}`, `v${i}`, i % 3);
    await ap.del('k1');
    await ap.ok({ compaction: { revision: 10 } });
    await store.compactionDone();
    await ap.put('k9', 'late');
    const snapshotOf = async (s: MvccStore): Promise<unknown> =>
      norm({
        rev: s.revision,
        compact: s.compactRevision,
        applied: s.appliedIndex,
        all: await s.range({ key: b('\0'), rangeEnd: ALL }),
        at12: await s.range({ key: b('\0'), rangeEnd: ALL, revision: 12 }),
        hash: await s.hashKV(),
        events: await s.eventsSince(10, b('\0'), ALL, { prevKv: true }),
        leases: await s.leases(),
      });
    const before = await snapshotOf(store);
    await store.close();
    store = await MvccStore.open(dir);
    expect(await snapshotOf(store)).toEqual(before);
    // applying the same entry again after the restart is skipped
    expect(await store.apply(ap.index, putReq('k9', 'again'))).toEqual({ status: 'skipped' });
    expect(await snapshotOf(store)).toEqual(before);
    expect((await store.apply(ap.index + 1, putReq('k9', 'next'))).status).toBe('ok');
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows readers whole batches only', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const N = 300;
      const counts = new Set<string>();
      let writing = true;
      const reader = (async () => {
        while (writing) {
          const r = await store.range({ key: b('k'), rangeEnd: b('l'), countOnly: true });
          counts.add(`${r.header.revision}:${r.count}`);
          const one = await store.range({ key: b(`k${N - 1}`) });
          counts.add(`${one.header.revision}:${one.count === 1 ? 'last' : 'none'}`);
          await new Promise((r) => setImmediate(r));
        }
      })();
      for (let batch = 0; batch < 3; batch++) {
        const reqs = Array.from({ length: N }, (_, i) => putReq(`k${i}`, `${batch}`));
        await store.applyBatch(entries(batch * N + 1, reqs));
      }
      writing = false;
      await reader;
      // a count is always a multiple of whole batches, and matches its header revision
      for (const c of counts) {
        const [rev, n] = c.split(':');
        if (n === 'last' || n === 'none') expect(n).toBe(Number(rev) > 1 ? 'last' : 'none');
        else expect(Number(n)).toBe(Number(rev) > 1 ? N : 0);
        expect((Number(rev) - 1) % N).toBe(0);
      }
    } finally {
      await cleanup();
    }
  });

  it('keeps applying when a listener throws', async () => {
    const errors: unknown[] = [];
    const { store, cleanup } = await tempStore({ onListenerError: (e) => errors.push(e) });
    try {
      const seen: number[] = [];
      store.onApply(() => {
        throw new Error('boom');
      });
      store.onApply((rev) => seen.push(rev));
      await store.applyBatch(entries(1, [putReq('a', '1'), putReq('b', '1')]));
      expect(seen).toEqual([2, 3]);
      expect(errors).toHaveLength(2);
      expect(store.revision).toBe(3);
    } finally {
      await cleanup();
    }
  });

  it('makes a batch visible to reads and listeners before LevelDB has written it', async () => {
    const { store, cleanup } = await tempStore();
    try {
      await store.applyBatch(entries(1, [putReq('a', '1')]));
      const order: string[] = [];
      store.onApply((rev) => order.push(`listener ${rev}`));
      let readInside: Promise<string[]> | undefined;
      const written = store.applyBatch(entries(2, [putReq('a', '2'), putReq('b', '1')]), (results) => {
        order.push(`visible ${results.map((r) => r.status).join(',')}`);
        // Not yet written: the store answers from the batch in memory.
        expect([store.appliedIndex, store.durableAppliedIndex, store.revision]).toEqual([3, 1, 4]);
        readInside = store.range({ key: b('a'), rangeEnd: ALL }).then((r) => show(r.kvs));
      });
      await written;
      expect(order).toEqual(['listener 3', 'listener 4', 'visible ok,ok']);
      expect(await readInside).toEqual(['a=2@3/2/v2', 'b=1@4/4/v1']);
      expect(store.durableAppliedIndex).toBe(3);
    } finally {
      await cleanup();
    }
  });

  it('durable() waits for the batches applied before it and leaves the applied index as it was', async () => {
    const dir = await tempDir('durable');
    let store = await MvccStore.open(dir);
    const pending = store.applyBatch(entries(1, [putReq('a', '1'), putReq('b', '1')]));
    await store.durable();
    expect(store.durableAppliedIndex).toBe(2);
    await pending;
    await store.close();
    await expect(store.durable()).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
    store = await MvccStore.open(dir);
    expect([store.appliedIndex, store.revision]).toEqual([2, 3]);
    await store.close();
  });

  it('refuses all work once a batch that was already visible fails to be written', async () => {
    const { store, cleanup } = await tempStore();
    try {
      await store.applyBatch(entries(1, [putReq('a', '1')]));
      await store.liveKeyFilterReady(); // so the next batch reads nothing before its write
      let visible = false;
      // A real storage failure: LevelDB itself is closed under the store.
      const db = (store as unknown as { db: { close(): Promise<void> } }).db;
      const failing = store.applyBatch(entries(2, [putReq('fresh', '1')]), () => {
        visible = true;
        void db.close();
      });
      await expect(failing).rejects.toMatchObject({ code: 'ERR_STORE_FAILED' });
      expect(visible).toBe(true);
      await expect(store.range({ key: b('a') })).rejects.toMatchObject({ code: 'ERR_STORE_FAILED' });
      await expect(store.applyBatch(entries(3, [putReq('c', '1')]))).rejects.toMatchObject({ code: 'ERR_STORE_FAILED' });
    } finally {
      await cleanup().catch(() => undefined);
    }
  });

  it('finishes queued batches on close, then refuses work', async () => {
    const dir = await tempDir('close');
    const store = await MvccStore.open(dir);
    const pending = [store.applyBatch(entries(1, [putReq('a', '1')])), store.applyBatch(entries(2, [putReq('b', '1')]))];
    await store.close();
    expect((await Promise.all(pending)).map((r) => r[0]!.status)).toEqual(['ok', 'ok']);
    await expect(store.applyBatch(entries(3, [putReq('c', '1')]))).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
    await expect(store.range({ key: b('a') })).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
    const again = await MvccStore.open(dir);
    expect(again.appliedIndex).toBe(2);
    await again.close();
    await rm(dir, { recursive: true, force: true });
  });
});
