import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MvccStore } from '../../src/mvcc/index.js';
import type { Event } from '../../src/api/kv.js';
import type { LeaseAttachment } from '../../src/mvcc/types.js';
import { ALL, Applier, b, prefixEnd, tempStore } from './helpers.js';

const fmt = (evs: readonly Event[]): string[] =>
  evs.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}${e.prevKv ? ` (was ${e.prevKv.value}@${e.prevKv.modRevision})` : ''}`);

describe('watch replay (eventsSince)', () => {
  let store: MvccStore;
  let cleanup: () => Promise<void>;
  let ap: Applier;
  beforeEach(async () => {
    ({ store, cleanup } = await tempStore({ deferPhysicalCompaction: true }));
    ap = new Applier(store);
    await ap.put('a', '1'); // 2
    await ap.put('b', '1'); // 3
    await ap.put('a', '2'); // 4
    await ap.ok({
      txn: {
        success: [{ requestPut: { key: b('a'), value: b('3') } }, { requestDeleteRange: { key: b('b') } }, { requestPut: { key: b('c'), value: b('1') } }],
      },
    }); // 5
    await ap.put('ab', '1'); // 6
  });
  afterEach(async () => cleanup());

  it('replays every change from a revision, in order, with prev kvs on request', async () => {
    const r = await store.eventsSince(3, b('\0'), ALL, { prevKv: true });
    expect(fmt(r.events)).toEqual(['PUT b=1@3', 'PUT a=2@4 (was 1@2)', 'PUT a=3@5 (was 2@4)', 'DELETE b=@5 (was 1@3)', 'PUT c=1@5', 'PUT ab=1@6']);
    expect(r.nextRevision).toBe(7);
    expect(r.header.revision).toBe(6);
    const plain = await store.eventsSince(3, b('\0'), ALL);
    expect(plain.events.every((e) => e.prevKv === undefined)).toBe(true);
    const del = plain.events.find((e) => e.type === 'DELETE')!;
    expect(del.kv).toEqual({ key: b('b'), value: Buffer.alloc(0), createRevision: 0, modRevision: 5, version: 0, lease: 0 });
  });

  it.each<[string, Buffer, Buffer | undefined, string[]]>([
    ['one key', b('a'), undefined, ['PUT a=1@2', 'PUT a=2@4', 'PUT a=3@5']],
    ['a prefix', b('a'), prefixEnd(b('a')), ['PUT a=1@2', 'PUT a=2@4', 'PUT a=3@5', 'PUT ab=1@6']],
    ['a range', b('ab'), b('c'), ['PUT b=1@3', 'DELETE b=@5', 'PUT ab=1@6']],
    ['from a key on', b('b'), ALL, ['PUT b=1@3', 'DELETE b=@5', 'PUT c=1@5']],
    ['everything (empty key = "\\0")', Buffer.alloc(0), ALL, ['PUT a=1@2', 'PUT b=1@3', 'PUT a=2@4', 'PUT a=3@5', 'DELETE b=@5', 'PUT c=1@5', 'PUT ab=1@6']],
  ])('filters %s', async (_n, key, end, want) => {
    expect(fmt((await store.eventsSince(1, key, end)).events)).toEqual(want);
  });

  it('pages by whole revisions', async () => {
    const p1 = await store.eventsSince(2, b('\0'), ALL, { limit: 2 });
    expect(fmt(p1.events)).toEqual(['PUT a=1@2', 'PUT b=1@3']);
    expect(p1.nextRevision).toBe(4);
    const p2 = await store.eventsSince(p1.nextRevision, b('\0'), ALL, { limit: 2 });
    // revision 5 has three events: the page ends after it, never inside it
    expect(fmt(p2.events)).toEqual(['PUT a=2@4', 'PUT a=3@5', 'DELETE b=@5', 'PUT c=1@5']);
    expect(p2.nextRevision).toBe(6);
    const p3 = await store.eventsSince(p2.nextRevision, b('\0'), ALL, { limit: 2 });
    expect(fmt(p3.events)).toEqual(['PUT ab=1@6']);
    expect(p3.nextRevision).toBe(7);
    const p4 = await store.eventsSince(7, b('\0'), ALL, { limit: 2 });
    expect(p4.events).toEqual([]);
    expect(p4.nextRevision).toBe(7);
    expect((await store.eventsSince(50, b('\0'), ALL)).nextRevision).toBe(50);
  });

  it('bounds the changes looked at per call, still at revision boundaries', async () => {
    // only key c matches; stop after looking at 2 changes
    const p1 = await store.eventsSince(2, b('c'), undefined, { scanLimit: 2 });
    expect(fmt(p1.events)).toEqual([]);
    expect(p1.nextRevision).toBe(4);
    const p2 = await store.eventsSince(4, b('c'), undefined, { scanLimit: 2 });
    expect(fmt(p2.events)).toEqual(['PUT c=1@5']); // revision 5 is taken whole
    expect(p2.nextRevision).toBe(6);
    const p3 = await store.eventsSince(6, b('c'), undefined, { scanLimit: 2 });
    expect(p3.events).toEqual([]);
    expect(p3.nextRevision).toBe(7);
  });

  it('gives prev kv only when revision-1 is not compacted, whatever the physical state', async () => {
    await ap.ok({ compaction: { revision: 5 } });
    // physical deletion is deferred: the superseded a=2@4 is still on disk
    const before = await store.eventsSince(5, b('a'), undefined, { prevKv: true });
    expect(fmt(before.events)).toEqual(['PUT a=3@5']);
    await store.compactionDone();
    expect(await store.eventsSince(5, b('a'), undefined, { prevKv: true })).toEqual(before);
    await expect(store.eventsSince(4, b('a'))).rejects.toMatchObject({ code: 'ERR_COMPACTED' });
  });

  it('hands each new revision to listeners once, in order, after it is stored', async () => {
    const seen: string[] = [];
    const off = store.onApply((rev, evs) => {
      expect(store.revision).toBeGreaterThanOrEqual(rev); // the whole batch is stored first
      seen.push(`${rev}: ${fmt(evs).join(', ')}`);
    });
    await store.applyBatch([
      { index: ap.index + 1, request: { put: { key: b('x'), value: b('1') } } },
      { index: ap.index + 2, request: { deleteRange: { key: b('nothing') } } },
      { index: ap.index + 3, request: { deleteRange: { key: b('a'), rangeEnd: b('b') } } },
    ]);
    ap.index += 3;
    off();
    await ap.put('ignored', '1');
    expect(seen).toEqual(['7: PUT x=1@7', '8: DELETE a=@8 (was 3@5), DELETE ab=@8 (was 1@6)']);
  });
});

describe('leases', () => {
  let store: MvccStore;
  let cleanup: () => Promise<void>;
  let ap: Applier;
  beforeEach(async () => {
    ({ store, cleanup } = await tempStore());
    ap = new Applier(store);
    await ap.grant(7, 9, 11);
  });
  afterEach(async () => cleanup());

  const attachments = async (): Promise<string[]> => {
    const out: LeaseAttachment[] = [];
    for await (const chunk of store.leaseAttachments()) out.push(...chunk);
    return out.map((x) => `${x.lease}:${x.key}`);
  };

  it('grants leases without making a revision, and lists them', async () => {
    expect(store.revision).toBe(1);
    expect(await store.leases()).toEqual([
      { id: 7, ttl: 60 },
      { id: 9, ttl: 60 },
      { id: 11, ttl: 60 },
    ]);
    expect(await ap.ok({ leaseGrant: { id: 2 ** 52, ttl: 5 } })).toEqual({ leaseGrant: { header: { revision: 1 } } });
    const dup = await ap.result({ leaseGrant: { id: 7, ttl: 5 } });
    expect(dup.status === 'error' && [dup.error.code, dup.error.message]).toEqual(['ERR_LEASE_EXISTS', 'etcdserver: lease already exists']);
    expect(await ap.err({ leaseGrant: { id: 3, ttl: 9_000_000_001 } })).toBe('ERR_LEASE_TTL_TOO_LARGE');
    expect(await ap.err({ leaseGrant: { id: 0, ttl: 5 } })).toBe('ERR_INVALID_ARGUMENT');
    expect((await store.leases()).map((l) => l.id)).toEqual([7, 9, 11, 2 ** 52]);
  });

  it('indexes live keys by lease as puts and deletes change them', async () => {
    await ap.put('a', '1', 7);
    await ap.put('b', '1', 7);
    await ap.put('c', '1', 9);
    await ap.put('d', '1');
    expect((await store.leaseKeys(7)).map(String)).toEqual(['a', 'b']);
    expect(await attachments()).toEqual(['7:a', '7:b', '9:c']);
    await ap.put('a', '2', 9); // moves
    await ap.ok({ put: { key: b('b'), value: b('2'), ignoreLease: true } }); // stays
    await ap.put('c', '2'); // detaches
    await ap.del('d');
    expect(await attachments()).toEqual(['7:b', '9:a']);
    await ap.del('a', ALL);
    expect(await attachments()).toEqual([]);
    expect(await store.leaseKeys(7)).toEqual([]);
  });

  it('rejects a put with an unknown lease, alone or in a txn', async () => {
    const r = await ap.result({ put: { key: b('a'), value: b('1'), lease: 8 } });
    expect(r.status === 'error' && [r.error.code, r.error.message]).toEqual(['ERR_LEASE_NOT_FOUND', 'etcdserver: requested lease not found']);
    expect(await ap.err({ txn: { success: [{ requestPut: { key: b('a'), lease: 8 } }] } })).toBe('ERR_LEASE_NOT_FOUND');
    // a lone put checks the lease before the key; a txn op the key before the lease (etcd)
    expect(await ap.err({ put: { key: b('nope'), ignoreValue: true, lease: 8 } })).toBe('ERR_LEASE_NOT_FOUND');
    expect(await ap.err({ txn: { success: [{ requestPut: { key: b('nope'), ignoreValue: true, lease: 8 } }] } })).toBe('ERR_KEY_NOT_FOUND');
    expect(store.revision).toBe(1);
  });

  it('sees a grant applied earlier in the same batch', async () => {
    const rs = await store.applyBatch([
      { index: ap.index + 1, request: { leaseGrant: { id: 20, ttl: 5 } } },
      { index: ap.index + 2, request: { put: { key: b('x'), value: b('1'), lease: 20 } } },
    ]);
    ap.index += 2;
    expect(rs.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(await attachments()).toEqual(['20:x']);
  });

  it('revokes a lease by deleting its keys in one revision', async () => {
    await ap.put('b', '1', 7); // 2
    await ap.put('a', '1', 7); // 3
    await ap.put('c', '1', 9); // 4
    const events: string[] = [];
    store.onApply((rev, evs) => events.push(`${rev}: ${fmt(evs).join(', ')}`));
    expect(await ap.ok({ leaseRevoke: { id: 7 } })).toEqual({ leaseRevoke: { header: { revision: 5 } } });
    expect(events).toEqual(['5: DELETE a=@5 (was 1@3), DELETE b=@5 (was 1@2)']);
    expect((await store.range({ key: b('a'), rangeEnd: ALL })).kvs.map((kv) => String(kv.key))).toEqual(['c']);
    expect((await store.leases()).map((l) => l.id)).toEqual([9, 11]);
    expect(await ap.err({ leaseRevoke: { id: 7 } })).toBe('ERR_LEASE_NOT_FOUND');
    expect(await ap.err({ put: { key: b('a'), lease: 7 } })).toBe('ERR_LEASE_NOT_FOUND');
    // a lease without keys: no revision
    expect(await ap.ok({ leaseRevoke: { id: 11 } })).toEqual({ leaseRevoke: { header: { revision: 5 } } });
    expect(store.revision).toBe(5);
  });
});
