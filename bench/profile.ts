/**
 * CPU profile of a qkv cluster under one workload: starts 3 members with `node --cpu-prof`,
 * drives the load, stops the members cleanly (so the profiles are written) and prints the
 * functions with the most self time in each member.
 *
 *   npm run bench:profile -- [--workload put|get|get-serializable|watch] [--in-flight 64] [--seconds 10] [--target leader|all] [--no-prof] [--grpc] [--nodes 3] [--heap]
 *
 * --grpc drives the load through gRPC with etcd's Go client (bench/grpc-load, the bench's gRPC
 * rows) instead of the gateway: --in-flight clients on --in-flight / 8 connections (at least 1).
 * --nodes 1 profiles one member alone: no replication, and no other member competing for the two
 * cores, so its samples are its own work rather than time it spent preempted.
 *
 * --heap samples allocations instead of CPU (bench/heap_sampling.cjs, objects already collected
 * included) over the measured load, and prints the bytes each function allocated per operation:
 * unlike a time profile on this shared 2-core machine, a figure that repeats from run to run.
 *
 * Also prints each member's CPU time per operation (user + system, from /proc), a figure that
 * holds even when other work shares the machine, unlike throughput.
 * The profiles stay under the printed folder for Chrome DevTools or speedscope.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../test/server/cluster_harness.js';
import { b64, closedLoop, post } from './load.js';
import { cpuMs, ensureGrpcLoad } from './clusters.js';
import { type GrpcWorkload, runGrpcLoad } from './grpc.js';

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const WORKLOAD = opt('workload', 'put');
const IN_FLIGHT = Number(opt('in-flight', '64'));
const SECONDS = Number(opt('seconds', '10'));
const TARGET = opt('target', 'all');
const NODES = Number(opt('nodes', '3'));
/** --no-prof: only the CPU accounting (profiling itself costs CPU). */
const HEAP = argv.includes('--heap');
const PROFILE = !argv.includes('--no-prof') && !HEAP;
const GRPC = argv.includes('--grpc');
const VALUE = b64(Buffer.alloc(256, 'v'));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name + file:line), as a share of all samples. */
export function topSelf(profile: CpuProfile, n: number): { fn: string; share: number }[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const counts = new Map<string, number>();
  for (const id of profile.samples) {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    const fn = `${f.functionName || '(anonymous)'} ${where}`.trim();
    counts.set(fn, (counts.get(fn) ?? 0) + 1);
  }
  const total = profile.samples.length;
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, c]) => ({ fn, share: c / total }));
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Bytes allocated per operation by each function (its own allocations), from heap_sampling.cjs's files. */
export function topAllocators(head: HeapNode, ops: number, n: number): { total: number; top: { fn: string; bytes: number }[] } {
  const bytes = new Map<string, number>();
  let total = 0;
  const stack = [head];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const f = node.callFrame;
    const fn = `${f.functionName || '(anonymous)'} ${f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
    bytes.set(fn, (bytes.get(fn) ?? 0) + node.selfSize);
    total += node.selfSize;
    stack.push(...node.children);
  }
  const top = [...bytes.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, b]) => ({ fn, bytes: b / ops }));
  return { total: total / ops, top };
}

async function printHeapProfiles(dir: string, names: Map<number, string>, leader: string, ops: number): Promise<void> {
  for (const [pid, name] of names) {
    const file = path.join(dir, `heap-${pid}.json`);
    for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    const { total, top } = topAllocators((JSON.parse(await readFile(file, 'utf8')) as { head: HeapNode }).head, Math.max(1, ops), 25);
    process.stdout.write(`\n${name}${name === leader ? ' (leader)' : ''}: ${total.toFixed(0)} bytes allocated per op (${file})\n`);
    for (const { fn, bytes } of top) process.stdout.write(`  ${bytes.toFixed(0).padStart(6)} B  ${fn}\n`);
  }
}

async function main(): Promise<void> {
  const profDir = await mkdtemp(path.join(os.tmpdir(), 'qkv-prof-'));
  const cluster = await LocalCluster.create({
    nodes: NODES,
    tickMs: 100,
    electionTicks: 10,
    nodeArgs: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : HEAP ? ['--require', path.resolve('bench/heap_sampling.cjs')] : [],
  });
  // The members inherit the environment: where heap_sampling.cjs writes.
  process.env.QKV_HEAP_PROFILE_DIR = profDir;
  cluster.startAll();
  const leader = await cluster.waitForLeader();
  const endpoints = TARGET === 'leader' ? [cluster.url(leader)] : cluster.endpoints;
  const pids = (): number[] => cluster.names.map((n) => cluster.procs.get(n)!.child.pid!);
  // SIGUSR2 starts the members' heap sampling, and the second one stops it.
  const heapWindow = {
    opened: () => HEAP && pids().forEach((pid) => process.kill(pid, 'SIGUSR2')),
    closed: () => HEAP && pids().forEach((pid) => process.kill(pid, 'SIGUSR2')),
  };
  let measuredOps = 0;
  if (GRPC) {
    // The generator samples no CPU itself: runGrpcLoad reads /proc over its measured window.
    const conns = Math.max(1, Math.floor(IN_FLIGHT / 8));
    const workload =
      WORKLOAD === 'get' ? 'range-linearizable' : WORKLOAD === 'get-serializable' ? 'range-serializable' : WORKLOAD === 'watch' ? 'watch' : 'put';
    // The watch row of bench.ts: 1000 watchers on a prefix over 8 connections, sequential puts (ops are delivered events).
    const w: GrpcWorkload = workload === 'watch' ? { workload, clients: 1, conns: 8, watchers: 1000, puts: 500 } : { workload, clients: IN_FLIGHT, conns };
    const r = await runGrpcLoad(ensureGrpcLoad().bin, { name: 'qkv', endpoints, pids }, w, { seconds: SECONDS, keys: 10_000, valueSize: 256 }, heapWindow);
    measuredOps = r.ops;
    process.stdout.write(
      `gRPC ${w.workload} x${w.clients} on ${w.conns} connections -> ${TARGET}: ${r.ops_per_sec.toFixed(0)} ops/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, errors ${r.errors}\n`,
    );
    cluster.names.forEach((name, i) => {
      process.stdout.write(`${name}${name === leader ? ' (leader)' : ''}: ${r.cpuPerOpUs[i]!.toFixed(r.cpuPerOpUs[i]! < 100 ? 1 : 0)} µs CPU per op\n`);
    });
  } else {
    const key = (i: number): string => b64(`bench/${String(i % 10_000).padStart(6, '0')}`);
    const op =
      WORKLOAD === 'get'
        ? (i: number) => post(`${endpoints[i % endpoints.length]}/v3/kv/range`, `{"key":"${key(i)}"}`)
        : (i: number) => post(`${endpoints[i % endpoints.length]}/v3/kv/put`, `{"key":"${key(i)}","value":"${VALUE}"}`);
    const cpuBefore = pids().map(cpuMs);
    heapWindow.opened();
    const s = await closedLoop(IN_FLIGHT, SECONDS, op);
    heapWindow.closed();
    const cpuAfter = pids().map(cpuMs);
    process.stdout.write(
      `${WORKLOAD} x${IN_FLIGHT} -> ${TARGET}: ${s.opsPerSec.toFixed(0)} ops/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, errors ${s.errors}\n`,
    );
    // closedLoop's warm-up is not in s.ops: count every op the members served in the window.
    const served = s.ops + s.warmupOps;
    measuredOps = served;
    cluster.names.forEach((name, i) => {
      process.stdout.write(`${name}${name === leader ? ' (leader)' : ''}: ${(((cpuAfter[i]! - cpuBefore[i]!) / served) * 1000).toFixed(0)} µs CPU per op\n`);
    });
  }
  for (const name of cluster.names) {
    const text = await (await fetch(`${cluster.url(name)}/metrics`)).text();
    const metric = (m: string): number => Number(new RegExp(`^${m}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const mean = (h: string): string => `${metric(`${h}_count`)} x ${((metric(`${h}_sum`) / metric(`${h}_count`)) * 1000).toFixed(2)} ms`;
    process.stdout.write(
      `${name}: fsync ${mean('etcd_disk_wal_fsync_duration_seconds')}, apply ${mean('qkv_server_apply_duration_seconds')}, committed ${metric('etcd_server_proposals_committed_total')}\n`,
    );
  }
  const names = new Map(cluster.names.map((n) => [cluster.procs.get(n)!.child.pid!, n]));
  if (HEAP) await printHeapProfiles(profDir, names, leader, measuredOps);
  await Promise.all(cluster.names.map((n) => cluster.kill(n, 'SIGTERM')));
  for (const file of PROFILE ? await readdir(profDir) : []) {
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (the only
    // one that runs qkv's code).
    const m = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(file);
    if (m?.[2] !== '0') continue;
    const name = names.get(Number(m[1])) ?? file;
    const profile = JSON.parse(await readFile(path.join(profDir, file), 'utf8')) as CpuProfile;
    process.stdout.write(`\n${name}${name === leader ? ' (leader)' : ''}: ${file}\n`);
    for (const { fn, share } of topSelf(profile, 25)) process.stdout.write(`  ${(share * 100).toFixed(1).padStart(5)}%  ${fn}\n`);
  }
  process.stdout.write(`\nprofiles in ${profDir}\n`);
  await cluster.destroy();
}

await main();
