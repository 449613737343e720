import { afterEach, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { LogStoreError, type LogStore } from '../../src/wal/log_store.js';
import { WalLogStore } from '../../src/wal/wal.js';
import { EntryType, type Entry } from '../../src/raft/types.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'qkv-logstore-'));
  dirs.push(d);
  return d;
}

function ents(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ term, index: i, type: EntryType.Normal, data: Buffer.from(`e${i}t${term}`) });
  return out;
}

const summary = (es: Entry[]) => es.map((e) => `${e.index}:${e.term}`);

// The LogStore contract, run against each implementation (the WAL is the only one).
const kinds: { kind: string; open: (dir: string) => Promise<LogStore> }[] = [{ kind: 'wal', open: (dir) => WalLogStore.open(dir, { segmentBytes: 4096 }) }];

describe.each(kinds)('$kind log store', ({ kind, open }) => {
  type Step = { entries?: [number, number, number]; hard?: [number, number, number]; snapshot?: [number, number]; compact?: [number, number] };
  const cases: { name: string; steps: Step[]; want: string[]; hard?: [number, number, number]; snap?: number }[] = [
    { name: 'append', steps: [{ entries: [1, 3, 1] }, { entries: [4, 5, 1] }], want: ['1:1', '2:1', '3:1', '4:1', '5:1'] },
    { name: 'overwrite a conflicting suffix', steps: [{ entries: [1, 5, 1] }, { entries: [3, 3, 2] }], want: ['1:1', '2:1', '3:2'] },
    { name: 'overwrite with a longer suffix', steps: [{ entries: [1, 3, 1] }, { entries: [2, 6, 3] }], want: ['1:1', '2:3', '3:3', '4:3', '5:3', '6:3'] },
    { name: 'hard state only', steps: [{ hard: [4, 2, 0] }], want: [], hard: [4, 2, 0] },
    { name: 'received snapshot drops older entries', steps: [{ entries: [1, 5, 1] }, { snapshot: [7, 2] }], want: [], snap: 7 },
    { name: 'received snapshot keeps newer entries', steps: [{ entries: [1, 9, 1] }, { snapshot: [6, 1] }], want: ['7:1', '8:1', '9:1'], snap: 6 },
    { name: 'app snapshot with a catch-up tail', steps: [{ entries: [1, 10, 1] }, { compact: [8, 5] }], want: ['6:1', '7:1', '8:1', '9:1', '10:1'], snap: 8 },
    { name: 'append after a snapshot', steps: [{ snapshot: [7, 2] }, { entries: [8, 9, 2] }], want: ['8:2', '9:2'], snap: 7 },
  ];
  test.each(cases)('$name, and the same after reopening', async ({ steps, want, hard, snap }) => {
    const dir = await tempDir();
    let store = await open(dir);
    for (const s of steps) {
      if (s.entries) await store.save({ entries: ents(s.entries[0], s.entries[1], s.entries[2]) });
      if (s.hard) await store.save({ entries: [], hardState: { term: s.hard[0], vote: s.hard[1], commit: s.hard[2] } });
      if (s.snapshot)
        await store.save({
          entries: [],
          snapshot: { metadata: { index: s.snapshot[0], term: s.snapshot[1], voters: [1, 2, 3], learners: [] }, data: Buffer.from('snap') },
        });
      if (s.compact)
        await store.saveSnapshot({ metadata: { index: s.compact[0], term: 1, voters: [1], learners: [] }, data: Buffer.from('app') }, s.compact[1]);
    }
    for (let round = 0; round < 2; round++) {
      const st = await store.load();
      expect(summary(st.entries)).toEqual(want);
      if (hard) expect(st.hardState).toEqual({ term: hard[0], vote: hard[1], commit: hard[2] });
      expect(st.snapshot?.metadata.index).toBe(snap);
      if (want.length > 0) {
        expect(store.firstIndex()).toBe(Number(want[0]!.split(':')[0]));
        expect(store.lastIndex()).toBe(Number(want.at(-1)!.split(':')[0]));
      }
      await store.close();
      store = await open(dir);
    }
    await store.close();
  });

  test('a gap is refused and changes nothing', async () => {
    const store = await open(await tempDir());
    await store.save({ entries: ents(1, 3) });
    await expect(store.save({ entries: ents(5, 6), hardState: { term: 9, vote: 9, commit: 9 } })).rejects.toThrow(LogStoreError);
    const st = await store.load();
    expect(summary(st.entries)).toEqual(['1:1', '2:1', '3:1']);
    expect(st.hardState).toEqual({ term: 0, vote: 0, commit: 0 });
    await store.close();
  });

  test('a large snapshot round-trips byte for byte', async () => {
    const store = await open(await tempDir());
    const data = Buffer.alloc(9 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await store.saveSnapshot({ metadata: { index: 3, term: 1, voters: [1], learners: [] }, data }, 0);
    const st = await store.load();
    expect(Buffer.from(st.snapshot!.data).equals(data)).toBe(true);
    await store.close();
  });

  test('after SIGKILL mid-stream, every acknowledged entry is on disk', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/wal/log_store_child.ts'), kind, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = 0;
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child acknowledged too few entries in time')), 60_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const l of lines) acked = Number(l);
        if (acked >= 300 && !child.killed) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', (code) => {
        if (acked < 300) reject(new Error(`child exited early with ${code}`));
      });
    });
    await new Promise((r) => child.once('exit', r));
    const store = await open(dir);
    const st = await store.load();
    expect(st.entries.length).toBeGreaterThanOrEqual(acked);
    st.entries.forEach((e, i) => {
      expect(e.index).toBe(i + 1);
      expect(Buffer.from(e.data).toString()).toBe(`entry-${e.index}`);
    });
    expect(st.hardState.commit).toBe(st.entries.at(-1)!.index);
    await store.close();
  });
});
