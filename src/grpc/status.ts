/**
 * qkv errors as gRPC statuses: the code and message come from src/server/errors.ts, the one
 * mapping the JSON gateway uses too, so both APIs answer etcd's exact wording.
 */
import * as grpc from '@grpc/grpc-js';
import { toGrpcStatus } from '../server/errors.js';

export type GrpcStatus = Partial<grpc.StatusObject> & Error & { code: grpc.status; details: string };

export function toServiceError(err: unknown): GrpcStatus {
  const { code, message } = toGrpcStatus(err);
  // grpc-js sends `details` as the status message; etcd's clients match on it (rpctypes).
  return Object.assign(new Error(message), { code: code as number as grpc.status, details: message, metadata: new grpc.Metadata() });
}
