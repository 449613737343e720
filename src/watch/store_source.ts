/**
 * The MVCC store as a WatchSource. The store behind it can be swapped (a follower restoring a
 * snapshot replaces its whole store); listeners stay subscribed across the swap.
 */
import type { MvccStore } from '../mvcc/index.js';
import type { Event, WatchSource } from './types.js';

/** Events read from history per store call. */
const HISTORY_PAGE = 1000;

export class StoreWatchSource implements WatchSource {
  private store: MvccStore | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(revision: number, events: Event[]) => void>();

  attach(store: MvccStore): void {
    this.detach();
    this.store = store;
    this.unsubscribe = store.onApply((rev, events) => {
      for (const l of this.listeners) l(rev, events as Event[]);
    });
  }

  detach(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.store = undefined;
  }

  private get current(): MvccStore {
    if (!this.store) throw new Error('watch source: no store attached');
    return this.store;
  }

  currentRevision(): number {
    return this.current.revision;
  }

  compactRevision(): number {
    return this.current.compactRevision;
  }

  async history(fromRevision: number, toRevision: number, key: Buffer, rangeEnd: Buffer | undefined, prevKv: boolean): Promise<Event[]> {
    const out: Event[] = [];
    let next = fromRevision;
    while (next <= toRevision) {
      const r = await this.current.eventsSince(next, key, rangeEnd, { limit: HISTORY_PAGE, prevKv });
      for (const e of r.events) {
        if (e.kv.modRevision > toRevision) return out;
        out.push(e);
      }
      if (r.nextRevision <= next) break;
      next = r.nextRevision;
    }
    return out;
  }

  onRevision(listener: (revision: number, events: Event[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
