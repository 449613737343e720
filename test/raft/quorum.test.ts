import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { committedIndex, hasQuorum, majority, voteResult, VoteResult } from '../../src/raft/quorum.js';

describe('majority', () => {
  test.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [7, 4],
  ])('of %i voters is %i', (n, want) => expect(majority(n)).toBe(want));
});

describe('committedIndex', () => {
  const cases: { name: string; match: number[]; want: number }[] = [
    { name: 'single voter', match: [5], want: 5 },
    { name: 'all equal', match: [3, 3, 3], want: 3 },
    { name: 'majority ahead', match: [5, 5, 1], want: 5 },
    { name: 'only one ahead', match: [9, 2, 1], want: 2 },
    { name: 'five voters, median', match: [10, 8, 6, 4, 2], want: 6 },
    { name: 'five voters, two ahead', match: [10, 10, 1, 1, 1], want: 1 },
    { name: 'nothing matched', match: [0, 0, 0], want: 0 },
  ];
  test.each(cases)('$name', ({ match, want }) => {
    const voters = match.map((_, i) => i + 1);
    expect(committedIndex(voters, (id) => match[id - 1]!)).toBe(want);
  });
  test('is the highest index a majority has matched, in any order of the voters', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(20), { minLength: 1, maxLength: 9 }), (match) => {
        const voters = match.map((_, i) => i + 1);
        const highestFirst = [...match].sort((a, b) => b - a);
        expect(committedIndex(voters, (id) => match[id - 1]!)).toBe(highestFirst[majority(match.length) - 1]);
      }),
      { numRuns: 500 },
    );
  });
});

describe('voteResult', () => {
  const cases: { name: string; voters: number; votes: [number, boolean][]; want: VoteResult }[] = [
    { name: 'no votes yet', voters: 3, votes: [], want: VoteResult.Pending },
    { name: 'self only of 3', voters: 3, votes: [[1, true]], want: VoteResult.Pending },
    {
      name: 'two of 3',
      voters: 3,
      votes: [
        [1, true],
        [2, true],
      ],
      want: VoteResult.Won,
    },
    {
      name: 'two rejections of 3',
      voters: 3,
      votes: [
        [1, true],
        [2, false],
        [3, false],
      ],
      want: VoteResult.Lost,
    },
    {
      name: 'one rejection of 3 still open',
      voters: 3,
      votes: [
        [1, true],
        [2, false],
      ],
      want: VoteResult.Pending,
    },
    {
      name: 'three of 5',
      voters: 5,
      votes: [
        [1, true],
        [2, true],
        [3, true],
      ],
      want: VoteResult.Won,
    },
    {
      name: 'three rejections of 5',
      voters: 5,
      votes: [
        [2, false],
        [3, false],
        [4, false],
      ],
      want: VoteResult.Lost,
    },
    { name: 'single voter self', voters: 1, votes: [[1, true]], want: VoteResult.Won },
  ];
  test.each(cases)('$name', ({ voters, votes, want }) => {
    const ids = Array.from({ length: voters }, (_, i) => i + 1);
    expect(voteResult(ids, new Map(votes))).toBe(want);
  });
});

test('hasQuorum ignores non-voters', () => {
  expect(hasQuorum([1, 2, 3], new Set([1, 9, 10]))).toBe(false);
  expect(hasQuorum([1, 2, 3], new Set([1, 3]))).toBe(true);
});
