/**
 * HashKV: a CRC-32 of the key-value history from the compaction point up to a revision (every
 * HISTORY record a completed compaction keeps, at or below the revision, each as it is once
 * superseded, see history.ts), in stored order.
 * Like etcd's HashKV, two replicas that applied the same entries agree whether or not their
 * background compactions have progressed equally, so a mismatch means diverging data.
 */
import { crc32 } from 'node:zlib';
import { survivesCompaction } from './compaction.js';
import { FullHistoryReader } from './history.js';
import { parseHistKey, tableEnd, tableStart, T_HIST } from './keys.js';
import { MergedIterator, type ReadSource } from './view.js';

/**
 * Extends a running CRC-32 with `data`. Empty data is skipped: Node's zlib.crc32 returns 0 for a
 * zero-length buffer that LevelDB handed over (no backing store), dropping the running value.
 */
export function crcUpdate(crc: number, data: Uint8Array): number {
  return data.length === 0 ? crc : crc32(data, crc);
}

export async function hashHistory(src: ReadSource, rev: number, compactRev: number): Promise<number> {
  const keep = survivesCompaction(compactRev);
  const it = new MergedIterator(src, tableStart(T_HIST), tableEnd(T_HIST), true, 1024);
  const history = new FullHistoryReader(src);
  let h = 0;
  try {
    for (let chunk = await it.nextChunk(); chunk !== undefined; chunk = await it.nextChunk()) {
      for (const e of chunk) {
        const p = parseHistKey(e.key);
        if (!keep(e.key, p) || p.main > rev) continue;
        const full = history.bytes(e.key, p, e.value);
        h = crcUpdate(crcUpdate(h, e.key), full instanceof Promise ? await full : full);
      }
    }
  } finally {
    await history.close();
    await it.close();
  }
  return h;
}
