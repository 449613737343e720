/**
 * RaftNode over real LevelDB logs, with an in-memory network between in-process nodes: proposals
 * from followers (forwarded through Raft), the apply pipeline, and reads waiting for apply.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { WalLogStore } from '../../src/wal/wal.js';
import { ConfChangeType, EntryType, MessageType, type ConfState, type Entry, type Message, type NodeId, type Snapshot } from '../../src/raft/types.js';
import { decodeConfChange, describeConfChange } from '../../src/raft/confchange.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { ProposalTimeoutError, RaftNode, unwrapProposal, wrapProposal, type StateMachine } from '../../src/server/raft_node.js';

/** Appends every entry's data to a list; answers each proposal with "<node>:<index>". */
class ListMachine implements StateMachine {
  readonly applied: { index: number; data: string }[] = [];
  private index = 0;
  constructor(
    private readonly id: NodeId,
    public applyDelayMs = 0,
  ) {}
  appliedIndex(): number {
    return this.index;
  }
  async apply(entries: Entry[]): Promise<unknown[]> {
    if (this.applyDelayMs > 0) await new Promise((r) => setTimeout(r, this.applyDelayMs));
    return entries.map((e) => {
      this.index = e.index;
      if (e.data.byteLength === 0) return undefined;
      const cc = e.type === EntryType.ConfChange ? decodeConfChange(e.data) : undefined;
      const data = cc ? `conf:${describeConfChange(cc)}:${Buffer.from(cc.context ?? []).toString()}` : Buffer.from(e.data).toString();
      this.applied.push({ index: e.index, data });
      return `${this.id}:${e.index}`;
    });
  }
  async snapshot(): Promise<Uint8Array> {
    return Buffer.from(JSON.stringify(this.applied));
  }
  async restore(s: Snapshot): Promise<void> {
    this.applied.splice(0, this.applied.length, ...(JSON.parse(Buffer.from(s.data).toString()) as { index: number; data: string }[]));
    this.index = s.metadata.index;
  }
}

interface TestCluster {
  nodes: Map<NodeId, RaftNode>;
  logStores: Map<NodeId, WalLogStore>;
  machines: Map<NodeId, ListMachine>;
  /** Messages for which this returns true are dropped. */
  drop: { fn: (m: Message) => boolean };
  stop(): Promise<void>;
}

const clusters: TestCluster[] = [];
afterEach(async () => {
  while (clusters.length > 0) await clusters.pop()!.stop();
});

async function startCluster(opts: { proposalTimeoutMs?: number; snapshotEveryBytes?: number; snapshotCatchUpBytes?: number } = {}): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-raftnode-'));
  const ids = [1, 2, 3];
  const nodes = new Map<NodeId, RaftNode>();
  const machines = new Map<NodeId, ListMachine>();
  const stores: WalLogStore[] = [];
  const logStores = new Map<NodeId, WalLogStore>();
  const drop = { fn: (_m: Message): boolean => false };
  for (const id of ids) {
    const logStore = await WalLogStore.open(path.join(dir, `n${id}`));
    stores.push(logStore);
    logStores.set(id, logStore);
    const machine = new ListMachine(id);
    machines.set(id, machine);
    const node = new RaftNode({
      id,
      peers: ids,
      logStore,
      stateMachine: machine,
      tickMs: 10,
      raft: { electionTick: 10, heartbeatTick: 1, random: (n) => (id === 1 ? 0 : n - 1) },
      ...(opts.proposalTimeoutMs ? { proposalTimeoutMs: opts.proposalTimeoutMs } : {}),
      ...(opts.snapshotEveryBytes ? { snapshotEveryBytes: opts.snapshotEveryBytes, snapshotCatchUpBytes: opts.snapshotCatchUpBytes ?? 0 } : {}),
      transport: {
        send: (msgs) => {
          for (const m of msgs) {
            if (drop.fn(m)) continue;
            const copy = structuredClone(m);
            setImmediate(() => nodes.get(m.to)?.receive(copy));
          }
        },
      },
    });
    nodes.set(id, node);
  }
  for (const n of nodes.values()) await n.start();
  const cluster: TestCluster = {
    nodes,
    logStores,
    machines,
    drop,
    stop: async () => {
      for (const n of nodes.values()) await n.stop();
      for (const s of stores) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  clusters.push(cluster);
  return cluster;
}

async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function leaderOf(c: TestCluster): Promise<{ leader: RaftNode; followers: RaftNode[] }> {
  await waitFor(() => [...c.nodes.values()].filter((n) => n.isLeader).length === 1 && [...c.nodes.values()].every((n) => n.leader !== 0), 'a leader');
  const all = [...c.nodes.values()];
  return { leader: all.find((n) => n.isLeader)!, followers: all.filter((n) => !n.isLeader) };
}

describe('proposal envelope', () => {
  test('round-trips proposer, sequence and payload; anything else is not an envelope', () => {
    const env = wrapProposal(7, 1_733_000_000_000_123, Buffer.from('payload'));
    expect(unwrapProposal(env)).toEqual({ proposer: 7, seq: 1_733_000_000_000_123, payload: Buffer.from('payload') });
    expect(unwrapProposal(new Uint8Array(0))).toBeUndefined();
    expect(unwrapProposal(Buffer.from('a plain entry that is long enough'))).toBeUndefined();
  });
});

describe('RaftNode', () => {
  test('a follower proposal goes through the leader and resolves with the follower’s own result', async () => {
    const c = await startCluster();
    const { followers } = await leaderOf(c);
    const f = followers[0]!;
    const result = await f.propose(Buffer.from('from-follower'));
    const entry = c.machines.get(f.id)!.applied.find((a) => a.data === 'from-follower');
    expect(entry).toBeDefined();
    expect(result).toBe(`${f.id}:${entry!.index}`);
    // The state machines see the payload without the envelope, at the same index everywhere.
    await waitFor(() => [...c.machines.values()].every((m) => m.applied.some((a) => a.data === 'from-follower')), 'apply everywhere');
    for (const m of c.machines.values()) expect(m.applied.find((a) => a.data === 'from-follower')!.index).toBe(entry!.index);
  });

  test('a conf change applies on every member in log order; the state machine gets it with its context, and the proposer its result', async () => {
    const c = await startCluster();
    const { leader } = await leaderOf(c);
    // An entry of the leader's term is committed: conf changes are accepted.
    await leader.propose(Buffer.from('before'));
    const seen: ConfState[] = [];
    for (const n of c.nodes.values()) n.on('confState', (cs) => seen.push(cs));
    const at = leader.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4, context: Buffer.from('member n4') });
    expect(() => leader.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 })).toThrow(ProposalDroppedError);
    await leader.propose(Buffer.from('after'));
    await waitFor(() => [...c.machines.values()].every((m) => m.appliedIndex() > at.index), 'apply everywhere');
    for (const n of c.nodes.values()) expect(n.status().config).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(seen).toEqual(Array(3).fill({ voters: [1, 2, 3], learners: [4] }));
    expect(await at.result).toBe(`${leader.id}:${at.index}`);
    for (const m of c.machines.values()) {
      expect(m.applied.map((a) => a.data)).toEqual(['before', 'conf:AddLearnerNode 4:member n4', 'after']);
      expect(m.applied.find((a) => a.index === at.index)?.data).toBe('conf:AddLearnerNode 4:member n4');
    }
  });

  test('concurrent proposals from every member each resolve once, with their own entry', async () => {
    const c = await startCluster();
    await leaderOf(c);
    const proposals = [...c.nodes.values()].flatMap((n) => Array.from({ length: 30 }, (_, i) => ({ n, data: `${n.id}-${i}` })));
    const results = await Promise.all(proposals.map(({ n, data }) => n.propose(Buffer.from(data))));
    proposals.forEach(({ n, data }, i) => {
      const entry = c.machines.get(n.id)!.applied.find((a) => a.data === data)!;
      expect(results[i]).toBe(`${n.id}:${entry.index}`);
    });
    await waitFor(() => [...c.machines.values()].every((m) => m.applied.length === proposals.length), 'apply everywhere');
    const lists = [...c.machines.values()].map((m) => m.applied.map((a) => a.data));
    expect(lists[1]).toEqual(lists[0]);
    expect(lists[2]).toEqual(lists[0]);
  });

  test('a forwarded proposal the leader never receives fails with a timeout and frees its slot', async () => {
    const c = await startCluster({ proposalTimeoutMs: 300 });
    const { followers } = await leaderOf(c);
    const f = followers[0]!;
    c.drop.fn = (m) => m.type === MessageType.Prop;
    await expect(f.propose(Buffer.from('lost'))).rejects.toBeInstanceOf(ProposalTimeoutError);
    c.drop.fn = () => false;
    await expect(f.propose(Buffer.from('after'))).resolves.toMatch(new RegExp(`^${f.id}:`));
    expect(c.machines.get(f.id)!.applied.map((a) => a.data)).toEqual(['after']);
  });

  test('the Ready loop syncs exactly what the core marks mustSync, and writes commit-only hard states unsynced', async () => {
    const c = await startCluster();
    const saves: {
      id: NodeId;
      mustSync: boolean | undefined;
      entries: number;
      snapshot: boolean;
      hardState?: { term: number; vote: number; commit: number };
    }[] = [];
    for (const [id, store] of c.logStores) {
      const save = store.save.bind(store);
      store.save = (u) => {
        saves.push({
          id,
          mustSync: u.mustSync,
          entries: u.entries.length,
          snapshot: u.snapshot !== undefined,
          ...(u.hardState ? { hardState: { ...u.hardState } } : {}),
        });
        return save(u);
      };
    }
    const { leader } = await leaderOf(c);
    for (let i = 0; i < 20; i++) await leader.propose(Buffer.from(`w${i}`));
    await waitFor(() => [...c.machines.values()].every((m) => m.applied.length === 20), 'apply everywhere');
    const last = new Map<NodeId, { term: number; vote: number }>();
    for (const s of saves) {
      expect(typeof s.mustSync).toBe('boolean');
      const prev = last.get(s.id);
      const newTermOrVote = s.hardState !== undefined && (prev === undefined || s.hardState.term !== prev.term || s.hardState.vote !== prev.vote);
      // An unsynced save carries a hard state whose term and vote are already on disk, nothing else.
      if (!s.mustSync) {
        expect(s.entries).toBe(0);
        expect(s.snapshot).toBe(false);
        expect(s.hardState).toBeDefined();
        if (prev) expect(newTermOrVote).toBe(false);
      } else if (prev && s.entries === 0 && !s.snapshot) {
        expect(newTermOrVote).toBe(true);
      }
      if (s.hardState) last.set(s.id, { term: s.hardState.term, vote: s.hardState.vote });
    }
    expect(saves.some((s) => s.mustSync === false)).toBe(true);
    expect(saves.some((s) => s.mustSync === true && s.entries > 0)).toBe(true);
  });

  test('a read barrier waits for the state machine to apply earlier writes, not only for the commit', async () => {
    const c = await startCluster();
    const { leader, followers } = await leaderOf(c);
    const f = followers[0]!;
    // The follower applies slowly: the leader acknowledges the write long before the follower has it.
    c.machines.get(f.id)!.applyDelayMs = 300;
    await leader.propose(Buffer.from('acknowledged'));
    expect(c.machines.get(f.id)!.applied.map((a) => a.data)).not.toContain('acknowledged');
    await f.readBarrier(5_000);
    expect(c.machines.get(f.id)!.applied.map((a) => a.data)).toContain('acknowledged');
  });

  test('large entries trigger snapshots by bytes, and the log kept behind them is bounded by bytes', async () => {
    const c = await startCluster({ snapshotEveryBytes: 16 * 1024, snapshotCatchUpBytes: 4 * 1024 });
    const { leader } = await leaderOf(c);
    const big = Buffer.alloc(1024, 7);
    for (let i = 0; i < 60; i++) await leader.propose(big);
    const store = c.logStores.get(leader.id)!;
    // ~1 KiB entries: a snapshot every ~16 of them, ~4 kept behind it (not snapshotCatchUpEntries' 5,000).
    expect(store.firstIndex()).toBeGreaterThan(30);
    expect(store.lastIndex() - store.firstIndex() + 1).toBeLessThanOrEqual(16 + 4 + 2);
    // Nothing was lost to compaction: every entry was applied everywhere.
    await waitFor(() => [...c.machines.values()].every((m) => m.applied.length === 60), 'apply everywhere');
  });
});
