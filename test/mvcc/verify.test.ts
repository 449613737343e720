/**
 * The store's files checked at open (src/mvcc/verify.ts): a bit flipped at rest in a table, the
 * MANIFEST or the write-ahead log makes MvccStore.open fail naming the file, where LevelDB alone
 * would serve a wrong value; a write-ahead log cut short by a crash still opens. (Planted bug
 * tried: MvccStore.open without its verifyStoreFiles call fails the first three tests; the store
 * opens and serves the flipped value.)
 */
import { readdir, readFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import { afterEach, expect, it } from 'vitest';
import { MvccStore, StoreFileCorruptError } from '../../src/mvcc/index.js';
import { Applier, b, flipBit, removeTempDirs, tempDir } from './helpers.js';

afterEach(removeTempDirs);

const VALUE = (i: number): string => `value-${String(i).padStart(4, '0')}-${'x'.repeat(40)}`;

/** A closed store of 200 keys, uncompressed (the values are plain bytes in its files); `toTables` moves them out of the log into tables. */
async function makeStore(toTables: boolean): Promise<string> {
  const dir = await tempDir('verify');
  const store = await MvccStore.open(dir, { compression: false });
  const ap = new Applier(store);
  for (let i = 0; i < 200; i++) await ap.put(`k${i}`, VALUE(i));
  if (toTables) await store.defragment();
  await store.close();
  return dir;
}

async function fileOf(dir: string, pattern: RegExp): Promise<string> {
  const names = (await readdir(dir)).filter((n) => pattern.test(n)).sort();
  expect(names.length).toBeGreaterThan(0);
  return path.join(dir, names.at(-1)!);
}

async function openError(dir: string): Promise<StoreFileCorruptError> {
  const err = await MvccStore.open(dir).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreFileCorruptError);
  return err as StoreFileCorruptError;
}

it('a flipped bit in a value in a table: LevelDB alone serves the wrong value, MvccStore.open refuses naming the table', async () => {
  const dir = await makeStore(true);
  const table = await fileOf(dir, /\.ldb$/);
  const at = (await readFile(table)).indexOf(VALUE(77));
  expect(at).toBeGreaterThan(0);
  await flipBit(table, at + 3);

  const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await raw.open();
  const served = (await raw.get(Buffer.concat([b('c'), b('k77')])))!;
  await raw.close();
  expect(served.includes(b(VALUE(77)))).toBe(false); // what the check is for
  expect(served.includes(b(VALUE(77).replace('value', 'valee')))).toBe(true);

  const err = await openError(dir);
  expect(err.file).toBe(table);
  expect(err.message).toMatch(/^mvcc: corrupt store file .*\.ldb at byte \d+: block checksum mismatch$/);
});

it('a flipped bit in the MANIFEST or in a record of the write-ahead log followed by others: open refuses naming it', async () => {
  const dir = await makeStore(true);
  const manifest = await fileOf(dir, /^MANIFEST-/);
  await flipBit(manifest, 12);
  expect((await openError(dir)).file).toBe(manifest);
  await flipBit(manifest, 12);
  await (await MvccStore.open(dir)).close();

  const logged = await makeStore(false);
  const log = await fileOf(logged, /\.log$/);
  await flipBit(log, 100);
  const err = await openError(logged);
  expect(err.file).toBe(log);
  expect(err.message).toMatch(/record checksum mismatch, with records after it$/);
});

it('a table that is missing or shorter than the MANIFEST says: open refuses naming it', async () => {
  const dir = await makeStore(true);
  const table = await fileOf(dir, /\.ldb$/);
  await truncate(table, 100);
  expect((await openError(dir)).message).toContain(`${table} at byte 100: 100 bytes, MANIFEST-`);
});

it('a write-ahead log cut short in its last record (a crash) opens, at the batch before it', async () => {
  const dir = await makeStore(false);
  const log = await fileOf(dir, /\.log$/);
  const size = (await readFile(log)).length;
  await truncate(log, size - 10);
  const store = await MvccStore.open(dir);
  expect(store.appliedIndex).toBe(199);
  expect((await store.range({ key: b('k198') })).kvs[0]!.value.toString()).toBe(VALUE(198));
  await store.close();
});
