/**
 * Helpers of the gRPC compatibility suites: a real single-member etcd 3.4 on loopback (to
 * compare with), and running the real etcdctl (v3 API) once or as a long-lived child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { clientTlsFiles, LocalCluster, memberTlsArgs, type HarnessTls } from '../server/cluster_harness.js';
import { fetchOver, TlsCredentials } from '../../src/tls.js';
import { freePorts } from '../server/ports.js';

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CtlOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  extraEnv?: Record<string, string>;
}

/** Runs `etcdctl --endpoints=<endpoints> ...args` with the v3 API and collects its output. */
export function etcdctl(endpoints: string, args: string[], opts: CtlOptions = {}): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('etcdctl', [`--endpoints=${endpoints}`, '--command-timeout=10s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3', ...opts.extraEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    // 'close', not 'exit': 'exit' can come before the last of stdout has been read, and a
    // command that printed its answer would then look as if it printed nothing.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

const QKV_BIN = path.resolve('bin/qkv.mjs');

/** Runs the qkv CLI (`bin/qkv.mjs --endpoints=<endpoints> ...args`) and collects its output, as etcdctl() does. */
export function qkvctl(endpoints: string, args: string[], opts: Pick<CtlOptions, 'timeoutMs'> = {}): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QKV_BIN, `--endpoints=${endpoints}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running etcdctl (watch, elect, lock): its output so far, and a way to wait for more. */
export class CtlChild {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(endpoints: string, args: string[], input?: string) {
    this.child = spawn('etcdctl', [`--endpoints=${endpoints}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
    this.child.stdin!.on('error', () => {});
    if (input !== undefined) this.child.stdin!.end(input);
  }

  /** Waits until stdout satisfies `cond`; fails with what was seen. */
  async waitFor(cond: (out: string) => boolean, what: string, limitMs = 10_000): Promise<string> {
    const deadline = Date.now() + limitMs;
    while (!cond(this.stdout)) {
      if (Date.now() > deadline)
        throw new Error(`etcdctl: timed out waiting for ${what}; stdout=${JSON.stringify(this.stdout)} stderr=${JSON.stringify(this.stderr)}`);
      await sleep(20);
    }
    return this.stdout;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/**
 * A recorder of a client's outcomes, for comparing two systems: `outcome(what, f)` appends
 * [what, 'ok', result] or [what, the error's class name, its message] to `out`.
 */
export function outcomeRecorder(): { out: unknown[]; outcome: (what: string, f: () => Promise<unknown>) => Promise<void> } {
  const out: unknown[] = [];
  return {
    out,
    outcome: async (what, f) => {
      try {
        out.push([what, 'ok', await f()]);
      } catch (err) {
        out.push([what, (err as Error).constructor.name, (err as Error).message]);
      }
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A real etcd 3.4 member on loopback, in a temporary data directory. */
export class RealEtcd {
  private constructor(
    readonly endpoint: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
    readonly peerUrl: string,
  ) {}

  /** `flags`: more etcd flags, e.g. --quota-backend-bytes. `tls`: https:// URLs with the same TLS flags as a qkv member's (cluster_harness). */
  static async start(flags: string[] = [], tls?: HarnessTls): Promise<RealEtcd> {
    const [client, peer] = await freePorts(2);
    const peerUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${peer}`;
    return RealEtcd.spawn('e1', client!, peerUrl, [`--initial-cluster=e1=${peerUrl}`, ...flags], tls);
  }

  /**
   * A second member of `existing`'s cluster, as etcd's runbook adds one: `member add --learner`
   * on `existing`, then etcd started with --initial-cluster-state existing. It stays a learner.
   */
  static async startLearner(existing: RealEtcd, name = 'e2'): Promise<RealEtcd> {
    const listed = await etcdctl(existing.endpoint, ['member', 'list', '-w', 'json']);
    const first = (JSON.parse(listed.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"')) as { members: { name: string; peerURLs: string[] }[] }).members[0]!;
    const [client, peer] = await freePorts(2);
    const peerUrl = `http://127.0.0.1:${peer}`;
    const added = await etcdctl(existing.endpoint, ['member', 'add', name, `--peer-urls=${peerUrl}`, '--learner']);
    if (added.code !== 0) throw new Error(`etcdctl member add: ${added.stderr}`);
    return RealEtcd.spawn(name, client!, peerUrl, [
      `--initial-cluster=${first.name}=${first.peerURLs[0]},${name}=${peerUrl}`,
      '--initial-cluster-state=existing',
    ]);
  }

  private static async spawn(name: string, clientPort: number, peerUrl: string, flags: string[], tls?: HarnessTls): Promise<RealEtcd> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-real-etcd-'));
    const clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
    const credentials = tls ? new TlsCredentials(clientTlsFiles(tls)) : undefined;
    const child = spawn(
      'etcd',
      [
        `--name=${name}`,
        `--data-dir=${path.join(dir, 'data')}`,
        `--listen-client-urls=${clientUrl}`,
        `--advertise-client-urls=${clientUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        '--log-level=error',
        ...(tls ? memberTlsArgs(tls) : []),
        ...flags,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const etcd = new RealEtcd(clientUrl, dir, child, peerUrl);
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const res = await fetchOver(`${clientUrl}/health`, { signal: AbortSignal.timeout(500) }, credentials);
        if (res.ok && ((await res.json()) as { health: string }).health === 'true') break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline || child.exitCode !== null) {
        await etcd.stop();
        throw new Error(`etcd did not become healthy: ${log}`);
      }
      await sleep(50);
    }
    return etcd;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Strips the http:// of an endpoint (etcdctl prints endpoints as given). */
export const hostOf = (url: string): string => url.replace(/^https?:\/\//, '');

/** Runs a scenario on qkv and on the real etcd in parallel; qkv's result must equal etcd's. */
export async function sameOnBoth<C, T>(qkv: C, etcd: C, scenario: (c: C) => Promise<T>): Promise<T> {
  const [q, e] = await Promise.all([scenario(qkv), scenario(etcd)]);
  expect(q).toEqual(e);
  return q;
}

/** A 3-member qkv cluster, started with a real etcd beside it (both at once), and which member leads. */
export async function startBesideEtcd(): Promise<{ cluster: LocalCluster; etcd: RealEtcd; leader: string; follower: string }> {
  const cluster = await LocalCluster.create({ nodes: 3 });
  cluster.startAll();
  const [leader, etcd] = await Promise.all([cluster.waitForLeader(), RealEtcd.start()]);
  return { cluster, etcd, leader, follower: cluster.names.find((n) => n !== leader)! };
}
