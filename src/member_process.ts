/**
 * Starting one member process: configuration from cluster.config.json or etcd's member flags,
 * the membership of the cluster it joins (--initial-cluster-state existing: from a peer's
 * /members), the member, its client servers (etcd's gRPC API and the HTTP APIs, on the one
 * client port as in etcd), and a clean shutdown on SIGTERM/SIGINT, or once the member is removed.
 *
 * The composition root of a member: it sits above src/server (the member and its HTTP APIs) and
 * src/grpc (which builds on src/server), so that src/server never imports src/grpc. `qkv serve`
 * runs it; `qkv/server` (src/server/index.ts) re-exports it.
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ConfigError,
  hostPort,
  loadClusterConfig,
  memberByName,
  resolveMemberFlags,
  resolveDiskReserveBytes,
  resolveMemberTls,
  resolveQuotaBackendBytes,
  type ClusterConfig,
  type MemberConfig,
  type MemberFlags,
  type MemberTls,
  type TlsFlags,
} from './server/config.js';
import { fetchOver, TlsCredentials, TlsFileError, type PortTls, type ServerTlsFiles } from './tls.js';
import { IDENTITY_FILE } from './server/identity.js';
import { Member, type MemberOptions } from './server/member.js';
import type { ClusterRecord } from './mvcc/index.js';
import { ClusterMismatchError, MemberRemovedError } from './server/errors.js';
import { LogCorruptError } from './wal/log_store.js';
import { CorruptError, StoreFileCorruptError } from './mvcc/index.js';
import { buildHttpServer } from './server/http.js';
import { EtcdGrpcServer } from './grpc/server.js';
import { ClientPortMux } from './grpc/mux.js';

export interface ServeOptions {
  /** cluster.config.json, when the member is not given by etcd's flags. */
  configPath: string;
  name?: string;
  /** Overrides of the member's entry in the config. */
  dataDir?: string;
  clientUrl?: string;
  peerUrl?: string;
  /** etcd's member flags instead of the config file (when any of them is given). */
  flags?: MemberFlags;
  logLevel?: string;
  /** "key=host:port,..." (an initial member's name or a peer URL), or "@file" of such entries: dial those peers there (e.g. through a fault proxy). */
  peerDial?: string;
  /** etcd's --quota-backend-bytes, as given on the command line: overrides the config's. */
  quotaBackendBytes?: string;
  /** --disk-reserve-bytes, as given on the command line: overrides the config's. */
  diskReserveBytes?: string;
  /** etcd's TLS flags (--cert-file and the rest), with either way of giving the member. */
  tls?: TlsFlags;
  /** --ui-writable: the web console offers put and delete (read-only when absent). */
  uiWritable?: boolean;
}

type PeerAddress = { host: string; port: number };

function parsePeerDialList(spec: string, where: string): Map<string, PeerAddress> {
  const out = new Map<string, PeerAddress>();
  for (const part of spec
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(.+)=([^:=/]+):(\d+)$/.exec(part);
    if (!m) throw new ConfigError(`${where}: expected name=host:port or peerURL=host:port, got ${JSON.stringify(part)}`);
    out.set(m[1]!, { host: m[2]!, port: Number(m[3]) });
  }
  return out;
}

/**
 * --peer-dial: "key=host:port,..." (a key is an initial member's name or a peer URL), or
 * "@file" with such entries (by commas or lines), read again whenever a peer is dialled, so a
 * test can route the links to members added at runtime through its proxies too (a file that
 * does not parse keeps the entries last read).
 */
export function parsePeerDial(spec: string | undefined): ((peerUrl: string, name: string | undefined) => PeerAddress | undefined) | undefined {
  if (!spec) return undefined;
  const lookup = (map: Map<string, PeerAddress>, peerUrl: string, name: string | undefined): PeerAddress | undefined =>
    map.get(peerUrl) ?? (name !== undefined ? map.get(name) : undefined);
  if (!spec.startsWith('@')) {
    const map = parsePeerDialList(spec, '--peer-dial');
    return (peerUrl, name) => lookup(map, peerUrl, name);
  }
  const file = spec.slice(1);
  const read = (): Map<string, PeerAddress> => parsePeerDialList(readFileSync(file, 'utf8'), `--peer-dial ${file}`);
  let last = read();
  return (peerUrl, name) => {
    try {
      last = read();
    } catch {
      // Being rewritten, or wrong: the entries last read stay.
    }
    return lookup(last, peerUrl, name);
  };
}

/**
 * The membership of the running cluster a member joins: asked of the other initial members'
 * peer ports (GET /members, as etcd's GetClusterFromRemotePeers), the first that answers. The
 * cluster's token must be this member's --initial-cluster-token.
 */
export async function fetchJoinedCluster(cluster: ClusterConfig, self: MemberConfig, peerTls?: TlsCredentials): Promise<ClusterRecord> {
  const failures: string[] = [];
  for (const m of cluster.members) {
    if (m.peerUrl === self.peerUrl) continue;
    let record: ClusterRecord;
    try {
      const res = await fetchOver(`${m.peerUrl}/members`, { signal: AbortSignal.timeout(5_000) }, peerTls);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      record = (await res.json()) as ClusterRecord;
    } catch (err) {
      const cause = (err as Error & { cause?: Error }).cause;
      failures.push(`${m.name} (${m.peerUrl}): ${(err as Error).message}${cause?.message ? ` (${cause.message})` : ''}`);
      continue;
    }
    if (record.token !== cluster.name) {
      throw new ClusterMismatchError(`--initial-cluster-token ${JSON.stringify(cluster.name)} is not the token of the cluster at ${m.peerUrl}`);
    }
    return record;
  }
  throw new ConfigError(`--initial-cluster-state existing: could not get the cluster's members from any peer: ${failures.join('; ') || 'no other member'}`);
}

export interface RunningServer {
  member: Member;
  http: FastifyInstance;
  grpc: EtcdGrpcServer;
  logger: Logger;
  stop(): Promise<void>;
}

export function resolveMember(opts: ServeOptions): { cluster: ClusterConfig; self: MemberConfig; tls: MemberTls } {
  const { cluster, self } = opts.flags
    ? resolveMemberFlags({ ...opts.flags, ...(opts.name ? { name: opts.name } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) })
    : fromConfigFile(opts);
  // Each member's own, as etcd's flag: it bounds this member's store.
  if (opts.quotaBackendBytes !== undefined) cluster.quotaBackendBytes = resolveQuotaBackendBytes(opts.quotaBackendBytes, '--quota-backend-bytes');
  if (opts.diskReserveBytes !== undefined) cluster.diskReserveBytes = resolveDiskReserveBytes(opts.diskReserveBytes, '--disk-reserve-bytes');
  return { cluster, self, tls: resolveMemberTls(opts.tls ?? {}, self) };
}

/** A port's TLS from its resolved files: loaded now (a file that does not load is a configuration error), re-read when they change. */
function portTls(files: ServerTlsFiles | undefined, logger: Logger, side: string): PortTls | undefined {
  if (!files) return undefined;
  if (files.clientCertAuth && !files.trustedCaFile)
    logger.warn(`${side} client-cert-auth without a trusted CA file: client certificates are verified against the system's root CAs`);
  try {
    const credentials = new TlsCredentials(files, (err) =>
      logger.warn({ err: err.message }, `${side} TLS files changed but do not load; still using the previous ones`),
    );
    return { credentials, clientCertAuth: files.clientCertAuth };
  } catch (err) {
    if (err instanceof TlsFileError) throw new ConfigError(err.message);
    throw err;
  }
}

/** The member's entry in cluster.config.json, with the command line's overrides. */
function fromConfigFile(opts: ServeOptions): { cluster: ClusterConfig; self: MemberConfig } {
  if (!opts.name) throw new ConfigError('serve: --name (or QKV_NAME) is required');
  const cluster = loadClusterConfig(opts.configPath);
  const found = memberByName(cluster, opts.name);
  const self: MemberConfig = {
    ...found,
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.clientUrl ? { clientUrl: opts.clientUrl } : {}),
    ...(opts.peerUrl ? { peerUrl: opts.peerUrl } : {}),
  };
  if (opts.clientUrl || opts.peerUrl) {
    cluster.members = cluster.members.map((m) => (m.id === self.id ? self : m));
  }
  return { cluster, self };
}

function peerDialOption(spec: string | undefined): Pick<MemberOptions, 'peerDial'> {
  const peerDial = parsePeerDial(spec);
  return peerDial ? { peerDial } : {};
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const { cluster, self, tls } = resolveMember(opts);
  const logger = pino({ level: opts.logLevel ?? process.env['QKV_LOG_LEVEL'] ?? 'info', base: { member: self.name } });
  const clientTls = portTls(tls.client, logger, 'client');
  const peerTls = portTls(tls.peer, logger, 'peer');
  const joining = cluster.state === 'existing' && !existsSync(path.join(self.dataDir, IDENTITY_FILE));
  const join = joining ? await fetchJoinedCluster(cluster, self, peerTls?.credentials) : undefined;
  const member = await Member.start({
    cluster,
    self,
    logger,
    ...peerDialOption(opts.peerDial),
    ...(join ? { join } : {}),
    tls: { ...(clientTls ? { client: clientTls } : {}), ...(peerTls ? { peer: peerTls } : {}) },
  });
  const http = buildHttpServer({ member, logger, maxRequestBytes: cluster.maxRequestBytes, uiWritable: opts.uiWritable === true });
  const grpc = new EtcdGrpcServer({ member, logger, maxRequestBytes: cluster.maxRequestBytes });
  // fastify does not listen itself: the client port's multiplexer feeds it the HTTP/1
  // connections and gives the HTTP/2 ones (gRPC) to the gRPC server.
  const mux = new ClientPortMux(
    { grpc: (socket) => grpc.injectConnection(socket), grpcFront: (socket, seen) => grpc.serveFront(socket, seen), http: http.server },
    clientTls && {
      ...clientTls,
      // As etcd's "rejected connection from ..." (a plaintext client, no certificate, another CA's).
      onRejected: (err, remote) => logger.info({ err: err.message, remote }, 'rejected client connection'),
    },
  );
  const { host, port } = hostPort(self.listenClientUrl ?? self.clientUrl);
  try {
    await http.ready();
    await mux.listen(host, port);
  } catch (err) {
    await grpc.stop(0);
    await http.close();
    await member.stop();
    throw err;
  }
  logger.info({ id: BigInt(member.id).toString(16), clientUrl: self.clientUrl, peerUrl: self.peerUrl }, 'serving clients (gRPC and HTTP)');
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // End the watch streams first so their connections can close, then stop serving.
      member.hub.stop();
      const muxClosed = mux.close();
      await grpc.stop();
      logger.debug('grpc server stopped');
      await http.close();
      logger.debug('http server stopped');
      // fastify closes connections itself only when it listened; these came from the mux.
      mux.destroyConnections();
      await muxClosed;
      logger.debug('client port closed');
      await member.stop();
      clientTls?.credentials.close();
      peerTls?.credentials.close();
    })();
    return stopping;
  };
  return { member, http, grpc, logger, stop };
}

/** Runs until SIGTERM/SIGINT, then shuts down cleanly. */
export async function serveUntilSignalled(opts: ServeOptions): Promise<void> {
  let server: RunningServer;
  try {
    server = await serve(opts);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`qkv: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof LogCorruptError || err instanceof CorruptError || err instanceof StoreFileCorruptError) {
      // Damage at rest: serving from it could answer wrong data; the operator decides (restore
      // the file, or replace the member with a new data dir as etcd's runbook says).
      process.stderr.write(`qkv: ${err.message}; refusing to start\n`);
      process.exit(1);
    }
    if (err instanceof MemberRemovedError || err instanceof ClusterMismatchError) {
      // A removed member's data dir must not rejoin; another cluster's must not mix with this one.
      process.stderr.write(
        `qkv: ${err.message}; refusing to start (the data dir ${opts.flags?.dataDir ?? opts.dataDir ?? ''} must be removed to join again)\n`,
      );
      process.exit(1);
    }
    throw err;
  }
  let exitCode = 0;
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
    server.member.onRemoved((err) => {
      process.stderr.write(`qkv: ${err.message}; stopping\n`);
      exitCode = err instanceof MemberRemovedError ? 0 : 1;
      // As etcd's stopWithDelay: the answer to the removal (this member may have served it) goes out first.
      setTimeout(resolve, 1_000);
    });
  });
  server.logger.info('shutting down');
  await server.stop();
  process.exit(exitCode);
}
