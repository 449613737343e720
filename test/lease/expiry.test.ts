/**
 * Lease expiry end to end over the real store with a controllable clock: the primary lessor
 * finds the expired lease, its revocation (as the leader would propose it) deletes every
 * attached key in one revision, and a kept-alive lease survives a leader change.
 */
import { afterEach, expect, test } from 'vitest';
import { rm } from 'node:fs/promises';
import { Lessor, type Clock } from '../../src/lease/lessor.js';
import { MvccStore } from '../../src/mvcc/store.js';
import type { Event } from '../../src/api/kv.js';
import { tempDir } from '../mvcc/helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

class ManualClock implements Clock {
  t = 0;
  now(): number {
    return this.t;
  }
}

async function openStore(): Promise<MvccStore> {
  const dir = await tempDir('lease');
  const store = await MvccStore.open(dir);
  cleanups.push(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return store;
}

test('an expired lease is revoked and takes all its keys in one revision', async () => {
  const store = await openStore();
  const clock = new ManualClock();
  const lessor = new Lessor({ minTtlSeconds: 2, clock });
  lessor.promote(0);
  let index = 0;
  const apply = async (request: Parameters<MvccStore['apply']>[1]) => {
    const r = await store.apply(++index, request);
    if (r.status === 'ok' && request && 'leaseGrant' in request) lessor.grant(request.leaseGrant.id, request.leaseGrant.ttl);
    if (r.status === 'ok' && request && 'leaseRevoke' in request) lessor.revoke(request.leaseRevoke.id);
    return r;
  };
  await apply({ leaseGrant: { id: 7, ttl: 5 } });
  for (const k of ['a', 'b', 'c']) await apply({ put: { key: Buffer.from(`s/${k}`), value: Buffer.from('x'), lease: 7 } });
  await apply({ put: { key: Buffer.from('s/other'), value: Buffer.from('y') } });
  const events: { rev: number; events: readonly Event[] }[] = [];
  store.onApply((rev, ev) => events.push({ rev, events: ev }));

  clock.t = 4_999;
  expect(lessor.expired(10)).toEqual([]);
  clock.t = 5_000;
  expect(lessor.expired(10)).toEqual([7]);
  for (const id of lessor.expired(10)) expect((await apply({ leaseRevoke: { id } })).status).toBe('ok');

  expect(events).toHaveLength(1);
  expect(events[0]!.events.map((e) => `${e.type} ${e.kv.key.toString()}`)).toEqual(['DELETE s/a', 'DELETE s/b', 'DELETE s/c']);
  const left = await store.range({ key: Buffer.from('s/'), rangeEnd: Buffer.from('s0') });
  expect(left.kvs.map((kv) => kv.key.toString())).toEqual(['s/other']);
  expect(await store.leases()).toEqual([]);
});

test('a lease kept alive through the old leader survives the new leader taking over', async () => {
  const store = await openStore();
  const clock = new ManualClock();
  const oldLeader = new Lessor({ minTtlSeconds: 2, clock });
  oldLeader.promote(0);
  await store.apply(1, { leaseGrant: { id: 9, ttl: 10 } });
  oldLeader.grant(9, 10);
  for (let i = 0; i < 10; i++) {
    clock.t += 5_000;
    expect(oldLeader.renew(9)).toBe(10);
  }
  // The new leader's lessor is loaded from the replicated lease table and promoted.
  const newLeader = new Lessor({ minTtlSeconds: 2, clock });
  newLeader.load(await store.leases());
  newLeader.promote(1_000);
  clock.t += 10_500;
  expect(newLeader.expired(10)).toEqual([]);
  clock.t += 600;
  expect(newLeader.expired(10)).toEqual([9]);
});
