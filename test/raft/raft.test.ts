/**
 * Protocol rules of the Raft paper's figure 2, election edge cases, replication and conflict
 * resolution, ReadIndex, snapshots and leadership transfer, on the synchronous test network.
 */
import { describe, expect, test } from 'vitest';
import { RawNode } from '../../src/raft/rawnode.js';
import { message } from '../../src/raft/raft.js';
import { EntryType, MessageType, StateRole, type Entry, type Message, type PersistentState } from '../../src/raft/types.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { Network, data, emptyState, newConfig, persist } from './harness.js';

function elect(net: Network, id: number): void {
  net.node(id).campaign();
  net.stabilize();
  expect(net.leader()).toBe(id);
}

function entriesOf(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: EntryType.Normal, data: data(`e${i + 1}`) }));
}

/** A node restarted from a given log and hard state. */
function nodeWithLog(id: number, peers: number[], terms: number[], term: number, commit = 0): RawNode {
  const st: PersistentState = { hardState: { term, vote: 0, commit }, entries: entriesOf(...terms) };
  return new RawNode(newConfig(id, peers), st);
}

function takeMessages(n: RawNode): Message[] {
  if (!n.hasReady()) return [];
  const rd = n.ready();
  n.advance(rd);
  return rd.messages;
}

describe('leader election', () => {
  test('a single node elects itself and commits its no-op', () => {
    const net = new Network([1]);
    elect(net, 1);
    expect(net.node(1).status()).toMatchObject({ term: 1, commit: 1, role: StateRole.Leader });
  });

  test.each([3, 5])('a %i-node cluster elects exactly one leader by timeout', (size) => {
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const net = new Network(ids);
    net.tickAll(40);
    const leaders = ids.filter((id) => net.node(id).status().role === StateRole.Leader);
    expect(leaders.length).toBe(1);
    const term = net.node(leaders[0]!).status().term;
    for (const id of ids) expect(net.node(id).status()).toMatchObject({ term, leader: leaders[0] });
  });

  test('a node grants at most one vote per term', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3], { preVote: false, checkQuorum: false }), emptyState());
    n.step(message({ type: MessageType.Vote, from: 2, to: 1, term: 1 }));
    n.step(message({ type: MessageType.Vote, from: 3, to: 1, term: 1 }));
    const resps = takeMessages(n).filter((m) => m.type === MessageType.VoteResp);
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [2, false],
      [3, true],
    ]);
    expect(n.status().vote).toBe(2);
  });

  test('the vote is in the hard state of the same Ready as the vote response (persist before send)', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3], { preVote: false }), emptyState());
    n.step(message({ type: MessageType.Vote, from: 2, to: 1, term: 5 }));
    const rd = n.ready();
    expect(rd.hardState).toEqual({ term: 5, vote: 2, commit: 0 });
    expect(rd.messages.some((m) => m.type === MessageType.VoteResp && !m.reject)).toBe(true);
  });

  const restriction = [
    { name: 'candidate with an older last term is refused', voterTerms: [1, 2], candIndex: 3, candTerm: 1, reject: true },
    { name: 'candidate with a shorter log in the same term is refused', voterTerms: [1, 2, 2], candIndex: 2, candTerm: 2, reject: true },
    { name: 'candidate with an equal log is granted', voterTerms: [1, 2], candIndex: 2, candTerm: 2, reject: false },
    { name: 'candidate with a newer last term is granted', voterTerms: [1, 1, 1], candIndex: 2, candTerm: 2, reject: false },
  ];
  test.each(restriction)('election restriction: $name', ({ voterTerms, candIndex, candTerm, reject }) => {
    const n = nodeWithLog(1, [1, 2, 3], voterTerms, 2);
    n.step(message({ type: MessageType.Vote, from: 2, to: 1, term: 3, index: candIndex, logTerm: candTerm }));
    const resp = takeMessages(n).find((m) => m.type === MessageType.VoteResp)!;
    expect(resp.reject).toBe(reject);
  });

  test('a message with a higher term turns a leader into a follower of that term', () => {
    const net = new Network([1, 2, 3], { checkQuorum: false });
    elect(net, 1);
    net.node(1).step(message({ type: MessageType.App, from: 2, to: 1, term: 9, index: 0, logTerm: 0 }));
    expect(net.node(1).status()).toMatchObject({ term: 9, role: StateRole.Follower, leader: 2 });
  });

  test('a message with a lower term is ignored (and a stale leader is told the term)', () => {
    const n2 = nodeWithLog(2, [1, 2, 3], [1, 2], 5);
    n2.step(message({ type: MessageType.App, from: 3, to: 2, term: 3, index: 2, logTerm: 2, entries: entriesOf(1, 2, 3).slice(2) }));
    const msgs = takeMessages(n2);
    expect(n2.status()).toMatchObject({ term: 5, leader: 0, lastIndex: 2 });
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ type: MessageType.AppResp, to: 3, term: 5 });
  });

  test('a network message without a term (other than a forwarded read) is ignored', () => {
    const n2 = nodeWithLog(2, [1, 2, 3], [1], 1);
    n2.step(message({ type: MessageType.App, from: 3, to: 2, term: 0, index: 1, logTerm: 1, entries: entriesOf(1, 1).slice(1), commit: 2 }));
    expect(n2.status()).toMatchObject({ lastIndex: 1, leader: 0 });
  });

  test('split vote: candidates of the same term both lose, a later election succeeds', () => {
    const net = new Network([1, 2, 3, 4], { preVote: false, checkQuorum: false });
    net.cut.add('1->3').add('1->4').add('2->3').add('2->4').add('3->1').add('3->2').add('4->1').add('4->2');
    // 1 and 3 campaign; 2 votes for 1 and 4 votes for 3: neither gets 3 of 4.
    net.node(1).campaign();
    net.node(3).campaign();
    net.stabilize();
    expect(net.leader()).toBeUndefined();
    net.heal();
    net.tickAll(60);
    expect(net.leader()).toBeDefined();
  });
});

describe('PreVote and CheckQuorum', () => {
  test('a partitioned node that rejoins does not disrupt the leader (PreVote)', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    const term = net.node(1).status().term;
    net.isolate(3);
    for (let i = 0; i < 100; i++) {
      net.node(3).tick();
      net.stabilize();
    }
    // Pre-votes fail without a quorum, so 3 never raised its term.
    expect(net.node(3).status().term).toBe(term);
    net.heal();
    net.tickAll(30);
    expect(net.leader()).toBe(1);
    expect(net.node(1).status().term).toBe(term);
  });

  test('without PreVote the same rejoin does force a new term (the control case)', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    elect(net, 1);
    const term = net.node(1).status().term;
    net.isolate(3);
    for (let i = 0; i < 100; i++) {
      net.node(3).tick();
      net.stabilize();
    }
    expect(net.node(3).status().term).toBeGreaterThan(term);
    net.heal();
    net.tickAll(30);
    expect(net.node(1).status().term).toBeGreaterThan(term);
  });

  test('a leader that cannot hear a majority steps down (CheckQuorum)', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.isolate(1);
    for (let i = 0; i < 2 * 10 + 1; i++) {
      net.node(1).tick();
      net.stabilize();
    }
    expect(net.node(1).status().role).toBe(StateRole.Follower);
  });

  test('a follower that hears from its leader ignores vote requests (leader stickiness)', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    const n2 = net.node(2);
    const term = n2.status().term;
    n2.step(message({ type: MessageType.Vote, from: 3, to: 2, term: term + 1, index: 100, logTerm: term }));
    expect(n2.status()).toMatchObject({ term, leader: 1 });
    expect(takeMessages(n2).filter((m) => m.type === MessageType.VoteResp)).toEqual([]);
  });
});

describe('log replication', () => {
  test('proposals replicate, commit on a quorum and apply everywhere in order', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    for (let i = 0; i < 5; i++) net.node(1).propose(data(`v${i}`));
    net.stabilize();
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  test('proposals made between Readies are batched into one append per follower', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    const before = net.countDelivered(MessageType.App);
    for (let i = 0; i < 20; i++) net.node(1).propose(data(`b${i}`));
    net.processReady(1);
    net.stabilize();
    const apps = net.delivered.filter((m) => m.type === MessageType.App).slice(before);
    const withEntries = apps.filter((m) => m.entries.length > 0);
    expect(withEntries.length).toBe(2);
    expect(withEntries.every((m) => m.entries.length === 20)).toBe(true);
  });

  test('a follower proposal is dropped with a typed error', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    expect(() => net.node(2).propose(data('x'))).toThrow(ProposalDroppedError);
  });

  test('a follower forwards its proposal to the leader, which commits it everywhere', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.node(2).forwardProposal(data('from-2'));
    net.node(3).forwardProposal(data('from-3'));
    net.stabilize();
    const props = net.delivered.filter((m) => m.type === MessageType.Prop);
    expect(props.map((m) => [m.from, m.to, m.term])).toEqual([
      [2, 1, 0],
      [3, 1, 0],
    ]);
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toEqual(['from-2', 'from-3']);
  });

  test('forwarding without a known leader fails at once with a typed error', () => {
    const net = new Network([1, 2, 3]);
    expect(() => net.node(2).forwardProposal(data('x'))).toThrow(ProposalDroppedError);
  });

  test('a proposal reaching a follower or candidate is dropped, and one carrying a term is ignored', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    const prop = (from: number, to: number, term: number): Message =>
      message({ type: MessageType.Prop, from, to, term, entries: [{ term: 0, index: 0, type: EntryType.Normal, data: data('stray') }] });
    net.node(2).step(prop(3, 2, 0));
    net.node(1).step(prop(2, 1, 1));
    net.stabilize();
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toEqual([]);
  });

  test('the leader drops forwarded proposals during a leadership transfer', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.cut.add('1->3');
    net.node(1).transferLeadership(3);
    net.node(2).forwardProposal(data('during-transfer'));
    net.processReady(2);
    net.stabilize();
    for (const id of [1, 2]) expect(net.appliedData(id)).not.toContain('during-transfer');
  });

  test('a minority leader cannot commit', () => {
    const net = new Network([1, 2, 3, 4, 5], { checkQuorum: false });
    elect(net, 1);
    const commit = net.node(1).status().commit;
    net.isolate(1);
    net.node(1).propose(data('lost'));
    net.stabilize();
    expect(net.node(1).status().commit).toBe(commit);
  });

  test('the number of appends in flight to a silent follower is bounded', () => {
    const net = new Network([1, 2], { maxInflightMsgs: 3 });
    elect(net, 1);
    net.cut.add('2->1'); // follower receives but its acks are lost
    const before = net.countDelivered(MessageType.App);
    for (let i = 0; i < 10; i++) {
      net.node(1).propose(data(`p${i}`));
      net.stabilize();
    }
    expect(net.countDelivered(MessageType.App) - before).toBe(3);
  });

  test('conflicting follower suffix is replaced and fast back-off needs few round trips', () => {
    // Leader log: terms 1,1,1,4,4,4,5,5,6,6,6 (figure 7 style); follower 2 has a long log of term 2/3.
    const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followerTerms = [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3];
    const peers = [1, 2, 3];
    const net = new Network(peers, { checkQuorum: false, preVote: false });
    net.nodes.set(1, nodeWithLog(1, peers, leaderTerms, 6));
    net.nodes.set(2, nodeWithLog(2, peers, followerTerms, 3));
    net.nodes.set(3, nodeWithLog(3, peers, leaderTerms, 6));
    for (const id of peers)
      net.disks.set(id, { hardState: { term: id === 2 ? 3 : 6, vote: 0, commit: 0 }, entries: entriesOf(...(id === 2 ? followerTerms : leaderTerms)) });
    net.node(1).campaign();
    net.stabilize();
    expect(net.leader()).toBe(1);
    const rejects = net.delivered.filter((m) => m.type === MessageType.AppResp && m.from === 2 && m.reject).length;
    // Without the term hint a probe per mismatching entry would be needed (17).
    expect(rejects).toBeLessThanOrEqual(3);
    const l = net.node(1).status();
    const f = net.node(2).status();
    expect(f.lastIndex).toBe(l.lastIndex);
    expect(f.commit).toBe(l.commit);
    // The follower's log now equals the leader's: compare persisted terms.
    const termsOf = (id: number) => net.disks.get(id)!.entries.map((e) => e.term);
    expect(termsOf(2)).toEqual(termsOf(1));
  });
});

describe('commit rule (§5.4.2)', () => {
  test('a leader does not commit an entry of an earlier term by counting replicas', () => {
    // Figure 8: leader 1 in term 4 holds an uncommitted entry of term 2 at index 2.
    const peers = [1, 2, 3];
    const n1 = nodeWithLog(1, peers, [1, 2], 3, 1);
    n1.raft.term = 3;
    n1.campaign();
    // Gather votes by hand so the test controls every message.
    for (const m of takeMessages(n1)) {
      if (m.type === MessageType.PreVote) n1.step(message({ type: MessageType.PreVoteResp, from: m.to, to: 1, term: m.term }));
    }
    for (const m of takeMessages(n1)) {
      if (m.type === MessageType.Vote) n1.step(message({ type: MessageType.VoteResp, from: m.to, to: 1, term: m.term }));
    }
    expect(n1.status().role).toBe(StateRole.Leader);
    const term = n1.status().term;
    // Follower 2 acknowledges index 2 (the old-term entry) but not the new no-op at index 3.
    n1.step(message({ type: MessageType.AppResp, from: 2, to: 1, term, index: 2 }));
    expect(n1.status().commit).toBe(1);
    // Once the current-term entry is on a quorum, everything before it commits too.
    n1.step(message({ type: MessageType.AppResp, from: 2, to: 1, term, index: 3 }));
    expect(n1.status().commit).toBe(3);
  });
});

describe('persistence and restart', () => {
  test('a restarted node resumes from its persisted term, vote and log', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    for (let i = 0; i < 3; i++) net.node(1).propose(data(`r${i}`));
    net.stabilize();
    const before = net.node(2).status();
    const applied = before.applied;
    net.restart(2, applied);
    const after = net.node(2).status();
    expect(after).toMatchObject({ term: before.term, commit: before.commit, lastIndex: before.lastIndex, applied });
    net.node(1).propose(data('after-restart'));
    net.stabilize();
    expect(net.appliedData(2).at(-1)).toBe('after-restart');
  });

  test('restart with an applied index beyond the stored commit is refused', () => {
    expect(() => new RawNode(newConfig(1, [1], { applied: 5 }), emptyState())).toThrow(/applied index/);
  });

  test('entries of one Ready are persisted before its messages are sent (contract shape)', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.node(1).propose(data('p'));
    const rd = net.node(1).ready();
    expect(rd.entries.map((e) => e.data)).toContainEqual(data('p'));
    expect(rd.messages.filter((m) => m.type === MessageType.App).every((m) => m.entries.length === 1)).toBe(true);
    persist(net.disks.get(1)!, rd);
    net.node(1).advance(rd);
    expect(net.node(1).hasReady()).toBe(false);
  });
});

describe('snapshots', () => {
  test('a follower behind the compaction point catches up by a chunked snapshot', () => {
    const net = new Network([1, 2, 3], { maxSnapshotChunkBytes: 8 });
    elect(net, 1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.node(1).propose(data(`s${i}`));
    net.stabilize();
    const st = net.node(1).status();
    const snapData = data('state-of-the-application-at-applied');
    net.node(1).createSnapshot(st.applied, snapData);
    net.node(1).compactLog(st.applied);
    net.heal();
    net.tickAll(5);
    const chunks = net.delivered.filter((m) => m.type === MessageType.Snap && m.to === 3);
    expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(snapData.length / 8));
    expect(net.disks.get(3)!.snapshot?.metadata.index).toBe(st.applied);
    expect(net.disks.get(3)!.snapshot?.data).toEqual(snapData);
    net.node(1).propose(data('after-snap'));
    net.stabilize();
    expect(net.appliedData(3).at(-1)).toBe('after-snap');
    expect(net.node(3).status().commit).toBe(net.node(1).status().commit);
  });

  test('a lost snapshot chunk is retransmitted on the next heartbeat response', () => {
    const net = new Network([1, 2, 3], { maxSnapshotChunkBytes: 4 });
    elect(net, 1);
    net.isolate(3);
    for (let i = 0; i < 4; i++) net.node(1).propose(data(`x${i}`));
    net.stabilize();
    const applied = net.node(1).status().applied;
    net.node(1).createSnapshot(applied, data('0123456789abcdef'));
    net.node(1).compactLog(applied);
    net.heal();
    // Drop the second chunk once.
    let dropped = false;
    const origStep = net.node(3).step.bind(net.node(3));
    net.node(3).step = (m: Message) => {
      if (!dropped && m.type === MessageType.Snap && m.snapshot!.offset === 4) {
        dropped = true;
        return;
      }
      origStep(m);
    };
    net.tickAll(10);
    expect(dropped).toBe(true);
    expect(net.disks.get(3)!.snapshot?.data).toEqual(data('0123456789abcdef'));
  });
});

describe('ReadIndex', () => {
  test('the leader answers after a heartbeat round with its commit index', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.node(1).propose(data('w'));
    net.stabilize();
    net.node(1).readIndex(data('read-1'));
    net.stabilize();
    expect(net.readStates.get(1)).toEqual([{ index: net.node(1).status().commit, context: 'read-1' }]);
  });

  test('a follower read is forwarded and answered with the leader commit index', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.node(1).propose(data('w'));
    net.stabilize();
    net.node(2).readIndex(data('read-f'));
    net.stabilize();
    expect(net.readStates.get(2)).toEqual([{ index: net.node(1).status().commit, context: 'read-f' }]);
  });

  test('a leader cut off from the majority cannot answer a read', () => {
    const net = new Network([1, 2, 3], { checkQuorum: false });
    elect(net, 1);
    net.isolate(1);
    net.node(1).readIndex(data('stale?'));
    net.stabilize();
    net.tickAll(3);
    expect(net.readStates.get(1)).toEqual([]);
  });
});

describe('leadership transfer', () => {
  test('to an up-to-date follower: it becomes leader of a higher term', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    const term = net.node(1).status().term;
    net.node(1).transferLeadership(3);
    net.stabilize();
    expect(net.leader()).toBe(3);
    expect(net.node(3).status().term).toBe(term + 1);
  });

  test('to a lagging follower: it is caught up first, proposals are refused meanwhile', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.isolate(3);
    net.node(1).propose(data('l1'));
    net.stabilize();
    net.node(1).transferLeadership(3);
    expect(() => net.node(1).propose(data('during'))).toThrow(ProposalDroppedError);
    net.heal();
    net.tickAll(3);
    expect(net.leader()).toBe(3);
    expect(net.appliedData(3)).toContain('l1');
  });

  test('a transfer requested through a follower is forwarded to the leader', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.node(2).transferLeadership(2);
    net.stabilize();
    expect(net.leader()).toBe(2);
  });

  test('a transfer that cannot complete is abandoned after an election timeout', () => {
    const net = new Network([1, 2, 3]);
    elect(net, 1);
    net.isolate(3);
    net.node(1).transferLeadership(3);
    expect(() => net.node(1).propose(data('x'))).toThrow(ProposalDroppedError);
    net.tickAll(12);
    expect(net.leader()).toBe(1);
    expect(() => net.node(1).propose(data('y'))).not.toThrow();
  });
});
