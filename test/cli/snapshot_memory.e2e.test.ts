/**
 * `qkv snapshot restore` in bounded memory: two snapshot files, one eight times the other
 * (written here in etcd's format, 2 KiB values), each restored by the CLI as a child process
 * whose peak resident set (VmHWM) is read while it runs. The larger restores whole, and its peak
 * grows by well under half the files' difference (a restore that held the file grows by at least
 * that difference, one that also held its revisions by twice it). The peak is not quite flat:
 * LevelDB's memtables and cache are fixed, but garbage awaiting the collector and the allocator's
 * free lists grow slowly with the bytes that pass through (32 MB file: about 130 MB, 250 MB: about
 * 200 MB, 1 GB: about 250 MB).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EtcdRevisionRecord } from '../../src/backup/etcd_snapshot.js';
import { writeEtcdDatabase } from '../../src/backup/etcd_snapshot_writer.js';
import { MvccStore } from '../../src/mvcc/index.js';
import { runMeasuringPeakRss } from './peak_rss.js';

const VALUE_BYTES = 2048;
const SMALL = 8_000;
const LARGE = 64_000;

const valueAt = (i: number): Buffer => Buffer.alloc(VALUE_BYTES, `value ${i} `);
const keyAt = (i: number): Buffer => Buffer.from(`mem/${String(i).padStart(7, '0')}`);

function* revisions(n: number): Generator<EtcdRevisionRecord> {
  for (let i = 0; i < n; i++) {
    const rev = i + 2;
    yield {
      revision: { main: rev, sub: 0 },
      tombstone: false,
      kv: { key: keyAt(i), createRevision: rev, modRevision: rev, version: 1, value: valueAt(i), lease: 0n },
    };
  }
}

/** An etcd snapshot file of `n` revisions: the database and its sha256, as etcdctl saves it. */
async function snapshotFile(file: string, n: number): Promise<number> {
  await writeEtcdDatabase(file, { revisions: revisions(n), leases: [], consistentIndex: n, compactRevision: 0, members: [], removedMemberIds: [], alarms: [] });
  await appendFile(
    file,
    createHash('sha256')
      .update(await readFile(file))
      .digest(),
  );
  return (await stat(file)).size;
}

describe('qkv snapshot restore in bounded memory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-snapshot-memory-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const restore = async (name: string, n: number): Promise<{ fileBytes: number; peak: number; dataDir: string }> => {
    const file = path.join(dir, `${name}.db`);
    const fileBytes = await snapshotFile(file, n);
    const dataDir = path.join(dir, name);
    const r = await runMeasuringPeakRss(process.execPath, [
      path.resolve('bin/qkv.mjs'),
      'snapshot',
      'restore',
      file,
      '--name',
      name,
      '--data-dir',
      dataDir,
      '--initial-cluster',
      `${name}=http://127.0.0.1:2380`,
      '--initial-advertise-peer-urls',
      'http://127.0.0.1:2380',
    ]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toContain(`revision ${n + 1}, compacted at 0`);
    await rm(file);
    return { fileBytes, peak: r.peakRssBytes, dataDir };
  };

  test('a file eight times larger restores whole, its peak memory growing by well under half the difference in size', async () => {
    const small = await restore('small', SMALL);
    const large = await restore('large', LARGE);
    const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;
    const figures = `files ${mb(small.fileBytes)} and ${mb(large.fileBytes)}, peak RSS ${mb(small.peak)} and ${mb(large.peak)}`;
    expect(small.peak, figures).toBeGreaterThan(0);
    expect(large.peak - small.peak, figures).toBeLessThan((large.fileBytes - small.fileBytes) / 2);
    const store = await MvccStore.open(path.join(large.dataDir, 'kv'));
    try {
      expect(store.revision).toBe(LARGE + 1);
      const last = await store.range({ key: keyAt(LARGE - 1) });
      expect(last.kvs.map((kv) => kv.value.equals(valueAt(LARGE - 1)))).toEqual([true]);
      expect((await store.range({ key: Buffer.from('mem/'), rangeEnd: Buffer.from('mem0'), countOnly: true })).count).toBe(LARGE);
    } finally {
      await store.close();
    }
  });
});
