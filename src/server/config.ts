/**
 * Cluster configuration: who the members are at bootstrap and how they talk. Either read from
 * `cluster.config.json` (a default local cluster ships at the repo root) or given as etcd's
 * member flags (`--initial-cluster` and the rest: resolveMemberFlags); validated field by field
 * so a mistake is reported with its path or flag, not as a crash later. Member ids are derived
 * from the peer URLs and the cluster token, as etcd's (member_id.ts). After bootstrap the
 * membership is replicated state (src/mvcc/membership.ts): this says only where a member starts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CodedError } from '../errors.js';
import { RAFT_NODE_DEFAULTS } from './raft_node.js';
import { memberIdOf } from './member_id.js';
import type { ServerTlsFiles } from '../tls.js';

export interface MemberConfig {
  /** Derived: memberIdOf(peer URL, cluster name), etcd's uint64 in decimal. */
  id: string;
  name: string;
  /** Client API URL clients are told (etcd's --advertise-client-urls), e.g. http://127.0.0.1:2379; '' when unknown (another member, flags). */
  clientUrl: string;
  /** Peer (Raft) URL (etcd's --initial-advertise-peer-urls), e.g. http://127.0.0.1:2380. */
  peerUrl: string;
  /** Data directory; relative paths are resolved against the config file's folder; '' when unknown (another member, flags). */
  dataDir: string;
  /** Where to listen for clients and peers when not at the advertised URLs (etcd's --listen-client-urls, --listen-peer-urls). */
  listenClientUrl?: string;
  listenPeerUrl?: string;
}

/** etcd's --initial-cluster-state: bootstrap a new cluster, or join one that runs. */
export type InitialClusterState = 'new' | 'existing';

export interface ClusterConfig {
  /** The cluster's name, its token (etcd's --initial-cluster-token): part of every member id. */
  name: string;
  /** How the member starts when its data directory is empty. */
  state: InitialClusterState;
  /** Milliseconds per Raft tick. */
  tickMs: number;
  /** Ticks between heartbeats (etcd: 100 ms at tickMs 100 → 1). */
  heartbeatTicks: number;
  /** Ticks before a follower starts an election (etcd: 1000 ms → 10). */
  electionTicks: number;
  /** Raft snapshot (and log compaction) every this many applied entries. */
  snapshotEvery: number;
  /** Entries kept behind a snapshot so a slightly slow follower catches up from the log. */
  snapshotCatchUpEntries: number;
  /** Largest client request body, in bytes (etcd: 1.5 MiB). */
  maxRequestBytes: number;
  /**
   * The space quota of a member's store (etcd's --quota-backend-bytes): writes that would take
   * it past this many bytes raise the NOSPACE alarm. Resolved: 0 (etcd's "default") is
   * DEFAULT_QUOTA_BYTES; a negative value turns the quota off, as in etcd.
   */
  quotaBackendBytes: number;
  /**
   * Free bytes to keep on the filesystem of a member's data dir: below this the member raises
   * NOSPACE for itself until space is freed (disk_space.ts). 0 turns the guard off.
   */
  diskReserveBytes: number;
  /** Seconds a simple auth token lives unused (etcd's --auth-token-ttl, default 300). */
  authTokenTtl: number;
  /** etcd's --auth-token: simple tokens, or signed JWTs (resolveAuthToken). */
  authToken: AuthTokenConfig;
  members: MemberConfig[];
}

/** cluster.config.json or a command-line flag that is wrong: the operator's, never a client's (gRPC Unknown). */
export class ConfigError extends CodedError {
  constructor(message: string) {
    super('ERR_CONFIG', message);
  }
}

export const CLUSTER_DEFAULTS: Omit<ClusterConfig, 'members'> = {
  name: 'qkv',
  state: 'new',
  tickMs: 100,
  heartbeatTicks: 1,
  electionTicks: 10,
  snapshotEvery: RAFT_NODE_DEFAULTS.snapshotEvery,
  snapshotCatchUpEntries: RAFT_NODE_DEFAULTS.snapshotCatchUpEntries,
  maxRequestBytes: 1.5 * 1024 * 1024,
  quotaBackendBytes: 2 * 1024 * 1024 * 1024,
  // Four WAL segments (16 MiB each): room for what is in flight when writes stop.
  diskReserveBytes: 64 * 1024 * 1024,
  authTokenTtl: 300,
  authToken: { kind: 'simple' },
};

/** etcd's --auth-token resolved: `simple`, or `jwt` with its key files, signing method and TTL. */
export type AuthTokenConfig =
  | { kind: 'simple' }
  | { kind: 'jwt'; publicKeyFile: string; privateKeyFile?: string; signMethod: JwtSignMethod; ttlSeconds: number };

export const JWT_SIGN_METHODS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

/**
 * etcd's --auth-token as given: `simple`, or `jwt,pub-key=<file>,priv-key=<file>,sign-method=RS256,ttl=5m`
 * (a member without priv-key verifies tokens but cannot issue them; ttl in s, m or h, default 5m).
 */
export function resolveAuthToken(v: string | undefined, where = '--auth-token'): AuthTokenConfig {
  if (v === undefined || v === '' || v === 'simple') return { kind: 'simple' };
  const [kind, ...opts] = v.split(',');
  if (kind !== 'jwt') throw new ConfigError(`${where}: unknown token type ${JSON.stringify(kind)} (simple or jwt)`);
  const o: Record<string, string> = {};
  for (const kv of opts) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${where}: expected key=value, got ${JSON.stringify(kv)}`);
    o[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  for (const k of Object.keys(o)) if (!['pub-key', 'priv-key', 'sign-method', 'ttl'].includes(k)) throw new ConfigError(`${where}: unknown option ${k}`);
  const signMethod = (o['sign-method'] ?? 'RS256') as JwtSignMethod;
  if (!JWT_SIGN_METHODS.includes(signMethod)) throw new ConfigError(`${where}: sign-method must be one of ${JWT_SIGN_METHODS.join(', ')}`);
  if (!o['pub-key']) throw new ConfigError(`${where}: jwt needs pub-key=<file>`);
  const ttl = /^(\d+)(s|m|h)$/.exec(o['ttl'] ?? '5m');
  if (!ttl || Number(ttl[1]) <= 0) throw new ConfigError(`${where}: ttl must be a duration such as 30s, 5m or 1h`);
  const ttlSeconds = Number(ttl[1]) * (ttl[2] === 'h' ? 3600 : ttl[2] === 'm' ? 60 : 1);
  return { kind: 'jwt', publicKeyFile: o['pub-key'], ...(o['priv-key'] ? { privateKeyFile: o['priv-key'] } : {}), signMethod, ttlSeconds };
}

/**
 * etcd's --quota-backend-bytes as given (a JSON number, or the flag's decimal text): any safe
 * integer; 0 means the default (2 GiB, etcd's DefaultQuotaBytes), a negative one no quota.
 */
export function resolveQuotaBackendBytes(v: Json | undefined, where: string): number {
  if (v === undefined) return CLUSTER_DEFAULTS.quotaBackendBytes;
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new ConfigError(`${where}: expected an integer number of bytes, got ${JSON.stringify(v)}`);
  return n === 0 ? CLUSTER_DEFAULTS.quotaBackendBytes : n;
}

/** --disk-reserve-bytes as given (a JSON number, or the flag's decimal text): a non-negative safe integer. */
export function resolveDiskReserveBytes(v: Json | undefined, where: string): number {
  if (v === undefined) return CLUSTER_DEFAULTS.diskReserveBytes;
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new ConfigError(`${where}: expected a non-negative integer number of bytes, got ${JSON.stringify(v)}`);
  return n;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The config file's authToken: etcd's flag text, or (as the harness writes it back) the resolved object. */
function authTokenOf(v: Json | undefined, where: string): AuthTokenConfig {
  if (v === undefined || typeof v === 'string') return resolveAuthToken(v, where);
  if (isObject(v) && v['kind'] === 'simple') return { kind: 'simple' };
  if (
    isObject(v) &&
    v['kind'] === 'jwt' &&
    typeof v['publicKeyFile'] === 'string' &&
    typeof v['signMethod'] === 'string' &&
    typeof v['ttlSeconds'] === 'number'
  ) {
    const spec = `jwt,pub-key=${v['publicKeyFile']},${typeof v['privateKeyFile'] === 'string' ? `priv-key=${v['privateKeyFile']},` : ''}sign-method=${v['signMethod']},ttl=${v['ttlSeconds']}s`;
    return resolveAuthToken(spec, where);
  }
  throw new ConfigError(`${where}: expected etcd's --auth-token text (simple, or jwt,pub-key=...)`);
}

function isObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(obj: { [k: string]: Json }, key: string, where: string, fallback?: number): number {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new ConfigError(`${where}.${key}: expected a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function nonEmptyString(obj: { [k: string]: Json }, key: string, where: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${where}.${key}: expected a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

/** A member URL in its canonical form (`http://host:port` or `https://host:port`), or why it is not one. */
export function parseMemberUrl(v: string): { url: string } | { problem: string } {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return { problem: `invalid URL ${JSON.stringify(v)}` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { problem: `only http:// and https:// URLs are supported, got ${JSON.stringify(v)}` };
  if (!u.port) return { problem: `the URL needs an explicit port, got ${JSON.stringify(v)}` };
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return { problem: `the URL must have no path, got ${JSON.stringify(v)}` };
  return { url: `${u.protocol}//${u.hostname}:${u.port}` };
}

function checkedUrl(v: string, where: string): string {
  const r = parseMemberUrl(v);
  if ('problem' in r) throw new ConfigError(`${where}: ${r.problem}`);
  return r.url;
}

function httpUrl(obj: { [k: string]: Json }, key: string, where: string): string {
  return checkedUrl(nonEmptyString(obj, key, where), `${where}.${key}`);
}

/** Validates a parsed configuration object. `baseDir` resolves relative data directories. */
export function parseClusterConfig(raw: Json, baseDir: string, source = 'cluster config'): ClusterConfig {
  if (!isObject(raw)) throw new ConfigError(`${source}: expected a JSON object`);
  const members = raw['members'];
  if (!Array.isArray(members) || members.length === 0) throw new ConfigError(`${source}.members: expected a non-empty array`);
  const name = raw['name'] === undefined ? CLUSTER_DEFAULTS.name : nonEmptyString(raw, 'name', source);
  const cfg: ClusterConfig = {
    name,
    state: 'new',
    tickMs: positiveInt(raw, 'tickMs', source, CLUSTER_DEFAULTS.tickMs),
    heartbeatTicks: positiveInt(raw, 'heartbeatTicks', source, CLUSTER_DEFAULTS.heartbeatTicks),
    electionTicks: positiveInt(raw, 'electionTicks', source, CLUSTER_DEFAULTS.electionTicks),
    snapshotEvery: positiveInt(raw, 'snapshotEvery', source, CLUSTER_DEFAULTS.snapshotEvery),
    snapshotCatchUpEntries: positiveInt(raw, 'snapshotCatchUpEntries', source, CLUSTER_DEFAULTS.snapshotCatchUpEntries),
    maxRequestBytes: positiveInt(raw, 'maxRequestBytes', source, CLUSTER_DEFAULTS.maxRequestBytes),
    quotaBackendBytes: resolveQuotaBackendBytes(raw['quotaBackendBytes'], `${source}.quotaBackendBytes`),
    diskReserveBytes: resolveDiskReserveBytes(raw['diskReserveBytes'], `${source}.diskReserveBytes`),
    authTokenTtl: positiveInt(raw, 'authTokenTtl', source, CLUSTER_DEFAULTS.authTokenTtl),
    authToken: authTokenOf(raw['authToken'], `${source}.authToken`),
    members: members.map((m, i) => {
      const where = `${source}.members[${i}]`;
      if (!isObject(m)) throw new ConfigError(`${where}: expected an object`);
      if (m['id'] !== undefined) {
        throw new ConfigError(`${where}.id: member ids are derived from the peer URL and the cluster name, as etcd's: remove the field`);
      }
      const dataDir = nonEmptyString(m, 'dataDir', where);
      const peerUrl = httpUrl(m, 'peerUrl', where);
      return {
        id: memberIdOf([peerUrl], name),
        name: nonEmptyString(m, 'name', where),
        clientUrl: httpUrl(m, 'clientUrl', where),
        peerUrl,
        dataDir: path.resolve(baseDir, dataDir),
      };
    }),
  };
  if (cfg.electionTicks <= cfg.heartbeatTicks) {
    throw new ConfigError(`${source}: electionTicks (${cfg.electionTicks}) must be greater than heartbeatTicks (${cfg.heartbeatTicks})`);
  }
  for (const field of ['name', 'peerUrl', 'clientUrl', 'dataDir', 'id'] as const) {
    const seen = new Set<string | number>();
    for (const m of cfg.members) {
      if (seen.has(m[field])) throw new ConfigError(`${source}.members: duplicate ${field} ${JSON.stringify(m[field])}`);
      seen.add(m[field]);
    }
  }
  return cfg;
}

export function loadClusterConfig(file: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  let raw: Json;
  try {
    raw = JSON.parse(text) as Json;
  } catch (err) {
    throw new ConfigError(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  return parseClusterConfig(raw, path.dirname(path.resolve(file)), path.basename(file));
}

/**
 * etcd's member flags, as `qkv serve` takes them (each also a QKV_* environment variable: see
 * src/cli/commands/serve.ts). Absent ones take etcd's defaults.
 */
export interface MemberFlags {
  name?: string;
  dataDir?: string;
  listenClientUrls?: string;
  advertiseClientUrls?: string;
  listenPeerUrls?: string;
  initialAdvertisePeerUrls?: string;
  initialCluster?: string;
  initialClusterState?: string;
  initialClusterToken?: string;
  /** Milliseconds (etcd's --heartbeat-interval, default 100). */
  heartbeatInterval?: string;
  /** Milliseconds (etcd's --election-timeout, default 1000). */
  electionTimeout?: string;
  snapshotCount?: string;
  maxRequestBytes?: string;
  /** Seconds (etcd's --auth-token-ttl, default 300). */
  authTokenTtl?: string;
  /** etcd's --auth-token: simple (default) or jwt,pub-key=...,priv-key=...,sign-method=...,ttl=... */
  authToken?: string;
}

const ETCD_FLAG_DEFAULTS = {
  name: 'default',
  listenClientUrls: 'http://localhost:2379',
  listenPeerUrls: 'http://localhost:2380',
  initialClusterToken: 'etcd-cluster',
  heartbeatInterval: '100',
  electionTimeout: '1000',
} as const;

/** A bool flag's value as etcd reads it (Go's strconv.ParseBool). */
export function boolFlag(flag: string, v: boolean | string | undefined): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new ConfigError(`invalid boolean value ${JSON.stringify(v)} for --${flag}`);
}

/** One URL of a flag that etcd lets list several: qkv serves one of each. */
function oneUrl(flag: string, v: string): string {
  const urls = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (urls.length !== 1) throw new ConfigError(`--${flag}: qkv takes exactly one URL, got ${JSON.stringify(v)}`);
  return checkedUrl(urls[0]!, `--${flag}`);
}

function flagInt(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v)))
    throw new ConfigError(`--${flag}: expected a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** `n1=http://h:2380,n2=...` as etcd's --initial-cluster: one peer URL per name. */
export function parseInitialCluster(spec: string): { name: string; peerUrl: string }[] {
  const out: { name: string; peerUrl: string }[] = [];
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--initial-cluster: expected name=URL, got ${JSON.stringify(part)}`);
    const name = part.slice(0, eq);
    if (out.some((m) => m.name === name)) throw new ConfigError(`--initial-cluster: member ${JSON.stringify(name)} has more than one peer URL (qkv takes one)`);
    const peerUrl = checkedUrl(part.slice(eq + 1), `--initial-cluster ${name}`);
    if (out.some((m) => m.peerUrl === peerUrl)) throw new ConfigError(`--initial-cluster: duplicate peer URL ${peerUrl}`);
    out.push({ name, peerUrl });
  }
  if (out.length === 0) throw new ConfigError('--initial-cluster: no members');
  return out;
}

/** etcd's member flags resolved into the configuration a member starts from: the one place their defaults and checks live. */
export function resolveMemberFlags(f: MemberFlags): { cluster: ClusterConfig; self: MemberConfig } {
  const name = f.name ?? ETCD_FLAG_DEFAULTS.name;
  const listenClientUrl = oneUrl('listen-client-urls', f.listenClientUrls ?? ETCD_FLAG_DEFAULTS.listenClientUrls);
  const clientUrl = f.advertiseClientUrls === undefined ? listenClientUrl : oneUrl('advertise-client-urls', f.advertiseClientUrls);
  const listenPeerUrl = oneUrl('listen-peer-urls', f.listenPeerUrls ?? ETCD_FLAG_DEFAULTS.listenPeerUrls);
  const peerUrl = f.initialAdvertisePeerUrls === undefined ? listenPeerUrl : oneUrl('initial-advertise-peer-urls', f.initialAdvertisePeerUrls);
  const initial = parseInitialCluster(f.initialCluster ?? `${name}=${peerUrl}`);
  const own = initial.find((m) => m.name === name);
  if (!own) throw new ConfigError(`--initial-cluster: it has no member named ${JSON.stringify(name)} (--name)`);
  if (own.peerUrl !== peerUrl) {
    throw new ConfigError(`--initial-cluster has ${name}=${own.peerUrl} but missing from --initial-advertise-peer-urls=${peerUrl}`);
  }
  const state = f.initialClusterState ?? 'new';
  if (state !== 'new' && state !== 'existing') throw new ConfigError(`--initial-cluster-state: expected new or existing, got ${JSON.stringify(state)}`);
  const token = f.initialClusterToken ?? ETCD_FLAG_DEFAULTS.initialClusterToken;
  if (token === '') throw new ConfigError('--initial-cluster-token: must not be empty');
  const heartbeatMs = flagInt('heartbeat-interval', f.heartbeatInterval ?? ETCD_FLAG_DEFAULTS.heartbeatInterval);
  const electionMs = flagInt('election-timeout', f.electionTimeout ?? ETCD_FLAG_DEFAULTS.electionTimeout);
  // etcd: "election timeout should be at least 5 times heartbeat" is only a warning; a tick is a heartbeat.
  const electionTicks = Math.round(electionMs / heartbeatMs);
  if (electionTicks <= 1) throw new ConfigError(`--election-timeout (${electionMs}) must be greater than --heartbeat-interval (${heartbeatMs})`);
  const dataDir = path.resolve(f.dataDir ?? `${name}.etcd`);
  const self: MemberConfig = { id: memberIdOf([peerUrl], token), name, clientUrl, peerUrl, dataDir };
  if (listenClientUrl !== clientUrl) self.listenClientUrl = listenClientUrl;
  if (listenPeerUrl !== peerUrl) self.listenPeerUrl = listenPeerUrl;
  const cluster: ClusterConfig = {
    ...CLUSTER_DEFAULTS,
    name: token,
    state,
    tickMs: heartbeatMs,
    heartbeatTicks: 1,
    electionTicks,
    ...(f.snapshotCount === undefined ? {} : { snapshotEvery: flagInt('snapshot-count', f.snapshotCount) }),
    ...(f.maxRequestBytes === undefined ? {} : { maxRequestBytes: flagInt('max-request-bytes', f.maxRequestBytes) }),
    ...(f.authTokenTtl === undefined ? {} : { authTokenTtl: flagInt('auth-token-ttl', f.authTokenTtl) }),
    ...(f.authToken === undefined ? {} : { authToken: resolveAuthToken(f.authToken) }),
    members: initial.map((m) =>
      m.name === name ? self : { id: memberIdOf([m.peerUrl], token), name: m.name, clientUrl: '', peerUrl: m.peerUrl, dataDir: '' },
    ),
  };
  return { cluster, self };
}

export function memberByName(cfg: ClusterConfig, name: string): MemberConfig {
  const m = cfg.members.find((x) => x.name === name);
  if (!m) throw new ConfigError(`no member named ${JSON.stringify(name)}; members are ${cfg.members.map((x) => x.name).join(', ')}`);
  return m;
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * etcd's TLS flags, as `qkv serve` takes them (each also a QKV_* environment variable), with
 * either way of giving the member (config file or etcd's member flags).
 */
export interface TlsFlags {
  certFile?: string;
  keyFile?: string;
  trustedCaFile?: string;
  clientCertAuth?: boolean;
  peerCertFile?: string;
  peerKeyFile?: string;
  peerTrustedCaFile?: string;
  peerClientCertAuth?: boolean;
}

/** A member's TLS, resolved: a side without it (an http:// listen URL) is plaintext. */
export interface MemberTls {
  /** The client port (gRPC and both HTTP APIs); also what the member shows when it forwards to the leader's client port. */
  client?: ServerTlsFiles;
  /** The peer port (Raft, /members, store snapshots) and the member's dials to its peers: mutual TLS with peerClientCertAuth. */
  peer?: ServerTlsFiles;
}

/** One side's files as etcd checks them: both of certificate and key or neither; an https:// URL needs them. */
function sideTls(
  url: string,
  kind: 'client' | 'peer',
  files: { certFile?: string | undefined; keyFile?: string | undefined; trustedCaFile?: string | undefined; clientCertAuth?: boolean | undefined },
): ServerTlsFiles | undefined {
  const { certFile, keyFile } = files;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(`KeyFile and CertFile must both be present[key: ${keyFile ?? ''}, cert: ${certFile ?? ''}]`);
  }
  // etcd ignores the files for an http:// URL (it warns), and requires them for https://.
  if (!url.startsWith('https:')) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    // etcd's two texts, word for word.
    const { host } = new URL(url);
    throw new ConfigError(
      kind === 'client'
        ? `TLS key/cert (--cert-file, --key-file) must be provided for client url ${url} with HTTPS scheme`
        : `cannot listen on TLS for ${host}: KeyFile and CertFile are not presented`,
    );
  }
  return {
    certFile: path.resolve(certFile),
    keyFile: path.resolve(keyFile),
    ...(files.trustedCaFile ? { trustedCaFile: path.resolve(files.trustedCaFile) } : {}),
    // Without --trusted-ca-file, etcd verifies client certificates against the system's roots; so does Node.
    clientCertAuth: files.clientCertAuth === true,
  };
}

/** etcd's TLS flags for `self`, by the schemes of its listen URLs: the one place their checks live. */
export function resolveMemberTls(f: TlsFlags, self: MemberConfig): MemberTls {
  const client = sideTls(self.listenClientUrl ?? self.clientUrl, 'client', f);
  const peer = sideTls(self.listenPeerUrl ?? self.peerUrl, 'peer', {
    certFile: f.peerCertFile,
    keyFile: f.peerKeyFile,
    trustedCaFile: f.peerTrustedCaFile,
    clientCertAuth: f.peerClientCertAuth,
  });
  return { ...(client ? { client } : {}), ...(peer ? { peer } : {}) };
}
