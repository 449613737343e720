/**
 * Property: for random sequences of put / delete / txn / compact / range over a small binary key
 * space, applied in random batches, the store answers exactly as the naive model: every entry's
 * response, every range at every readable revision, watch replay and the apply listener's
 * events. A second store fed the same entries one per batch agrees on every response and on
 * hashKV (determinism), and hashKV does not change when background compaction completes.
 */
import fc from 'fast-check';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { Compare, Event, KeyValue, RangeRequest, RequestOp, TxnRequest } from '../../src/api/kv.js';
import type { ApplyEntry, MvccRequest } from '../../src/mvcc/types.js';
import { ALL, applyAtVisible, b, bytes, norm, prefixEnd, tempDir } from './helpers.js';
import { Model } from './model.js';

const KEYS = [b('a'), bytes(0x61, 0x00), b('ab'), b('b'), bytes(0xff), bytes(0x00), bytes(0x00, 0xff)];

const key = fc.constantFrom(...KEYS);
const rangeEnd = fc.option(fc.oneof(key, fc.constant(ALL), key.map(prefixEnd)), { nil: undefined });
const value = fc.uint8Array({ maxLength: 3 }).map((u) => Buffer.from(u));
const smallRev = fc.integer({ min: -1, max: 14 });
const optBool = fc.option(fc.boolean(), { nil: undefined });
const rarely = fc.option(fc.constant(true), { nil: undefined, freq: 6 });

const putReq = fc.record(
  {
    key,
    value: fc.option(value, { nil: undefined }),
    lease: fc.option(fc.constantFrom(0, 5, 9), { nil: undefined }),
    prevKv: optBool,
    ignoreValue: rarely,
    ignoreLease: rarely,
  },
  { requiredKeys: ['key'] },
);
const delReq = fc.record({ key, rangeEnd, prevKv: optBool }, { requiredKeys: ['key'] });
const rangeReq: fc.Arbitrary<RangeRequest> = fc.record(
  {
    key,
    rangeEnd,
    limit: fc.integer({ min: -1, max: 3 }),
    revision: smallRev,
    sortOrder: fc.constantFrom('NONE' as const, 'ASCEND' as const, 'DESCEND' as const),
    sortTarget: fc.constantFrom('KEY' as const, 'VERSION' as const, 'CREATE' as const, 'MOD' as const, 'VALUE' as const),
    keysOnly: optBool,
    countOnly: rarely,
    minModRevision: fc.integer({ min: 0, max: 8 }),
    maxModRevision: fc.integer({ min: 0, max: 12 }),
    minCreateRevision: fc.integer({ min: 0, max: 8 }),
    maxCreateRevision: fc.integer({ min: 0, max: 12 }),
  },
  { requiredKeys: ['key'] },
);
const compare: fc.Arbitrary<Compare> = fc.record(
  {
    key,
    rangeEnd,
    target: fc.constantFrom('VERSION' as const, 'CREATE' as const, 'MOD' as const, 'VALUE' as const, 'LEASE' as const),
    result: fc.constantFrom('EQUAL' as const, 'NOT_EQUAL' as const, 'LESS' as const, 'GREATER' as const),
    version: fc.integer({ min: 0, max: 3 }),
    createRevision: fc.integer({ min: 0, max: 8 }),
    modRevision: fc.integer({ min: 0, max: 8 }),
    lease: fc.constantFrom(0, 5, 9),
    value,
  },
  { requiredKeys: ['key', 'target', 'result'] },
);

const { txn } = fc.letrec<{ txn: TxnRequest; op: RequestOp }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    rangeReq.map((r) => ({ requestRange: r })),
    putReq.map((p) => ({ requestPut: p })),
    delReq.map((d) => ({ requestDeleteRange: d })),
    tie('txn').map((t) => ({ requestTxn: t })),
  ),
  txn: fc.record({
    compare: fc.array(compare, { maxLength: 2 }),
    success: fc.array(tie('op'), { maxLength: 3 }),
    failure: fc.array(tie('op'), { maxLength: 2 }),
  }),
}));

/** A request, or a compaction / range at `back` revisions before the current one when applied. */
type Gen = MvccRequest | { compactBack: number } | { rangeBack: number; range: RangeRequest };

const request: fc.Arbitrary<Gen> = fc.oneof(
  { arbitrary: putReq.map((put) => ({ put })), weight: 6 },
  { arbitrary: delReq.map((deleteRange) => ({ deleteRange })), weight: 2 },
  { arbitrary: txn.map((t) => ({ txn: t })), weight: 3 },
  { arbitrary: smallRev.map((revision) => ({ compaction: { revision } })), weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: 4 }).map((compactBack) => ({ compactBack })), weight: 2 },
  { arbitrary: rangeReq.map((range) => ({ range })), weight: 1 },
  { arbitrary: fc.record({ rangeBack: fc.integer({ min: 0, max: 5 }), range: rangeReq }), weight: 1 },
  { arbitrary: fc.record({ id: fc.constantFrom(5, 9, 7), ttl: fc.constantFrom(10, 9_000_000_001) }).map((leaseGrant) => ({ leaseGrant })), weight: 1 },
  { arbitrary: fc.constantFrom(5, 9, 7).map((id) => ({ leaseRevoke: { id } })), weight: 1 },
);

/** Every history starts by granting leases 5 and 9, so puts with them mostly succeed. */
const GRANTS: Gen[] = [{ leaseGrant: { id: 5, ttl: 60 } }, { leaseGrant: { id: 9, ttl: 60 } }];

/** Turns relative requests into concrete ones against the model's revision at that point. */
function concretize(g: Gen, model: Model): MvccRequest {
  if ('compactBack' in g) return { compaction: { revision: Math.max(model.rev - g.compactBack, 1) } };
  if ('rangeBack' in g) return { range: { ...g.range, revision: model.rev - g.rangeBack } };
  return g;
}

/** Ranges checked at every revision after the run. */
const PROBES: RangeRequest[] = [
  { key: bytes(0), rangeEnd: ALL },
  ...KEYS.map((k) => ({ key: k })),
  { key: b('a'), rangeEnd: prefixEnd(b('a')) },
  { key: bytes(0), rangeEnd: b('b'), limit: 2 },
  { key: b('a'), rangeEnd: ALL, sortOrder: 'DESCEND', sortTarget: 'MOD' },
  { key: bytes(0), rangeEnd: ALL, countOnly: true },
];

/** `reqs` as entries in batches of the given sizes. */
function batched(reqs: MvccRequest[], sizes: number[]): ApplyEntry[][] {
  const out: ApplyEntry[][] = [];
  for (let i = 0, s = 0; i < reqs.length; ) {
    const n = Math.min(sizes[s++ % sizes.length]!, reqs.length - i);
    out.push(reqs.slice(i, i + n).map((request, j) => ({ index: i + j + 1, request })));
    i += n;
  }
  return out;
}

async function feed(store: MvccStore, reqs: MvccRequest[], sizes: number[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const entries of batched(reqs, sizes)) out.push(...(await store.applyBatch(entries)).map(norm));
  return out;
}

/** The model's live key-values at its current revision, in key order. */
function liveNow(model: Model): KeyValue[] {
  return [...model.stateAt(model.rev).entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, kv]) => kv);
}

describe('mvcc store vs model (property)', () => {
  it('matches the model on random histories, batched or not', async () => {
    let compactedRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(request, { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 4 }),
        async (gens, sizes) => {
          const dirA = await tempDir('prop');
          const dirB = await tempDir('prop');
          // A filter of two keys is rebuilt over and over while the batches are applied.
          const a = await MvccStore.open(dirA, { compactionStep: 3, deferPhysicalCompaction: true, liveKeyFilterKeys: 2 });
          const one = await MvccStore.open(dirB);
          try {
            const model = new Model();
            const heard: Array<[number, Event[]]> = [];
            a.onApply((rev, evs) => heard.push([rev, [...evs]]));

            const reqs: MvccRequest[] = [];
            const want: unknown[] = [];
            // The live key-values at each revision, kept as the model goes (it drops compacted states).
            const live = new Map<number, KeyValue[]>([[1, []]]);
            for (const g of [...GRANTS, ...gens]) {
              const r = concretize(g, model);
              reqs.push(r);
              want.push(norm(model.apply(r)));
              live.set(model.rev, liveNow(model));
            }
            // As a member applies: each batch is read (a range and every key) as soon as it is
            // visible, before LevelDB has written it, against the model at that revision.
            const reads: Array<Promise<void>> = [];
            const results = await applyAtVisible(a, batched(reqs, sizes), () => {
              const rev = a.revision;
              const all = a.range({ key: bytes(0), rangeEnd: ALL });
              const each = KEYS.map((k) => a.range({ key: k }));
              reads.push(
                (async () => {
                  const wantNow = live.get(rev)!;
                  expect(norm((await all).kvs)).toEqual(norm(wantNow));
                  const one = (await Promise.all(each)).flatMap((r) => r.kvs);
                  expect(norm(one.sort((x, y) => Buffer.compare(x.key, y.key)))).toEqual(norm(wantNow));
                })(),
              );
            });
            await Promise.all(reads);
            const got = results.flat().map(norm);
            // Taken before physical compaction (deferred in `a`): compared with the same reads
            // once it is done, they prove that physical deletion is invisible.
            const h0 = await a.hashKV();
            const from = Math.max(model.compactRev, 1);
            const replay0 = await a.eventsSince(from, bytes(0), ALL, { prevKv: true });
            expect(got).toEqual(want);

            // every probe at every readable revision (background compaction may be running)
            expect(a.revision).toBe(model.rev);
            expect(a.compactRevision).toBe(model.compactRev);
            const probeAll = async (): Promise<void> => {
              for (let rev = Math.max(model.compactRev, 1); rev <= model.rev; rev++) {
                for (const p of PROBES) {
                  expect(norm(await a.range({ ...p, revision: rev }))).toEqual(norm(model.range({ ...p, revision: rev })));
                }
              }
            };
            await probeAll();
            // leases: grants, and the (lease, key) index of live keys
            expect(await a.leases()).toEqual([...model.leases].sort((x, y) => x[0] - y[0]).map(([id, ttl]) => ({ id, ttl })));
            const attached: string[] = [];
            for await (const chunk of a.leaseAttachments()) attached.push(...chunk.map((x) => `${x.lease}:${x.key.toString('hex')}`));
            const cur = model.stateAt(model.rev);
            const want2 = [...cur.values()].filter((kv) => kv.lease !== 0).sort((x, y) => x.lease - y.lease || Buffer.compare(x.key, y.key));
            expect(attached).toEqual(want2.map((kv) => `${kv.lease}:${kv.key.toString('hex')}`));
            // watch replay and the live listener
            expect(norm(replay0.events)).toEqual(norm(model.eventsSince(from, bytes(0), ALL, true)));
            expect(norm(heard)).toEqual(norm([...model.events.entries()].sort((x, y) => x[0] - y[0])));

            // determinism: one entry per batch gives the same responses and the same hash
            expect(await feed(one, reqs, [1])).toEqual(got);
            await a.compactionDone();
            await one.compactionDone();
            expect(await a.hashKV()).toEqual(h0);
            expect(await one.hashKV()).toEqual(h0);
            await probeAll(); // and reads are unchanged once history is physically gone
            expect(norm(await a.eventsSince(from, bytes(0), ALL, { prevKv: true }))).toEqual(norm(replay0));
            if (model.compactRev > 0) compactedRuns++;
          } finally {
            await a.close();
            await one.close();
            await rm(dirA, { recursive: true, force: true });
            await rm(dirB, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 200 },
    );
    // the generator must actually exercise compaction
    expect(compactedRuns).toBeGreaterThan(10);
  });
});
