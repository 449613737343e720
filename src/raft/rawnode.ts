/**
 * RawNode: the embedding interface of the Raft core, in the style of etcd-io/raft.
 *
 * Drive it with tick(), step(), propose() and readIndex(); when hasReady(), take ready(),
 * persist its hardState, entries and snapshot (fsync'd if mustSync), then send its messages,
 * apply its committed entries, and call advance(). Only one Ready is outstanding at a time; step() and
 * propose() may be called while it is being persisted.
 */
import {
  EntryType,
  MessageType,
  NONE,
  StateRole,
  type Config,
  type ConfChange,
  type ConfState,
  type Message,
  type NodeId,
  type PersistentState,
  type Ready,
  type Snapshot,
  type SoftState,
  type HardState,
} from './types.js';
import { RaftConfigError } from './errors.js';
import { Raft, message } from './raft.js';
import type { ProgressState } from './tracker.js';
import { decodeConfChange, encodeConfChange } from './confchange.js';

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  role: StateRole;
  leader: NodeId;
  /** The configuration: voters and learners, each sorted. */
  config: ConfState;
  /** Leader only: each voter's matched index (the same as progress[id].match). */
  match?: Record<NodeId, number>;
  /** Leader only: the replication progress of each voter, itself included (etcd-io/raft's Status.Progress). */
  progress?: Record<NodeId, ProgressStatus>;
}

/** What the leader knows of one voter's log, as etcd-io/raft's Status reports a Progress. */
export interface ProgressStatus {
  /** probe (one append at a time until the logs' match is found), replicate (pipelined), or snapshot. */
  state: ProgressState;
  /** Highest index known to be replicated on the voter. */
  match: number;
  /** Index of the next entry to send it. */
  next: number;
  /** Appends in flight (replicate state), bounded by maxInflightMsgs. */
  inflight: number;
  /** Heard from since the last CheckQuorum round. */
  recentActive: boolean;
  /** Probe state: an append was sent and its answer is awaited. */
  probeSent: boolean;
  /** Snapshot state: index of the snapshot being sent (0 otherwise). */
  pendingSnapshot: number;
}

const LOCAL_MESSAGES = new Set<MessageType>([MessageType.Hup, MessageType.Beat, MessageType.CheckQuorum]);

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * Whether a Ready must be fsync'd before its messages go out, as etcd-io/raft's MustSync decides:
 * the state every server keeps on stable storage before answering an RPC (Raft figure 2) is the
 * current term, the vote and the log; so new entries (or a snapshot, which replaces the log), or a
 * change of term or vote. A change of the commit index alone does not need a sync.
 */
export function mustSync(hardState: HardState, prevHardState: HardState, entryCount: number, hasSnapshot: boolean): boolean {
  return entryCount > 0 || hasSnapshot || hardState.term !== prevHardState.term || hardState.vote !== prevHardState.vote;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private outstanding = false;

  constructor(config: Config, persisted: PersistentState) {
    if (config.applied > persisted.hardState.commit && config.applied > (persisted.snapshot?.metadata.index ?? 0)) {
      throw new RaftConfigError(`applied index ${config.applied} is beyond the stored commit index ${persisted.hardState.commit}`);
    }
    this.raft = new Raft(config, persisted);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = { ...persisted.hardState };
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** The current term, as status() has it, without building a Status (every response header carries it). */
  get term(): number {
    return this.raft.term;
  }

  /** The applied index, as status() has it (checked after every Ready: no Status built for it). */
  get applied(): number {
    return this.raft.log.applied;
  }

  /** The commit index, as status() has it. */
  get commit(): number {
    return this.raft.log.committed;
  }

  /** Whether `id` is a voter of the current configuration (status().config.voters, without copying it). */
  isVoter(id: NodeId): boolean {
    return this.raft.tracker.isVoter(id);
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.step(message({ type: MessageType.Hup, from: this.raft.id }));
  }

  /** Delivers a message from the network. Local-only message types are ignored. */
  step(m: Message): void {
    if (LOCAL_MESSAGES.has(m.type)) return;
    if (m.from === NONE || m.from === this.raft.id) return;
    // Only forwarded reads and proposals travel without a term; anything else without one is not from a peer.
    if (m.term === 0 && m.type !== MessageType.ReadIndex && m.type !== MessageType.Prop) return;
    // A proposal with a term is not a forwarded one (Raft never sends those): ignore it.
    if (m.type === MessageType.Prop && m.term !== 0) return;
    this.raft.step(m);
  }

  /** Appends a proposal (leader only); it is replicated with the next Ready's messages. */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose(data);
  }

  /**
   * Appends a configuration change (leader only; see Raft.proposeConfChange for when it is
   * refused). It takes effect on each member when the application, applying its committed
   * entry, calls applyConfChange.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.raft.proposeConfChange(cc, encodeConfChange(cc));
  }

  /**
   * The application applied a committed EntryConfChange (in log order, as every other entry):
   * the configuration changes now. Returns the new configuration (etcd-io/raft's ConfState).
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Sends a proposal to the leader (on the leader: appends it); see Raft.forwardProposal. */
  forwardProposal(data: Uint8Array): { index: number; term: number } | undefined {
    return this.raft.forwardProposal(data);
  }

  /** Requests a linearizable read point; the answer arrives as a ReadState with the same context. */
  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  /** Asks the leader (this node, or forwarded to it) to hand leadership to `to`. */
  transferLeadership(to: NodeId): void {
    this.raft.step(message({ type: MessageType.TransferLeader, from: to, to: this.raft.id }));
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    r.flushBroadcast();
    if (!sameSoftState(r.softState(), this.prevSoftState)) return true;
    if (!sameHardState(r.hardState(), this.prevHardState)) return true;
    if (r.log.unstableSnapshot) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.stabled < r.log.lastIndex()) return true;
    return r.log.hasNextCommittedEntries();
  }

  ready(): Ready {
    if (this.outstanding) throw new Error('raft: ready() called before advance() of the previous Ready');
    const r = this.raft;
    r.flushBroadcast();
    const rd: Ready = {
      entries: r.log.unstableEntries(),
      committedEntries: r.log.nextCommittedEntries(r.config.maxCommittedSizePerReady),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    const soft = r.softState();
    if (!sameSoftState(soft, this.prevSoftState)) {
      rd.softState = soft;
      this.prevSoftState = soft;
    }
    if (r.log.unstableSnapshot) rd.snapshot = r.log.unstableSnapshot;
    // Against the hard state of the previous Ready: every one whose term or vote changed was synced.
    const hard = r.hardState();
    rd.mustSync = mustSync(hard, this.prevHardState, rd.entries.length, rd.snapshot !== undefined);
    if (!sameHardState(hard, this.prevHardState)) {
      rd.hardState = hard;
      this.prevHardState = hard;
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) r.log.acceptApplying(lastCommitted.index);
    // The conf changes the application will apply (one it cannot decode is skipped by both).
    for (const e of rd.committedEntries) if (e.type === EntryType.ConfChange && decodeConfChange(e.data)) r.confChangesApplying.push(e.index);
    r.msgs = [];
    r.readStates = [];
    this.outstanding = true;
    return rd;
  }

  /** The Ready was persisted, its messages sent, its committed entries applied. */
  advance(rd: Ready): void {
    const log = this.raft.log;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      log.appliedTo(rd.snapshot.metadata.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) log.stableTo(lastEntry.index, lastEntry.term);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) log.appliedTo(lastCommitted.index);
    this.outstanding = false;
  }

  /** Records a snapshot of the application's state at `index` (already applied). */
  createSnapshot(index: number, data: Uint8Array): Snapshot {
    // The configuration as of the last applied conf change: the application applies them in
    // log order, so at its applied index (the snapshot's) that is the current one.
    return this.raft.log.createSnapshot(index, data, this.raft.confState());
  }

  /** Drops log entries up to `index` from memory; `index` must be covered by the snapshot. */
  compactLog(index: number): void {
    this.raft.log.compact(index);
  }

  status(): Status {
    const r = this.raft;
    const st: Status = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      role: r.role,
      leader: r.lead,
      config: r.confState(),
    };
    if (r.role === StateRole.Leader) {
      st.match = {};
      st.progress = {};
      for (const [id, pr] of r.tracker.progress) {
        st.match[id] = pr.match;
        st.progress[id] = {
          state: pr.state,
          match: pr.match,
          next: pr.next,
          inflight: pr.inflights.count,
          recentActive: pr.recentActive,
          probeSent: pr.probeSent,
          pendingSnapshot: pr.pendingSnapshot,
        };
      }
    }
    return st;
  }
}
