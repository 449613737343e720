/**
 * qkv and etcd side by side: the same 3-member layout on loopback, the same load generators, one
 * system after the other, fsync on every commit for both. The gateway rows use a Node.js client
 * over etcd's v3 JSON gateway (bench/load.ts); the gRPC rows use etcd's own Go client, clientv3
 * 3.4 (bench/grpc-load, built by bench/install-grpc-load.sh), with each member's CPU per op.
 *
 *   npm run bench -- [--quick] [--seconds 10] [--warmup 5] [--keys 1000000] [--only qkv|etcd]
 *                    [--grpc-only | --gateway-only | --backup-only | --auth-only]
 *
 * --grpc-only skips the gateway rows and the loaded store (the gateway warm-up puts still run,
 * and the gRPC rows have a warm-up of their own);
 * --gateway-only skips the gRPC rows.
 * --backup-only loads the keys and runs only the backup rows: catch-up of a new member replacing
 * one that lost its disk, snapshot save, file size, restore (its time and the restoring process's
 * peak resident memory).
 * --auth-only runs only what auth costs per request: gateway put and linearizable range with
 *   auth off, then on (simple token, as root), on the same cluster, with the on/off ratios.
 *
 * Writes bench/results/<stamp>.md, .json and -latency.svg, and prints the table.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ensureEtcd, ensureGrpcLoad, startEtcd, startQkv, type SystemUnderTest } from './clusters.js';
import { runGrpcLoad, type GrpcResult, type GrpcWorkload } from './grpc.js';
import { b64, closedLoop, post, summarize, type Stats } from './load.js';
import { runMeasuringPeakRss } from '../test/cli/peak_rss.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const num = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const SECONDS = num('seconds', QUICK ? 2 : 10);
/**
 * Puts before the first measured workload, the same for both systems: this many seconds at 64
 * in flight, then as many sequential. It seeds the key space, and it measures servers in their
 * steady state. A fresh Node process runs its code unoptimized until V8 has seen it often
 * enough, and code made fast for batches of 64 is recompiled when Readies carry one entry each:
 * measured with one cluster, the sequential p50 and CPU per put only settled after about 10 s of
 * sequential puts that followed 5 s at 64 in flight.
 */
const WARMUP_SECONDS = num('warmup', QUICK ? 1 : 5);
const KEYS = num('keys', QUICK ? 20_000 : 1_000_000);
const WATCHERS = num('watchers', QUICK ? 200 : 1000);
const ONLY = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const BACKUP_ONLY = argv.includes('--backup-only');
const AUTH_ONLY = argv.includes('--auth-only');
const GRPC = !argv.includes('--gateway-only') && !BACKUP_ONLY && !AUTH_ONLY;
const GATEWAY = !argv.includes('--grpc-only') && !BACKUP_ONLY && !AUTH_ONLY;
if (!GRPC && !GATEWAY && !BACKUP_ONLY && !AUTH_ONLY) throw new Error('--grpc-only and --gateway-only exclude each other');
const VALUE = b64(Buffer.alloc(256, 'v'));
const KEYSPACE = 10_000;

function progress(line: string): void {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

interface Row {
  workload: string;
  metric: string;
  unit: string;
  /** Higher is better (throughput) or lower is better (latency, memory, time). */
  better: 'higher' | 'lower';
  values: Partial<Record<'qkv' | 'etcd', number>>;
}

const rows: Row[] = [];
/** Put latency at each of PCTS, per concurrency and system: the gateway's and gRPC's. */
const PCTS = [50, 75, 90, 95, 99, 99.9];
const putLatencies: Record<string, Partial<Record<'qkv' | 'etcd', number[]>>> = {};
const grpcPutLatencies: Record<string, Partial<Record<'qkv' | 'etcd', number[]>>> = {};
const grpcResults: (GrpcResult & { system: string; row: string })[] = [];
const atPcts = (sorted: Float64Array): number[] => PCTS.map((p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

function record(workload: string, sys: SystemUnderTest, s: Stats): void {
  const add = (metric: string, unit: string, better: Row['better'], v: number): void => {
    let row = rows.find((r) => r.workload === workload && r.metric === metric);
    if (!row) rows.push((row = { workload, metric, unit, better, values: {} }));
    row.values[sys.name] = v;
  };
  add('ops/s', 'ops/s', 'higher', s.opsPerSec);
  add('p50', 'ms', 'lower', s.p50);
  add('p99', 'ms', 'lower', s.p99);
  add('p99.9', 'ms', 'lower', s.p999);
  if (s.errors > 0) add('errors', 'count', 'lower', s.errors);
  progress(
    `${sys.name} ${workload}: ${s.opsPerSec.toFixed(0)} ops/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms${s.errors ? `, ${s.errors} errors` : ''}`,
  );
}

function single(workload: string, metric: string, unit: string, better: Row['better'], sys: SystemUnderTest, v: number): void {
  let row = rows.find((r) => r.workload === workload && r.metric === metric);
  if (!row) rows.push((row = { workload, metric, unit, better, values: {} }));
  row.values[sys.name] = v;
  progress(`${sys.name} ${workload} ${metric}: ${v.toFixed(1)} ${unit}`);
}

const key = (i: number): string => b64(`bench/${String(i % KEYSPACE).padStart(6, '0')}`);

/** The leader's client URL, asking the members that answer (one may be down). */
async function leaderOf(sys: SystemUnderTest): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const statuses = await Promise.all(
      sys.endpoints.map(async (ep) => {
        try {
          return { ep, st: (await post(`${ep}/v3/maintenance/status`, '{}')) as { leader?: string; header?: { member_id?: string } } };
        } catch {
          return undefined;
        }
      }),
    );
    const leaderId = statuses.find((s) => s?.st.leader && s.st.leader !== '0')?.st.leader;
    const leader = statuses.find((s) => s && s.st.header?.member_id === leaderId);
    if (leader) return leader.ep;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${sys.name}: no leader found`);
}

/** Watch: WATCHERS streams on a prefix; the time from a put's acknowledgement to each event. */
async function watchWorkload(sys: SystemUnderTest): Promise<Stats> {
  const prefix = Buffer.from('watch/');
  const end = Buffer.from('watch0');
  const acked = new Map<string, number>();
  /** Values whose put is in flight: an event may come before the put's own answer. */
  const inFlight = new Set<string>();
  const latencies: number[] = [];
  const reqs: http.ClientRequest[] = [];
  let ready = 0;
  for (let i = 0; i < WATCHERS; i++) {
    const ep = new URL(sys.endpoints[i % sys.endpoints.length]!);
    const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: b64(end) } });
    const req = http.request(
      { host: ep.hostname, port: ep.port, path: '/v3/watch', method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line) as { result?: { created?: boolean; events?: { kv: { value: string } }[] } };
            if (msg.result?.created) ready++;
            const now = performance.now();
            for (const e of msg.result?.events ?? []) {
              const v = Buffer.from(e.kv.value, 'base64').toString();
              const t = acked.get(v);
              if (t !== undefined) latencies.push(now - t);
              // Delivered before the writer even saw its acknowledgement: no wait at all.
              else if (inFlight.has(v)) latencies.push(0);
            }
          }
        });
      },
    );
    req.on('error', () => {});
    req.end(body);
    reqs.push(req);
  }
  const deadline = Date.now() + 30_000;
  while (ready < WATCHERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const puts = QUICK ? 100 : 500;
  const leader = await leaderOf(sys);
  const started = performance.now();
  for (let i = 0; i < puts; i++) {
    const value = `v${i}`;
    inFlight.add(value);
    await post(`${leader}/v3/kv/put`, JSON.stringify({ key: b64(`watch/${i % 10}`), value: b64(value) }));
    acked.set(value, performance.now());
    inFlight.delete(value);
    await new Promise((r) => setTimeout(r, 5));
  }
  const drainDeadline = Date.now() + 10_000;
  while (latencies.length < puts * WATCHERS && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  for (const r of reqs) r.destroy();
  const s = summarize(latencies, puts * WATCHERS - latencies.length, seconds);
  return s;
}

async function loadKeys(sys: SystemUnderTest, n: number): Promise<number> {
  const perTxn = 100;
  const started = performance.now();
  let next = 0;
  const leader = await leaderOf(sys);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (;;) {
        const from = next;
        next += perTxn;
        if (from >= n) return;
        const success = [];
        for (let i = from; i < Math.min(n, from + perTxn); i++) success.push({ request_put: { key: b64(`load/${String(i).padStart(8, '0')}`), value: VALUE } });
        await post(`${leader}/v3/kv/txn`, JSON.stringify({ success }));
        if ((from / perTxn) % 500 === 0) progress(`${sys.name} loading keys: ${from}/${n}`);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

async function waitHealthy(url: string, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
    } catch {
      // still starting
    }
    if (Date.now() > deadline) throw new Error(`${url} not healthy within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function revisionOf(url: string): Promise<number> {
  const r = (await post(`${url}/v3/kv/range`, JSON.stringify({ key: b64('load/'), serializable: true, count_only: true }))) as { header: { revision: string } };
  return Number(r.header.revision);
}

async function runAll(sys: SystemUnderTest): Promise<void> {
  if (BACKUP_ONLY) {
    const label = `${KEYS.toLocaleString('en')} keys`;
    single(label, 'load time', 's', 'lower', sys, await loadKeys(sys, KEYS));
    const leaderUrl = await leaderOf(sys);
    // A follower loses its disk (stopping the leader would add an election to the figure), and
    // a new member replaces it: it catches up from nothing.
    const i = sys.endpoints.findIndex((ep) => ep !== leaderUrl);
    await sys.member(i).kill();
    const target = await revisionOf(leaderUrl);
    const replacement = await sys.replace(i, leaderUrl);
    single(label, 'catch-up of a member replacing one that lost its disk', 's', 'lower', sys, await catchUpSeconds(replacement, target));
    await snapshotRows(sys, label, leaderUrl);
    return;
  }
  const eps = sys.endpoints;
  const rr = (i: number): string => eps[i % eps.length]!;
  const putOp = (i: number): Promise<unknown> => post(`${rr(i)}/v3/kv/put`, JSON.stringify({ key: key(i), value: VALUE }));
  // Seed the key space so gets find values, and warm the servers up.
  await closedLoop(64, WARMUP_SECONDS, putOp);
  await closedLoop(1, WARMUP_SECONDS, putOp);
  if (AUTH_ONLY) await authRows(sys);
  if (GATEWAY) await gatewayRows(sys);
  if (GRPC) await grpcRows(sys);
  if (GATEWAY) await loadedStore(sys);
}

/** The gRPC workloads: etcd's Go client, connections shared as the issue sets them. */
const GRPC_WORKLOADS: { row: string; w: GrpcWorkload }[] = [
  { row: 'gRPC put, sequential (1 client, 1 connection)', w: { workload: 'put', clients: 1, conns: 1 } },
  { row: 'gRPC put, 64 clients on 8 connections', w: { workload: 'put', clients: 64, conns: 8 } },
  { row: 'gRPC put, 256 clients on 16 connections', w: { workload: 'put', clients: 256, conns: 16 } },
  { row: 'gRPC range linearizable, 64 clients on 8 connections', w: { workload: 'range-linearizable', clients: 64, conns: 8 } },
  { row: 'gRPC range serializable, 64 clients on 8 connections', w: { workload: 'range-serializable', clients: 64, conns: 8 } },
  { row: 'gRPC txn compare-and-set, 64 clients on 8 connections', w: { workload: 'txn-cas', clients: 64, conns: 8 } },
];

let grpcBin: string | undefined;

async function grpcRows(sys: SystemUnderTest): Promise<void> {
  const bin = grpcBin!;
  const leader = sys.endpoints.indexOf(await leaderOf(sys));
  const workloads = [
    ...GRPC_WORKLOADS,
    {
      row: `gRPC watch: ${WATCHERS} watchers on a prefix (8 connections), put ack to event`,
      w: { workload: 'watch', clients: 1, conns: 8, watchers: WATCHERS, puts: QUICK ? 100 : 500 } satisfies GrpcWorkload,
    },
  ];
  // The gRPC path is other code than the gateway's (in qkv, @grpc/grpc-js): warm it up the same
  // way, WARMUP_SECONDS at 64 in flight and as many sequential, unmeasured.
  for (const [clients, conns] of [
    [64, 8],
    [1, 1],
  ] as const) {
    await runGrpcLoad(bin, sys, { workload: 'put', clients, conns }, { seconds: WARMUP_SECONDS, keys: KEYSPACE, valueSize: 256 });
  }
  for (const { row, w } of workloads) {
    const r = await runGrpcLoad(bin, sys, w, { seconds: SECONDS, keys: KEYSPACE, valueSize: 256 });
    grpcResults.push({ ...r, system: sys.name, row });
    record(row, sys, {
      ops: r.ops,
      warmupOps: 0,
      errors: r.errors,
      seconds: r.seconds,
      opsPerSec: r.ops_per_sec,
      p50: r.p50_ms,
      p99: r.p99_ms,
      p999: r.p999_ms,
      latencies: new Float64Array(),
    });
    const followers = r.cpuPerOpUs.filter((_, i) => i !== leader);
    const per = w.workload === 'watch' ? 'µs per event' : 'µs per op';
    single(row, 'server CPU, leader', per, 'lower', sys, r.cpuPerOpUs[leader] ?? NaN);
    single(row, 'server CPU, follower (mean)', per, 'lower', sys, followers.reduce((a, b) => a + b, 0) / followers.length);
    // Its own CPU, to show it leaves the servers most of the machine (it shares the same cores).
    single(row, 'load generator CPU', per, 'lower', sys, r.clientCpuPerOpUs);
    if (r.first_error) progress(`${sys.name} ${row}: first error: ${r.first_error}`);
    if (w.workload === 'put' && r.percentiles_ms) (grpcPutLatencies[String(w.clients)] ??= {})[sys.name] = r.percentiles_ms;
  }
}

/**
 * What auth costs per request: gateway put (sequential, 64 in flight) and linearizable range (64
 * in flight) with auth off, then the same once auth is on, as root with a simple token (etcd's
 * default), on the same cluster; then each figure's on/off ratio as a row of its own.
 */
async function authRows(sys: SystemUnderTest): Promise<void> {
  const eps = sys.endpoints;
  const rr = (i: number): string => eps[i % eps.length]!;
  const workloads: { name: string; inFlight: number; op: (i: number, token?: string) => Promise<unknown> }[] = [
    { name: 'put, sequential (1 client)', inFlight: 1, op: (i, t) => post(`${rr(i)}/v3/kv/put`, JSON.stringify({ key: key(i), value: VALUE }), t) },
    { name: 'put, 64 in flight', inFlight: 64, op: (i, t) => post(`${rr(i)}/v3/kv/put`, JSON.stringify({ key: key(i), value: VALUE }), t) },
    { name: 'get linearizable, 64 in flight', inFlight: 64, op: (i, t) => post(`${rr(i)}/v3/kv/range`, JSON.stringify({ key: key(i * 7919) }), t) },
  ];
  const measured: Record<string, Record<'off' | 'on', Stats>> = {};
  for (const w of workloads) {
    const s = await closedLoop(w.inFlight, SECONDS, (i) => w.op(i));
    record(`auth off: ${w.name}`, sys, s);
    measured[w.name] = { off: s, on: s };
  }
  const leader = await leaderOf(sys);
  await post(`${leader}/v3/auth/user/add`, JSON.stringify({ name: 'root', password: 'rootpw' }));
  await post(`${leader}/v3/auth/user/grant`, JSON.stringify({ user: 'root', role: 'root' }));
  await post(`${leader}/v3/auth/enable`, '{}');
  const { token } = (await post(`${leader}/v3/auth/authenticate`, JSON.stringify({ name: 'root', password: 'rootpw' }))) as { token: string };
  for (const w of workloads) {
    const s = await closedLoop(w.inFlight, SECONDS, (i) => w.op(i, token));
    record(`auth on (simple token): ${w.name}`, sys, s);
    measured[w.name]!.on = s;
  }
  for (const w of workloads) {
    const { off, on } = measured[w.name]!;
    single(`auth on/off: ${w.name}`, 'ops/s ratio', '×', 'higher', sys, on.opsPerSec / off.opsPerSec);
    single(`auth on/off: ${w.name}`, 'p50 ratio', '×', 'lower', sys, on.p50 / off.p50);
  }
}

async function gatewayRows(sys: SystemUnderTest): Promise<void> {
  const eps = sys.endpoints;
  const rr = (i: number): string => eps[i % eps.length]!;
  const putOp = (i: number): Promise<unknown> => post(`${rr(i)}/v3/kv/put`, JSON.stringify({ key: key(i), value: VALUE }));
  let s = await closedLoop(1, SECONDS, putOp);
  record('put, sequential (1 client)', sys, s);
  (putLatencies['1'] ??= {})[sys.name] = atPcts(s.latencies);
  for (const c of [16, 64, 256]) {
    s = await closedLoop(c, SECONDS, putOp);
    record(`put, ${c} in flight`, sys, s);
    (putLatencies[String(c)] ??= {})[sys.name] = atPcts(s.latencies);
  }
  s = await closedLoop(64, SECONDS, (i) => post(`${rr(i)}/v3/kv/range`, JSON.stringify({ key: key(i * 7919) })));
  record('get linearizable, 64 in flight', sys, s);
  s = await closedLoop(64, SECONDS, (i) => post(`${rr(i)}/v3/kv/range`, JSON.stringify({ key: key(i * 7919), serializable: true })));
  record('get serializable, 64 in flight', sys, s);
  s = await closedLoop(64, SECONDS, (i) => (i % 10 === 0 ? putOp(i) : post(`${rr(i)}/v3/kv/range`, JSON.stringify({ key: key(i * 7919) }))));
  record('mixed 90% get / 10% put, 64 in flight', sys, s);
  s = await closedLoop(64, SECONDS, async (i) => {
    const k = key(i * 31);
    const got = (await post(`${rr(i)}/v3/kv/range`, JSON.stringify({ key: k, serializable: true }))) as { kvs?: { mod_revision: string }[] };
    const mod = got.kvs?.[0]?.mod_revision ?? '0';
    return post(
      `${rr(i)}/v3/kv/txn`,
      JSON.stringify({ compare: [{ key: k, target: 'MOD', result: 'EQUAL', mod_revision: mod }], success: [{ request_put: { key: k, value: VALUE } }] }),
    );
  });
  record('txn compare-and-set, 64 in flight', sys, s);
  s = await watchWorkload(sys);
  record(`watch: ${WATCHERS} watchers on a prefix, put ack to event`, sys, s);
}

async function loadedStore(sys: SystemUnderTest): Promise<void> {
  const eps = sys.endpoints;

  // A large store: memory, disk, catch-up of a member that missed the whole load, restart.
  // (--backup-only catches up a new member that replaces one that lost its disk instead.)
  const label = `${KEYS.toLocaleString('en')} keys`;
  // A follower misses the load (stopping the leader would add an election to the figures).
  const leaderUrl = await leaderOf(sys);
  const m = sys.member(eps.findIndex((ep) => ep !== leaderUrl));
  await m.kill();
  const loadSeconds = await loadKeys(sys, KEYS);
  single(label, 'load time', 's', 'lower', sys, loadSeconds);
  await new Promise((r) => setTimeout(r, 2000));
  single(label, 'max member RSS', 'MB', 'lower', sys, Math.max(...sys.rss()) / 2 ** 20);
  single(label, 'max member disk', 'MB', 'lower', sys, Math.max(...sys.diskBytes()) / 2 ** 20);
  single(label, 'catch-up of a member that missed the load', 's', 'lower', sys, await catchUpSeconds(m, await revisionOf(leaderUrl)));
  await m.kill();
  const t = performance.now();
  m.start();
  await waitHealthy(m.url, 300_000);
  single(label, 'restart to healthy', 's', 'lower', sys, (performance.now() - t) / 1000);
  await snapshotRows(sys, label, leaderUrl);
}

/** Starts the stopped member `m` and returns the seconds until it serves revision `target`. */
async function catchUpSeconds(m: { url: string; start(): void }, target: number): Promise<number> {
  const t = performance.now();
  m.start();
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      if ((await revisionOf(m.url)) >= target) return (performance.now() - t) / 1000;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${m.url} did not catch up to revision ${target}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a command to its end; throws with its stderr if it fails. */
function runOrThrow(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(-2000)}`);
}

/**
 * Backups of the loaded store: `etcdctl snapshot save` from the leader (the same client for
 * both: both stream etcd's bbolt format), the file's size, and one member's data dir restored
 * from it by the system's own restore (`etcdctl snapshot restore`, `qkv snapshot restore`), with
 * that process's peak resident memory (its VmHWM, test/cli/peak_rss.ts).
 */
async function snapshotRows(sys: SystemUnderTest, label: string, leaderUrl: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `qkv-bench-${sys.name}-snapshot-`));
  try {
    const file = path.join(dir, 'snapshot.db');
    let t = performance.now();
    runOrThrow('etcdctl', [`--endpoints=${leaderUrl.replace(/^http:\/\//, '')}`, 'snapshot', 'save', file]);
    single(label, 'snapshot save (etcdctl, from the leader)', 's', 'lower', sys, (performance.now() - t) / 1000);
    single(label, 'snapshot file', 'MB', 'lower', sys, statSync(file).size / 2 ** 20);
    const restoreTo = ['--data-dir', path.join(dir, 'restored'), '--name', 'r1', '--initial-cluster', 'r1=http://127.0.0.1:2380'];
    restoreTo.push('--initial-advertise-peer-urls', 'http://127.0.0.1:2380');
    t = performance.now();
    const [cmd, args] =
      sys.name === 'etcd'
        ? ['etcdctl', ['snapshot', 'restore', file, ...restoreTo]]
        : [process.execPath, [path.resolve('bin/qkv.mjs'), 'snapshot', 'restore', file, ...restoreTo]];
    const r = await runMeasuringPeakRss(cmd, args, { ...process.env, ETCDCTL_API: '3' });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
    single(label, 'snapshot restore (one member, its own tool)', 's', 'lower', sys, (performance.now() - t) / 1000);
    single(label, 'snapshot restore peak RSS (VmHWM)', 'MB', 'lower', sys, r.peakRssBytes / 2 ** 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function markdown(meta: Record<string, string>): string {
  const fmt = (v: number | undefined, unit: string): string => (v === undefined ? '—' : unit === 'ops/s' ? v.toFixed(0) : v.toFixed(2));
  const lines = [
    `# qkv vs etcd, ${meta['date']}`,
    '',
    Object.entries(meta)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  \n'),
    '',
    '| workload | metric | qkv | etcd | qkv/etcd |',
    '| --- | --- | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const q = r.values.qkv;
    const e = r.values.etcd;
    const ratio = q !== undefined && e !== undefined && e !== 0 ? (q / e).toFixed(2) : '—';
    lines.push(`| ${r.workload} | ${r.metric} (${r.unit}, ${r.better} is better) | ${fmt(q, r.unit)} | ${fmt(e, r.unit)} | ${ratio} |`);
  }
  return lines.join('\n') + '\n';
}

/** Latency percentiles of the put workloads, both systems, as an SVG line chart (log scale). */
function svg(title: string, latencies: Record<string, Partial<Record<'qkv' | 'etcd', number[]>>>): string {
  const pcts = PCTS;
  const W = 720;
  const H = 400;
  const series: { label: string; color: string; dash: string; points: number[] }[] = [];
  const colors: Record<string, string> = { '1': '#1f77b4', '16': '#ff7f0e', '64': '#2ca02c', '256': '#d62728' };
  for (const [conc, bySys] of Object.entries(latencies)) {
    for (const name of ['qkv', 'etcd'] as const) {
      const points = bySys[name];
      if (!points || points.length === 0) continue;
      series.push({
        label: `${name} put ×${conc}`,
        color: colors[conc] ?? '#000',
        dash: name === 'etcd' ? '6,4' : '',
        points,
      });
    }
  }
  const all = series.flatMap((s) => s.points).filter((v) => v > 0);
  const lo = Math.log10(Math.max(0.05, Math.min(...all)));
  const hi = Math.log10(Math.max(...all) * 1.2);
  const x = (i: number): number => 60 + (i * (W - 220)) / (pcts.length - 1);
  const y = (v: number): number => H - 40 - ((Math.log10(Math.max(v, 0.05)) - lo) / (hi - lo || 1)) * (H - 70);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`];
  out.push(`<text x="${W / 2 - 150}" y="16" font-size="13">${title} latency percentiles (ms, log scale): qkv solid, etcd dashed</text>`);
  pcts.forEach((p, i) => out.push(`<text x="${x(i) - 10}" y="${H - 20}">p${p}</text>`));
  for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
    out.push(`<line x1="60" x2="${W - 160}" y1="${y(10 ** d)}" y2="${y(10 ** d)}" stroke="#ddd"/><text x="10" y="${y(10 ** d) + 4}">${10 ** d} ms</text>`);
  }
  series.forEach((s, k) => {
    const pts = s.points.map((v, i) => `${x(i)},${y(v)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''} points="${pts}"/>`);
    out.push(`<text x="${W - 150}" y="${40 + k * 16}" fill="${s.color}">${s.label}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

const fmtLoad = (l: number[]): string => l.map((v) => v.toFixed(2)).join(', ');

async function main(): Promise<void> {
  const etcdVersion = ONLY === 'qkv' ? 'not run' : ensureEtcd();
  let goVersion = 'not run';
  if (GRPC) ({ bin: grpcBin, go: goVersion } = ensureGrpcLoad());
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const loadBefore = os.loadavg();
  progress(`qkv vs etcd ${etcdVersion}: ${SECONDS} s per workload, ${KEYS} keys, ${WATCHERS} watchers${QUICK ? ' (quick)' : ''}`);
  for (const which of ['qkv', 'etcd'] as const) {
    if (ONLY && ONLY !== which) continue;
    progress(`starting ${which}`);
    const sys = which === 'qkv' ? await startQkv() : await startEtcd(etcdVersion);
    try {
      await runAll(sys);
    } finally {
      await sys.stop();
    }
  }
  const meta = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    node: process.version,
    etcd: etcdVersion,
    'gRPC load generator': GRPC ? `bench/grpc-load (etcd clientv3 3.4, ${goVersion})` : 'not run',
    'load average (1, 5, 15 min)': `${fmtLoad(loadBefore)} at the start, ${fmtLoad(os.loadavg())} at the end`,
    settings: `${BACKUP_ONLY ? 'snapshot rows only, ' : ''}${AUTH_ONLY ? 'auth cost rows only (gateway, simple token), ' : ''}${GATEWAY || BACKUP_ONLY || AUTH_ONLY ? '' : 'gRPC rows only, '}${GRPC || BACKUP_ONLY || AUTH_ONLY ? '' : 'gateway rows only, '}${SECONDS} s per workload after warm-up puts (${WARMUP_SECONDS} s at 64 in flight, ${WARMUP_SECONDS} s sequential), 256-byte values, ${KEYSPACE} keys for puts/gets, ${WATCHERS} watchers, ${KEYS} keys loaded${QUICK ? ', quick' : ''}`,
  };
  const dir = path.resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  const md = markdown(meta);
  writeFileSync(path.join(dir, `${stamp}.md`), md);
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify({ meta, rows, grpc: grpcResults }, null, 2));
  const svgs = [];
  if (GATEWAY) {
    writeFileSync(path.join(dir, `${stamp}-latency.svg`), svg('gateway put', putLatencies));
    svgs.push(`${stamp}-latency.svg`);
  }
  if (GRPC) {
    writeFileSync(path.join(dir, `${stamp}-grpc-latency.svg`), svg('gRPC put', grpcPutLatencies));
    svgs.push(`${stamp}-grpc-latency.svg`);
  }
  process.stdout.write(`\n${md}\nwritten: bench/results/${stamp}.{md,json} and ${svgs.join(', ')}\n`);
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
