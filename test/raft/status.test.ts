/**
 * RawNode.status() reports the leader's view of every voter's progress, as etcd-io/raft's
 * Status.Progress: state (probe, replicate, snapshot), match, next, inflight count.
 */
import { describe, expect, test } from 'vitest';
import { RawNode } from '../../src/raft/rawnode.js';
import { message } from '../../src/raft/raft.js';
import { ProgressState } from '../../src/raft/tracker.js';
import { MessageType, StateRole, type Ready } from '../../src/raft/types.js';
import { Network, data, emptyState, newConfig } from './harness.js';

function take(n: RawNode): Ready {
  const rd = n.ready();
  n.advance(rd);
  return rd;
}

function elect(net: Network, id: number): void {
  net.node(id).campaign();
  net.stabilize();
  expect(net.leader()).toBe(id);
}

describe('status().progress', () => {
  test('a new leader probes every follower, one append at a time, and replicates to itself', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3], { preVote: false }), emptyState());
    n.campaign();
    take(n);
    n.step(message({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
    const st = n.status();
    expect(st.role).toBe(StateRole.Leader);
    // The leader's no-op is entry 1; each follower gets one probing append from index 1.
    expect(st.progress).toEqual({
      1: { state: ProgressState.Replicate, match: 1, next: 2, inflight: 0, recentActive: true, probeSent: false, pendingSnapshot: 0 },
      2: { state: ProgressState.Probe, match: 0, next: 1, inflight: 0, recentActive: false, probeSent: true, pendingSnapshot: 0 },
      3: { state: ProgressState.Probe, match: 0, next: 1, inflight: 0, recentActive: false, probeSent: true, pendingSnapshot: 0 },
    });
    expect(st.match).toEqual({ 1: 1, 2: 0, 3: 0 });
  });

  test('followers that acknowledged move to replicate; an unreachable one keeps its appends in flight', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    let st = net.node(1).status();
    for (const id of [2, 3]) expect(st.progress![id]).toMatchObject({ state: ProgressState.Replicate, match: 1, next: 2, inflight: 0 });
    net.isolate(3);
    net.node(1).propose(data('a'));
    net.stabilize();
    net.node(1).propose(data('b'));
    net.node(1).propose(data('c'));
    net.stabilize();
    st = net.node(1).status();
    expect(st.lastIndex).toBe(4);
    expect(st.progress![2]).toMatchObject({ state: ProgressState.Replicate, match: 4, next: 5, inflight: 0 });
    // Two appends (one per Ready: [2], then [3, 4]) sent optimistically, never acknowledged.
    expect(st.progress![3]).toMatchObject({ state: ProgressState.Replicate, match: 1, next: 5, inflight: 2 });
    // Followers report no progress: only the leader tracks it.
    expect(net.node(2).status().progress).toBeUndefined();
    expect(net.node(2).status().match).toBeUndefined();
  });

  test('a follower behind the leader’s compacted log is sent a snapshot, then replicates again', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.node(1).propose(data(`e${i}`));
    net.stabilize();
    const leader = net.node(1);
    const applied = leader.status().applied;
    leader.createSnapshot(applied, data('snap'));
    leader.compactLog(applied);
    net.heal();
    // A heartbeat round, then appends 3 rejects, until the leader finds it needs entries it no longer has.
    leader.tick();
    const states: string[] = [];
    for (let round = 0; round < 5 && leader.status().progress![3]!.state !== ProgressState.Snapshot; round++) {
      for (const m of take(leader).messages.filter((m) => m.to === 3)) net.node(3).step(m);
      for (const m of take(net.node(3)).messages) leader.step(m);
      states.push(leader.status().progress![3]!.state);
    }
    // The heartbeat's answer brings an empty append at 6 (still replicate); 3 rejects it, and
    // probing from where 3's log ends finds the entries compacted: snapshot.
    expect(states).toEqual([ProgressState.Replicate, ProgressState.Snapshot]);
    expect(leader.status().progress![3]).toMatchObject({ state: ProgressState.Snapshot, match: 1, pendingSnapshot: applied, inflight: 0 });
    net.stabilize();
    expect(leader.status().progress![3]).toMatchObject({ state: ProgressState.Replicate, match: applied, next: applied + 1, pendingSnapshot: 0 });
  });
});
