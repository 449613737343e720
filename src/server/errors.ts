/**
 * The one place where errors become gRPC statuses and HTTP responses, for both APIs: every qkv
 * error class declares its gRPC code (and etcd's wire message where it differs from its own;
 * src/errors.ts), the HTTP status is the one grpc-gateway derives from the gRPC code, and the
 * v3 gateway answers them as
 *   {"error": "...", "message": "...", "code": N}
 * The server's own errors are below; docs/errors.md lists every class.
 */
import { CodedError, EtcdMessage, GrpcCode } from '../errors.js';

/** grpc-gateway's runtime.HTTPStatusFromCode, in the v1 gateway etcd 3.4 serves (FailedPrecondition is 412 there). */
export function httpStatusOf(code: GrpcCode): number {
  switch (code) {
    case GrpcCode.OK:
      return 200;
    case GrpcCode.Canceled:
      return 408;
    case GrpcCode.InvalidArgument:
    case GrpcCode.OutOfRange:
      return 400;
    case GrpcCode.FailedPrecondition:
      return 412;
    case GrpcCode.Unauthenticated:
      return 401;
    case GrpcCode.DeadlineExceeded:
      return 504;
    case GrpcCode.NotFound:
      return 404;
    case GrpcCode.AlreadyExists:
    case GrpcCode.Aborted:
      return 409;
    case GrpcCode.PermissionDenied:
      return 403;
    case GrpcCode.ResourceExhausted:
      return 429;
    case GrpcCode.Unimplemented:
      return 501;
    case GrpcCode.Unavailable:
      return 503;
    default:
      return 500;
  }
}

// ---- the server's own errors (etcd's rpctypes where etcd has them) -------------------------

export class NoLeaderError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_NO_LEADER', EtcdMessage.noLeader);
  }
}

export class RequestTooLargeError extends CodedError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_REQUEST_TOO_LARGE', 'etcdserver: request is too large');
  }
}

/** gRPC's own refusal of a message over its receive limit, in grpc-go's words (etcd's gateway relays it). */
export class MessageTooLargeError extends CodedError {
  static override readonly grpcCode = GrpcCode.ResourceExhausted;
  constructor(size: number, limit: number) {
    super('ERR_MESSAGE_TOO_LARGE', `grpc: received message larger than max (${size} vs. ${limit})`);
  }
}

export class RequestTimedOutError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_TIMEOUT', EtcdMessage.requestTimedOut);
  }
}

export class LeaderChangedError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_LEADER_CHANGED', EtcdMessage.leaderChanged);
  }
}

/** A write forwarded to a leader that died before answering: it may or may not have been applied. */
export class TimeoutDueToLeaderFailError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_TIMEOUT_LEADER_FAIL', `${EtcdMessage.requestTimedOut}, possibly due to previous leader failure`);
  }
}

/** A request the client got wrong, in the words of the API that refuses it. */
export class BadRequestError extends CodedError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor(message: string) {
    super('ERR_BAD_REQUEST', message);
  }
}

// etcd's rpctypes errors that only the gRPC API raises.

export class BadLeaderTransfereeError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_BAD_LEADER_TRANSFEREE', 'etcdserver: bad leader transferee');
  }
}

export class LeaderTransferTimeoutError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_LEADER_TRANSFER_TIMEOUT', `${EtcdMessage.requestTimedOut}, leader transfer took too long`);
  }
}

export class AuthNotEnabledError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_AUTH_NOT_ENABLED', 'etcdserver: authentication is not enabled');
  }
}

/** Authenticate beyond the guessing bound (src/server/auth.ts): qkv's own, etcd has no such limit. */
export class TooManyAuthAttemptsError extends CodedError {
  static override readonly grpcCode = GrpcCode.ResourceExhausted;
  constructor() {
    super('ERR_TOO_MANY_AUTH_ATTEMPTS', 'etcdserver: too many authentication attempts, retry later');
  }
}

/** Authenticate on a member whose --auth-token jwt has no priv-key (etcd's auth.ErrVerifyOnly, unmapped: Unknown). */
export class JwtVerifyOnlyError extends CodedError {
  constructor() {
    super('ERR_JWT_VERIFY_ONLY', 'auth: token signing attempted with verify-only key');
  }
}

// etcd's membership errors (rpctypes' ErrGRPCMember*, as v3rpc maps membership's errors).

export class MemberNotFoundError extends CodedError {
  static override readonly grpcCode = GrpcCode.NotFound;
  constructor() {
    super('ERR_MEMBER_NOT_FOUND', 'etcdserver: member not found');
  }
}

export class PeerUrlExistsError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_PEER_URL_EXISTS', 'etcdserver: Peer URLs already exists');
  }
}

export class MemberBadUrlsError extends CodedError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_MEMBER_BAD_URLS', 'etcdserver: given member URLs are invalid');
  }
}

export class NotEnoughStartedMembersError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_NOT_ENOUGH_STARTED_MEMBERS', 'etcdserver: re-configuration failed due to not enough started members');
  }
}

export class UnhealthyClusterError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_UNHEALTHY_CLUSTER', 'etcdserver: unhealthy cluster');
  }
}

export class MemberNotLearnerError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_MEMBER_NOT_LEARNER', 'etcdserver: can only promote a learner member');
  }
}

export class LearnerNotReadyError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_LEARNER_NOT_READY', 'etcdserver: can only promote a learner member which is in sync with leader');
  }
}

export class TooManyLearnersError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_TOO_MANY_LEARNERS', 'etcdserver: too many learner members in cluster');
  }
}

/** A learner answers only Status and serializable Range (etcd 3.4's ErrGPRCNotSupportedForLearner). */
export class LearnerNotSupportedError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_LEARNER_NOT_SUPPORTED', 'etcdserver: rpc not supported for learner');
  }
}

/**
 * This member was removed from the cluster (it applied its removal, or a peer refused it as
 * removed): it stops and never takes part again (etcd's ErrStopped with the same words).
 */
export class MemberRemovedError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_MEMBER_REMOVED', 'the member has been permanently removed from the cluster');
  }
}

/** A member's data dir or flags belong to another cluster than the peer it talks to (etcd's cluster ID mismatch). */
export class ClusterMismatchError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor(detail: string) {
    super('ERR_CLUSTER_MISMATCH', `cluster mismatch: ${detail}`);
  }
}

/** An etcd feature qkv does not serve. */
export class UnsupportedError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unimplemented;
  constructor(what: string) {
    super('ERR_UNSUPPORTED', `qkv: ${what} is not supported`);
  }
}

export class ServerStoppedError extends CodedError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_SERVER_STOPPED', EtcdMessage.serverStopped);
  }
}

/** An error another member answered (forwarded request): its gRPC code and message, unchanged. */
export class ForwardedError extends CodedError {
  readonly #grpcCode: GrpcCode;
  constructor(grpcCode: GrpcCode, message: string) {
    super('ERR_FORWARDED', message);
    this.#grpcCode = grpcCode;
  }

  override get grpcCode(): GrpcCode {
    return this.#grpcCode;
  }
}

// ---- the mapping ---------------------------------------------------------------------------

export interface HttpError {
  status: number;
  body: { error: string; message: string; code: GrpcCode };
}

/** An error as etcd's gRPC layer reports it: status code and message. */
export interface GrpcStatusError {
  code: GrpcCode;
  message: string;
}

/** Maps any error to etcd's gRPC status (served as is over gRPC, and wrapped by the gateway). */
export function toGrpcStatus(err: unknown): GrpcStatusError {
  if (err instanceof CodedError) return { code: err.grpcCode, message: err.wireMessage };
  return { code: GrpcCode.Unknown, message: err instanceof Error ? err.message : String(err) };
}

/** Maps any error to the gateway's error response. Unknown errors are 500s with their message. */
export function toHttpError(err: unknown): HttpError {
  const { code, message } = toGrpcStatus(err);
  return { status: httpStatusOf(code), body: { error: message, message, code } };
}
