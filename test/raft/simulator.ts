/**
 * A deterministic cluster simulator for the Raft core: N RawNodes, a virtual clock, and a
 * network that drops, delays, duplicates and reorders messages and can cut any directed link.
 * Nodes crash (losing everything not persisted: their in-memory state and the messages they
 * had not yet handed to the network) and restart from their simulated disk.
 *
 * After every step it checks the safety properties of the Raft paper (figure 3): Election
 * Safety, Log Matching, Leader Completeness, State Machine Safety. All randomness comes from
 * one seeded PRNG, so a seed and a schedule replay exactly.
 */
import { RawNode } from '../../src/raft/rawnode.js';
import { ProposalDroppedError, ReadIndexDroppedError } from '../../src/raft/errors.js';
import { decodeConfChange } from '../../src/raft/confchange.js';
import {
  ConfChangeType,
  DEFAULT_CONFIG,
  EntryType,
  StateRole,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type PersistentState,
} from '../../src/raft/types.js';
import { persist, seededRandom } from './harness.js';

export type Action =
  | { tick: number }
  /** Proposes `count` entries at whichever node leads (or at node `at` if none does). */
  | { propose: number; count?: number }
  /** Proposes at node `at` whether or not it leads (followers must drop it). */
  | { proposeAt: number }
  | { crash: number }
  | { crashLeader: true }
  /** The leader reaches only `reach` followers, takes `count` proposals, then crashes; links heal. */
  | { partialWrite: { reach: number; count: number } }
  | { isolateLeader: true }
  | { restart: number }
  | { isolate: number }
  | { cut: [number, number] }
  | { split: number[] }
  | { heal: true }
  | { drop: number }
  | { dup: number }
  | { delay: number }
  | { snapshot: number }
  | { read: number }
  | { transfer: [number, number] }
  /**
   * At the leader, a configuration change of the `pick`-th candidate node (modulo their count):
   * add a learner (a pool node never in a configuration), promote a learner, or remove a member
   * (a voter only while more than one remains). Voters stay within 1..5.
   */
  | { confChange: { kind: 'addLearner' | 'promote' | 'remove'; pick: number } };

class InvariantViolation extends Error {}

interface SimNode {
  id: NodeId;
  raw: RawNode | undefined;
  disk: PersistentState;
  /** The application: data of applied entries by index (no-ops included as ''). */
  applied: Map<number, string>;
  appliedIndex: number;
}

interface InFlight {
  msg: Message;
  deliverAt: number;
}

export interface SimOptions {
  /** Voters of the initial configuration: 1..nodes. */
  nodes: number;
  /**
   * Nodes in all, at least `nodes` (the default): those beyond the initial voters start empty,
   * outside any configuration, for confChange actions to add.
   */
  pool?: number;
  seed: number;
  /** Small chunks so snapshots span several MsgSnap messages. */
  maxSnapshotChunkBytes?: number;
  electionTick?: number;
  maxSizePerMsg?: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class Simulator {
  readonly nodes: SimNode[] = [];
  /** Every node of the pool. */
  readonly ids: NodeId[];
  /** The initial voters (what every node boots with when it has no snapshot). */
  private readonly initialVoters: NodeId[];
  /** Nodes ever removed: ids are never reused (as etcd's member ids). */
  private readonly removed = new Set<NodeId>();
  private readonly rand: (n: number) => number;
  private network: InFlight[] = [];
  private readonly cut = new Set<string>();
  private dropRate = 0;
  private dupRate = 0;
  private maxDelay = 0;
  now = 0;
  /** Every leader ever observed, by term. */
  private readonly leaders = new Map<number, NodeId>();
  /** index -> "term:data" of every entry any node applied. */
  readonly committed = new Map<number, string>();
  /** Proposals acknowledged by a leader: "index:term" -> data. */
  readonly proposals = new Map<string, string>();
  private proposalSeq = 0;
  readonly trace: string[] = [];
  private readonly electionTick: number;

  constructor(readonly opts: SimOptions) {
    this.rand = seededRandom(opts.seed);
    this.ids = Array.from({ length: Math.max(opts.nodes, opts.pool ?? 0) }, (_, i) => i + 1);
    if (this.ids.length > 7) throw new Error('simulator: at most 7 nodes (the node id takes the low 3 bits of its random seed)');
    this.initialVoters = this.ids.slice(0, opts.nodes);
    this.electionTick = opts.electionTick ?? 10;
    for (const id of this.ids) {
      const disk: PersistentState = { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] };
      const node: SimNode = { id, raw: undefined, disk, applied: new Map(), appliedIndex: 0 };
      this.nodes.push(node);
      this.boot(node);
    }
  }

  private boot(node: SimNode): void {
    // Rebuild the application from the snapshot on disk; committed entries after it replay.
    node.applied = new Map();
    node.appliedIndex = 0;
    if (node.disk.snapshot) this.restoreApp(node, node.disk.snapshot.data, node.disk.snapshot.metadata.index);
    node.raw = new RawNode(
      {
        ...DEFAULT_CONFIG,
        id: node.id,
        peers: this.initialVoters,
        electionTick: this.electionTick,
        heartbeatTick: 1,
        maxInflightMsgs: 4,
        // Tiny: one entry per append, so entries replicate one message at a time (more interleavings).
        maxSizePerMsg: this.opts.maxSizePerMsg ?? 1,
        maxSnapshotChunkBytes: this.opts.maxSnapshotChunkBytes ?? 32,
        applied: node.appliedIndex,
        // One stream per node and boot. The node id sits in the low bits, so two nodes never share
        // a stream: with seed*31 + id*7 + now, node 2 booted at t45 and node 3 at t38 drew the same
        // election timeouts and split every vote forever (a simulator artifact the property test found).
        random: seededRandom(((Math.imul(this.opts.seed, 0x9e3779b1) ^ Math.imul(this.now + 1, 0x85ebca6b)) << 3) | node.id),
      },
      structuredClone(node.disk),
    );
  }

  private restoreApp(node: SimNode, data: Uint8Array, index: number): void {
    const entries = JSON.parse(decoder.decode(data)) as [number, string][];
    node.applied = new Map(entries);
    node.appliedIndex = index;
  }

  private log(line: string): void {
    this.trace.push(`t${this.now}: ${line}`);
    if (this.trace.length > 400) this.trace.shift();
  }

  node(id: NodeId): SimNode {
    return this.nodes[id - 1]!;
  }

  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const n of this.nodes) {
      const st = n.raw?.status();
      if (st?.role === StateRole.Leader && (!best || st.term > best.term)) best = { id: n.id, term: st.term };
    }
    return best?.id;
  }

  // ---- actions ---------------------------------------------------------------------------

  run(action: Action): void {
    if ('tick' in action) {
      for (let i = 0; i < action.tick; i++) this.tick();
    } else if ('propose' in action) {
      const at = this.leader() ?? this.ids[action.propose % this.ids.length]!;
      for (let i = 0; i < (action.count ?? 1); i++) this.propose(at);
    } else if ('proposeAt' in action) {
      this.propose(this.ids[action.proposeAt % this.ids.length]!);
    } else if ('crash' in action) {
      const n = this.node(this.ids[action.crash % this.ids.length]!);
      if (n.raw) {
        this.log(`crash ${n.id}`);
        n.raw = undefined;
        // Messages it had queued but not yet sent are lost with it; in-flight ones may still arrive.
      }
    } else if ('crashLeader' in action) {
      const leader = this.leader();
      if (leader !== undefined) this.run({ crash: leader - 1 });
    } else if ('partialWrite' in action) {
      const leader = this.leader();
      if (leader !== undefined) {
        const followers = this.ids.filter((id) => id !== leader);
        const reached = new Set<number>();
        while (reached.size < Math.min(action.partialWrite.reach, followers.length)) reached.add(followers[this.rand(followers.length)]!);
        const saved = new Set(this.cut);
        for (const f of followers) if (!reached.has(f)) this.cut.add(`${leader}>${f}`);
        this.log(`partial write by ${leader} reaching ${[...reached].join(',') || 'nobody'}`);
        for (let i = 0; i < action.partialWrite.count; i++) this.propose(leader);
        this.pump();
        this.run({ crash: leader - 1 });
        this.cut.clear();
        for (const c of saved) this.cut.add(c);
      }
    } else if ('isolateLeader' in action) {
      const leader = this.leader();
      if (leader !== undefined) this.run({ isolate: leader - 1 });
    } else if ('restart' in action) {
      const n = this.node(this.ids[action.restart % this.ids.length]!);
      if (!n.raw) {
        this.log(`restart ${n.id}`);
        this.boot(n);
      }
    } else if ('isolate' in action) {
      const id = this.ids[action.isolate % this.ids.length]!;
      for (const o of this.ids) if (o !== id) this.cut.add(`${id}>${o}`).add(`${o}>${id}`);
      this.log(`isolate ${id}`);
    } else if ('cut' in action) {
      const [a, b] = action.cut.map((x) => this.ids[x % this.ids.length]!) as [number, number];
      if (a !== b) this.cut.add(`${a}>${b}`);
      this.log(`cut ${a}>${b}`);
    } else if ('split' in action) {
      const side = new Set(action.split.map((x) => this.ids[x % this.ids.length]!));
      for (const a of this.ids) for (const b of this.ids) if (side.has(a) !== side.has(b)) this.cut.add(`${a}>${b}`);
      this.log(`split ${[...side].join(',')}`);
    } else if ('heal' in action) {
      this.cut.clear();
      this.log('heal');
    } else if ('drop' in action) {
      this.dropRate = action.drop;
    } else if ('dup' in action) {
      this.dupRate = action.dup;
    } else if ('delay' in action) {
      this.maxDelay = action.delay;
    } else if ('snapshot' in action) {
      this.snapshot(this.ids[action.snapshot % this.ids.length]!);
    } else if ('read' in action) {
      const n = this.node(this.ids[action.read % this.ids.length]!);
      try {
        n.raw?.readIndex(encoder.encode(`read-${n.id}-${this.now}-${this.rand(1e9)}`));
      } catch (err) {
        if (!(err instanceof ReadIndexDroppedError)) throw err;
      }
    } else if ('confChange' in action) {
      this.proposeConfChange(action.confChange.kind, action.confChange.pick);
    } else if ('transfer' in action) {
      const [from, to] = action.transfer.map((x) => this.ids[x % this.ids.length]!) as [number, number];
      this.node(from).raw?.transferLeadership(to);
    }
    this.pump();
  }

  propose(at: NodeId): boolean {
    const n = this.node(at);
    if (!n.raw) return false;
    const data = `p${++this.proposalSeq}`;
    try {
      const { index, term } = n.raw.propose(encoder.encode(data));
      this.proposals.set(`${index}:${term}`, data);
      return true;
    } catch (err) {
      if (err instanceof ProposalDroppedError) return false;
      throw err;
    }
  }

  private proposeConfChange(kind: 'addLearner' | 'promote' | 'remove', pick: number): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const raw = this.node(leader).raw!;
    const cs = raw.status().config;
    const members = new Set([...cs.voters, ...cs.learners]);
    let candidates: NodeId[];
    let type: ConfChangeType;
    if (kind === 'addLearner') {
      candidates = this.ids.filter((id) => !members.has(id) && !this.removed.has(id));
      type = ConfChangeType.AddLearnerNode;
    } else if (kind === 'promote') {
      candidates = cs.voters.length < 5 ? cs.learners : [];
      type = ConfChangeType.AddNode;
    } else {
      candidates = [...cs.learners, ...(cs.voters.length > 1 ? cs.voters : [])];
      type = ConfChangeType.RemoveNode;
    }
    if (candidates.length === 0) return;
    const nodeId = candidates[pick % candidates.length]!;
    try {
      const at = raw.proposeConfChange({ type, nodeId });
      if (type === ConfChangeType.RemoveNode) this.removed.add(nodeId);
      this.log(`leader ${leader} proposes ${kind} ${nodeId} at ${at.term}/${at.index}`);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
    }
  }

  /** The configuration as the current leader (or else node 1) has applied it. */
  confState(): ConfState {
    const leader = this.leader();
    const raw = this.node(leader ?? 1).raw;
    return raw ? raw.status().config : { voters: this.initialVoters, learners: [] };
  }

  /** The application snapshots its state at its applied index and compacts the log behind it. */
  snapshot(id: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    const current = n.disk.snapshot?.metadata.index ?? 0;
    if (n.appliedIndex <= current) return;
    const index = n.appliedIndex;
    const data = encoder.encode(JSON.stringify([...n.applied.entries()].filter(([i]) => i <= index)));
    const snap = n.raw.createSnapshot(index, data);
    // Keep a short tail so a slightly slow follower still catches up from the log.
    const compactTo = Math.max(0, index - 3);
    n.disk.snapshot = snap;
    n.disk.entries = n.disk.entries.filter((e) => e.index > compactTo);
    if (compactTo > n.raw.raft.log.firstIndex() - 1) n.raw.compactLog(compactTo);
    this.log(`snapshot ${id} at ${index}`);
  }

  private tick(): void {
    this.now++;
    for (const n of this.nodes) n.raw?.tick();
    this.pump();
  }

  /** Processes every Ready and delivers every message due now, until quiet (bounded). */
  private pump(): void {
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      for (const n of this.nodes) moved = this.processReady(n) || moved;
      const due = this.network.filter((f) => f.deliverAt <= this.now);
      if (due.length > 0) {
        this.network = this.network.filter((f) => f.deliverAt > this.now);
        // Reorder: deliver the due messages in a random order.
        for (let i = due.length - 1; i > 0; i--) {
          const j = this.rand(i + 1);
          [due[i], due[j]] = [due[j]!, due[i]!];
        }
        for (const f of due) {
          const to = this.node(f.msg.to);
          if (to.raw) to.raw.step(f.msg);
        }
        moved = true;
      }
      this.checkInvariants();
      if (!moved) return;
    }
    throw new InvariantViolation('simulator: pump did not quiesce (livelock)');
  }

  private processReady(n: SimNode): boolean {
    const raw = n.raw;
    if (!raw?.hasReady()) return false;
    const rd = raw.ready();
    // 1. persist
    persist(n.disk, rd);
    if (rd.softState?.role === StateRole.Leader) this.onLeader(n);
    // 2. send
    for (const m of rd.messages) this.send(m);
    // 3. apply
    if (rd.snapshot) {
      this.restoreApp(n, rd.snapshot.data, rd.snapshot.metadata.index);
      this.log(`node ${n.id} installed snapshot at ${rd.snapshot.metadata.index}`);
    }
    for (const e of rd.committedEntries) {
      this.apply(n, e);
      // The application applies a conf change in log order, as raft_node does.
      const cc = e.type === EntryType.ConfChange ? decodeConfChange(e.data) : undefined;
      if (cc) raw.applyConfChange(cc);
    }
    raw.advance(rd);
    return true;
  }

  /** A scenario's own message filter: messages it returns true for are lost. */
  dropIf: ((m: Message) => boolean) | undefined;

  private send(m: Message): void {
    if (this.cut.has(`${m.from}>${m.to}`)) return;
    if (this.dropIf?.(m)) return;
    if (this.dropRate > 0 && this.rand(100) < this.dropRate) return;
    const copies = this.dupRate > 0 && this.rand(100) < this.dupRate ? 2 : 1;
    for (let i = 0; i < copies; i++) this.network.push({ msg: m, deliverAt: this.now + (this.maxDelay > 0 ? this.rand(this.maxDelay + 1) : 0) });
    // Bound the network: a real one has finite buffers.
    if (this.network.length > 20_000) this.network.splice(0, this.network.length - 20_000);
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.appliedIndex + 1) throw new InvariantViolation(`node ${n.id} applied ${e.index} after ${n.appliedIndex}`);
    const data = decoder.decode(e.data);
    const ident = `${e.term}:${data}`;
    const seen = this.committed.get(e.index);
    if (seen !== undefined && seen !== ident) {
      throw new InvariantViolation(`State Machine Safety: node ${n.id} applied ${ident} at ${e.index}, another node applied ${seen}`);
    }
    this.committed.set(e.index, ident);
    n.applied.set(e.index, data);
    n.appliedIndex = e.index;
  }

  /** Leader Completeness, checked as a node takes office: its log holds every committed entry. */
  private onLeader(n: SimNode): void {
    const st = n.raw!.status();
    const prev = this.leaders.get(st.term);
    if (prev !== undefined && prev !== n.id) throw new InvariantViolation(`Election Safety: term ${st.term} has leaders ${prev} and ${n.id}`);
    this.leaders.set(st.term, n.id);
    this.log(`node ${n.id} leads term ${st.term}`);
    const snapIndex = n.disk.snapshot?.metadata.index ?? 0;
    const byIndex = new Map(n.disk.entries.map((e) => [e.index, e]));
    for (const [index, ident] of this.committed) {
      if (index <= snapIndex) continue;
      const e = byIndex.get(index);
      const mine = e ? `${e.term}:${decoder.decode(e.data)}` : undefined;
      if (mine !== ident) {
        throw new InvariantViolation(`Leader Completeness: leader ${n.id} of term ${st.term} has ${mine ?? 'nothing'} at committed index ${index} (${ident})`);
      }
    }
  }

  private checkInvariants(): void {
    // Election Safety for leaders that did not emit a softState change yet.
    for (const n of this.nodes) {
      const st = n.raw?.status();
      if (st?.role !== StateRole.Leader) continue;
      const prev = this.leaders.get(st.term);
      if (prev !== undefined && prev !== n.id) throw new InvariantViolation(`Election Safety: term ${st.term} has leaders ${prev} and ${n.id}`);
    }
    // Log Matching over what each node has persisted: same index and term => same entry and same prefix.
    const logs = this.nodes.map((n) => new Map(n.disk.entries.map((e) => [e.index, e])));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!;
        const lb = logs[b]!;
        let matched = false;
        const indexes = [...la.keys()].filter((i) => lb.has(i)).sort((x, y) => y - x);
        for (const i of indexes) {
          const ea = la.get(i)!;
          const eb = lb.get(i)!;
          if (matched || ea.term === eb.term) {
            if (ea.term !== eb.term || decoder.decode(ea.data) !== decoder.decode(eb.data)) {
              throw new InvariantViolation(`Log Matching: nodes ${a + 1} and ${b + 1} share an entry after index ${i} but differ at ${i}`);
            }
            matched = true;
          }
        }
      }
    }
  }

  // ---- liveness --------------------------------------------------------------------------

  /** Ends all faults: heal, restart, no loss; returns ticks until everything converged. */
  converge(maxTicks: number): number {
    this.cut.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelay = 0;
    for (const n of this.nodes) if (!n.raw) this.boot(n);
    this.pump();
    const marker = `final-${this.opts.seed}`;
    let proposed: { index: number; term: number } | undefined;
    for (let t = 0; t < maxTicks; t++) {
      this.tick();
      const leader = this.leader();
      if (leader === undefined) continue;
      const raw = this.node(leader).raw!;
      if (!proposed || raw.status().term !== proposed.term) {
        try {
          proposed = raw.propose(encoder.encode(marker));
        } catch (err) {
          if (!(err instanceof ProposalDroppedError)) throw err;
          continue;
        }
      }
      const target = proposed.index;
      // Every member of the configuration (voters and learners); removed or never added nodes get nothing new.
      const cs = raw.status().config;
      const members = [...cs.voters, ...cs.learners].map((id) => this.node(id));
      if (members.every((n) => n.appliedIndex >= target && n.applied.get(target) === marker)) return t;
    }
    throw new InvariantViolation(`Liveness: no convergence within ${maxTicks} ticks after faults stopped (leader ${this.leader() ?? 'none'})`);
  }

  /** After convergence: every node applied the same sequence, including every acknowledged proposal that committed. */
  checkConverged(): void {
    const cs = this.confState();
    const members = [...cs.voters, ...cs.learners].map((id) => this.node(id));
    const ref = this.node(this.leader() ?? members[0]!.id);
    for (const n of members) {
      for (let i = 1; i <= ref.appliedIndex; i++) {
        if (n.applied.get(i) !== ref.applied.get(i)) throw new InvariantViolation(`Convergence: node ${n.id} differs from node ${ref.id} at ${i}`);
      }
    }
    for (const [key, data] of this.proposals) {
      const [index] = key.split(':').map(Number) as [number];
      const ident = this.committed.get(index);
      // A proposal whose index committed with its term must be what every node applied there.
      if (ident === `${key.split(':')[1]}:${data}`) {
        for (const n of members)
          if (n.applied.get(index) !== data) throw new InvariantViolation(`committed proposal ${data} at ${index} missing on node ${n.id}`);
      }
    }
  }
}
