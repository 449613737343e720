/**
 * Majority quorum arithmetic over a fixed set of voters. Pure functions, no state.
 */
import type { NodeId } from './types.js';

export enum VoteResult {
  Pending = 'pending',
  Won = 'won',
  Lost = 'lost',
}

/** Smallest number of voters that forms a majority. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index that a majority of voters has matched: sort the match indexes in descending
 * order and take the one at position (majority - 1). Voters missing from `matchIndex` count as 0.
 */
export function committedIndex(voters: readonly NodeId[], matchIndex: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  // Insertion sort, highest first, as etcd-io/raft's: this runs for every append and every
  // acknowledgement, and Array.prototype.sort allocates a work copy each time.
  const matched = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const m = matchIndex(voters[i]!);
    let j = i;
    for (; j > 0 && matched[j - 1]! < m; j--) matched[j] = matched[j - 1]!;
    matched[j] = m;
  }
  return matched[majority(n) - 1]!;
}

/** Outcome of an election given the votes received so far (missing entries have not answered). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const need = majority(voters.length);
  if (granted >= need) return VoteResult.Won;
  if (voters.length - rejected < need) return VoteResult.Lost;
  return VoteResult.Pending;
}

/** Whether the given set of ids contains a majority of the voters. */
export function hasQuorum(voters: readonly NodeId[], ids: ReadonlySet<NodeId>): boolean {
  let n = 0;
  for (const id of voters) if (ids.has(id)) n++;
  return n >= majority(voters.length);
}
