/**
 * Types of the watch layer. A watch streams every change of a key or range from a start
 * revision: history first (read from the MVCC store), then live events, with no gap and no
 * duplicate, all events of one revision in one response.
 */

import type { Event } from '../api/kv.js';

export type { Event } from '../api/kv.js';

export enum WatchFilter {
  NoPut = 'NOPUT',
  NoDelete = 'NODELETE',
}

export interface WatchRequest {
  key: Buffer;
  /** Range end (exclusive); empty/undefined = the single key; a single 0x00 byte = every key >= key. */
  rangeEnd?: Buffer;
  /** First revision to deliver; 0/undefined = the next revision after the current one. */
  startRevision?: number;
  prevKv?: boolean;
  filters?: WatchFilter[];
  progressNotify?: boolean;
}

export interface WatchResponse {
  watchId: number;
  /** Store revision this response reflects (the revision of its events, or the current one). */
  revision: number;
  events: Event[];
  created?: boolean;
  canceled?: boolean;
  /** Set when the watch was canceled because its start revision was compacted. */
  compactRevision?: number;
  cancelReason?: string;
}

/** What the watch layer needs from the store. */
export interface WatchSource {
  currentRevision(): number;
  compactRevision(): number;
  /**
   * Every event with revision in [fromRevision, toRevision] on keys in [key, rangeEnd), in
   * revision order, with prevKv filled when asked. Throws the store's compacted error if
   * fromRevision was compacted.
   */
  history(fromRevision: number, toRevision: number, key: Buffer, rangeEnd: Buffer | undefined, prevKv: boolean): Promise<Event[]>;
  /**
   * Subscribes to applied revisions. The listener must be called synchronously right after the
   * store's current revision becomes `revision`, with all of that revision's events.
   */
  onRevision(listener: (revision: number, events: Event[]) => void): () => void;
}
