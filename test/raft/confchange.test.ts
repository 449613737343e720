/** Conf changes: their binary form, how one changes a configuration, and the configuration a restart rebuilds. */
import { describe, expect, test } from 'vitest';
import { applyToConfState, confChangeProblem, decodeConfChange, encodeConfChange } from '../../src/raft/confchange.js';
import { RawNode } from '../../src/raft/rawnode.js';
import { ConfChangeType, EntryType, type Entry, type PersistentState } from '../../src/raft/types.js';
import { newConfig } from './harness.js';

const cc = (type: ConfChangeType, nodeId: number) => ({ type, nodeId });
const confEntry = (index: number, type: ConfChangeType, nodeId: number): Entry => ({
  term: 1,
  index,
  type: EntryType.ConfChange,
  data: encodeConfChange(cc(type, nodeId)),
});

describe('conf change encoding', () => {
  test('round trip, 9 bytes', () => {
    for (const c of [cc(ConfChangeType.AddNode, 1), cc(ConfChangeType.RemoveNode, 77), cc(ConfChangeType.AddLearnerNode, Number.MAX_SAFE_INTEGER)]) {
      const data = encodeConfChange(c);
      expect(data.byteLength).toBe(9);
      expect(decodeConfChange(data)).toEqual(c);
    }
  });

  test('a context rides after the 9 bytes, untouched', () => {
    const c = { type: ConfChangeType.UpdateNode, nodeId: 5, context: Uint8Array.from([1, 2, 3]) };
    const data = encodeConfChange(c);
    expect(data.byteLength).toBe(12);
    expect(decodeConfChange(data)).toEqual(c);
  });

  test('an update changes no configuration', () => {
    const cs = { voters: [1, 2, 3], learners: [4] };
    expect(applyToConfState(cs, cc(ConfChangeType.UpdateNode, 2))).toEqual(cs);
    expect(applyToConfState(cs, cc(ConfChangeType.UpdateNode, 4))).toEqual(cs);
  });

  test('anything else does not decode', () => {
    expect(decodeConfChange(new Uint8Array(0))).toBeUndefined();
    expect(decodeConfChange(new Uint8Array(8))).toBeUndefined(); // too short
    expect(decodeConfChange(new Uint8Array(9))).toBeUndefined(); // node 0
    expect(decodeConfChange(Uint8Array.from([4, 0, 0, 0, 0, 0, 0, 0, 1]))).toBeUndefined(); // no such type
    expect(decodeConfChange(Uint8Array.from([0, 0xff, 0, 0, 0, 0, 0, 0, 1]))).toBeUndefined(); // beyond MAX_SAFE_INTEGER
    expect(() => encodeConfChange(cc(ConfChangeType.AddNode, 0))).toThrow();
  });
});

describe('applying a conf change', () => {
  const cs = { voters: [1, 2, 3], learners: [4] };
  test('add a learner, promote it, remove', () => {
    expect(applyToConfState(cs, cc(ConfChangeType.AddLearnerNode, 5))).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
    expect(applyToConfState(cs, cc(ConfChangeType.AddNode, 4))).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(applyToConfState(cs, cc(ConfChangeType.RemoveNode, 2))).toEqual({ voters: [1, 3], learners: [4] });
    expect(applyToConfState(cs, cc(ConfChangeType.RemoveNode, 4))).toEqual({ voters: [1, 2, 3], learners: [] });
  });
  test('removing the last voter and demoting a voter are refused, and change nothing', () => {
    const one = { voters: [1], learners: [] };
    expect(confChangeProblem(one, cc(ConfChangeType.RemoveNode, 1))).toMatch(/last voter/);
    expect(applyToConfState(one, cc(ConfChangeType.RemoveNode, 1))).toEqual(one);
    expect(confChangeProblem(cs, cc(ConfChangeType.AddLearnerNode, 2))).toMatch(/demotion/);
    expect(applyToConfState(cs, cc(ConfChangeType.AddLearnerNode, 2))).toEqual(cs);
  });
});

describe('the configuration at restart', () => {
  // A snapshot at 10 with voters 1,2,3 and learner 4, then: 11 promote 4, 12 normal, 13 add learner 5.
  const persisted = (): PersistentState => ({
    hardState: { term: 1, vote: 1, commit: 13 },
    snapshot: { metadata: { index: 10, term: 1, voters: [1, 2, 3], learners: [4] }, data: new Uint8Array() },
    entries: [
      confEntry(11, ConfChangeType.AddNode, 4),
      { term: 1, index: 12, type: EntryType.Normal, data: new Uint8Array() },
      confEntry(13, ConfChangeType.AddLearnerNode, 5),
    ],
  });

  test('the snapshot, then the conf changes up to the applied index; later ones come out to be applied', () => {
    expect(new RawNode(newConfig(1, [1]), persisted()).status().config).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(new RawNode(newConfig(1, [1], { applied: 13 }), persisted()).status().config).toEqual({ voters: [1, 2, 3, 4], learners: [5] });
    const raw = new RawNode(newConfig(1, [1], { applied: 12 }), persisted());
    expect(raw.status().config).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    const rd = raw.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([13]);
    expect(raw.applyConfChange(decodeConfChange(rd.committedEntries[0]!.data)!)).toEqual({ voters: [1, 2, 3, 4], learners: [5] });
    raw.advance(rd);
    // A snapshot taken now carries the learner.
    expect(raw.createSnapshot(13, new Uint8Array()).metadata).toEqual({ index: 13, term: 1, voters: [1, 2, 3, 4], learners: [5] });
  });
});
