/**
 * The canonical text form of the core's values: one line per message, entry and hard state, and
 * a Ready as a block of lines, in the manner of etcd-io/raft's DescribeMessage and DescribeReady.
 * The interaction tests (test/raft/testdata/*.txt) compare against it, so it must stay stable:
 * the same value always prints the same way, and nothing in it depends on time or randomness.
 */
import { EntryType, StateRole, type ConfState, type Entry, type HardState, type Message, type Ready, type SnapshotMetadata, type SoftState } from './types.js';
import type { ProgressStatus, Status } from './rawnode.js';
import { ProgressState } from './tracker.js';
import { decodeConfChange, describeConfChange } from './confchange.js';

const ROLE_NAMES: Record<StateRole, string> = {
  [StateRole.Follower]: 'StateFollower',
  [StateRole.PreCandidate]: 'StatePreCandidate',
  [StateRole.Candidate]: 'StateCandidate',
  [StateRole.Leader]: 'StateLeader',
};

const PROGRESS_NAMES: Record<ProgressState, string> = {
  [ProgressState.Probe]: 'StateProbe',
  [ProgressState.Replicate]: 'StateReplicate',
  [ProgressState.Snapshot]: 'StateSnapshot',
};

function describeRole(role: StateRole): string {
  return ROLE_NAMES[role];
}

/** Bytes as a quoted string if they are all printable ASCII (and not a quote or backslash), else as hex. */
export function describeBytes(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c) {
      let hex = '0x';
      for (const h of bytes) hex += h.toString(16).padStart(2, '0');
      return hex;
    }
    text += String.fromCharCode(b);
  }
  return `"${text}"`;
}

/** `term/index EntryType data`, e.g. `1/3 EntryNormal ""`. */
export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    if (cc) return `${e.term}/${e.index} EntryConfChange ${describeConfChange(cc)}`;
  }
  return `${e.term}/${e.index} Entry${EntryType[e.type] ?? e.type} ${describeBytes(e.data)}`;
}

function describeEntries(entries: readonly Entry[]): string {
  return entries.map(describeEntry).join(', ');
}

/** `Term:1 Vote:1 Commit:2`. */
export function describeHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

function describeSoftState(ss: SoftState): string {
  return `Lead:${ss.leader} State:${describeRole(ss.role)}`;
}

export function describeSnapshotMetadata(m: SnapshotMetadata): string {
  const learners = m.learners ?? [];
  return `Index:${m.index} Term:${m.term} Voters:(${m.voters.join(' ')})${learners.length > 0 ? ` Learners:(${learners.join(' ')})` : ''}`;
}

/**
 * One line: `from->to Type Term:t Log:logTerm/index`, then whichever of Commit, Entries,
 * Rejected (with its hint), the snapshot chunk and the context the message carries.
 */
export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${describeEntries(m.entries)}]`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  else if (m.rejectHint !== 0) s += ` Received:${m.rejectHint}`;
  if (m.snapshot) {
    const c = m.snapshot;
    s += ` Snapshot:[${describeSnapshotMetadata(c.metadata)} Bytes:${c.offset}+${c.data.byteLength}/${c.totalBytes}${c.done ? ' Done' : ''}]`;
  }
  if (m.context !== undefined && m.context.byteLength > 0) s += ` Context:${describeBytes(m.context)}`;
  return s;
}

/** A Ready as lines: what it carries, in the order the embedding handles it. */
export function describeReady(rd: Ready): string {
  const lines = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState) lines.push(describeSoftState(rd.softState));
  if (rd.hardState) lines.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.entries.length > 0) lines.push('Entries:', ...rd.entries.map(describeEntry));
  if (rd.snapshot) lines.push(`Snapshot ${describeSnapshotMetadata(rd.snapshot.metadata)} Data:${describeBytes(rd.snapshot.data)}`);
  if (rd.committedEntries.length > 0) lines.push('CommittedEntries:', ...rd.committedEntries.map(describeEntry));
  if (rd.messages.length > 0) lines.push('Messages:', ...rd.messages.map(describeMessage));
  if (rd.readStates.length > 0) lines.push('ReadStates:', ...rd.readStates.map((r) => `Index:${r.index} Context:${describeBytes(r.context)}`));
  return lines.join('\n');
}

/** `StateReplicate match=3 next=4`, then inflight, probe-sent, pendingSnap and inactive when they apply. */
function describeProgress(pr: ProgressStatus): string {
  let s = `${PROGRESS_NAMES[pr.state]} match=${pr.match} next=${pr.next}`;
  if (pr.inflight > 0) s += ` inflight=${pr.inflight}`;
  if (pr.probeSent) s += ' probe-sent';
  if (pr.pendingSnapshot > 0) s += ` pendingSnap=${pr.pendingSnapshot}`;
  if (!pr.recentActive) s += ' inactive';
  return s;
}

/** `Voters:(1 2 3) Learners:(4)` (no Learners part when there are none). */
export function describeConfState(cs: ConfState): string {
  return `Voters:(${cs.voters.join(' ')})${cs.learners.length > 0 ? ` Learners:(${cs.learners.join(' ')})` : ''}`;
}

/** The node's state on one line; on a leader, one more line per voter's progress. */
export function describeStatus(st: Status): string {
  const lines = [
    `${st.id}: ${describeRole(st.role)} Term:${st.term} Vote:${st.vote} Commit:${st.commit} Applied:${st.applied} LastIndex:${st.lastIndex} Lead:${st.leader}`,
  ];
  if (st.progress) {
    for (const id of Object.keys(st.progress)
      .map(Number)
      .sort((a, b) => a - b))
      lines.push(`${id}: ${describeProgress(st.progress[id]!)}${st.config.learners.includes(id) ? ' learner' : ''}`);
  }
  return lines.join('\n');
}
