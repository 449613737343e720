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
 * GRANTS) and restored through restoreInto, the one way a store is built from outside. The
 * records are sorted in memory: the caller holds them already (etcd's restore likewise holds its
 * whole key index in memory).
 */
import { Buffer } from 'node:buffer';
import { Level } from 'level';
import { survivesCompaction } from './compaction.js';
import { CorruptError } from './errors.js';
import { FullHistoryReader } from './history.js';
import { leaseRecords } from './lease.js';
import { encodeCluster } from './membership.js';
import { evtKey, grantKey, histKey, parseHistKey, REC_DEL, REC_PUT, tableEnd, tableStart, T_HIST, userKeyOfHist } from './keys.js';
import { decodeHistPut, EMPTY, encodeEvt, encodeGrant, encodeHistFull, packValue, unpackValue, type Meta } from './records.js';
import { crcUpdate } from './hash.js';
import type { LeaseRecord, RevisionImport, StoreExport, StoreRevision } from './types.js';
import { MergedIterator, type Db, type DbSnapshot } from './view.js';

/** Scratch records are written in batches of this many. */
const SORT_BATCH = 1024;
/** Approximate payload bytes per chunk of the stream built for restoreInto (as the snapshot stream's). */
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
 * The chunks of a snapshot stream (snapshot.ts's format) holding `input`, for restoreInto. The
 * applied index is 0: the store starts a new Raft log. Throws CorruptError for input no store
 * could hold (a revision given twice, one past the store's revision).
 */
export function revisionStream(input: RevisionImport, kind: string, version: number): Buffer[] {
  const byRevision = [...input.revisions].sort((a, b) => a.main - b.main || a.sub - b.sub);
  const events: Buffer[] = [];
  /** Per key, the put that is its live version, as the revisions are replayed in order. */
  const live = new Map<string, { main: number; sub: number }>();
  const hist: Array<[Buffer, Buffer]> = [];
  let previous: StoreRevision | undefined;
  for (const r of byRevision) {
    if (previous !== undefined && previous.main === r.main && previous.sub === r.sub) throw new CorruptError(`revision ${r.main}_${r.sub} given twice`);
    if (r.main > input.revision) throw new CorruptError(`revision ${r.main} is past the store's revision ${input.revision}`);
    previous = r;
    const key = keyOf(r);
    const name = key.toString('latin1');
    const prev = live.get(name);
    if (r.main >= input.compactRevision) events.push(evtKey(r.main, r.sub), encodeEvt(key, r.tombstone ? REC_DEL : REC_PUT, prev?.main ?? 0, prev?.sub ?? 0));
    if (r.tombstone) {
      live.delete(name);
      hist.push([histKey(key, r.main, r.sub, REC_DEL), EMPTY]);
    } else {
      live.set(name, { main: r.main, sub: r.sub });
      hist.push([histKey(key, r.main, r.sub, REC_PUT), encodeHistFull(r.kv)]);
    }
  }
  hist.sort((a, b) => Buffer.compare(a[0], b[0]));
  const keep = survivesCompaction(input.compactRevision);
  const kept = hist.filter(([k]) => keep(k, parseHistKey(k)));
  const grants = [...input.leases].sort((a, b) => a.id - b.id).map((l) => [grantKey(l.id), encodeGrant(l.ttl)] as [Buffer, Buffer]);
  const header: Record<string, unknown> = { kind, version, rev: input.revision, compactRev: input.compactRevision, appliedIndex: 0 };
  if (input.cluster) header['cluster'] = encodeCluster(input.cluster);
  const out = [packValue(header)];
  let crc = 0;
  let records = 0;
  const section = (name: string, pairs: Array<[Buffer, Buffer]>): void => {
    let kv: Buffer[] = [];
    let bytes = 0;
    for (const [k, v] of pairs) {
      kv.push(k, v);
      crc = crcUpdate(crcUpdate(crc, k), v);
      records++;
      bytes += k.length + v.length;
      if (bytes >= CHUNK_BYTES) {
        out.push(packValue({ kind: name, kv }));
        kv = [];
        bytes = 0;
      }
    }
    if (kv.length > 0) out.push(packValue({ kind: name, kv }));
  };
  section('hist', kept);
  const evtPairs: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < events.length; i += 2) evtPairs.push([events[i]!, events[i + 1]!]);
  section('evt', evtPairs);
  section('grant', grants);
  out.push(packValue({ kind: 'end', records, crc }));
  return out;
}
