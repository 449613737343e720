/**
 * Errors of the MVCC store. One class per kind, each with a stable `code`, etcd's message as
 * `message`, and its gRPC code (and wire message, where etcd's gRPC layer words it otherwise) as
 * static members read by the one mapping in src/server/errors.ts. The lease errors the store
 * raises are src/lease's.
 *
 * Errors caused by a request (bad arguments, compacted revision, duplicate keys...) are
 * deterministic: applying the same entry on every replica yields the same error.
 */
import { CodedError, EtcdMessage, GrpcCode } from '../errors.js';

export abstract class MvccError extends CodedError {}

/** etcd's v3rpc prefixes the mvcc errors' texts with "etcdserver: ". */
export class CompactedError extends MvccError {
  static override readonly grpcCode = GrpcCode.OutOfRange;
  static override readonly wireMessage = `etcdserver: ${EtcdMessage.compacted}`;
  constructor() {
    super('ERR_COMPACTED', EtcdMessage.compacted);
  }
}

export class FutureRevisionError extends MvccError {
  static override readonly grpcCode = GrpcCode.OutOfRange;
  static override readonly wireMessage = `etcdserver: ${EtcdMessage.futureRevision}`;
  constructor() {
    super('ERR_FUTURE_REVISION', EtcdMessage.futureRevision);
  }
}

export class EmptyKeyError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_EMPTY_KEY', 'etcdserver: key is not provided');
  }
}

/** ignore_value / ignore_lease on a missing key; also etcd's answer to an empty RequestOp. */
export class KeyNotFoundError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_KEY_NOT_FOUND', 'etcdserver: key not found');
  }
}

export class ValueProvidedError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_VALUE_PROVIDED', 'etcdserver: value is provided');
  }
}

export class LeaseProvidedError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_LEASE_PROVIDED', 'etcdserver: lease is provided');
  }
}

export class DuplicateKeyError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_DUPLICATE_KEY', 'etcdserver: duplicate key given in txn request');
  }
}

export class TooManyOpsError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_TOO_MANY_OPS', 'etcdserver: too many operations in txn request');
  }
}

/**
 * An active NOSPACE alarm (etcd's applierV3Capped): puts, txns with puts and lease grants are
 * refused. Worded as etcd's gRPC layer words it (rpctypes.ErrGRPCNoSpace).
 */
export class NoSpaceError extends MvccError {
  static override readonly grpcCode = GrpcCode.ResourceExhausted;
  constructor() {
    super('ERR_NO_SPACE', 'etcdserver: mvcc: database space exceeded');
  }
}

/**
 * An active CORRUPT alarm (etcd's applierV3Corrupt): every KV and lease request applied through
 * Raft is refused. Not CorruptError, which is about this store's own data.
 */
export class ClusterCorruptError extends MvccError {
  static override readonly grpcCode = GrpcCode.DataLoss;
  constructor() {
    super('ERR_CORRUPT_CLUSTER', 'etcdserver: corrupt cluster');
  }
}

/** A malformed request (wrong field types, non-integer revision, unknown enum...). */
export class InvalidArgumentError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor(detail: string) {
    super('ERR_INVALID_ARGUMENT', `mvcc: invalid argument: ${detail}`);
  }
}

export class StoreClosedError extends MvccError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  static override readonly wireMessage = EtcdMessage.serverStopped;
  constructor() {
    super('ERR_STORE_CLOSED', 'mvcc: store is closed');
  }
}

/**
 * A batch's LevelDB write failed after its effects were made visible: the store can no longer
 * tell what it holds, so it refuses every read and write until it is reopened (Raft replays).
 */
export class StoreFailedError extends MvccError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  static override readonly wireMessage = EtcdMessage.serverStopped;
  constructor(cause: Error) {
    super('ERR_STORE_FAILED', `mvcc: store failed: ${cause.message}`);
  }
}

/** On-disk data or a snapshot stream that does not have the expected shape. */
export class CorruptError extends MvccError {
  static override readonly grpcCode = GrpcCode.DataLoss;
  constructor(detail: string) {
    super('ERR_CORRUPT', `mvcc: corrupt data: ${detail}`);
  }
}

/**
 * A file of the store's LevelDB fails its check at open (verify.ts): a bad checksum, a missing or
 * truncated table. The member moves the store aside and recovers it from a peer.
 */
export class StoreFileCorruptError extends MvccError {
  static override readonly grpcCode = GrpcCode.DataLoss;
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly detail: string,
  ) {
    super('ERR_STORE_FILE_CORRUPT', `mvcc: corrupt store file ${file} at byte ${offset}: ${detail}`);
  }
}

// ---- authentication and permissions (etcd's auth errors as rpctypes words them). Raised where
// etcd raises them: at apply (the entry carries its caller, so every member answers alike), or on
// the member that receives the request (tokens, passwords, reads).

/** No caller where one is needed: auth is enabled and the request came without a token. */
export class AuthUserEmptyError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_AUTH_USER_EMPTY', 'etcdserver: user name is empty');
  }
}

/** Authenticate with a wrong password or an unknown (or empty) user name: the two are not told apart. */
export class AuthFailedError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_AUTH_FAILED', 'etcdserver: authentication failed, invalid user ID or password');
  }
}

/** Authenticate with a password for a user added with no_password (etcd leaves auth.ErrNoPasswordUser unmapped: Unknown). */
export class NoPasswordUserError extends MvccError {
  constructor() {
    super('ERR_AUTH_NO_PASSWORD_USER', 'auth: authentication failed, password was given for no password user');
  }
}

export class PermissionDeniedError extends MvccError {
  static override readonly grpcCode = GrpcCode.PermissionDenied;
  constructor() {
    super('ERR_PERMISSION_DENIED', 'etcdserver: permission denied');
  }
}

/**
 * A Maintenance call (Hash, HashKV, Defragment, Snapshot, MoveLeader) by a user without the root
 * role: etcd 3.4's maintenance server returns the auth store's error unmapped (Unknown, "auth: ").
 */
export class AdminPermissionDeniedError extends MvccError {
  constructor() {
    super('ERR_ADMIN_PERMISSION_DENIED', 'auth: permission denied');
  }
}

/** The same Maintenance calls without a token: unmapped too. */
export class AdminUserEmptyError extends MvccError {
  constructor() {
    super('ERR_ADMIN_USER_EMPTY', 'auth: user name is empty');
  }
}

/** A token this member does not know (never issued, expired, its user deleted or its password changed, auth disabled since). */
export class InvalidAuthTokenError extends MvccError {
  static override readonly grpcCode = GrpcCode.Unauthenticated;
  constructor() {
    super('ERR_INVALID_AUTH_TOKEN', 'etcdserver: invalid auth token');
  }
}

/** The entry was checked against an older auth state than the one it is applied to (etcd's ErrAuthOldRevision). */
export class AuthOldRevisionError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_AUTH_OLD_REVISION', 'etcdserver: revision of auth store is old');
  }
}

export class RootUserNotExistError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_ROOT_USER_NOT_EXIST', 'etcdserver: root user does not exist');
  }
}

export class RootRoleNotExistError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_ROOT_ROLE_NOT_EXIST', 'etcdserver: root user does not have root role');
  }
}

export class UserAlreadyExistError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_USER_ALREADY_EXIST', 'etcdserver: user name already exists');
  }
}

export class UserNotFoundError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_USER_NOT_FOUND', 'etcdserver: user name not found');
  }
}

export class RoleAlreadyExistError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_ROLE_ALREADY_EXIST', 'etcdserver: role name already exists');
  }
}

export class RoleNotFoundError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_ROLE_NOT_FOUND', 'etcdserver: role name not found');
  }
}

export class RoleEmptyError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_ROLE_EMPTY', 'etcdserver: role name is empty');
  }
}

export class RoleNotGrantedError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_ROLE_NOT_GRANTED', 'etcdserver: role is not granted to the user');
  }
}

export class PermissionNotGrantedError extends MvccError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor() {
    super('ERR_PERMISSION_NOT_GRANTED', 'etcdserver: permission is not granted to the role');
  }
}

/** Deleting the root user or role, or revoking root's root role, while auth is enabled. */
export class InvalidAuthManagementError extends MvccError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('ERR_INVALID_AUTH_MGMT', 'etcdserver: invalid auth management');
  }
}
