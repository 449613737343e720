/**
 * etcd's Cluster API on the leader: MemberAdd, MemberRemove, MemberUpdate, MemberPromote, each
 * checked as etcd 3.4 checks it (membership's ValidateConfigurationChange, and the strict
 * reconfiguration checks etcd runs by default: enough started members, enough connected ones)
 * and then proposed as one conf change whose context is the store's member change
 * (src/mvcc/membership.ts).
 *
 * The services table routes these calls to the leader. The leader's Raft core takes one conf
 * change at a time, and only once every earlier one is applied; so a check here, made against
 * the applied membership in the same turn of the event loop as the proposal, sees the
 * membership the change will apply to. A proposal refused because another change is pending is
 * tried again until the request's deadline.
 */
import { Buffer } from 'node:buffer';
import type { Member as MemberInfo } from '../api/types.js';
import type { ClusterRecord, MemberChangeRequest, MemberRecord, MembershipResponse } from '../mvcc/types.js';
import { ProposalDroppedError } from '../raft/errors.js';
import { ConfChangeType } from '../raft/types.js';
import { parseMemberUrl } from './config.js';
import {
  LearnerNotReadyError,
  MemberBadUrlsError,
  MemberNotFoundError,
  MemberNotLearnerError,
  NotEnoughStartedMembersError,
  PeerUrlExistsError,
  TooManyLearnersError,
  UnhealthyClusterError,
} from './errors.js';
import { Retry } from './leader.js';
import { memberInfo, type Member } from './member.js';
import { memberIdOf } from './member_id.js';

/** etcd 3.4's maxLearners. */
const MAX_LEARNERS = 1;
/** etcd's readyPercent: a learner is in sync once it has 90% of the leader's log. */
const LEARNER_READY_FRACTION = 0.9;

export interface MemberChangeResponse {
  members: MemberInfo[];
}

/** etcd's started: a member that has published its name. */
const isStarted = (m: MemberRecord): boolean => m.name !== '';
const quorum = (voters: number): number => Math.floor(voters / 2) + 1;

function peerUrlsOf(urls: readonly string[]): string[] {
  if (urls.length === 0) throw new MemberBadUrlsError();
  return urls.map((u) => {
    const r = parseMemberUrl(u);
    if ('problem' in r) throw new MemberBadUrlsError();
    return r.url;
  });
}

function memberById(c: ClusterRecord, id: string): MemberRecord {
  const canonical = /^\d+$/.test(id) ? BigInt(id).toString() : id;
  const m = c.members.find((x) => x.id === canonical);
  if (!m) throw new MemberNotFoundError();
  return m;
}

/** Proposes the change `check` allows, the check and the proposal in one turn; retried while another change is pending. */
async function proposeChange(member: Member, check: (c: ClusterRecord) => { type: ConfChangeType; change: MemberChangeRequest }): Promise<MembershipResponse> {
  const retry = new Retry(member.requestDeadline());
  for (;;) {
    const { type, change } = check(member.cluster());
    try {
      const at = member.raft.proposeConfChange({ type, nodeId: change.member.raftId, context: Buffer.from(JSON.stringify(change)) });
      const r = (await at.result) as { status: string; response?: { membership?: MembershipResponse }; error?: Error };
      if (r.status === 'error' && r.error) throw r.error;
      if (!r.response?.membership) throw new Error('qkv: a conf change applied without a membership result');
      return r.response.membership;
    } catch (err) {
      if (err instanceof ProposalDroppedError && (await retry.pause())) continue;
      throw err;
    }
  }
}

/**
 * etcd's IsReadyToAddVotingMember (the new voter not started yet) and IsReadyToPromoteMember
 * (the learner counted as started): the started voters after the change are a quorum of them.
 * etcd lets a one-member cluster add a second voter whatever the count says.
 */
function checkStartedAfterAddingVoter(c: ClusterRecord, newcomerStarted: boolean): void {
  const voters = c.members.filter((m) => !m.isLearner);
  const started = voters.filter(isStarted).length + (newcomerStarted ? 1 : 0);
  if (!newcomerStarted && started === 1 && voters.length === 1) return;
  if (started < quorum(voters.length + 1)) throw new NotEnoughStartedMembersError();
}

export async function memberAdd(member: Member, peerUrls: readonly string[], isLearner: boolean): Promise<{ member: MemberInfo } & MemberChangeResponse> {
  const urls = peerUrlsOf(peerUrls);
  const addedAt = Date.now();
  const r = await proposeChange(member, (c) => {
    if (c.members.some((m) => m.peerUrls.some((u) => urls.includes(u)))) throw new PeerUrlExistsError();
    if (isLearner && c.members.filter((m) => m.isLearner).length >= MAX_LEARNERS) throw new TooManyLearnersError();
    if (!isLearner) checkStartedAfterAddingVoter(c, false);
    // etcd's id for a runtime addition (peer URLs, token, time); another salt if it was ever taken.
    let id = memberIdOf(urls, c.token, addedAt);
    for (let salt = 1; c.members.some((m) => m.id === id) || c.removed.includes(id); salt++) id = memberIdOf(urls, `${c.token}#${salt}`, addedAt);
    // Its name in the Raft core: the next raft id, which no member ever had.
    const record: MemberRecord = { id, raftId: c.nextRaftId, name: '', peerUrls: urls, clientUrls: [], isLearner };
    return { type: isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, change: { change: 'add', member: record } };
  });
  const added = r.members.find((m) => m.peerUrls.some((u) => urls.includes(u)))!;
  return { member: memberInfo(added), members: r.members.map(memberInfo) };
}

export async function memberRemove(member: Member, id: string): Promise<MemberChangeResponse> {
  const r = await proposeChange(member, (c) => {
    const target = memberById(c, id);
    if (!target.isLearner) {
      const voters = c.members.filter((m) => !m.isLearner);
      // etcd's IsReadyToRemoveVotingMember: the started voters left are a quorum of those left.
      const startedLeft = voters.filter((m) => m.id !== target.id && isStarted(m)).length;
      if (startedLeft < quorum(voters.length - 1)) throw new NotEnoughStartedMembersError();
      // etcd's mayRemoveMember: a member that is down may go; otherwise the voters left that the
      // leader hears from must be a quorum of them.
      const progress = member.raft.status().progress ?? {};
      const isActive = (m: MemberRecord): boolean => m.raftId === member.raftId || progress[m.raftId]?.recentActive === true;
      if (target.raftId === member.raftId || isActive(target)) {
        const active = voters.filter((m) => m.id !== target.id && isActive(m)).length;
        if (active < quorum(voters.length - 1)) throw new UnhealthyClusterError();
      }
    }
    return { type: ConfChangeType.RemoveNode, change: { change: 'remove', member: { ...target } } };
  });
  return { members: r.members.map(memberInfo) };
}

export async function memberUpdate(member: Member, id: string, peerUrls: readonly string[]): Promise<MemberChangeResponse> {
  const urls = peerUrlsOf(peerUrls);
  const r = await proposeChange(member, (c) => {
    const target = memberById(c, id);
    if (c.members.some((m) => m.id !== target.id && m.peerUrls.some((u) => urls.includes(u)))) throw new PeerUrlExistsError();
    return { type: ConfChangeType.UpdateNode, change: { change: 'update', member: { ...target, peerUrls: urls } } };
  });
  return { members: r.members.map(memberInfo) };
}

export async function memberPromote(member: Member, id: string): Promise<MemberChangeResponse> {
  const r = await proposeChange(member, (c) => {
    const target = memberById(c, id);
    if (!target.isLearner) throw new MemberNotLearnerError();
    // etcd's isLearnerReady: the leader's progress of the learner is at 90% of its own.
    const st = member.raft.status();
    const learnerMatch = st.progress?.[target.raftId]?.match ?? 0;
    const leaderMatch = st.progress?.[member.raftId]?.match ?? st.lastIndex;
    if (learnerMatch < leaderMatch * LEARNER_READY_FRACTION) throw new LearnerNotReadyError();
    checkStartedAfterAddingVoter(c, true);
    return { type: ConfChangeType.AddNode, change: { change: 'promote', member: { ...target, isLearner: false } } };
  });
  return { members: r.members.map(memberInfo) };
}
