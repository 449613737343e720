/**
 * The etcd v3 gRPC API as qkv loads it: proto/etcdserverpb/rpc.proto (and mvccpb/kv.proto), and
 * etcd's concurrency services proto/v3lockpb/v3lock.proto and proto/v3electionpb/v3election.proto,
 * read at run time by @grpc/proto-loader. Decoded messages are plain objects with the proto's own
 * field names (keepCase), 64-bit integers as decimal strings (longs: String, so nothing is
 * rounded on the way in), enums as names, bytes as Buffers and proto3 defaults filled in.
 */
import { Buffer } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';
import type { ServiceName } from '../server/services.js';

/** Where the .proto files live (the repository's proto/ folder). */
const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

/** A decoded or to-be-encoded proto message: field name → value. */
export interface ProtoMessage {
  [field: string]: ProtoValue;
}
export type ProtoValue = null | undefined | boolean | number | string | Buffer | ProtoMessage | ProtoValue[];

export type { ServiceName };

/** Each service's proto package (etcd's: the concurrency services have their own). */
const PACKAGE_OF: Record<ServiceName, string> = {
  KV: 'etcdserverpb',
  Watch: 'etcdserverpb',
  Lease: 'etcdserverpb',
  Cluster: 'etcdserverpb',
  Maintenance: 'etcdserverpb',
  Auth: 'etcdserverpb',
  Lock: 'v3lockpb',
  Election: 'v3electionpb',
};

/**
 * A response serializer that sends a Buffer as it is: a response already encoded (the watch
 * stream's, whose events are encoded once for all the watchers they go to), a message otherwise.
 */
const passEncoded =
  (serialize: grpc.serialize<ProtoMessage>): grpc.serialize<ProtoMessage | Buffer> =>
  (value) =>
    Buffer.isBuffer(value) ? value : serialize(value);

let loaded: protoLoader.PackageDefinition | undefined;

/**
 * The proto files as loaded (once per process): services, and message and enum descriptors
 * (`type`: a DescriptorProto-like object) by full name, e.g. `etcdserverpb.RangeRequest`.
 * src/grpc/wire.ts reads its field numbers from them.
 */
export function protoPackage(): protoLoader.PackageDefinition {
  loaded ??= protoLoader.loadSync(['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'], LOADER_OPTIONS);
  return loaded;
}

/**
 * The full names of a method's request and response messages (`etcdserverpb.LeaseRevokeResponse`):
 * several methods share one schema (src/api/schemas.ts's HeaderOnlyResponse), whose field
 * numbers are those of each method's own message.
 */
export function methodMessageTypes(service: ServiceName, method: string): { request: string; response: string } {
  // A service's methods take and answer messages of its own package (etcd's protos).
  const pkg = PACKAGE_OF[service];
  const svc = protoPackage()[`${pkg}.${service}`];
  const m = svc && !('format' in svc) ? svc[method] : undefined;
  if (!m) throw new Error(`proto: no method ${service}/${method} in ${PROTO_DIR}`);
  const fullName = (t: protoLoader.MessageTypeDefinition<object, object>): string => {
    const name = `${pkg}.${(t.type as { name: string }).name}`;
    if (protoPackage()[name] === undefined) throw new Error(`proto: message ${name} of ${service}/${method} not found`);
    return name;
  };
  return { request: fullName(m.requestType), response: fullName(m.responseType) };
}

let cached: Record<ServiceName, grpc.ServiceDefinition> | undefined;

/** The services' definitions (loaded once per process). */
export function etcdServices(): Record<ServiceName, grpc.ServiceDefinition> {
  if (cached) return cached;
  const def = protoPackage();
  const pick = (name: ServiceName): grpc.ServiceDefinition => {
    const full = `${PACKAGE_OF[name]}.${name}`;
    const svc = def[full];
    // A service entry is a map of method definitions; a message entry has a `format` field.
    if (!svc || 'format' in svc) throw new Error(`proto: service ${full} not found in ${PROTO_DIR}`);
    return Object.fromEntries(
      Object.entries(svc as grpc.ServiceDefinition).map(([method, m]) => [method, { ...m, responseSerialize: passEncoded(m.responseSerialize) }]),
    ) as grpc.ServiceDefinition;
  };
  const names = Object.keys(PACKAGE_OF) as ServiceName[];
  cached = Object.fromEntries(names.map((n) => [n, pick(n)])) as Record<ServiceName, grpc.ServiceDefinition>;
  return cached;
}
