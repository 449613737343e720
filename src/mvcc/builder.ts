/**
 * Building a store from outside: from a snapshot stream (snapshot.ts's restoreInto) or from
 * etcd's view of a store (revisions.ts's importRevisions).
 */
import { Buffer } from 'node:buffer';
import { writeBatch } from '../level_batch.js';
import { CorruptError } from './errors.js';
import { curKey, leaseKey, META_KEY, parseHistKey, REC_PUT, sameHistUserKey, T_EVT, T_GRANT, T_HIST, userKeyOfHist } from './keys.js';
import { decodeHistPut, EMPTY, encodeCur, encodeHistMarker, encodeMeta, type Meta } from './records.js';
import type { Db } from './view.js';

/** The tables a stream carries, in stream order. */
const SECTIONS = [
  { kind: 'hist', table: T_HIST },
  { kind: 'evt', table: T_EVT },
  { kind: 'grant', table: T_GRANT },
];

/**
 * Builds a store in an empty database from its tables' records, given in stream order (HISTORY,
 * EVENTS, GRANTS, each in key order; the order checked): the one way a store is built from
 * outside, for a snapshot stream (restoreInto) and an import of etcd's view of a store
 * (revisions.ts). CURRENT and LEASES are derived from HISTORY; the meta record is written last,
 * synced: a database left without one by a crash is recognised as unfinished.
 */
export class StoreBuilder {
  private phase = 0; // index in SECTIONS of the table being built
  private prev: Buffer | undefined; // previous key written, to check the order
  private prevHist: Buffer | undefined; // previous HISTORY key: a new user key starts its newest record

  constructor(private readonly db: Db) {}

  /** Writes the records `kv` (key, value, key, value...) of the table SECTIONS names `kind`, in one batch. */
  async add(kind: string, kv: readonly Buffer[]): Promise<void> {
    const section = SECTIONS.findIndex((x) => x.kind === kind);
    if (section < 0) throw new CorruptError(`unknown snapshot chunk ${kind}`);
    if (section < this.phase) throw new CorruptError('snapshot tables out of order');
    if (section !== this.phase) this.prev = undefined; // a new table: order restarts
    this.phase = section;
    const table = SECTIONS[section]!.table;
    // Keys and values in turn, handed to the batch as they are (no op object per record).
    const ops: Buffer[] = [];
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      const v = kv[i + 1]!;
      if (k[0] !== table || (this.prev !== undefined && Buffer.compare(this.prev, k) >= 0)) throw new CorruptError('snapshot records out of order');
      this.prev = k;
      let stored = v;
      if (table === T_HIST) {
        const first = this.prevHist === undefined || !sameHistUserKey(this.prevHist, k);
        this.prevHist = k;
        const p = parseHistKey(k);
        if (first && p.type === REC_PUT) {
          // The key's newest record is a put: the key is live with this value, which goes to
          // CURRENT, and the record becomes a current-version marker (see history.ts).
          const key = userKeyOfHist(k);
          const h = decodeHistPut(v);
          if (h.value === undefined) throw new CorruptError('snapshot history record without its value');
          const cur = { key, value: h.value, createRevision: h.createRevision, modRevision: p.main, version: h.version, lease: h.lease };
          ops.push(curKey(key), encodeCur(cur, p.sub));
          if (cur.lease !== 0) ops.push(leaseKey(cur.lease, key), EMPTY);
          stored = encodeHistMarker(cur);
        }
      }
      ops.push(k, stored);
    }
    await writeBatch(
      this.db,
      {
        writeTo: (batch) => {
          for (let i = 0; i < ops.length; i += 2) batch.put(ops[i]!, ops[i + 1]!);
        },
      },
      false,
    );
  }

  /** Writes the meta record, synced (LevelDB's log holds every batch before it): the store is whole. */
  async finish(meta: Meta): Promise<Meta> {
    await this.db.put(META_KEY, encodeMeta(meta), { sync: true });
    return meta;
  }
}

/** The meta record of a store built from outside, at `rev`, compacted at `compactRev` (physically too). */
export function builtMeta(rev: number, compactRev: number, appliedIndex: number, rest: Pick<Meta, 'alarms' | 'cluster' | 'auth'>): Meta {
  return { rev, compactRev, appliedIndex, physRev: compactRev, physTarget: compactRev, cursor: null, ...rest };
}
