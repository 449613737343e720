/**
 * The gRPC rows of `npm run bench`: runs the Go load generator (bench/grpc-load, etcd's own
 * clientv3 3.4) once per workload against a system's members, and samples each member's CPU
 * time (utime + stime from /proc) when the generator says its measured window opens and closes.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cpuMs, type SystemUnderTest } from './clusters.js';

export interface GrpcWorkload {
  workload: 'put' | 'range-linearizable' | 'range-serializable' | 'txn-cas' | 'watch';
  clients: number;
  conns: number;
  watchers?: number;
  puts?: number;
}

export interface GrpcResult {
  workload: string;
  clients: number;
  conns: number;
  ops: number;
  seconds: number;
  ops_per_sec: number;
  errors: number;
  cas_failed?: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  /** At 50, 75, 90, 95, 99 and 99.9 %. */
  percentiles_ms?: number[];
  first_error?: string;
  /** Server CPU per measured op of each member, in µs, in endpoint order. */
  cpuPerOpUs: number[];
  /** The load generator's own CPU per measured op, in µs (the same window). */
  clientCpuPerOpUs: number;
}

export async function runGrpcLoad(
  bin: string,
  sys: Pick<SystemUnderTest, 'name' | 'endpoints' | 'pids'>,
  w: GrpcWorkload,
  opts: { seconds: number; keys: number; valueSize: number },
  /** Told when the generator's measured window opens and closes (bench/profile.ts --heap samples it). */
  window?: { opened(): void; closed(): void },
): Promise<GrpcResult> {
  const args = [
    '-endpoints',
    sys.endpoints.join(','),
    '-workload',
    w.workload,
    '-clients',
    String(w.clients),
    '-conns',
    String(w.conns),
    '-seconds',
    String(opts.seconds),
    '-keys',
    String(opts.keys),
    '-value-size',
    String(opts.valueSize),
  ];
  if (w.watchers !== undefined) args.push('-watchers', String(w.watchers));
  if (w.puts !== undefined) args.push('-puts', String(w.puts));
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const sample = (): number[] => sys.pids().map(cpuMs);
  let before: number[] | undefined;
  let after: number[] | undefined;
  const clientCpu = [0, 0];
  let result: Omit<GrpcResult, 'cpuPerOpUs' | 'clientCpuPerOpUs'> | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for await (const line of createInterface({ input: child.stdout! })) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line) as { event?: string } & Omit<GrpcResult, 'cpuPerOpUs' | 'clientCpuPerOpUs'>;
    if (msg.event === 'measure-start') {
      before = sample();
      clientCpu[0] = cpuMs(child.pid);
      window?.opened();
    } else if (msg.event === 'measure-end') {
      after = sample();
      clientCpu[1] = cpuMs(child.pid);
      window?.closed();
    } else result = msg;
  }
  const code = await exited;
  if (code !== 0 || !result || !before || !after) {
    throw new Error(`${sys.name}: qkv-grpc-load ${args.join(' ')} failed (exit ${code}): ${stderr.slice(0, 2000)}`);
  }
  const ops = Math.max(1, result.ops);
  return {
    ...result,
    cpuPerOpUs: after.map((a, i) => ((a - before![i]!) / ops) * 1000),
    clientCpuPerOpUs: ((clientCpu[1]! - clientCpu[0]!) / ops) * 1000,
  };
}
