/**
 * A learner refuses clients as etcd 3.4's does ("etcdserver: rpc not supported for learner",
 * Unavailable, HTTP 503), all but Status and a serializable Range, and serves everything once
 * promoted: the same probes (etcdctl, the raw gateway, raw gRPC streams) against a real etcd
 * learner and a qkv learner, each added with `member add --learner` and started with
 * --initial-cluster-state existing, must answer the same.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { CtlChild, etcdctl, hostOf, RealEtcd, sleep } from '../grpc/helpers.js';
import { RawClient } from '../grpc/raw_client.js';
import { LocalCluster } from './cluster_harness.js';

const REFUSED = 'etcdserver: rpc not supported for learner';

/** What etcdctl printed, the endpoint and ids set aside, clientv3's JSON retry logs dropped. */
async function ctl(endpoint: string, args: string[]): Promise<string> {
  const r = await etcdctl(endpoint, args);
  const lines = [...r.stdout.split('\n'), ...r.stderr.split('\n').filter((l) => !l.startsWith('{'))]
    .filter((l) => l !== '')
    .map((l) => l.replaceAll(hostOf(endpoint), '<EP>').replace(/\b[0-9a-f]{12,16}\b/g, '<ID>'));
  return [`$ ${args.join(' ')}`, ...lines, `exit ${r.code}`].join('\n');
}

const CTL_PROBES: string[][] = [
  ['put', 'a', '1'],
  ['get', 'a'],
  ['get', 'a', '--consistency=s'],
  ['del', 'a'],
  ['compaction', '1'],
  ['lease', 'grant', '10'],
  ['lease', 'list'],
  ['lease', 'revoke', '1'],
  ['lease', 'timetolive', '1'],
  ['lease', 'keep-alive', '--once', '1'],
  ['member', 'list'],
  ['endpoint', 'health'],
  ['endpoint', 'hashkv'],
  ['alarm', 'list'],
  ['defrag'],
  ['user', 'list'],
  ['lock', 'l'],
  ['elect', 'e', 'x'],
  ['elect', '-l', 'e'],
];

/** Gateway calls: [path, body]. Bad JSON is refused as such first, as etcd's gateway decodes before its interceptor runs. */
const HTTP_PROBES: [string, string][] = [
  ['/v3/kv/put', '{"key":"YQ==","value":"MQ=="}'],
  ['/v3/kv/range', '{"key":"YQ=="}'],
  ['/v3/kv/range', '{"key":"YQ==","serializable":true}'],
  ['/v3/kv/range', 'bad'],
  ['/v3/kv/txn', '{}'],
  ['/v3/cluster/member/list', '{}'],
  ['/v3/lease/grant', '{"TTL":5}'],
  ['/v3/lease/leases', '{}'],
  ['/v3/maintenance/hash', '{}'],
  ['/v3/maintenance/alarm', '{}'],
  ['/v3/lease/keepalive', '{"ID":1}'],
  ['/v3/watch', '{"create_request":{"key":"YQ=="}}'],
  ['/v3/maintenance/snapshot', '{}'],
  ['/v3/election/observe', '{"name":"ZQ=="}'],
];

async function httpProbe(endpoint: string, [path, body]: [string, string]): Promise<string> {
  const res = await fetch(endpoint + path, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  // A served call's body has the member's own header: only which fields it has is compared.
  const shown =
    res.status === 200
      ? Object.keys(JSON.parse(text) as object)
          .sort()
          .join(',')
      : text;
  return `${path} ${body} -> ${res.status} ${shown}`;
}

/** Raw gRPC: the unary calls' statuses, and each stream's status once opened. */
async function grpcProbes(endpoint: string): Promise<string[]> {
  const c = new RawClient(endpoint);
  try {
    const out: string[] = [];
    const unary = async (service: Parameters<RawClient['call']>[0], method: string, req = {}): Promise<void> => {
      try {
        const r = await c.call(service, method, req);
        out.push(`${service}.${method} ok${'isLearner' in r ? ` isLearner=${String(r['isLearner'])}` : ''}`);
      } catch (err) {
        const e = err as { code: number; details: string };
        out.push(`${service}.${method} ${e.code} ${e.details}`);
      }
    };
    await unary('Maintenance', 'Status');
    await unary('KV', 'Range', { key: Buffer.from('a'), serializable: true });
    await unary('KV', 'Range', { key: Buffer.from('a') });
    await unary('KV', 'Put', { key: Buffer.from('a'), value: Buffer.from('1') });
    await unary('Cluster', 'MemberList');
    await unary('Auth', 'UserList');
    const streams = [
      { name: 'Watch.Watch', s: c.stream('Watch', 'Watch'), first: { createRequest: { key: Buffer.from('a') } } },
      { name: 'Lease.LeaseKeepAlive', s: c.stream('Lease', 'LeaseKeepAlive'), first: { ID: '1' } },
      { name: 'Maintenance.Snapshot', s: c.serverStream('Maintenance', 'Snapshot') },
      { name: 'Election.Observe', s: c.serverStream('Election', 'Observe', { name: Buffer.from('e') }) },
    ];
    for (const { name, s, first } of streams) {
      if (first) s.send(first);
      await s.until(() => s.status !== undefined, `${name}'s status`);
      out.push(`${name} ${s.status!.code} ${s.status!.details} after ${s.received.length} responses`);
    }
    return out;
  } finally {
    c.close();
  }
}

interface Learner {
  endpoint: string;
  /** Promotes it (retried until the leader finds it in sync). */
  promote(): Promise<void>;
}

describe('a learner answers clients as etcd 3.4s does', () => {
  const started: { stop(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  async function promoteVia(voter: string, learner: string): Promise<void> {
    const status = JSON.parse((await etcdctl(learner, ['endpoint', 'status', '-w', 'json'])).stdout.replace(/"member_id":(\d+)/g, '"member_id":"$1"')) as {
      Status: { header: { member_id: string } };
    }[];
    const id = BigInt(status[0]!.Status.header.member_id).toString(16);
    await LocalCluster.until(async () => (await etcdctl(voter, ['member', 'promote', id])).code === 0, 'the learner promoted');
  }

  async function etcdLearner(): Promise<Learner> {
    const e1 = await RealEtcd.start();
    started.push(e1);
    const e2 = await RealEtcd.startLearner(e1);
    started.push(e2);
    return { endpoint: e2.endpoint, promote: () => promoteVia(e1.endpoint, e2.endpoint) };
  }

  async function qkvLearner(): Promise<Learner & { cluster: LocalCluster }> {
    const c = await LocalCluster.create({ nodes: 1 });
    started.push({ stop: () => c.destroy() });
    c.startAll();
    await c.waitForLeader();
    const n2 = await c.addJoiner('n2');
    const added = await etcdctl(c.url('n1'), ['member', 'add', 'n2', `--peer-urls=${n2.peerUrl}`, '--learner']);
    expect(added.code, added.stderr).toBe(0);
    c.setJoinCluster('n2', ['n1', 'n2']);
    c.start('n2');
    // Started once it has applied its own addition (before, it is not yet a learner to itself, as in etcd).
    await LocalCluster.until(async () => (await etcdctl(n2.clientUrl, ['get', 'a'])).stderr.includes(REFUSED), 'n2 to apply its addition');
    return { endpoint: n2.clientUrl, promote: () => promoteVia(c.url('n1'), n2.clientUrl), cluster: c };
  }

  test('etcdctl, the gateway and gRPC get the same refusals; promoted, it serves everything; /v1 follows the same rule', async () => {
    const [etcd, qkv] = await Promise.all([etcdLearner(), qkvLearner()]);

    const ctlOn = async (l: Learner): Promise<string[]> => {
      const out: string[] = [];
      for (const args of CTL_PROBES) out.push(await ctl(l.endpoint, args));
      return out;
    };
    const [qCtl, eCtl] = await Promise.all([ctlOn(qkv), ctlOn(etcd)]);
    expect(qCtl).toEqual(eCtl);
    // Not vacuous: the refusals are there, and a serializable read is served.
    expect(eCtl.join('\n')).toContain(`Error: ${REFUSED}`);
    expect(eCtl.find((l) => l.startsWith('$ get a --consistency=s'))).toMatch(/exit 0$/);

    const httpOn = async (l: Learner): Promise<string[]> => Promise.all(HTTP_PROBES.map((p) => httpProbe(l.endpoint, p)));
    const [qHttp, eHttp] = await Promise.all([httpOn(qkv), httpOn(etcd)]);
    expect(qHttp).toEqual(eHttp);
    expect(eHttp.filter((l) => l.includes(' -> 503 '))).toHaveLength(HTTP_PROBES.length - 2);
    // Status over the gateway: served, and says it is a learner.
    for (const l of [qkv, etcd]) {
      const st = (await (await fetch(`${l.endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}' })).json()) as { isLearner?: boolean };
      expect(st.isLearner).toBe(true);
    }

    const [qGrpc, eGrpc] = await Promise.all([grpcProbes(qkv.endpoint), grpcProbes(etcd.endpoint)]);
    expect(qGrpc).toEqual(eGrpc);
    expect(eGrpc).toContain(`Watch.Watch 14 ${REFUSED} after 0 responses`);

    // /v1 (qkv's own): a serializable GET and the status are served, anything else is refused alike.
    const v1 = async (method: string, path: string): Promise<string> => {
      const res = await fetch(qkv.endpoint + path, { method, ...(method === 'PUT' ? { body: 'v' } : {}) });
      const text = await res.text();
      return `${method} ${path} ${res.status}${res.status === 200 ? '' : ` ${text}`}`;
    };
    const refusedBody = JSON.stringify({ error: REFUSED, message: REFUSED, code: 14 });
    expect([
      await v1('GET', '/v1/kv/a?serializable=true'),
      await v1('GET', '/v1/status'),
      await v1('GET', '/v1/kv/a'),
      await v1('PUT', '/v1/kv/a'),
      await v1('GET', '/v1/members'),
    ]).toEqual([
      'GET /v1/kv/a?serializable=true 200',
      'GET /v1/status 200',
      `GET /v1/kv/a 503 ${refusedBody}`,
      `PUT /v1/kv/a 503 ${refusedBody}`,
      `GET /v1/members 503 ${refusedBody}`,
    ]);

    // Promoted: the same member serves writes, linearizable reads and streams.
    await Promise.all([etcd.promote(), qkv.promote()]);
    const afterOn = async (l: Learner): Promise<string[]> => {
      const out: string[] = [];
      // The promotion is applied on the member itself a moment after the leader answers.
      await LocalCluster.until(async () => (await etcdctl(l.endpoint, ['put', 'a', '1'])).code === 0, 'a write on the promoted member');
      for (const args of [
        ['get', 'a'],
        ['member', 'list'],
        ['lease', 'list'],
        ['alarm', 'list'],
      ])
        out.push(await ctl(l.endpoint, args));
      const watch = new CtlChild(l.endpoint, ['watch', 'a']);
      await sleep(500); // the watch stream opens (etcdctl prints nothing for its creation)
      await etcdctl(l.endpoint, ['put', 'a', '2']);
      out.push(await watch.waitFor((o) => o.includes('PUT\na\n2\n'), 'the watch event'));
      await watch.stop();
      return out;
    };
    const [qAfter, eAfter] = await Promise.all([afterOn(qkv), afterOn(etcd)]);
    // The member lists differ in names and URLs; their shape (two started voters) is compared.
    const shape = (out: string[]): string[] => out.map((l) => l.replace(/, [^,\n]+, http:\/\/[^\n]*, false/g, ', <member>, false'));
    expect(shape(qAfter)).toEqual(shape(eAfter));
    expect(eAfter[0]).toBe('$ get a\na\n1\nexit 0');
  });
});
