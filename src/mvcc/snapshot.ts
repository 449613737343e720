/**
 * Point-in-time snapshot of a store as a stream of msgpack chunks, and restoring a store from one.
 *
 * The stream is read through one LevelDB snapshot, which covers the meta record too: revision,
 * compaction point, applied index and data all come from the same instant, even while batches
 * are being applied. It carries HISTORY (as a completed compaction would leave it), EVENTS from
 * the compaction point, and GRANTS; CURRENT and LEASES are derived from HISTORY on restore.
 *
 * Chunks, each one msgpack value:
 *   { kind: 'qkv-mvcc-snapshot', version, rev, compactRev, appliedIndex, alarms?, cluster?, auth? }   alarms: [[memberId, type], ...], only if any; cluster: membership.ts's record; auth: auth.ts's blob
 *   { kind: 'hist' | 'evt' | 'grant', kv: [key, value, ...] }        (tables in this order)
 *   { kind: 'end', records, crc }                                    crc32 of every key and value
 */
import { decodeCluster, encodeCluster } from './membership.js';
import { Buffer } from 'node:buffer';
import { survivesCompaction } from './compaction.js';
import { CorruptError } from './errors.js';
import { crcUpdate } from './hash.js';
import { evtKey, META_KEY, parseHistKey, tableEnd, tableStart, T_EVT, T_GRANT, T_HIST } from './keys.js';
import { FullHistoryReader } from './history.js';
import { decodeAlarms, decodeMeta, encodeAlarms, packValue, unpackValue, withAuth, withCluster, type Meta } from './records.js';
import { decodeAuth, encodeAuth } from './auth.js';
import { builtMeta, StoreBuilder } from './builder.js';
import { MergedIterator, type Db, type DbSnapshot } from './view.js';
import { exportRevisions } from './revisions.js';
import type { StoreExport } from './types.js';

const KIND = 'qkv-mvcc-snapshot';
const VERSION = 1;
/** Approximate payload bytes per chunk. */
const CHUNK_BYTES = 1 << 20;

export class StoreSnapshot implements AsyncIterable<Uint8Array> {
  private used = false;

  constructor(
    private readonly db: Db,
    private readonly snap: DbSnapshot,
    private readonly meta: Meta,
  ) {}

  get revision(): number {
    return this.meta.rev;
  }
  get compactRevision(): number {
    return this.meta.compactRev;
  }
  get appliedIndex(): number {
    return this.meta.appliedIndex;
  }

  /** Releases the LevelDB snapshot; done automatically when the stream ends or is abandoned. */
  async close(): Promise<void> {
    await this.snap.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.used) throw new Error('mvcc: a snapshot stream can be read once');
    this.used = true;
    return this.stream();
  }

  private async *stream(): AsyncGenerator<Uint8Array> {
    const m = this.meta;
    const header: Record<string, unknown> = { kind: KIND, version: VERSION, rev: m.rev, compactRev: m.compactRev, appliedIndex: m.appliedIndex };
    // Only while some are active: a stream without alarms is what members before them read.
    if (m.alarms.length > 0) header['alarms'] = encodeAlarms(m.alarms);
    if (m.cluster) header['cluster'] = encodeCluster(m.cluster);
    if (m.auth) header['auth'] = encodeAuth(m.auth);
    yield packValue(header);
    let crc = 0;
    let records = 0;
    for await (const c of this.records()) {
      for (let i = 0; i < c.kv.length; i += 2) crc = crcUpdate(crcUpdate(crc, c.kv[i]!), c.kv[i + 1]!);
      records += c.kv.length / 2;
      yield packValue(c);
    }
    yield packValue({ kind: 'end', records, crc });
  }

  /**
   * The snapshot as etcd's backend sees it: its revisions in revision order, its leases (see
   * revisions.ts; `sortDir` is the caller's scratch directory, removed by it afterwards).
   * Consumes the snapshot.
   */
  export(sortDir: string): Promise<StoreExport> {
    if (this.used) throw new Error('mvcc: a snapshot stream can be read once');
    this.used = true;
    return exportRevisions(this.db, this.snap, this.meta, sortDir);
  }

  /**
   * Maintenance.Hash: a CRC-32 (IEEE, as HashKV's) of the whole store at this snapshot's point:
   * first the msgpack of [revision, compaction point, alarms, auth state (once there is one)], then every key and value the
   * stream carries, in stream order (HISTORY as a completed compaction leaves it, with the values
   * of current versions; EVENTS from the compaction point; GRANTS). CURRENT and LEASES are
   * indexes derived from HISTORY, and the applied index is left out as etcd leaves out its
   * consistent index: members that applied the same entries agree, whatever their physical
   * compaction progress. Consumes the snapshot (it is closed afterwards).
   */
  async hash(): Promise<number> {
    if (this.used) throw new Error('mvcc: a snapshot stream can be read once');
    this.used = true;
    const m = this.meta;
    // The auth state only once there is one: the hash of a store without stays what it was.
    let crc = crcUpdate(0, packValue([m.rev, m.compactRev, encodeAlarms(m.alarms), ...(m.auth ? [encodeAuth(m.auth)] : [])]));
    for await (const c of this.records()) {
      for (const x of c.kv) crc = crcUpdate(crc, x);
    }
    return crc;
  }

  /** The tables' records in stream order, as chunks of [key, value, ...]; closes the snapshot. */
  private async *records(): AsyncGenerator<{ kind: string; kv: Buffer[] }> {
    let history: FullHistoryReader | undefined;
    try {
      const m = this.meta;
      const src = { db: this.db, snapshot: this.snap };
      type Section = { kind: string; gte: Buffer; lt: Buffer; keep: (k: Buffer) => boolean; value: (k: Buffer, v: Buffer) => Buffer | Promise<Buffer> };
      const sections: Section[] = [];
      const keep = survivesCompaction(m.compactRev);
      const same = (_k: Buffer, v: Buffer): Buffer => v;
      // HISTORY records travel with their values (current-version markers resolved from CURRENT).
      const full = (history = new FullHistoryReader(src));
      const histValue = (k: Buffer, v: Buffer): Buffer | Promise<Buffer> => full.bytes(k, parseHistKey(k), v);
      sections.push({ kind: 'hist', gte: tableStart(T_HIST), lt: tableEnd(T_HIST), keep: (k) => keep(k, parseHistKey(k)), value: histValue });
      sections.push({ kind: 'evt', gte: evtKey(m.compactRev, 0), lt: tableEnd(T_EVT), keep: () => true, value: same });
      sections.push({ kind: 'grant', gte: tableStart(T_GRANT), lt: tableEnd(T_GRANT), keep: () => true, value: same });
      for (const s of sections) {
        const it = new MergedIterator(src, s.gte, s.lt, true, 1024);
        try {
          let out: Buffer[] = [];
          let bytes = 0;
          for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
            for (const e of chunk) {
              if (!s.keep(e.key)) continue;
              const got = s.value(e.key, e.value);
              const v = got instanceof Promise ? await got : got;
              out.push(e.key, v);
              bytes += e.key.length + v.length;
              if (bytes >= CHUNK_BYTES) {
                yield { kind: s.kind, kv: out };
                out = [];
                bytes = 0;
              }
            }
          }
          if (out.length > 0) yield { kind: s.kind, kv: out };
        } finally {
          await it.close();
        }
      }
    } finally {
      // Its iterator reads through the snapshot: it goes first.
      await history?.close();
      await this.snap.close();
    }
  }
}

export function openSnapshot(db: Db): StoreSnapshot {
  const snap = db.snapshot();
  const raw = db.getSync(META_KEY, { snapshot: snap });
  if (raw === undefined) throw new CorruptError('store has no meta record');
  return new StoreSnapshot(db, snap, decodeMeta(raw));
}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new CorruptError('snapshot chunk is not an object');
  return v as Record<string, unknown>;
}

function asBuf(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new CorruptError('snapshot record is not bytes');
}

/** Writes a snapshot stream into an empty database (through StoreBuilder) and returns the meta it leads to. */
export async function restoreInto(db: Db, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Meta> {
  const builder = new StoreBuilder(db);
  let header: Record<string, unknown> | undefined;
  let crc = 0;
  let records = 0;
  let ended = false;
  for await (const raw of chunks) {
    if (ended) throw new CorruptError('data after the end of the snapshot');
    let c: Record<string, unknown>;
    try {
      c = obj(unpackValue(raw));
    } catch (err) {
      if (err instanceof CorruptError) throw err;
      throw new CorruptError('snapshot chunk is not msgpack');
    }
    if (header === undefined) {
      if (c['kind'] !== KIND || c['version'] !== VERSION) throw new CorruptError('not a qkv mvcc snapshot (version 1)');
      header = c;
      continue;
    }
    if (c['kind'] === 'end') {
      if (c['records'] !== records || c['crc'] !== crc) throw new CorruptError('snapshot checksum mismatch');
      ended = true;
      continue;
    }
    const kv = c['kv'];
    if (!Array.isArray(kv) || kv.length % 2 !== 0) throw new CorruptError('bad snapshot chunk');
    const bufs = kv.map(asBuf);
    for (const x of bufs) crc = crcUpdate(crc, x);
    records += bufs.length / 2;
    await builder.add(String(c['kind']), bufs);
  }
  if (header === undefined || !ended) throw new CorruptError('snapshot stream ended early');
  const num = (f: string): number => {
    const v = header![f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new CorruptError(`bad snapshot header ${f}`);
    return v;
  };
  return builder.finish(
    builtMeta(num('rev'), num('compactRev'), num('appliedIndex'), {
      alarms: decodeAlarms(header['alarms']),
      ...withCluster(decodeCluster(header['cluster'])),
      ...withAuth(decodeAuth(header['auth'])),
    }),
  );
}
