/**
 * Cluster configuration: who the members are and how they talk. Read from
 * `cluster.config.json` (a default local cluster ships at the repo root), validated field by
 * field so a mistake is reported with its path, not as a crash later.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CodedError } from '../errors.js';
import { RAFT_NODE_DEFAULTS } from './raft_node.js';

export interface MemberConfig {
  id: number;
  name: string;
  /** Client API (HTTP) URL, e.g. http://127.0.0.1:2379. */
  clientUrl: string;
  /** Peer (Raft) URL, e.g. http://127.0.0.1:2380. */
  peerUrl: string;
  /** Data directory; relative paths are resolved against the config file's folder. */
  dataDir: string;
}

export interface ClusterConfig {
  name: string;
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
  tickMs: 100,
  heartbeatTicks: 1,
  electionTicks: 10,
  snapshotEvery: RAFT_NODE_DEFAULTS.snapshotEvery,
  snapshotCatchUpEntries: RAFT_NODE_DEFAULTS.snapshotCatchUpEntries,
  maxRequestBytes: 1.5 * 1024 * 1024,
  quotaBackendBytes: 2 * 1024 * 1024 * 1024,
};

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

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

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

function httpUrl(obj: { [k: string]: Json }, key: string, where: string): string {
  const v = nonEmptyString(obj, key, where);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(`${where}.${key}: invalid URL ${JSON.stringify(v)}`);
  }
  if (u.protocol !== 'http:') throw new ConfigError(`${where}.${key}: only http:// URLs are supported, got ${JSON.stringify(v)}`);
  if (!u.port) throw new ConfigError(`${where}.${key}: the URL needs an explicit port, got ${JSON.stringify(v)}`);
  return `http://${u.hostname}:${u.port}`;
}

/** Validates a parsed configuration object. `baseDir` resolves relative data directories. */
export function parseClusterConfig(raw: Json, baseDir: string, source = 'cluster config'): ClusterConfig {
  if (!isObject(raw)) throw new ConfigError(`${source}: expected a JSON object`);
  const members = raw['members'];
  if (!Array.isArray(members) || members.length === 0) throw new ConfigError(`${source}.members: expected a non-empty array`);
  const cfg: ClusterConfig = {
    name: raw['name'] === undefined ? CLUSTER_DEFAULTS.name : nonEmptyString(raw, 'name', source),
    tickMs: positiveInt(raw, 'tickMs', source, CLUSTER_DEFAULTS.tickMs),
    heartbeatTicks: positiveInt(raw, 'heartbeatTicks', source, CLUSTER_DEFAULTS.heartbeatTicks),
    electionTicks: positiveInt(raw, 'electionTicks', source, CLUSTER_DEFAULTS.electionTicks),
    snapshotEvery: positiveInt(raw, 'snapshotEvery', source, CLUSTER_DEFAULTS.snapshotEvery),
    snapshotCatchUpEntries: positiveInt(raw, 'snapshotCatchUpEntries', source, CLUSTER_DEFAULTS.snapshotCatchUpEntries),
    maxRequestBytes: positiveInt(raw, 'maxRequestBytes', source, CLUSTER_DEFAULTS.maxRequestBytes),
    quotaBackendBytes: resolveQuotaBackendBytes(raw['quotaBackendBytes'], `${source}.quotaBackendBytes`),
    members: members.map((m, i) => {
      const where = `${source}.members[${i}]`;
      if (!isObject(m)) throw new ConfigError(`${where}: expected an object`);
      const dataDir = nonEmptyString(m, 'dataDir', where);
      return {
        id: positiveInt(m, 'id', where),
        name: nonEmptyString(m, 'name', where),
        clientUrl: httpUrl(m, 'clientUrl', where),
        peerUrl: httpUrl(m, 'peerUrl', where),
        dataDir: path.resolve(baseDir, dataDir),
      };
    }),
  };
  if (cfg.electionTicks <= cfg.heartbeatTicks) {
    throw new ConfigError(`${source}: electionTicks (${cfg.electionTicks}) must be greater than heartbeatTicks (${cfg.heartbeatTicks})`);
  }
  for (const field of ['id', 'name', 'clientUrl', 'peerUrl', 'dataDir'] as const) {
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

export function memberByName(cfg: ClusterConfig, name: string): MemberConfig {
  const m = cfg.members.find((x) => x.name === name);
  if (!m) throw new ConfigError(`no member named ${JSON.stringify(name)}; members are ${cfg.members.map((x) => x.name).join(', ')}`);
  return m;
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}
