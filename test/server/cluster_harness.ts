/**
 * A real local cluster for end-to-end tests: member processes (`bin/qkv.mjs serve`) on
 * loopback ports, in temp data directories, that tests can kill, pause and restart.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from './ports.js';
import { resolveAuthToken, type ClusterConfig } from '../../src/server/config.js';
import { Client } from '../../src/client/client.js';
import { memberIdOf } from '../../src/server/member_id.js';
import { fetchOver, TlsCredentials, type TlsFiles } from '../../src/tls.js';
import { localClientTls, localTlsArgs } from '../../src/cli/cluster.js';

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
  /** Free bytes each member keeps on its data dir's filesystem (--disk-reserve-bytes; default 64 MiB). */
  diskReserveBytes?: number;
  /** Seconds a simple auth token lives unused (etcd's --auth-token-ttl; default 300). */
  authTokenTtl?: number;
  /** etcd's --auth-token text (default simple). */
  authToken?: string;
  /** Options for the member processes' node (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** https:// URLs and etcd's TLS flags (mutual TLS between the members always). */
  tls?: HarnessTls;
}

export interface HarnessTls {
  /** A folder made by test/tls/make-certs.sh (makeTestCerts). */
  dir: string;
  /** --client-cert-auth: clients must show a certificate of the folder's CA. */
  clientCertAuth?: boolean;
}

/** Runs test/tls/make-certs.sh into a new temporary folder; returns the folder (the caller removes it). */
export async function makeTestCerts(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-certs-'));
  execFileSync('bash', [path.resolve('test/tls/make-certs.sh'), dir], { stdio: 'pipe' });
  return dir;
}

/** etcd's TLS flags of a member of a cluster with `tls` (`qkv cluster up --tls`'s). */
export function memberTlsArgs(tls: HarnessTls): string[] {
  return localTlsArgs(tls.dir, tls.clientCertAuth === true);
}

/** What a test's client shows a cluster with `tls`: the folder's CA and its client certificate (CN=root). */
export function clientTlsFiles(tls: HarnessTls): TlsFiles {
  return localClientTls(tls.dir);
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
    readonly tls?: HarnessTls,
  ) {
    this.clientTls = tls ? new TlsCredentials(clientTlsFiles(tls)) : undefined;
  }

  /** The test client's credentials for a TLS cluster. */
  private readonly clientTls: TlsCredentials | undefined;

  static async create(opts: HarnessOptions = {}): Promise<LocalCluster> {
    const n = opts.nodes ?? 3;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-cluster-'));
    const ports = await freePorts(2 * n);
    const name = 'qkv-test';
    const scheme = opts.tls ? 'https' : 'http';
    const config: ClusterConfig = {
      name,
      state: 'new',
      tickMs: opts.tickMs ?? 50,
      heartbeatTicks: 1,
      electionTicks: opts.electionTicks ?? 10,
      snapshotEvery: opts.snapshotEvery ?? 10_000,
      snapshotCatchUpEntries: opts.snapshotCatchUpEntries ?? 5_000,
      maxRequestBytes: opts.maxRequestBytes ?? 1.5 * 1024 * 1024,
      quotaBackendBytes: opts.quotaBackendBytes ?? 2 * 1024 * 1024 * 1024,
      diskReserveBytes: opts.diskReserveBytes ?? 64 * 1024 * 1024,
      authTokenTtl: opts.authTokenTtl ?? 300,
      authToken: resolveAuthToken(opts.authToken),
      members: Array.from({ length: n }, (_, i) => {
        const peerUrl = `${scheme}://127.0.0.1:${ports[2 * i + 1]}`;
        return {
          id: memberIdOf([peerUrl], name),
          name: `n${i + 1}`,
          clientUrl: `${scheme}://127.0.0.1:${ports[2 * i]}`,
          peerUrl,
          dataDir: path.join(dir, `n${i + 1}`),
        };
      }),
    };
    const configFile = path.join(dir, 'cluster.config.json');
    // The file as an operator writes it: ids and the start state are derived, not written.
    const { state: _state, members, ...rest } = config;
    await writeFile(configFile, JSON.stringify({ ...rest, members: members.map(({ id: _id, ...m }) => m) }, null, 2));
    return new LocalCluster(dir, configFile, config, opts.nodeArgs, opts.tls);
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
    return new Client({ endpoints: names.map((n) => this.url(n)), timeoutMs: 5_000, ...(this.tls ? { tls: clientTlsFiles(this.tls) } : {}) });
  }

  /** Extra `serve` arguments per member (e.g. --peer-dial for fault proxies). */
  readonly extraArgs = new Map<string, string[]>();
  /** Extra environment variables per member's process (e.g. LD_PRELOAD of a disk fault shim). */
  readonly extraEnv = new Map<string, Record<string, string>>();
  /** Members started with etcd's flags instead of the config file (joiners, restored members). */
  private readonly flagArgs = new Map<string, string[]>();

  /**
   * A new member, on new ports and a new data dir, that joins the running cluster as etcd's
   * runbook says: `member add` it first (its peer URL is `peerUrl`), then start() it, which runs
   * `qkv serve` with etcd's flags and --initial-cluster-state existing.
   */
  async addJoiner(name: string): Promise<{ clientUrl: string; peerUrl: string; dataDir: string }> {
    const [clientPort, peerPort] = await freePorts(2);
    const scheme = this.tls ? 'https' : 'http';
    const m = {
      id: '0',
      name,
      clientUrl: `${scheme}://127.0.0.1:${clientPort}`,
      peerUrl: `${scheme}://127.0.0.1:${peerPort}`,
      dataDir: path.join(this.dir, name),
    };
    this.config.members.push(m);
    return m;
  }

  /**
   * Drops a member the cluster removed (or a joiner whose addition did not happen) from the
   * members the harness knows, so that names, endpoints and client() no longer include it. Its
   * log stays at logPath(name).
   */
  forget(name: string): void {
    if (this.procs.has(name)) throw new Error(`${name} is still running`);
    const at = this.config.members.findIndex((m) => m.name === name);
    if (at >= 0) this.config.members.splice(at, 1);
  }

  /** Joiners given etcd's flags as QKV_* environment variables instead of command-line flags. */
  private readonly joinByEnv = new Set<string>();

  /**
   * The --initial-cluster of a joiner: the members named (running ones and itself). `viaEnv`:
   * every flag goes as its QKV_* environment variable instead (QKV_INITIAL_CLUSTER...).
   */
  setJoinCluster(name: string, members: string[], viaEnv = false): void {
    if (viaEnv) this.joinByEnv.add(name);
    else this.joinByEnv.delete(name);
    const m = this.config.members.find((x) => x.name === name)!;
    const initial = members.map((n) => `${n}=${this.config.members.find((x) => x.name === n)!.peerUrl}`).join(',');
    this.flagArgs.set(name, [
      ...this.ownFlags(m),
      '--initial-cluster',
      initial,
      '--initial-cluster-state',
      'existing',
      '--initial-cluster-token',
      this.config.name,
      '--snapshot-count',
      String(this.config.snapshotEvery),
    ]);
  }

  /**
   * Starts `name` from now on with etcd's member flags of a new cluster (--initial-cluster-state
   * new): its data dir, its URLs, every member's peer URL, `token`; as a member restored from a
   * snapshot is started.
   */
  setNewClusterFlags(name: string, token: string): void {
    const m = this.config.members.find((x) => x.name === name)!;
    this.flagArgs.set(name, [
      ...this.ownFlags(m),
      '--initial-advertise-peer-urls',
      m.peerUrl,
      '--initial-cluster',
      this.config.members.map((x) => `${x.name}=${x.peerUrl}`).join(','),
      '--initial-cluster-token',
      token,
    ]);
  }

  /** A member's own etcd flags, as both ways of starting it with etcd's flags give them: its data dir, URLs and the cluster's timing. */
  private ownFlags(m: ClusterConfig['members'][number]): string[] {
    return [
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      m.clientUrl,
      '--listen-peer-urls',
      m.peerUrl,
      '--heartbeat-interval',
      String(this.config.tickMs * this.config.heartbeatTicks),
      '--election-timeout',
      String(this.config.tickMs * this.config.electionTicks),
    ];
  }

  start(name: string): void {
    if (this.procs.has(name)) throw new Error(`${name} is already running`);
    const log = createWriteStream(path.join(this.dir, `${name}.log`), { flags: 'a' });
    let how = this.flagArgs.get(name) ?? ['--config', this.configFile];
    const env: Record<string, string> = {};
    if (this.joinByEnv.has(name)) {
      for (let i = 0; i < how.length; i += 2) env[`QKV_${how[i]!.slice(2).toUpperCase().replaceAll('-', '_')}`] = how[i + 1]!;
      how = [];
    }
    const child = spawn(
      process.execPath,
      [
        ...this.nodeArgs,
        BIN,
        'serve',
        '--name',
        name,
        ...how,
        '--log-level',
        'debug',
        ...(this.tls ? memberTlsArgs(this.tls) : []),
        ...(this.extraArgs.get(name) ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, ...this.extraEnv.get(name) } },
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
      const res = await fetchOver(`${this.url(name)}/v1/status`, { signal: AbortSignal.timeout(1000) }, this.clientTls);
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

  /** Waits until member `name` has logged `text` (its log goes through a pipe, so a moment late). */
  async untilLogged(name: string, text: string, limitMs?: number): Promise<void> {
    await LocalCluster.until(async () => (await readFile(this.logPath(name), 'utf8')).includes(text), `${name} to log "${text}"`, limitMs);
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
