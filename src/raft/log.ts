/**
 * The Raft log as the core sees it: the latest snapshot, the entries after the compaction point
 * (stable and not yet stable), and the commit / apply / stable indexes.
 *
 * Entries live in memory, as in etcd-io/raft's MemoryStorage: the embedding code keeps the
 * durable copy (the WAL, wal.ts) and the application compacts the log after snapshots, which keeps
 * this bounded.
 */
import type { ConfState, Entry, Snapshot } from './types.js';
import { LogCompactedError, SnapshotOutOfDateError } from './errors.js';

/** Entry overhead counted toward message size limits besides the data bytes. */
const ENTRY_OVERHEAD = 16;

function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD;
}

export class RaftLog {
  /** Index of the entry just before entries[0] (the compaction point). */
  private offsetIndex = 0;
  /** Term of the entry at offsetIndex. */
  private offsetTerm = 0;
  private entries: Entry[] = [];
  /** Latest snapshot, sent to followers that are too far behind. */
  private snap: Snapshot | undefined;
  /** A snapshot received from the leader that the embedder has not yet persisted. */
  unstableSnapshot: Snapshot | undefined;

  committed = 0;
  applied = 0;
  /** Committed entries up to here were handed out in a Ready and are being applied. */
  applying = 0;
  /** Entries up to here are durable. */
  stabled = 0;

  /** Builds the log from what stable storage holds. Entries covered by the snapshot are dropped. */
  static fromStorage(snapshot: Snapshot | undefined, entries: Entry[], commit: number, applied: number): RaftLog {
    const log = new RaftLog();
    if (snapshot) {
      log.snap = snapshot;
      log.offsetIndex = snapshot.metadata.index;
      log.offsetTerm = snapshot.metadata.term;
    }
    let expected = log.offsetIndex + 1;
    for (const e of entries) {
      if (e.index <= log.offsetIndex) continue;
      if (e.index !== expected) throw new Error(`raft log: stored entries not contiguous at ${e.index}, expected ${expected}`);
      log.entries.push(e);
      expected++;
    }
    log.stabled = log.lastIndex();
    log.committed = Math.max(commit, log.offsetIndex);
    if (log.committed > log.lastIndex()) throw new Error(`raft log: commit ${commit} beyond last index ${log.lastIndex()}`);
    log.applied = Math.max(Math.min(applied, log.committed), log.offsetIndex);
    log.applying = log.applied;
    return log;
  }

  firstIndex(): number {
    return this.offsetIndex + 1;
  }

  lastIndex(): number {
    return this.offsetIndex + this.entries.length;
  }

  /** Term of the entry at `index`, or undefined if it was compacted or is beyond the log. */
  term(index: number): number | undefined {
    if (index === this.offsetIndex) return this.offsetTerm;
    if (index < this.offsetIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offsetIndex - 1]!.term;
  }

  lastTerm(): number {
    return this.term(this.lastIndex())!;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entry at `index` (must be in the log). */
  entry(index: number): Entry {
    const e = this.entries[index - this.offsetIndex - 1];
    if (!e) throw new LogCompactedError(index);
    return e;
  }

  /**
   * Entries in [lo, hi), at most `maxBytes` of them (but at least one). Throws LogCompactedError
   * if lo was compacted.
   */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo <= this.offsetIndex) throw new LogCompactedError(lo);
    hi = Math.min(hi, this.lastIndex() + 1);
    if (lo >= hi) return [];
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entries[i - this.offsetIndex - 1]!;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * The index of the first entry in `ents` that conflicts with the log (same index, other term)
   * or is new; 0 if every entry is already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      const t = this.term(e.index);
      if (t === undefined && e.index <= this.offsetIndex) continue; // compacted: committed, so it matches
      if (t !== e.term) return e.index;
    }
    return 0;
  }

  /**
   * Fast back-off (the Raft thesis's optimization): the largest index <= `index` whose term is
   * <= `term`. The follower returns it as a hint; the leader uses it to skip a whole term of
   * mismatching entries in one round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
      i--;
    }
  }

  /**
   * AppendEntries on a follower: if the entry at prevIndex has prevTerm, append `ents` (dropping
   * a conflicting suffix) and advance commit. Returns the last index now known to match the
   * leader, or undefined if the consistency check failed.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new Error(`raft log: entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(ents.slice(conflict - ents[0]!.index));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Appends entries, replacing any existing entry at or after the first one's index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) throw new Error(`raft log: append after ${after} is below committed ${this.committed}`);
    if (after > this.lastIndex()) throw new Error(`raft log: append after ${after} leaves a gap (last ${this.lastIndex()})`);
    this.entries.length = after - this.offsetIndex;
    for (const e of ents) this.entries.push(e);
    // The replaced suffix must be written again.
    this.stabled = Math.min(this.stabled, after);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) throw new Error(`raft log: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries not yet durable, to go into the next Ready. */
  unstableEntries(): Entry[] {
    if (this.stabled >= this.lastIndex()) return [];
    return this.entries.slice(this.stabled - this.offsetIndex);
  }

  /** Committed entries not yet handed to the application, up to `maxBytes`. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.unstableSnapshot) return [];
    const lo = Math.max(this.applying, this.offsetIndex) + 1;
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  hasNextCommittedEntries(): boolean {
    return !this.unstableSnapshot && this.committed > Math.max(this.applying, this.offsetIndex);
  }

  acceptApplying(index: number): void {
    this.applying = Math.max(this.applying, index);
  }

  appliedTo(index: number): void {
    if (index > this.committed) throw new Error(`raft log: applied ${index} beyond committed ${this.committed}`);
    this.applied = Math.max(this.applied, index);
    this.applying = Math.max(this.applying, this.applied);
  }

  /** The entries up to `index` are durable, unless the entry there was replaced meanwhile. */
  stableTo(index: number, term: number): void {
    if (this.term(index) === term) this.stabled = Math.max(this.stabled, index);
  }

  stableSnapTo(index: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.metadata.index === index) this.unstableSnapshot = undefined;
  }

  snapshot(): Snapshot | undefined {
    return this.snap;
  }

  /** A follower installs the leader's snapshot: the whole log is replaced by it. */
  restore(s: Snapshot): void {
    this.snap = s;
    this.unstableSnapshot = s;
    this.offsetIndex = s.metadata.index;
    this.offsetTerm = s.metadata.term;
    this.entries = [];
    this.committed = s.metadata.index;
    this.stabled = s.metadata.index;
  }

  /** The application took a snapshot of its state at `index` (which it has applied). */
  createSnapshot(index: number, data: Uint8Array, cs: ConfState): Snapshot {
    const current = this.snap?.metadata.index ?? 0;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    if (index > this.applied) throw new Error(`raft log: snapshot index ${index} beyond applied ${this.applied}`);
    const term = this.term(index);
    if (term === undefined) throw new LogCompactedError(index);
    this.snap = { metadata: { index, term, voters: [...cs.voters], learners: [...cs.learners] }, data };
    return this.snap;
  }

  /** Drops entries up to `index`, which must be covered by the snapshot. */
  compact(index: number): void {
    if (index <= this.offsetIndex) return;
    const snapIndex = this.snap?.metadata.index ?? 0;
    if (index > snapIndex) throw new Error(`raft log: compact ${index} beyond snapshot ${snapIndex}`);
    const term = this.term(index)!;
    this.entries = this.entries.slice(index - this.offsetIndex);
    this.offsetIndex = index;
    this.offsetTerm = term;
  }
}
