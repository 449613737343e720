/**
 * Alarms as replicated store state (etcd's alarm store and applierV3Capped): activate, list,
 * deactivate; an active NOSPACE refuses puts, txns with puts and lease grants and lets reads,
 * deletes, compaction and revokes through; a refused request changes nothing; alarms survive a
 * reopen and travel in the snapshot stream; the whole-store hash covers them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { AlarmRequest } from '../../src/api/kv.js';
import type { MvccRequest } from '../../src/mvcc/types.js';
import { META_KEY } from '../../src/mvcc/keys.js';
import { packValue, unpackValue } from '../../src/mvcc/records.js';
import { Applier, b, removeTempDirs, tempDir } from './helpers.js';

const activate = (memberId: string, alarm: AlarmRequest['alarm'] = 'NOSPACE'): MvccRequest => ({ alarm: { action: 'ACTIVATE', memberId, alarm } });
const deactivate = (memberId: string, alarm: AlarmRequest['alarm'] = 'NOSPACE'): MvccRequest => ({ alarm: { action: 'DEACTIVATE', memberId, alarm } });

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe('alarms', () => {
  afterEach(removeTempDirs);

  it('activate, list (all or one type, in order), deactivate; answers carry the alarm', async () => {
    const store = await MvccStore.open(await tempDir());
    const ap = new Applier(store);
    try {
      expect(store.alarms()).toEqual([]);
      expect(await ap.ok(activate('5'))).toEqual({ alarm: { header: { revision: 1 }, alarms: [{ memberId: '5', alarm: 'NOSPACE' }] } });
      // Activating it again answers the alarm already there; uint64 member ids stay exact.
      expect(await ap.ok(activate('5'))).toEqual({ alarm: { header: { revision: 1 }, alarms: [{ memberId: '5', alarm: 'NOSPACE' }] } });
      await ap.ok(activate('12345678901234567890'));
      await ap.ok(activate('0'));
      await ap.ok(activate('7', 'CORRUPT'));
      expect(store.alarms()).toEqual([
        { memberId: '0', alarm: 'NOSPACE' },
        { memberId: '5', alarm: 'NOSPACE' },
        { memberId: '12345678901234567890', alarm: 'NOSPACE' },
        { memberId: '7', alarm: 'CORRUPT' },
      ]);
      expect(store.alarms('CORRUPT')).toEqual([{ memberId: '7', alarm: 'CORRUPT' }]);
      // Deactivating what is not there changes nothing and answers no alarm.
      expect(await ap.ok(deactivate('99'))).toEqual({ alarm: { header: { revision: 1 }, alarms: [] } });
      expect(await ap.ok(deactivate('7', 'CORRUPT'))).toEqual({ alarm: { header: { revision: 1 }, alarms: [{ memberId: '7', alarm: 'CORRUPT' }] } });
      // NONE is no alarm: activating it raises nothing.
      expect(await ap.ok(activate('3', 'NONE'))).toEqual({ alarm: { header: { revision: 1 }, alarms: [] } });
      expect(store.alarms('NOSPACE').map((a) => a.memberId)).toEqual(['0', '5', '12345678901234567890']);
      for (const m of ['0', '5', '12345678901234567890']) await ap.ok(deactivate(m));
      expect(store.alarms()).toEqual([]);
      expect(store.revision).toBe(1); // alarms make no revision
    } finally {
      await store.close();
    }
  });

  it('NOSPACE refuses put, txn with a put in either branch, lease grant; the refused request changes nothing', async () => {
    const store = await MvccStore.open(await tempDir());
    const ap = new Applier(store);
    try {
      await ap.grant(9);
      await ap.put('a', '1', 9);
      await ap.put('b', '2');
      await ap.ok(activate('1'));
      const rev = store.revision;
      const hashBefore = await store.hash();
      const put = { key: b('a'), value: b('x') };
      expect(await ap.err({ put })).toBe('ERR_NO_SPACE');
      expect(await ap.err({ txn: { success: [{ requestPut: put }] } })).toBe('ERR_NO_SPACE');
      // As etcd's cost of a txn: a put in the branch not taken counts too.
      expect(await ap.err({ txn: { compare: [{ key: b('a'), target: 'VERSION', result: 'EQUAL', version: 1 }], failure: [{ requestPut: put }] } })).toBe(
        'ERR_NO_SPACE',
      );
      expect(await ap.err({ leaseGrant: { id: 10, ttl: 60 } })).toBe('ERR_NO_SPACE');
      const r = await ap.result({ put });
      expect(r.status === 'error' && r.error.message).toBe('etcdserver: mvcc: database space exceeded');
      expect(store.revision).toBe(rev);
      expect((await store.range({ key: b('a') })).kvs[0]!.value.toString()).toBe('1');
      expect((await store.leases()).map((l) => l.id)).toEqual([9]);
      expect(await store.hash()).toEqual(hashBefore);

      // Reads, read-only and delete-only txns, deletes, compaction, revokes go on.
      await ap.ok({ range: { key: b('a') } });
      await ap.ok({ txn: { success: [{ requestRange: { key: b('a') } }] } });
      await ap.ok({ txn: { success: [{ requestDeleteRange: { key: b('b') } }] } });
      expect(store.revision).toBe(rev + 1);
      await ap.ok({ compaction: { revision: rev } });
      await ap.ok({ leaseRevoke: { id: 9 } });
      expect((await store.range({ key: b('a') })).count).toBe(0);
      expect(store.revision).toBe(rev + 2);

      // Disarmed, writes work again.
      await ap.ok(deactivate('1'));
      expect(await ap.put('c', '3')).toBe(rev + 3);
      await ap.grant(11);
    } finally {
      await store.close();
    }
  });

  it('NOSPACE stays while any member has it; CORRUPT refuses every write and a NOSPACE left behind still caps', async () => {
    const store = await MvccStore.open(await tempDir());
    const ap = new Applier(store);
    try {
      await ap.ok(activate('1'));
      await ap.ok(activate('2'));
      await ap.ok(deactivate('1'));
      expect(await ap.err({ put: { key: b('a'), value: b('x') } })).toBe('ERR_NO_SPACE');
      await ap.ok(activate('3', 'CORRUPT'));
      for (const req of [
        { put: { key: b('a'), value: b('x') } },
        { deleteRange: { key: b('a') } },
        { txn: { success: [{ requestRange: { key: b('a') } }] } },
        { compaction: { revision: 1 } },
        { leaseGrant: { id: 4, ttl: 60 } },
        { leaseRevoke: { id: 4 } },
      ] as MvccRequest[]) {
        expect(await ap.err(req)).toBe('ERR_CORRUPT_CLUSTER');
      }
      await ap.ok(deactivate('3', 'CORRUPT'));
      expect(await ap.err({ put: { key: b('a'), value: b('x') } })).toBe('ERR_NO_SPACE');
      await ap.ok({ deleteRange: { key: b('a') } });
    } finally {
      await store.close();
    }
  });

  it('alarms survive a reopen, and a batch sees the alarm an earlier entry of it raised', async () => {
    const dir = await tempDir();
    let store = await MvccStore.open(dir);
    const results = await store.applyBatch([
      { index: 1, request: { put: { key: b('a'), value: b('1') } } },
      { index: 2, request: activate('2') },
      { index: 3, request: { put: { key: b('b'), value: b('2') } } },
    ]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'error']);
    await store.close();
    store = await MvccStore.open(dir);
    try {
      expect(store.alarms()).toEqual([{ memberId: '2', alarm: 'NOSPACE' }]);
      expect(store.appliedIndex).toBe(3);
      const ap = new Applier(store);
      expect(await ap.err({ put: { key: b('c'), value: b('3') } })).toBe('ERR_NO_SPACE');
      await ap.ok(deactivate('2'));
      await store.close();
      store = await MvccStore.open(dir);
      expect(store.alarms()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('data directories from before alarms open with none; a store without alarms writes the meta as before', async () => {
    const dir = await tempDir();
    let store = await MvccStore.open(dir);
    await new Applier(store).put('a', '1');
    await store.close();
    const { Level } = await import('level');
    const rawMeta = async (f?: (db: InstanceType<typeof Level<Buffer, Buffer>>) => Promise<void>): Promise<Record<string, unknown>> => {
      const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      try {
        await f?.(db);
        return unpackValue((await db.get(META_KEY))!) as Record<string, unknown>;
      } finally {
        await db.close();
      }
    };
    // The meta record exactly as qkv wrote it before alarms existed.
    await rawMeta((db) => db.put(META_KEY, packValue({ v: 1, rev: 2, compactRev: 0, appliedIndex: 1, physRev: 0, physTarget: 0, cursor: null })));
    store = await MvccStore.open(dir);
    const ap = new Applier(store);
    expect(store.alarms()).toEqual([]);
    expect(store.revision).toBe(2);
    await ap.ok(activate('1'));
    await store.close();
    expect((await rawMeta())['alarms']).toEqual([['1', 'NOSPACE']]);
    store = await MvccStore.open(dir);
    await new Applier(store).ok(deactivate('1'));
    await store.close();
    expect(Object.keys(await rawMeta()).sort()).toEqual(['appliedIndex', 'compactRev', 'cursor', 'physRev', 'physTarget', 'rev', 'v']);
  });

  it('the snapshot stream carries the alarms, and a store restored from it has them (and the same hash)', async () => {
    const src = await MvccStore.open(await tempDir());
    const ap = new Applier(src);
    await ap.put('a', '1');
    await ap.ok(activate('4'));
    await ap.ok(activate('6', 'CORRUPT'));
    const chunks = await collect(src.snapshot());
    const dst = await MvccStore.restore(await tempDir(), chunks);
    try {
      expect(dst.alarms()).toEqual(src.alarms());
      expect(dst.alarms()).toHaveLength(2);
      expect(await dst.hash()).toEqual(await src.hash());
      expect(await new Applier(dst).err({ put: { key: b('b'), value: b('2') } })).toBe('ERR_CORRUPT_CLUSTER');
    } finally {
      await src.close();
      await dst.close();
    }
  });

  it('the whole-store hash: equal for equal applied state, whatever the physical compaction; alarms, data and leases change it', async () => {
    const mk = async (): Promise<{ s: MvccStore; ap: Applier }> => {
      const s = await MvccStore.open(await tempDir(), { deferPhysicalCompaction: true });
      return { s, ap: new Applier(s) };
    };
    const x = await mk();
    const y = await mk();
    try {
      for (const { ap } of [x, y]) {
        for (let i = 0; i < 20; i++) await ap.put(`k${i % 3}`, `v${i}`);
        await ap.ok({ compaction: { revision: 10 } });
      }
      await y.s.compactionDone(); // y deleted its history physically, x did not
      const hx = await x.s.hash();
      expect(hx).toEqual(await y.s.hash());
      expect(hx.revision).toBe(x.s.revision);
      // A no-op entry moves the applied index only: the hash stays.
      await x.s.apply(++x.ap.index);
      expect(await x.s.hash()).toEqual(hx);
      await x.ap.ok(activate('1'));
      const withAlarm = await x.s.hash();
      expect(withAlarm.hash).not.toBe(hx.hash);
      await x.ap.ok(deactivate('1'));
      expect(await x.s.hash()).toEqual(hx);
      await x.ap.grant(3);
      expect((await x.s.hash()).hash).not.toBe(hx.hash);
      await y.ap.put('k0', 'other');
      expect((await y.s.hash()).hash).not.toBe(hx.hash);
    } finally {
      await x.s.close();
      await y.s.close();
    }
  });
});
