/** Errors raised by the Raft core. Each kind has a class, a stable code and its gRPC code (src/errors.ts). */
import { CodedError, EtcdMessage, GrpcCode } from '../errors.js';

export abstract class RaftError extends CodedError {}

/** A proposal was not accepted: this node is not the leader, or a leadership transfer is under way. */
export class ProposalDroppedError extends RaftError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  static override readonly wireMessage = EtcdMessage.noLeader;
  constructor(reason: string) {
    super('ERR_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`);
  }
}

/** The requested index was compacted away from the log. */
export class LogCompactedError extends RaftError {
  constructor(index: number) {
    super('ERR_LOG_COMPACTED', `requested index ${index} is unavailable due to compaction`);
  }
}

/** A snapshot older than the one already held. */
export class SnapshotOutOfDateError extends RaftError {
  constructor(index: number, current: number) {
    super('ERR_SNAPSHOT_OUT_OF_DATE', `snapshot at ${index} is older than the current snapshot at ${current}`);
  }
}

/** A misconfiguration of the node. */
export class RaftConfigError extends RaftError {
  constructor(message: string) {
    super('ERR_RAFT_CONFIG', message);
  }
}

/** A ReadIndex request could not be started: no leader is known, or the request is malformed. */
export class ReadIndexDroppedError extends RaftError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  static override readonly wireMessage = EtcdMessage.noLeader;
  constructor(reason: string) {
    super('ERR_READ_INDEX_DROPPED', `raft read index dropped: ${reason}`);
  }
}
