/**
 * Ready.mustSync, decided by the core as etcd-io/raft's MustSync: a Ready must be fsync'd before
 * its messages go out when it carries entries or a snapshot, or changes the term or the vote; a
 * hard state that moves only the commit index does not need a sync.
 */
import { describe, expect, test } from 'vitest';
import { RawNode, mustSync } from '../../src/raft/rawnode.js';
import { message } from '../../src/raft/raft.js';
import { EntryType, MessageType, type HardState, type Message, type Ready } from '../../src/raft/types.js';
import { Network, data, emptyState, newConfig } from './harness.js';

const hs = (term: number, vote: number, commit: number): HardState => ({ term, vote, commit });

function take(n: RawNode): Ready {
  expect(n.hasReady()).toBe(true);
  const rd = n.ready();
  n.advance(rd);
  return rd;
}

const types = (msgs: Message[]): string[] => [...new Set(msgs.map((m) => m.type))];

describe('mustSync()', () => {
  test.each([
    { name: 'nothing changed', st: hs(1, 1, 1), prev: hs(1, 1, 1), entries: 0, snapshot: false, want: false },
    { name: 'the commit index alone', st: hs(1, 1, 5), prev: hs(1, 1, 1), entries: 0, snapshot: false, want: false },
    { name: 'entries', st: hs(1, 1, 1), prev: hs(1, 1, 1), entries: 1, snapshot: false, want: true },
    { name: 'a new term', st: hs(2, 0, 1), prev: hs(1, 0, 1), entries: 0, snapshot: false, want: true },
    { name: 'a new vote in the same term', st: hs(1, 2, 1), prev: hs(1, 0, 1), entries: 0, snapshot: false, want: true },
    { name: 'a snapshot', st: hs(1, 1, 1), prev: hs(1, 1, 1), entries: 0, snapshot: true, want: true },
  ])('$name: $want', ({ st, prev, entries, snapshot, want }) => {
    expect(mustSync(st, prev, entries, snapshot)).toBe(want);
  });
});

describe('Ready.mustSync', () => {
  test('a candidate syncs its new term and self-vote before its vote requests go out', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3], { preVote: false }), emptyState());
    n.campaign();
    const rd = take(n);
    expect(rd.hardState).toEqual(hs(1, 1, 0));
    expect(types(rd.messages)).toEqual([MessageType.Vote]);
    expect(rd.mustSync).toBe(true);
  });

  test('a pre-candidate changes neither term nor vote: its pre-vote requests need no sync', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3], { preVote: true }), emptyState());
    n.campaign();
    const rd = take(n);
    expect(rd.hardState).toBeUndefined();
    expect(types(rd.messages)).toEqual([MessageType.PreVote]);
    expect(rd.mustSync).toBe(false);
  });

  test('a vote granted in a term already on disk still syncs (the vote changed)', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3], { preVote: false }), { hardState: hs(3, 0, 0), entries: [] });
    n.step(message({ type: MessageType.Vote, from: 2, to: 1, term: 3 }));
    const rd = take(n);
    expect(rd.hardState).toEqual(hs(3, 2, 0));
    expect(rd.messages.map((m) => [m.type, m.reject])).toEqual([[MessageType.VoteResp, false]]);
    expect(rd.mustSync).toBe(true);
  });

  test('a follower syncs appended entries; a heartbeat that only moves its commit index does not', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3]), emptyState());
    const e1 = { term: 1, index: 1, type: EntryType.Normal, data: data('x') };
    n.step(message({ type: MessageType.App, from: 2, to: 1, term: 1, index: 0, logTerm: 0, entries: [e1], commit: 0 }));
    const append = take(n);
    expect(append.entries.map((e) => e.index)).toEqual([1]);
    expect(append.mustSync).toBe(true);

    n.step(message({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1, commit: 1 }));
    const beat = take(n);
    expect(beat.hardState).toEqual(hs(1, 0, 1));
    expect(beat.entries).toEqual([]);
    expect(beat.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(types(beat.messages)).toEqual([MessageType.HeartbeatResp]);
    expect(beat.mustSync).toBe(false);
  });

  test('a leader syncs its proposals; the Ready that commits them (commit index and appends carrying it) does not', () => {
    const net = new Network([1, 2, 3]);
    net.node(1).campaign();
    net.stabilize();
    const leader = net.node(1);
    leader.propose(data('p'));
    const proposal = take(leader);
    expect(proposal.entries.length).toBe(1);
    expect(proposal.mustSync).toBe(true);
    for (const m of proposal.messages) {
      const f = net.node(m.to);
      f.step(m);
      const rd = take(f);
      expect(rd.mustSync).toBe(true);
      for (const resp of rd.messages) leader.step(resp);
    }
    const commit = take(leader);
    expect(commit.hardState?.commit).toBe(proposal.entries[0]!.index);
    expect(commit.entries).toEqual([]);
    expect(types(commit.messages)).toEqual([MessageType.App]);
    expect(commit.mustSync).toBe(false);
  });

  test('a leader’s heartbeats alone need no sync', () => {
    const net = new Network([1, 2, 3]);
    net.node(1).campaign();
    net.stabilize();
    net.tick(1, 1);
    const rd = take(net.node(1));
    expect(rd.hardState).toBeUndefined();
    expect(types(rd.messages)).toEqual([MessageType.Heartbeat]);
    expect(rd.mustSync).toBe(false);
  });

  test('a received snapshot is synced', () => {
    const n = new RawNode(newConfig(1, [1, 2, 3]), { hardState: hs(1, 0, 0), entries: [] });
    const metadata = { index: 5, term: 1, voters: [1, 2, 3], learners: [] };
    n.step(message({ type: MessageType.Snap, from: 2, to: 1, term: 1, snapshot: { metadata, offset: 0, totalBytes: 1, data: data('s'), done: true } }));
    const rd = take(n);
    expect(rd.snapshot?.metadata).toEqual(metadata);
    expect(rd.hardState).toEqual(hs(1, 0, 5));
    expect(rd.mustSync).toBe(true);
  });

  test('after a restart, the stored hard state is the reference: a commit-only change needs no sync', () => {
    const entries = [{ term: 2, index: 1, type: EntryType.Normal, data: data('a') }];
    const n = new RawNode(newConfig(1, [1, 2, 3]), { hardState: hs(2, 3, 0), entries });
    n.step(message({ type: MessageType.Heartbeat, from: 3, to: 1, term: 2, commit: 1 }));
    const rd = take(n);
    expect(rd.hardState).toEqual(hs(2, 3, 1));
    expect(rd.mustSync).toBe(false);
  });
});
