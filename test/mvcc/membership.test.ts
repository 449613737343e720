/**
 * The membership as replicated store state (etcd's members and members_removed buckets):
 * seeded once, changed only by applied member changes and attributes, never refused by an
 * alarm, kept across a reopen, carried by the snapshot stream, and malformed requests refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { ClusterRecord, MemberRecord, MvccRequest } from '../../src/mvcc/types.js';
import { Applier, removeTempDirs, tempDir } from './helpers.js';

/** Each test member's raft id, in order of addition. */
const RAFT_IDS: Record<string, number> = { '10': 1, '20': 2, '15': 3, '30': 4, '40': 5 };

const member = (id: string, over: Partial<MemberRecord> = {}): MemberRecord => ({
  id,
  raftId: RAFT_IDS[id] ?? 9,
  name: '',
  peerUrls: [`http://127.0.0.1:${id}`],
  clientUrls: [],
  isLearner: false,
  ...over,
});

const seed = (): ClusterRecord => ({
  id: '99',
  token: 't',
  bootstrap: [member('10'), member('20')],
  members: [member('10'), member('20')],
  removed: [],
  nextRaftId: 3,
});

const change = (c: 'add' | 'promote' | 'remove' | 'update', m: MemberRecord): MvccRequest => ({ memberChange: { change: c, member: m } });

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe('membership in the store', () => {
  afterEach(removeTempDirs);

  it('is seeded once; add, publish, promote, update and remove change it in order; a remove is for good', async () => {
    const dir = await tempDir();
    const store = await MvccStore.open(dir);
    const ap = new Applier(store);
    try {
      expect(store.cluster()).toBeUndefined();
      await store.seedCluster(seed());
      // A second seed keeps what is there.
      await store.seedCluster({ ...seed(), id: '1' });
      expect(store.cluster()?.id).toBe('99');
      await ap.ok(change('add', member('15', { isLearner: true })));
      await ap.ok({ memberAttributes: { id: '15', name: 'n15', clientUrls: ['http://c:15'] } });
      // Attributes of a member not in the table change nothing.
      await ap.ok({ memberAttributes: { id: '77', name: 'ghost', clientUrls: [] } });
      await ap.ok(change('promote', member('15')));
      await ap.ok(change('update', member('20', { peerUrls: ['http://moved:20'] })));
      const removed = await ap.ok(change('remove', member('10')));
      expect(removed).toEqual({
        membership: {
          header: { revision: 1 },
          members: [member('15', { name: 'n15', clientUrls: ['http://c:15'] }), member('20', { peerUrls: ['http://moved:20'] })],
        },
      });
      const c = store.cluster()!;
      expect(c.removed).toEqual(['10']);
      // The next member added gets a raft id none ever had.
      expect(c.nextRaftId).toBe(4);
      // The bootstrap membership is what the cluster started from, whatever happened since.
      expect(c.bootstrap).toEqual(seed().bootstrap);
      // No revision: membership is not keys.
      expect(store.revision).toBe(1);
    } finally {
      await store.close();
    }
    const again = await MvccStore.open(dir);
    try {
      expect(again.cluster()?.members.map((m) => m.id)).toEqual(['15', '20']);
      expect(again.cluster()?.removed).toEqual(['10']);
    } finally {
      await again.close();
    }
  });

  it('an alarm never refuses a membership change', async () => {
    const store = await MvccStore.open(await tempDir());
    const ap = new Applier(store);
    try {
      await store.seedCluster(seed());
      await ap.ok({ alarm: { action: 'ACTIVATE', memberId: '1', alarm: 'CORRUPT' } });
      await ap.ok(change('add', member('30')));
      await ap.ok({ memberAttributes: { id: '30', name: 'n30', clientUrls: [] } });
      expect(store.cluster()?.members.map((m) => m.name)).toEqual(['', '', 'n30']);
    } finally {
      await store.close();
    }
  });

  it('malformed membership requests are refused and change nothing', async () => {
    const store = await MvccStore.open(await tempDir());
    const ap = new Applier(store);
    try {
      await store.seedCluster(seed());
      const bad = [
        { memberChange: { change: 'demote', member: member('10') } },
        { memberChange: { change: 'add', member: { ...member('10'), id: '0' } } },
        { memberChange: { change: 'add', member: { ...member('10'), peerUrls: 'x' } } },
        { memberChange: { change: 'add', member: { ...member('30'), raftId: 0 } } },
        { memberChange: { change: 'add', member: { ...member('30'), raftId: 1.5 } } },
        { memberAttributes: { id: 'x', name: 'n', clientUrls: [] } },
      ] as unknown as MvccRequest[];
      for (const req of bad) expect(await ap.err(req)).toBe('ERR_INVALID_ARGUMENT');
      expect(store.cluster()).toEqual(seed());
    } finally {
      await store.close();
    }
  });

  it('travels in the snapshot stream: a restored store has the same membership', async () => {
    const src = await MvccStore.open(await tempDir());
    const ap = new Applier(src);
    await src.seedCluster(seed());
    await ap.ok(change('add', member('40', { isLearner: true })));
    await ap.put('k', 'v');
    const expected = src.cluster();
    const chunks = await collect(src.snapshot());
    await src.close();
    const dst = await MvccStore.restore(await tempDir(), chunks);
    try {
      expect(dst.cluster()).toEqual(expected);
    } finally {
      await dst.close();
    }
  });
});
