/**
 * `qkv cluster up`: a local cluster of real member processes on loopback, from
 * cluster.config.json (3 members) or a generated 5-member layout. Prints each member's
 * endpoints, a curl example and the leader; Ctrl-C stops every member cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClusterConfig, type ClusterConfig } from '../server/config.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/qkv.mjs');

/** etcd's local-cluster port pattern: 2379/2380, 22379/22380, 32379/32380, ... */
/** The members of a local n-member cluster as the config file lists them (ids are derived when it is read). */
export function localMembers(n: number, baseDir: string): Omit<ClusterConfig['members'][number], 'id'>[] {
  return Array.from({ length: n }, (_, i) => {
    const base = i === 0 ? 2379 : i * 10000 + 12379;
    return {
      name: `n${i + 1}`,
      clientUrl: `http://127.0.0.1:${base}`,
      peerUrl: `http://127.0.0.1:${base + 1}`,
      dataDir: path.join(baseDir, 'data', `n${i + 1}`),
    };
  });
}

export interface ClusterUpOptions {
  config: string;
  nodes?: number;
  logLevel?: string;
}

/** Writes the config the members will read; returns its path and contents. */
export function prepareConfig(opts: ClusterUpOptions): { file: string; cluster: ClusterConfig } {
  const cluster = loadClusterConfig(opts.config);
  const baseDir = path.dirname(path.resolve(opts.config));
  if (!opts.nodes || opts.nodes === cluster.members.length) return { file: path.resolve(opts.config), cluster };
  if (opts.nodes !== 3 && opts.nodes !== 5) throw new Error('--nodes must be 3 or 5');
  const { state: _state, members: _members, ...settings } = cluster;
  const dir = path.join(baseDir, 'data');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `cluster-${opts.nodes}.config.json`);
  writeFileSync(file, JSON.stringify({ ...settings, members: localMembers(opts.nodes, baseDir) }, null, 2) + '\n');
  return { file, cluster: loadClusterConfig(file) };
}

async function leaderName(cluster: ClusterConfig): Promise<string | undefined> {
  for (const m of cluster.members) {
    try {
      const res = await fetch(`${m.clientUrl}/v1/status`, { signal: AbortSignal.timeout(1000) });
      const s = (await res.json()) as { leader?: { name: string } | null };
      if (s.leader) return s.leader.name;
    } catch {
      // not up yet
    }
  }
  return undefined;
}

export async function clusterUp(opts: ClusterUpOptions): Promise<void> {
  const { file, cluster } = prepareConfig(opts);
  const children = new Map<string, ChildProcess>();
  const logDir = path.join(path.dirname(file), path.basename(file).startsWith('cluster-') ? '.' : 'data');
  mkdirSync(logDir, { recursive: true });
  let stopping = false;
  for (const m of cluster.members) {
    mkdirSync(m.dataDir, { recursive: true });
    const logFile = path.join(m.dataDir, '..', `${m.name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, [BIN, 'serve', '--name', m.name, '--config', file, ...(opts.logLevel ? ['--log-level', opts.logLevel] : [])], {
      stdio: ['ignore', fd, fd],
    });
    child.on('exit', (code, signal) => {
      if (!stopping) process.stdout.write(`member ${m.name} exited (${signal ?? code}); see ${logFile}\n`);
      children.delete(m.name);
    });
    children.set(m.name, child);
    process.stdout.write(`started ${m.name} (pid ${child.pid}): client ${m.clientUrl}, peer ${m.peerUrl}, data ${m.dataDir}, log ${logFile}\n`);
  }
  let leader: string | undefined;
  for (let i = 0; i < 100 && !leader; i++) {
    await new Promise((r) => setTimeout(r, 100));
    leader = await leaderName(cluster);
  }
  const first = cluster.members[0]!.clientUrl;
  process.stdout.write(
    [
      '',
      leader ? `leader: ${leader}` : 'no leader yet (check the member logs)',
      '',
      'try:',
      `  curl -X PUT ${first}/v1/kv/greeting -d hello`,
      `  curl ${cluster.members[cluster.members.length - 1]!.clientUrl}/v1/kv/greeting`,
      `  curl -N '${first}/v1/watch/greeting'`,
      `  node bin/qkv.mjs --endpoints ${cluster.members.map((m) => m.clientUrl.replace('http://', '')).join(',')} endpoint status -w table`,
      '',
      'Ctrl-C stops all members.',
      '',
    ].join('\n'),
  );
  const watcher = setInterval(async () => {
    const now = await leaderName(cluster);
    if (now && now !== leader) {
      process.stdout.write(`leader is now ${now}\n`);
      leader = now;
    }
  }, 1000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  stopping = true;
  clearInterval(watcher);
  process.stdout.write('\nstopping members...\n');
  const exits = [...children.values()].map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r()))));
  for (const c of children.values()) c.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const c of children.values()) c.kill('SIGKILL');
  }, 10_000);
  await Promise.all(exits);
  clearTimeout(timer);
  process.stdout.write('all members stopped\n');
}
