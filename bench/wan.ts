/**
 * `npm run bench:wan` (root): put latency and throughput with 0, 10 and 50 ms round trips
 * between members, qkv beside etcd 3.4 on the same network namespaces and WAN switch
 * (test/hosts/netns.ts, wan_switch.py), each a fresh 3-member cluster with etcd's flags and
 * default timing. The load generator is the etcd3 npm client (gRPC) in the lab's client host,
 * aimed at the leader, sequential (1 client) and concurrent (32 in flight); the floor of a sequential put is one round
 * trip to a quorum plus the leader's fsync, printed beside it.
 *
 * Writes bench/results/<stamp>-wan.md and .json, and prints the table.
 */
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureEtcd } from './clusters.js';
import { LabCluster } from '../test/hosts/lab_cluster.js';
import { NetworkLab } from '../test/hosts/netns.js';

const SECONDS = Number(process.env['QKV_BENCH_SECONDS'] ?? 10);
const RTTS_MS = (process.env['QKV_BENCH_RTTS'] ?? '0,10,50').split(',').map(Number);
const CONCURRENCY = 32;

interface LoadResult {
  ops: number;
  seconds: number;
  p50: number;
  p99: number;
  failed: number;
}

/** The load script the client host runs: `inFlight` loops of puts for `seconds`, latencies in ms. */
function loadScript(endpoints: string[], inFlight: number, seconds: number): string {
  return `
    const { Etcd3 } = require('etcd3');
    const c = new Etcd3({ hosts: ${JSON.stringify(endpoints)}, dialTimeout: 5000 });
    const value = 'x'.repeat(256);
    (async () => {
      for (let i = 0; i < 20; i++) await c.put('warm/' + i).value(value);
      const lat = []; let failed = 0;
      const end = performance.now() + ${seconds * 1000};
      const start = performance.now();
      await Promise.all(Array.from({ length: ${inFlight} }, async (_, w) => {
        for (let i = 0; performance.now() < end; i++) {
          const t = performance.now();
          try { await c.put('k/' + w + '/' + (i % 1000)).value(value); lat.push(performance.now() - t); } catch { failed++; }
        }
      }));
      const seconds = (performance.now() - start) / 1000;
      lat.sort((a, b) => a - b);
      const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
      console.log(JSON.stringify({ ops: lat.length, seconds, p50: q(0.5), p99: q(0.99), failed }));
      c.close();
    })();`;
}

/** Median of 20 small write + fdatasync rounds in the temp dir's filesystem, in ms (the fsync part of the floor). */
function fsyncMs(): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-fsync-'));
  const fd = openSync(path.join(dir, 'probe'), 'w');
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    writeSync(fd, Buffer.alloc(512, i));
    fdatasyncSync(fd);
    times.push(performance.now() - t);
  }
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return times[10]!;
}

/** Load aimed at the leader, as the other benchmarks' rows: a put costs one round trip to a quorum. */
async function measure(cluster: LabCluster, leader: string, inFlight: number): Promise<LoadResult> {
  const r = await cluster.lab.run('client', process.execPath, ['-e', loadScript([cluster.clientUrl(leader)], inFlight, SECONDS)], (SECONDS + 60) * 1000);
  if (r.code !== 0) throw new Error(`load generator failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as LoadResult;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:wan makes network namespaces: run it as root');
  const etcdVersion = ensureEtcd();
  const fsync = fsyncMs();
  const loadBefore = os.loadavg();
  const rows: { rttMs: number; workload: string; qkv: LoadResult; etcd: LoadResult }[] = [];
  const lab = await NetworkLab.createWan(['n1', 'n2', 'n3', 'client']);
  try {
    // The client sits next to the leader: only the members' links are long.
    await lab.shape('client', { near: true });
    for (const rtt of RTTS_MS) {
      for (const name of ['n1', 'n2', 'n3']) await lab.shape(name, { delayMs: rtt / 2 });
      const results: Partial<Record<'qkv' | 'etcd', LoadResult[]>> = {};
      for (const system of ['qkv', 'etcd'] as const) {
        process.stderr.write(`${rtt} ms: ${system}\n`);
        const cluster = await LabCluster.onLab(lab, { members: 3, system });
        try {
          cluster.startAll();
          const leader = await cluster.waitForLeader(cluster.names, 60_000);
          results[system] = [await measure(cluster, leader, 1), await measure(cluster, leader, CONCURRENCY)];
        } finally {
          await cluster.stopMembers();
        }
      }
      rows.push({ rttMs: rtt, workload: 'put, 1 client', qkv: results.qkv![0]!, etcd: results.etcd![0]! });
      rows.push({ rttMs: rtt, workload: `put, ${CONCURRENCY} in flight`, qkv: results.qkv![1]!, etcd: results.etcd![1]! });
    }
  } finally {
    lab.destroy();
  }
  const ratio = (q: number, e: number): string => (e > 0 ? (q / e).toFixed(2) : '—');
  const lines = [
    `# qkv vs etcd across a WAN, ${new Date().toISOString()}`,
    '',
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; node ${process.version}; etcd ${etcdVersion}; ${SECONDS} s per workload, 256-byte values, etcd3 npm client (gRPC) in the client host, aimed at the leader`,
    `load average (1, 5, 15 min): ${loadBefore.map((l) => l.toFixed(2)).join(', ')} at the start, ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} at the end`,
    `network: 3 member hosts and a client host in network namespaces joined by test/hosts/wan_switch.py (user space), the round trip between members as given, none to or from the client; fsync (write + fdatasync of 512 bytes) median ${fsync.toFixed(2)} ms`,
    '',
    '| RTT between members | workload | qkv ops/s | etcd ops/s | qkv/etcd | qkv p50 / p99 ms | etcd p50 / p99 ms | floor of a sequential put (RTT + fsync) ms |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const qOps = r.qkv.ops / r.qkv.seconds;
    const eOps = r.etcd.ops / r.etcd.seconds;
    const floor = r.workload.startsWith('put, 1') ? (r.rttMs + fsync).toFixed(1) : '';
    lines.push(
      `| ${r.rttMs} ms | ${r.workload} | ${qOps.toFixed(0)} | ${eOps.toFixed(0)} | ${ratio(qOps, eOps)} | ${r.qkv.p50.toFixed(1)} / ${r.qkv.p99.toFixed(1)} | ${r.etcd.p50.toFixed(1)} / ${r.etcd.p99.toFixed(1)} | ${floor} |`,
    );
  }
  const md = `${lines.join('\n')}\n`;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${stamp}-wan.md`), md);
  writeFileSync(path.join(dir, `${stamp}-wan.json`), JSON.stringify({ fsyncMs: fsync, rows }, null, 2));
  process.stdout.write(`\n${md}\nwritten: bench/results/${stamp}-wan.{md,json}\n`);
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench:wan failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
