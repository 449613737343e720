/** Lease errors, with etcd's messages. Mapped to HTTP/gRPC statuses in the server, in one place. */
import { CodedError } from '../errors.js';

export class LeaseError extends CodedError {}

export class LeaseNotFoundError extends LeaseError {
  constructor() {
    super('ERR_LEASE_NOT_FOUND', 'etcdserver: requested lease not found');
  }
}

export class LeaseExistsError extends LeaseError {
  constructor() {
    super('ERR_LEASE_EXISTS', 'etcdserver: lease already exists');
  }
}

export class LeaseTTLTooLargeError extends LeaseError {
  constructor() {
    super('ERR_LEASE_TTL_TOO_LARGE', 'etcdserver: too large lease TTL');
  }
}

/** Keep-alives and expiry are the leader's alone; a follower must forward them. */
export class LeaseNotPrimaryError extends LeaseError {
  constructor() {
    super('ERR_LEASE_NOT_PRIMARY', 'lease: not the primary lessor (not the leader)');
  }
}
