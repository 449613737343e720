/**
 * The one base of qkv's errors, import-free (src/raft may import it): every kind is a class
 * with a stable `code`, a message worded as etcd words it, and, as static members, the gRPC
 * status code etcd answers it with and (where etcd's wire text differs from the message) its
 * wire message. src/server/errors.ts reads them to build gRPC statuses and HTTP responses;
 * docs/errors.md lists every class (test/errors.test.ts checks it).
 */

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

/**
 * etcd's texts (rpctypes, mvcc) that more than one error class says, as its message or its wire
 * message: each is written here once.
 */
export const EtcdMessage = {
  noLeader: 'etcdserver: no leader',
  notLeader: 'etcdserver: not leader',
  leaderChanged: 'etcdserver: leader changed',
  requestTimedOut: 'etcdserver: request timed out',
  serverStopped: 'etcdserver: server stopped',
  electionNotLeader: 'election: not leader',
  compacted: 'mvcc: required revision has been compacted',
  futureRevision: 'mvcc: required revision is a future revision',
} as const;

export abstract class CodedError extends Error {
  /** The gRPC status code of this kind (etcd's); a class that declares none is reported as Unknown. */
  static readonly grpcCode: GrpcCode = GrpcCode.Unknown;
  /** etcd's message on the wire, where it differs from the error's own message. */
  static readonly wireMessage: string | undefined = undefined;

  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }

  /** The gRPC status code this error is reported with: its class's. */
  get grpcCode(): GrpcCode {
    return (this.constructor as typeof CodedError).grpcCode;
  }

  /** The message this error is reported with: its class's wire message, or its own. */
  get wireMessage(): string {
    return (this.constructor as typeof CodedError).wireMessage ?? this.message;
  }
}

/** An internal invariant that does not hold: a bug of qkv, never the client's fault. */
export class InternalError extends CodedError {
  static override readonly grpcCode = GrpcCode.Internal;
  constructor(message: string) {
    super('ERR_INTERNAL', message);
  }
}
