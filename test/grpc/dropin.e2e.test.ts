/**
 * What etcd's own tools found different on qkv (issue 16), each checked side by side with a real
 * etcd 3.4: the version clients parse, maintenance calls over full URLs (clientv3's per-endpoint
 * dial sends the URL as the HTTP/2 authority), `etcdctl --user` while authentication is off,
 * and the JSON gateway's answers to the same requests.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalCluster } from '../server/cluster_harness.js';
import { etcdctl, type RealEtcd, startBesideEtcd } from './helpers.js';
import { RawClient } from './raw_client.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Target {
  name: 'qkv' | 'etcd';
  /** A client URL (a follower's for qkv), with its http://. */
  url: string;
  /** Every member's client URL, with http://. */
  all: string;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function post(url: string, path: string, body: string | object): Promise<{ status: number; body: Json }> {
  const res = await fetch(url + path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Json };
}

/** The newline-delimited results of a gateway watch, read for `ms`. */
async function watchLines(url: string, body: object, ms: number): Promise<Json[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  let text = '';
  try {
    const res = await fetch(url + '/v3/watch', { method: 'POST', body: JSON.stringify(body), signal: ac.signal });
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
  } catch {
    // aborted: the stream never ends by itself
  } finally {
    clearTimeout(timer);
  }
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => (JSON.parse(l) as { result: Json }).result);
}

/** A header without what differs between two clusters by nature. */
function headerShape(h: Json): Json {
  const { cluster_id: _c, member_id: _m, raft_term: _t, ...rest } = (h ?? {}) as Record<string, Json>;
  return rest;
}

describe('drop-in fixes found by etcd tools, beside a real etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let qkv: Target;
  let real: Target;
  let leaderName: string;

  beforeAll(async () => {
    let follower: string;
    ({ cluster, etcd, leader: leaderName, follower } = await startBesideEtcd());
    qkv = { name: 'qkv', url: cluster.url(follower), all: cluster.endpoints.join(',') };
    real = { name: 'etcd', url: etcd.endpoint, all: etcd.endpoint };
  });

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.stop();
  });

  const both = <T>(scenario: (t: Target) => Promise<T>): Promise<[T, T]> => Promise.all([scenario(qkv), scenario(real)]);

  test('the version is a plain numeric etcd version, as etcd answers it, in /version, Status and etcdctl', async () => {
    const [q, e] = await both(async (t) => (await fetch(`${t.url}/version`)).json() as Promise<Record<string, string>>);
    expect(q['etcdserver']).toBe(e['etcdserver']);
    expect(q['etcdcluster']).toBe(e['etcdcluster']);
    // Patroni's parse: every dot-separated part an integer.
    expect(q['etcdserver']!.split('.').map((p) => String(Number.parseInt(p, 10)))).toEqual(q['etcdserver']!.split('.'));
    expect(q['qkv']).toMatch(/^\d+\.\d+\.\d+/);

    const status = JSON.parse((await etcdctl(qkv.url, ['endpoint', 'status', '-w', 'json'])).stdout) as { Status: { version: string } }[];
    expect(status[0]!.Status.version).toBe(e['etcdserver']);
  });

  test('maintenance calls and --cluster forms work when etcdctl is given URLs', async () => {
    for (const t of [qkv, real]) {
      for (const args of [
        ['endpoint', 'status'],
        ['endpoint', 'hashkv'],
        ['defrag'],
        ['endpoint', 'status', '--cluster'],
        ['endpoint', 'hashkv', '--cluster'],
        ['endpoint', 'health', '--cluster'],
        ['alarm', 'list'],
      ]) {
        const r = await etcdctl(t.url, args);
        expect({ target: t.name, args, code: r.code, stderr: r.stderr.includes('PROTOCOL_ERROR') }).toEqual({ target: t.name, args, code: 0, stderr: false });
      }
    }
    const statuses = (await etcdctl(qkv.url, ['endpoint', 'status', '--cluster'])).stdout.trim().split('\n');
    expect(statuses.map((l) => l.split(', ')[0]).sort()).toEqual([...cluster.endpoints].sort());

    // move-leader dials the leader's URL itself.
    const target = cluster.config.members.find((m) => m.name !== leaderName)!;
    const moved = await etcdctl(cluster.endpoints.join(','), ['move-leader', BigInt(target.id).toString(16)]);
    expect({ code: moved.code, out: moved.stdout.trim() }).toEqual({
      code: 0,
      out: expect.stringMatching(/^Leadership transferred from [0-9a-f]+ to [0-9a-f]+$/),
    });
    expect(await cluster.waitForLeader()).toBe(target.name);
  });

  test('etcdctl --user works while authentication is not enabled, as on etcd', async () => {
    const [q, e] = await both(async (t) => {
      const put = await etcdctl(t.url, ['--user', 'root:secret', 'put', '/dropin/user', 'v']);
      const get = await etcdctl(t.url, ['--user', 'root:secret', 'get', '/dropin/user', '--print-value-only']);
      return { put: [put.code, put.stdout], get: [get.code, get.stdout] };
    });
    expect(q).toEqual({ put: [0, 'OK\n'], get: [0, 'v\n'] });
    expect(q).toEqual(e);

    const [qg, eg] = await both(async (t) => {
      const raw = new RawClient(t.url);
      try {
        return await raw.error('Auth', 'Authenticate', { name: 'root', password: 'secret' });
      } finally {
        raw.close();
      }
    });
    expect(qg).toEqual({ code: 9, details: 'etcdserver: authentication is not enabled' });
    expect(qg).toEqual(eg);
    const [qh, eh] = await both((t) => post(t.url, '/v3/auth/authenticate', { name: 'root', password: 'x' }));
    expect(qh).toEqual({
      status: 412,
      body: { error: 'etcdserver: authentication is not enabled', message: 'etcdserver: authentication is not enabled', code: 9 },
    });
    expect(qh).toEqual(eh);
  });

  test('malformed gateway requests get etcd 3.4’s error, code and HTTP status', async () => {
    const bodies = [
      '{"key":"YQ=="',
      '{"key"',
      '{"key":"YQ==",}',
      '{"key":"YQ==" "x"}',
      '{"a":tru}',
      'nonsense',
      '[1]',
      '{"key":"YQ==","sort_target":"NOPE"}',
      '{"key":"YQ==","sort_order":"NOPE"}',
      '{"key":"YQ==","limit":"x"}',
      '{"key":"YQ==","limit":1.5}',
      '{"key":"YQ==","serializable":"yes"}',
      '{"key":"YQ==","revision":{}}',
      '{"key":1}',
      '{"key":"!!"}',
    ];
    for (const body of bodies) {
      const [q, e] = await both((t) => post(t.url, '/v3/kv/range', body));
      expect({ input: body, ...q }).toEqual({ input: body, ...e });
    }
    // etcd reads the first JSON value of a body and never looks past it.
    const [q, e] = await both(async (t) => {
      const r = await post(t.url, '/v3/kv/range', `{"key":"${b64('/dropin/none')}"} trailing`);
      return { status: r.status, header: headerShape((r.body as { header: Json }).header) };
    });
    expect(q.status).toBe(200);
    expect(Object.keys(q.header as object)).toEqual(Object.keys(e.header as object));
  });

  test('a lease id that exists: 412 FailedPrecondition, as etcd', async () => {
    const [q, e] = await both(async (t) => {
      await post(t.url, '/v3/lease/grant', { TTL: 60, ID: 4242 });
      return post(t.url, '/v3/lease/grant', { TTL: 60, ID: 4242 });
    });
    expect(q).toEqual({ status: 412, body: { error: 'etcdserver: lease already exists', message: 'etcdserver: lease already exists', code: 9 } });
    expect(q).toEqual(e);
  });

  test('a request past gRPC’s message limit: 429 ResourceExhausted; past --max-request-bytes only: 400', async () => {
    const body = (bytes: number): string => JSON.stringify({ key: b64('big'), value: Buffer.alloc(bytes, 'x').toString('base64') });
    const [q, e] = await both(async (t) => ({
      over: await post(t.url, '/v3/kv/put', body(2600 * 1024)),
      between: await post(t.url, '/v3/kv/put', body(1600 * 1024)),
    }));
    expect(q.over).toEqual({
      status: 429,
      body: {
        error: 'grpc: received message larger than max (2662410 vs. 2097152)',
        message: 'grpc: received message larger than max (2662410 vs. 2097152)',
        code: 8,
      },
    });
    expect(q).toEqual(e);
    expect(q.between.status).toBe(400);
  });

  test('watch responses carry the current revision; a compacted watch is canceled with compact_revision alone', async () => {
    const [q, e] = await both(async (t) => {
      const first = await post(t.url, '/v3/kv/put', { key: b64('/dropin/w'), value: b64('1') });
      const start = Number((first.body as { header: { revision: string } }).header.revision);
      await post(t.url, '/v3/kv/put', { key: b64('/dropin/w'), value: b64('2') });
      const last = await post(t.url, '/v3/kv/put', { key: b64('/dropin/other'), value: b64('3') });
      const current = (last.body as { header: { revision: string } }).header.revision;
      const lines = await watchLines(t.url, { create_request: { key: b64('/dropin/w'), start_revision: start } }, 1_000);
      const withEvents = lines.filter((l) => (l as { events?: Json[] }).events);
      await post(t.url, '/v3/kv/compaction', { revision: current });
      const compacted = await watchLines(t.url, { create_request: { key: b64('/dropin/w'), start_revision: start } }, 1_000);
      return {
        // Every response with events says the store's revision, past the events' own.
        eventHeaders: withEvents.map((l) => (l as { header: { revision: string } }).header.revision),
        current,
        canceled: compacted
          .filter((l) => (l as { canceled?: boolean }).canceled)
          .map((l) => {
            const { header, ...rest } = l as { header: Json; compact_revision: string };
            return { header: headerShape(header), fields: Object.keys(rest).sort() };
          }),
      };
    });
    expect(q.eventHeaders.length).toBeGreaterThan(0);
    expect(new Set(q.eventHeaders)).toEqual(new Set([q.current]));
    expect(new Set(e.eventHeaders)).toEqual(new Set([e.current]));
    expect(q.canceled).toEqual([{ header: {}, fields: ['canceled', 'compact_revision'] }]);
    expect(q.canceled).toEqual(e.canceled);
  });

  test('a nested txn response has an empty header, as etcd’s', async () => {
    const [q, e] = await both(async (t) => {
      const r = await post(t.url, '/v3/kv/txn', {
        success: [{ request_txn: { success: [{ request_range: { key: b64('/dropin/w') } }] } }, { request_put: { key: b64('/dropin/n'), value: b64('v') } }],
      });
      const responses = (r.body as { responses: { response_txn?: { header: Json }; response_put?: { header: Json } }[] }).responses;
      return { status: r.status, nestedHeader: responses[0]!.response_txn!.header, putHeaderFields: Object.keys(responses[1]!.response_put!.header as object) };
    });
    expect(q).toEqual({ status: 200, nestedHeader: {}, putHeaderFields: ['revision'] });
    expect(q).toEqual(e);
  });
});
