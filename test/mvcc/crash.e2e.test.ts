/**
 * Crash test: a real child process applies a deterministic stream of entries and reports each
 * applied index once its batch is stored; the parent SIGKILLs it mid-stream, reopens the store,
 * and checks it is exactly at some applied index >= the last reported one, holding exactly what
 * entries 1..appliedIndex produce (checked against the model, and against the hash of a store
 * fed the same entries in this process). Then the child resumes from there, and is killed again.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { entryFor } from './crash-entries.js';
import { ALL, b, norm, tempDir } from './helpers.js';
import { Model } from './model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const LAST = 30_000;

/** Runs the child until it has reported `killAt` (then SIGKILLs it) or finishes. Returns the last reported index. */
function runChild(dir: string, killAt: number, batch: number, delayMs: number): Promise<{ reported: number; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'crash-child.ts'), dir, String(LAST), String(batch)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let reported = -1;
    let killed = false;
    let buf = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash child timed out; stderr: ${err}`));
    }, 60_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        const n = Number(line);
        if (Number.isInteger(n) && line !== '') reported = Math.max(reported, n);
        if (!killed && reported >= killAt) {
          killed = true;
          // a delay lets the kill land anywhere: between batches or during one
          if (delayMs === 0) child.kill('SIGKILL');
          else setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`crash child failed (${code}): ${err}`));
      else resolve({ reported, killed });
    });
  });
}

describe('crash safety', () => {
  it('after SIGKILL the store holds exactly the entries up to its applied index', async () => {
    const dir = await tempDir('crash');
    const refDir = await tempDir('crash-ref');
    const ref = await MvccStore.open(refDir, { deferPhysicalCompaction: true });
    const model = new Model();
    let modelAt = 0;
    let refAt = 0;
    try {
      // kill points spread over the stream; batch sizes as a Raft apply loop would use
      for (const [killAt, batch, delay] of [
        [2_000, 100, 0],
        [9_000, 500, 40],
        [15_000, 250, 15],
      ] as const) {
        const { reported, killed } = await runChild(dir, killAt, batch, delay);
        expect(killed).toBe(true);
        expect(reported).toBeGreaterThanOrEqual(killAt);

        const store = await MvccStore.open(dir, { deferPhysicalCompaction: true });
        try {
          const applied = store.appliedIndex;
          expect(applied).toBeGreaterThanOrEqual(reported);
          expect(applied).toBeLessThanOrEqual(LAST);
          // bring the model and the reference store to the same applied index
          for (; modelAt < applied; modelAt++) model.apply(entryFor(modelAt + 1));
          while (refAt < applied) {
            const n = Math.min(1000, applied - refAt);
            await ref.applyBatch(Array.from({ length: n }, (_, j) => ({ index: refAt + j + 1, request: entryFor(refAt + j + 1) })));
            refAt += n;
          }
          expect([store.revision, store.compactRevision]).toEqual([model.rev, model.compactRev]);
          const everything = { key: b('\0'), rangeEnd: ALL };
          expect(norm(await store.range(everything))).toEqual(norm(model.range(everything)));
          for (const rev of [model.compactRev, Math.floor((model.compactRev + model.rev) / 2), model.rev - 1]) {
            if (rev < Math.max(model.compactRev, 1)) continue;
            expect(norm(await store.range({ ...everything, revision: rev }))).toEqual(norm(model.range({ ...everything, revision: rev })));
          }
          expect(await store.hashKV()).toEqual(await ref.hashKV());
          expect(await store.leases()).toEqual([...model.leases].sort((x, y) => x[0] - y[0]).map(([id, ttl]) => ({ id, ttl })));
          // replaying the last applied entry is skipped
          expect(await store.apply(applied, entryFor(applied))).toEqual({ status: 'skipped' });
        } finally {
          await store.close();
        }
      }
    } finally {
      await ref.close();
      await rm(dir, { recursive: true, force: true });
      await rm(refDir, { recursive: true, force: true });
    }
  });
});
