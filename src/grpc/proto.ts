/**
 * The etcd v3 gRPC API as qkv loads it: proto/etcdserverpb/rpc.proto (and mvccpb/kv.proto) read
 * at run time by @grpc/proto-loader. Decoded messages are plain objects with the proto's own
 * field names (keepCase), 64-bit integers as decimal strings (longs: String, so nothing is
 * rounded on the way in), enums as names, bytes as Buffers and proto3 defaults filled in.
 */
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

/** Where the .proto files live (the repository's proto/ folder). */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

export const LOADER_OPTIONS: protoLoader.Options = {
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

export type ServiceName = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth';

let cached: Record<ServiceName, grpc.ServiceDefinition> | undefined;

/** The services' definitions (loaded once per process). */
export function etcdServices(): Record<ServiceName, grpc.ServiceDefinition> {
  if (cached) return cached;
  const def = protoLoader.loadSync(['etcdserverpb/rpc.proto'], LOADER_OPTIONS);
  const pick = (name: ServiceName): grpc.ServiceDefinition => {
    const svc = def[`etcdserverpb.${name}`];
    // A service entry is a map of method definitions; a message entry has a `format` field.
    if (!svc || 'format' in svc) throw new Error(`proto: service etcdserverpb.${name} not found in ${PROTO_DIR}`);
    return svc as grpc.ServiceDefinition;
  };
  cached = { KV: pick('KV'), Watch: pick('Watch'), Lease: pick('Lease'), Cluster: pick('Cluster'), Maintenance: pick('Maintenance'), Auth: pick('Auth') };
  return cached;
}
