/**
 * A small synchronous network of RawNodes for the core's unit tests: every Ready is "persisted"
 * to an in-memory copy at once, its messages delivered in FIFO order, its entries applied.
 * (The fault-injecting simulator lives in test/raft/sim/.)
 */
import { RawNode } from '../../src/raft/rawnode.js';
import {
  DEFAULT_CONFIG,
  type MessageType,
  type Config,
  type Entry,
  type Message,
  type NodeId,
  type PersistentState,
  type Ready,
} from '../../src/raft/types.js';

/** mulberry32: a tiny seeded PRNG so elections are reproducible. */
export function seededRandom(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(r * n);
  };
}

export function emptyState(): PersistentState {
  return { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] };
}

export function newConfig(id: NodeId, peers: NodeId[], overrides: Partial<Config> = {}): Config {
  return { ...DEFAULT_CONFIG, id, peers, random: seededRandom(id * 7919), ...overrides };
}

export function data(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function text(d: Uint8Array): string {
  return new TextDecoder().decode(d);
}

/** Applies a Ready's persistent part to an in-memory PersistentState, as the log store does on disk. */
export function persist(state: PersistentState, rd: Ready): void {
  if (rd.snapshot) {
    state.snapshot = rd.snapshot;
    state.entries = state.entries.filter((e) => e.index > rd.snapshot!.metadata.index);
  }
  if (rd.entries.length > 0) {
    const first = rd.entries[0]!.index;
    state.entries = state.entries.filter((e) => e.index < first).concat(rd.entries);
  }
  if (rd.hardState) state.hardState = { ...rd.hardState };
}

export class Network {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly disks = new Map<NodeId, PersistentState>();
  readonly applied = new Map<NodeId, Entry[]>();
  /** Directed links that drop everything: "from->to". */
  readonly cut = new Set<string>();
  /** Every message delivered, for assertions. */
  readonly delivered: Message[] = [];
  readonly readStates = new Map<NodeId, { index: number; context: string }[]>();
  private queue: Message[] = [];

  constructor(
    ids: NodeId[],
    private readonly overrides: Partial<Config> = {},
  ) {
    for (const id of ids) {
      this.disks.set(id, emptyState());
      this.applied.set(id, []);
      this.readStates.set(id, []);
      this.nodes.set(id, new RawNode(newConfig(id, ids, overrides), emptyState()));
    }
  }

  node(id: NodeId): RawNode {
    return this.nodes.get(id)!;
  }

  /** Restarts `id` from its disk (losing nothing: every Ready was persisted). */
  restart(id: NodeId, applied = 0): void {
    const disk = this.disks.get(id)!;
    const ids = [...this.nodes.keys()];
    this.nodes.set(id, new RawNode(newConfig(id, ids, { ...this.overrides, applied }), structuredClone(disk)));
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Processes one Ready of `id`, queueing its messages. Returns whether there was one. */
  processReady(id: NodeId): boolean {
    const n = this.nodes.get(id)!;
    if (!n.hasReady()) return false;
    const rd = n.ready();
    persist(this.disks.get(id)!, rd);
    if (rd.snapshot) this.applied.set(id, [{ term: rd.snapshot.metadata.term, index: rd.snapshot.metadata.index, type: 0, data: rd.snapshot.data }]);
    this.applied.get(id)!.push(...rd.committedEntries);
    for (const rs of rd.readStates) this.readStates.get(id)!.push({ index: rs.index, context: text(rs.context) });
    this.queue.push(...rd.messages);
    n.advance(rd);
    return true;
  }

  /** Runs every node's Ready and delivers messages until nothing moves (bounded). */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of this.nodes.keys()) moved = this.processReady(id) || moved;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        moved = true;
        if (this.cut.has(`${m.from}->${m.to}`)) continue;
        const to = this.nodes.get(m.to);
        if (!to) continue;
        this.delivered.push(m);
        to.step(m);
      }
      if (!moved) return;
    }
    throw new Error('network did not stabilize');
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).tick();
  }

  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.stabilize();
    }
  }

  leader(): NodeId | undefined {
    for (const [id, n] of this.nodes) if (n.status().role === 'leader') return id;
    return undefined;
  }

  /** Application data of the entries applied by `id` (no-ops excluded). */
  appliedData(id: NodeId): string[] {
    return this.applied
      .get(id)!
      .filter((e) => e.data.byteLength > 0)
      .map((e) => text(e.data));
  }

  countDelivered(type: MessageType): number {
    return this.delivered.filter((m) => m.type === type).length;
  }
}
