/**
 * A real local cluster for end-to-end tests: member processes (`bin/qkv.mjs serve`) on
 * loopback ports, in temp data directories, that tests can kill, pause and restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from './ports.js';
import type { ClusterConfig } from '../../src/server/config.js';
import { Client } from '../../src/client/client.js';

const BIN = path.resolve('bin/qkv.mjs');

export interface HarnessOptions {
  nodes?: number;
  tickMs?: number;
  electionTicks?: number;
  snapshotEvery?: number;
  snapshotCatchUpEntries?: number;
  maxRequestBytes?: number;
  /** The members' space quota (etcd's --quota-backend-bytes; default 2 GiB). */
  quotaBackendBytes?: number;
  /** Options for the member processes' node (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

interface Proc {
  child: ChildProcess;
  log: WriteStream;
}

export class LocalCluster {
  readonly procs = new Map<string, Proc>();

  private constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly config: ClusterConfig,
    private readonly nodeArgs: string[] = [],
  ) {}

  static async create(opts: HarnessOptions = {}): Promise<LocalCluster> {
    const n = opts.nodes ?? 3;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-cluster-'));
    const ports = await freePorts(2 * n);
    const config: ClusterConfig = {
      name: 'qkv-test',
      tickMs: opts.tickMs ?? 50,
      heartbeatTicks: 1,
      electionTicks: opts.electionTicks ?? 10,
      snapshotEvery: opts.snapshotEvery ?? 10_000,
      snapshotCatchUpEntries: opts.snapshotCatchUpEntries ?? 5_000,
      maxRequestBytes: opts.maxRequestBytes ?? 1.5 * 1024 * 1024,
      quotaBackendBytes: opts.quotaBackendBytes ?? 2 * 1024 * 1024 * 1024,
      members: Array.from({ length: n }, (_, i) => ({
        id: i + 1,
        name: `n${i + 1}`,
        clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: path.join(dir, `n${i + 1}`),
      })),
    };
    const configFile = path.join(dir, 'cluster.config.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    return new LocalCluster(dir, configFile, config, opts.nodeArgs);
  }

  get names(): string[] {
    return this.config.members.map((m) => m.name);
  }

  url(name: string): string {
    return this.config.members.find((m) => m.name === name)!.clientUrl;
  }

  get endpoints(): string[] {
    return this.config.members.map((m) => m.clientUrl);
  }

  client(names: string[] = this.names): Client {
    return new Client({ endpoints: names.map((n) => this.url(n)), timeoutMs: 5_000 });
  }

  /** Extra `serve` arguments per member (e.g. --peer-dial for fault proxies). */
  readonly extraArgs = new Map<string, string[]>();

  start(name: string): void {
    if (this.procs.has(name)) throw new Error(`${name} is already running`);
    const log = createWriteStream(path.join(this.dir, `${name}.log`), { flags: 'a' });
    const child = spawn(
      process.execPath,
      [...this.nodeArgs, BIN, 'serve', '--name', name, '--config', this.configFile, '--log-level', 'debug', ...(this.extraArgs.get(name) ?? [])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    child.once('exit', () => this.procs.delete(name));
    this.procs.set(name, { child, log });
  }

  startAll(): void {
    for (const n of this.names) this.start(n);
  }

  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs.get(name);
    if (!p) return;
    const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
    p.child.kill(signal);
    await exited;
  }

  pause(name: string): void {
    this.procs.get(name)?.child.kill('SIGSTOP');
  }

  resume(name: string): void {
    this.procs.get(name)?.child.kill('SIGCONT');
  }

  /** Status of a member over /v1/status, or undefined if it does not answer. */
  async status(name: string): Promise<{ leader: { name: string } | null; term: number; raft_applied_index: number; revision: number } | undefined> {
    try {
      const res = await fetch(`${this.url(name)}/v1/status`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) return undefined;
      return (await res.json()) as { leader: { name: string } | null; term: number; raft_applied_index: number; revision: number };
    } catch {
      return undefined;
    }
  }

  /** Waits until every running member (or those named) agrees on one leader; returns its name. */
  async waitForLeader(among: string[] = [...this.procs.keys()], limitMs = 30_000): Promise<string> {
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(among.map((n) => this.status(n)));
      const leaders = new Set(statuses.map((s) => s?.leader?.name));
      if (statuses.every((s) => s !== undefined) && leaders.size === 1) {
        const leader = [...leaders][0];
        if (leader && among.includes(leader)) return leader;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no agreed leader among ${among.join(', ')} within ${limitMs} ms`);
  }

  /** Waits until `cond` holds (polling), or fails with `what`. */
  static async until(cond: () => Promise<boolean> | boolean, what: string, limitMs = 30_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline) {
      if (await cond()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.kill(n, 'SIGKILL')));
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Log of a member, for failure messages. */
  logPath(name: string): string {
    return path.join(this.dir, `${name}.log`);
  }
}
