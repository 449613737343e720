/**
 * The two systems under test, started the same way: three member processes on loopback with
 * default durability (fsync on every commit). qkv from this repo; etcd 3.4 from Debian's
 * etcd-server package (bench/install-etcd.sh installs it when it is missing).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../test/server/ports.js';
import { LocalCluster } from '../test/server/cluster_harness.js';

export interface SystemUnderTest {
  name: 'qkv' | 'etcd';
  version: string;
  endpoints: string[];
  /** Resident memory of each member process, in bytes. */
  rss(): number[];
  /** Bytes on disk of each member's data directory. */
  diskBytes(): number[];
  /** Process id of each member (in endpoint order), undefined while it is down. */
  pids(): (number | undefined)[];
  /** Kills one member (SIGKILL) and returns a function that restarts it. */
  member(i: number): { kill(): Promise<void>; start(): void; url: string };
  /**
   * Replaces the stopped member `i` as etcd's runbook replaces a member that lost its disk:
   * `member remove` it, `member add` a new one (new name, ports, empty data dir), through a live
   * member at `via`. Returns the new member's client URL and a function that starts it
   * (--initial-cluster-state existing).
   */
  replace(i: number, via: string): Promise<{ url: string; start(): void }>;
  stop(): Promise<void>;
}

function etcdctl(endpoint: string, args: string[]): string {
  const r = spawnSync('etcdctl', [`--endpoints=${endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** `member remove` of the member named `name`, found in `member list`'s lines (id, status, name, ...). */
function removeMember(via: string, name: string): void {
  const line = etcdctl(via, ['member', 'list'])
    .split('\n')
    .find((l) => l.split(', ')[2] === name);
  if (!line) throw new Error(`no member ${name} in the member list of ${via}`);
  etcdctl(via, ['member', 'remove', line.split(', ')[0]!]);
}

function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  const r = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)]);
  return Number(r.stdout.toString().trim()) * 1024;
}

function duBytes(dir: string): number {
  const r = spawnSync('du', ['-sb', dir]);
  return Number(r.stdout.toString().split(/\s/)[0] ?? 0);
}

/** User + system CPU time of a process so far, in ms (Linux /proc); 0 for a process that is gone. */
export function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second here).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Builds the gRPC load generator (bench/grpc-load/main.go, on etcd's Go client) with
 * bench/install-grpc-load.sh, which installs Go and Debian's etcd sources first when they are
 * missing. Returns the binary's path and the Go version.
 */
export function ensureGrpcLoad(): { bin: string; go: string } {
  const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'install-grpc-load.sh');
  const r = spawnSync('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('building the gRPC load generator failed (bench/install-grpc-load.sh)');
  const lines = r.stdout.toString().trim().split('\n');
  return { bin: lines[lines.length - 1]!, go: /go version (\S+)/.exec(r.stdout.toString())?.[1] ?? 'go' };
}

export function etcdVersion(): string | undefined {
  const r = spawnSync('etcd', ['--version']);
  if (r.status !== 0) return undefined;
  return /etcd Version: (\S+)/.exec(r.stdout.toString())?.[1];
}

/** Installs etcd 3.4 from Debian's packages if it is not on PATH. */
export function ensureEtcd(): string {
  let v = etcdVersion();
  if (v) return v;
  const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'install-etcd.sh');
  const r = spawnSync('bash', [script], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('installing etcd failed (bench/install-etcd.sh)');
  v = etcdVersion();
  if (!v) throw new Error('etcd is still not on PATH after bench/install-etcd.sh');
  return v;
}

export async function startQkv(): Promise<SystemUnderTest> {
  const cluster = await LocalCluster.create({ nodes: 3, tickMs: 100, electionTicks: 10 });
  cluster.startAll();
  await cluster.waitForLeader();
  return {
    name: 'qkv',
    version: 'qkv (this repo)',
    endpoints: cluster.endpoints,
    rss: () => cluster.names.map((n) => rssOf(cluster.procs.get(n)?.child.pid)),
    diskBytes: () => cluster.config.members.map((m) => duBytes(m.dataDir)),
    pids: () => cluster.names.map((n) => cluster.procs.get(n)?.child.pid),
    member: (i) => {
      const name = cluster.names[i]!;
      return {
        url: cluster.url(name),
        kill: () => cluster.kill(name, 'SIGKILL'),
        start: () => cluster.start(name),
      };
    },
    replace: async (i, via) => {
      const old = cluster.names[i]!;
      removeMember(via, old);
      cluster.forget(old);
      const name = `${old}r`;
      const m = await cluster.addJoiner(name);
      etcdctl(via, ['member', 'add', name, `--peer-urls=${m.peerUrl}`]);
      // addJoiner appends the new member; keep the endpoint order (member i is the new one).
      cluster.config.members.splice(i, 0, cluster.config.members.pop()!);
      cluster.setJoinCluster(name, cluster.names);
      return { url: m.clientUrl, start: () => cluster.start(name) };
    },
    stop: () => cluster.destroy(),
  };
}

export async function startEtcd(version: string): Promise<SystemUnderTest> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-bench-etcd-'));
  const ports = await freePorts(6);
  const members = [0, 1, 2].map((i) => ({
    name: `e${i + 1}`,
    client: `http://127.0.0.1:${ports[2 * i]}`,
    peer: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: path.join(dir, `e${i + 1}`),
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const procs: (ChildProcess | undefined)[] = [];
  const start = (i: number, state: 'new' | 'existing', cluster = initialCluster): void => {
    const m = members[i]!;
    const log = createWriteStream(path.join(dir, `${m.name}.log`), { flags: 'a' });
    const child = spawn(
      'etcd',
      [
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-client-urls',
        m.client,
        '--advertise-client-urls',
        m.client,
        '--listen-peer-urls',
        m.peer,
        '--initial-advertise-peer-urls',
        m.peer,
        '--initial-cluster',
        cluster,
        '--initial-cluster-state',
        state,
        '--initial-cluster-token',
        'qkv-bench',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    procs[i] = child;
  };
  members.forEach((_, i) => start(i, 'new'));
  // Ready when every member answers /health.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await Promise.all(
      members.map(async (m) => {
        try {
          const r = await fetch(`${m.client}/health`, { signal: AbortSignal.timeout(1000) });
          return ((await r.json()) as { health?: string }).health === 'true';
        } catch {
          return false;
        }
      }),
    );
    if (ok.every(Boolean)) break;
    if (Date.now() > deadline) throw new Error(`etcd cluster did not become healthy; logs in ${dir}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const kill = async (i: number, signal: NodeJS.Signals): Promise<void> => {
    const p = procs[i];
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
  };
  return {
    name: 'etcd',
    version,
    endpoints: members.map((m) => m.client),
    rss: () => procs.map((p) => rssOf(p?.pid)),
    diskBytes: () => members.map((m) => duBytes(m.dataDir)),
    pids: () => procs.map((p) => (p && p.exitCode === null ? p.pid : undefined)),
    member: (i) => ({
      url: members[i]!.client,
      kill: () => kill(i, 'SIGKILL'),
      start: () => start(i, 'existing'),
    }),
    replace: async (i, via) => {
      removeMember(via, members[i]!.name);
      const [client, peer] = await freePorts(2);
      const m = {
        name: `${members[i]!.name}r`,
        client: `http://127.0.0.1:${client}`,
        peer: `http://127.0.0.1:${peer}`,
        dataDir: path.join(dir, `${members[i]!.name}r`),
      };
      etcdctl(via, ['member', 'add', m.name, `--peer-urls=${m.peer}`]);
      members[i] = m;
      return { url: m.client, start: () => start(i, 'existing', members.map((x) => `${x.name}=${x.peer}`).join(',')) };
    },
    stop: async () => {
      await Promise.all(members.map((_, i) => kill(i, 'SIGTERM')));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
