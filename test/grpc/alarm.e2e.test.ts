/**
 * Maintenance.Hash, Maintenance.Alarm and the maintenance gateway paths on a 3-member qkv
 * cluster and on a real etcd 3.4, compared: an alarm raised through any member is replicated
 * (every member refuses puts with etcd's code and message), listed, printed by etcdctl as etcd
 * prints it, and disarmed; /v3/maintenance/{alarm,defragment,snapshot,hash} answer as etcd's.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { LocalCluster } from '../server/cluster_harness.js';
import type { ProtoMessage } from '../../src/grpc/proto.js';
import { etcdctl, hostOf, type RealEtcd, sameOnBoth, startBesideEtcd } from './helpers.js';
import { RawClient } from './raw_client.js';

const b = (s: string): Buffer => Buffer.from(s);
const RESOURCE_EXHAUSTED = 8;
const NO_SPACE = 'etcdserver: mvcc: database space exceeded';

/** A gateway call: HTTP status and parsed body (text if it is not JSON). */
async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: unknown; text: string; type: string | null }> {
  const res = await fetch(base + path, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, text, type: res.headers.get('content-type') };
}

/** A gateway answer without its header (etcd 3.4 sends none on Alarm and Defragment; qkv sends its own). */
function noHeader(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const { header: _h, ...rest } = v as Record<string, unknown>;
  return rest;
}

describe('Hash, alarms and the maintenance gateway on qkv and on etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  /** Through a follower. */
  let q: RawClient;
  let e: RawClient;
  let members: RawClient[];
  let qUrl: string;

  beforeAll(async () => {
    let follower: string;
    ({ cluster, etcd, follower } = await startBesideEtcd());
    qUrl = cluster.url(follower);
    q = new RawClient(qUrl);
    e = new RawClient(etcd.endpoint);
    members = cluster.names.map((n) => new RawClient(cluster.url(n)));
  });

  afterAll(async () => {
    q?.close();
    e?.close();
    for (const m of members ?? []) m.close();
    await cluster?.destroy();
    await etcd?.stop();
  });

  const same = <T>(scenario: (c: RawClient) => Promise<T>): Promise<T> => sameOnBoth(q, e, scenario);

  test('Maintenance.Hash: header and hash; every qkv member hashes its whole store alike', async () => {
    await same(async (c) => {
      await c.call('KV', 'Put', { key: b('/hash/a'), value: b('1') });
      const h = await c.call('Maintenance', 'Hash', {});
      const header = h['header'] as ProtoMessage;
      return {
        keys: Object.keys(h).sort(),
        headerFilled: header['member_id'] !== '0' && header['revision'] !== '0',
        hashIsUint32: typeof h['hash'] === 'number' && (h['hash'] as number) > 0,
      };
    });
    const rev = Number(((await q.call('KV', 'Put', { key: b('/hash/b'), value: b('2') }))['header'] as ProtoMessage)['revision']);
    await LocalCluster.until(
      async () => {
        const hs = await Promise.all(members.map((m) => m.call('Maintenance', 'Hash', {})));
        return hs.every((h) => Number((h['header'] as ProtoMessage)['revision']) === rev) && new Set(hs.map((h) => h['hash'])).size === 1;
      },
      'equal Hash on all members',
      10_000,
    );
    // A put changes it.
    const before = (await q.call('Maintenance', 'Hash', {}))['hash'];
    await q.call('KV', 'Put', { key: b('/hash/b'), value: b('3') });
    expect((await q.call('Maintenance', 'Hash', {}))['hash']).not.toBe(before);
  });

  test('ACTIVATE NOSPACE (member 0 or any id): listed; puts, txns with puts, lease grants refused on every member; reads, deletes, compaction go on; DEACTIVATE clears it', async () => {
    const r = await same(async (c) => {
      await c.call('KV', 'Put', { key: b('/al/k'), value: b('v') });
      const activated = await c.call('Maintenance', 'Alarm', { action: 'ACTIVATE', memberID: '0', alarm: 'NOSPACE' });
      const again = await c.call('Maintenance', 'Alarm', { action: 'ACTIVATE', memberID: '0', alarm: 'NOSPACE' });
      const listed = await c.call('Maintenance', 'Alarm', { action: 'GET' });
      const corruptOnly = await c.call('Maintenance', 'Alarm', { action: 'GET', alarm: 'CORRUPT' });
      const status = await c.call('Maintenance', 'Status', {});
      const put = await c.error('KV', 'Put', { key: b('/al/k'), value: b('w') });
      const txn = await c.error('KV', 'Txn', { success: [{ request_put: { key: b('/al/k'), value: b('w') } }] });
      const txnFailureBranch = await c.error('KV', 'Txn', {
        compare: [{ key: b('/al/k'), target: 'VERSION', result: 'EQUAL', version: '1' }],
        failure: [{ request_put: { key: b('/al/k'), value: b('w') } }],
      });
      const grant = await c.error('Lease', 'LeaseGrant', { TTL: 60 });
      const get = await c.call('KV', 'Range', { key: b('/al/k') });
      const rev = Number((get['header'] as ProtoMessage)['revision']);
      const del = await c.call('KV', 'DeleteRange', { key: b('/al/k') });
      const compact = await c.call('KV', 'Compact', { revision: rev });
      return {
        activated: activated['alarms'],
        again: again['alarms'],
        listed: listed['alarms'],
        corruptOnly: corruptOnly['alarms'],
        statusErrors: status['errors'],
        put,
        txn,
        txnFailureBranch,
        grant,
        value: (get['kvs'] as ProtoMessage[]).map((kv) => String(kv['value'])),
        deleted: del['deleted'],
        compacted: compact['header'] !== undefined,
      };
    });
    const refused = { code: RESOURCE_EXHAUSTED, details: NO_SPACE };
    expect(r).toMatchObject({
      activated: [{ memberID: '0', alarm: 'NOSPACE' }],
      listed: [{ memberID: '0', alarm: 'NOSPACE' }],
      statusErrors: ['alarm:NOSPACE '],
      put: refused,
      grant: refused,
      value: ['v'],
      deleted: '1',
    });

    // Replicated: every qkv member refuses (through its own apply), and lists it.
    for (const m of members) {
      expect(await m.error('KV', 'Put', { key: b('/al/x'), value: b('1') })).toEqual(refused);
      expect((await m.call('Maintenance', 'Alarm', { action: 'GET' }))['alarms']).toEqual([{ memberID: '0', alarm: 'NOSPACE' }]);
    }

    // An unknown member id is taken as it is (etcd does not check it); disarming one keeps the other.
    const r2 = await same(async (c) => {
      const other = await c.call('Maintenance', 'Alarm', { action: 'ACTIVATE', memberID: '12345678901234567890', alarm: 'NOSPACE' });
      const gone = await c.call('Maintenance', 'Alarm', { action: 'DEACTIVATE', memberID: '0', alarm: 'NOSPACE' });
      const notThere = await c.call('Maintenance', 'Alarm', { action: 'DEACTIVATE', memberID: '99', alarm: 'NOSPACE' });
      const still = await c.error('KV', 'Put', { key: b('/al/k'), value: b('w') });
      const last = await c.call('Maintenance', 'Alarm', { action: 'DEACTIVATE', memberID: '12345678901234567890', alarm: 'NOSPACE' });
      const listed = await c.call('Maintenance', 'Alarm', { action: 'GET' });
      await c.call('KV', 'Put', { key: b('/al/k'), value: b('w') });
      return { other: other['alarms'], gone: gone['alarms'], notThere: notThere['alarms'], still, last: last['alarms'], listed: listed['alarms'] };
    });
    expect(r2).toEqual({
      other: [{ memberID: '12345678901234567890', alarm: 'NOSPACE' }],
      gone: [{ memberID: '0', alarm: 'NOSPACE' }],
      notThere: [],
      still: refused,
      last: [{ memberID: '12345678901234567890', alarm: 'NOSPACE' }],
      listed: [],
    });
    for (const m of members) await m.call('KV', 'Put', { key: b('/al/y'), value: b('1') });
  });

  test('etcdctl alarm list / alarm disarm print what etcd prints; after disarm puts work', async () => {
    const endpoints = { q: hostOf(qUrl), e: hostOf(etcd.endpoint) };
    const run = async (ep: string): Promise<unknown> => {
      const empty = await etcdctl(ep, ['alarm', 'list']);
      const raw = new RawClient(`http://${ep}`);
      await raw.call('Maintenance', 'Alarm', { action: 'ACTIVATE', memberID: '5', alarm: 'NOSPACE' });
      raw.close();
      const list = await etcdctl(ep, ['alarm', 'list']);
      const putRefused = await etcdctl(ep, ['put', '/ctl/k', 'v']);
      const disarm = await etcdctl(ep, ['alarm', 'disarm']);
      const after = await etcdctl(ep, ['alarm', 'list']);
      const put = await etcdctl(ep, ['put', '/ctl/k', 'v']);
      return {
        empty: [empty.code, empty.stdout],
        list: [list.code, list.stdout],
        putRefused: [putRefused.code, putRefused.stderr.split('\n').filter((l) => l.startsWith('Error:'))],
        disarm: [disarm.code, disarm.stdout],
        after: [after.code, after.stdout],
        put: [put.code, put.stdout],
      };
    };
    const [rq, re] = await Promise.all([run(endpoints.q), run(endpoints.e)]);
    expect(rq).toEqual(re);
    expect(rq).toMatchObject({
      list: [0, 'memberID:5 alarm:NOSPACE \n'],
      putRefused: [1, [`Error: ${NO_SPACE}`]],
      disarm: [0, 'memberID:5 alarm:NOSPACE \n'],
      put: [0, 'OK\n'],
    });
  });

  test("gateway: /v3/maintenance/alarm, /defragment, /hash answer as etcd (429 for a refused put); /hashkv is qkv's (etcd 3.4 maps it nowhere)", async () => {
    const gw = async (base: string): Promise<unknown> => {
      const empty = await post(base, '/v3/maintenance/alarm', { action: 'GET' });
      const act = await post(base, '/v3/maintenance/alarm', { action: 'ACTIVATE', memberID: '3', alarm: 'NOSPACE' });
      const list = await post(base, '/v3/maintenance/alarm', { action: 'GET', alarm: 'NOSPACE' });
      const put = await post(base, '/v3/kv/put', { key: b('/gw/k').toString('base64'), value: 'dg==' });
      const deact = await post(base, '/v3/maintenance/alarm', { action: 'DEACTIVATE', memberID: '3', alarm: 'NOSPACE' });
      const badAction = await post(base, '/v3/maintenance/alarm', { action: 'BOGUS' });
      const putAfter = await post(base, '/v3/kv/put', { key: b('/gw/k').toString('base64'), value: 'dg==' });
      const defrag = await post(base, '/v3/maintenance/defragment', {});
      const hash = await post(base, '/v3/maintenance/hash', { revision: '999999' });
      const h = hash.body as { header: { revision: string }; hash: number };
      return {
        empty: [empty.status, noHeader(empty.body)],
        act: [act.status, noHeader(act.body)],
        list: [list.status, noHeader(list.body)],
        put: [put.status, put.body],
        deact: [deact.status, noHeader(deact.body)],
        badAction: badAction.status,
        putAfter: putAfter.status,
        defrag: [defrag.status, noHeader(defrag.body)],
        // Hash, not HashKV: the revision is ignored, no compact_revision.
        hash: [hash.status, Object.keys(h).sort(), Number(h.header.revision) > 0, typeof h.hash],
      };
    };
    const [rq, re] = await Promise.all([gw(qUrl), gw(etcd.endpoint)]);
    expect(rq).toEqual(re);
    expect(rq).toMatchObject({
      act: [200, { alarms: [{ memberID: '3', alarm: 'NOSPACE' }] }],
      put: [429, { error: NO_SPACE, message: NO_SPACE, code: RESOURCE_EXHAUSTED }],
      putAfter: 200,
      hash: [200, ['hash', 'header'], true, 'number'],
    });
    // qkv answers Alarm and Defragment with its header, as over gRPC.
    const defrag = await post(qUrl, '/v3/maintenance/defragment', {});
    expect((defrag.body as { header: { member_id: string } }).header.member_id).not.toBe('0');
    expect((await post(etcd.endpoint, '/v3/maintenance/hashkv', {})).status).toBe(404);
    const hkv = await post(qUrl, '/v3/maintenance/hashkv', { revision: '0' });
    expect(hkv.status).toBe(200);
    // HashKV's answer (the store was compacted above): compact_revision is there.
    expect(Object.keys(hkv.body as object).sort()).toEqual(['compact_revision', 'hash', 'header']);
  });

  test('gateway: /v3/maintenance/snapshot streams {"result": ...} lines of the gRPC snapshot: its blobs, counted down, SHA-256 last', async () => {
    const grpcBlobs = async (): Promise<Buffer[]> => {
      const s = q.serverStream('Maintenance', 'Snapshot');
      await s.until(() => s.ended || s.status !== undefined, 'the end of the snapshot');
      return s.received.map((m) => m['blob'] as Buffer);
    };
    const shape = async (base: string): Promise<{ summary: unknown; blobs: Buffer[] }> => {
      const r = await post(base, '/v3/maintenance/snapshot', {});
      const lines = r.text.split('\n');
      const objs = lines.filter((l) => l.length > 0).map((l) => JSON.parse(l) as { result: { remaining_bytes?: string; blob: string } });
      const blobs = objs.map((o) => Buffer.from(o.result.blob, 'base64'));
      const remaining = objs.map((o) => Number(o.result.remaining_bytes ?? 0));
      const body = Buffer.concat(blobs.slice(0, -1));
      return {
        blobs,
        summary: {
          status: r.status,
          type: r.type,
          endsWithNewline: lines.at(-1) === '',
          onlyResults: objs.every((o) => Object.keys(o).join() === 'result'),
          countsDown: remaining.every((x, i) => i === 0 || x <= remaining[i - 1]!),
          lastTwoZero: remaining.slice(-2).every((x) => x === 0),
          sizeConsistent: remaining[0]! + blobs[0]!.length === body.length,
          digestOk: createHash('sha256').update(body).digest().equals(blobs.at(-1)!),
          badBody: (await post(base, '/v3/maintenance/snapshot', 'garbage')).status,
        },
      };
    };
    // Nothing is written meanwhile: the gateway's bytes are the gRPC stream's.
    const [sq, se] = await Promise.all([shape(qUrl), shape(etcd.endpoint)]);
    expect(sq.summary).toEqual(se.summary);
    expect(sq.summary).toMatchObject({ status: 200, digestOk: true, onlyResults: true });
    const viaGrpc = await grpcBlobs();
    expect(Buffer.concat(sq.blobs.slice(0, -1)).equals(Buffer.concat(viaGrpc.slice(0, -1)))).toBe(true);
  });

  test("qkv: an alarm outlives a member's restart (SIGKILL): the restarted member lists it and refuses puts", async () => {
    await q.call('Maintenance', 'Alarm', { action: 'ACTIVATE', memberID: '2', alarm: 'NOSPACE' });
    const leader = await cluster.waitForLeader();
    const victim = cluster.names.find((n) => n !== leader && cluster.url(n) !== qUrl)!;
    const c = new RawClient(cluster.url(victim));
    try {
      await LocalCluster.until(
        async () => ((await c.call('Maintenance', 'Alarm', { action: 'GET' }))['alarms'] as unknown[]).length === 1,
        'the alarm on the victim',
      );
      await cluster.kill(victim);
      cluster.start(victim);
      await cluster.waitForLeader();
      expect((await c.call('Maintenance', 'Alarm', { action: 'GET' }))['alarms']).toEqual([{ memberID: '2', alarm: 'NOSPACE' }]);
      expect(await c.error('KV', 'Put', { key: b('/restart/k'), value: b('1') })).toEqual({ code: RESOURCE_EXHAUSTED, details: NO_SPACE });
      await c.call('Maintenance', 'Alarm', { action: 'DEACTIVATE', memberID: '2', alarm: 'NOSPACE' });
      await c.call('KV', 'Put', { key: b('/restart/k'), value: b('1') });
    } finally {
      c.close();
    }
  });
});
