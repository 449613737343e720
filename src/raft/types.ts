/**
 * Types of the Raft core: entries, hard state, snapshots, messages and the Ready batch.
 *
 * The core (RawNode) is a pure state machine: it owns no timers, sockets or disk. The embedding
 * code calls tick()/step()/propose(), takes a Ready, persists `hardState`, `entries` and
 * `snapshot` (durably when `mustSync`), THEN sends `messages`, applies `committedEntries`, and
 * calls advance().
 */

/** A member id. 0 means "nobody" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

export enum EntryType {
  /** Application data; an empty `data` is the no-op a new leader appends. */
  Normal = 0,
  /** A configuration change: `data` is a ConfChange in confchange.ts's binary form. */
  ConfChange = 1,
}

/** etcd's ConfChangeType numbering. Promoting a learner is an AddNode of that learner. */
export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  /** Changes nothing in the configuration: the application's data about the node (its peer URLs). */
  UpdateNode = 2,
  AddLearnerNode = 3,
}

/** One single-server configuration change (no joint consensus). */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** The application's bytes about the change (etcd's ConfChange.Context); the core never reads them. */
  context?: Uint8Array;
}

/** A configuration: the voters, and the learners (replicated to, never counted in a quorum). */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before any message that depends on it goes out. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface SnapshotMetadata {
  /** Last log index covered by the snapshot. */
  index: number;
  /** Term of the entry at `index`. */
  term: number;
  /** Voting members at `index`. */
  voters: NodeId[];
  /** Learners at `index` (a snapshot written before they existed has none: read it as []). */
  learners: NodeId[];
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** Application state at `metadata.index`, opaque to Raft. */
  data: Uint8Array;
}

/** One piece of an InstallSnapshot transfer (MsgSnap). */
export interface SnapshotChunk {
  metadata: SnapshotMetadata;
  /** Byte offset of `data` within the whole snapshot data. */
  offset: number;
  /** Size of the whole snapshot data. */
  totalBytes: number;
  data: Uint8Array;
  /** True on the last chunk. */
  done: boolean;
}

export enum MessageType {
  /** Local: start an election (sent to self by tick or campaign()). */
  Hup = 'MsgHup',
  /** Local: leader sends heartbeats now. */
  Beat = 'MsgBeat',
  /** Local: leader checks that a quorum is active. */
  CheckQuorum = 'MsgCheckQuorum',
  /** Local: a proposal of entries. */
  Prop = 'MsgProp',
  App = 'MsgApp',
  AppResp = 'MsgAppResp',
  Vote = 'MsgVote',
  VoteResp = 'MsgVoteResp',
  PreVote = 'MsgPreVote',
  PreVoteResp = 'MsgPreVoteResp',
  /** A chunk of a snapshot (InstallSnapshot). */
  Snap = 'MsgSnap',
  /** Follower acknowledges snapshot bytes received: index/logTerm = snapshot, rejectHint = bytes received. */
  SnapResp = 'MsgSnapResp',
  Heartbeat = 'MsgHeartbeat',
  HeartbeatResp = 'MsgHeartbeatResp',
  /** Read request; local on the leader, or forwarded by a follower. `context` identifies it. */
  ReadIndex = 'MsgReadIndex',
  ReadIndexResp = 'MsgReadIndexResp',
  /** Ask the leader to hand leadership to `from`-specified transferee (carried in `from` of the request). */
  TransferLeader = 'MsgTransferLeader',
  /** Leader tells the transferee to campaign at once, bypassing PreVote and leader stickiness. */
  TimeoutNow = 'MsgTimeoutNow',
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry at `index`; Vote/PreVote: candidate's last log term; AppResp reject: term at rejectHint. */
  logTerm: number;
  /** App: index of the entry preceding `entries`; AppResp: last index matched (or the rejected index); Vote: candidate's last index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  /** ReadIndex / heartbeat context, or the campaign kind of a transfer election. */
  context?: Uint8Array;
  snapshot?: SnapshotChunk;
}

export enum StateRole {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** Volatile state, reported in Ready when it changes. Need not be persisted. */
export interface SoftState {
  leader: NodeId;
  role: StateRole;
}

/** Answer to a readIndex() request: serve the read once applied >= index. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

export interface Ready {
  /** Set when leader or role changed since the last Ready. */
  softState?: SoftState;
  /** Set when term, vote or commit changed; persist before sending `messages`. */
  hardState?: HardState;
  /**
   * Entries to append to stable storage before sending `messages`. Any stored entry with
   * index >= entries[0].index is replaced (a leader may have overwritten a conflicting suffix).
   */
  entries: Entry[];
  /** A snapshot received from the leader: persist it, then restore the application from it. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order. They are already durable. */
  committedEntries: Entry[];
  /** Messages to send once the above is durable. */
  messages: Message[];
  readStates: ReadState[];
  /**
   * Whether `hardState`, `entries` and `snapshot` must be fsync'd before `messages` go out (etcd's
   * MustSync): there are entries or a snapshot, or the term or vote changed. A Ready whose hard
   * state moves only the commit index need not sync: a lost commit index is re-learned from the
   * leader. What is not synced must still be written, so that a later sync covers it.
   */
  mustSync: boolean;
}

/** What a node finds in stable storage when it (re)starts. */
export interface PersistentState {
  hardState: HardState;
  snapshot?: Snapshot;
  /** Entries after the snapshot (or from index 1), contiguous. */
  entries: Entry[];
}

export interface Config {
  id: NodeId;
  /** Voting members, including this node. Used when storage holds no snapshot. */
  peers: NodeId[];
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [electionTick, 2*electionTick). */
  electionTick: number;
  /** Ticks between leader heartbeats. Must be < electionTick. */
  heartbeatTick: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Max AppendEntries messages in flight to one follower in Replicate state. */
  maxInflightMsgs: number;
  /** Max bytes of entry data in one AppendEntries message (at least one entry is always sent). */
  maxSizePerMsg: number;
  /** Max bytes of snapshot data per MsgSnap chunk. */
  maxSnapshotChunkBytes: number;
  /** Max bytes of committed entries handed out in one Ready. */
  maxCommittedSizePerReady: number;
  /** Index already applied by the application (on restart). */
  applied: number;
  /** Deterministic random source: returns an integer in [0, n). */
  random: (n: number) => number;
}

export const DEFAULT_CONFIG: Omit<Config, 'id' | 'peers' | 'random'> = {
  electionTick: 10,
  heartbeatTick: 1,
  preVote: true,
  checkQuorum: true,
  maxInflightMsgs: 256,
  maxSizePerMsg: 1024 * 1024,
  maxSnapshotChunkBytes: 1024 * 1024,
  maxCommittedSizePerReady: 64 * 1024 * 1024,
  applied: 0,
};
