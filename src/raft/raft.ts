/**
 * The Raft protocol state machine: roles, terms, votes, replication, commit, ReadIndex,
 * snapshots and leadership transfer. Deterministic: no clock (tick() drives time), no I/O
 * (messages are queued in `msgs`), randomness only through Config.random.
 */
import {
  ConfChangeType,
  EntryType,
  MessageType,
  NONE,
  StateRole,
  type Config,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type PersistentState,
  type ReadState,
  type Snapshot,
  type SoftState,
} from './types.js';
import { ProposalDroppedError, RaftConfigError, ReadIndexDroppedError } from './errors.js';
import { RaftLog } from './log.js';
import { Progress, ProgressState, ProgressTracker } from './tracker.js';
import { ReadOnly, type ReadIndexStatus } from './read_only.js';
import { VoteResult } from './quorum.js';
import { applyToConfState, confChangeProblem, decodeConfChange } from './confchange.js';

/** Context of a vote request that comes from a leadership transfer: it overrides leader stickiness. */
const CAMPAIGN_TRANSFER = new Uint8Array([0x74]); // 't'
/** Bound on read requests waiting for a heartbeat round or for the leader's first commit. */
const MAX_PENDING_READS = 4096;

enum CampaignType {
  PreElection,
  Election,
  Transfer,
}

const EMPTY = new Uint8Array(0);

/** The parts in one new array (the core imports nothing from Node, so no Buffer.concat). */
function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function isTransferCampaign(m: Message): boolean {
  return m.context !== undefined && m.context.length === 1 && m.context[0] === CAMPAIGN_TRANSFER[0];
}

/** A message with every field defaulted. */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

interface PendingSnapshotTransfer {
  metadata: Snapshot['metadata'];
  parts: Uint8Array[];
  received: number;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = StateRole.Follower;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  private readOnly: ReadOnly;
  /** Messages to send after the next Ready is persisted. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  /** Ticks since the last election timeout reset (follower/candidate) or CheckQuorum (leader). */
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Target of an ongoing leadership transfer, or NONE. */
  leadTransferee: NodeId = NONE;
  /** Reads that arrived before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];
  /** Proposals were appended since the last broadcast; RawNode flushes them in one batch. */
  needsBroadcast = false;
  /** A snapshot being received chunk by chunk from the leader. */
  private incomingSnapshot: PendingSnapshotTransfer | undefined;
  /**
   * Indexes of the conf change entries handed out in a Ready (as committed entries) that the
   * application has not yet applied with applyConfChange, in log order.
   */
  readonly confChangesApplying: number[] = [];
  /** How many of the first confChangesApplying a restored snapshot already covers: applying them changes nothing. */
  private confChangesSuperseded = 0;
  /**
   * Leader: index of its own removal, appended and not yet applied (0: none). Until it applies it
   * (and steps down), it takes no other proposal, so that the voters left, which committed the
   * removal, hold its whole log and can elect one of them (with its vote, if they need it).
   */
  private selfRemovalIndex = 0;

  constructor(
    readonly config: Config,
    persisted: PersistentState,
  ) {
    if (config.id === NONE) throw new RaftConfigError('id must not be 0');
    if (config.heartbeatTick <= 0) throw new RaftConfigError('heartbeatTick must be greater than 0');
    if (config.electionTick <= config.heartbeatTick) throw new RaftConfigError('electionTick must be greater than heartbeatTick');
    if (config.maxInflightMsgs <= 0) throw new RaftConfigError('maxInflightMsgs must be greater than 0');
    if (config.maxSnapshotChunkBytes <= 0) throw new RaftConfigError('maxSnapshotChunkBytes must be greater than 0');
    this.id = config.id;
    this.electionTimeout = config.electionTick;
    this.heartbeatTimeout = config.heartbeatTick;
    const voters = persisted.snapshot ? persisted.snapshot.metadata.voters : config.peers;
    if (voters.length === 0) throw new RaftConfigError('no voters: peers must list the members');
    this.tracker = new ProgressTracker(
      [...voters].sort((a, b) => a - b),
      config.maxInflightMsgs,
    );
    this.tracker.learners = [...(persisted.snapshot?.metadata.learners ?? [])].sort((a, b) => a - b);
    this.readOnly = new ReadOnly(MAX_PENDING_READS);
    const hs = persisted.hardState;
    this.log = RaftLog.fromStorage(persisted.snapshot, persisted.entries, hs.commit, config.applied);
    // The configuration at the applied index: the snapshot's, then the conf changes applied after it.
    // Those after the applied index come out again as committed entries, for the application to apply.
    for (const e of this.log.slice(this.log.firstIndex(), this.log.applied + 1)) {
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      if (cc) this.setConfState(applyToConfState(this.confState(), cc));
    }
    this.becomeFollower(hs.term, NONE);
    this.vote = hs.vote;
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private promotable(): boolean {
    return this.tracker.isVoter(this.id) && !this.log.unstableSnapshot;
  }

  // ---- sending -------------------------------------------------------------------------

  private send(m: Message): void {
    // A forwarded request keeps its origin (the reader, or the transferee).
    if (m.from === NONE) m.from = this.id;
    const carriesOwnTerm =
      m.type === MessageType.Vote || m.type === MessageType.VoteResp || m.type === MessageType.PreVote || m.type === MessageType.PreVoteResp;
    if (carriesOwnTerm) {
      if (m.term === 0) throw new Error(`raft: ${m.type} must carry a term`);
    } else if (m.type !== MessageType.ReadIndex && m.type !== MessageType.Prop) {
      // A forwarded ReadIndex or proposal keeps term 0: the leader treats it as a local request.
      m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends an append to `to` if it is not paused. Returns whether a message went out. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) {
      this.sendSnapshot(to, pr);
      return false;
    }
    const entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.config.maxSizePerMsg);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send(message({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed }));
    if (entries.length > 0 && pr.state === ProgressState.Replicate) {
      const last = entries[entries.length - 1]!.index;
      pr.optimisticUpdate(last);
      pr.inflights.add(last);
    }
    if (pr.state === ProgressState.Probe) pr.probeSent = true;
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Switches `to` to snapshot state and sends the first chunk of the latest snapshot. */
  private sendSnapshot(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot();
    if (!snap) throw new Error('raft: follower needs a snapshot but none exists');
    pr.becomeSnapshot(snap.metadata.index);
    this.sendSnapshotChunk(to, pr);
  }

  /** Sends the chunk of the pending snapshot starting at the follower's acknowledged offset. */
  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot();
    if (!snap || snap.metadata.index !== pr.pendingSnapshot) {
      // A newer snapshot replaced the one being sent: start over with it.
      if (!snap) return;
      pr.becomeSnapshot(snap.metadata.index);
    }
    const current = this.log.snapshot()!;
    const total = current.data.byteLength;
    const offset = Math.min(pr.snapshotOffset, total);
    const end = Math.min(total, offset + this.config.maxSnapshotChunkBytes);
    this.send(
      message({
        type: MessageType.Snap,
        to,
        snapshot: {
          metadata: current.metadata,
          offset,
          totalBytes: total,
          data: current.data.subarray(offset, end),
          done: end >= total,
        },
      }),
    );
  }

  private bcastAppend(): void {
    for (const id of this.tracker.members()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context?: Uint8Array): void {
    const ctx = context ?? this.readOnly.lastPendingContext();
    for (const id of this.tracker.members()) {
      if (id === this.id) continue;
      const pr = this.tracker.progress.get(id)!;
      // Never tell a follower to commit past what it is known to have: its log may differ beyond.
      const commit = Math.min(pr.match, this.log.committed);
      this.send(message({ type: MessageType.Heartbeat, to: id, commit, ...(ctx ? { context: ctx } : {}) }));
    }
  }

  // ---- role changes --------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.tracker.resetVotes();
    this.tracker.reset(this.log.lastIndex(), this.id);
    this.pendingReadIndexMessages = [];
    this.readOnly = new ReadOnly(MAX_PENDING_READS);
    this.needsBroadcast = false;
    this.selfRemovalIndex = 0;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.config.random(this.electionTimeout);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = StateRole.Follower;
  }

  private becomePreCandidate(): void {
    if (this.role === StateRole.Leader) throw new Error('raft: leader cannot become pre-candidate');
    // PreVote changes neither term nor vote: a node that cannot win does not disrupt anyone.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.role = StateRole.PreCandidate;
  }

  private becomeCandidate(): void {
    if (this.role === StateRole.Leader) throw new Error('raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
  }

  private becomeLeader(): void {
    if (this.role === StateRole.Follower) throw new Error('raft: follower cannot become leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = StateRole.Leader;
    const self = this.tracker.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    this.selfRemovalIndex = this.findSelfRemoval();
    // An empty entry of the new term: committing it commits everything before it (§5.4.2),
    // and lets ReadIndex know the commit index is current.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]);
  }

  /** Appends entries to the leader's log, assigning term and index. Returns the last index. */
  private appendEntries(ents: Entry[]): number {
    let index = this.log.lastIndex();
    for (const e of ents) {
      e.term = this.term;
      e.index = ++index;
    }
    this.log.append(ents);
    this.tracker.progress.get(this.id)!.maybeUpdate(this.log.lastIndex());
    this.maybeCommit();
    return this.log.lastIndex();
  }

  /** Advances commit to what a quorum has matched, counting only entries of the current term (§5.4.2). */
  private maybeCommit(): boolean {
    const index = this.tracker.committed();
    if (index <= this.log.committed) return false;
    if (this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    return true;
  }

  // ---- elections -----------------------------------------------------------------------

  private hup(type: CampaignType): void {
    if (this.role === StateRole.Leader) return;
    if (!this.promotable()) return;
    this.campaign(type);
  }

  private campaign(type: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (type === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      // The term we would campaign in; our own term does not change until we win the pre-vote.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    this.tracker.recordVote(this.id, true);
    const result = this.tracker.voteResult();
    if (result === VoteResult.Won) {
      // A single-node cluster wins at once.
      if (type === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.send(
        message({
          type: voteType,
          to: id,
          term,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          ...(type === CampaignType.Transfer ? { context: CAMPAIGN_TRANSFER } : {}),
        }),
      );
    }
  }

  // ---- ticks ---------------------------------------------------------------------------

  tick(): void {
    if (this.role === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === StateRole.Leader && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.role !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---- local requests ------------------------------------------------------------------

  /** Appends a proposal on the leader. The broadcast is deferred so proposals batch. */
  propose(data: Uint8Array): { index: number; term: number } {
    if (this.role !== StateRole.Leader) throw new ProposalDroppedError(this.lead === NONE ? 'no leader' : 'not the leader');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('leadership transfer in progress');
    if (this.selfRemovalIndex !== 0) throw new ProposalDroppedError('the leader is being removed');
    const index = this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data }]);
    this.needsBroadcast = true;
    return { index, term: this.term };
  }

  /**
   * Appends a configuration change on the leader. Refused (ProposalDroppedError, as etcd drops
   * it) while another conf change is pending (appended but not yet applied: etcd's
   * pendingConfIndex), until this leader has committed an entry of its own term (the fix of
   * the single-server change bug: a new leader's no-op gives that), and when it would remove the
   * last voter or demote a voter.
   */
  proposeConfChange(cc: ConfChange, data: Uint8Array): { index: number; term: number } {
    if (this.role !== StateRole.Leader) throw new ProposalDroppedError(this.lead === NONE ? 'no leader' : 'not the leader');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('leadership transfer in progress');
    if (this.hasPendingConfChange()) throw new ProposalDroppedError('a configuration change is pending');
    if (!this.committedEntryInCurrentTerm()) throw new ProposalDroppedError("no entry of the leader's term committed yet");
    const problem = confChangeProblem(this.confState(), cc);
    if (problem) throw new ProposalDroppedError(problem);
    const index = this.appendEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data }]);
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.id) this.selfRemovalIndex = index;
    this.needsBroadcast = true;
    return { index, term: this.term };
  }

  /** The index of a removal of this node in the log that the application has not applied yet, or 0. */
  private findSelfRemoval(): number {
    const lo = Math.max(this.confChangesApplying[this.confChangesSuperseded] ?? this.log.applying + 1, this.log.firstIndex());
    for (const e of this.log.slice(lo, this.log.lastIndex() + 1)) {
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      if (cc?.type === ConfChangeType.RemoveNode && cc.nodeId === this.id) return e.index;
    }
    return 0;
  }

  /** A conf change in the log not yet applied by the application (handed out, or not yet committed). */
  private hasPendingConfChange(): boolean {
    if (this.confChangesApplying.length > this.confChangesSuperseded) return true;
    const from = Math.max(this.log.applying, this.log.firstIndex() - 1) + 1;
    return this.log.slice(from, this.log.lastIndex() + 1).some((e) => e.type === EntryType.ConfChange);
  }

  confState(): ConfState {
    return { voters: [...this.tracker.voters], learners: [...this.tracker.learners] };
  }

  /** The application applied the committed conf change entry `cc` (the next one handed out). */
  applyConfChange(cc: ConfChange): ConfState {
    if (this.confChangesApplying.length > 0) {
      this.confChangesApplying.shift();
      if (this.confChangesSuperseded > 0) {
        // A snapshot restored since this entry was handed out already holds its effect.
        this.confChangesSuperseded--;
        return this.confState();
      }
    }
    this.setConfState(applyToConfState(this.confState(), cc));
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.id && this.role !== StateRole.Follower) {
      // Removed: a leader steps down (the rest elect), a candidate gives up.
      this.becomeFollower(this.term, NONE);
    } else if (this.role === StateRole.Leader) {
      if (this.leadTransferee !== NONE && !this.tracker.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
      // A smaller quorum may commit more at once; new members get their first append.
      if (this.maybeCommit()) this.releasePendingReadIndexMessages();
      this.needsBroadcast = true;
    }
    return this.confState();
  }

  /** Sets the configuration; on a leader, progress for new members starts probing at lastIndex + 1. */
  private setConfState(cs: ConfState): void {
    this.tracker.voters = cs.voters;
    this.tracker.learners = cs.learners;
    const members = new Set(this.tracker.members());
    for (const id of [...this.tracker.progress.keys()]) if (!members.has(id)) this.tracker.progress.delete(id);
    if (this.role !== StateRole.Leader) return;
    for (const id of members) {
      if (this.tracker.progress.has(id)) continue;
      const pr = new Progress(this.log.lastIndex() + 1, this.tracker.maxInflight);
      // Not to be counted inactive before it had a chance to answer (as etcd).
      pr.recentActive = true;
      this.tracker.progress.set(id, pr);
    }
  }

  /**
   * Sends a proposal to the leader (etcd's MsgProp forwarding), for a follower; on the leader,
   * appends it and returns where. A follower learns nothing of its index: it recognizes its
   * entry when it applies it, or gives up after a timeout (the leader may drop it, e.g. during
   * a leadership transfer or a change of leader).
   */
  forwardProposal(data: Uint8Array): { index: number; term: number } | undefined {
    if (this.role === StateRole.Leader) return this.propose(data);
    if (this.lead === NONE) throw new ProposalDroppedError('no leader');
    this.send(message({ type: MessageType.Prop, to: this.lead, entries: [{ term: 0, index: 0, type: EntryType.Normal, data }] }));
    return undefined;
  }

  flushBroadcast(): void {
    if (!this.needsBroadcast) return;
    this.needsBroadcast = false;
    if (this.role === StateRole.Leader) this.bcastAppend();
  }

  readIndex(context: Uint8Array): void {
    if (context.byteLength === 0) throw new ReadIndexDroppedError('empty read context');
    this.step(message({ type: MessageType.ReadIndex, from: this.id, context }));
  }

  // ---- step ----------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // Local message, or a forwarded ReadIndex.
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // Leader stickiness with CheckQuorum: while we hear from a leader, we refuse to help
        // depose it, unless the leader itself asked for the election (transfer).
        const inLease = this.config.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (inLease && !isTransferCampaign(m)) return;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // Granted pre-votes carry the future term; our term changes only if we win.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.config.checkQuorum || this.config.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader that our pre-vote or stickiness keeps from learning the new term
        // would otherwise never step down: tell it our term.
        this.send(message({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(message({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.config.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // A learner or a removed node still answers (as etcd-io/raft's do): it may have not yet
        // applied its promotion, and a removed leader of two voters must let the other one win.
        // Only the candidate's own configuration counts its vote, and two configurations one
        // change apart always have overlapping majorities.
        const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === MessageType.PreVote && m.term > this.term);
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.send(message({ type: respType, to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        break;
    }

    switch (this.role) {
      case StateRole.Leader:
        this.stepLeader(m);
        return;
      case StateRole.Candidate:
      case StateRole.PreCandidate:
        this.stepCandidate(m);
        return;
      case StateRole.Follower:
        this.stepFollower(m);
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.tracker.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.ReadIndex:
        this.handleReadIndexOnLeader(m);
        return;
      default:
        break;
    }

    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.state === ProgressState.Snapshot) {
          // Retransmit the chunk after the last acknowledged one, in case it was lost.
          this.sendSnapshotChunk(m.from, pr);
        } else if (pr.match < this.log.lastIndex()) {
          this.sendAppend(m.from);
        }
        this.handleHeartbeatAckForReads(m);
        return;
      case MessageType.SnapResp:
        this.handleSnapshotResponse(m, pr);
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m, pr);
        return;
      case MessageType.Prop:
        // A follower's forwarded proposal; dropped (the proposer times out) during a transfer or the leader's removal.
        if (this.leadTransferee !== NONE || this.selfRemovalIndex !== 0) return;
        this.appendEntries(m.entries.map((e) => ({ term: 0, index: 0, type: EntryType.Normal, data: e.data })));
        this.needsBroadcast = true;
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIndex = m.rejectHint;
      if (m.logTerm > 0) nextProbeIndex = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbeIndex)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
      // The snapshot is installed: resume log replication after it.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Keep the pipeline full while the window allows.
    while (this.maybeSendAppend(m.from, false)) {
      /* fill the window */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send(message({ type: MessageType.TimeoutNow, to: m.from }));
    }
  }

  private handleSnapshotResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (pr.state !== ProgressState.Snapshot) return;
    const snap = this.log.snapshot();
    if (!snap || m.index !== pr.pendingSnapshot || snap.metadata.index !== pr.pendingSnapshot) {
      // The follower speaks of another snapshot than the one we are sending: start over.
      this.sendSnapshot(m.from, pr);
      return;
    }
    const acked = m.rejectHint;
    if (acked === pr.snapshotOffset) return; // a duplicate acknowledgement
    pr.snapshotOffset = acked;
    if (acked < snap.data.byteLength) this.sendSnapshotChunk(m.from, pr);
  }

  private handleTransferLeader(m: Message, pr: Progress): void {
    const transferee = m.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.leadTransferee = NONE;
    }
    if (transferee === this.id) return;
    // Only a voter can lead.
    if (!this.tracker.isVoter(transferee)) return;
    // The transfer must finish within an election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.send(message({ type: MessageType.TimeoutNow, to: transferee }));
    else this.sendAppend(transferee);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private handleReadIndexOnLeader(m: Message): void {
    // The leader alone is a quorum (a single voter): nobody else can have a newer commit index.
    if (this.tracker.hasQuorum(new Set([this.id]))) {
      this.answerRead({ index: this.log.committed, request: m, acks: new Set() });
      return;
    }
    // Until this leader commits an entry of its term, its commit index may lag the true one.
    if (!this.committedEntryInCurrentTerm()) {
      if (this.pendingReadIndexMessages.length < MAX_PENDING_READS) this.pendingReadIndexMessages.push(m);
      return;
    }
    this.startReadIndexRound(m);
  }

  private startReadIndexRound(m: Message): void {
    if (!this.readOnly.addRequest(this.log.committed, m)) return;
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeat(m.context);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.startReadIndexRound(m);
  }

  private handleHeartbeatAckForReads(m: Message): void {
    if (!m.context || m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks || !this.tracker.hasQuorum(acks)) return;
    for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs);
  }

  private answerRead(rs: ReadIndexStatus): void {
    const req = rs.request;
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: rs.index, context: req.context ?? EMPTY });
    } else {
      this.send(message({ type: MessageType.ReadIndexResp, to: req.from, index: rs.index, ...(req.context ? { context: req.context } : {}) }));
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.role === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        this.tracker.recordVote(m.from, !m.reject);
        const result = this.tracker.voteResult();
        if (result === VoteResult.Won) {
          if (this.role === StateRole.PreCandidate) {
            this.campaign(CampaignType.Election);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.TimeoutNow:
        // The leader chose us: campaign at once, skipping pre-vote, overriding stickiness.
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) {
          if (m.from === this.id) throw new ReadIndexDroppedError('no leader');
          return;
        }
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context ?? EMPTY });
        return;
      default:
        return;
    }
  }

  // ---- follower handlers ---------------------------------------------------------------

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Tell the leader where our logs may agree so it can skip a term's worth of entries at once.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(message({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
  }

  private handleHeartbeat(m: Message): void {
    if (m.commit <= this.log.lastIndex()) this.log.commitTo(m.commit);
    this.send(message({ type: MessageType.HeartbeatResp, to: m.from, ...(m.context ? { context: m.context } : {}) }));
  }

  private handleSnapshot(m: Message): void {
    const chunk = m.snapshot;
    if (!chunk) return;
    const meta = chunk.metadata;
    if (meta.index <= this.log.committed) {
      this.incomingSnapshot = undefined;
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const ack = (received: number): void => {
      this.send(message({ type: MessageType.SnapResp, to: m.from, index: meta.index, logTerm: meta.term, rejectHint: received }));
    };
    let incoming = this.incomingSnapshot;
    if (!incoming || incoming.metadata.index !== meta.index || incoming.metadata.term !== meta.term) {
      if (chunk.offset !== 0) {
        ack(0);
        return;
      }
      incoming = { metadata: meta, parts: [], received: 0 };
      this.incomingSnapshot = incoming;
    }
    if (chunk.offset !== incoming.received) {
      ack(incoming.received);
      return;
    }
    incoming.parts.push(chunk.data);
    incoming.received += chunk.data.byteLength;
    if (!chunk.done) {
      ack(incoming.received);
      return;
    }
    this.incomingSnapshot = undefined;
    if (this.restore({ metadata: meta, data: concatBytes(incoming.parts, incoming.received) })) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
    }
  }

  /** Installs a snapshot from the leader. Returns false if it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.log.committed) return false;
    if (this.role !== StateRole.Follower) {
      // Only a follower of this term's leader gets here; anything else is a bug.
      throw new Error('raft: non-follower attempted to restore a snapshot');
    }
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the entries: just fast-forward the commit index.
      this.log.commitTo(s.metadata.index);
      return false;
    }
    this.log.restore(s);
    // Conf changes handed out before the snapshot are in its configuration already.
    this.confChangesSuperseded = this.confChangesApplying.length;
    this.setConfState({
      voters: [...s.metadata.voters].sort((a, b) => a - b),
      learners: [...(s.metadata.learners ?? [])].sort((a, b) => a - b),
    });
    this.tracker.reset(this.log.lastIndex(), this.id);
    return true;
  }
}
