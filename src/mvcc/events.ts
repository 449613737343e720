/**
 * Replay of past changes (watch from a revision): EVENTS in revision order, filtered by key,
 * each turned into an Event with the key-value from HISTORY.
 *
 * prev_kv follows etcd's watch server, which reads the key at revision-1: present when the key
 * was live before the change and revision-1 is not compacted. Every replica gives the same
 * answer whatever its background compaction progress.
 */
import { CompactedError, CorruptError } from './errors.js';
import { evtKey, histKey, parseEvtKey, REC_PUT, spanContains, type KeySpan } from './keys.js';
import { histKv } from './history.js';
import { decodeEvt } from './records.js';
import type { ReadCtx } from './scan.js';
import type { Event, KeyValue } from '../api/kv.js';
import type { EventsResult } from './types.js';
import { getRaw, MergedIterator, type ReadSource } from './view.js';
import { tombstoneKv } from './write.js';

export interface EventsOptions {
  /** Stop after the revision in which this many events were reached (0: no limit). */
  limit: number;
  prevKv: boolean;
  /**
   * Also stop (at a revision boundary) after looking at this many changes, matching or not, so
   * a narrow watch far behind a busy store does not scan all of history in one call.
   */
  scanLimit: number;
}

function histPut(src: ReadSource, key: Buffer, main: number, sub: number): KeyValue | undefined {
  const raw = getRaw(src, histKey(key, main, sub, REC_PUT));
  return raw === undefined ? undefined : histKv(src, key, main, raw);
}

export async function eventsSince(ctx: ReadCtx, start: number, span: KeySpan, opts: EventsOptions): Promise<EventsResult> {
  // As etcd's watchable store: a start below the compaction point has lost events.
  if (start < ctx.compactRev) throw new CompactedError();
  const from = Math.max(start, 1);
  const base = { header: { revision: ctx.rev }, compactRevision: ctx.compactRev };
  if (from > ctx.rev) return { ...base, events: [], nextRevision: from };

  const events: Event[] = [];
  const it = new MergedIterator(ctx.src, evtKey(from, 0), evtKey(ctx.rev + 1, 0), true);
  let lastRev = from - 1;
  let scanned = 0;
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) {
        const { main, sub } = parseEvtKey(e.key);
        if (main !== lastRev && ((opts.limit > 0 && events.length >= opts.limit) || scanned >= opts.scanLimit)) {
          return { ...base, events, nextRevision: main };
        }
        lastRev = main;
        scanned++;
        const rec = decodeEvt(e.value);
        if (!spanContains(span, rec.key)) continue;
        let ev: Event;
        if (rec.type === REC_PUT) {
          const kv = histPut(ctx.src, rec.key, main, sub);
          if (kv === undefined) throw new CorruptError(`history record missing for revision ${main}/${sub}`);
          ev = { type: 'PUT', kv };
        } else {
          ev = { type: 'DELETE', kv: tombstoneKv(rec.key, main) };
        }
        if (opts.prevKv && rec.prevMain > 0 && main - 1 >= ctx.compactRev) {
          const prev = histPut(ctx.src, rec.key, rec.prevMain, rec.prevSub);
          if (prev !== undefined) ev.prevKv = prev;
        }
        events.push(ev);
      }
    }
  } finally {
    await it.close();
  }
  return { ...base, events, nextRevision: ctx.rev + 1 };
}
