/**
 * Watch guarantees over a real MVCC store: for random operation streams, watchers started at
 * random revisions on random keys, prefixes and ranges, some with tiny buffers and slow
 * consumers, each receive exactly the model's history for their range from their start
 * revision: in order, no gap, no duplicate, all events of a revision in one response.
 */
import { afterEach, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { rm } from 'node:fs/promises';
import { MvccStore } from '../../src/mvcc/store.js';
import type { MvccRequest } from '../../src/mvcc/types.js';
import { WatchHub, type Watcher } from '../../src/watch/hub.js';
import { StoreWatchSource } from '../../src/watch/store_source.js';
import { WatchFilter, type WatchResponse } from '../../src/watch/types.js';
import { prefixEnd } from '../../src/api/keys.js';
import { tempDir } from '../mvcc/helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const KEYS = ['a', 'a1', 'a2', 'b', 'b1', 'c'];

type Op = { put: string; value: string } | { del: string } | { delPrefix: string } | { txn: string[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ put: fc.constantFrom(...KEYS), value: fc.string({ maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ del: fc.constantFrom(...KEYS) }) },
  { weight: 1, arbitrary: fc.record({ delPrefix: fc.constantFrom('a', 'b') }) },
  { weight: 2, arbitrary: fc.record({ txn: fc.uniqueArray(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 }) }) },
);

type Scope = { kind: 'key'; key: string } | { kind: 'prefix'; prefix: string } | { kind: 'range'; from: string; to: string } | { kind: 'all' };

const scopeArb: fc.Arbitrary<Scope> = fc.oneof(
  fc.record({ kind: fc.constant('key' as const), key: fc.constantFrom(...KEYS) }),
  fc.record({ kind: fc.constant('prefix' as const), prefix: fc.constantFrom('a', 'b', '') }),
  fc.record({ kind: fc.constant('range' as const), from: fc.constantFrom('a1', 'b'), to: fc.constantFrom('b1', 'c') }),
  fc.constant({ kind: 'all' as const }),
);

function inScope(s: Scope, key: string): boolean {
  switch (s.kind) {
    case 'key':
      return key === s.key;
    case 'prefix':
      return key.startsWith(s.prefix);
    case 'range':
      return key >= s.from && key < s.to;
    case 'all':
      return true;
  }
}

function request(s: Scope): { key: Buffer; rangeEnd?: Buffer } {
  switch (s.kind) {
    case 'key':
      return { key: Buffer.from(s.key) };
    case 'prefix':
      return s.prefix === ''
        ? { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }
        : { key: Buffer.from(s.prefix), rangeEnd: prefixEnd(Buffer.from(s.prefix)) };
    case 'range':
      return { key: Buffer.from(s.from), rangeEnd: Buffer.from(s.to) };
    case 'all':
      return { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) };
  }
}

/** The model: the events of each revision, computed from the ops alone. */
interface ModelEvent {
  rev: number;
  type: 'PUT' | 'DELETE';
  key: string;
  value: string;
}

function toRequest(op: Op): MvccRequest {
  if ('put' in op) return { put: { key: Buffer.from(op.put), value: Buffer.from(op.value) } };
  if ('del' in op) return { deleteRange: { key: Buffer.from(op.del) } };
  if ('delPrefix' in op) return { deleteRange: { key: Buffer.from(op.delPrefix), rangeEnd: prefixEnd(Buffer.from(op.delPrefix)) } };
  return { txn: { success: op.txn.map((k, i) => ({ requestPut: { key: Buffer.from(k), value: Buffer.from(`t${i}`) } })) } };
}

function applyModel(live: Map<string, string>, op: Op, rev: number): ModelEvent[] {
  const out: ModelEvent[] = [];
  if ('put' in op) {
    live.set(op.put, op.value);
    out.push({ rev, type: 'PUT', key: op.put, value: op.value });
  } else if ('del' in op || 'delPrefix' in op) {
    const match = (k: string) => ('del' in op ? k === op.del : k.startsWith(op.delPrefix));
    for (const k of [...live.keys()].filter(match).sort()) {
      live.delete(k);
      out.push({ rev, type: 'DELETE', key: k, value: '' });
    }
  } else {
    op.txn.forEach((k, i) => {
      live.set(k, `t${i}`);
      out.push({ rev, type: 'PUT', key: k, value: `t${i}` });
    });
  }
  return out;
}

interface WatchSpec {
  scope: Scope;
  /** Offset into the op stream at which the watch is created. */
  createdAfter: number;
  /** Start revision as an offset back from the current one at creation (0: from now on). */
  back: number;
  slow: boolean;
  noDelete: boolean;
}

const watchArb: fc.Arbitrary<WatchSpec> = fc.record({
  scope: scopeArb,
  createdAfter: fc.nat(30),
  back: fc.nat(10),
  slow: fc.boolean(),
  noDelete: fc.boolean(),
});

/**
 * Reads a watcher until it has been idle after `until()` holds. A slow consumer reads nothing
 * before `start` resolves (its buffer overflows meanwhile), then reads with pauses.
 */
async function collect(w: Watcher, slow: boolean, start: Promise<void>, until: () => boolean): Promise<WatchResponse[]> {
  const got: WatchResponse[] = [];
  if (slow) await start;
  for (;;) {
    const next = await Promise.race([w.next(), new Promise<'idle'>((r) => setTimeout(() => r('idle'), 50))]);
    if (next === 'idle') {
      if (until()) return got;
      continue;
    }
    if (next.done) return got;
    got.push(next.value);
    if (slow) await new Promise((r) => setTimeout(r, 1));
  }
}

describe('watch hub over the MVCC store', () => {
  test('every watcher sees exactly the history of its range, in order, whole revisions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), fc.array(watchArb, { minLength: 1, maxLength: 6 }), async (ops, specs) => {
        const dir = await tempDir('watch');
        const store = await MvccStore.open(dir);
        const source = new StoreWatchSource();
        source.attach(store);
        // A tiny buffer so slow watchers overflow and catch up from history.
        const hub = new WatchHub(source, { maxBufferedEvents: 2, historyBatchRevisions: 3 });
        try {
          const live = new Map<string, string>();
          const history: ModelEvent[] = [];
          const watches: { spec: WatchSpec; start: number; watcher: Watcher; done: Promise<WatchResponse[]> }[] = [];
          let finished = false;
          let opsDone!: () => void;
          const applied = new Promise<void>((r) => (opsDone = r));
          let index = 0;
          for (let i = 0; i <= ops.length; i++) {
            for (const spec of specs.filter((s) => Math.min(s.createdAfter, ops.length) === i)) {
              const current = store.revision;
              const start = spec.back === 0 ? current + 1 : Math.max(1, current - spec.back + 1);
              const watcher = hub.watch({
                ...request(spec.scope),
                startRevision: start,
                ...(spec.noDelete ? { filters: [WatchFilter.NoDelete] } : {}),
              });
              watches.push({ spec, start, watcher, done: collect(watcher, spec.slow, applied, () => finished) });
            }
            if (i === ops.length) break;
            const op = ops[i]!;
            const before = store.revision;
            const r = await store.apply(++index, toRequest(op));
            expect(r.status).toBe('ok');
            if (store.revision > before) history.push(...applyModel(live, op, store.revision));
          }
          // Let slow watchers drain, then stop everything.
          opsDone();
          const finalRev = store.revision;
          const deadline = Date.now() + 20_000;
          while (hub.unsyncedCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
          finished = true;
          const results = await Promise.all(watches.map((w) => w.done));
          watches.forEach((w, i) => {
            const got = results[i]!;
            expect(got[0]?.created).toBe(true);
            const events = got.slice(1).flatMap((resp) => {
              // Atomic: a response holds whole revisions of this watcher's events.
              for (const e of resp.events) expect(e.kv.modRevision).toBe(resp.revision);
              return resp.events.map((e) => ({ rev: e.kv.modRevision, type: e.type, key: e.kv.key.toString(), value: e.kv.value.toString() }));
            });
            const want = history.filter(
              (e) => e.rev >= w.start && e.rev <= finalRev && inScope(w.spec.scope, e.key) && !(w.spec.noDelete && e.type === 'DELETE'),
            );
            expect(events).toEqual(want);
            const revs = got.slice(1).map((r) => r.revision);
            expect(revs).toEqual([...new Set(revs)].sort((a, b) => a - b));
          });
        } finally {
          hub.stop();
          source.detach();
          await store.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 25 },
    );
  });

  test('a watch from a compacted revision is canceled with the compact revision', async () => {
    const dir = await tempDir('watch');
    const store = await MvccStore.open(dir);
    cleanups.push(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    const source = new StoreWatchSource();
    source.attach(store);
    const hub = new WatchHub(source);
    let index = 0;
    for (let i = 0; i < 5; i++) await store.apply(++index, { put: { key: Buffer.from('k'), value: Buffer.from(String(i)) } });
    await store.apply(++index, { compaction: { revision: 4 } });
    const w = hub.watch({ key: Buffer.from('k'), startRevision: 2 });
    const first = await w.next();
    const second = await w.next();
    expect(first.value).toMatchObject({ created: true });
    expect(second.value).toMatchObject({ canceled: true, compactRevision: 4 });
    expect((await w.next()).done).toBe(true);
    hub.stop();
  });

  test('many watchers and a slow consumer never hold up the store', async () => {
    const dir = await tempDir('watch');
    const store = await MvccStore.open(dir);
    cleanups.push(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    const source = new StoreWatchSource();
    source.attach(store);
    const hub = new WatchHub(source, { maxBufferedEvents: 8 });
    const stuck = hub.watch({ key: Buffer.from('hot') });
    const fine = Array.from({ length: 1000 }, (_, i) => hub.watch({ key: Buffer.from(`k${i}`) }));
    let index = 0;
    for (let i = 0; i < 200; i++) await store.apply(++index, { put: { key: Buffer.from('hot'), value: Buffer.from(String(i)) } });
    // Nobody reads `stuck`: its buffer is bounded and it was moved to catch-up.
    expect(stuck.buffered).toBeLessThanOrEqual(8 + 1);
    expect(hub.unsyncedCount).toBe(1);
    // Reading it all now yields all 200 revisions, in order.
    const revs: number[] = [];
    const deadline = Date.now() + 10_000;
    while (revs.length < 200 && Date.now() < deadline) {
      const r = await Promise.race([stuck.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('watcher stalled')), 5_000))]);
      for (const e of r.value!.events) revs.push(e.kv.modRevision);
    }
    expect(revs).toEqual(Array.from({ length: 200 }, (_, i) => i + 2));
    expect(fine.every((w) => w.buffered === 0)).toBe(true);
    hub.stop();
  });
});
