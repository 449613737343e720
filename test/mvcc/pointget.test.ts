/**
 * The point-get fast path (isPlainPointGet + pointGet) against the general Range path: the
 * same response for every request the fast path takes, committed state and pending overlay
 * alike, and it never takes a request that validateRange rejects.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MvccStore } from '../../src/mvcc/index.js';
import { curKey } from '../../src/mvcc/keys.js';
import { Overlay } from '../../src/mvcc/overlay.js';
import { pointGet, range } from '../../src/mvcc/range.js';
import { encodeCur } from '../../src/mvcc/records.js';
import type { ReadCtx } from '../../src/mvcc/scan.js';
import type { RangeRequest } from '../../src/api/kv.js';
import { isPlainPointGet, validateRange } from '../../src/mvcc/validate.js';
import type { Db, ReadSource } from '../../src/mvcc/view.js';
import { Applier, b, bytes, tempStore } from './helpers.js';

// Live, updated, leased, deleted, binary, missing; 'o*' are changed by the overlay below.
const KEYS = [b('a'), b('b'), b('leased'), b('gone'), bytes(0x00), bytes(0xff, 0x00), b('missing'), b('oput'), b('odel'), b('onew')];

const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const optBool = opt(fc.boolean());

/** Requests the fast path must take: any valid value of the fields that cannot change a point answer. */
const plainPointGet: fc.Arbitrary<RangeRequest> = fc.record(
  {
    key: fc.constantFrom(...KEYS),
    rangeEnd: opt(fc.constant(Buffer.alloc(0))),
    revision: opt(fc.integer({ min: -3, max: 0 })),
    limit: opt(fc.integer({ min: -2, max: 3 })),
    sortOrder: opt(fc.constantFrom('NONE' as const, 'ASCEND' as const, 'DESCEND' as const)),
    sortTarget: opt(fc.constantFrom('KEY' as const, 'VERSION' as const, 'CREATE' as const, 'MOD' as const, 'VALUE' as const)),
    serializable: optBool,
    keysOnly: optBool,
    countOnly: optBool,
    minModRevision: opt(fc.constant(0)),
    maxModRevision: opt(fc.constant(0)),
    minCreateRevision: opt(fc.constant(0)),
    maxCreateRevision: opt(fc.constant(0)),
  },
  { requiredKeys: ['key'] },
);

/** Field values of every kind, valid or not, for requests the fast path may have to refuse. */
const junk = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(0.5, NaN, Infinity, 2 ** 60, -0),
  fc.constantFrom('NONE', 'ASCEND', 'KEY', 'VALUE', 'BAD', ''),
  fc.constantFrom(Buffer.alloc(0), b('a'), new Uint8Array([0x61]), bytes(0)),
  fc.constant([]),
);
const FIELDS = [
  'key',
  'rangeEnd',
  'revision',
  'limit',
  'sortOrder',
  'sortTarget',
  'serializable',
  'keysOnly',
  'countOnly',
  'minModRevision',
  'maxModRevision',
  'minCreateRevision',
  'maxCreateRevision',
];
/** A plain point get with one to three fields replaced by anything. */
const junkRequest = fc.tuple(plainPointGet, fc.array(fc.tuple(fc.constantFrom(...FIELDS), junk), { minLength: 1, maxLength: 3 })).map(([req, changes]) => {
  const r: Record<string, unknown> = { ...req };
  for (const [f, v] of changes) r[f] = v;
  return r;
});

describe('point get fast path', () => {
  let store: MvccStore;
  let cleanup: () => Promise<void>;
  let db: Db;

  beforeAll(async () => {
    ({ store, cleanup } = await tempStore());
    const ap = new Applier(store);
    await ap.grant(7);
    for (const k of KEYS) if (!k.equals(b('missing')) && !k.equals(b('onew'))) await ap.put(k, Buffer.concat([b('v-'), k]));
    await ap.put('a', 'a2');
    await ap.put('leased', 'l2', 7);
    await ap.put(bytes(0xff, 0x00), bytes(0x00, 0x00, 0xff));
    await ap.del('gone');
    db = (store as unknown as { db: Db }).db;
  });
  afterAll(async () => cleanup());

  /** An overlay of a batch in flight: a new value, a deletion, a new key. */
  function overlay(): Overlay {
    const o = new Overlay();
    const kv = { key: b('oput'), value: b('over'), createRevision: 3, modRevision: store.revision + 1, version: 2, lease: 0 };
    o.put(curKey(kv.key), encodeCur(kv, 0));
    o.del(curKey(b('odel')));
    o.put(curKey(b('onew')), encodeCur({ ...kv, key: b('onew'), createRevision: store.revision + 1, version: 1, lease: 7 }, 1));
    return o;
  }

  async function same(src: ReadSource, rev: number, req: RangeRequest): Promise<void> {
    expect(isPlainPointGet(req)).toBe(true);
    const ctx: ReadCtx = { src, rev, compactRev: store.compactRevision };
    const fast = pointGet(src, rev, req);
    const general = await range(ctx, req);
    expect(fast).toStrictEqual(general);
    // Same field order too: the HTTP gateway serialises these objects as they are.
    expect(fast.kvs.map((kv) => Object.keys(kv))).toEqual(general.kvs.map((kv) => Object.keys(kv)));
  }

  it('answers as the general path, on committed state and through an overlay', async () => {
    const rev = store.revision;
    await fc.assert(fc.asyncProperty(plainPointGet, async (req) => same({ db }, rev, req)));
    const overlaid: ReadSource = { db, overlay: overlay() };
    await fc.assert(fc.asyncProperty(plainPointGet, async (req) => same(overlaid, rev + 1, req)));
  });

  it('is what store.range answers', async () => {
    await fc.assert(
      fc.asyncProperty(plainPointGet, async (req) => {
        const general = await range({ src: { db }, rev: store.revision, compactRev: store.compactRevision }, req);
        expect(await store.range(req)).toStrictEqual(general);
      }),
      { numRuns: 50 },
    );
  });

  it.each<[string, RangeRequest]>([
    ['a range', { key: b('a'), rangeEnd: b('b') }],
    ['everything from a key', { key: b('a'), rangeEnd: bytes(0) }],
    ['an explicit revision', { key: b('a'), revision: 2 }],
    ['a min mod revision', { key: b('a'), minModRevision: 1 }],
    ['a max create revision', { key: b('a'), maxCreateRevision: 9 }],
  ])('leaves %s to the general path', (_, req) => {
    expect(isPlainPointGet(req)).toBe(false);
  });

  it('never takes a request validateRange rejects', () => {
    let taken = 0;
    fc.assert(
      fc.property(junkRequest, (req) => {
        const r = req as unknown as RangeRequest;
        if (!isPlainPointGet(r)) return;
        taken++;
        expect(() => validateRange(r)).not.toThrow();
      }),
      { numRuns: 2000 },
    );
    expect(isPlainPointGet(null as unknown as RangeRequest)).toBe(false);
    expect(isPlainPointGet([] as unknown as RangeRequest)).toBe(false);
    expect(taken).toBeGreaterThan(0); // the property above was not vacuous
  });
});
