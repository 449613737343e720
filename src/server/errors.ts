/**
 * The one place where errors become HTTP responses: etcd's gRPC status code, the HTTP status
 * grpc-gateway derives from it, and etcd's message, as the v3 gateway answers them:
 *   {"error": "...", "message": "...", "code": N}
 */
import { CodedError } from '../errors.js';

/** gRPC status codes (google.golang.org/grpc/codes). */
export enum GrpcCode {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

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

/** An error of the server itself (not of a module below it). */
export class ServerError extends CodedError {
  constructor(
    code: string,
    message: string,
    readonly grpcCode: GrpcCode,
  ) {
    super(code, message);
  }
}

export const noLeader = (): ServerError => new ServerError('ERR_NO_LEADER', 'etcdserver: no leader', GrpcCode.Unavailable);
export const requestTooLarge = (): ServerError => new ServerError('ERR_REQUEST_TOO_LARGE', 'etcdserver: request is too large', GrpcCode.InvalidArgument);
/** gRPC's own refusal of a message over its receive limit, in grpc-go's words (etcd's gateway relays it). */
export const messageTooLarge = (size: number, limit: number): ServerError =>
  new ServerError('ERR_MESSAGE_TOO_LARGE', `grpc: received message larger than max (${size} vs. ${limit})`, GrpcCode.ResourceExhausted);
export const requestTimedOut = (): ServerError => new ServerError('ERR_TIMEOUT', 'etcdserver: request timed out', GrpcCode.Unavailable);
export const leaderChanged = (): ServerError =>
  new ServerError('ERR_LEADER_CHANGED', 'etcdserver: leader changed', GrpcCode.Unavailable);
/** A write forwarded to a leader that died before answering: it may or may not have been applied. */
export const timeoutDueToLeaderFail = (): ServerError =>
  new ServerError('ERR_TIMEOUT_LEADER_FAIL', 'etcdserver: request timed out, possibly due to previous leader failure', GrpcCode.Unavailable);
export const notFound = (what: string): ServerError => new ServerError('ERR_NOT_FOUND', `${what} not found`, GrpcCode.NotFound);
export const badRequest = (message: string): ServerError => new ServerError('ERR_BAD_REQUEST', message, GrpcCode.InvalidArgument);
// etcd's rpctypes errors that only the gRPC API raises.
export const notLeader = (): ServerError => new ServerError('ERR_NOT_LEADER', 'etcdserver: not leader', GrpcCode.FailedPrecondition);
export const badLeaderTransferee = (): ServerError =>
  new ServerError('ERR_BAD_LEADER_TRANSFEREE', 'etcdserver: bad leader transferee', GrpcCode.FailedPrecondition);
export const leaderTransferTimeout = (): ServerError =>
  new ServerError('ERR_LEADER_TRANSFER_TIMEOUT', 'etcdserver: request timed out, leader transfer took too long', GrpcCode.Unavailable);
export const authNotEnabled = (): ServerError =>
  new ServerError('ERR_AUTH_NOT_ENABLED', 'etcdserver: authentication is not enabled', GrpcCode.FailedPrecondition);
export const unsupported = (what: string): ServerError => new ServerError('ERR_UNSUPPORTED', `qkv: ${what} is not supported`, GrpcCode.Unimplemented);
export const serverStopped = (): ServerError => new ServerError('ERR_SERVER_STOPPED', 'etcdserver: server stopped', GrpcCode.Unavailable);
/** An error another member answered (forwarded request): its gRPC code and message, unchanged. */
export const forwardedError = (code: GrpcCode, message: string): ServerError => new ServerError('ERR_FORWARDED', message, code);

/** Error code → (gRPC code, message as etcd's gRPC layer words it). */
const BY_CODE: Record<string, { grpc: GrpcCode; message?: string }> = {
  // mvcc: etcd's v3rpc prefixes these with "etcdserver: ".
  ERR_COMPACTED: { grpc: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision has been compacted' },
  ERR_FUTURE_REVISION: { grpc: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision is a future revision' },
  ERR_EMPTY_KEY: { grpc: GrpcCode.InvalidArgument },
  ERR_KEY_NOT_FOUND: { grpc: GrpcCode.InvalidArgument },
  ERR_VALUE_PROVIDED: { grpc: GrpcCode.InvalidArgument },
  ERR_LEASE_PROVIDED: { grpc: GrpcCode.InvalidArgument },
  ERR_DUPLICATE_KEY: { grpc: GrpcCode.InvalidArgument },
  ERR_TOO_MANY_OPS: { grpc: GrpcCode.InvalidArgument },
  ERR_INVALID_ARGUMENT: { grpc: GrpcCode.InvalidArgument },
  ERR_STORE_CLOSED: { grpc: GrpcCode.Unavailable, message: 'etcdserver: server stopped' },
  ERR_STORE_FAILED: { grpc: GrpcCode.Unavailable, message: 'etcdserver: server stopped' },
  ERR_CORRUPT: { grpc: GrpcCode.DataLoss },
  // alarms (etcd's capped and corrupt appliers)
  ERR_NO_SPACE: { grpc: GrpcCode.ResourceExhausted },
  ERR_CORRUPT_CLUSTER: { grpc: GrpcCode.DataLoss },
  // leases
  ERR_LEASE_NOT_FOUND: { grpc: GrpcCode.NotFound },
  ERR_LEASE_EXISTS: { grpc: GrpcCode.FailedPrecondition },
  ERR_LEASE_TTL_TOO_LARGE: { grpc: GrpcCode.OutOfRange },
  ERR_LEASE_NOT_PRIMARY: { grpc: GrpcCode.Unavailable, message: 'etcdserver: not leader' },
  // raft
  ERR_PROPOSAL_DROPPED: { grpc: GrpcCode.Unavailable, message: 'etcdserver: no leader' },
  ERR_READ_INDEX_DROPPED: { grpc: GrpcCode.Unavailable, message: 'etcdserver: no leader' },
  ERR_PROPOSAL_LOST: { grpc: GrpcCode.Unavailable, message: 'etcdserver: leader changed' },
  ERR_TOO_MANY_REQUESTS: { grpc: GrpcCode.ResourceExhausted },
  ERR_READ_TIMEOUT: { grpc: GrpcCode.Unavailable },
  ERR_PROPOSAL_TIMEOUT: { grpc: GrpcCode.Unavailable },
  ERR_STOPPED: { grpc: GrpcCode.Unavailable },
  // gateway
  ERR_INVALID_REQUEST: { grpc: GrpcCode.InvalidArgument },
  ERR_TOO_MANY_WATCHERS: { grpc: GrpcCode.ResourceExhausted },
  ERR_CONFIG: { grpc: GrpcCode.InvalidArgument },
};

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
  let grpc = GrpcCode.Unknown;
  let message = err instanceof Error ? err.message : String(err);
  if (err instanceof ServerError) {
    grpc = err.grpcCode;
  } else if (err instanceof CodedError) {
    const m = BY_CODE[err.code];
    if (m) {
      grpc = m.grpc;
      message = m.message ?? message;
    }
  }
  return { code: grpc, message };
}

/** Maps any error to the gateway's error response. Unknown errors are 500s with their message. */
export function toHttpError(err: unknown): HttpError {
  const { code, message } = toGrpcStatus(err);
  return { status: httpStatusOf(code), body: { error: message, message, code } };
}
