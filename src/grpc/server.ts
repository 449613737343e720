/**
 * The etcd v3 gRPC server of a member (grpc-js): KV, Watch, Lease, Cluster, Maintenance and Auth,
 * and etcd's concurrency services Lock and Election, on the member's operations: the unary calls
 * from the one table (src/server/services.ts), the streams hand-written (watch.ts, lease.ts,
 * maintenance.ts, election.ts). It does not listen itself: the client port's multiplexer
 * (src/grpc/mux.ts) hands it the HTTP/2 connections, so gRPC and HTTP share one port as in etcd.
 */
import * as grpc from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Member } from '../server/member.js';
import { ServerStoppedError } from '../server/errors.js';
import { GrpcContext } from './context.js';
import { GRPC_OVERHEAD_BYTES } from '../server/requests.js';
import { leaseService } from './lease.js';
import { watchService } from './watch.js';
import { maintenanceService } from './maintenance.js';
import { electionService } from './election.js';
import { etcdServices, type ProtoMessage, type ServiceName } from './proto.js';
import { instrumentService, methodStats } from './instrument.js';
import { learnerGate } from './learner.js';
import { DirectUnaryServer } from './direct_unary.js';
import { H2Front } from './h2_front.js';
import { DirectStreamCall, type DirectStreamMethod } from './direct_stream.js';
import type { WatchCall } from './watch.js';
import { UNARY_METHODS } from '../server/services.js';

export interface GrpcServerOptions {
  member: Member;
  logger: Logger;
  /** etcd's --max-request-bytes. */
  maxRequestBytes: number;
}

/**
 * Each service's grpc-js implementation: its unary handlers from the one table
 * (src/server/services.ts), its streams hand-written.
 */
export function serviceImplementations(ctx: GrpcContext): Record<ServiceName, grpc.UntypedServiceImplementation> {
  return {
    KV: ctx.unaryHandlers('KV'),
    Watch: watchService(ctx),
    Lease: leaseService(ctx),
    Cluster: ctx.unaryHandlers('Cluster'),
    Maintenance: maintenanceService(ctx),
    Auth: ctx.unaryHandlers('Auth'),
    Lock: ctx.unaryHandlers('Lock'),
    Election: electionService(ctx),
  };
}

export class EtcdGrpcServer {
  private readonly server: grpc.Server;
  private readonly injector: grpc.ConnectionInjector;
  private readonly direct: DirectUnaryServer;
  private readonly ctx: GrpcContext;
  private stopped = false;

  constructor(opts: GrpcServerOptions) {
    this.ctx = new GrpcContext(opts.member, opts.logger.child({ component: 'grpc' }), opts.maxRequestBytes);
    // A larger message is refused (RESOURCE_EXHAUSTED) before it is decoded, as in etcd.
    const maxReceiveBytes = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': maxReceiveBytes,
      'grpc.max_send_message_length': -1,
      // channelz (grpc-js's introspection service, which qkv does not serve) costs every call
      // its bookkeeping: counters, timestamps and closures.
      'grpc.enable_channelz': 0,
    });
    const services = etcdServices();
    const tableMethods = new Set(UNARY_METHODS.map((m) => `${m.service}/${m.method}`));
    // Every call is counted as go-grpc-prometheus counts etcd's (src/grpc/instrument.ts).
    const add = (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void => {
      const instrumented = instrumentService(definition, implementation, opts.member.metrics.grpc);
      this.server.addService(instrumented.definition, instrumented.implementation);
    };
    const implementations = serviceImplementations(this.ctx);
    const gated = {} as Record<ServiceName, grpc.UntypedServiceImplementation>;
    // A learner refuses what etcd's learner refuses (learner.ts), before anything else runs.
    for (const name of Object.keys(implementations) as ServiceName[]) {
      // The table's unary methods take their request as bytes: context.ts decodes them (wire.ts), as the direct path does.
      const definition = Object.fromEntries(
        Object.entries(services[name]).map(([method, m]) => [
          method,
          tableMethods.has(`${name}/${method}`) ? { ...m, requestDeserialize: (bytes: Buffer) => bytes } : m,
        ]),
      ) as grpc.ServiceDefinition;
      gated[name] = learnerGate(name, definition, implementations[name], opts.member);
      add(definition, gated[name]);
    }
    this.injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    // Plain unary calls and the watch stream are answered on node:http2 directly (direct_unary.ts,
    // direct_stream.ts), the rest by grpc-js.
    const direct = new DirectUnaryServer(this.ctx, opts.member.metrics.grpc, maxReceiveBytes);
    this.direct = direct;
    const watch = services.Watch['Watch']!;
    const watchMethod: DirectStreamMethod = {
      path: watch.path,
      stats: methodStats(opts.member.metrics.grpc, watch),
      decode: (bytes) => watch.requestDeserialize(bytes) as ProtoMessage,
      encode: (resp) => watch.responseSerialize(resp),
    };
    const startWatch = gated.Watch['Watch'] as (call: WatchCall) => void;
    direct.addStream(watch.path, (stream, headers) =>
      startWatch(new DirectStreamCall(watchMethod, opts.member.metrics.grpc, stream, headers, maxReceiveBytes)),
    );
    direct.takeOver(this.server);
  }

  /** Serves a plaintext HTTP/2 connection through the front (h2_front.ts); `seen`: its bytes read so far, from the preface on. */
  serveFront(socket: net.Socket, seen: Buffer): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.injector.injectConnection(new H2Front(socket, seen, this.direct));
  }

  /** Serves an HTTP/2 connection (its bytes not yet consumed). */
  injectConnection(socket: Duplex): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.injector.injectConnection(socket);
  }

  /**
   * Ends every open stream with "server stopped" (clients fail over), lets unary calls in flight
   * finish for up to `graceMs`, then closes every connection.
   */
  async stop(graceMs = 1_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of [...this.ctx.streams]) s.abort(new ServerStoppedError());
    this.injector.drain(graceMs);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.injector.destroy();
  }
}
