/**
 * RaftNode: drives the pure RawNode with real time, a durable log and the peer transport.
 *
 * The Ready loop is the only place that touches the core's output, in this order:
 *   1. persist hard state, entries and snapshot (LogStore.save: one WAL record, fdatasync'd
 *      when the Ready's mustSync says so);
 *   2. send the messages (they may depend on what was just made durable);
 *   3. restore a received snapshot (after every earlier apply has finished), and queue the
 *      committed entries on the apply pipeline;
 *   4. advance, and go on with the next Ready while the queued entries are applied.
 * Applying runs beside the next fsync, as etcd's apply goroutine does: committed entries are
 * durable on a quorum already, and the state machine stores its applied index with the data,
 * so a crash in between replays them. Proposals resolve only after their entry is applied, and
 * reads wait for the state machine's own applied index, so an acknowledged write is durable on
 * a quorum and visible to every read that starts after the acknowledgement.
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { RawNode, type Status } from '../raft/rawnode.js';
import { decodeConfChange, encodeConfChange } from '../raft/confchange.js';
import {
  DEFAULT_CONFIG,
  EntryType,
  StateRole,
  type Config,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Snapshot,
  type SoftState,
} from '../raft/types.js';
import { ProposalDroppedError, RaftConfigError, RaftError, SnapshotOutOfDateError } from '../raft/errors.js';
import { EtcdMessage, GrpcCode } from '../errors.js';
import type { LogStore } from '../wal/log_store.js';

const NO_OP = new Uint8Array(0);

/** What the Raft node feeds committed entries to. */
export interface StateMachine {
  /**
   * Last Raft index whose effects reads see. At start, the state machine resumes after it, so
   * then it must be durable; while running, the state machine may still be writing it.
   */
  appliedIndex(): number;
  /**
   * Applies committed entries in order; returns one result per entry (undefined for no-ops or
   * skipped entries) once reads see them. A conf change entry comes as an EntryConfChange whose
   * data is the change with the proposer's context (confchange.ts), after the core applied it.
   */
  apply(entries: Entry[]): Promise<unknown[]>;
  /** The whole state at the current applied index (durable by then), for a follower that is too far behind. */
  snapshot(): Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot from the leader. */
  restore(snapshot: Snapshot): Promise<void>;
}

interface Transport {
  send(msgs: Message[]): void;
}

/** The node's bounds and periods: each has a default (RAFT_NODE_DEFAULTS) and is resolved once, validated, at construction. */
export interface RaftNodeLimits {
  /** Take a Raft snapshot (and compact the log) every this many applied entries. */
  snapshotEvery: number;
  /** Entries kept in the log behind a snapshot, so slightly slow followers avoid a snapshot. */
  snapshotCatchUpEntries: number;
  /**
   * Also take a snapshot once this many bytes of entries were applied since the last one, and
   * keep at most about `snapshotCatchUpBytes` behind it: the core holds the log since its last
   * compaction in memory, so large entries (a txn of a hundred puts) must not make ten thousand
   * of them stay there.
   */
  snapshotEveryBytes: number;
  snapshotCatchUpBytes: number;
  /** Bound on proposals waiting to be applied. */
  maxPendingProposals: number;
  /** Bound on linearizable reads waiting for their ReadIndex and apply. */
  maxPendingReads: number;
  /** Bound on committed entries queued for apply; the Ready loop waits for apply beyond it. */
  maxPendingApply: number;
  /** A proposal forwarded to the leader that is not applied within this fails (ms). */
  proposalTimeoutMs: number;
}

export const RAFT_NODE_DEFAULTS: Readonly<RaftNodeLimits> = {
  snapshotEvery: 10_000,
  snapshotCatchUpEntries: 5_000,
  snapshotEveryBytes: 64 * 2 ** 20,
  snapshotCatchUpBytes: 16 * 2 ** 20,
  maxPendingProposals: 10_000,
  maxPendingReads: 10_000,
  maxPendingApply: 4096,
  proposalTimeoutMs: 10_000,
};

/** Limits that may be 0 (keep nothing behind a snapshot); every other one must be positive. */
const MAY_BE_ZERO: ReadonlySet<keyof RaftNodeLimits> = new Set(['snapshotCatchUpEntries', 'snapshotCatchUpBytes']);

export interface RaftNodeOptions extends Partial<RaftNodeLimits> {
  id: NodeId;
  peers: NodeId[];
  logStore: LogStore;
  stateMachine: StateMachine;
  transport: Transport;
  /** Milliseconds per Raft tick; heartbeats every heartbeatTick ticks, elections after electionTick. */
  tickMs: number;
  raft?: Partial<Omit<Config, 'id' | 'peers' | 'applied'>>;
}

export type ResolvedRaftNodeOptions = Omit<RaftNodeOptions, keyof RaftNodeLimits> & RaftNodeLimits;

/** Every limit given or defaulted, each an integer in range: the one place the node's defaults apply. */
export function resolveRaftNodeOptions(opts: RaftNodeOptions): ResolvedRaftNodeOptions {
  const resolved = { ...opts } as ResolvedRaftNodeOptions;
  for (const key of Object.keys(RAFT_NODE_DEFAULTS) as (keyof RaftNodeLimits)[]) {
    const v = opts[key] ?? RAFT_NODE_DEFAULTS[key];
    const min = MAY_BE_ZERO.has(key) ? 0 : 1;
    if (!Number.isSafeInteger(v) || v < min) throw new RaftConfigError(`raft node: ${key} must be an integer >= ${min}, got ${v}`);
    resolved[key] = v;
  }
  if (!Number.isFinite(opts.tickMs) || opts.tickMs <= 0) throw new RaftConfigError(`raft node: tickMs must be positive, got ${opts.tickMs}`);
  return resolved;
}

/**
 * Every proposal travels in an envelope naming its proposer and a sequence number, so that the
 * proposer recognizes its entry when it applies it, wherever the leader put it (a follower's
 * proposal is appended by the leader, which tells nobody the index).
 */
const ENVELOPE_TAG = 0xe1;
// The proposer is a member id (below 2^53, see member_id.ts) and the sequence a counter from the
// clock: both exact as doubles.
const ENVELOPE_BYTES = 1 + 8 + 8;

export function wrapProposal(proposer: NodeId, seq: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_BYTES + data.byteLength);
  out[0] = ENVELOPE_TAG;
  out.writeDoubleBE(proposer, 1);
  out.writeDoubleBE(seq, 9);
  out.set(data, ENVELOPE_BYTES);
  return out;
}

export function unwrapProposal(data: Uint8Array): { proposer: NodeId; seq: number; payload: Uint8Array } | undefined {
  if (data.byteLength < ENVELOPE_BYTES || data[0] !== ENVELOPE_TAG) return undefined;
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { proposer: b.readDoubleBE(1), seq: b.readDoubleBE(9), payload: b.subarray(ENVELOPE_BYTES) };
}

type Envelope = NonNullable<ReturnType<typeof unwrapProposal>>;

/** The envelope in a conf change entry's context, if it has one (a change proposed by RaftNode). */
function confChangeEnvelope(e: Entry): Envelope | undefined {
  const cc = decodeConfChange(e.data);
  return cc?.context ? unwrapProposal(cc.context) : undefined;
}

/** The entry as the state machine sees it: a proposal's payload, a conf change with its context as proposed. */
function withoutEnvelope(e: Entry, envelope: Envelope | undefined): Entry {
  if (!envelope) return e;
  if (e.type !== EntryType.ConfChange) return { ...e, data: envelope.payload };
  const cc = decodeConfChange(e.data)!;
  return { ...e, data: encodeConfChange({ type: cc.type, nodeId: cc.nodeId, context: envelope.payload }) };
}

/** @public (a kind of error: test/errors.test.ts walks every exported one) */
export class ProposalLostError extends RaftError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  static override readonly wireMessage = EtcdMessage.leaderChanged;
  constructor() {
    super('ERR_PROPOSAL_LOST', 'etcdserver: request lost (leadership changed before the entry committed)');
  }
}

/** @public (a kind of error: test/errors.test.ts walks every exported one) */
export class TooManyRequestsError extends RaftError {
  static override readonly grpcCode = GrpcCode.ResourceExhausted;
  constructor() {
    super('ERR_TOO_MANY_REQUESTS', 'etcdserver: too many requests');
  }
}

/** @public (a kind of error: test/errors.test.ts walks every exported one) */
export class ReadTimeoutError extends RaftError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_READ_TIMEOUT', EtcdMessage.requestTimedOut);
  }
}

export class ProposalTimeoutError extends RaftError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_PROPOSAL_TIMEOUT', EtcdMessage.requestTimedOut);
  }
}

/** @public (a kind of error: test/errors.test.ts walks every exported one) */
export class NodeStoppedError extends RaftError {
  static override readonly grpcCode = GrpcCode.Unavailable;
  constructor() {
    super('ERR_STOPPED', EtcdMessage.serverStopped);
  }
}

interface ProposalWaiter {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  /** When a forwarded proposal gives up; a local one waits for its index to be applied. */
  deadline: number;
}

interface ReadWaiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface RaftNodeEvents {
  softState: [SoftState];
  applied: [number];
  fsync: [number];
  /** An applied conf change changed the configuration: the new one. */
  confState: [ConfState];
  /** The node stopped itself after a failed fsync or apply. */
  fatal: [Error];
}

export class RaftNode extends EventEmitter<RaftNodeEvents> {
  readonly id: NodeId;
  private rawNode: RawNode | undefined;

  /** The core; only after start() has loaded the persisted state. */
  private get raw(): RawNode {
    if (!this.rawNode) throw new NodeStoppedError();
    return this.rawNode;
  }
  private readonly opts: ResolvedRaftNodeOptions;
  private ticker: NodeJS.Timeout | undefined;
  private readyScheduled = false;
  private readyRunning = false;
  private stopped = false;
  /** Proposals of this node waiting for their entry to be applied, by sequence number. */
  private readonly proposals = new Map<number, ProposalWaiter>();
  /** For proposals appended here (as leader): the sequence number expected at each index. */
  private readonly proposedAt = new Map<number, number>();
  /** Starts from the clock so that a restarted node never reuses a sequence number still in flight. */
  private proposalSeq = Date.now() * 1000;
  /** Reads waiting for their ReadIndex answer, by context. */
  private readonly readRequests = new Map<string, ReadWaiter>();
  /** Reads whose index is known, waiting for apply to reach it. */
  private readonly readsAwaitingApply: { index: number; waiter: ReadWaiter }[] = [];
  private readSeq = 0;
  private lastSnapshotIndex = 0;
  private softState: SoftState = { leader: 0, role: StateRole.Follower };
  private loopError: Error | undefined;
  /** The apply pipeline: each batch of committed entries is applied after the previous one. */
  private applyChain: Promise<void> = Promise.resolve();
  /** Committed entries handed to the pipeline and not yet applied. */
  private pendingApply = 0;
  /** Bytes of entry data handed to the pipeline since the last snapshot. */
  private bytesSinceSnapshot = 0;
  /** Term and vote last saved (always with a sync), so that a leader never sends ahead of a new term or vote. */
  private savedTerm = 0;
  private savedVote = 0;

  constructor(opts: RaftNodeOptions) {
    super();
    this.opts = resolveRaftNodeOptions(opts);
    this.id = opts.id;
  }

  async start(): Promise<void> {
    const persisted = await this.opts.logStore.load();
    // The Raft log no longer holds the entries before its snapshot: a state machine behind the
    // snapshot (a restore interrupted by a crash) must be restored before anything is applied.
    if (persisted.snapshot && this.opts.stateMachine.appliedIndex() < persisted.snapshot.metadata.index) {
      await this.opts.stateMachine.restore(persisted.snapshot);
    }
    const applied = this.opts.stateMachine.appliedIndex();
    this.savedTerm = persisted.hardState.term;
    this.savedVote = persisted.hardState.vote;
    this.lastSnapshotIndex = persisted.snapshot?.metadata.index ?? 0;
    // The state machine may be ahead of the stored commit index (commit is persisted lazily):
    // what it applied is committed, so the core may start from there.
    const commit = Math.max(persisted.hardState.commit, Math.min(applied, lastIndexOf(persisted)));
    this.rawNode = new RawNode(
      {
        ...DEFAULT_CONFIG,
        ...this.opts.raft,
        id: this.opts.id,
        peers: this.opts.peers,
        applied: Math.min(applied, commit),
        random: this.opts.raft?.random ?? ((n) => Math.floor(Math.random() * n)),
      },
      { ...persisted, hardState: { ...persisted.hardState, commit } },
    );
    this.ticker = setInterval(() => {
      this.raw.tick();
      this.expireForwardedProposals();
      this.scheduleReady();
    }, this.opts.tickMs);
    this.scheduleReady();
  }

  // ---- inputs ----------------------------------------------------------------------------

  /** A message from a peer. */
  receive(m: Message): void {
    // Peers may talk before start() has loaded the log: Raft retransmits, so drop until then.
    if (this.stopped || !this.rawNode) return;
    this.raw.step(m);
    this.scheduleReady();
  }

  /**
   * On the leader, appends a configuration change at once (refused synchronously, with
   * ProposalDroppedError, as RawNode.proposeConfChange says: so a caller's check of the
   * configuration and its proposal see the same state); it takes effect on each member as it
   * applies the entry (the 'confState' event). Where it was appended, and the state machine's
   * result once it is applied here. The context travels in the proposal envelope, as a
   * proposal's data does, so that the proposer recognizes its entry.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number; result: Promise<unknown> } {
    if (this.stopped) throw new NodeStoppedError();
    if (this.proposals.size >= this.opts.maxPendingProposals) throw new TooManyRequestsError();
    const seq = ++this.proposalSeq;
    const at = this.raw.proposeConfChange({ ...cc, context: wrapProposal(this.id, seq, cc.context ?? NO_OP) });
    this.proposedAt.set(at.index, seq);
    this.scheduleReady();
    const result = new Promise<unknown>((resolve, reject) => {
      this.proposals.set(seq, { resolve, reject, deadline: Infinity });
    });
    return { ...at, result };
  }

  /**
   * Replicates `data` (through the leader when this node is a follower); resolves with the state
   * machine's result once it is applied here.
   */
  propose(data: Uint8Array): Promise<unknown> {
    if (this.stopped) return Promise.reject(new NodeStoppedError());
    if (this.proposals.size >= this.opts.maxPendingProposals) return Promise.reject(new TooManyRequestsError());
    const seq = ++this.proposalSeq;
    let ticket: { index: number; term: number } | undefined;
    try {
      ticket = this.raw.forwardProposal(wrapProposal(this.id, seq, data));
    } catch (err) {
      return Promise.reject(err);
    }
    if (ticket) this.proposedAt.set(ticket.index, seq);
    this.scheduleReady();
    const deadline = ticket ? Infinity : performance.now() + this.opts.proposalTimeoutMs;
    return new Promise((resolve, reject) => {
      this.proposals.set(seq, { resolve, reject, deadline });
    });
  }

  /**
   * Resolves once this node's state machine reflects every write acknowledged before the call.
   * A read whose ReadIndex answer never comes (lost message, leader change) fails after `timeoutMs`.
   */
  readBarrier(timeoutMs: number): Promise<void> {
    if (this.stopped) return Promise.reject(new NodeStoppedError());
    if (this.readRequests.size >= this.opts.maxPendingReads) return Promise.reject(new TooManyRequestsError());
    const key = `${this.id}:${++this.readSeq}`;
    return new Promise<void>((resolve, reject) => {
      try {
        this.raw.readIndex(Buffer.from(key));
      } catch (err) {
        reject(err);
        return;
      }
      const timer = setTimeout(() => {
        if (this.readRequests.delete(key)) reject(new ReadTimeoutError());
      }, timeoutMs);
      const done = (): void => clearTimeout(timer);
      this.readRequests.set(key, {
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      this.scheduleReady();
    });
  }

  transferLeadership(to: NodeId): void {
    this.raw.transferLeadership(to);
    this.scheduleReady();
  }

  campaign(): void {
    this.raw.campaign();
    this.scheduleReady();
  }

  status(): Status {
    return this.raw.status();
  }

  /** The current term (status().term without the rest of the status). */
  get term(): number {
    return this.raw.term;
  }

  get leader(): NodeId {
    return this.softState.leader;
  }

  /** The commit index (status().commit without the rest of the status). */
  get commitIndex(): number {
    return this.raw.commit;
  }

  /** Whether `id` votes in the current configuration (asked of the leader for every proposal). */
  isVoter(id: NodeId): boolean {
    return this.raw.isVoter(id);
  }

  get isLeader(): boolean {
    return this.softState.role === StateRole.Leader;
  }

  // ---- the Ready loop --------------------------------------------------------------------

  private scheduleReady(): void {
    if (this.readyScheduled || this.stopped) return;
    this.readyScheduled = true;
    setImmediate(() => {
      this.readyScheduled = false;
      void this.runReady();
    });
  }

  private async runReady(): Promise<void> {
    if (this.readyRunning || this.stopped) return;
    this.readyRunning = true;
    try {
      while (!this.stopped && this.raw.hasReady()) {
        const rd = this.raw.ready();
        if (rd.softState) this.onSoftState(rd.softState);
        // A leader may send before its own write is durable (Raft thesis §10.2.1, as etcd does):
        // its appends commit only once a quorum, counted on later acknowledgements, has them on
        // disk, and every commit index it sends comes from a Ready persisted before this one.
        // Anyone else's messages (votes, acknowledgements) wait for the fsync, and so do a
        // leader's if the Ready carries a new term or vote (only a single voter elects itself
        // within one Ready, and it has no one to send to).
        const newTermOrVote = rd.hardState !== undefined && (rd.hardState.term !== this.savedTerm || rd.hardState.vote !== this.savedVote);
        const leaderSendsFirst = this.isLeader && !newTermOrVote;
        if (leaderSendsFirst) this.opts.transport.send(rd.messages);
        // The core decides whether this Ready needs an fsync (etcd's MustSync): new entries, a
        // snapshot, or a new term or vote do; a commit index alone does not, and is written
        // without one (the next synced save covers it; a restart re-learns it from the leader).
        if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
          const fsyncMs = await this.opts.logStore.save({
            ...(rd.hardState ? { hardState: rd.hardState } : {}),
            entries: rd.entries,
            ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
            mustSync: rd.mustSync,
          });
          if (rd.hardState) {
            this.savedTerm = rd.hardState.term;
            this.savedVote = rd.hardState.vote;
          }
          if (fsyncMs !== undefined) this.emit('fsync', fsyncMs);
        }
        if (!leaderSendsFirst) this.opts.transport.send(rd.messages);
        if (rd.snapshot) {
          // The snapshot replaces the state: everything queued before it must be applied first.
          await this.drainApply();
          await this.opts.stateMachine.restore(rd.snapshot);
          this.lastSnapshotIndex = rd.snapshot.metadata.index;
          this.bytesSinceSnapshot = 0;
          this.failProposalsUpTo(rd.snapshot.metadata.index);
        }
        if (rd.committedEntries.length > 0) this.queueApply(rd.committedEntries);
        for (const rs of rd.readStates) {
          const key = Buffer.from(rs.context).toString();
          const waiter = this.readRequests.get(key);
          if (!waiter) continue;
          this.readRequests.delete(key);
          this.readsAwaitingApply.push({ index: rs.index, waiter });
        }
        this.raw.advance(rd);
        this.releaseReads();
        // Bounded pipeline: a state machine slower than replication slows the loop down.
        if (this.pendingApply > this.opts.maxPendingApply) await this.drainApply();
        await this.maybeSnapshot();
      }
    } catch (err) {
      // A failed fsync or apply leaves the node in an unknown state: stop rather than diverge.
      this.fail(err as Error);
    } finally {
      this.readyRunning = false;
    }
    if (!this.stopped && this.raw.hasReady()) this.scheduleReady();
  }

  private onSoftState(ss: SoftState): void {
    const wasLeader = this.softState.role === StateRole.Leader;
    const newLeader = ss.leader !== 0 && ss.leader !== this.softState.leader;
    this.softState = ss;
    if (wasLeader && ss.role !== StateRole.Leader) {
      // Reads in flight on a deposed leader cannot be confirmed any more.
      for (const w of this.readRequests.values()) w.reject(new ProposalDroppedError('leadership lost'));
      this.readRequests.clear();
    }
    // Reads sent to the previous leader may never be answered: ask the new one (as etcd resends
    // its ReadIndex), once this Ready is done. A duplicate answer finds no waiter and is ignored.
    if (newLeader && this.readRequests.size > 0) setImmediate(() => this.resendReads());
    this.emit('softState', ss);
  }

  private resendReads(): void {
    if (this.stopped || this.softState.leader === 0) return;
    for (const key of this.readRequests.keys()) {
      try {
        this.raw.readIndex(Buffer.from(key));
      } catch {
        // No leader again: the read waits for the next one, or its timeout.
      }
    }
    this.scheduleReady();
  }

  /** Applies `entries` after everything queued before them; settles their proposals and reads. */
  private queueApply(entries: Entry[]): void {
    this.pendingApply += entries.length;
    for (const e of entries) this.bytesSinceSnapshot += e.data.byteLength;
    this.applyChain = this.applyChain.then(async () => {
      if (this.stopped) return;
      try {
        const envelopes = entries.map((e) => (e.type === EntryType.ConfChange ? confChangeEnvelope(e) : unwrapProposal(e.data)));
        // The state machine sees a conf change with its context as proposed (the envelope taken off).
        const results = await this.opts.stateMachine.apply(entries.map((e, i) => withoutEnvelope(e, envelopes[i])));
        entries.forEach((e, i) => this.settleProposal(e, envelopes[i], results[i]));
        this.applyConfChanges(entries);
      } catch (err) {
        // A failed apply leaves the state machine in an unknown state: stop rather than diverge.
        this.fail(err as Error);
        return;
      } finally {
        this.pendingApply -= entries.length;
      }
      this.emit('applied', entries[entries.length - 1]!.index);
      this.releaseReads();
    });
  }

  /** The configuration changes as each applied conf change entry says, in log order. */
  private applyConfChanges(entries: Entry[]): void {
    let changed = false;
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      if (!cc) continue; // the core skips it too
      const cs = this.raw.applyConfChange(cc);
      changed = true;
      this.emit('confState', cs);
    }
    if (changed) this.scheduleReady();
  }

  /** Resolves when every queued entry is applied (or the node failed). */
  private async drainApply(): Promise<void> {
    await this.applyChain;
    if (this.loopError) throw this.loopError;
  }

  /** Stops the node after a storage failure (its own, or the state machine's outside apply). */
  fail(err: Error): void {
    if (this.stopped) return;
    this.loopError = err;
    this.halt();
    this.emit('fatal', err);
  }

  private settleProposal(e: Entry, envelope: ReturnType<typeof unwrapProposal>, result: unknown): void {
    // Another leader's entry at the index where ours was appended: ours is gone.
    const expected = this.proposedAt.get(e.index);
    if (expected !== undefined) {
      this.proposedAt.delete(e.index);
      if (envelope?.proposer !== this.id || envelope.seq !== expected) this.settle(expected, new ProposalLostError());
    }
    if (envelope?.proposer === this.id) this.settle(envelope.seq, undefined, result);
  }

  private settle(seq: number, err: Error | undefined, result?: unknown): void {
    const waiter = this.proposals.get(seq);
    if (!waiter) return;
    this.proposals.delete(seq);
    if (err) waiter.reject(err);
    else waiter.resolve(result);
  }

  /** A snapshot replaced the entries up to `index`: what was appended there cannot be answered. */
  private failProposalsUpTo(index: number): void {
    for (const [i, seq] of this.proposedAt) {
      if (i <= index) {
        this.proposedAt.delete(i);
        this.settle(seq, new ProposalLostError());
      }
    }
  }

  /** Forwarded proposals the leader dropped (or that a change of leader lost) give up here. */
  private expireForwardedProposals(): void {
    const now = performance.now();
    for (const [seq, w] of this.proposals) if (w.deadline < now) this.settle(seq, new ProposalTimeoutError());
  }

  private releaseReads(): void {
    // The state machine's own index: the core's `applied` counts entries handed to the pipeline.
    const applied = this.opts.stateMachine.appliedIndex();
    for (let i = this.readsAwaitingApply.length - 1; i >= 0; i--) {
      const r = this.readsAwaitingApply[i]!;
      if (r.index <= applied) {
        this.readsAwaitingApply.splice(i, 1);
        r.waiter.resolve();
      }
    }
  }

  private async maybeSnapshot(): Promise<void> {
    const entriesSince = this.raw.applied - this.lastSnapshotIndex;
    if (entriesSince < this.opts.snapshotEvery && this.bytesSinceSnapshot < this.opts.snapshotEveryBytes) return;
    // A quiet state machine: its snapshot and its applied index describe the same state.
    await this.drainApply();
    const index = this.opts.stateMachine.appliedIndex();
    const data = await this.opts.stateMachine.snapshot();
    let snap: Snapshot;
    try {
      snap = this.raw.createSnapshot(index, data);
    } catch (err) {
      // A leader's snapshot newer than this state came in while the apply queue drained (a
      // follower far behind): the next Ready installs it, and this one is moot.
      if (err instanceof SnapshotOutOfDateError) return;
      throw err;
    }
    // The catch-up tail, in entries of the recent average size, bounded by count and by bytes.
    const averageBytes = Math.max(1, this.bytesSinceSnapshot / Math.max(1, entriesSince));
    const keep = Math.min(this.opts.snapshotCatchUpEntries, Math.floor(this.opts.snapshotCatchUpBytes / averageBytes));
    this.bytesSinceSnapshot = 0;
    const compactTo = Math.max(0, index - keep);
    await this.opts.logStore.saveSnapshot(snap, compactTo);
    if (compactTo > 0) this.raw.compactLog(compactTo);
    this.lastSnapshotIndex = index;
  }

  async stop(): Promise<void> {
    this.halt();
    // Let an in-flight Ready finish its fsync, and an apply its batch, before the owner closes the stores.
    while (this.readyRunning) await new Promise((r) => setTimeout(r, 1));
    await this.applyChain;
  }

  /** Stops ticking and fails every waiter; nothing more is stepped or persisted. */
  private halt(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    const err = this.loopError ?? new NodeStoppedError();
    for (const w of this.proposals.values()) w.reject(err);
    this.proposals.clear();
    this.proposedAt.clear();
    for (const w of this.readRequests.values()) w.reject(err);
    this.readRequests.clear();
    for (const r of this.readsAwaitingApply) r.waiter.reject(err);
    this.readsAwaitingApply.length = 0;
  }
}

function lastIndexOf(p: { snapshot?: Snapshot; entries: Entry[] }): number {
  const last = p.entries[p.entries.length - 1];
  return last ? last.index : (p.snapshot?.metadata.index ?? 0);
}
