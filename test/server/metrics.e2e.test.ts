import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Histogram, Registry } from 'prom-client';
import { LatencyHistogram } from '../../src/server/metrics.js';
import { LocalCluster } from './cluster_harness.js';
import { freePorts } from './ports.js';
import { CtlChild, etcdctl, sleep } from '../grpc/helpers.js';

describe('LatencyHistogram', () => {
  const bounds = [0.0001, 0.001, 0.01, 0.1, 1];
  const cases: { name: string; observations: number[] }[] = [
    { name: 'nothing observed', observations: [] },
    { name: 'values on the bounds, between them and beyond the last', observations: [0, 0.0001, 0.00011, 0.001, 0.05, 0.1, 0.7, 1, 3.5, 100] },
    { name: 'many of one bucket', observations: Array.from({ length: 1000 }, (_, i) => 0.002 + i * 1e-6) },
  ];
  test.each(cases)('exports exactly what prom-client Histogram exports: $name', async ({ observations }) => {
    const theirs = new Registry();
    const ours = new Registry();
    for (const r of [theirs, ours]) r.setDefaultLabels({ member: 'n1' });
    const reference = new Histogram({ name: 'x_seconds', help: 'Help text.', buckets: bounds, registers: [theirs] });
    const fast = new LatencyHistogram('x_seconds', 'Help text.', bounds, ours);
    for (const v of observations) {
      reference.observe(v);
      fast.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  test("the registry's resetMetrics() starts it from zero", async () => {
    const registry = new Registry();
    const h = new LatencyHistogram('z_seconds', 'Help.', bounds, registry);
    h.observe(0.5);
    registry.resetMetrics();
    h.observe(0.05);
    const text = await registry.metrics();
    expect(text).toMatch(/^z_seconds_count 1$/m);
    expect(text).toMatch(/^z_seconds_sum 0.05$/m);
    expect(text).toMatch(/^z_seconds_bucket\{le="1"\} 1$/m);
  });

  test('a value that is not a finite number is not counted', async () => {
    const registry = new Registry();
    const h = new LatencyHistogram('y_seconds', 'Help.', bounds, registry);
    h.observe(Number.NaN);
    h.observe(Number.POSITIVE_INFINITY);
    h.observe(0.5);
    expect(await registry.metrics()).toMatch(/^y_seconds_count 1$/m);
  });
});

/** One metric family of a Prometheus text exposition. */
interface Family {
  type: string;
  /** Label names seen on its samples (a histogram's `le` apart). */
  labels: Set<string>;
  /** A histogram's bucket bounds, as written. */
  buckets: Set<string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** Parses the text format: families by name, with their samples. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { type: 'untyped', labels: new Set(), buckets: new Set(), samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      family(type[1]!).type = type[2]!;
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const name = m[1]!;
    const base = families.get(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const f = family(families.has(base) ? base : name);
    f.samples.push({ name, labels, value: Number(m[3]) });
    for (const k of Object.keys(labels)) if (!(k === 'le' && name.endsWith('_bucket'))) f.labels.add(k);
    if (name.endsWith('_bucket') && labels['le'] !== undefined) f.buckets.add(labels['le']);
  }
  return families;
}

interface Expected {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
  /** False for what a healthy etcd only shows after a failure (a counter vector without children). */
  inHealthyEtcd?: boolean;
}

const GRPC = ['grpc_type', 'grpc_service', 'grpc_method'];

/** etcd 3.4's metrics that qkv has an equivalent of, with etcd's types and label names. */
const ETCD_METRICS: Expected[] = [
  { name: 'etcd_server_has_leader', type: 'gauge', labels: [] },
  { name: 'etcd_server_is_leader', type: 'gauge', labels: [] },
  { name: 'etcd_server_is_learner', type: 'gauge', labels: [] },
  { name: 'etcd_server_leader_changes_seen_total', type: 'counter', labels: [] },
  { name: 'etcd_server_proposals_committed_total', type: 'gauge', labels: [] },
  { name: 'etcd_server_proposals_applied_total', type: 'gauge', labels: [] },
  { name: 'etcd_server_proposals_pending', type: 'gauge', labels: [] },
  { name: 'etcd_server_proposals_failed_total', type: 'counter', labels: [] },
  { name: 'etcd_server_slow_apply_total', type: 'counter', labels: [] },
  { name: 'etcd_server_snapshot_apply_in_progress_total', type: 'gauge', labels: [] },
  { name: 'etcd_server_quota_backend_bytes', type: 'gauge', labels: [] },
  { name: 'etcd_server_id', type: 'gauge', labels: ['server_id'] },
  { name: 'etcd_server_version', type: 'gauge', labels: ['server_version'] },
  { name: 'etcd_cluster_version', type: 'gauge', labels: ['cluster_version'] },
  { name: 'etcd_server_health_success', type: 'counter', labels: [] },
  { name: 'etcd_server_health_failures', type: 'counter', labels: [] },
  { name: 'etcd_disk_wal_fsync_duration_seconds', type: 'histogram', labels: [] },
  { name: 'etcd_disk_backend_commit_duration_seconds', type: 'histogram', labels: [] },
  { name: 'etcd_mvcc_db_total_size_in_bytes', type: 'gauge', labels: [] },
  { name: 'etcd_mvcc_db_total_size_in_use_in_bytes', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_mvcc_db_total_size_in_bytes', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_mvcc_keys_total', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_mvcc_current_revision', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_mvcc_compact_revision', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_mvcc_watcher_total', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_mvcc_slow_watcher_total', type: 'gauge', labels: [] },
  { name: 'etcd_debugging_lease_granted_total', type: 'counter', labels: [] },
  { name: 'etcd_debugging_lease_revoked_total', type: 'counter', labels: [] },
  { name: 'etcd_debugging_lease_renewed_total', type: 'counter', labels: [] },
  { name: 'etcd_debugging_server_lease_expired_total', type: 'counter', labels: [] },
  { name: 'etcd_network_peer_round_trip_time_seconds', type: 'histogram', labels: ['To'] },
  { name: 'etcd_network_peer_sent_bytes_total', type: 'counter', labels: ['To'] },
  { name: 'etcd_network_peer_received_bytes_total', type: 'counter', labels: ['From'] },
  { name: 'etcd_network_peer_sent_failures_total', type: 'counter', labels: ['To'], inHealthyEtcd: false },
  { name: 'etcd_network_active_peers', type: 'gauge', labels: ['Local', 'Remote'] },
  { name: 'etcd_network_disconnected_peers_total', type: 'counter', labels: ['Local', 'Remote'], inHealthyEtcd: false },
  { name: 'etcd_network_client_grpc_sent_bytes_total', type: 'counter', labels: [] },
  { name: 'etcd_network_client_grpc_received_bytes_total', type: 'counter', labels: [] },
  { name: 'grpc_server_started_total', type: 'counter', labels: GRPC },
  { name: 'grpc_server_handled_total', type: 'counter', labels: [...GRPC, 'grpc_code'] },
  { name: 'grpc_server_msg_received_total', type: 'counter', labels: GRPC },
  { name: 'grpc_server_msg_sent_total', type: 'counter', labels: GRPC },
  // etcd shows this one with --metrics=extensive (the etcd-mixin's etcdGRPCRequestsSlow alert).
  { name: 'grpc_server_handling_seconds', type: 'histogram', labels: GRPC },
  { name: 'process_resident_memory_bytes', type: 'gauge', labels: [] },
];

/** Two real etcd 3.4 members on loopback (peer metrics need a peer), --metrics=extensive. */
class RealEtcdPair {
  private constructor(
    readonly clientUrls: string[],
    private readonly dir: string,
    private readonly children: ChildProcess[],
  ) {}

  static async start(): Promise<RealEtcdPair> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-real-etcd-pair-'));
    const ports = await freePorts(4);
    const names = ['e1', 'e2'];
    const peer = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`;
    const client = (i: number): string => `http://127.0.0.1:${ports[2 * i]}`;
    const initial = names.map((n, i) => `${n}=${peer(i)}`).join(',');
    let log = '';
    const children = names.map((name, i) => {
      const child = spawn(
        'etcd',
        [
          `--name=${name}`,
          `--data-dir=${path.join(dir, name)}`,
          `--listen-client-urls=${client(i)}`,
          `--advertise-client-urls=${client(i)}`,
          `--listen-peer-urls=${peer(i)}`,
          `--initial-advertise-peer-urls=${peer(i)}`,
          `--initial-cluster=${initial}`,
          '--metrics=extensive',
          '--log-level=error',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      return child;
    });
    const pair = new RealEtcdPair([client(0), client(1)], dir, children);
    const deadline = Date.now() + 30_000;
    for (const url of pair.clientUrls) {
      for (;;) {
        try {
          const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
          if (res.ok && ((await res.json()) as { health: string }).health === 'true') break;
        } catch {
          // Not listening yet.
        }
        if (Date.now() > deadline) {
          await pair.stop();
          throw new Error(`etcd did not become healthy: ${log}`);
        }
        await sleep(50);
      }
    }
    return pair;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await exited;
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

const scrape = async (url: string): Promise<{ text: string; families: Map<string, Family> }> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return { text, families: parseExposition(text) };
};

describe("a member's /metrics: etcd's names, types, labels and buckets", () => {
  let cluster: LocalCluster;
  let etcd: RealEtcdPair;
  let leader: string;

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    const [l, pair] = await Promise.all([cluster.waitForLeader(), RealEtcdPair.start()]);
    leader = l;
    etcd = pair;
    // Traffic on both: gRPC puts, a lease, a watch's worth of requests.
    for (const [ep, tag] of [
      [cluster.url(leader), 'qkv'],
      [etcd.clientUrls[0]!, 'etcd'],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const r = await etcdctl(ep, ['put', `/metrics/${tag}/${i}`, 'v']);
        if (r.code !== 0) throw new Error(`etcdctl put on ${tag}: ${r.stderr}`);
      }
      await etcdctl(ep, ['get', '/metrics/', '--prefix']);
      await etcdctl(ep, ['lease', 'grant', '60']);
    }
  });

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.stop();
  });

  test('each listed metric has its type and label names, and no sample has a member label', async () => {
    const { families } = await scrape(cluster.url(leader));
    const problems: string[] = [];
    for (const e of ETCD_METRICS) {
      const f = families.get(e.name);
      if (!f) {
        problems.push(`${e.name}: missing`);
        continue;
      }
      if (f.type !== e.type) problems.push(`${e.name}: type ${f.type}, want ${e.type}`);
      if ([...f.labels].sort().join(',') !== [...e.labels].sort().join(','))
        problems.push(`${e.name}: labels {${[...f.labels].sort().join(',')}}, want {${[...e.labels].sort().join(',')}}`);
    }
    for (const [name, f] of families) if (f.samples.some((s) => 'member' in s.labels)) problems.push(`${name}: has a member label`);
    expect(problems).toEqual([]);
  });

  test("each listed metric has etcd's own type, label names and buckets", async () => {
    // etcd observes its first peer round trip 5 s after start: wait for it.
    let theirs = await scrape(etcd.clientUrls[0]!);
    await LocalCluster.until(
      async () => (theirs = await scrape(etcd.clientUrls[0]!)).families.get('etcd_network_peer_round_trip_time_seconds')?.samples.length !== undefined,
      "etcd's first peer round trip",
      20_000,
    );
    const ours = (await scrape(cluster.url(leader))).families;
    const problems: string[] = [];
    for (const e of ETCD_METRICS) {
      const t = theirs.families.get(e.name);
      const o = ours.get(e.name);
      if (!t || (e.inHealthyEtcd === false && t.samples.length === 0)) {
        if (e.inHealthyEtcd !== false) problems.push(`${e.name}: not in etcd's /metrics`);
        continue;
      }
      if (!o) {
        problems.push(`${e.name}: missing`);
        continue;
      }
      if (o.type !== t.type) problems.push(`${e.name}: type ${o.type}, etcd's ${t.type}`);
      const labels = (f: Family): string => [...f.labels].sort().join(',');
      if (labels(o) !== labels(t)) problems.push(`${e.name}: labels {${labels(o)}}, etcd's {${labels(t)}}`);
      const buckets = (f: Family): string =>
        [...f.buckets]
          .map(Number)
          .sort((a, b) => a - b)
          .join(',');
      if (buckets(o) !== buckets(t)) problems.push(`${e.name}: buckets ${buckets(o)}, etcd's ${buckets(t)}`);
    }
    expect(problems).toEqual([]);
  });

  test('the values say what happened', async () => {
    const scrapes = new Map(await Promise.all(cluster.names.map(async (n) => [n, (await scrape(cluster.url(n))).families] as const)));
    const value = (n: string, name: string, labels: Record<string, string> = {}): number | undefined =>
      (scrapes.get(n)!.get(name) ?? scrapes.get(n)!.get(name.replace(/_(bucket|sum|count)$/, '')))?.samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value;
    const ids = new Map(cluster.config.members.map((m) => [m.name, BigInt(m.id).toString(16)]));
    for (const n of cluster.names) {
      expect(value(n, 'etcd_server_has_leader'), n).toBe(1);
      expect(value(n, 'etcd_server_is_leader'), n).toBe(n === leader ? 1 : 0);
      expect(value(n, 'etcd_server_leader_changes_seen_total'), n).toBeGreaterThanOrEqual(1);
      expect(value(n, 'etcd_server_id', { server_id: ids.get(n)! }), n).toBe(1);
      expect(value(n, 'etcd_server_quota_backend_bytes'), n).toBe(2 * 1024 ** 3);
      expect(value(n, 'etcd_server_proposals_applied_total'), n).toBeGreaterThanOrEqual(4);
      expect(value(n, 'etcd_server_proposals_committed_total'), n).toBeGreaterThanOrEqual(value(n, 'etcd_server_proposals_applied_total')!);
      expect(value(n, 'etcd_disk_wal_fsync_duration_seconds_count'), n).toBeGreaterThan(0);
      expect(value(n, 'etcd_disk_backend_commit_duration_seconds_count'), n).toBeGreaterThan(0);
      expect(value(n, 'etcd_mvcc_db_total_size_in_bytes'), n).toBeGreaterThan(0);
      expect(value(n, 'etcd_debugging_mvcc_current_revision'), n).toBeGreaterThanOrEqual(4);
      for (const [peer, id] of ids) {
        if (peer === n) continue;
        expect(value(n, 'etcd_network_active_peers', { Local: ids.get(n)!, Remote: id }), `${n} to ${peer}`).toBe(1);
        // Followers talk to the leader only (once the election is over).
        if (n !== leader && peer !== leader) continue;
        expect(value(n, 'etcd_network_peer_sent_bytes_total', { To: id }), `${n} to ${peer}`).toBeGreaterThan(0);
        expect(value(n, 'etcd_network_peer_received_bytes_total', { From: id }), `${n} from ${peer}`).toBeGreaterThan(0);
        // The leader times its heartbeats' round trips.
        if (n === leader) expect(value(n, 'etcd_network_peer_round_trip_time_seconds_count', { To: id }), `${n} to ${peer}`).toBeGreaterThan(0);
      }
    }
    // Three puts on the leader (the keys count is every member's: all applied them).
    await LocalCluster.until(
      async () => (await scrape(cluster.url(leader))).families.get('etcd_debugging_mvcc_keys_total')?.samples[0]?.value === 3,
      'keys_total 3',
      10_000,
    );
    const put = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };
    expect(value(leader, 'grpc_server_started_total', put)).toBe(3);
    expect(value(leader, 'grpc_server_handled_total', { ...put, grpc_code: 'OK' })).toBe(3);
    expect(value(leader, 'grpc_server_handled_total', { ...put, grpc_code: 'Unavailable' })).toBe(0);
    expect(value(leader, 'grpc_server_msg_received_total', put)).toBe(3);
    expect(value(leader, 'grpc_server_msg_sent_total', put)).toBe(3);
    expect(value(leader, 'grpc_server_handling_seconds_count', put)).toBe(3);
    expect(value(leader, 'etcd_debugging_lease_granted_total')).toBe(1);
    expect(value(leader, 'etcd_network_client_grpc_received_bytes_total')).toBeGreaterThan(0);
    expect(value(leader, 'etcd_network_client_grpc_sent_bytes_total')).toBeGreaterThan(0);
    const watch = { grpc_type: 'bidi_stream', grpc_service: 'etcdserverpb.Watch', grpc_method: 'Watch' };
    expect(value(leader, 'grpc_server_started_total', watch)).toBe(0);
    // A stream: one watch request, its created response and an event, then the client goes away.
    const watcher = new CtlChild(cluster.url(leader), ['watch', '/metrics/watched']);
    await LocalCluster.until(
      async () => (await scrape(cluster.url(leader))).families.get('etcd_debugging_mvcc_watcher_total')?.samples[0]?.value === 1,
      'one watcher',
      10_000,
    );
    expect((await etcdctl(cluster.url(leader), ['put', '/metrics/watched', 'w'])).code).toBe(0);
    await watcher.waitFor((out) => out.includes('/metrics/watched'), 'the watch event');
    await watcher.stop('SIGKILL');
    const counted = async (): Promise<Map<string, Family>> => (await scrape(cluster.url(leader))).families;
    await LocalCluster.until(
      async () =>
        (await counted())
          .get('grpc_server_handled_total')!
          .samples.some((s) => s.labels['grpc_method'] === 'Watch' && s.labels['grpc_service'] === 'etcdserverpb.Watch' && s.value === 1),
      'the watch stream handled',
      10_000,
    );
    scrapes.set(leader, await counted());
    expect(value(leader, 'grpc_server_started_total', watch)).toBe(1);
    expect(value(leader, 'grpc_server_handled_total', { ...watch, grpc_code: 'Canceled' })).toBe(1);
    expect(value(leader, 'grpc_server_msg_received_total', watch)).toBe(1);
    expect(value(leader, 'grpc_server_msg_sent_total', watch)).toBe(2);
    // A server stream (the snapshot) and the lease keep-alive stream, each through to its end.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-metrics-snap-'));
    try {
      expect((await etcdctl(cluster.url(leader), ['snapshot', 'save', path.join(dir, 'db')])).code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const lease = /lease ([0-9a-f]+) granted/.exec((await etcdctl(cluster.url(leader), ['lease', 'grant', '60'])).stdout)![1]!;
    expect((await etcdctl(cluster.url(leader), ['lease', 'keep-alive', '--once', lease])).code).toBe(0);
    const snapshot = { grpc_type: 'server_stream', grpc_service: 'etcdserverpb.Maintenance', grpc_method: 'Snapshot' };
    const keepAlive = { grpc_type: 'bidi_stream', grpc_service: 'etcdserverpb.Lease', grpc_method: 'LeaseKeepAlive' };
    await LocalCluster.until(
      async () => (await counted()).get('grpc_server_handled_total')!.samples.some((s) => s.labels['grpc_method'] === 'LeaseKeepAlive' && s.value === 1),
      'the keep-alive stream handled',
      10_000,
    );
    scrapes.set(leader, await counted());
    expect(value(leader, 'grpc_server_handled_total', { ...snapshot, grpc_code: 'OK' })).toBe(1);
    expect(value(leader, 'grpc_server_msg_received_total', snapshot)).toBe(1);
    expect(value(leader, 'grpc_server_msg_sent_total', snapshot)).toBeGreaterThanOrEqual(2);
    expect(value(leader, 'grpc_server_started_total', keepAlive)).toBe(1);
    expect(value(leader, 'grpc_server_msg_received_total', keepAlive)).toBe(1);
    expect(value(leader, 'grpc_server_msg_sent_total', keepAlive)).toBe(1);
    // What etcdctl check datascale reads: the bare name, then the value.
    expect(await (await fetch(`${cluster.url(leader)}/metrics`)).text()).toMatch(/^process_resident_memory_bytes \d+(\.\d+)?(e\+\d+)?$/m);
  });
});
