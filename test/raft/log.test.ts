import { describe, expect, test } from 'vitest';
import { RaftLog } from '../../src/raft/log.js';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { LogCompactedError } from '../../src/raft/errors.js';

function ents(...terms: [index: number, term: number][]): Entry[] {
  return terms.map(([index, term]) => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index]) }));
}

function logWith(...terms: number[]): RaftLog {
  return RaftLog.fromStorage(
    undefined,
    terms.map((t, i) => ents([i + 1, t])[0]!),
    0,
    0,
  );
}

describe('findConflict', () => {
  const cases: { name: string; in: Entry[]; want: number }[] = [
    { name: 'empty', in: [], want: 0 },
    { name: 'all present', in: ents([1, 1], [2, 2], [3, 3]), want: 0 },
    { name: 'suffix present', in: ents([2, 2], [3, 3]), want: 0 },
    { name: 'new entries', in: ents([3, 3], [4, 4], [5, 4]), want: 4 },
    { name: 'conflict at first', in: ents([1, 4], [2, 4]), want: 1 },
    { name: 'conflict in middle', in: ents([2, 1], [3, 4], [4, 4]), want: 2 },
  ];
  test.each(cases)('$name', ({ in: input, want }) => {
    expect(logWith(1, 2, 3).findConflict(input)).toBe(want);
  });
});

describe('maybeAppend (AppendEntries consistency check)', () => {
  const cases: {
    name: string;
    prevIndex: number;
    prevTerm: number;
    commit: number;
    in: Entry[];
    want: number | undefined;
    wantLast: number;
    wantCommit: number;
  }[] = [
    { name: 'prev term mismatch rejects', prevIndex: 3, prevTerm: 2, commit: 3, in: ents([4, 4]), want: undefined, wantLast: 3, wantCommit: 1 },
    { name: 'prev beyond log rejects', prevIndex: 4, prevTerm: 3, commit: 3, in: ents([5, 4]), want: undefined, wantLast: 3, wantCommit: 1 },
    { name: 'heartbeat-like empty append', prevIndex: 3, prevTerm: 3, commit: 3, in: [], want: 3, wantLast: 3, wantCommit: 3 },
    { name: 'commit bounded by last new entry', prevIndex: 2, prevTerm: 2, commit: 3, in: [], want: 2, wantLast: 3, wantCommit: 2 },
    { name: 'append new entries', prevIndex: 3, prevTerm: 3, commit: 4, in: ents([4, 4], [5, 4]), want: 5, wantLast: 5, wantCommit: 4 },
    { name: 'conflict replaces suffix', prevIndex: 1, prevTerm: 1, commit: 2, in: ents([2, 4]), want: 2, wantLast: 2, wantCommit: 2 },
    { name: 'already present entries keep the suffix', prevIndex: 1, prevTerm: 1, commit: 1, in: ents([2, 2]), want: 2, wantLast: 3, wantCommit: 1 },
  ];
  test.each(cases)('$name', ({ prevIndex, prevTerm, commit, in: input, want, wantLast, wantCommit }) => {
    const log = logWith(1, 2, 3);
    log.commitTo(1);
    expect(log.maybeAppend(prevIndex, prevTerm, commit, input)).toBe(want);
    expect(log.lastIndex()).toBe(wantLast);
    expect(log.committed).toBe(wantCommit);
  });

  test('a conflict with a committed entry is a fatal error', () => {
    const log = logWith(1, 2, 3);
    log.commitTo(2);
    expect(() => log.maybeAppend(1, 1, 3, ents([2, 9]))).toThrow(/conflicts with committed/);
  });

  test('replacing a suffix marks it unstable again', () => {
    const log = logWith(1, 2, 3);
    expect(log.stabled).toBe(3);
    log.maybeAppend(1, 1, 0, ents([2, 5]));
    expect(log.stabled).toBe(1);
    expect(log.unstableEntries().map((e) => [e.index, e.term])).toEqual([[2, 5]]);
  });
});

describe('isUpToDate (§5.4.1 election restriction)', () => {
  const cases = [
    { name: 'higher last term wins even if shorter', index: 1, term: 4, want: true },
    { name: 'lower last term loses even if longer', index: 10, term: 2, want: false },
    { name: 'same term, longer', index: 4, term: 3, want: true },
    { name: 'same term, equal', index: 3, term: 3, want: true },
    { name: 'same term, shorter', index: 2, term: 3, want: false },
  ];
  test.each(cases)('$name', ({ index, term, want }) => expect(logWith(1, 2, 3).isUpToDate(index, term)).toBe(want));
});

describe('findConflictByTerm (fast back-off hint)', () => {
  // Log terms: index 1..6 = 1,1,2,2,5,5
  const cases = [
    { index: 6, term: 5, want: 6 },
    { index: 6, term: 4, want: 4 },
    { index: 6, term: 2, want: 4 },
    { index: 6, term: 1, want: 2 },
    { index: 6, term: 0, want: 0 },
    { index: 10, term: 3, want: 4 },
  ];
  test.each(cases)('index $index term $term -> $want', ({ index, term, want }) => {
    expect(logWith(1, 1, 2, 2, 5, 5).findConflictByTerm(index, term).index).toBe(want);
  });
});

describe('snapshots and compaction', () => {
  test('createSnapshot, compact, and terms at the compaction point', () => {
    const log = logWith(1, 1, 2, 2, 3);
    log.commitTo(5);
    log.appliedTo(4);
    const snap = log.createSnapshot(4, new Uint8Array([9]), { voters: [1, 2, 3], learners: [] });
    expect(snap.metadata).toEqual({ index: 4, term: 2, voters: [1, 2, 3], learners: [] });
    expect(() => log.createSnapshot(5, new Uint8Array(), { voters: [1], learners: [] })).toThrow(/beyond applied/);
    log.compact(3);
    expect(log.firstIndex()).toBe(4);
    expect(log.term(3)).toBe(2);
    expect(log.term(2)).toBeUndefined();
    expect(() => log.slice(3, 5)).toThrow(LogCompactedError);
    expect(log.slice(4, 6).map((e) => e.index)).toEqual([4, 5]);
    expect(() => log.compact(5)).toThrow(/beyond snapshot/);
  });

  test('restore replaces the log with the snapshot', () => {
    const log = logWith(1, 1);
    log.restore({ metadata: { index: 10, term: 4, voters: [1, 2, 3], learners: [] }, data: new Uint8Array() });
    expect(log.lastIndex()).toBe(10);
    expect(log.lastTerm()).toBe(4);
    expect(log.committed).toBe(10);
    expect(log.nextCommittedEntries(Infinity)).toEqual([]);
    expect(log.unstableSnapshot?.metadata.index).toBe(10);
  });

  test('fromStorage drops entries covered by the snapshot and clamps applied', () => {
    const snap = { metadata: { index: 3, term: 2, voters: [1], learners: [] }, data: new Uint8Array() };
    const log = RaftLog.fromStorage(snap, ents([2, 1], [3, 2], [4, 2], [5, 3]), 5, 1);
    expect(log.firstIndex()).toBe(4);
    expect(log.lastIndex()).toBe(5);
    expect(log.applied).toBe(3);
    expect(log.committed).toBe(5);
  });

  test('slice honours the byte limit but always returns one entry', () => {
    const log = logWith(1, 1, 1, 1);
    expect(log.slice(1, 5, 1).length).toBe(1);
    expect(log.slice(1, 5, 40).length).toBe(2);
  });
});
