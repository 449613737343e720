/**
 * qkv inside a Node program: `startMember` runs one member in the calling process (etcd's member
 * flags, as `qkv serve` takes them), `startLocalCluster` a throwaway 1-, 3- or 5-member cluster
 * on free loopback ports in a temporary directory, in this process or as child processes, which
 * its `stop()` removes again. The use case: the test suite of an application that uses etcd runs
 * against qkv (`npm install -D qkv`), with no container and no etcd binary.
 *
 * Both are the composition root's own functions (src/member_process.ts): nothing here builds a
 * member another way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from './client/index.js';
import type { MemberFlags } from './server/config.js';
import { serve, type RunningServer } from './member_process.js';

/** One member of a local cluster: where it is and where its data lives. */
export interface LocalMemberInfo {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

/** A member started in this process by {@link startMember}. */
export interface EmbeddedMember {
  /** The running member and its client servers. */
  readonly server: RunningServer;
  /** Its advertised client URL (gRPC, the JSON gateway and `/v1`, all on this one port). */
  readonly clientUrl: string;
  /** Stops serving and closes the store; idempotent. */
  stop(): Promise<void>;
}

export interface StartMemberOptions extends MemberFlags {
  /** pino's level for the member's log (default `silent`: an embedding program rarely wants it). */
  logLevel?: string;
  /** etcd's --quota-backend-bytes. */
  quotaBackendBytes?: string;
}

/**
 * Starts one member in this process with etcd's member flags (`--name`, `--data-dir`,
 * `--listen-client-urls`, `--initial-cluster`, ...; the same defaults as `qkv serve`), and
 * resolves once it serves clients. A cluster of several needs each member started (it elects a
 * leader once a quorum runs).
 */
export async function startMember(opts: StartMemberOptions): Promise<EmbeddedMember> {
  const { logLevel, quotaBackendBytes, ...flags } = opts;
  const server = await serve({
    configPath: '',
    flags,
    logLevel: logLevel ?? 'silent',
    ...(quotaBackendBytes !== undefined ? { quotaBackendBytes } : {}),
  });
  return { server, clientUrl: server.member.opts.self.clientUrl, stop: () => server.stop() };
}

export interface LocalClusterOptions {
  /** Members: 1, 3 (the default) or 5. */
  size?: 1 | 3 | 5;
  /** Run the members as child processes (`qkv serve`) rather than in this process. */
  processes?: boolean;
  /** Where the data dirs go (empty or absent: the cluster is new); default a new temporary directory, removed by `stop()`. */
  dir?: string;
  /** pino's level for the members' logs (default `silent`; child processes log to stderr). */
  logLevel?: string;
  /** etcd's --heartbeat-interval and --election-timeout, in ms (defaults 100 and 1000). */
  heartbeatIntervalMs?: number;
  electionTimeoutMs?: number;
  /** How long to wait for a leader (default 30 s). */
  readyTimeoutMs?: number;
}

/** A running local cluster from {@link startLocalCluster}. */
export interface LocalCluster {
  readonly members: readonly LocalMemberInfo[];
  /** Every member's client URL (for any etcd client, and for qkv's). */
  readonly endpoints: readonly string[];
  /** A qkv client over all the members. */
  client(): Client;
  /** The name of the current leader, once one is elected. */
  leader(): Promise<string | undefined>;
  /** Stops every member; removes the temporary directory if it made one; idempotent. */
  stop(): Promise<void>;
}

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/qkv.mjs');
const SIZES = new Set([1, 3, 5]);
const STOP_GRACE_MS = 10_000;
/** Tries at free ports before giving up (each try draws new ones). */
const PORT_ATTEMPTS = 3;

/**
 * `n` free loopback ports, each the kernel's answer to a listen on port 0. All are held open
 * until every one is known, so they are distinct; another program may still take one before a
 * member listens on it (start then fails with EADDRINUSE, and the cluster is stopped).
 */
async function freeLoopbackPorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
      });
      ports.push((s.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** The leader's name as a member's `/v1/status` tells it, or undefined (none yet, or not up). */
async function leaderAt(clientUrl: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${clientUrl}/v1/status`, { signal: AbortSignal.timeout(1_000) });
    if (!res.ok) return undefined;
    const s = (await res.json()) as { leader?: { name: string } | null };
    return s.leader?.name;
  } catch {
    return undefined;
  }
}

/** Member flags of member `i` of a local cluster (etcd's flags, as `qkv serve` takes them). */
function memberFlags(info: LocalMemberInfo, initialCluster: string, opts: LocalClusterOptions, token: string): MemberFlags {
  return {
    name: info.name,
    dataDir: info.dataDir,
    listenClientUrls: info.clientUrl,
    advertiseClientUrls: info.clientUrl,
    listenPeerUrls: info.peerUrl,
    initialAdvertisePeerUrls: info.peerUrl,
    initialCluster,
    initialClusterState: 'new',
    initialClusterToken: token,
    ...(opts.heartbeatIntervalMs !== undefined ? { heartbeatInterval: String(opts.heartbeatIntervalMs) } : {}),
    ...(opts.electionTimeoutMs !== undefined ? { electionTimeout: String(opts.electionTimeoutMs) } : {}),
  };
}

/** The command line of `qkv serve` for these flags: --kebab-case names. */
function serveArgs(flags: MemberFlags, logLevel: string): string[] {
  const args = ['serve', '--log-level', logLevel];
  for (const [key, value] of Object.entries(flags)) {
    if (value !== undefined) args.push(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(value));
  }
  return args;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts a throwaway cluster on free loopback ports and resolves once it has a leader. Stop it
 * with `stop()`; the temporary directory (when it made one) goes with it.
 */
export async function startLocalCluster(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
  const size = opts.size ?? 3;
  if (!SIZES.has(size)) throw new RangeError(`startLocalCluster: size must be 1, 3 or 5, got ${String(size)}`);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'qkv-local-'));
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLocalClusterIn(dir, ownDir, size, opts);
    } catch (err) {
      // A port taken between the probe and the member's listen: again on other ports, from scratch.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === PORT_ATTEMPTS) {
        if (ownDir) rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function startLocalClusterIn(dir: string, ownDir: boolean, size: number, opts: LocalClusterOptions): Promise<LocalCluster> {
  const ports = await freeLoopbackPorts(2 * size);
  const members: LocalMemberInfo[] = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: path.join(dir, `n${i + 1}`),
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  // A token of its own: two local clusters can never take each other's members.
  const token = `qkv-local-${path.basename(dir)}`;
  const logLevel = opts.logLevel ?? 'silent';
  const embedded: EmbeddedMember[] = [];
  const children: ChildProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stopMembers = async (): Promise<void> => {
    await Promise.allSettled([...embedded.map((m) => m.stop()), ...children.map(stopChild)]);
  };
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await stopMembers();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  const leader = async (): Promise<string | undefined> => {
    for (const m of members) {
      const name = await leaderAt(m.clientUrl);
      if (name) return name;
    }
    return undefined;
  };
  try {
    if (opts.processes) {
      for (const m of members) {
        const child = spawn(process.execPath, [BIN, ...serveArgs(memberFlags(m, initialCluster, opts, token), logLevel)], {
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        children.push(child);
      }
    } else {
      // Concurrently: a member of several waits for its peers before its first election.
      const started = await Promise.allSettled(members.map((m) => startMember({ ...memberFlags(m, initialCluster, opts, token), logLevel })));
      for (const r of started) if (r.status === 'fulfilled') embedded.push(r.value);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
    const deadline = Date.now() + readyTimeoutMs;
    while ((await leader()) === undefined) {
      const exited = children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (exited) throw new Error(`startLocalCluster: member ${members[children.indexOf(exited)]!.name} exited (${exited.signalCode ?? exited.exitCode})`);
      if (Date.now() > deadline) throw new Error(`startLocalCluster: no leader within ${readyTimeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (err) {
    await stopMembers();
    for (const m of members) rmSync(m.dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    client: () => new Client({ endpoints: members.map((m) => m.clientUrl) }),
    leader,
    stop,
  };
}
