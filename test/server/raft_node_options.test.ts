import { describe, expect, test } from 'vitest';
import { RaftConfigError } from '../../src/raft/errors.js';
import { RAFT_NODE_DEFAULTS, resolveRaftNodeOptions, type RaftNodeOptions } from '../../src/server/raft_node.js';
import { CLUSTER_DEFAULTS } from '../../src/server/config.js';

/** The parts resolveRaftNodeOptions does not look into. */
const base = { id: 1, peers: [1], tickMs: 100 } as unknown as RaftNodeOptions;

describe("RaftNode's options, resolved once", () => {
  test('every limit left out takes its default, and what is given is kept', () => {
    const r = resolveRaftNodeOptions({ ...base, snapshotEvery: 7, maxPendingReads: 3 });
    expect(r).toMatchObject({ ...RAFT_NODE_DEFAULTS, snapshotEvery: 7, maxPendingReads: 3 });
  });

  test('reads and proposals are bounded apart', () => {
    const r = resolveRaftNodeOptions({ ...base, maxPendingProposals: 5 });
    expect(r.maxPendingProposals).toBe(5);
    expect(r.maxPendingReads).toBe(RAFT_NODE_DEFAULTS.maxPendingReads);
  });

  test.each([
    ['snapshotEvery', 0],
    ['maxPendingProposals', -1],
    ['maxPendingApply', 1.5],
    ['proposalTimeoutMs', Number.NaN],
    ['snapshotCatchUpBytes', -1],
  ] as const)('%s = %s is refused', (key, value) => {
    expect(() => resolveRaftNodeOptions({ ...base, [key]: value })).toThrow(RaftConfigError);
  });

  test('a catch-up of 0 (keep nothing behind a snapshot) is allowed', () => {
    expect(resolveRaftNodeOptions({ ...base, snapshotCatchUpEntries: 0, snapshotCatchUpBytes: 0 })).toMatchObject({
      snapshotCatchUpEntries: 0,
      snapshotCatchUpBytes: 0,
    });
  });

  test("the cluster config's defaults are the node's", () => {
    expect(CLUSTER_DEFAULTS.snapshotEvery).toBe(RAFT_NODE_DEFAULTS.snapshotEvery);
    expect(CLUSTER_DEFAULTS.snapshotCatchUpEntries).toBe(RAFT_NODE_DEFAULTS.snapshotCatchUpEntries);
  });
});
