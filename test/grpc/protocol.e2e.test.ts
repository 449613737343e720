/**
 * The etcd v3 gRPC protocol itself, with a bare grpc-js client built from qkv's proto files,
 * on a 3-member qkv cluster (through a follower) and on a real etcd 3.4, compared response by
 * response: watch streams (ids, several watchers per stream, cancel, progress, filters, prev_kv,
 * duplicate ids, compaction, fragments), status codes and messages of bad requests, nested
 * txns, the keep-alive stream, snapshot streams; then what only a cluster has: leader moves,
 * and shutdown with open streams.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import type { LocalCluster } from '../server/cluster_harness.js';
import type { ProtoMessage, ProtoValue } from '../../src/grpc/proto.js';
import { type RealEtcd, sameOnBoth, sleep, startBesideEtcd } from './helpers.js';
import { RawClient, type Stream } from './raw_client.js';

const b = (s: string): Buffer => Buffer.from(s);
const OK = 0;
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;
const RESOURCE_EXHAUSTED = 8;
const OUT_OF_RANGE = 11;
const UNAVAILABLE = 14;

type Norm = null | boolean | number | string | Norm[] | { [k: string]: Norm };

/** A response without what legitimately differs: ids in headers, revisions made relative to `base`. */
function norm(v: ProtoValue, base: number, key = ''): Norm {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return v.length > 64 ? `<${v.length} bytes>` : v.toString();
  if (Array.isArray(v)) return v.map((x) => norm(x, base));
  if (typeof v === 'object') {
    const o: { [k: string]: Norm } = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'header') o[k] = x && typeof x === 'object' && !Buffer.isBuffer(x) && !Array.isArray(x) ? Number((x as ProtoMessage)['revision']) - base : null;
      else o[k] = norm(x, base, k);
    }
    return o;
  }
  if (typeof v === 'string' && /revision$/.test(key) && /^\d+$/.test(v) && v !== '0') return Number(v) - base;
  return v;
}

async function currentRevision(c: RawClient): Promise<number> {
  const r = await c.call('KV', 'Range', { key: b('/no-such-key') });
  return Number((r['header'] as ProtoMessage)['revision']);
}

/** Responses of one stream grouped by watch id (the order across watchers is not specified). */
function byWatch(s: Stream, base: number): Record<string, Norm[]> {
  const out: Record<string, Norm[]> = {};
  for (const m of s.received) {
    const id = String(m['watch_id']);
    const n = norm(m, base) as { [k: string]: Norm };
    // Event responses: etcd stamps the store's revision at send time; keep the events' own.
    if ((m['events'] as ProtoValue[]).length > 0) delete n['header'];
    (out[id] ??= []).push(n);
  }
  return out;
}

describe('the etcd gRPC protocol on qkv and on etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let q: RawClient;
  let e: RawClient;

  beforeAll(async () => {
    let follower: string;
    ({ cluster, etcd, follower } = await startBesideEtcd());
    q = new RawClient(cluster.url(follower));
    e = new RawClient(etcd.endpoint);
  });

  afterAll(async () => {
    q?.close();
    e?.close();
    await cluster?.destroy();
    await etcd?.stop();
  });

  const same = <T>(scenario: (c: RawClient) => Promise<T>): Promise<T> => sameOnBoth(q, e, scenario);

  test('watch stream: ids, several watchers, filters, prev_kv, duplicate id, cancel, progress', async () => {
    const r = await same(async (c) => {
      const base = await currentRevision(c);
      const s = c.stream('Watch', 'Watch');
      s.send({ create_request: { key: b('/wp/a') } });
      await s.count(1);
      s.send({ create_request: { key: b('/wp/'), range_end: b('/wp0'), prev_kv: true } });
      await s.count(2);
      s.send({ create_request: { key: b('/wp/a'), watch_id: 7, filters: ['NOPUT'] } });
      await s.count(3);
      s.send({ create_request: { key: b('/wp/b'), watch_id: 7 } });
      await s.count(4);
      await c.call('KV', 'Put', { key: b('/wp/a'), value: b('1') });
      await c.call('KV', 'Put', { key: b('/wp/b'), value: b('2') });
      await c.call('KV', 'DeleteRange', { key: b('/wp/a') });
      await s.count(10);
      s.send({ cancel_request: { watch_id: 0 } });
      await s.count(11);
      s.send({ cancel_request: { watch_id: 12345 } });
      s.send({ progress_request: {} });
      await s.count(12);
      await c.call('KV', 'Put', { key: b('/wp/a'), value: b('3') });
      await s.count(13);
      // A new auto id after explicit ones and a cancel: etcd never reuses an id on a stream.
      s.send({ create_request: { key: b('/wp/c'), start_revision: base + 1 } });
      await s.count(14);
      await sleep(200);
      s.cancel();
      return { created: s.received.slice(0, 4).map((m) => norm(m, base)), byWatch: byWatch(s, base), total: s.received.length };
    });
    expect(r.created.map((m) => (m as { watch_id: string }).watch_id)).toEqual(['0', '1', '7', '-1']);
    expect(r.byWatch['-1']!.map((m) => (m as { cancel_reason: string }).cancel_reason)).toEqual(['mvcc: duplicate watch ID provided on the WatchStream', '']);
    expect(r.byWatch['0']!.at(-1)).toMatchObject({ canceled: true });
  });

  test('watch stream: start in compacted history is canceled with compact_revision; fragments', async () => {
    const r = await same(async (c) => {
      const base = await currentRevision(c);
      for (const v of ['1', '2', '3']) await c.call('KV', 'Put', { key: b('/wc/k'), value: b(v) });
      await c.call('KV', 'Compact', { revision: base + 2, physical: true });
      const s = c.stream('Watch', 'Watch');
      s.send({ create_request: { key: b('/wc/k'), start_revision: base + 1 } });
      await s.count(2);
      s.send({ create_request: { key: b('/wc/k'), start_revision: base + 2, watch_id: 5 } });
      await s.count(4);
      // Fragments: three 800 kB values deleted in one revision, with prev_kv: 2.4 MB > etcd's
      // watch limit (1.5 MiB request limit + 512 KiB gRPC overhead).
      const big = Buffer.alloc(800_000, 0x61);
      s.send({ create_request: { key: b('/wf/'), range_end: b('/wf0'), prev_kv: true, fragment: true, watch_id: 9 } });
      s.send({ create_request: { key: b('/wf/'), range_end: b('/wf0'), prev_kv: true, watch_id: 10 } });
      await s.count(6);
      await c.call('KV', 'Put', { key: b('/wf/a'), value: big });
      await c.call('KV', 'Put', { key: b('/wf/b'), value: big });
      await c.call('KV', 'Put', { key: b('/wf/c'), value: big });
      await c.call('KV', 'DeleteRange', { key: b('/wf/'), range_end: b('/wf0'), prev_kv: false });
      await s.until(
        () => s.received.filter((m) => m['watch_id'] === '9').length >= 6 && s.received.filter((m) => m['watch_id'] === '10').length >= 5,
        'fragments',
      );
      s.cancel();
      const summary = (id: string): Norm[] =>
        s.received
          .filter((m) => m['watch_id'] === id)
          .map((m) => ({
            fragment: m['fragment'] as boolean,
            events: (m['events'] as ProtoMessage[]).map((ev) => `${String(ev['type'])} ${(ev['kv'] as ProtoMessage)['key']!.toString()}`),
          }));
      return { compacted: s.received.slice(0, 4).map((m) => norm(m, base)), fragmented: summary('9'), whole: summary('10') };
    });
    expect(r.compacted[1]).toMatchObject({ canceled: true, compact_revision: 2 });
    expect(r.fragmented.slice(-2)).toEqual([
      { fragment: true, events: ['DELETE /wf/a', 'DELETE /wf/b'] },
      { fragment: false, events: ['DELETE /wf/c'] },
    ]);
    expect(r.whole.at(-1)).toEqual({ fragment: false, events: ['DELETE /wf/a', 'DELETE /wf/b', 'DELETE /wf/c'] });
  });

  test('bad requests answer etcd status codes and messages', async () => {
    const r = await same(async (c) => {
      const base = await currentRevision(c);
      await c.call('KV', 'Put', { key: b('/er/k'), value: b('v') });
      await c.call('KV', 'Put', { key: b('/er/k'), value: b('w') });
      await c.call('KV', 'Compact', { revision: base + 1 });
      await c.call('Lease', 'LeaseGrant', { TTL: 60, ID: 424242 });
      const big = (n: number): Buffer => Buffer.alloc(n, 0x62);
      const errors = {
        unknownLease: await c.error('KV', 'Put', { key: b('/er/x'), value: b('v'), lease: 12345 }),
        futureRev: await c.error('KV', 'Range', { key: b('/er/k'), revision: base + 1000 }),
        compactedRev: await c.error('KV', 'Range', { key: b('/er/k'), revision: base }),
        duplicateKey: await c.error('KV', 'Txn', {
          success: [{ request_put: { key: b('/er/d'), value: b('1') } }, { request_delete_range: { key: b('/er/d') } }],
        }),
        tooManyOps: await c.error('KV', 'Txn', { success: Array.from({ length: 129 }, (_, i) => ({ request_put: { key: b(`/er/o${i}`), value: b('v') } })) }),
        tooLarge: await c.error('KV', 'Put', { key: b('/er/big'), value: big(1_600_000) }),
        emptyKey: await c.error('KV', 'Put', { key: b(''), value: b('v') }),
        ignoreValueMissing: await c.error('KV', 'Put', { key: b('/er/none'), ignore_value: true }),
        compactFuture: await c.error('KV', 'Compact', { revision: base + 1000 }),
        compactAgain: await c.error('KV', 'Compact', { revision: base }),
        ttlTooLarge: await c.error('Lease', 'LeaseGrant', { TTL: '9000000001' }),
        leaseExists: await c.error('Lease', 'LeaseGrant', { TTL: 60, ID: 424242 }),
        revokeUnknown: await c.error('Lease', 'LeaseRevoke', { ID: 777 }),
        badTransferee: await c.error('Maintenance', 'MoveLeader', { targetID: '987654321' }),
      };
      // Past the gRPC message limit (request limit + 512 KiB): refused by the transport; the wording is the library's.
      const huge = await c.error('KV', 'Put', { key: b('/er/huge'), value: big(2_200_000) });
      const ttl = await c.call('Lease', 'LeaseTimeToLive', { ID: 31337, keys: true });
      await c.call('Lease', 'LeaseRevoke', { ID: 424242 });
      const written = await c.call('KV', 'Range', { key: b('/er/'), range_end: b('/er0'), count_only: true });
      return { errors, hugeCode: huge.code, unknownTtl: norm(ttl, base), count: written['count'] };
    });
    expect(r.errors.unknownLease).toEqual({ code: NOT_FOUND, details: 'etcdserver: requested lease not found' });
    expect(r.errors.futureRev).toEqual({ code: OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision is a future revision' });
    expect(r.errors.compactedRev).toEqual({ code: OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted' });
    expect(r.errors.duplicateKey).toEqual({ code: INVALID_ARGUMENT, details: 'etcdserver: duplicate key given in txn request' });
    expect(r.errors.tooManyOps).toEqual({ code: INVALID_ARGUMENT, details: 'etcdserver: too many operations in txn request' });
    expect(r.errors.tooLarge).toEqual({ code: INVALID_ARGUMENT, details: 'etcdserver: request is too large' });
    expect(r.errors.badTransferee.code).toBe(FAILED_PRECONDITION);
    expect(r.hugeCode).toBe(RESOURCE_EXHAUSTED);
    expect(r.unknownTtl).toMatchObject({ ID: '31337', TTL: '-1' });
    expect(r.count).toBe('1');
  });

  test('nested txns, read-only txns, range options', async () => {
    const r = await same(async (c) => {
      const base = await currentRevision(c);
      for (const [k, v] of [
        ['/nt/a', '3'],
        ['/nt/b', '1'],
        ['/nt/c', '2'],
      ])
        await c.call('KV', 'Put', { key: b(k!), value: b(v!) });
      const nested = await c.call('KV', 'Txn', {
        compare: [{ key: b('/nt/a'), target: 'VALUE', result: 'EQUAL', value: b('3') }],
        success: [
          {
            request_txn: {
              compare: [{ key: b('/nt/'), range_end: b('/nt0'), target: 'VERSION', result: 'GREATER', version: 0 }],
              success: [
                { request_put: { key: b('/nt/d'), value: b('4'), prev_kv: true } },
                { request_range: { key: b('/nt/'), range_end: b('/nt0'), count_only: true } },
              ],
              failure: [],
            },
          },
          { request_delete_range: { key: b('/nt/b'), prev_kv: true } },
        ],
        failure: [{ request_put: { key: b('/nt/failed'), value: b('x') } }],
      });
      const readOnly = await c.call('KV', 'Txn', {
        compare: [{ key: b('/nt/zz'), target: 'CREATE', result: 'EQUAL', create_revision: 0 }],
        success: [{ request_range: { key: b('/nt/a') } }],
      });
      const ranges = {
        sorted: await c.call('KV', 'Range', { key: b('/nt/'), range_end: b('/nt0'), sort_order: 'DESCEND', sort_target: 'VALUE', limit: 2 }),
        byMod: await c.call('KV', 'Range', { key: b('/nt/'), range_end: b('/nt0'), sort_target: 'MOD', keys_only: true }),
        minMod: await c.call('KV', 'Range', { key: b('/nt/'), range_end: b('/nt0'), min_mod_revision: base + 3, serializable: true }),
        fromKey: await c.call('KV', 'Range', { key: b('/nt/c'), range_end: Buffer.from([0]), keys_only: true, limit: 1 }),
        atRev: await c.call('KV', 'Range', { key: b('/nt/'), range_end: b('/nt0'), revision: base + 2 }),
      };
      // etcd fills only the outer txn's header revision (a nested TxnResponse says 0); qkv fills
      // both. Known difference, left out of the comparison.
      const inner = (nested['responses'] as ProtoMessage[])[0]!['response_txn'] as ProtoMessage;
      inner['header'] = null;
      return { nested: norm(nested, base), readOnly: norm(readOnly, base), ranges: norm(ranges as unknown as ProtoMessage, base) };
    });
    expect(r.nested).toMatchObject({ succeeded: true });
  });

  test('lease keep-alive stream, TTLs, leases list', async () => {
    const r = await same(async (c) => {
      await c.call('Lease', 'LeaseGrant', { TTL: 30, ID: 5151 });
      await c.call('KV', 'Put', { key: b('/le/k'), value: b('v'), lease: 5151 });
      const ka = c.stream('Lease', 'LeaseKeepAlive');
      ka.send({ ID: 5151 });
      ka.send({ ID: 999 });
      ka.send({ ID: 5151 });
      const answers = await ka.count(3);
      ka.cancel();
      const ttl = await c.call('Lease', 'LeaseTimeToLive', { ID: 5151, keys: true });
      const leases = await c.call('Lease', 'LeaseLeases', {});
      await c.call('Lease', 'LeaseRevoke', { ID: 5151 });
      const after = await c.call('KV', 'Range', { key: b('/le/k') });
      return {
        answers: answers.map((m) => norm(m, 0)).map((m) => ({ ...(m as object), header: null })),
        ttl: { ID: ttl['ID'], grantedTTL: ttl['grantedTTL'], keys: (ttl['keys'] as Buffer[]).map(String), remainingOk: Number(ttl['TTL']) > 25 },
        listed: (leases['leases'] as ProtoMessage[]).some((l) => l['ID'] === '5151'),
        after: after['count'],
      };
    });
    expect(r.answers).toEqual([
      { header: null, ID: '5151', TTL: '30' },
      { header: null, ID: '999', TTL: '0' },
      { header: null, ID: '5151', TTL: '30' },
    ]);
    expect(r.listed).toBe(true);
    expect(r.after).toBe('0');
  });

  test('snapshot stream: remaining_bytes counts down, a SHA-256 of the rest comes last', async () => {
    await same(async (c) => {
      const s = c.serverStream('Maintenance', 'Snapshot');
      await s.until(() => s.ended || s.status !== undefined, 'the end of the snapshot');
      const remaining = s.received.map((m) => Number(m['remaining_bytes']));
      const blobs = s.received.map((m) => m['blob'] as Buffer);
      const body = Buffer.concat(blobs.slice(0, -1));
      return {
        status: s.status?.code,
        countsDown: remaining.every((x, i) => i === 0 || x <= remaining[i - 1]!),
        lastTwoZero: remaining.slice(-2).join(','),
        sizeConsistent: remaining[0]! + blobs[0]!.length === body.length,
        digestOk: createHash('sha256').update(body).digest().equals(blobs.at(-1)!),
      };
    });
  });

  test('status, member list, alarms, defragment, hashkv answer with full headers', async () => {
    const r = await same(async (c) => {
      const status = await c.call('Maintenance', 'Status', {});
      const members = await c.call('Cluster', 'MemberList', {});
      const alarms = await c.call('Maintenance', 'Alarm', { action: 'GET' });
      const defrag = await c.call('Maintenance', 'Defragment', {});
      const hash = await c.call('Maintenance', 'HashKV', { revision: 0 });
      const header = status['header'] as ProtoMessage;
      return {
        headerFilled: ['cluster_id', 'member_id', 'revision', 'raft_term'].every((k) => header[k] !== '0'),
        leaderKnown: status['leader'] !== '0',
        hasVersion: String(status['version']).startsWith('3.4'),
        members: (members['members'] as ProtoMessage[]).every((m) => m['ID'] !== '0' && (m['clientURLs'] as string[]).length === 1),
        alarms: alarms['alarms'],
        // etcd 3.4 answers Defragment without a header; qkv with its full header.
        defragHeader: c === q ? (defrag['header'] as ProtoMessage)['member_id'] === header['member_id'] : defrag['header'] === null,
        hashNonZero: hash['hash'] !== 0,
      };
    });
    expect(r).toEqual({ headerFilled: true, leaderKnown: true, hasVersion: true, members: true, alarms: [], defragHeader: true, hashNonZero: true });
  });

  test('qkv: MoveLeader from any member hands leadership over', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.config.members.find((m) => m.name !== leader)!;
    const via = new RawClient(cluster.url(cluster.names.find((n) => n !== leader && n !== target.name) ?? leader));
    try {
      const resp = await via.call('Maintenance', 'MoveLeader', { targetID: String(target.id) });
      expect(resp['header']).toBeTruthy();
      expect(await cluster.waitForLeader()).toBe(target.name);
      const status = await via.call('Maintenance', 'Status', {});
      expect(status['leader']).toBe(String(target.id));
    } finally {
      via.close();
    }
  });

  test('qkv: SIGTERM with open watch and keep-alive streams ends them (UNAVAILABLE) and exits promptly', async () => {
    const name = cluster.names[2]!;
    const c = new RawClient(cluster.url(name));
    try {
      const w = c.stream('Watch', 'Watch');
      w.send({ create_request: { key: b('/sd/'), range_end: b('/sd0') } });
      await w.count(1);
      await c.call('Lease', 'LeaseGrant', { TTL: 30, ID: 6161 });
      const ka = c.stream('Lease', 'LeaseKeepAlive');
      ka.send({ ID: 6161 });
      await ka.count(1);
      const started = Date.now();
      await cluster.kill(name, 'SIGTERM');
      expect(Date.now() - started).toBeLessThan(5_000);
      await w.until(() => w.status !== undefined, 'the watch stream to end');
      await ka.until(() => ka.status !== undefined, 'the keep-alive stream to end');
      expect(w.status!.code).toBe(UNAVAILABLE);
      expect(ka.status!.code).not.toBe(OK);
      cluster.start(name);
      await cluster.waitForLeader();
    } finally {
      c.close();
    }
  });
});
