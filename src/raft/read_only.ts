/**
 * ReadIndex bookkeeping on the leader: each read request records the commit index at the time
 * it arrived, and is answered once a majority has acknowledged a heartbeat carrying its context
 * (proving this node was still leader when the read arrived).
 */
import type { Message, NodeId } from './types.js';

export interface ReadIndexStatus {
  /** Commit index when the request arrived: the read may be served once applied >= index. */
  index: number;
  request: Message;
  acks: Set<NodeId>;
}

/** A map key for a request context: one character per byte (what a latin1 decoding gives). */
function contextKey(context: Uint8Array | undefined): string {
  if (!context) return '';
  let key = '';
  for (let i = 0; i < context.length; i++) key += String.fromCharCode(context[i]!);
  return key;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Request contexts in arrival order. */
  private readonly queue: string[] = [];

  constructor(readonly maxPending: number) {}

  get size(): number {
    return this.queue.length;
  }

  /** Adds a request; returns false if the queue is full or the context is already pending. */
  addRequest(index: number, request: Message): boolean {
    const key = contextKey(request.context);
    if (this.pending.has(key) || this.queue.length >= this.maxPending) return false;
    this.pending.set(key, { index, request, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records a heartbeat acknowledgement; returns the acks of that request, if pending. */
  recvAck(from: NodeId, context: Uint8Array | undefined): Set<NodeId> | undefined {
    const status = this.pending.get(contextKey(context));
    if (!status) return undefined;
    status.acks.add(from);
    return status.acks;
  }

  /**
   * The request with `context` has quorum: it and every request queued before it are answered
   * (a heartbeat round that confirms a later read also confirms the earlier ones).
   */
  advance(context: Uint8Array | undefined): ReadIndexStatus[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const st = this.pending.get(k);
      if (st) out.push(st);
      this.pending.delete(k);
    }
    return out;
  }

  lastPendingContext(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)?.request.context;
  }
}
