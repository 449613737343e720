/**
 * The store as etcd's backend sees it: a list of revisions in revision order (etcd's `key`
 * bucket) and the leases. Both ways: exported from a snapshot (for a backup in etcd's format),
 * and a new store built from such a list (a restore, from qkv's backup or from etcd's).
 *
 * Export: HISTORY is in key order, etcd's bucket in revision order. The records a completed
 * compaction keeps (as the snapshot stream and HashKV keep them) are read once through the
 * snapshot and written, keyed by revision, into a scratch LevelDB in `sortDir`; reading that back
 * gives revision order. LevelDB sorts on disk: memory stays bounded whatever the store's size.
 *
 * Import: the records are laid out as the snapshot stream carries them (HISTORY in key order
 * with every value, EVENTS from the compaction point with the put each change superseded,
 * GRANTS) and written through StoreBuilder, the one way a store is built from outside. The
 * records are sorted in memory: the caller holds them already (etcd's restore likewise holds its
 * whole key index in memory).
 */
import { Buffer } from 'node:buffer';
import { Level } from 'level';
import { survivesCompaction } from './compaction.js';
import { CorruptError } from './errors.js';
import { FullHistoryReader } from './history.js';
import { leaseRecords } from './lease.js';
import { evtKey, grantKey, histKey, parseHistKey, REC_DEL, REC_PUT, tableEnd, tableStart, T_HIST, userKeyOfHist } from './keys.js';
import { decodeHistPut, EMPTY, encodeEvt, encodeGrant, encodeHistFull, packValue, unpackValue, withAuth, withCluster, type Meta } from './records.js';
import { builtMeta, StoreBuilder } from './builder.js';
import type { LeaseRecord, RevisionImport, StoreExport, StoreRevision } from './types.js';
import { MergedIterator, type Db, type DbSnapshot } from './view.js';

/** Scratch records are written in batches of this many. */
const SORT_BATCH = 1024;
/** Approximate bytes of records per batch of an import (as a snapshot stream's chunks). */
const CHUNK_BYTES = 1 << 20;

/** A scratch key: main (8 bytes) and sub (4 bytes) big-endian, so byte order is revision order. */
function revisionSortKey(main: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUIntBE(Math.floor(main / 0x1_0000_0000), 0, 4);
  b.writeUInt32BE(main % 0x1_0000_0000, 4);
  b.writeUInt32BE(sub, 8);
  return b;
}

type SortedRecord = [key: Buffer, tombstone: boolean, value: Buffer, createRevision: number, version: number, lease: number];

/**
 * The export of the snapshot `snap` of `db` at `meta` (see the module comment). Reads HISTORY
 * and GRANTS now, and closes the snapshot; the revisions are then read from `sortDir` (a
 * directory of the caller's, which it removes afterwards).
 */
export async function exportRevisions(db: Db, snap: DbSnapshot, meta: Meta, sortDir: string): Promise<StoreExport> {
  const sorted = new Level<Buffer, Buffer>(sortDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await sorted.open();
  let leases: LeaseRecord[];
  try {
    const src = { db, snapshot: snap };
    leases = await leaseRecords(src);
    const keep = survivesCompaction(meta.compactRev);
    const it = new MergedIterator(src, tableStart(T_HIST), tableEnd(T_HIST), true, SORT_BATCH);
    const history = new FullHistoryReader(src);
    try {
      for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
        const batch = sorted.batch();
        for (const e of chunk) {
          const p = parseHistKey(e.key);
          if (!keep(e.key, p)) continue;
          const key = userKeyOfHist(e.key);
          let record: SortedRecord;
          if (p.type === REC_PUT) {
            const got = history.bytes(e.key, p, e.value);
            const h = decodeHistPut(got instanceof Promise ? await got : got);
            record = [key, false, h.value ?? EMPTY, h.createRevision, h.version, h.lease];
          } else {
            record = [key, true, EMPTY, 0, 0, 0];
          }
          batch.put(revisionSortKey(p.main, p.sub), packValue(record));
        }
        await batch.write();
      }
    } finally {
      await history.close();
      await it.close();
    }
  } catch (err) {
    await sorted.close();
    throw err;
  } finally {
    await snap.close();
  }
  return {
    revision: meta.rev,
    compactRevision: meta.compactRev,
    appliedIndex: meta.appliedIndex,
    alarms: meta.alarms,
    cluster: meta.cluster,
    auth: meta.auth,
    leases,
    revisions: sortedRevisions(sorted),
    // An iteration that never started never runs the generator's finally: close it here too (closing twice is nothing).
    close: () => sorted.close(),
  };
}

/** The scratch database's records in revision order; closes it at the end (or when abandoned). */
async function* sortedRevisions(sorted: Level<Buffer, Buffer>): AsyncGenerator<StoreRevision> {
  const it = sorted.iterator<Buffer, Buffer>({ highWaterMarkBytes: 1 << 20 });
  try {
    // In chunks: one LevelDB call (and one promise) per SORT_BATCH records, not per record.
    for (let chunk = await it.nextv(SORT_BATCH); chunk.length > 0; chunk = await it.nextv(SORT_BATCH)) {
      for (const [k, v] of chunk) {
        const main = k.readUInt32BE(0) * 0x1_0000_0000 + k.readUInt32BE(4);
        const sub = k.readUInt32BE(8);
        const [key, tombstone, value, createRevision, version, lease] = unpackValue(v) as SortedRecord;
        if (tombstone) yield { main, sub, tombstone, key: asBuffer(key) };
        else yield { main, sub, tombstone, kv: { key: asBuffer(key), value: asBuffer(value), createRevision, modRevision: main, version, lease } };
      }
    }
  } finally {
    await it.close();
    await sorted.close();
  }
}

/** msgpack's bytes as a Buffer (a view, not a copy: each unpacked record has bytes of its own). */
const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const keyOf = (r: StoreRevision): Buffer => (r.tombstone ? r.key : r.kv.key);

/**
 * Builds a store in the empty database `db` holding `input` (through StoreBuilder, the records
 * laid out as a snapshot stream carries them) and returns its meta. The applied index is 0: the
 * store starts a new Raft log. Throws CorruptError for input no store could hold (a revision
 * given twice, one past the store's revision).
 */
export async function importRevisions(db: Db, input: RevisionImport): Promise<Meta> {
  // Most often in revision order already (a backup's key bucket): then no sort.
  const given = input.revisions;
  const inOrder = given.every((r, i) => i === 0 || given[i - 1]!.main < r.main || (given[i - 1]!.main === r.main && given[i - 1]!.sub <= r.sub));
  const byRevision = inOrder ? given : [...given].sort((a, b) => a.main - b.main || a.sub - b.sub);
  /** Per key, the put that is its live version, as the revisions are replayed in order. */
  const live = new Map<string, { main: number; sub: number }>();
  const hist: Array<[Buffer, Buffer]> = [];
  let previous: StoreRevision | undefined;
  for (const r of byRevision) {
    if (previous !== undefined && previous.main === r.main && previous.sub === r.sub) throw new CorruptError(`revision ${r.main}_${r.sub} given twice`);
    if (r.main > input.revision) throw new CorruptError(`revision ${r.main} is past the store's revision ${input.revision}`);
    previous = r;
    if (r.tombstone) hist.push([histKey(r.key, r.main, r.sub, REC_DEL), EMPTY]);
    else hist.push([histKey(r.kv.key, r.main, r.sub, REC_PUT), encodeHistFull(r.kv)]);
  }
  hist.sort((a, b) => Buffer.compare(a[0], b[0]));
  const keep = survivesCompaction(input.compactRevision);
  const builder = new StoreBuilder(db);
  /** Adds `pairs` in batches of about CHUNK_BYTES. */
  const section = async (kind: string, pairs: Iterable<readonly [Buffer, Buffer]>): Promise<void> => {
    let kv: Buffer[] = [];
    let bytes = 0;
    for (const [k, v] of pairs) {
      kv.push(k, v);
      bytes += k.length + v.length;
      if (bytes >= CHUNK_BYTES) {
        await builder.add(kind, kv);
        kv = [];
        bytes = 0;
      }
    }
    if (kv.length > 0) await builder.add(kind, kv);
  };
  await section(
    'hist',
    (function* () {
      for (const pair of hist) if (keep(pair[0], parseHistKey(pair[0]))) yield pair;
    })(),
  );
  hist.length = 0;
  // EVENTS from the compaction point: each change with the put it superseded.
  await section(
    'evt',
    (function* () {
      for (const r of byRevision) {
        const key = keyOf(r);
        const name = key.toString('latin1');
        const prev = live.get(name);
        if (r.tombstone) live.delete(name);
        else live.set(name, { main: r.main, sub: r.sub });
        if (r.main >= input.compactRevision)
          yield [evtKey(r.main, r.sub), encodeEvt(key, r.tombstone ? REC_DEL : REC_PUT, prev?.main ?? 0, prev?.sub ?? 0)] as const;
      }
    })(),
  );
  await section(
    'grant',
    [...input.leases].sort((a, b) => a.id - b.id).map((l) => [grantKey(l.id), encodeGrant(l.ttl)] as const),
  );
  return builder.finish(builtMeta(input.revision, input.compactRevision, 0, { alarms: [], ...withCluster(input.cluster), ...withAuth(input.auth) }));
}
