/**
 * The store snapshot members send one another: a copy of the store's LevelDB files taken while
 * batches are written, memtables flushed and tables compacted under it (MvccStore.checkpoint),
 * streamed (snapshotFrames) and written into a new directory (receiveStoreFiles). It must open
 * to the store as it was after one of its batches (the same Maintenance.Hash), at least as new
 * as when it was asked for; a damaged stream is refused, with nothing written outside its
 * directory.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { ApplyEntry } from '../../src/mvcc/types.js';
import { LengthPrefixedFrames } from '../../src/server/frames.js';
import { receiveStoreFiles, snapshotFrames } from '../../src/server/snapshot_client.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-store-snapshot-'));
  dirs.push(dir);
  return dir;
}

/** The frames' bodies, as fetchSnapshot yields them. */
async function framesOf(store: MvccStore, scratch: string): Promise<Buffer[]> {
  const split = new LengthPrefixedFrames(1 << 28, () => new Error('frame too large'));
  const out: Buffer[] = [];
  for await (const part of snapshotFrames(store, scratch)) out.push(...split.push(Buffer.from(part)));
  expect(split.pending).toBe(0);
  return out;
}

const b = (s: string): Buffer => Buffer.from(s);
async function* each(frames: Buffer[]): AsyncGenerator<Buffer> {
  yield* frames;
}

describe('store snapshot between members', () => {
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('is a copy of a store being written that opens at a batch boundary, at least as new as the request', async () => {
    const dir = await tempDir();
    // Tiny memtables and tables: flushes and compactions happen all through the copies.
    const src = await MvccStore.open(path.join(dir, 'src'), { writeBufferSize: 64 << 10, maxFileSize: 64 << 10 });
    /** Maintenance.Hash after each written batch, by applied index. */
    const hashes = new Map<number, number>();
    let written = 0;
    let index = 0;
    let stop = false;
    const value = (i: number): Buffer => Buffer.alloc(2000, String.fromCharCode(97 + (i % 26)));
    const writer = (async (): Promise<void> => {
      for (let batch = 0; !stop || batch < 50; batch++) {
        const entries: ApplyEntry[] = [];
        for (let j = 0; j < 20; j++) {
          const i = batch * 20 + j;
          entries.push({
            index: ++index,
            request: i % 97 === 0 ? { deleteRange: { key: b(`k${(i * 7) % 300}`) } } : { put: { key: b(`k${i % 300}`), value: value(i) } },
          });
        }
        if (batch % 40 === 39) entries.push({ index: ++index, request: { compaction: { revision: Math.max(1, batch * 20 - 200) } } });
        await src.applyBatch(entries);
        hashes.set(src.appliedIndex, (await src.hash()).hash);
        written = src.appliedIndex;
      }
    })();
    const copies: { at: number; dir: string }[] = [];
    while (copies.length < 6) {
      await new Promise((r) => setTimeout(r, 30));
      const at = written;
      const target = path.join(dir, `copy${copies.length}`);
      await receiveStoreFiles(each(await framesOf(src, dir)), target);
      copies.push({ at, dir: target });
    }
    stop = true;
    await writer;
    // The copies made to send them are gone.
    expect((await readdir(dir)).filter((n) => n.startsWith('kv.checkpoint-'))).toEqual([]);
    for (const c of copies) {
      const copy = await MvccStore.open(c.dir);
      try {
        expect(copy.appliedIndex).toBeGreaterThanOrEqual(c.at);
        expect(hashes.has(copy.appliedIndex)).toBe(true);
        expect((await copy.hash()).hash).toBe(hashes.get(copy.appliedIndex));
      } finally {
        await copy.close();
      }
    }
    await src.close();
  });

  it("holds the writes still only in LevelDB's log", async () => {
    const dir = await tempDir();
    const src = await MvccStore.open(path.join(dir, 'src'));
    for (let i = 1; i <= 30; i++) await src.apply(i, { put: { key: b(`k${i % 7}`), value: b(`v${i}`) } });
    const target = path.join(dir, 'copy');
    await receiveStoreFiles(each(await framesOf(src, dir)), target);
    const want = (await src.hash()).hash;
    await src.close();
    const copy = await MvccStore.open(target);
    expect(copy.appliedIndex).toBe(30);
    expect((await copy.hash()).hash).toBe(want);
    await copy.close();
  });

  it('removes its copy when the receiver stops reading midway', async () => {
    const dir = await tempDir();
    const src = await MvccStore.open(path.join(dir, 'src'));
    for (let i = 1; i <= 30; i++) await src.apply(i, { put: { key: b(`k${i}`), value: Buffer.alloc(100_000, i) } });
    const frames = snapshotFrames(src, dir);
    await frames.next();
    expect((await readdir(dir)).filter((n) => n.startsWith('kv.checkpoint-'))).toHaveLength(1);
    await frames.return(undefined);
    expect((await readdir(dir)).filter((n) => n.startsWith('kv.checkpoint-'))).toEqual([]);
    await src.close();
  });

  describe('a damaged stream is refused', () => {
    async function streamOfSmallStore(): Promise<{ frames: Buffer[]; dir: string }> {
      const dir = await tempDir();
      const src = await MvccStore.open(path.join(dir, 'src'));
      for (let i = 1; i <= 50; i++) await src.apply(i, { put: { key: b(`k${i}`), value: b(`v${i}`) } });
      const frames = await framesOf(src, dir);
      await src.close();
      return { frames, dir };
    }
    const header = (files: unknown): Buffer =>
      Buffer.concat([Buffer.from([0x48]), Buffer.from(JSON.stringify({ format: 'qkv-store-files', version: 1, files }))]);

    it('the undamaged stream opens', async () => {
      const { frames, dir } = await streamOfSmallStore();
      await receiveStoreFiles(each(frames), path.join(dir, 'ok'));
      const copy = await MvccStore.open(path.join(dir, 'ok'));
      expect(copy.appliedIndex).toBe(50);
      expect((await copy.range({ key: b('k7') })).kvs[0]?.value.toString()).toBe('v7');
      await copy.close();
    });

    it.each([
      [
        'a flipped byte',
        (f: Buffer[]) => f.map((x, i) => (i === 1 ? Buffer.concat([x.subarray(0, 10), Buffer.from([x[10]! ^ 1]), x.subarray(11)]) : x)),
        /sha256 mismatch/,
      ],
      ['the end missing', (f: Buffer[]) => f.slice(0, -1), /ended early/],
      ['a data frame missing', (f: Buffer[]) => [f[0]!, ...f.slice(2)], /ended before all its files|sha256/],
      ['a frame after the end', (f: Buffer[]) => [...f, f[1]!], /after its end/],
      ['more bytes than its files', (f: Buffer[]) => [f[0]!, ...f.slice(1, -1), Buffer.from([0x44, 1, 2, 3]), f[f.length - 1]!], /more bytes than its files/],
      ['no header', (f: Buffer[]) => f.slice(1), /does not start with its header/],
      ['an unknown frame', (f: Buffer[]) => [f[0]!, Buffer.from([0x58, 0]), ...f.slice(1)], /unknown kind/],
      [
        'another format',
        (f: Buffer[]) => [Buffer.from([0x48, ...Buffer.from('{"format":"x","version":1,"files":[]}')]), ...f.slice(1)],
        /not a qkv-store-files stream/,
      ],
      [
        'a file outside its directory',
        (f: Buffer[]) => [
          header([
            { name: '../CURRENT', size: 3 },
            { name: 'CURRENT', size: 0 },
          ]),
          ...f.slice(1),
        ],
        /is not a LevelDB file's/,
      ],
      [
        'a name twice',
        (f: Buffer[]) => [
          header([
            { name: 'CURRENT', size: 1 },
            { name: 'CURRENT', size: 1 },
          ]),
          ...f.slice(1),
        ],
        /is not a LevelDB file's/,
      ],
      ['a bad size', (f: Buffer[]) => [header([{ name: 'CURRENT', size: -1 }]), ...f.slice(1)], /bad size/],
      ['no CURRENT', (f: Buffer[]) => [header([{ name: '000001.log', size: 1 }]), ...f.slice(1)], /no CURRENT/],
    ])('%s', async (_what, damage, message) => {
      const { frames, dir } = await streamOfSmallStore();
      const target = path.join(dir, 'copy');
      await expect(receiveStoreFiles(each(damage(frames)), target)).rejects.toMatchObject({ code: 'ERR_CORRUPT', message });
      expect(existsSync(path.join(dir, 'CURRENT'))).toBe(false);
    });
  });
});
