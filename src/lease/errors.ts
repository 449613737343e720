/** Lease errors, with etcd's messages and gRPC codes (mapped in src/server/errors.ts). The MVCC store raises them too. */
import { CodedError, EtcdMessage, GrpcCode } from '../errors.js';

export abstract class LeaseError extends CodedError {}

export class LeaseNotFoundError extends LeaseError {
  static override readonly grpcCode = GrpcCode.NotFound;
  constructor() {
    super('ERR_LEASE_NOT_FOUND', 'etcdserver: requested lease not found');
  }
}

export class LeaseExistsError extends LeaseError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_LEASE_EXISTS', 'etcdserver: lease already exists');
  }
}

export class LeaseTTLTooLargeError extends LeaseError {
  static override readonly grpcCode = GrpcCode.OutOfRange;
  constructor() {
    super('ERR_LEASE_TTL_TOO_LARGE', 'etcdserver: too large lease TTL');
  }
}

/** Keep-alives and expiry are the leader's alone; a follower must forward them. */
export class LeaseNotPrimaryError extends LeaseError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  static override readonly wireMessage = EtcdMessage.notLeader;
  constructor() {
    super('ERR_LEASE_NOT_PRIMARY', 'lease: not the primary lessor (not the leader)');
  }
}
