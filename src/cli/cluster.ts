/**
 * `qkv cluster up`: a local cluster of real member processes on loopback, from
 * cluster.config.json (3 members) or a generated 5-member layout. Prints each member's
 * endpoints, a curl example and the leader; Ctrl-C stops every member cleanly. With --tls, every
 * URL is https://: test/tls/make-certs.sh makes a CA and certificates into data/tls (once), the
 * members serve clients with --client-cert-auth and each other with mutual TLS.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClusterConfig, type ClusterConfig } from '../server/config.js';
import { fetchOver, TlsCredentials, type TlsFiles } from '../tls.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/qkv.mjs');
const MAKE_CERTS = path.join(ROOT, 'test/tls/make-certs.sh');

/**
 * etcd's TLS flags of a member whose certificates test/tls/make-certs.sh made into `dir`: its
 * member certificate on both ports, its CA trusted on both, mutual TLS between members, and
 * client certificates required when `clientCertAuth`.
 */
export function localTlsArgs(dir: string, clientCertAuth: boolean): string[] {
  const f = (name: string): string => path.join(dir, name);
  return [
    `--cert-file=${f('member.pem')}`,
    `--key-file=${f('member-key.pem')}`,
    `--trusted-ca-file=${f('ca.pem')}`,
    ...(clientCertAuth ? ['--client-cert-auth'] : []),
    `--peer-cert-file=${f('member.pem')}`,
    `--peer-key-file=${f('member-key.pem')}`,
    `--peer-trusted-ca-file=${f('ca.pem')}`,
    '--peer-client-cert-auth',
  ];
}

/** The client side of `localTlsArgs`: the CA and the client certificate (CN=root) that make-certs.sh made into `dir`. */
export function localClientTls(dir: string): Required<TlsFiles> {
  return { trustedCaFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'client.pem'), keyFile: path.join(dir, 'client-key.pem') };
}

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
  /** https:// everywhere, with certificates made into data/tls. */
  tls?: boolean;
}

/** Writes the config the members will read; returns its path and contents. */
export function prepareConfig(opts: ClusterUpOptions): { file: string; cluster: ClusterConfig } {
  const cluster = loadClusterConfig(opts.config);
  const baseDir = path.dirname(path.resolve(opts.config));
  const sameLayout = !opts.nodes || opts.nodes === cluster.members.length;
  if (sameLayout && !opts.tls) return { file: path.resolve(opts.config), cluster };
  if (!sameLayout && opts.nodes !== 3 && opts.nodes !== 5) throw new Error('--nodes must be 3 or 5');
  const { state: _state, members: _members, ...settings } = cluster;
  const dir = path.join(baseDir, 'data');
  mkdirSync(dir, { recursive: true });
  const listed = sameLayout ? cluster.members.map(({ id: _id, listenClientUrl: _l, listenPeerUrl: _p, ...m }) => m) : localMembers(opts.nodes!, baseDir);
  const members = opts.tls
    ? listed.map((m) => ({ ...m, clientUrl: m.clientUrl.replace(/^http:/, 'https:'), peerUrl: m.peerUrl.replace(/^http:/, 'https:') }))
    : listed;
  const file = path.join(dir, `cluster-${members.length}${opts.tls ? '-tls' : ''}.config.json`);
  writeFileSync(file, JSON.stringify({ ...settings, members }, null, 2) + '\n');
  return { file, cluster: loadClusterConfig(file) };
}

/** The certificates of a local TLS cluster: made into `<config's folder>/data/tls` by test/tls/make-certs.sh unless there already. */
function localCerts(config: string): string {
  const dir = path.join(path.dirname(path.resolve(config)), 'data', 'tls');
  if (!existsSync(path.join(dir, 'ca.pem'))) execFileSync('bash', [MAKE_CERTS, dir], { stdio: 'inherit' });
  return dir;
}

async function leaderName(cluster: ClusterConfig, tls: TlsCredentials | undefined): Promise<string | undefined> {
  for (const m of cluster.members) {
    try {
      const res = await fetchOver(`${m.clientUrl}/v1/status`, { signal: AbortSignal.timeout(1000) }, tls);
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
  const certs = opts.tls ? localCerts(opts.config) : undefined;
  const clientTls = certs ? localClientTls(certs) : undefined;
  const credentials = clientTls ? new TlsCredentials(clientTls) : undefined;
  const children = new Map<string, ChildProcess>();
  const logDir = path.join(path.dirname(file), path.basename(file).startsWith('cluster-') ? '.' : 'data');
  mkdirSync(logDir, { recursive: true });
  let stopping = false;
  for (const m of cluster.members) {
    mkdirSync(m.dataDir, { recursive: true });
    const logFile = path.join(m.dataDir, '..', `${m.name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--name', m.name, '--config', file, ...(opts.logLevel ? ['--log-level', opts.logLevel] : []), ...(certs ? localTlsArgs(certs, true) : [])],
      { stdio: ['ignore', fd, fd] },
    );
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
    leader = await leaderName(cluster, credentials);
  }
  const first = cluster.members[0]!.clientUrl;
  // curl's and etcdctl's (and qkv's) TLS flags: the same three.
  const curlTls = clientTls ? ` --cacert ${clientTls.trustedCaFile} --cert ${clientTls.certFile} --key ${clientTls.keyFile}` : '';
  process.stdout.write(
    [
      '',
      leader ? `leader: ${leader}` : 'no leader yet (check the member logs)',
      '',
      'try:',
      `  curl${curlTls} -X PUT ${first}/v1/kv/greeting -d hello`,
      `  curl${curlTls} ${cluster.members[cluster.members.length - 1]!.clientUrl}/v1/kv/greeting`,
      `  curl${curlTls} -N '${first}/v1/watch/greeting'`,
      `  node bin/qkv.mjs${curlTls} --endpoints ${cluster.members.map((m) => m.clientUrl.replace(/^https?:\/\//, '')).join(',')} endpoint status -w table`,
      ...(clientTls ? [`  etcdctl${curlTls} --endpoints ${cluster.members.map((m) => m.clientUrl).join(',')} member list -w table`] : []),
      '',
      'Ctrl-C stops all members.',
      '',
    ].join('\n'),
  );
  const watcher = setInterval(async () => {
    const now = await leaderName(cluster, credentials);
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
