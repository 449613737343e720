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
