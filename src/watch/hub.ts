/**
 * WatchHub: every watch of one member, served from that member's applied state.
 *
 * As in etcd's watchableStore, a watcher is either
 *   - synced: it has seen every revision up to the store's current one, and receives live
 *     events as revisions are applied; or
 *   - unsynced: it is behind (it started from an old revision, or its consumer was slow and its
 *     bounded buffer filled up), and a background loop feeds it from the store's history.
 * A watcher moves from unsynced to synced only in the same synchronous step in which it is
 * found caught up with the store's current revision, and live events are published in the
 * same synchronous step in which the store's revision advances; so no revision is missed and
 * none is delivered twice. The apply loop never waits for a consumer.
 */
import { Buffer } from 'node:buffer';
import { CodedError, EtcdMessage, GrpcCode } from '../errors.js';
import { WatchFilter, type Event, type WatchRequest, type WatchResponse, type WatchSource } from './types.js';

export interface WatchHubOptions {
  /** Events buffered per watcher before it is moved to catch up from history. */
  maxBufferedEvents?: number;
  /** Revisions read from history per step of the catch-up loop. */
  historyBatchRevisions?: number;
  /** Watchers per hub. */
  maxWatchers?: number;
}

/** @public (a kind of error: test/errors.test.ts walks every exported one) */
export class WatchLimitError extends CodedError {
  static override readonly grpcCode = GrpcCode.ResourceExhausted;
  constructor() {
    super('ERR_TOO_MANY_WATCHERS', 'etcdserver: too many watchers');
  }
}

const keyString = (b: Buffer): string => b.toString('latin1');

function inRange(key: Buffer, start: Buffer, end: Buffer | undefined): boolean {
  if (!end || end.length === 0) return key.equals(start);
  if (Buffer.compare(key, start) < 0) return false;
  // A single 0x00 byte as range end means "every key >= start".
  if (end.length === 1 && end[0] === 0) return true;
  return Buffer.compare(key, end) < 0;
}

export class Watcher implements AsyncIterable<WatchResponse> {
  /** Next revision this watcher must receive. */
  nextRevision: number;
  synced = false;
  closed = false;
  private readonly queue: WatchResponse[] = [];
  private queuedEvents = 0;
  private waiting: ((r: IteratorResult<WatchResponse>) => void) | undefined;

  constructor(
    readonly id: number,
    readonly request: WatchRequest,
    startRevision: number,
    private readonly hub: WatchHub,
    private readonly maxBufferedEvents: number,
  ) {
    this.nextRevision = startRevision;
  }

  get isRange(): boolean {
    return !!this.request.rangeEnd && this.request.rangeEnd.length > 0;
  }

  matches(key: Buffer): boolean {
    return inRange(key, this.request.key, this.request.rangeEnd);
  }

  /** Room for `n` more events (a response with more events than the whole buffer is accepted when empty). */
  hasRoom(n: number): boolean {
    return this.queuedEvents === 0 || this.queuedEvents + n <= this.maxBufferedEvents;
  }

  /** Events of one revision that this watcher wants, after filters and prevKv. */
  /**
   * The events of a revision this watcher gets. Those stripped of their prevKv are taken from (or
   * added to) `stripped`, shared by every watcher of the revision: all its watchers then hold the
   * same event objects, which the gRPC stream encodes once (src/grpc/watch.ts).
   */
  select(events: Event[], stripped: Map<Event, Event> = new Map()): Event[] {
    const filters = this.request.filters ?? [];
    const out: Event[] = [];
    for (const e of events) {
      if (!this.matches(e.kv.key)) continue;
      if (e.type === 'PUT' && filters.includes(WatchFilter.NoPut)) continue;
      if (e.type === 'DELETE' && filters.includes(WatchFilter.NoDelete)) continue;
      if (!this.request.prevKv && e.prevKv) {
        let rest = stripped.get(e);
        if (rest === undefined) {
          const { prevKv: _drop, ...kept } = e;
          rest = kept;
          stripped.set(e, rest);
        }
        out.push(rest);
      } else {
        out.push(e);
      }
    }
    return out;
  }

  /** Queues a response for the consumer. */
  push(resp: WatchResponse): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: resp, done: false });
      return;
    }
    this.queue.push(resp);
    this.queuedEvents += resp.events.length;
  }

  /** The consumer's side: the next response, waiting if there is none. */
  next(): Promise<IteratorResult<WatchResponse>> {
    const resp = this.queue.shift();
    if (resp) {
      this.queuedEvents -= resp.events.length;
      if (!this.synced) this.hub.kick();
      return Promise.resolve({ value: resp, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** Responses already queued, without waiting (for batching writers). */
  drain(): WatchResponse[] {
    const out = this.queue.splice(0);
    this.queuedEvents = 0;
    if (!this.synced) this.hub.kick();
    return out;
  }

  get buffered(): number {
    return this.queuedEvents;
  }

  cancel(): void {
    this.hub.cancel(this.id);
  }

  /** Ends the stream after the queued responses. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.waiting && this.queue.length === 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return {
      next: () => this.next(),
      return: async () => {
        this.cancel();
        return { value: undefined, done: true };
      },
    };
  }
}

export class WatchHub {
  private readonly watchers = new Map<number, Watcher>();
  /** Synced single-key watchers by key, for O(1) matching of hot paths with many watchers. */
  private readonly syncedByKey = new Map<string, Set<Watcher>>();
  /** Synced range and prefix watchers, matched one by one. */
  private readonly syncedRanges = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private nextId = 1;
  private syncing = false;
  private syncAgain = false;
  private readonly unsubscribe: () => void;
  private readonly maxBufferedEvents: number;
  private readonly historyBatchRevisions: number;
  private readonly maxWatchers: number;
  private stopped = false;

  constructor(
    private readonly source: WatchSource,
    opts: WatchHubOptions = {},
  ) {
    this.maxBufferedEvents = opts.maxBufferedEvents ?? 1024;
    this.historyBatchRevisions = opts.historyBatchRevisions ?? 256;
    this.maxWatchers = opts.maxWatchers ?? 100_000;
    this.unsubscribe = source.onRevision((rev, events) => this.publish(rev, events));
  }

  get size(): number {
    return this.watchers.size;
  }

  get unsyncedCount(): number {
    return this.unsynced.size;
  }

  /** Creates a watch. Its first response is the `created` one. */
  watch(req: WatchRequest): Watcher {
    if (this.watchers.size >= this.maxWatchers) throw new WatchLimitError();
    const current = this.source.currentRevision();
    const start = req.startRevision && req.startRevision > 0 ? req.startRevision : current + 1;
    const w = new Watcher(this.nextId++, req, start, this, this.maxBufferedEvents);
    this.watchers.set(w.id, w);
    w.push({ watchId: w.id, revision: current, events: [], created: true });
    const compactRev = this.source.compactRevision();
    if (start < compactRev) {
      this.cancelCompacted(w, compactRev);
      return w;
    }
    if (start > current) this.addSynced(w);
    else {
      this.unsynced.add(w);
      this.kick();
    }
    return w;
  }

  cancel(id: number, reason?: string): void {
    const w = this.watchers.get(id);
    if (!w) return;
    this.remove(w);
    w.push({ watchId: id, revision: this.source.currentRevision(), events: [], canceled: true, ...(reason ? { cancelReason: reason } : {}) });
    w.close();
  }

  /** A progress notification to every synced watcher that asked for them and has nothing queued. */
  progressNotify(): void {
    const rev = this.source.currentRevision();
    for (const w of this.watchers.values()) {
      if (w.synced && w.request.progressNotify && w.buffered === 0) w.push({ watchId: w.id, revision: rev, events: [] });
    }
  }

  /** Answers an explicit progress request: the revision every synced watcher has seen. */
  progressOf(id: number): boolean {
    const w = this.watchers.get(id);
    if (!w?.synced) return false;
    w.push({ watchId: id, revision: this.source.currentRevision(), events: [] });
    return true;
  }

  /** The store was replaced: every watcher catches up from the new store's history. */
  resyncAll(): void {
    for (const w of this.watchers.values()) {
      if (!w.synced) continue;
      this.removeSynced(w);
      this.unsynced.add(w);
    }
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    for (const w of [...this.watchers.values()]) {
      this.remove(w);
      w.close();
    }
  }

  // ---- live path -----------------------------------------------------------------------

  /** Called synchronously as the store reaches `revision`. Never blocks: slow watchers fall back to history. */
  private publish(revision: number, events: Event[]): void {
    if (events.length === 0) return;
    // Every applied revision passes here, watched or not: nothing is allocated for a revision
    // no synced watcher can match (no key string per event, no set, no map).
    let touched: Set<Watcher> | undefined;
    if (this.syncedByKey.size > 0) {
      for (const e of events) {
        const exact = this.syncedByKey.get(keyString(e.kv.key));
        if (exact) for (const w of exact) (touched ??= new Set()).add(w);
      }
    }
    for (const w of this.syncedRanges) (touched ??= new Set()).add(w);
    if (touched !== undefined) this.deliver(revision, events, touched);
    if (this.unsynced.size > 0) this.kick();
  }

  /** Pushes `revision`'s events to the synced watchers they may concern. */
  private deliver(revision: number, events: Event[], touched: Set<Watcher>): void {
    const stripped = new Map<Event, Event>();
    for (const w of touched) {
      // A watch that starts at a future revision ignores everything before it.
      if (revision < w.nextRevision) continue;
      const selected = w.select(events, stripped);
      w.nextRevision = revision + 1;
      if (selected.length === 0) continue;
      if (w.hasRoom(selected.length)) {
        w.push({ watchId: w.id, revision, events: selected });
      } else {
        // The consumer is slow: stop pushing, and replay this revision from history later.
        w.nextRevision = revision;
        this.removeSynced(w);
        this.unsynced.add(w);
      }
    }
  }

  private addSynced(w: Watcher): void {
    w.synced = true;
    if (w.isRange) {
      this.syncedRanges.add(w);
      return;
    }
    const k = keyString(w.request.key);
    let set = this.syncedByKey.get(k);
    if (!set) {
      set = new Set();
      this.syncedByKey.set(k, set);
    }
    set.add(w);
  }

  private removeSynced(w: Watcher): void {
    w.synced = false;
    if (w.isRange) {
      this.syncedRanges.delete(w);
      return;
    }
    const k = keyString(w.request.key);
    const set = this.syncedByKey.get(k);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.syncedByKey.delete(k);
  }

  private remove(w: Watcher): void {
    this.watchers.delete(w.id);
    this.unsynced.delete(w);
    if (w.synced) this.removeSynced(w);
  }

  private cancelCompacted(w: Watcher, compactRevision: number): void {
    this.remove(w);
    w.push({
      watchId: w.id,
      revision: this.source.currentRevision(),
      events: [],
      canceled: true,
      compactRevision,
      cancelReason: EtcdMessage.compacted,
    });
    w.close();
  }

  // ---- catch-up path -------------------------------------------------------------------

  /** Runs the catch-up loop if there is anything to catch up. */
  kick(): void {
    if (this.stopped || this.unsynced.size === 0) return;
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = true;
    setImmediate(() => void this.syncLoop());
  }

  private async syncLoop(): Promise<void> {
    try {
      do {
        this.syncAgain = false;
        let progressed = false;
        for (const w of [...this.unsynced]) {
          if (this.stopped) return;
          if (!this.watchers.has(w.id) || !w.hasRoom(1)) continue;
          progressed = (await this.catchUp(w)) || progressed;
        }
        if (progressed) this.syncAgain = true;
      } while (this.syncAgain && this.unsynced.size > 0 && !this.stopped);
    } finally {
      this.syncing = false;
    }
  }

  /** One history step for `w`. Returns whether it moved forward. */
  private async catchUp(w: Watcher): Promise<boolean> {
    const compactRev = this.source.compactRevision();
    if (w.nextRevision < compactRev) {
      this.cancelCompacted(w, compactRev);
      return true;
    }
    const current = this.source.currentRevision();
    if (w.nextRevision <= current) {
      const to = Math.min(current, w.nextRevision + this.historyBatchRevisions - 1);
      let events: Event[];
      try {
        events = await this.source.history(w.nextRevision, to, w.request.key, w.request.rangeEnd, !!w.request.prevKv);
      } catch (err) {
        // Compacted while we were reading: cancel with the new compact revision.
        const rev = this.source.compactRevision();
        if (w.nextRevision < rev) this.cancelCompacted(w, rev);
        else throw err;
        return true;
      }
      if (!this.watchers.has(w.id)) return false;
      // Group by revision so every response holds whole revisions.
      let i = 0;
      while (i < events.length) {
        const rev = events[i]!.kv.modRevision;
        let j = i;
        while (j < events.length && events[j]!.kv.modRevision === rev) j++;
        const selected = w.select(events.slice(i, j));
        if (selected.length > 0) {
          if (!w.hasRoom(selected.length)) {
            // Buffer full again: resume from this revision once the consumer drains.
            w.nextRevision = rev;
            return true;
          }
          w.push({ watchId: w.id, revision: rev, events: selected });
        }
        i = j;
      }
      w.nextRevision = to + 1;
    }
    // Synchronously with the check: no revision can be published between it and the move.
    if (w.nextRevision > this.source.currentRevision() && this.watchers.has(w.id)) {
      this.unsynced.delete(w);
      this.addSynced(w);
    }
    return true;
  }
}
