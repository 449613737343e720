/**
 * The etcd v3 gRPC server of a member (grpc-js): KV, Watch, Lease, Cluster, Maintenance and Auth,
 * and etcd's concurrency services Lock and Election, on the member's operations. It does not listen itself: the client port's multiplexer
 * (src/grpc/mux.ts) hands it the HTTP/2 connections, so gRPC and HTTP share one port as in etcd.
 */
import * as grpc from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Member } from '../server/member.js';
import { ServerStoppedError } from '../server/errors.js';
import { GrpcContext } from './context.js';
import { GRPC_OVERHEAD_BYTES } from '../server/requests.js';
import { kvService } from './kv.js';
import { leaseService } from './lease.js';
import { watchService } from './watch.js';
import { clusterService, maintenanceService } from './maintenance.js';
import { authService } from './auth.js';
import { lockService } from './lock.js';
import { electionService } from './election.js';
import { etcdServices } from './proto.js';
import { instrumentService } from './instrument.js';

export interface GrpcServerOptions {
  member: Member;
  logger: Logger;
  /** etcd's --max-request-bytes. */
  maxRequestBytes: number;
}

export class EtcdGrpcServer {
  private readonly server: grpc.Server;
  private readonly injector: grpc.ConnectionInjector;
  private readonly ctx: GrpcContext;
  private stopped = false;

  constructor(opts: GrpcServerOptions) {
    this.ctx = new GrpcContext(opts.member, opts.logger.child({ component: 'grpc' }), opts.maxRequestBytes);
    this.server = new grpc.Server({
      // A larger message is refused by grpc-js (RESOURCE_EXHAUSTED) before it is decoded, as in etcd.
      'grpc.max_receive_message_length': opts.maxRequestBytes + GRPC_OVERHEAD_BYTES,
      'grpc.max_send_message_length': -1,
    });
    const services = etcdServices();
    // Every call is counted as go-grpc-prometheus counts etcd's (src/grpc/instrument.ts).
    const add = (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void => {
      const instrumented = instrumentService(definition, implementation, opts.member.metrics.grpc);
      this.server.addService(instrumented.definition, instrumented.implementation);
    };
    add(services.KV, kvService(this.ctx));
    add(services.Watch, watchService(this.ctx));
    add(services.Lease, leaseService(this.ctx));
    add(services.Cluster, clusterService(this.ctx));
    add(services.Maintenance, maintenanceService(this.ctx));
    add(services.Auth, authService(this.ctx));
    add(services.Lock, lockService(this.ctx));
    add(services.Election, electionService(this.ctx));
    this.injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
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
