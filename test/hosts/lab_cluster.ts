/**
 * A qkv cluster on separate hosts of a network lab (netns.ts): member nK runs in host nK with
 * etcd's member flags on that host's address (ports 2379 and 2380 on every host, as on real
 * machines), and a host named `client` runs the clients: etcdctl, and qkv's CLI.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetworkLab } from './netns.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/qkv.mjs');
const CLIENT_PORT = 2379;
const PEER_PORT = 2380;

/** One endpoint's answer in `etcdctl endpoint status -w json`, as far as the tests read it. */
export interface EndpointStatus {
  Status: { header: { member_id: string; revision: number }; leader: string; raft_term: number };
}

export interface LabClusterOptions {
  members: number;
  /** Hosts joined by the user-space WAN switch (delays, loss) instead of a bridge. */
  wan?: boolean;
  /** The members' program: qkv (the default), or the real etcd with the same flags (a benchmark's baseline). */
  system?: 'qkv' | 'etcd';
  /** etcd's --heartbeat-interval and --election-timeout in ms (default 100 and 1000). */
  heartbeatMs?: number;
  electionMs?: number;
}

export class LabCluster {
  readonly names: string[];
  private readonly procs = new Map<string, ChildProcess>();

  private constructor(
    readonly lab: NetworkLab,
    readonly dir: string,
    private readonly opts: LabClusterOptions,
  ) {
    this.names = Array.from({ length: opts.members }, (_, i) => `n${i + 1}`);
  }

  /** A new cluster, its members started and a leader agreed on. */
  static async started(opts: LabClusterOptions): Promise<LabCluster> {
    const cluster = await LabCluster.create(opts);
    cluster.startAll();
    await cluster.waitForLeader();
    await cluster.waitForPublished();
    return cluster;
  }

  /**
   * Waits until `member list` shows every member started (its name and client URLs published
   * through Raft, which follows the first election by a round trip or more), as an operator
   * waits before relying on the list.
   */
  async waitForPublished(limitMs = 30_000): Promise<void> {
    const deadline = performance.now() + limitMs;
    let listed = '';
    while (performance.now() < deadline) {
      listed = (await this.etcdctl(['member', 'list'])).stdout;
      if (this.names.every((n) => listed.includes(`, started, ${n}, `))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`members not all published within ${limitMs} ms:\n${listed}`);
  }

  static async create(opts: LabClusterOptions): Promise<LabCluster> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-hosts-'));
    const names = Array.from({ length: opts.members }, (_, i) => `n${i + 1}`);
    const lab = opts.wan ? await NetworkLab.createWan([...names, 'client']) : NetworkLab.create([...names, 'client']);
    return new LabCluster(lab, dir, opts);
  }

  clientUrl(name: string): string {
    return `http://${this.lab.host(name).addr}:${CLIENT_PORT}`;
  }

  peerUrl(name: string): string {
    return `http://${this.lab.host(name).addr}:${PEER_PORT}`;
  }

  get endpoints(): string[] {
    return this.names.map((n) => this.clientUrl(n));
  }

  logPath(name: string): string {
    return path.join(this.dir, `${name}.log`);
  }

  /** Starts member `name` in its host, with etcd's flags, as an operator would on that machine. */
  start(name: string): void {
    const addr = this.lab.host(name).addr;
    const flags = [
      '--name',
      name,
      '--data-dir',
      path.join(this.dir, name),
      '--listen-client-urls',
      `http://${addr}:${CLIENT_PORT}`,
      '--advertise-client-urls',
      this.clientUrl(name),
      '--listen-peer-urls',
      `http://${addr}:${PEER_PORT}`,
      '--initial-advertise-peer-urls',
      this.peerUrl(name),
      '--initial-cluster',
      this.names.map((n) => `${n}=${this.peerUrl(n)}`).join(','),
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `lab-${this.lab.id}`,
      '--heartbeat-interval',
      String(this.opts.heartbeatMs ?? 100),
      '--election-timeout',
      String(this.opts.electionMs ?? 1000),
    ];
    const child =
      this.opts.system === 'etcd'
        ? this.lab.spawn(name, 'etcd', flags, { stdio: ['ignore', 'pipe', 'pipe'] })
        : this.lab.spawn(name, process.execPath, [BIN, 'serve', ...flags, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(this.logPath(name), { flags: 'a' });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    child.once('exit', () => this.procs.delete(name));
    this.procs.set(name, child);
  }

  startAll(): void {
    for (const n of this.names) this.start(n);
  }

  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.procs.get(name);
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** etcdctl, run in the client host against `endpoints` (default: every member). */
  etcdctl(args: string[], endpoints: string[] = this.endpoints): Promise<{ stdout: string; stderr: string; code: number | null }> {
    return this.lab.run('client', 'etcdctl', [`--endpoints=${endpoints.join(',')}`, '--dial-timeout=2s', '--command-timeout=5s', ...args], 30_000);
  }

  /** qkv's CLI, run in the client host. */
  qkv(args: string[], endpoints: string[] = this.endpoints): Promise<{ stdout: string; stderr: string; code: number | null }> {
    return this.lab.run('client', process.execPath, [BIN, '--endpoints', endpoints.join(','), ...args], 30_000);
  }

  /**
   * `etcdctl endpoint status -w json` on `endpoints`, or undefined if etcdctl failed. Its 64-bit
   * ids come as strings: a JS number would round them.
   */
  async endpointStatuses(endpoints: string[] = this.endpoints): Promise<EndpointStatus[] | undefined> {
    const r = await this.etcdctl(['endpoint', 'status', '-w', 'json'], endpoints);
    if (r.code !== 0) return undefined;
    return JSON.parse(r.stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"')) as EndpointStatus[];
  }

  /** Each member's Raft term, as `etcdctl endpoint status` reports it. */
  async terms(): Promise<number[]> {
    const statuses = await this.endpointStatuses();
    if (!statuses) throw new Error('endpoint status failed');
    return statuses.map((s) => s.Status.raft_term);
  }

  /** The leader's name as `etcdctl endpoint status` on `among` sees it, once they all agree. */
  async waitForLeader(among: string[] = this.names, limitMs = 30_000): Promise<string> {
    const deadline = performance.now() + limitMs;
    while (performance.now() < deadline) {
      const statuses = await this.endpointStatuses(among.map((n) => this.clientUrl(n)));
      if (statuses) {
        const leaders = new Set(statuses.map((s) => s.Status.leader));
        if (statuses.length === among.length && leaders.size === 1) {
          const leaderId = [...leaders][0]!;
          const idx = statuses.findIndex((s) => s.Status.header.member_id === leaderId);
          if (idx >= 0) return among[idx]!;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`no agreed leader among ${among.join(', ')} within ${limitMs} ms`);
  }

  /**
   * The value member `name` serves for `key` (serializable: its own store), once it is `value`, or
   * what it last served after `limitMs`.
   */
  async servedValue(name: string, key: string, value: string, limitMs = 30_000): Promise<string> {
    const deadline = performance.now() + limitMs;
    let got = '';
    while (performance.now() < deadline && got !== `${value}\n`) {
      got = (await this.etcdctl(['get', key, '--print-value-only', '--consistency=s'], [this.clientUrl(name)])).stdout;
      if (got !== `${value}\n`) await new Promise((r) => setTimeout(r, 200));
    }
    return got.replace(/\n$/, '');
  }

  /** Process id of each running member. */
  pids(): number[] {
    return [...this.procs.values()].map((c) => c.pid!).filter((p) => p !== undefined);
  }

  /** Stops the members and removes their data; the lab stays (for another cluster on it). */
  async stopMembers(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.kill(n)));
    await rm(this.dir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    await this.stopMembers();
    this.lab.destroy();
  }

  /** Another cluster on the same lab (after stopMembers): same hosts, addresses and link shapes. */
  static async onLab(lab: NetworkLab, opts: LabClusterOptions): Promise<LabCluster> {
    return new LabCluster(lab, await mkdtemp(path.join(os.tmpdir(), 'qkv-hosts-')), opts);
  }
}
