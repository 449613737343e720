/**
 * The external sort the import of etcd's revisions goes through: pairs given in any order come
 * back in key order, byte for byte, through one run kept in memory or many written and merged;
 * pairs larger than a run or than a read of a run file included. Small runs here, so that a few
 * hundred KiB make many runs.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ExternalSorter } from '../../src/mvcc/external_sort.js';
import { removeTempDirs, tempDir } from './helpers.js';

/**
 * Pairs with random, distinct keys (some sharing long prefixes; distinct as the import's are, since
 * equal keys come back in no particular order) and values of `valueBytes(i)` bytes (some empty).
 */
function pairs(n: number, valueBytes: (i: number) => number): [Buffer, Buffer][] {
  return Array.from({ length: n }, (_, i) => {
    const random = i % 3 === 0 ? Buffer.concat([Buffer.from('common/prefix/'), randomBytes(1 + (i % 5))]) : randomBytes(1 + (i % 40));
    const unique = Buffer.alloc(4);
    unique.writeUInt32BE(i);
    return [Buffer.concat([random, unique]), randomBytes(valueBytes(i))];
  });
}

async function sortThrough(dir: string, input: readonly [Buffer, Buffer][], runBytes: number): Promise<{ out: [string, string][]; runs: number }> {
  const sorter = new ExternalSorter(dir, 'test', runBytes);
  for (const [k, v] of input) await sorter.add(k, v);
  const runs = (await readdir(dir)).length;
  const out: [string, string][] = [];
  for await (const chunk of sorter.sorted()) for (const [k, v] of chunk) out.push([k.toString('hex'), v.toString('hex')]);
  return { out, runs };
}

const expected = (input: readonly [Buffer, Buffer][]): [string, string][] =>
  [...input].sort((a, b) => Buffer.compare(a[0], b[0])).map(([k, v]) => [k.toString('hex'), v.toString('hex')]);

describe('external sort', () => {
  afterEach(removeTempDirs);

  it('sorts pairs that fit in one run in memory, writing no file', async () => {
    const dir = await tempDir('sort');
    const input = pairs(500, (i) => i % 50);
    const { out, runs } = await sortThrough(dir, input, 1 << 20);
    expect(runs).toBe(0);
    expect(out).toEqual(expected(input));
  });

  it('merges many runs: every pair back once, in key order, values intact, run files removed', async () => {
    const dir = await tempDir('sort');
    // Values up to 3 KiB (4.5 MB in all) in 256 KiB runs: over ten runs, each read in several 64 KiB reads, pairs split across them.
    const input = pairs(3000, (i) => (i * 37) % 3000);
    const { out, runs } = await sortThrough(dir, input, 256 << 10);
    expect(runs).toBeGreaterThan(10);
    expect(out).toEqual(expected(input));
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes pairs larger than a run and than a read of a run file', async () => {
    const dir = await tempDir('sort');
    const input = pairs(200, (i) => (i % 10 === 0 ? 100_000 + i : i));
    const { out, runs } = await sortThrough(dir, input, 16 << 10);
    expect(runs).toBeGreaterThan(20);
    expect(out).toEqual(expected(input));
  });
});
