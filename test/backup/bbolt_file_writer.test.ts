/**
 * The streamed bbolt writer (src/backup/bbolt_writer.ts), read back by the reader: buckets of
 * thousands of keys (branch levels above the leaves; given in chunks, from buffers reused pair
 * after pair), values larger than a page (overflow pages), an empty bucket; the file is exactly
 * its pages; keys out of order are refused.
 */
import { Buffer } from 'node:buffer';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BboltDb } from '../../src/backup/bbolt.js';
import { BboltFileWriter } from '../../src/backup/bbolt_writer.js';
import { InternalError } from '../../src/errors.js';
import { PAGE, readMetaFields } from './bbolt_writer.js';

const pairs = (n: number, prefix: string, size: (i: number) => number): [Buffer, Buffer][] =>
  Array.from({ length: n }, (_, i) => [Buffer.from(`${prefix}${String(i).padStart(6, '0')}`), Buffer.alloc(size(i), i % 251)]);

/**
 * The pairs in chunks of 7, as they come from an export; within a chunk every pair is written
 * into the same two buffers, which the writer must copy as each pair comes.
 */
async function* inChunksReusingBuffers(xs: [Buffer, Buffer][]): AsyncGenerator<Iterable<readonly [Buffer, Buffer]>> {
  const key = Buffer.alloc(1024);
  const value = Buffer.alloc(64 << 10);
  for (let i = 0; i < xs.length; i += 7) {
    yield (function* () {
      for (const [k, v] of xs.slice(i, i + 7)) {
        k.copy(key);
        v.copy(value);
        yield [key.subarray(0, k.length), value.subarray(0, v.length)] as const;
      }
    })();
  }
}

describe('writing a bbolt database', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-bbolt-writer-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes buckets the reader reads back whole: branch levels, overflow pages, an empty bucket', async () => {
    // Long keys: few to a branch page, so 3000 of them need two branch levels.
    const many = pairs(3000, `key/${'x'.repeat(200)}/`, (i) => i % 20);
    const big = pairs(5, 'big', (i) => 9000 + i * 4096);
    const file = path.join(dir, 'a.db');
    const w = await BboltFileWriter.create(file);
    await w.bucket('many', inChunksReusingBuffers(many));
    await w.bucket('empty', []);
    await w.bucket('big', big);
    const written = await w.finish();
    const data = await readFile(file);
    expect((await stat(file)).size).toBe(written.size);
    expect(written.size).toBe(written.pageCount * 4096);
    const db = BboltDb.open(data);
    expect(db.meta).toMatchObject({ pageSize: 4096, pageCount: written.pageCount, freelistPageId: undefined, txid: 2n, metaPage: 0 });
    // Meta page 1 holds the transaction before, as bbolt leaves it.
    expect(readMetaFields(data, 1, 4096).txid).toBe(1n);
    expect(db.bucketNames().map(String)).toEqual(['big', 'empty', 'many']);
    const text = (xs: Iterable<{ key: Buffer; value: Buffer } | [Buffer, Buffer]>): string[] =>
      [...xs].map((p) => (Array.isArray(p) ? `${p[0].toString('hex')}=${p[1].toString('hex')}` : `${p.key.toString('hex')}=${p.value.toString('hex')}`));
    const read = (name: string): string[] => text(db.bucket(name)!.pairs());
    expect(read('many')).toEqual(text(many));
    expect(read('big')).toEqual(text(big));
    expect(read('empty')).toEqual([]);
    // The pages in order: the pairs need more leaves than one branch page holds (two branch
    // levels), each big value a leaf with overflow pages; every page is used once.
    const kinds: Record<string, number> = {};
    let overflowPages = 0;
    for (let id = 2; id < written.pageCount; ) {
      const at = id * 4096;
      expect(data.readBigUInt64LE(at)).toBe(BigInt(id));
      const flags = data.readUInt16LE(at + 8);
      kinds[flags] = (kinds[flags] ?? 0) + 1;
      const overflow = data.readUInt32LE(at + 12);
      overflowPages += overflow;
      id += 1 + overflow;
    }
    expect(kinds[PAGE.branch]).toBeGreaterThanOrEqual(3);
    expect(overflowPages).toBeGreaterThanOrEqual(5 * 2);
  });

  it('zeroes every page beyond what it holds, across many writes of its buffer (the file is the same whatever was written before)', async () => {
    // About 6 MB of leaves: the write buffer (1 MiB) is written and reused several times.
    const many = pairs(20_000, 'k/', (i) => 200 + ((i * 37) % 150));
    const file = path.join(dir, 'zeroed.db');
    const w = await BboltFileWriter.create(file);
    await w.bucket('many', inChunksReusingBuffers(many));
    const written = await w.finish();
    expect(written.size).toBeGreaterThan(4 << 20);
    const data = await readFile(file);
    let leaves = 0;
    for (let id = 2; id < written.pageCount; ) {
      const at = id * 4096;
      const flags = data.readUInt16LE(at + 8);
      const count = data.readUInt16LE(at + 10);
      const pages = 1 + data.readUInt32LE(at + 12);
      // The end of the last element's key (branch) or value (leaf): bytes after it are zero.
      const e = at + 16 + (count - 1) * 16;
      const end =
        flags === PAGE.branch
          ? e + data.readUInt32LE(e) + data.readUInt32LE(e + 4)
          : e + data.readUInt32LE(e + 4) + data.readUInt32LE(e + 8) + data.readUInt32LE(e + 12);
      expect(data.subarray(end, at + pages * 4096).every((b) => b === 0)).toBe(true);
      if (flags === PAGE.leaf) leaves++;
      id += pages;
    }
    expect(leaves).toBeGreaterThan(1000);
  });

  it('refuses keys out of order, which would make a database no reader can search', async () => {
    const file = path.join(dir, 'b.db');
    const w = await BboltFileWriter.create(file);
    await expect(
      w.bucket('x', [
        [Buffer.from('b'), Buffer.from('1')],
        [Buffer.from('a'), Buffer.from('2')],
      ]),
    ).rejects.toThrow(InternalError);
    await w.abandon();
  });
});
