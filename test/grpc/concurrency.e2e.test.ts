/**
 * etcd's concurrency services (v3lockpb.Lock, v3electionpb.Election), the /v3beta gateway
 * prefix and 405 on a POST path, on a 3-member qkv cluster (through a follower) and on a real
 * etcd 3.4, compared answer by answer: over the JSON gateway and over gRPC with a raw client.
 * Lease ids differ between the two servers: every answer is normalized with the scenario's own
 * leases replaced by placeholders (decimal ids and the hex ids in lock and leader keys), and
 * header revisions made relative to the scenario's first revision.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalCluster } from '../server/cluster_harness.js';
import type { ProtoMessage, ProtoValue } from '../../src/grpc/proto.js';
import { type RealEtcd, sleep, startBesideEtcd } from './helpers.js';
import { RawClient, type Stream } from './raw_client.js';

const b = (s: string): Buffer => Buffer.from(s);
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const UNKNOWN = 2;
const CANCELLED = 1;

type Norm = null | boolean | number | string | Norm[] | { [k: string]: Norm };

/** A scenario's normalization: its first revision and its leases (decimal id → placeholder). */
class Names {
  private readonly leases = new Map<string, string>();
  constructor(readonly base: number) {}

  lease(id: string): string {
    const name = `<L${this.leases.size + 1}>`;
    this.leases.set(id, name);
    return name;
  }

  /** Lease ids (decimal, or hex as in lock and election keys) in a string, replaced. */
  text(s: string): string {
    let out = s;
    for (const [id, name] of this.leases) {
      out = out.split(BigInt(id).toString(16)).join(name);
      if (out === id) out = name;
    }
    return out;
  }

  /** A gateway (JSON) or gRPC (proto object) answer, normalized. */
  norm(v: unknown, key = ''): Norm {
    if (v === undefined || v === null) return null;
    if (Buffer.isBuffer(v)) return this.text(v.toString());
    if (Array.isArray(v)) return v.map((x) => this.norm(x));
    if (typeof v === 'object') {
      const o: { [k: string]: Norm } = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (k === 'header') o[k] = x && typeof x === 'object' ? Number((x as Record<string, unknown>)['revision']) - this.base : null;
        else o[k] = this.norm(x, k);
      }
      return o;
    }
    if (typeof v === 'string') {
      // Gateway bytes are base64.
      if (['key', 'value', 'name'].includes(key)) return this.text(Buffer.from(v, 'base64').toString());
      if (/revision$|^rev$/.test(key) && /^\d+$/.test(v) && v !== '0') return Number(v) - this.base;
      return this.text(v);
    }
    return v as Norm;
  }
}

interface Answer {
  status: number;
  body: unknown;
}

/** One gateway call: its status and its JSON body (or its text, if not JSON). */
async function post(endpoint: string, path: string, body: unknown, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(endpoint + path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
    ...init,
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

async function gatewayRevision(endpoint: string): Promise<number> {
  const r = await post(endpoint, '/v3/kv/range', { key: b64('/no-such-key') });
  return Number((r.body as { header: { revision: string } }).header.revision);
}

async function grantHttp(endpoint: string, ttl = 30): Promise<string> {
  const r = await post(endpoint, '/v3/lease/grant', { TTL: String(ttl) });
  return (r.body as { ID: string }).ID;
}

/** Keys (decoded) under a prefix, with their lease ids. */
async function keysUnder(endpoint: string, prefix: string): Promise<{ key: string; lease: string }[]> {
  const end = Buffer.from(prefix);
  end[end.length - 1]!++;
  const r = await post(endpoint, '/v3/kv/range', { key: b64(prefix), range_end: end.toString('base64') });
  const kvs = ((r.body as { kvs?: { key: string; lease?: string }[] }).kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString(),
    lease: kv.lease ?? '0',
  }));
  return kvs;
}

async function until(cond: () => Promise<boolean> | boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Whether a promise is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(ms);
  return !settled;
}

/** A streaming gateway response (observe, watch): its lines as they come. */
class LineStream {
  readonly lines: unknown[] = [];
  status = 0;
  private readonly ctl = new AbortController();
  readonly done: Promise<void>;

  constructor(endpoint: string, path: string, body: unknown) {
    this.done = (async () => {
      const res = await fetch(endpoint + path, { method: 'POST', body: JSON.stringify(body), signal: this.ctl.signal });
      this.status = res.status;
      const reader = res.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.lines.push(JSON.parse(line));
        }
      }
    })().catch(() => {});
  }

  async count(n: number, limitMs = 10_000): Promise<unknown[]> {
    await until(() => this.lines.length >= n, `${n} stream lines (have ${JSON.stringify(this.lines)})`, limitMs);
    return this.lines.slice(0, n);
  }

  close(): void {
    this.ctl.abort();
  }
}

describe('etcd Lock and Election services, /v3beta and 405 on qkv and on etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let qUrl: string;
  let q: RawClient;
  let e: RawClient;

  beforeAll(async () => {
    let follower: string;
    ({ cluster, etcd, follower } = await startBesideEtcd());
    qUrl = cluster.url(follower);
    q = new RawClient(qUrl);
    e = new RawClient(etcd.endpoint);
  });

  afterAll(async () => {
    q?.close();
    e?.close();
    await cluster?.destroy();
    await etcd?.stop();
  });

  /** The same scenario on qkv's gateway and on etcd's (in parallel); the answers must be equal. */
  async function sameGateway<T>(scenario: (endpoint: string) => Promise<T>): Promise<T> {
    const [qr, er] = await Promise.all([scenario(qUrl), scenario(etcd.endpoint)]);
    expect(qr).toEqual(er);
    return qr;
  }

  async function sameGrpc<T>(scenario: (c: RawClient, endpoint: string) => Promise<T>): Promise<T> {
    const [qr, er] = await Promise.all([scenario(q, qUrl), scenario(e, etcd.endpoint)]);
    expect(qr).toEqual(er);
    return qr;
  }

  test('gateway: lock and unlock; errors as etcd; lease 0 gets a 60 s lease', async () => {
    const r = await sameGateway(async (ep) => {
      const n = new Names(await gatewayRevision(ep));
      const lease = await grantHttp(ep);
      n.lease(lease);
      const locked = await post(ep, '/v3/lock/lock', { name: b64('/gw-lock'), lease });
      const key = (locked.body as { key: string }).key;
      const held = await keysUnder(ep, '/gw-lock/');
      const unlocked = await post(ep, '/v3/lock/unlock', { key });
      const after = await keysUnder(ep, '/gw-lock/');
      // Locking twice with the same lease is one hold.
      const again1 = await post(ep, '/v3/lock/lock', { name: b64('/gw-lock'), lease });
      const again2 = await post(ep, '/v3/lock/lock', { name: b64('/gw-lock'), lease });
      await post(ep, '/v3/lock/unlock', { key });
      const noLease = await post(ep, '/v3/lock/lock', { name: b64('/gw-lock'), lease: '12345' });
      const noKey = await post(ep, '/v3/lock/unlock', {});
      const missingKey = await post(ep, '/v3/lock/unlock', { key: b64('/gw-lock/nothing') });
      const badJson = await post(ep, '/v3/lock/lock', '{bad');
      // No lease: the server grants one of 60 s; the key is named after it.
      const zero = await post(ep, '/v3/lock/lock', { name: b64('/gw-lock0') });
      const zeroKey = Buffer.from((zero.body as { key: string }).key, 'base64').toString();
      const zeroLease = BigInt('0x' + zeroKey.split('/').pop()!).toString();
      const ttl = await post(ep, '/v3/lease/timetolive', { ID: zeroLease });
      await post(ep, '/v3/lease/revoke', { ID: zeroLease });
      return {
        locked: { status: locked.status, body: n.norm(locked.body) },
        held: held.map((kv) => n.text(kv.key) + ' ' + n.text(kv.lease)),
        unlocked: { status: unlocked.status, body: n.norm(unlocked.body) },
        after,
        again: [n.norm(again1.body), n.norm(again2.body)],
        noLease: { status: noLease.status, body: noLease.body },
        noKey: { status: noKey.status, body: noKey.body },
        missingKey: { status: missingKey.status, body: n.norm(missingKey.body) },
        badJson: badJson.status,
        zero: { status: zero.status, key: /^\/gw-lock0\/[0-9a-f]+$/.test(zeroKey), grantedTTL: (ttl.body as { grantedTTL?: string }).grantedTTL },
      };
    });
    expect(r.locked).toEqual({ status: 200, body: { header: 1, key: '/gw-lock/<L1>' } });
    expect(r.held).toEqual(['/gw-lock/<L1> <L1>']);
    expect(r.noLease).toEqual({
      status: 500,
      body: { error: 'etcdserver: requested lease not found', message: 'etcdserver: requested lease not found', code: UNKNOWN },
    });
    expect(r.noKey.status).toBe(500);
    expect(r.zero).toEqual({ status: 200, key: true, grantedTTL: '60' });
  });

  test('gateway: a second lock waits for the first; a waiter that disconnects leaves no key', async () => {
    const r = await sameGateway(async (ep) => {
      const n = new Names(await gatewayRevision(ep));
      const [l1, l2, l3] = [await grantHttp(ep), await grantHttp(ep), await grantHttp(ep)];
      n.lease(l1);
      n.lease(l2);
      n.lease(l3);
      const first = await post(ep, '/v3/lock/lock', { name: b64('/gw-wait'), lease: l1 });
      const second = post(ep, '/v3/lock/lock', { name: b64('/gw-wait'), lease: l2 });
      const secondWaited = await pendingAfter(second, 500);
      const queued = (await keysUnder(ep, '/gw-wait/')).map((kv) => n.text(kv.key)).sort();
      const unlocked = await post(ep, '/v3/lock/unlock', { key: (first.body as { key: string }).key });
      const got = await second;
      // A third waiter behind the second gives up (its client goes away): its key is deleted.
      const ctl = new AbortController();
      const third = post(ep, '/v3/lock/lock', { name: b64('/gw-wait'), lease: l3 }, { signal: ctl.signal });
      await until(async () => (await keysUnder(ep, '/gw-wait/')).length === 2, 'the third waiter key');
      ctl.abort();
      await third.catch(() => {});
      await until(async () => (await keysUnder(ep, '/gw-wait/')).length === 1, 'the third waiter key to go');
      // Revoking the holder's lease releases the lock.
      await post(ep, '/v3/lease/revoke', { ID: l2 });
      const left = await keysUnder(ep, '/gw-wait/');
      return {
        first: n.norm(first.body),
        secondWaited,
        queued,
        unlocked: n.norm(unlocked.body),
        second: { status: got.status, body: n.norm(got.body) },
        left,
      };
    });
    expect(r.secondWaited).toBe(true);
    expect(r.queued).toEqual(['/gw-wait/<L1>', '/gw-wait/<L2>']);
    expect(r.second).toEqual({ status: 200, body: { header: 3, key: '/gw-wait/<L2>' } });
    expect(r.left).toEqual([]);
  });

  test('gateway: campaign, leader, proclaim, resign, observe', async () => {
    const r = await sameGateway(async (ep) => {
      const n = new Names(await gatewayRevision(ep));
      const [l1, l2] = [await grantHttp(ep), await grantHttp(ep)];
      n.lease(l1);
      n.lease(l2);
      const name = b64('/gw-elect');
      const noLeader = await post(ep, '/v3/election/leader', { name });
      const observe = new LineStream(ep, '/v3/election/observe', { name });
      await sleep(300);
      // No leader yet: no answer at all (grpc-gateway sends the status line with the first message).
      const statusBeforeLeader = observe.status;
      const c1 = await post(ep, '/v3/election/campaign', { name, lease: l1, value: b64('v1') });
      const leader1 = (c1.body as { leader: unknown }).leader;
      const leader = await post(ep, '/v3/election/leader', { name });
      const c2 = post(ep, '/v3/election/campaign', { name, lease: l2, value: b64('w1') });
      const c2Waited = await pendingAfter(c2, 500);
      const proclaimed = await post(ep, '/v3/election/proclaim', { leader: leader1, value: b64('v2') });
      const wrongRev = await post(ep, '/v3/election/proclaim', { leader: { ...(leader1 as object), rev: '1' }, value: b64('x') });
      const noLeaderField = await post(ep, '/v3/election/proclaim', { value: b64('x') });
      const noLeaderResign = await post(ep, '/v3/election/resign', {});
      await observe.count(2);
      const resigned = await post(ep, '/v3/election/resign', { leader: leader1 });
      const won = await c2;
      const lines = await observe.count(3);
      await sleep(200);
      observe.close();
      const leader2 = (won.body as { leader: unknown }).leader;
      // Re-campaigning with the same lease and another value proclaims it.
      const again = await post(ep, '/v3/election/campaign', { name, lease: l2, value: b64('w2') });
      const leaderAfter = await post(ep, '/v3/election/leader', { name });
      const resigned2 = await post(ep, '/v3/election/resign', { leader: leader2 });
      return {
        noLeader: { status: noLeader.status, body: noLeader.body },
        statusBeforeLeader,
        observeStatus: observe.status,
        c1: { status: c1.status, body: n.norm(c1.body) },
        leader: n.norm(leader.body),
        c2Waited,
        proclaimed: n.norm(proclaimed.body),
        wrongRev: { status: wrongRev.status, body: wrongRev.body },
        noLeaderField: { status: noLeaderField.status, body: noLeaderField.body },
        noLeaderResign: { status: noLeaderResign.status, body: noLeaderResign.body },
        resigned: n.norm(resigned.body),
        won: { status: won.status, body: n.norm(won.body) },
        observed: n.norm(lines),
        again: n.norm(again.body),
        leaderAfter: n.norm(leaderAfter.body),
        resigned2: n.norm(resigned2.body),
      };
    });
    expect(r.noLeader).toEqual({ status: 500, body: { error: 'election: no leader', message: 'election: no leader', code: UNKNOWN } });
    expect(r.c1.body).toEqual({ header: 1, leader: { name: '/gw-elect', key: '/gw-elect/<L1>', rev: 1, lease: '<L1>' } });
    expect(r.c2Waited).toBe(true);
    expect([r.statusBeforeLeader, r.observeStatus]).toEqual([0, 200]);
    expect(r.wrongRev.body).toMatchObject({ error: 'election: not leader', code: UNKNOWN });
    expect(r.noLeaderField.body).toMatchObject({ error: '"leader" field must be provided', code: UNKNOWN });
    expect((r.observed as { result: { kv: { value: string } } }[]).map((l) => l.result.kv.value)).toEqual(['v1', 'v2', 'w1']);
  });

  test('gateway: /v3beta is /v3 for every path', async () => {
    const paths: [string, unknown][] = [
      ['kv/put', { key: b64('/beta/a'), value: b64('1') }],
      ['kv/range', { key: b64('/beta/a') }],
      [
        'kv/txn',
        { compare: [{ key: b64('/beta/a'), target: 'VALUE', result: 'EQUAL', value: b64('1') }], success: [{ request_range: { key: b64('/beta/a') } }] },
      ],
      ['kv/deleterange', { key: b64('/beta/a') }],
      ['maintenance/hash', {}],
      ['lease/leases', {}],
      ['maintenance/status', {}],
      ['lock/unlock', { key: b64('/beta/none') }],
      ['election/leader', { name: b64('/beta/e') }],
      ['election/resign', {}],
      ['nope/nope', {}],
    ];
    /** An answer's status and shape: its field names, recursively, and the kinds of its values. */
    const shape = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.length > 0 ? [shape(v[0])] : [];
      if (v && typeof v === 'object')
        return Object.fromEntries(
          Object.entries(v)
            .sort(([a], [c]) => a.localeCompare(c))
            .map(([k, x]) => [k, shape(x)]),
        );
      return typeof v;
    };
    const r = await sameGateway(async (ep) => {
      const out: Record<string, unknown> = {};
      const setUp = async (p: string): Promise<void> => {
        // The same state before each call of a pair: a key to delete.
        if (p === 'kv/deleterange') await post(ep, '/v3/kv/put', { key: b64('/beta/a'), value: b64('1') });
      };
      for (const [p, body] of paths) {
        await setUp(p);
        const v3 = await post(ep, `/v3/${p}`, body);
        await setUp(p);
        const beta = await post(ep, `/v3beta/${p}`, body);
        out[p] = { v3: [v3.status, shape(v3.body)], beta: [beta.status, shape(beta.body)] };
      }
      // Lease calls, with a lease of its own for each prefix.
      for (const prefix of ['/v3', '/v3beta']) {
        const grant = await post(ep, `${prefix}/lease/grant`, { TTL: '30' });
        const id = (grant.body as { ID: string }).ID;
        const ttl = await post(ep, `${prefix}/lease/timetolive`, { ID: id });
        const ka = await post(ep, `${prefix}/lease/keepalive`, { ID: id });
        const lock = await post(ep, `${prefix}/lock/lock`, { name: b64('/beta/l'), lease: id });
        const camp = await post(ep, `${prefix}/election/campaign`, { name: b64('/beta/c'), lease: id, value: b64('v') });
        const leader = (camp.body as { leader: unknown }).leader;
        const procl = await post(ep, `${prefix}/election/proclaim`, { leader, value: b64('w') });
        const resign = await post(ep, `${prefix}/election/resign`, { leader });
        const revoke = await post(ep, `${prefix}/lease/revoke`, { ID: id });
        out[prefix] = [grant, ttl, ka, lock, camp, procl, resign, revoke].map((a) => [a.status, shape(a.body)]);
      }
      // Streams: watch and observe answer their first line alike.
      for (const prefix of ['/v3', '/v3beta']) {
        const w = new LineStream(ep, `${prefix}/watch`, { create_request: { key: b64('/beta/w') } });
        const first = await w.count(1);
        w.close();
        out[`${prefix}/watch`] = [w.status, shape(first[0])];
      }
      return out;
    });
    for (const [p] of paths) {
      const a = r[p] as { v3: unknown; beta: unknown };
      expect(a.beta, p).toEqual(a.v3);
    }
    expect(r['/v3beta']).toEqual(r['/v3']);
    expect(r['/v3beta/watch']).toEqual(r['/v3/watch']);
    expect((r['kv/range'] as { beta: unknown[] }).beta[0]).toBe(200);
    expect((r['nope/nope'] as { beta: unknown[] }).beta[0]).toBe(404);
  });

  test('gateway: another method on a POST path is 405 Method Not Allowed, as etcd', async () => {
    const paths = [
      '/v3/lock/lock',
      '/v3/lock/unlock',
      '/v3/election/campaign',
      '/v3/election/proclaim',
      '/v3/election/leader',
      '/v3/election/observe',
      '/v3/election/resign',
      '/v3/kv/range',
      '/v3/kv/put',
      '/v3/watch',
      '/v3/lease/grant',
      '/v3beta/kv/range',
      '/v3beta/lock/lock',
    ];
    const r = await sameGateway(async (ep) => {
      const out: Record<string, unknown> = {};
      for (const p of paths) {
        for (const method of ['GET', 'PUT', 'DELETE']) {
          const res = await fetch(ep + p, { method, signal: AbortSignal.timeout(5_000) });
          out[`${method} ${p}`] = [res.status, res.headers.get('content-type'), await res.text()];
        }
      }
      const unknown = await fetch(ep + '/v3/no/such/path', { signal: AbortSignal.timeout(5_000) });
      out['GET /v3/no/such/path'] = unknown.status;
      return out;
    });
    expect(r['GET /v3/lock/lock']).toEqual([405, 'text/plain; charset=utf-8', 'Method Not Allowed\n']);
    expect(r['GET /v3/no/such/path']).toBe(404);
  });

  // ---- gRPC --------------------------------------------------------------------------------

  async function grant(c: RawClient, ttl = 30): Promise<string> {
    return String((await c.call('Lease', 'LeaseGrant', { TTL: ttl }))['ID']);
  }

  async function grpcRevision(c: RawClient): Promise<number> {
    const r = await c.call('KV', 'Range', { key: b('/no-such-key') });
    return Number((r['header'] as ProtoMessage)['revision']);
  }

  async function grpcKeys(c: RawClient, prefix: string): Promise<string[]> {
    const end = b(prefix);
    end[end.length - 1]!++;
    const r = await c.call('KV', 'Range', { key: b(prefix), range_end: end });
    return (r['kvs'] as ProtoMessage[]).map((kv) => (kv['key'] as Buffer).toString());
  }

  /** A unary call whose answer comes later (to see that it waits), with a way to cancel it. */
  function later(c: RawClient, service: 'Lock' | 'Election', method: string, req: ProtoMessage): Promise<ProtoMessage> {
    return c.call(service, method, req);
  }

  test('gRPC: Lock and Unlock; a second Lock waits; errors as etcd', async () => {
    const r = await sameGrpc(async (c) => {
      const n = new Names(await grpcRevision(c));
      const [l1, l2] = [await grant(c), await grant(c)];
      n.lease(l1);
      n.lease(l2);
      const first = await c.call('Lock', 'Lock', { name: b('/g-lock'), lease: l1 });
      const second = later(c, 'Lock', 'Lock', { name: b('/g-lock'), lease: l2 });
      const waited = await pendingAfter(second, 500);
      const unlocked = await c.call('Lock', 'Unlock', { key: first['key'] as ProtoValue });
      const got = await second;
      await c.call('Lock', 'Unlock', { key: got['key'] as ProtoValue });
      const noLease = await c.error('Lock', 'Lock', { name: b('/g-lock'), lease: '12345' });
      const noKey = await c.error('Lock', 'Unlock', {});
      return { first: n.norm(first), waited, unlocked: n.norm(unlocked), second: n.norm(got), noLease, noKey, left: await grpcKeys(c, '/g-lock/') };
    });
    expect(r.first).toEqual({ header: 1, key: '/g-lock/<L1>' });
    expect(r.waited).toBe(true);
    expect(r.second).toEqual({ header: 3, key: '/g-lock/<L2>' });
    expect(r.noLease).toEqual({ code: UNKNOWN, details: 'etcdserver: requested lease not found' });
    expect(r.noKey).toEqual({ code: UNKNOWN, details: 'etcdserver: key is not provided' });
    expect(r.left).toEqual([]);
  });

  test('gRPC: a waiting Lock or Campaign canceled by its client deletes its key', async () => {
    const r = await sameGrpc(async (c, ep) => {
      const [l1, l2] = [await grant(c), await grant(c)];
      await c.call('Lock', 'Lock', { name: b('/g-cancel'), lease: l1 });
      const call = startCancellable(ep, 'Lock', 'Lock', { name: b('/g-cancel'), lease: l2 });
      await until(async () => (await grpcKeys(c, '/g-cancel/')).length === 2, 'the waiter key');
      call.cancel();
      const status = await call.status;
      await until(async () => (await grpcKeys(c, '/g-cancel/')).length === 1, 'the waiter key to go');
      // A waiting candidate too: its key is deleted (etcd resigns it).
      await c.call('Election', 'Campaign', { name: b('/g-cancel-e'), lease: l1, value: b('a') });
      const camp = startCancellable(ep, 'Election', 'Campaign', { name: b('/g-cancel-e'), lease: l2, value: b('b') });
      await until(async () => (await grpcKeys(c, '/g-cancel-e/')).length === 2, 'the candidate key');
      camp.cancel();
      const campStatus = await camp.status;
      await until(async () => (await grpcKeys(c, '/g-cancel-e/')).length === 1, 'the candidate key to go');
      await c.call('Lease', 'LeaseRevoke', { ID: l1 });
      return { status: status.code, campStatus: campStatus.code, left: await grpcKeys(c, '/g-cancel/'), leftE: await grpcKeys(c, '/g-cancel-e/') };
    });
    expect(r).toEqual({ status: CANCELLED, campStatus: CANCELLED, left: [], leftE: [] });
  });

  test('qkv: a waiter whose lease is revoked stops waiting (Lock: session expired, Campaign: not leader)', async () => {
    const [l1, l2, l3] = [await grant(q), await grant(q), await grant(q)];
    await q.call('Lock', 'Lock', { name: b('/g-expire'), lease: l1 });
    const lockWaiter = q.error('Lock', 'Lock', { name: b('/g-expire'), lease: l2 });
    await q.call('Election', 'Campaign', { name: b('/g-expire-e'), lease: l1, value: b('a') });
    const campaignWaiter = q.error('Election', 'Campaign', { name: b('/g-expire-e'), lease: l3, value: b('b') });
    await until(async () => (await grpcKeys(q, '/g-expire/')).length === 2 && (await grpcKeys(q, '/g-expire-e/')).length === 2, 'both waiters');
    await q.call('Lease', 'LeaseRevoke', { ID: l2 });
    await q.call('Lease', 'LeaseRevoke', { ID: l3 });
    expect(await lockWaiter).toEqual({ code: UNKNOWN, details: 'mutex: session is expired' });
    expect(await campaignWaiter).toEqual({ code: UNKNOWN, details: 'election: not leader' });
    await q.call('Lease', 'LeaseRevoke', { ID: l1 });
  });

  test('qkv: waiters and observers that end leave no watcher behind', async () => {
    const watchers = async (): Promise<number> => {
      const text = await (await fetch(`${qUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      return Number(/^etcd_debugging_mvcc_watcher_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    await until(async () => (await watchers()) === 0, 'no watchers from the earlier tests');
    const [l1, l2] = [await grant(q), await grant(q)];
    await q.call('Lock', 'Lock', { name: b('/g-leak'), lease: l1 });
    const waiter = startCancellable(qUrl, 'Lock', 'Lock', { name: b('/g-leak'), lease: l2 });
    const observers = [
      new LineStream(qUrl, '/v3/election/observe', { name: b64('/g-leak-e') }),
      new LineStream(qUrl, '/v3beta/election/observe', { name: b64('/g-leak-e') }),
    ];
    const grpcObserver = q.serverStream('Election', 'Observe', { name: b('/g-leak-e') });
    await until(async () => (await watchers()) === 4, 'a watcher per waiter and observer');
    waiter.cancel();
    await waiter.status;
    for (const o of observers) o.close();
    grpcObserver.cancel();
    await until(async () => (await watchers()) === 0, 'every watcher gone');
    await q.call('Lease', 'LeaseRevoke', { ID: l1 });
    await q.call('Lease', 'LeaseRevoke', { ID: l2 });
  });

  test('gRPC: Campaign, Leader, Observe, Proclaim, Resign', async () => {
    const r = await sameGrpc(async (c) => {
      const n = new Names(await grpcRevision(c));
      const [l1, l2] = [await grant(c), await grant(c)];
      n.lease(l1);
      n.lease(l2);
      const name = b('/g-elect');
      const noLeader = await c.error('Election', 'Leader', { name });
      const observe: Stream = c.serverStream('Election', 'Observe', { name });
      await sleep(300);
      const c1 = await c.call('Election', 'Campaign', { name, lease: l1, value: b('v1') });
      const leader = await c.call('Election', 'Leader', { name });
      const c2 = later(c, 'Election', 'Campaign', { name, lease: l2, value: b('w1') });
      const waited = await pendingAfter(c2, 500);
      const proclaimed = await c.call('Election', 'Proclaim', { leader: c1['leader'] as ProtoValue, value: b('v2') });
      const notLeader = await c.error('Election', 'Proclaim', { leader: { ...(c1['leader'] as ProtoMessage), rev: 1 }, value: b('x') });
      const missing = await c.error('Election', 'Resign', {});
      await observe.count(2);
      const resigned = await c.call('Election', 'Resign', { leader: c1['leader'] as ProtoValue });
      const won = await c2;
      await observe.count(3);
      await sleep(200);
      observe.cancel();
      await c.call('Election', 'Resign', { leader: won['leader'] as ProtoValue });
      return {
        noLeader,
        c1: n.norm(c1),
        leader: n.norm(leader),
        waited,
        proclaimed: n.norm(proclaimed),
        notLeader,
        missing,
        resigned: n.norm(resigned),
        won: n.norm(won),
        observed: n.norm(observe.received),
      };
    });
    expect(r.noLeader).toEqual({ code: UNKNOWN, details: 'election: no leader' });
    expect(r.c1).toEqual({ header: 1, leader: { name: '/g-elect', key: '/g-elect/<L1>', rev: 1, lease: '<L1>' } });
    expect(r.waited).toBe(true);
    expect(r.notLeader).toEqual({ code: UNKNOWN, details: 'election: not leader' });
    expect(r.missing).toEqual({ code: UNKNOWN, details: '"leader" field must be provided' });
    expect((r.observed as { kv: { value: string } }[]).map((m) => m.kv.value)).toEqual(['v1', 'v2', 'w1']);
  });
});

/** A unary call on its own connection, cancelled by the client when asked. */
function startCancellable(
  endpoint: string,
  service: 'Lock' | 'Election',
  method: string,
  req: ProtoMessage,
): { cancel: () => void; status: Promise<{ code: number }> } {
  const c = new RawClient(endpoint);
  let cancel = (): void => {};
  const status = new Promise<{ code: number }>((resolve) => {
    const call = c.callCancellable(service, method, req, (err) => {
      c.close();
      resolve({ code: err?.code ?? 0 });
    });
    cancel = () => call.cancel();
  });
  return { cancel, status };
}
