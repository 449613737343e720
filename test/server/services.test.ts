// The one table of unary calls (src/server/services.ts) against etcd's proto files, the JSON
// gateway's routes and the gRPC server's handlers.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { buildHttpServer } from '../../src/server/http.js';
import type { Member } from '../../src/server/member.js';
import { STREAMING_METHODS, UNARY_METHODS, UNSUPPORTED_METHODS, type ServiceName } from '../../src/server/services.js';
import { GrpcContext } from '../../src/grpc/context.js';
import { etcdServices, type ProtoMessage } from '../../src/grpc/proto.js';
import { serviceImplementations } from '../../src/grpc/server.js';

const HEADER = { clusterId: '1', memberId: '2', revision: 7, raftTerm: 3 };
/** Just enough of a member for Defragment: a header, and a defragment that reclaims nothing. */
const member = {
  header: (revision = HEADER.revision) => ({ ...HEADER, revision }),
  defragment: async () => ({ beforeBytes: 0, afterBytes: 0 }),
  // Auth disabled: no caller, nothing refused.
  authn: { callerOf: () => undefined },
  tokenApplied: async () => undefined,
  checkMaintenanceAdmin: () => undefined,
} as unknown as Member;
const logger = pino({ level: 'silent' });

const key = (service: string, method: string): string => `${service}.${method}`;

describe('the service table', () => {
  const services = etcdServices();

  it('names every method of every service in the proto files once: in the table, streaming, or unsupported', () => {
    const listed = [...UNARY_METHODS, ...STREAMING_METHODS, ...UNSUPPORTED_METHODS].map((m) => key(m.service, m.method));
    expect(new Set(listed).size).toBe(listed.length);
    const inProto = Object.entries(services).flatMap(([service, def]) => Object.keys(def).map((method) => key(service, method)));
    expect([...listed].sort()).toEqual([...inProto].sort());
  });

  it('holds unary methods only, and lists every streaming method as streaming', () => {
    const isStream = (service: ServiceName, method: string): boolean => {
      const def = services[service][method]!;
      return def.requestStream || def.responseStream;
    };
    for (const m of [...UNARY_METHODS, ...UNSUPPORTED_METHODS]) expect(isStream(m.service, m.method), key(m.service, m.method)).toBe(false);
    for (const m of STREAMING_METHODS) expect(isStream(m.service, m.method), key(m.service, m.method)).toBe(true);
  });

  it('gives every call its own gateway paths', () => {
    const paths = UNARY_METHODS.flatMap((m) => [m.path, ...(m.aliases ?? [])]);
    expect(new Set(paths).size).toBe(paths.length);
    for (const p of paths) expect(p).toMatch(/^\/v3\/[a-z/-]+$/);
  });

  it('is served by a gateway route per path', async () => {
    const app = buildHttpServer({ member, logger, maxRequestBytes: 1024, uiWritable: false });
    await app.ready();
    try {
      for (const m of UNARY_METHODS) {
        for (const url of [m.path, ...(m.aliases ?? [])]) expect(app.hasRoute({ method: 'POST', url }), url).toBe(true);
      }
      const res = await app.inject({ method: 'POST', url: '/v3/maintenance/defragment', payload: '{}' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ header: { cluster_id: '1', member_id: '2', revision: '7', raft_term: '3' } });
    } finally {
      await app.close();
    }
  });

  it('is served by a gRPC handler per method', async () => {
    const impls = serviceImplementations(new GrpcContext(member, logger, 1024));
    for (const [service, def] of Object.entries(services) as [ServiceName, grpc.ServiceDefinition][]) {
      expect(Object.keys(impls[service]).sort(), service).toEqual(Object.keys(def).sort());
    }
    // A unary handler takes the request's message bytes and answers the response's (context.ts).
    const call = (service: ServiceName, method: string): Promise<{ err: grpc.ServiceError | null; resp?: ProtoMessage }> =>
      new Promise((resolve) => {
        const fake = {
          request: Buffer.alloc(0),
          getPath: () => `/${service}/${method}`,
          getPeer: () => 'ipv4:127.0.0.1:1',
          metadata: new grpc.Metadata(),
          cancelled: false,
        } as unknown as grpc.ServerUnaryCall<Buffer, Buffer>;
        (impls[service][method] as grpc.handleUnaryCall<Buffer, Buffer>)(fake, (err, resp) =>
          resolve({ err: err as grpc.ServiceError | null, ...(resp ? { resp: services[service][method]!.responseDeserialize(resp) as ProtoMessage } : {}) }),
        );
      });
    const defrag = await call('Maintenance', 'Defragment');
    expect(defrag.err).toBeNull();
    expect(defrag.resp).toEqual({ header: { cluster_id: '1', member_id: '2', revision: '7', raft_term: '3' } });
    // Every method of every service is served now (the Auth service too).
    expect(UNSUPPORTED_METHODS).toEqual([]);
  });
});
