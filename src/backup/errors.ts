/**
 * Errors of reading a backup made elsewhere (an etcd snapshot file, a bbolt database). Every one
 * is a refusal before anything is restored: the file is damaged or is not what it claims to be,
 * so DataLoss, as etcd answers a corrupt store.
 */
import { CodedError, GrpcCode } from '../errors.js';

/** The family of backup-reading errors, for a caller that refuses any of them alike. @public */
export abstract class BackupError extends CodedError {
  static override readonly grpcCode = GrpcCode.DataLoss;
}

/** The bytes are not a consistent bbolt database: a bad meta page, a page or offset out of range, a loop. */
export class BboltCorruptError extends BackupError {
  constructor(detail: string) {
    super('ERR_BBOLT_CORRUPT', `bbolt: ${detail}`);
  }
}

/** The snapshot file as a whole does not check out: no trailing sha256, a mismatching one, a truncated file. */
export class SnapshotIntegrityError extends BackupError {
  constructor(detail: string) {
    super('ERR_SNAPSHOT_INTEGRITY', `etcd snapshot: ${detail}`);
  }
}

/** A sound bbolt database whose contents are not etcd's: a bad revision key, a message that does not decode. */
export class SnapshotContentError extends BackupError {
  constructor(detail: string) {
    super('ERR_SNAPSHOT_CONTENT', `etcd snapshot: ${detail}`);
  }
}

/** A restore's data dir is there already: a restore builds a new member and never writes over one (etcd's text). */
export class RestoreTargetExistsError extends CodedError {
  static override readonly grpcCode = GrpcCode.FailedPrecondition;
  constructor(dataDir: string) {
    super('ERR_RESTORE_TARGET_EXISTS', `data-dir ${JSON.stringify(dataDir)} exists`);
  }
}
