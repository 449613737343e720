/**
 * The store as etcd's backend sees it: a list of revisions in revision order (etcd's `key`
 * bucket) and the leases. Both ways: exported from a snapshot (for a backup in etcd's format),
 * and a new store built from such a list (a restore, from qkv's backup or from etcd's).
 *
 * Export: HISTORY is in key order, etcd's bucket in revision order. The records a completed
 * compaction keeps (as the snapshot stream and HashKV keep them) are read once through the
 * snapshot and appended to a flat file in `sortDir`, while each one's revision and offset go
 * into typed arrays (24 bytes a record: the one memory that grows with the store); the arrays are
 * sorted into revision order and the file read back in that order with positional reads (runs of
 * records that lie one after another, as a store loaded in key order has them, in one read).
 *
 * Import: the revisions (in revision order, checked) are laid out as the snapshot stream carries
 * them (HISTORY in key order with every value, EVENTS from the compaction point with the put each
 * change superseded, GRANTS) and written through StoreBuilder, the one way a store is built from
 * outside. HISTORY and then EVENTS are sorted through external_sort.ts in `sortDir`: memory stays
 * bounded whatever the number of revisions.
 */
import { Buffer } from 'node:buffer';
import { readSync } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { survivesCompaction } from './compaction.js';
import { CorruptError } from './errors.js';
import { ExternalSorter } from './external_sort.js';
import { FullHistoryReader } from './history.js';
import { leaseRecords } from './lease.js';
import {
  evtKey,
  grantKey,
  histKey,
  parseHistKey,
  REC_DEL,
  REC_PUT,
  sameHistUserKey,
  tableEnd,
  tableStart,
  T_HIST,
  userKeyOfHist,
  type HistKeyParts,
} from './keys.js';
import { EMPTY, encodeEvt, encodeGrant, encodeHistFull, withAuth, withCluster, type Meta } from './records.js';
import { builtMeta, StoreBuilder } from './builder.js';
import type { LeaseRecord, RevisionImport, StoreExport, StoreRevision } from './types.js';
import { MergedIterator, type Db, type DbSnapshot } from './view.js';

/** HISTORY is read in chunks of this many records. */
const READ_CHUNK = 1024;
/** Approximate bytes of records per batch of an import (as a snapshot stream's chunks), and per write of the export's flat file. */
const CHUNK_BYTES = 1 << 20;
/** The export's flat file is read back in reads of at most this many bytes. */
const READ_SPAN = 1 << 20;
/** A radix sort digit's values (16 bits). */
const DIGIT_VALUES = 1 << 16;
/** A flat record: tombstone (u8), create revision, version, lease (f64 each), key length (u32), then key and value. */
const FLAT_HEADER = 1 + 3 * 8 + 4;

/** The export's per-record arrays: main revision, sub revision, offset in the flat file (one more: the file's end). */
class RevisionIndex {
  main = new Float64Array(1 << 16);
  sub = new Uint32Array(1 << 16);
  offset = new Float64Array((1 << 16) + 1);
  count = 0;

  push(main: number, sub: number, offset: number): void {
    if (this.count === this.main.length) {
      const grow = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T, n: number): T => {
        const b = make(n);
        b.set(a);
        return b;
      };
      const n = this.main.length * 2;
      this.main = grow(this.main, (x) => new Float64Array(x), n);
      this.sub = grow(this.sub, (x) => new Uint32Array(x), n);
      this.offset = grow(this.offset, (x) => new Float64Array(x), n + 1);
    }
    this.main[this.count] = main;
    this.sub[this.count] = sub;
    this.offset[this.count] = offset;
    this.count++;
  }

  /**
   * The records' indexes in revision order: an LSD radix sort on 16-bit digits (sub's two, then
   * main's four), a digit all records share skipped. No comparator (TypedArray's sort with one
   * takes seconds for a million records, and this runs on a member serving requests); each pass
   * is one walk of the arrays, and the event loop gets a turn between passes.
   */
  async inRevisionOrder(): Promise<Uint32Array> {
    const { main, sub, count } = this;
    let order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    let next = new Uint32Array(count);
    const buckets = new Uint32Array(DIGIT_VALUES);
    const digits: ((i: number) => number)[] = [
      (i) => sub[i]! & 0xffff,
      (i) => sub[i]! >>> 16,
      (i) => main[i]! % 0x1_0000,
      (i) => Math.floor(main[i]! / 0x1_0000) % 0x1_0000,
      (i) => Math.floor(main[i]! / 0x1_0000_0000) % 0x1_0000,
      (i) => Math.floor(main[i]! / 0x1_0000_0000_0000),
    ];
    for (const digit of digits) {
      buckets.fill(0);
      for (let j = 0; j < count; j++) buckets[digit(order[j]!)]!++;
      if (count === 0 || buckets[digit(order[0]!)] === count) continue; // one value: the order stands
      for (let d = 0, at = 0; d < DIGIT_VALUES; d++) {
        const c = buckets[d]!;
        buckets[d] = at;
        at += c;
      }
      for (let j = 0; j < count; j++) {
        const i = order[j]!;
        next[buckets[digit(i)]!++] = i;
      }
      [order, next] = [next, order];
      await new Promise((resolve) => setImmediate(resolve));
    }
    return order;
  }
}

/**
 * Appends flat records to a file through one buffer of about CHUNK_BYTES, written when full and
 * reused: no allocation per record.
 */
class FlatWriter {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  size = 0;

  constructor(private readonly fh: FileHandle) {}

  /** Adds a record; a promise only when the buffer had to be written first (await it before the next). */
  append(tombstone: boolean, key: Buffer, value: Buffer, createRevision: number, version: number, lease: number): Promise<void> | undefined {
    const n = FLAT_HEADER + key.length + value.length;
    if (this.used + n > this.buf.length) return this.flush().then(() => this.appendAfterFlush(tombstone, key, value, createRevision, version, lease));
    this.put(tombstone, key, value, createRevision, version, lease);
    return undefined;
  }

  /** A record larger than the buffer gets a buffer of its own size. */
  private appendAfterFlush(tombstone: boolean, key: Buffer, value: Buffer, createRevision: number, version: number, lease: number): void {
    const n = FLAT_HEADER + key.length + value.length;
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    this.put(tombstone, key, value, createRevision, version, lease);
  }

  private put(tombstone: boolean, key: Buffer, value: Buffer, createRevision: number, version: number, lease: number): void {
    const b = this.buf;
    const at = this.used;
    b[at] = tombstone ? 1 : 0;
    b.writeDoubleLE(createRevision, at + 1);
    b.writeDoubleLE(version, at + 9);
    b.writeDoubleLE(lease, at + 17);
    b.writeUInt32LE(key.length, at + 25);
    key.copy(b, at + FLAT_HEADER);
    value.copy(b, at + FLAT_HEADER + key.length);
    const n = FLAT_HEADER + key.length + value.length;
    this.used += n;
    this.size += n;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    for (let done = 0; done < n; ) {
      const { bytesWritten } = await this.fh.write(this.buf, done, n - done, this.size - n + done);
      done += bytesWritten;
    }
  }
}

/**
 * The export of the snapshot `snap` of `db` at `meta` (see the module comment). Reads HISTORY
 * and GRANTS now, and closes the snapshot; the revisions are then read from `sortDir` (a
 * directory of the caller's, which it removes afterwards).
 */
export async function exportRevisions(db: Db, snap: DbSnapshot, meta: Meta, sortDir: string): Promise<StoreExport> {
  await mkdir(sortDir, { recursive: true });
  const fh = await open(path.join(sortDir, 'revisions'), 'w+');
  const index = new RevisionIndex();
  let leases: LeaseRecord[];
  try {
    const src = { db, snapshot: snap };
    leases = await leaseRecords(src);
    const keep = survivesCompaction(meta.compactRev);
    const it = new MergedIterator(src, tableStart(T_HIST), tableEnd(T_HIST), true, READ_CHUNK);
    const history = new FullHistoryReader(src);
    const flat = new FlatWriter(fh);
    try {
      for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
        for (const e of chunk) {
          const p = parseHistKey(e.key);
          if (!keep(e.key, p)) continue;
          index.push(p.main, p.sub, flat.size);
          let written: Promise<void> | undefined;
          if (p.type === REC_PUT) {
            const got = history.put(e.key, p, e.value);
            const kv = got instanceof Promise ? await got : got;
            written = flat.append(false, kv.key, kv.value, kv.createRevision, kv.version, kv.lease);
          } else {
            written = flat.append(true, userKeyOfHist(e.key), EMPTY, 0, 0, 0);
          }
          if (written !== undefined) await written;
        }
      }
      await flat.flush();
      index.offset[index.count] = flat.size;
    } finally {
      await history.close();
      await it.close();
    }
  } catch (err) {
    await fh.close();
    throw err;
  } finally {
    await snap.close();
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  return {
    revision: meta.rev,
    compactRevision: meta.compactRev,
    appliedIndex: meta.appliedIndex,
    alarms: meta.alarms,
    cluster: meta.cluster,
    auth: meta.auth,
    leases,
    revisions: sortedRevisions(fh, index, close),
    // An iteration that never started never runs the generator's finally: close it here too (closing twice is nothing).
    close,
  };
}

/**
 * The flat file's records in revision order, in chunks of about READ_SPAN bytes; closes the file at
 * the end (or when abandoned). Reads are synchronous (positional, from a file just written, so
 * from the page cache): one per run of records lying one after another, so no stretch without a
 * turn of the event loop is long (the consumer writes as it goes, a chunk at a time). A record's
 * key and value are views of the read's buffer, never reused.
 */
async function* sortedRevisions(fh: FileHandle, index: RevisionIndex, close: () => Promise<void>): AsyncGenerator<StoreRevision[]> {
  try {
    const order = await index.inRevisionOrder();
    const { main, sub, offset } = index;
    for (let j = 0; j < order.length; ) {
      const chunk: StoreRevision[] = [];
      for (let bytes = 0; j < order.length && bytes < READ_SPAN; ) {
        const first = order[j]!;
        let k = j + 1;
        while (k < order.length && order[k] === order[k - 1]! + 1 && offset[order[k]! + 1]! - offset[first]! <= READ_SPAN) k++;
        const start = offset[first]!;
        const buf = Buffer.allocUnsafe(offset[order[k - 1]! + 1]! - start);
        for (let done = 0; done < buf.length; ) {
          const n = readSync(fh.fd, buf, done, buf.length - done, start + done);
          if (n === 0) throw new CorruptError('export: the revisions file ended early');
          done += n;
        }
        bytes += buf.length;
        for (; j < k; j++) {
          const i = order[j]!;
          const at = offset[i]! - start;
          const end = offset[i + 1]! - start;
          const keyEnd = at + FLAT_HEADER + buf.readUInt32LE(at + 25);
          const key = buf.subarray(at + FLAT_HEADER, keyEnd);
          if (buf[at] === 1) chunk.push({ main: main[i]!, sub: sub[i]!, tombstone: true, key });
          else {
            const kv = {
              key,
              value: buf.subarray(keyEnd, end),
              createRevision: buf.readDoubleLE(at + 1),
              modRevision: main[i]!,
              version: buf.readDoubleLE(at + 9),
              lease: buf.readDoubleLE(at + 17),
            };
            chunk.push({ main: main[i]!, sub: sub[i]!, tombstone: false, kv });
          }
        }
      }
      yield chunk;
    }
  } finally {
    await close();
  }
}

/**
 * Builds a store in the empty database `db` holding `input` (through StoreBuilder, the records
 * laid out as a snapshot stream carries them) and returns its meta; `sortDir` (missing or empty,
 * removed at the end) holds the sort's runs. The applied index is 0: the store starts a new Raft
 * log. Throws CorruptError for input no store could hold (revisions out of order or given twice,
 * one past the store's revision), and then before anything is written to `db`.
 */
export async function importRevisions(db: Db, input: RevisionImport, sortDir: string): Promise<Meta> {
  await mkdir(sortDir, { recursive: true });
  try {
    const history = new ExternalSorter(sortDir, 'history');
    let previous: StoreRevision | undefined;
    /** Checks `r` against the one before and adds its HISTORY record; a promise only when the sorter wrote a run. */
    const take = (r: StoreRevision): Promise<void> | undefined => {
      if (previous !== undefined && (previous.main > r.main || (previous.main === r.main && previous.sub >= r.sub))) {
        throw new CorruptError(
          previous.main === r.main && previous.sub === r.sub
            ? `revision ${r.main}_${r.sub} given twice`
            : `revision ${r.main}_${r.sub} after ${previous.main}_${previous.sub}`,
        );
      }
      if (r.main > input.revision) throw new CorruptError(`revision ${r.main} is past the store's revision ${input.revision}`);
      previous = r;
      return r.tombstone
        ? history.add(histKey(r.key, r.main, r.sub, REC_DEL), EMPTY)
        : history.add(histKey(r.kv.key, r.main, r.sub, REC_PUT), encodeHistFull(r.kv));
    };
    // A synchronous source (a restore's file walk) is read without a turn of the event loop per revision.
    if (Symbol.iterator in input.revisions) {
      for (const r of input.revisions) {
        const written = take(r);
        if (written !== undefined) await written;
      }
    } else {
      for await (const r of input.revisions) {
        const written = take(r);
        if (written !== undefined) await written;
      }
    }
    const builder = new StoreBuilder(db);
    const events = new ExternalSorter(sortDir, 'events');
    /**
     * Adds the pairs of `chunks` in batches of about CHUNK_BYTES. One batch is written while the
     * next is gathered (LevelDB writes in its own thread): one write at a time, in order.
     */
    const section = async (kind: string, chunks: AsyncIterable<Iterable<readonly [Buffer, Buffer]>> | Iterable<readonly [Buffer, Buffer]>): Promise<void> => {
      let kv: Buffer[] = [];
      let bytes = 0;
      let writing: Promise<void> = Promise.resolve();
      const addAll = async (pairs: Iterable<readonly [Buffer, Buffer]>): Promise<void> => {
        for (const [k, v] of pairs) {
          kv.push(k, v);
          bytes += k.length + v.length;
          if (bytes >= CHUNK_BYTES) {
            await writing;
            writing = builder.add(kind, kv);
            // Handled now (awaited before the next batch or at the end): a failed write is not an unhandled rejection meanwhile.
            writing.catch(() => undefined);
            kv = [];
            bytes = 0;
          }
        }
      };
      try {
        if (Symbol.iterator in chunks) await addAll(chunks);
        else for await (const chunk of chunks) await addAll(chunk);
      } finally {
        // Never left running, even when the input failed.
        await writing.catch(() => undefined);
      }
      await writing;
      if (kv.length > 0) await builder.add(kind, kv);
    };
    const keep = survivesCompaction(input.compactRevision);
    /** The event of a change from the compaction point on: its key, and the put it superseded (the key's record before it, if a put); a promise only when the sorter wrote a run. */
    const event = (k: Buffer, p: HistKeyParts, older: HistKeyParts | undefined): Promise<void> | undefined =>
      p.main >= input.compactRevision
        ? events.add(
            evtKey(p.main, p.sub),
            encodeEvt(userKeyOfHist(k), p.type, older?.type === REC_PUT ? older.main : 0, older?.type === REC_PUT ? older.sub : 0),
          )
        : undefined;
    // HISTORY in key order, each key's newest record first: a record's event is known once the next (older) one is seen.
    await section(
      'hist',
      (async function* () {
        let newer: { k: Buffer; p: HistKeyParts } | undefined;
        for await (const chunk of history.sorted()) {
          const kept: (readonly [Buffer, Buffer])[] = [];
          for (const pair of chunk) {
            const k = pair[0];
            const p = parseHistKey(k);
            if (newer !== undefined) {
              const written = event(newer.k, newer.p, sameHistUserKey(newer.k, k) ? p : undefined);
              if (written !== undefined) await written;
            }
            newer = { k, p };
            if (keep(k, p)) kept.push(pair);
          }
          yield kept;
        }
        if (newer !== undefined) await event(newer.k, newer.p, undefined);
      })(),
    );
    await section('evt', events.sorted());
    await section(
      'grant',
      [...input.leases].sort((a, b) => a.id - b.id).map((l) => [grantKey(l.id), encodeGrant(l.ttl)] as const),
    );
    return await builder.finish(builtMeta(input.revision, input.compactRevision, 0, { alarms: [], ...withCluster(input.cluster), ...withAuth(input.auth) }));
  } finally {
    await rm(sortDir, { recursive: true, force: true });
  }
}
