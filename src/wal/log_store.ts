/**
 * The durable half of the Raft persistence contract: what RaftNode needs from stable storage.
 * The WAL (wal.ts) implements it.
 *
 * Every save() writes one Ready's hard state, entries and snapshot together (all or nothing)
 * and, unless `mustSync` is false, makes them durable before it resolves, so that the messages that
 * depend on them may be sent. Saves are serialized in call order.
 */
import type { Entry, HardState, PersistentState, Snapshot } from '../raft/types.js';
import { RaftError } from '../raft/errors.js';

/** Errors of the log store; one class per kind below. */
export abstract class LogStoreError extends RaftError {}

/** An append that would leave the stored entries non-contiguous. @public */
export class LogGapError extends LogStoreError {
  constructor(detail: string) {
    super('ERR_LOG_GAP', `raft log store: ${detail}`);
  }
}

/** A stored record that cannot be read back (anywhere but a torn tail). */
export class LogCorruptError extends LogStoreError {
  constructor(detail: string) {
    super('ERR_LOG_CORRUPT', `raft log store: ${detail}`);
  }
}

/** A compaction beyond the snapshot the log holds. */
export class LogCompactError extends LogStoreError {
  constructor(compactIndex: number, snapshotIndex: number) {
    super('ERR_LOG_COMPACT', `raft log store: compact index ${compactIndex} beyond snapshot ${snapshotIndex}`);
  }
}

/** A data directory of a layout this version no longer reads. */
export class LogUnsupportedError extends LogStoreError {
  constructor(dataDir: string) {
    super('ERR_LOG_UNSUPPORTED', `raft log store: ${dataDir} is a data directory of an earlier version (raft/), which is not supported`);
  }
}

export interface LogStoreUpdate {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /**
   * The Ready's mustSync: fdatasync before resolving (default true). When false (the hard state
   * moves only the commit index) the record is still written, so the next synced save makes it
   * durable too; a commit index lost in between is re-learned from the leader.
   */
  mustSync?: boolean;
}

/**
 * Throws ERR_LOG_GAP unless `entries` are contiguous and continue (or replace a suffix of) the
 * stored log [first, last]. Checked before anything is written: a refused save changes nothing.
 */
export function checkAppend(entries: readonly Entry[], first: number, last: number): void {
  const start = entries[0]!.index;
  entries.forEach((e, i) => {
    if (e.index !== start + i) throw new LogGapError(`entries not contiguous at ${e.index}`);
  });
  if (start > last + 1) throw new LogGapError(`entry ${start} would leave a gap after ${last}`);
  if (start < first && start <= last) {
    throw new LogGapError(`entry ${start} is before the first stored entry ${first}`);
  }
}

/** What RaftNode needs from stable storage. */
export interface LogStore {
  firstIndex(): number;
  lastIndex(): number;
  /** Everything a restarting node needs. */
  load(): Promise<PersistentState>;
  /**
   * Writes one Ready's persistent part (all of it or nothing); durable before it resolves unless
   * `mustSync` is false. Resolves with the log's fdatasync time in ms (etcd's WAL fsync
   * duration: the syscall alone), undefined when it did not sync.
   */
  save(update: LogStoreUpdate): Promise<number | undefined>;
  /** Stores the application's snapshot and drops entries up to `compactIndex` (<= snapshot index). */
  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void>;
  close(): Promise<void>;
}
