/**
 * Watch delivery benchmark: a real MVCC store, the watch hub, and
 *   A. 10,000 watchers on distinct keys, puts to random watched keys;
 *   B. 100 watchers on one hot prefix, puts under it (every event goes to all 100).
 * Writes are applied in batches as Raft's apply loop does. For every delivered event it measures
 * the time from the start of the applyBatch call that wrote it to the consumer receiving it, and
 * it checks that every watcher got exactly its events, once each, in revision order.
 *
 *   npx tsx bench/watch.ts [--watchers 10000] [--hot 100] [--seconds 10] [--batch 100] [--quick]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MvccStore } from '../src/mvcc/store.js';
import type { ApplyEntry } from '../src/mvcc/types.js';
import { WatchHub, type Watcher } from '../src/watch/hub.js';
import { StoreWatchSource } from '../src/watch/store_source.js';
import { prefixEnd } from '../src/api/keys.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const QUICK = process.argv.includes('--quick');
const SECONDS = arg('seconds', QUICK ? 2 : 10);
const WATCHERS = arg('watchers', QUICK ? 2000 : 10_000);
const HOT = arg('hot', QUICK ? 20 : 100);
const BATCH = arg('batch', 100);
const VALUE = Buffer.alloc(64, 'v');

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Result {
  scenario: string;
  watchers: number;
  writes: number;
  deliveries: number;
  seconds: number;
  writesPerSec: number;
  deliveriesPerSec: number;
  p50ms: number;
  p99ms: number;
  p999ms: number;
  maxUnsynced: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  correct: boolean;
}

async function scenario(
  name: string,
  watcherCount: number,
  keyOf: (i: number) => Buffer,
  rangeEndOf: (i: number) => Buffer | undefined,
  writeKey: (n: number) => Buffer,
): Promise<Result> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-bench-watch-'));
  const store = await MvccStore.open(dir);
  const source = new StoreWatchSource();
  source.attach(store);
  const hub = new WatchHub(source);
  const rssBefore = process.memoryUsage().rss;
  const appliedAt = new Map<number, number>();
  const latencies: number[] = [];
  const watchers: Watcher[] = [];
  const lastRev: number[] = [];
  const received: number[] = [];
  let correct = true;
  for (let i = 0; i < watcherCount; i++) {
    const rangeEnd = rangeEndOf(i);
    watchers.push(hub.watch({ key: keyOf(i), ...(rangeEnd ? { rangeEnd } : {}) }));
    lastRev.push(0);
    received.push(0);
  }
  let writing = true;
  const consumers = watchers.map(async (w, i) => {
    for await (const resp of w) {
      const now = performance.now();
      for (const e of resp.events) {
        const at = appliedAt.get(e.kv.modRevision);
        if (at !== undefined) latencies.push(now - at);
        if (e.kv.modRevision <= lastRev[i]!) correct = false;
        lastRev[i] = e.kv.modRevision;
        received[i]!++;
      }
      if (!writing && received[i] === expectedFor(i)) break;
    }
  });
  const expected = new Map<string, number>();
  const expectedFor = (i: number): number => expected.get(String(i)) ?? 0;
  const keyCount = new Map<string, number>();
  let index = 0;
  let writes = 0;
  let maxUnsynced = 0;
  const started = performance.now();
  let nextReport = started + 1000;
  while (performance.now() - started < SECONDS * 1000) {
    const batch: ApplyEntry[] = [];
    for (let b = 0; b < BATCH; b++) {
      const key = writeKey(writes++);
      const k = key.toString('latin1');
      keyCount.set(k, (keyCount.get(k) ?? 0) + 1);
      batch.push({ index: ++index, request: { put: { key, value: VALUE } } });
    }
    const rev0 = store.revision;
    const t = performance.now();
    for (let r = rev0 + 1; r <= rev0 + BATCH; r++) appliedAt.set(r, t);
    await store.applyBatch(batch);
    maxUnsynced = Math.max(maxUnsynced, hub.unsyncedCount);
    // Let consumers run between batches, as the network and HTTP would.
    await new Promise((r) => setImmediate(r));
    if (performance.now() > nextReport) {
      nextReport += 1000;
      process.stdout.write(`  ${name}: ${writes} writes, ${latencies.length} deliveries, unsynced ${hub.unsyncedCount}\n`);
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  writing = false;
  // What each watcher must have received: every write to a key in its range.
  watchers.forEach((_, i) => {
    const start = keyOf(i);
    const end = rangeEndOf(i);
    let n = 0;
    for (const [k, c] of keyCount) {
      const kb = Buffer.from(k, 'latin1');
      const inRange = end ? Buffer.compare(kb, start) >= 0 && Buffer.compare(kb, end) < 0 : kb.equals(start);
      if (inRange) n += c;
    }
    expected.set(String(i), n);
  });
  const drainDeadline = performance.now() + 60_000;
  while (received.some((r, i) => r < expectedFor(i)) && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 20));
  const deliveries = latencies.length;
  received.forEach((r, i) => {
    if (r !== expectedFor(i)) correct = false;
  });
  hub.stop();
  await Promise.all(consumers);
  const rssAfter = process.memoryUsage().rss;
  source.detach();
  await store.close();
  await rm(dir, { recursive: true, force: true });
  const sorted = Float64Array.from(latencies).sort();
  return {
    scenario: name,
    watchers: watcherCount,
    writes,
    deliveries,
    seconds: elapsed,
    writesPerSec: writes / elapsed,
    deliveriesPerSec: deliveries / elapsed,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    p999ms: percentile(sorted, 99.9),
    maxUnsynced,
    rssBeforeMB: rssBefore / 2 ** 20,
    rssAfterMB: rssAfter / 2 ** 20,
    correct,
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    `qkv watch bench: ${WATCHERS} watchers on distinct keys, ${HOT} on a hot prefix, ${SECONDS} s each, batches of ${BATCH}, node ${process.version}\n`,
  );
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const results: Result[] = [];
  results.push(
    await scenario(
      'distinct keys',
      WATCHERS,
      (i) => Buffer.from(`k/${i}`),
      () => undefined,
      () => Buffer.from(`k/${rnd(WATCHERS)}`),
    ),
  );
  const hot = Buffer.from('hot/');
  results.push(
    await scenario(
      'hot prefix',
      HOT,
      () => hot,
      () => prefixEnd(hot),
      (n) => Buffer.from(`hot/${n % 1000}`),
    ),
  );
  const pad = (s: string | number, n: number): string => String(s).padStart(n);
  process.stdout.write(
    `\n${'scenario'.padEnd(14)}${pad('watchers', 9)}${pad('writes/s', 10)}${pad('deliveries/s', 14)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('p99.9 ms', 10)}${pad('max unsynced', 14)}${pad('rss MB', 9)}${pad('correct', 9)}\n`,
  );
  for (const r of results) {
    process.stdout.write(
      `${r.scenario.padEnd(14)}${pad(r.watchers, 9)}${pad(r.writesPerSec.toFixed(0), 10)}${pad(r.deliveriesPerSec.toFixed(0), 14)}${pad(r.p50ms.toFixed(2), 9)}${pad(r.p99ms.toFixed(2), 9)}${pad(r.p999ms.toFixed(2), 10)}${pad(r.maxUnsynced, 14)}${pad(r.rssAfterMB.toFixed(0), 9)}${pad(String(r.correct), 9)}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify({ bench: 'watch', results })}\n`);
  if (results.some((r) => !r.correct)) {
    process.stdout.write('FAIL: a watcher missed, repeated or reordered events\n');
    process.exitCode = 1;
  }
}

void main();
