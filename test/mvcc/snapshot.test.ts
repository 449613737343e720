import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { LeaseAttachment, StoreExport, StoreRevision } from '../../src/mvcc/types.js';
import { ALL, Applier, b, norm, removeTempDirs, tempDir } from './helpers.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/** Everything observable about a store, for equality. */
async function observe(s: MvccStore): Promise<unknown> {
  const revs: unknown[] = [];
  for (let r = Math.max(s.compactRevision, 1); r <= s.revision; r++) {
    revs.push(await s.range({ key: b('\0'), rangeEnd: ALL, revision: r }));
    revs.push(await s.hashKV(r));
  }
  const leases: LeaseAttachment[] = [];
  for await (const c of s.leaseAttachments()) leases.push(...c);
  return norm({
    rev: s.revision,
    compact: s.compactRevision,
    applied: s.appliedIndex,
    revs,
    events: await s.eventsSince(Math.max(s.compactRevision, 1), b('\0'), ALL, { prevKv: true }),
    leases,
    grants: await s.leases(),
  });
}

async function history(ap: Applier): Promise<void> {
  await ap.grant(5, 9, 12);
  for (let i = 0; i < 40; i++) await ap.put(`k${i % 7}`, `v${i}`, i % 4 === 0 ? 5 : 0);
  await ap.put(Buffer.from([0, 0xff, 0]), Buffer.from([0xff, 0]));
  // keys that are prefixes of one another, with 0x00 bytes HISTORY escapes: the stream walks
  // CURRENT beside HISTORY, so both must see the keys in the same order
  await ap.put('k1\0', 'p1');
  await ap.put('k', 'p2');
  await ap.put(Buffer.from([0, 0xff]), b('p3'));
  await ap.put(Buffer.from([0]), b('p4'));
  await ap.del('k3');
  await ap.ok({ compaction: { revision: 30 } });
  await ap.del('k4');
  await ap.put('k8', 'x', 9);
  await ap.ok({ leaseRevoke: { id: 12 } });
}

describe('snapshot and restore', () => {
  afterEach(removeTempDirs);

  it('restores a store that is indistinguishable from the original', async () => {
    const dir = await tempDir('snap');
    // physical compaction deferred: the snapshot must leave out what it would delete
    const src = await MvccStore.open(path.join(dir, 'src'), { deferPhysicalCompaction: true });
    const ap = new Applier(src);
    await history(ap);
    const snap = src.snapshot();
    expect([snap.revision, snap.compactRevision, snap.appliedIndex]).toEqual([src.revision, 30, ap.index]);
    const chunks = await collect(snap);
    const dst = await MvccStore.restore(path.join(dir, 'dst'), chunks);
    expect(await observe(dst)).toEqual(await observe(src));
    // both continue identically
    const next = [
      { put: { key: b('k1'), value: b('after') } },
      { deleteRange: { key: b('k'), rangeEnd: b('k5') } },
      { compaction: { revision: src.revision } },
    ] as const;
    for (const [i, request] of next.entries()) {
      expect(norm(await dst.apply(ap.index + 1 + i, request))).toEqual(norm(await src.apply(ap.index + 1 + i, request)));
    }
    await src.compactionDone();
    await dst.compactionDone();
    expect(await observe(dst)).toEqual(await observe(src));
    // the restored store reopens as it was
    const before = await observe(dst);
    await dst.close();
    const reopened = await MvccStore.open(path.join(dir, 'dst'));
    expect(await observe(reopened)).toEqual(before);
    await reopened.close();
    await src.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is a point in time: writes after it are not in it', async () => {
    const dir = await tempDir('snap');
    const src = await MvccStore.open(path.join(dir, 'src'));
    const ap = new Applier(src);
    await history(ap);
    const at = await observe(src);
    const snap = src.snapshot();
    // writes and a compaction land while the stream is being read
    const it = snap[Symbol.asyncIterator]();
    const first = await it.next();
    for (let i = 0; i < 20; i++) await ap.put(`k${i}`, 'later');
    await ap.ok({ compaction: { revision: src.revision - 2 } });
    await src.compactionDone();
    const rest: Uint8Array[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    const dst = await MvccStore.restore(path.join(dir, 'dst'), [first.value as Uint8Array, ...rest]);
    expect(await observe(dst)).toEqual(at);
    await dst.close();
    await src.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams large stores in several chunks', async () => {
    const dir = await tempDir('snap');
    const src = await MvccStore.open(path.join(dir, 'src'));
    const big = Buffer.alloc(20_000, 7);
    await src.applyBatch(Array.from({ length: 150 }, (_, i) => ({ index: i + 1, request: { put: { key: b(`key${i}`), value: big } } })));
    const chunks = await collect(src.snapshot());
    expect(chunks.length).toBeGreaterThan(4);
    const dst = await MvccStore.restore(path.join(dir, 'dst'), chunks);
    expect(await dst.hashKV()).toEqual(await src.hashKV());
    expect((await dst.range({ key: b('key'), rangeEnd: b('kez'), countOnly: true })).count).toBe(150);
    await dst.close();
    await src.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses damaged streams, and a half-restored directory', async () => {
    const dir = await tempDir('snap');
    const src = await MvccStore.open(path.join(dir, 'src'));
    await history(new Applier(src));
    const chunks = await collect(src.snapshot());
    await src.close();

    const truncated = chunks.slice(0, -1);
    await expect(MvccStore.restore(path.join(dir, 't'), truncated)).rejects.toMatchObject({ code: 'ERR_CORRUPT' });
    // what was written is not mistaken for a store
    await expect(MvccStore.open(path.join(dir, 't'))).rejects.toMatchObject({ code: 'ERR_CORRUPT' });

    const flipped = chunks.map((c) => Buffer.from(c));
    const mid = flipped[1]!;
    mid[mid.length - 1]! ^= 0x01; // a value byte of the last record of the chunk
    await expect(MvccStore.restore(path.join(dir, 'f'), flipped)).rejects.toMatchObject({ code: 'ERR_CORRUPT' });

    await expect(MvccStore.restore(path.join(dir, 'x'), [Buffer.from('nonsense')])).rejects.toMatchObject({ code: 'ERR_CORRUPT' });

    await mkdir(path.join(dir, 'busy'));
    await writeFile(path.join(dir, 'busy', 'file'), 'x');
    await expect(MvccStore.restore(path.join(dir, 'busy'), chunks)).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    await rm(dir, { recursive: true, force: true });
  });
});

/** Every revision of an export, read once. */
async function revisionsOf(exported: StoreExport): Promise<StoreRevision[]> {
  const out: StoreRevision[] = [];
  for await (const chunk of exported.revisions) out.push(...chunk);
  return out;
}

/** observe() but for the applied index, which an import sets to 0 (a new Raft log). */
async function observeData(s: MvccStore): Promise<unknown> {
  const { applied: _applied, ...rest } = (await observe(s)) as Record<string, unknown>;
  return rest;
}

describe("etcd's view of a store: exported in revision order, imported", () => {
  afterEach(removeTempDirs);

  it('exports what a completed compaction keeps, in revision order, and imports it into a store indistinguishable from the original', async () => {
    const dir = await tempDir('export');
    // Physical compaction deferred: the export must leave out what it would delete.
    const src = await MvccStore.open(path.join(dir, 'src'), { deferPhysicalCompaction: true });
    const ap = new Applier(src);
    await history(ap);
    // A txn of three puts and a range delete: sub-revisions above 0.
    await ap.ok({ txn: { compare: [], success: ['t1', 't2', 't3'].map((k) => ({ requestPut: { key: b(k), value: b(k) } })), failure: [] } });
    await ap.del('k', b('k3'));
    const exported = await src.snapshot().export(path.join(dir, 'sort'));
    expect([exported.revision, exported.compactRevision, exported.appliedIndex]).toEqual([src.revision, 30, ap.index]);
    expect(exported.leases).toEqual(await src.leases());
    const revisions = await revisionsOf(exported);
    const order = revisions.map((r) => r.main * 2 ** 20 + r.sub);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    expect(new Set(order).size).toBe(order.length);
    expect(revisions.some((r) => r.sub === 2)).toBe(true);
    // At or below the compaction point only each key's newest version, never a delete.
    const below = revisions.filter((r) => r.main <= 30);
    expect(below.every((r) => !r.tombstone)).toBe(true);
    const keysBelow = below.map((r) => (r.tombstone ? r.key : r.kv.key).toString('latin1'));
    expect(new Set(keysBelow).size).toBe(keysBelow.length);
    // Every put above it, whole.
    const live = await src.range({ key: b('\0'), rangeEnd: ALL });
    for (const kv of live.kvs)
      expect(revisions.find((r) => !r.tombstone && r.main === kv.modRevision && r.kv.key.equals(kv.key))).toEqual(expect.objectContaining({ kv }));

    const dst = await MvccStore.importRevisions(path.join(dir, 'dst'), {
      revision: exported.revision,
      compactRevision: exported.compactRevision,
      revisions,
      leases: exported.leases,
    });
    expect(dst.appliedIndex).toBe(0);
    expect(await observeData(dst)).toEqual(await observeData(src));
    // Maintenance.Hash covers EVENTS too: an event at the compaction point names the put it
    // superseded, which etcd's format no longer holds, so that hash is the one thing that differs.
    await dst.close();
    await src.close();
  });

  it('applies a compaction point given above revisions it was not applied to, as etcd finishes a scheduled compaction', async () => {
    const dir = await tempDir('export');
    const src = await MvccStore.open(path.join(dir, 'src'));
    const ap = new Applier(src);
    await history(ap);
    const revisions = await revisionsOf(await src.snapshot().export(path.join(dir, 'sort')));
    const at = src.revision - 3;
    await ap.ok({ compaction: { revision: at } });
    const dst = await MvccStore.importRevisions(path.join(dir, 'dst'), { revision: src.revision, compactRevision: at, revisions, leases: await src.leases() });
    expect(await observeData(dst)).toEqual(await observeData(src));
    await dst.close();
    await src.close();
  });

  it('refuses a revision given twice or one past the store revision, and writes no store', async () => {
    const dir = await tempDir('export');
    const kv = { key: b('a'), value: b('1'), createRevision: 2, modRevision: 2, version: 1, lease: 0 };
    const twice: StoreRevision[] = [
      { main: 2, sub: 0, tombstone: false, kv },
      { main: 2, sub: 0, tombstone: true, key: b('a') },
    ];
    await expect(MvccStore.importRevisions(path.join(dir, 'a'), { revision: 2, compactRevision: 0, revisions: twice, leases: [] })).rejects.toMatchObject({
      code: 'ERR_CORRUPT',
    });
    await expect(MvccStore.importRevisions(path.join(dir, 'b'), { revision: 1, compactRevision: 0, revisions: [twice[0]!], leases: [] })).rejects.toMatchObject(
      { code: 'ERR_CORRUPT' },
    );
    // Refused before anything was written: no store there (opening the directory makes a fresh one).
    await expect(MvccStore.open(path.join(dir, 'b'))).resolves.toMatchObject({ revision: 1 });
  });
});
