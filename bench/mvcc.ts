/**
 * MVCC store benchmark: applied puts/s (in batches, as Raft's apply loop feeds them), point
 * gets/s, 1,000-key prefix range latency, and memory.
 *
 *   npx tsx bench/mvcc.ts [--keys 1000000] [--value 256] [--batch 500] [--gets 200000]
 *                         [--ranges 300] [--order random|seq] [--dir PATH] [--keep]
 *                         [--cache MiB] [--wbuf MiB] [--filesize MiB] [--nocompress] [--stats]
 *                         [--filter-keys N] [--rest SECONDS] [--rounds N] [--waits]
 *
 * With --dir pointing at a store this benchmark loaded before, the load is skipped.
 *
 * The settled point gets start once LevelDB's background threads have been idle for 2 s (at most
 * --rest seconds, 300 by default, after the reopen): a reopened LevelDB goes on with the
 * compactions its levels still need, on a thread that shares the 2 cores with the gets. Then
 * rounds of gets run until three in a row cause (almost) no compaction, at most --rounds (12):
 * random reads make LevelDB push the tables they look past down a level, and the figure of
 * interest is the one once that settled (the median of those three; each round is printed, with
 * where its wall time beyond CPU went under --waits).
 *
 * Keys are `key/000000000`..., so `key/NNNNNN` prefixes hold 1,000 keys each. Values are random
 * bytes (incompressible). Puts are applied in a shuffled key order unless --order seq.
 *
 * --filter-keys sets the live-key filter's minimum capacity (0: no filter, every insert looks its
 * key up in LevelDB). The load also reports how busy the event loop was (the rest is waiting for
 * LevelDB's writes) and the process CPU time, which vary less than puts/s on a shared machine.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { MvccStore, type MvccStoreOptions } from '../src/mvcc/index.js';
import { curKey } from '../src/mvcc/keys.js';
import type { ApplyEntry } from '../src/mvcc/types.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

const KEYS = Number(arg('keys', '1000000'));
const VALUE = Number(arg('value', '256'));
const BATCH = Number(arg('batch', '500'));
const GETS = Number(arg('gets', '200000'));
const RANGES = Number(arg('ranges', '300'));
const ORDER = arg('order', 'random');

const keyOf = (i: number): Buffer => Buffer.from(`key/${String(i).padStart(9, '0')}`);
const mb = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** A permutation of 0..n-1 that needs no array: i -> i * P mod n, P prime not dividing n. */
function shuffled(i: number, n: number): number {
  const P = 2_654_435_761;
  if (ORDER === 'seq') return i;
  // Exact in doubles while i * P < 2^53 (up to ~3.4M keys); BigInt beyond, which costs a few
  // allocations per key that would be counted as the store's.
  return i * P <= Number.MAX_SAFE_INTEGER ? (i * P) % n : Number((BigInt(i) * BigInt(P)) % BigInt(n));
}

/** A cheap deterministic PRNG for picking keys to read. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * RSS split as Linux reports it: anonymous memory (heap, LevelDB caches and memtables) versus
 * file-backed pages (LevelDB reads its table files through mmap; the kernel can drop those).
 */
function rssParts(): string {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (f: string): number => Number(/\s(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(f)) ?? '')?.[1] ?? NaN);
    return `anon ${mb(kb('RssAnon:') * 1024)}, file-backed ${mb(kb('RssFile:') * 1024)}`;
  } catch {
    return 'no /proc breakdown';
  }
}

/**
 * CPU seconds of the main (JS) thread, from Linux's per-thread stats (undefined elsewhere): on a
 * shared machine, work per CPU-second of the thread that applies is steadier than work per
 * wall-clock second. LevelDB's compaction threads are not counted.
 */
function mainThreadCpu(): number | undefined {
  // schedstat: nanoseconds on a CPU, nanoseconds runnable but waiting for one, timeslices. More
  // precise than stat's utime + stime, which the scheduler samples in 10 ms ticks.
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return undefined;
  }
}

/**
 * Where wall time goes besides the main thread's CPU: the machine's steal time (a VM's vCPU
 * waiting for the host: the main thread is ready to run but does not), the main thread's page
 * faults that waited for the disk, and the times it was switched out involuntarily.
 */
interface WaitCounters {
  /** Seconds the main thread was runnable but waited for a CPU. */
  runQueueSeconds: number;
  stealTicks: number;
  allTicks: number;
  majorFaults: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** A thread's /proc stat fields after its name: [0] is the state, [9] majflt, [11] utime, [12] stime. */
function taskStat(tid: number | string): string[] {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function waitCounters(): WaitCounters | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const f = taskStat(process.pid);
    const status = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8');
    const involuntary = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const voluntary = Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const sched = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return {
      runQueueSeconds: Number(sched[1]) / 1e9,
      stealTicks: cpu[7]!,
      allTicks: cpu.reduce((a, b) => a + b, 0),
      majorFaults: Number(f[9]),
      voluntarySwitches: voluntary,
      involuntarySwitches: involuntary,
    };
  } catch {
    return undefined;
  }
}

/** CPU seconds of every thread of this process but the main one (LevelDB's compaction thread, libuv's pool, V8's helpers). */
function otherThreadsCpu(): number | undefined {
  try {
    let ticks = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      if (tid === String(process.pid)) continue;
      try {
        const f = taskStat(tid);
        ticks += Number(f[11]) + Number(f[12]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return ticks / 100;
  } catch {
    return undefined;
  }
}

/**
 * Waits until the process's other threads have been (nearly) idle for two seconds in a row: a
 * reopened LevelDB resumes the compactions its last session left pending (levels over their
 * size), and those compete with the main thread for the 2 cores and the caches. Gives up after
 * `maxSeconds`; returns the seconds waited and the CPU the other threads used meanwhile.
 */
async function waitForRest(maxSeconds: number): Promise<{ seconds: number; busySeconds: number; rested: boolean } | undefined> {
  const start = otherThreadsCpu();
  if (start === undefined) return undefined;
  const t0 = performance.now();
  let last = start;
  let quiet = 0;
  while ((performance.now() - t0) / 1000 < maxSeconds) {
    await new Promise((r) => setTimeout(r, 500));
    const now = otherThreadsCpu() ?? last;
    // Under 5% of a core over the half second counts as idle (V8's and libuv's housekeeping).
    quiet = now - last <= 0.025 ? quiet + 1 : 0;
    last = now;
    if (quiet >= 4) return { seconds: (performance.now() - t0) / 1000, busySeconds: last - start, rested: true };
  }
  return { seconds: (performance.now() - t0) / 1000, busySeconds: last - start, rested: false };
}

function describeWaits(a: WaitCounters | undefined, b: WaitCounters | undefined): string {
  if (!a || !b) return '';
  const steal = (100 * (b.stealTicks - a.stealTicks)) / Math.max(1, b.allTicks - a.allTicks);
  return `; machine steal ${steal.toFixed(0)}%, main thread: waited ${(b.runQueueSeconds - a.runQueueSeconds).toFixed(2)} s for a CPU, ${b.majorFaults - a.majorFaults} major faults, ${b.voluntarySwitches - a.voluntarySwitches} voluntary and ${b.involuntarySwitches - a.involuntarySwitches} involuntary switches`;
}

/** The store's LevelDB (a private field: the benchmark looks underneath the store). */
function leveldbOf(store: MvccStore): { getProperty(p: string): string; getSync(key: Buffer): Buffer | undefined } {
  return (store as unknown as { db: { getProperty(p: string): string; getSync(key: Buffer): Buffer | undefined } }).db;
}

/** LevelDB's per-level table of files and compaction work (classic-level's getProperty). */
function leveldbStats(store: MvccStore): string {
  return leveldbOf(store).getProperty('leveldb.stats');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  if (ORDER !== 'seq' && KEYS % 2_654_435_761 === 0) throw new Error('pick another key count');
  const dir = flag('dir') ? arg('dir', '') : await mkdtemp(path.join(os.tmpdir(), 'qkv-bench-mvcc-'));
  const MiB = (name: string): number | undefined => (flag(name) ? Number(arg(name, '0')) * 1048576 : undefined);
  const storeOpts: MvccStoreOptions = {
    ...(MiB('cache') !== undefined ? { cacheSize: MiB('cache')! } : {}),
    ...(MiB('wbuf') !== undefined ? { writeBufferSize: MiB('wbuf')! } : {}),
    ...(MiB('filesize') !== undefined ? { maxFileSize: MiB('filesize')! } : {}),
    ...(flag('nocompress') ? { compression: false } : {}),
    ...(flag('filter-keys') ? { liveKeyFilterKeys: Number(arg('filter-keys', '0')) } : {}),
  };
  let store = await MvccStore.open(dir, storeOpts);
  let peakRss = 0;
  const sample = (): void => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  console.log(`qkv mvcc bench: ${fmt(KEYS)} keys, ${VALUE}-byte values, batches of ${BATCH}, ${ORDER} order, node ${process.version}`);
  console.log(`data dir: ${dir}`);

  // ---- applied puts ----
  const pool = randomBytes(1 << 20);
  const valueAt = (i: number): Buffer => {
    const off = (i * 7919) % (pool.length - VALUE);
    return pool.subarray(off, off + VALUE);
  };
  let index = store.appliedIndex;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = performance.now();
  let lastReport = t0;
  // With --dir on an already loaded store, skip the load and only measure reads.
  const loaded = store.revision > 1;
  for (let done = 0; !loaded && done < KEYS; done += BATCH) {
    const n = Math.min(BATCH, KEYS - done);
    const entries: ApplyEntry[] = new Array(n);
    for (let j = 0; j < n; j++) {
      const k = shuffled(done + j, KEYS);
      entries[j] = { index: ++index, request: { put: { key: keyOf(k), value: valueAt(k) } } };
    }
    const results = await store.applyBatch(entries);
    if (results[n - 1]!.status !== 'ok') throw new Error('a put failed');
    if ((done / BATCH) % 50 === 0) sample();
    const now = performance.now();
    if (now - lastReport > 5000) {
      console.log(`  ... ${fmt(done + n)} puts, ${fmt(((done + n) / (now - t0)) * 1000)}/s, rss ${mb(process.memoryUsage().rss)}`);
      lastReport = now;
    }
  }
  const putSecs = (performance.now() - t0) / 1000;
  const busy = performance.eventLoopUtilization(elu0).utilization;
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpu();
  const mainCpu = main0 !== undefined && main1 !== undefined ? main1 - main0 : undefined;
  sample();
  if (!loaded) {
    console.log(`applied puts:   ${fmt(KEYS / putSecs)} puts/s (${putSecs.toFixed(1)} s; revision ${store.revision})`);
    const perCpu = mainCpu !== undefined && mainCpu > 0 ? `, ${fmt(KEYS / mainCpu)} puts per main-thread CPU-second (${mainCpu.toFixed(1)} s)` : '';
    console.log(
      `  load:         event loop busy ${(busy * 100).toFixed(0)}%${perCpu}; process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (all threads)`,
    );
    // LevelDB's compactions during the load (the reopen below starts new counters).
    if (flag('stats')) console.log(leveldbStats(store));
  }

  // ---- point gets: right after the load (LevelDB still compacting), then once it settled ----
  const rand = rng(42);
  interface GetsRound {
    perWallSecond: number;
    /** Gets per main-thread CPU-second; undefined where Linux's per-thread stats are missing. */
    perCpuSecond: number | undefined;
    /** CPU seconds the other threads used during the round. */
    otherCpu: number | undefined;
    /** The same number of LevelDB getSync calls of other random CURRENT keys, per CPU-second. */
    rawPerCpuSecond: number | undefined;
  }
  /** One round of GETS point gets of random existing keys. */
  const gets = async (s: MvccStore): Promise<GetsRound & { waits: string }> => {
    // The keys are made before the clock starts: this measures the store, not key formatting.
    const keys = Array.from({ length: GETS }, () => keyOf(Math.floor(rand() * KEYS)));
    const w1 = waitCounters();
    const o1 = otherThreadsCpu();
    const c1 = mainThreadCpu();
    const t1 = performance.now();
    let found = 0;
    for (const key of keys) {
      const r = await s.range({ key });
      found += r.count;
    }
    const getSecs = (performance.now() - t1) / 1000;
    const c2 = mainThreadCpu();
    const o2 = otherThreadsCpu();
    const w2 = waitCounters();
    if (found !== GETS) throw new Error(`point gets found ${found} of ${GETS}`);
    sample();
    // Gets run on the main thread only, so gets per main-thread CPU-second is what one core would
    // serve, whatever else shares the machine.
    const getCpu = c1 !== undefined && c2 !== undefined && c2 > c1 ? c2 - c1 : undefined;
    // LevelDB compacts a table that reads keep looking past (its seek compactions) on its own
    // thread, which shares the machine's caches and cores with the gets.
    const otherCpu = o1 !== undefined && o2 !== undefined ? o2 - o1 : undefined;
    // The floor under a point get on this machine right now: LevelDB's own lookup of a CURRENT
    // record (and its value copied into a Buffer), with no qkv code around it. Other keys than
    // the gets', so that these do not find their blocks in the CPU caches.
    const db = leveldbOf(s);
    const rawKeys = Array.from({ length: GETS }, () => curKey(keyOf(Math.floor(rand() * KEYS))));
    const c3 = mainThreadCpu();
    let rawFound = 0;
    for (const key of rawKeys) if ((await db.getSync(key)) !== undefined) rawFound++;
    const c4 = mainThreadCpu();
    if (rawFound !== GETS) throw new Error(`LevelDB gets found ${rawFound} of ${GETS}`);
    return {
      rawPerCpuSecond: c3 !== undefined && c4 !== undefined && c4 > c3 ? GETS / (c4 - c3) : undefined,
      perWallSecond: GETS / getSecs,
      perCpuSecond: getCpu !== undefined ? GETS / getCpu : undefined,
      otherCpu,
      waits: getCpu !== undefined ? `wall beyond main-thread CPU: ${(getSecs - getCpu).toFixed(2)} s of ${getSecs.toFixed(2)} s${describeWaits(w1, w2)}` : '',
    };
  };
  const perCpuText = (r: GetsRound): string => (r.perCpuSecond !== undefined ? `${fmt(r.perCpuSecond)} per main-thread CPU-second, ` : '');
  const rawText = (r: GetsRound): string => (r.rawPerCpuSecond !== undefined ? `; LevelDB alone ${fmt(r.rawPerCpuSecond)} per CPU-second` : '');
  const otherText = (r: GetsRound): string =>
    r.otherCpu !== undefined ? `; other threads (LevelDB compactions, GC helpers) ${r.otherCpu.toFixed(2)} CPU-s` : '';
  if (!loaded) {
    const r = await gets(store);
    console.log(`point gets:     ${perCpuText(r)}${fmt(r.perWallSecond)}/s in wall time (${fmt(GETS)} random existing keys, right after the load)`);
    console.log(`  ${r.waits}${otherText(r)}`);
  }
  // Closing waits for the compaction LevelDB is running, but a reopened LevelDB resumes the ones
  // still pending; the gets below wait for those to finish (waitForRest).
  await store.close();
  store = await MvccStore.open(dir, storeOpts);
  // The reopened store rebuilds its live-key filter from CURRENT in the background (what a
  // restarted member does once); wait for it so it does not compete with the measured gets.
  const tf = performance.now();
  await store.liveKeyFilterReady();
  console.log(
    `live-key filter: rebuilt on reopen in ${((performance.now() - tf) / 1000).toFixed(1)} s, ${(store.liveKeyFilterBytes / 1048576).toFixed(2)} MiB`,
  );
  const rest = await waitForRest(Number(arg('rest', '300')));
  if (rest !== undefined) {
    console.log(
      `at rest:        ${rest.rested ? 'LevelDB compactions' : 'NOT at rest, gave up waiting for LevelDB compactions'} after ${rest.seconds.toFixed(1)} s (background threads used ${rest.busySeconds.toFixed(1)} CPU-s meanwhile)`,
    );
  }
  // Random reads make LevelDB compact the tables they keep looking past (seek compactions), until
  // most keys sit in the last level and a get looks at one table. Rounds go on until SETTLED_ROUNDS
  // rounds in a row caused (almost) no compaction: other threads under 1.5 CPU-microseconds per
  // get (V8 frees the gets' value buffers on a helper thread, which alone takes about 1). The
  // figure is the median of those rounds: this machine's speed moves by 10-20% from one second to
  // the next.
  const SETTLED_ROUNDS = 3;
  const maxRounds = Math.max(SETTLED_ROUNDS, Number(arg('rounds', '12')));
  const quiet: GetsRound[] = [];
  for (let round = 1; round <= maxRounds && quiet.length < SETTLED_ROUNDS; round++) {
    const r = await gets(store);
    const settled = r.otherCpu === undefined || (r.otherCpu * 1e6) / GETS < 1.5;
    if (settled) quiet.push(r);
    else quiet.length = 0;
    console.log(
      `  round ${String(round).padStart(2)}:      ${perCpuText(r)}${fmt(r.perWallSecond)}/s in wall time${rawText(r)}${otherText(r)}${settled ? '' : ' (compacting)'}`,
    );
    if (flag('waits')) console.log(`    ${r.waits}`);
  }
  const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  if (quiet.length < SETTLED_ROUNDS) {
    console.log(`point gets:     LevelDB still compacting after ${maxRounds} rounds of ${fmt(GETS)} gets; no settled figure`);
  } else {
    const cpus = quiet.map((r) => r.perCpuSecond).filter((x): x is number => x !== undefined);
    const perCpu = cpus.length === quiet.length ? `${fmt(median(cpus))} per main-thread CPU-second, ` : '';
    console.log(
      `point gets:     ${perCpu}${fmt(median(quiet.map((r) => r.perWallSecond)))}/s in wall time (settled: median of the last ${SETTLED_ROUNDS} rounds above, ${fmt(GETS)} random existing keys each)`,
    );
    const raws = quiet.map((r) => r.rawPerCpuSecond).filter((x): x is number => x !== undefined);
    if (raws.length === quiet.length && cpus.length === quiet.length) {
      // Each round times the two one after the other, on different keys: on a shared machine
      // either may come out ahead in a round, so this is the size of the floor, not a difference.
      console.log(
        `  LevelDB alone: ${fmt(median(raws))} getSync per CPU-second (median; ${(1e6 / median(raws)).toFixed(2)} µs each, a point get ${(1e6 / median(cpus)).toFixed(2)} µs)`,
      );
    }
  }

  // ---- 1,000-key prefix ranges ----
  const prefixes = Math.max(1, Math.floor(KEYS / 1000));
  const lat: number[] = [];
  for (let i = 0; i < RANGES; i++) {
    const p = Math.floor(rand() * prefixes);
    const prefix = Buffer.from(`key/${String(p).padStart(6, '0')}`);
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const s = performance.now();
    const r = await store.range({ key: prefix, rangeEnd: end });
    lat.push(performance.now() - s);
    if (r.kvs.length !== Math.min(1000, KEYS)) throw new Error(`prefix range returned ${r.kvs.length} keys`);
  }
  lat.sort((a, b) => a - b);
  sample();
  console.log(`prefix ranges:  p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms (1,000 keys each, ${RANGES} ranges)`);

  const mem = process.memoryUsage();
  console.log(
    `memory:         rss ${mb(mem.rss)} (peak ${mb(peakRss)}; ${rssParts()}), JS heap used ${mb(mem.heapUsed)}, live-key filter ${(store.liveKeyFilterBytes / 1048576).toFixed(2)} MiB`,
  );
  console.log(`on disk:        ~${mb(await store.approximateSize())}`);
  if (flag('stats')) console.log(leveldbStats(store));
  await store.close();
  if (!flag('keep') && !flag('dir')) await rm(dir, { recursive: true, force: true });
}

await main();
