/**
 * The `etcd3` npm client, unchanged, against a 3-member qkv cluster over gRPC (every member
 * among its hosts, so writes land on followers too): KV, the txn builder, leases kept alive,
 * the watch builder, and etcd3's own Lock and Election recipes with contenders on different
 * members.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Etcd3, EtcdLockFailedError, type IKeyValue } from 'etcd3';
import { LocalCluster } from '../server/cluster_harness.js';
import { sleep } from './helpers.js';

describe('etcd3 (npm) against qkv', () => {
  let cluster: LocalCluster;
  let client: Etcd3;
  const clients: Etcd3[] = [];
  /** A client bound to one member. */
  const on = (name: string): Etcd3 => {
    const c = new Etcd3({ hosts: cluster.url(name), dialTimeout: 5_000 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    await cluster.waitForLeader();
    client = new Etcd3({ hosts: cluster.endpoints, dialTimeout: 5_000 });
    clients.push(client);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.destroy();
  });

  test('KV: put, get, prefix, count, binary values, delete with previous values', async () => {
    await client.put('/e3/a').value('1');
    await client.put('/e3/b').value('2');
    await client.put('/e3/c').value(Buffer.from([0, 255, 1]));
    expect(await client.get('/e3/a').string()).toBe('1');
    expect(await client.get('/e3/c').buffer()).toEqual(Buffer.from([0, 255, 1]));
    expect(await client.getAll().prefix('/e3/').keys()).toEqual(['/e3/a', '/e3/b', '/e3/c']);
    expect(await client.getAll().prefix('/e3/').count()).toBe(3);
    expect(await client.getAll().prefix('/e3/').sort('Key', 'Descend').limit(2).keys()).toEqual(['/e3/c', '/e3/b']);
    const raw = await client.get('/e3/a').exec();
    expect(raw.header.cluster_id).toMatch(/^\d+$/);
    expect(cluster.config.members.map((m) => String(m.id))).toContain(raw.header.member_id);
    expect(Number(raw.kvs[0]!.mod_revision)).toBeGreaterThan(1);
    const del = await client.delete().prefix('/e3/').getPrevious();
    expect(del.map((kv: IKeyValue) => kv.key.toString()).sort()).toEqual(['/e3/a', '/e3/b', '/e3/c']);
    expect(await client.get('/e3/a').string()).toBeNull();
  });

  test('txn builder: if / then / else, both branches', async () => {
    await client.put('/e3t/k').value('v');
    const yes = await client
      .if('/e3t/k', 'Value', '==', 'v')
      .then(client.put('/e3t/k').value('v2'), client.put('/e3t/other').value('o'))
      .else(client.put('/e3t/k').value('nope'))
      .commit();
    expect(yes.succeeded).toBe(true);
    expect(await client.get('/e3t/k').string()).toBe('v2');
    const no = await client.if('/e3t/k', 'Version', '>', 5).then(client.put('/e3t/k').value('never')).else(client.get('/e3t/other')).commit();
    expect(no.succeeded).toBe(false);
    expect(no.responses[0]!.response_range!.kvs[0]!.value.toString()).toBe('o');
    const create = await client.if('/e3t/new', 'Create', '==', 0).then(client.put('/e3t/new').value('first')).commit();
    expect(create.succeeded).toBe(true);
    const again = await client.if('/e3t/new', 'Create', '==', 0).then(client.put('/e3t/new').value('second')).commit();
    expect(again.succeeded).toBe(false);
    expect(await client.get('/e3t/new').string()).toBe('first');
  });

  test('leases: keep-alive holds a key past its TTL, revoke deletes it, a released lease expires', async () => {
    const lease = client.lease(2);
    let renewals = 0;
    lease.on('keepaliveSucceeded', () => renewals++);
    await lease.put('/e3l/held').value('x');
    const id = await lease.grant();
    expect(id).toMatch(/^\d+$/);
    await sleep(3_500);
    expect(renewals).toBeGreaterThanOrEqual(2);
    expect(await client.get('/e3l/held').string()).toBe('x');
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    expect(ttl.keys.map((k) => k.toString())).toEqual(['/e3l/held']);
    expect(Number(ttl.grantedTTL)).toBe(2);
    await lease.revoke();
    expect(await client.get('/e3l/held').string()).toBeNull();

    const released = client.lease(1);
    await released.put('/e3l/released').value('y');
    released.release();
    await LocalCluster.until(async () => (await client.get('/e3l/released').string()) === null, 'the released lease to expire', 10_000);
  });

  test('watch builder: prefix with previous values, several watchers on one client, cancel', async () => {
    const events: string[] = [];
    const single: string[] = [];
    const w1 = await client.watch().prefix('/e3w/').withPreviousKV().create();
    const w2 = await client.watch().key('/e3w/a').create();
    w1.on('put', (kv, prev) => events.push(`put ${kv.key.toString()}=${kv.value.toString()} prev=${prev?.value.toString() ?? '-'}`));
    w1.on('delete', (kv, prev) => events.push(`delete ${kv.key.toString()} prev=${prev?.value.toString() ?? '-'}`));
    w2.on('put', (kv) => single.push(kv.value.toString()));
    await client.put('/e3w/a').value('1');
    await client.put('/e3w/b').value('2');
    await client.put('/e3w/a').value('3');
    await client.delete().key('/e3w/a');
    await LocalCluster.until(() => events.length === 4 && single.length === 2, 'watch events', 10_000);
    expect(events).toEqual(['put /e3w/a=1 prev=-', 'put /e3w/b=2 prev=-', 'put /e3w/a=3 prev=1', 'delete /e3w/a prev=3']);
    expect(single).toEqual(['1', '3']);
    await w2.cancel();
    await client.put('/e3w/a').value('4');
    await LocalCluster.until(() => events.length === 5, 'the event after a cancel', 10_000);
    await sleep(200);
    expect(single).toEqual(['1', '3']);

    // History: a watch from an earlier revision replays it.
    const rev = Number((await client.get('/e3w/a').exec()).header.revision);
    const replay: string[] = [];
    const w3 = await client
      .watch()
      .prefix('/e3w/')
      .startRevision(String(rev - 3))
      .create();
    w3.on('data', (res) => replay.push(...res.events.map((e) => `${e.type} ${e.kv.key.toString()}`)));
    await LocalCluster.until(() => replay.length === 4, 'the replayed history', 10_000);
    expect(replay).toEqual(['Put /e3w/b', 'Put /e3w/a', 'Delete /e3w/a', 'Put /e3w/a']);
    await w1.cancel();
    await w3.cancel();
  });

  test('Lock recipe: a held lock refuses others; retrying holders on three members never overlap', async () => {
    const [a, b] = cluster.names.map(on);
    const held = await a!.lock('/e3-lock').ttl(5).acquire();
    // etcd3's lock is a try-lock: a second contender fails at once while the first holds it.
    await expect(b!.lock('/e3-lock').ttl(5).acquire()).rejects.toBeInstanceOf(EtcdLockFailedError);
    await held.release();

    const trace: string[] = [];
    await Promise.all(
      cluster.names.map(async (name, i) => {
        const c = on(name);
        for (;;) {
          try {
            await c
              .lock('/e3-lock')
              .ttl(5)
              .do(async () => {
                trace.push(`start-${i}`);
                await sleep(150);
                trace.push(`end-${i}`);
              });
            return;
          } catch (err) {
            if (!(err instanceof EtcdLockFailedError)) throw err;
            await sleep(20 + Math.random() * 30);
          }
        }
      }),
    );
    expect(trace).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) expect(trace[i + 1]).toBe(trace[i]!.replace('start-', 'end-'));
  });

  test('Election recipe: one leader at a time; resigning hands over; observers follow', async () => {
    const [a, b, c] = cluster.names.map(on);
    const observer = await c!.election('/e3-election', 5).observe();
    const seen: string[] = [];
    observer.on('change', (leader) => seen.push(String(leader)));
    const first = a!.election('/e3-election', 5).campaign('alpha');
    await first.wait();
    const second = b!.election('/e3-election', 5).campaign('beta');
    let secondElected = false;
    second.on('elected', () => (secondElected = true));
    await sleep(500);
    expect(secondElected).toBe(false);
    expect(await c!.election('/e3-election').leader()).toBe('alpha');
    await first.resign();
    await second.wait();
    expect(secondElected).toBe(true);
    expect(await c!.election('/e3-election').leader()).toBe('beta');
    await LocalCluster.until(() => seen.includes('beta'), 'the observer to see beta', 10_000);
    await second.resign();
    await observer.cancel();
  });
});
