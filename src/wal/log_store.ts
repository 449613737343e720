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

export class LogStoreError extends RaftError {
  constructor(code: string, message: string) {
    super(code, message);
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
    if (e.index !== start + i) throw new LogStoreError('ERR_LOG_GAP', `raft log store: entries not contiguous at ${e.index}`);
  });
  if (start > last + 1) throw new LogStoreError('ERR_LOG_GAP', `raft log store: entry ${start} would leave a gap after ${last}`);
  if (start < first && start <= last) {
    throw new LogStoreError('ERR_LOG_GAP', `raft log store: entry ${start} is before the first stored entry ${first}`);
  }
}

/** What RaftNode needs from stable storage. */
export interface LogStore {
  firstIndex(): number;
  lastIndex(): number;
  /** Everything a restarting node needs. */
  load(): Promise<PersistentState>;
  /** Writes one Ready's persistent part (all of it or nothing); durable before it resolves unless `mustSync` is false. */
  save(update: LogStoreUpdate): Promise<void>;
  /** Stores the application's snapshot and drops entries up to `compactIndex` (<= snapshot index). */
  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void>;
  close(): Promise<void>;
}
