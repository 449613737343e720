/**
 * The leader's view of each follower's log: which entries it has matched, which to send next,
 * and how many AppendEntries messages are in flight (flow control).
 */
import type { NodeId } from './types.js';
import { committedIndex, hasQuorum, voteResult, type VoteResult } from './quorum.js';

export enum ProgressState {
  /** Leader does not know where the follower's log ends: one probe message at a time. */
  Probe = 'probe',
  /** Follower is known to match up to `match`: pipeline entries optimistically. */
  Replicate = 'replicate',
  /** Follower needs a snapshot: send its chunks, no entries until it is installed. */
  Snapshot = 'snapshot',
}

/**
 * A bounded window of in-flight AppendEntries, identified by the last index each one carries.
 * Freed in order as acknowledgements arrive.
 */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  constructor(readonly capacity: number) {}

  get count(): number {
    return this.lastIndexes.length;
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  add(lastIndex: number): void {
    if (this.full()) throw new Error('inflights: add on a full window');
    this.lastIndexes.push(lastIndex);
  }

  /** Frees every in-flight message whose last index is <= `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && this.lastIndexes[n]! <= index) n++;
    if (n > 0) this.lastIndexes.splice(0, n);
  }

  freeFirstOne(): void {
    this.lastIndexes.shift();
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Probe: a message was sent and we wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** In Snapshot: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** In Snapshot: bytes of the snapshot the follower has acknowledged. */
  snapshotOffset = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotOffset = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // The snapshot is installed (or abandoned): resume right after it.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an acknowledgement up to `index`. Returns false if it was stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** Pipelining: assume the entries up to `lastIndex` will be accepted. */
  optimisticUpdate(lastIndex: number): void {
    this.next = lastIndex + 1;
  }

  /**
   * The follower rejected an append whose previous index was `rejected`; `matchHint` is where
   * the logs may agree. Returns false if the rejection is stale (out of order).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold back appends to this follower for now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}

/**
 * The configuration (voters and learners, each sorted), the progress of every member, and the
 * votes of the current election. Every quorum (commit, votes, CheckQuorum, ReadIndex) counts the
 * voters only, through quorum.ts: learners are replicated to but never counted.
 */
export class ProgressTracker {
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  learners: NodeId[] = [];

  constructor(
    public voters: NodeId[],
    readonly maxInflight: number,
  ) {}

  /** Voters, then learners: everyone the leader replicates to. */
  members(): NodeId[] {
    return [...this.voters, ...this.learners];
  }

  isLearner(id: NodeId): boolean {
    return this.learners.includes(id);
  }

  /** Fresh progress for every member, as a new leader (or any role change) needs. */
  reset(lastIndex: number, selfId: NodeId): void {
    this.progress.clear();
    for (const id of this.members()) {
      const pr = new Progress(lastIndex + 1, this.maxInflight);
      if (id === selfId) pr.match = lastIndex;
      this.progress.set(id, pr);
    }
  }

  committed(): number {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  /** Whether a majority (counting the leader, which marks itself active) was heard from recently. */
  quorumActive(): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.progress) if (pr.recentActive) active.add(id);
    return hasQuorum(this.voters, active);
  }

  /** Whether `ids` include a majority of the voters (ReadIndex acknowledgements, say). */
  hasQuorum(ids: ReadonlySet<NodeId>): boolean {
    return hasQuorum(this.voters, ids);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  voteResult(): VoteResult {
    return voteResult(this.voters, this.votes);
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }
}
