/**
 * Starting one member process: configuration from cluster.config.json plus flags/env, the
 * member, its client servers (etcd's gRPC API and the HTTP APIs, on the one client port as in
 * etcd), and a clean shutdown on SIGTERM/SIGINT.
 *
 * The composition root of a member: it sits above src/server (the member and its HTTP APIs) and
 * src/grpc (which builds on src/server), so that src/server never imports src/grpc. `qkv serve`
 * runs it; `qkv/server` (src/server/index.ts) re-exports it.
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { ConfigError, hostPort, loadClusterConfig, memberByName, resolveQuotaBackendBytes, type ClusterConfig, type MemberConfig } from './server/config.js';
import { Member } from './server/member.js';
import { buildHttpServer } from './server/http.js';
import { EtcdGrpcServer } from './grpc/server.js';
import { ClientPortMux } from './grpc/mux.js';

export interface ServeOptions {
  configPath: string;
  name: string;
  /** Overrides of the member's entry in the config. */
  dataDir?: string;
  clientUrl?: string;
  peerUrl?: string;
  logLevel?: string;
  /** "id=host:port,id=host:port": dial these peers there (e.g. through a fault proxy). */
  peerDial?: string;
  /** etcd's --quota-backend-bytes, as given on the command line: overrides the config's. */
  quotaBackendBytes?: string;
}

export function parsePeerDial(spec: string | undefined): Map<number, { host: string; port: number }> {
  const out = new Map<number, { host: string; port: number }>();
  if (!spec) return out;
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(\d+)=([^:]+):(\d+)$/.exec(part);
    if (!m) throw new ConfigError(`--peer-dial: expected id=host:port, got ${JSON.stringify(part)}`);
    out.set(Number(m[1]), { host: m[2]!, port: Number(m[3]) });
  }
  return out;
}

export interface RunningServer {
  member: Member;
  http: FastifyInstance;
  grpc: EtcdGrpcServer;
  logger: Logger;
  stop(): Promise<void>;
}

export function resolveMember(opts: ServeOptions): { cluster: ClusterConfig; self: MemberConfig } {
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
  // Each member's own, as etcd's flag: it bounds this member's store.
  if (opts.quotaBackendBytes !== undefined) cluster.quotaBackendBytes = resolveQuotaBackendBytes(opts.quotaBackendBytes, '--quota-backend-bytes');
  return { cluster, self };
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const { cluster, self } = resolveMember(opts);
  const logger = pino({ level: opts.logLevel ?? process.env['QKV_LOG_LEVEL'] ?? 'info', base: { member: self.name, id: self.id } });
  const member = await Member.start({ cluster, self, logger, peerDialOverrides: parsePeerDial(opts.peerDial) });
  const http = buildHttpServer({ member, logger, maxRequestBytes: cluster.maxRequestBytes });
  const grpc = new EtcdGrpcServer({ member, logger, maxRequestBytes: cluster.maxRequestBytes });
  // fastify does not listen itself: the client port's multiplexer feeds it the HTTP/1
  // connections and gives the HTTP/2 ones (gRPC) to the gRPC server.
  const mux = new ClientPortMux({ grpc: (socket) => grpc.injectConnection(socket), http: http.server });
  const { host, port } = hostPort(self.clientUrl);
  try {
    await http.ready();
    await mux.listen(host, port);
  } catch (err) {
    await grpc.stop(0);
    await http.close();
    await member.stop();
    throw err;
  }
  logger.info({ clientUrl: self.clientUrl, peerUrl: self.peerUrl }, 'serving clients (gRPC and HTTP)');
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
    throw err;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  server.logger.info('shutting down');
  await server.stop();
  process.exit(0);
}
