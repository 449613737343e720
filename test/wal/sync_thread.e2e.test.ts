import { afterEach, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SyncThread } from '../../src/wal/sync_thread.js';

// The WAL's fdatasync thread: it syncs the fd it is given, reports the syscall's own time and its
// error, refuses overlapping use, and never keeps an idle process alive.

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function tempFile(): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-sync-thread-'));
  const fd = openSync(path.join(dir, 'f'), 'w+');
  cleanup.push(async () => {
    closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  });
  return fd;
}

function thread(): SyncThread {
  const t = new SyncThread();
  cleanup.push(() => t.stop());
  return t;
}

test('syncs a file written through the same fd and returns the fdatasync time', async () => {
  const t = thread();
  const fd = await tempFile();
  for (let i = 0; i < 20; i++) {
    writeSync(fd, Buffer.alloc(512, i), 0, 512, i * 512);
    const ms = await t.sync(fd);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(60_000);
  }
});

test("a failed fdatasync rejects with the system's error (code, errno, syscall), and the thread goes on", async () => {
  const t = thread();
  const fd = await tempFile();
  const closed = openSync(os.devNull, 'r');
  closeSync(closed);
  await expect(t.sync(closed)).rejects.toMatchObject({ code: 'EBADF', syscall: 'fdatasync', errno: -9 });
  expect(await t.sync(fd)).toBeGreaterThanOrEqual(0);
});

test('one sync at a time; none after stop', async () => {
  const t = new SyncThread();
  const fd = await tempFile();
  const first = t.sync(fd);
  await expect(t.sync(fd)).rejects.toThrow(/concurrent fdatasync/);
  await first;
  await t.stop();
  await expect(t.sync(fd)).rejects.toThrow(/sync thread stopped/);
});

test('an idle thread does not keep the process alive; one in a sync does until it is done', () => {
  const script = [
    "import { openSync } from 'node:fs';",
    `import { SyncThread } from ${JSON.stringify(path.resolve('src/wal/sync_thread.ts'))};`,
    'new SyncThread();',
    'const busy = new SyncThread();',
    `const fd = openSync(${JSON.stringify(path.join(os.tmpdir(), `qkv-sync-thread-${process.pid}`))}, 'w');`,
    "busy.sync(fd).then((ms) => console.log('synced', typeof ms));",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  expect(r.error).toBeUndefined();
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('synced number');
  expect(r.status).toBe(0);
});
