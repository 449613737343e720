/**
 * The chaos harness: a cluster of real processes behind per-link fault proxies, concurrent
 * register clients (read / write / compare-and-set) recording every operation, and a seeded
 * schedule of faults (partitions, asymmetric cuts, bridges, delays, SIGKILL and restart,
 * SIGSTOP/SIGCONT, killing a majority, restarting everyone, membership changes). At the end it
 * heals everything and checks linearizability and that every member holds the same data.
 *
 *   npm run chaos -- --time 600 --seed 7 [--nodes 5] [--faults partition-leader,kill-random,membership]
 */
import { mkdir, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { leaderOf, MembershipNemesis, type MembershipSteps } from './membership_nemesis.js';
import { seededRandom } from '../raft/harness.js';
import { LocalCluster } from '../server/cluster_harness.js';
import { ProxiedCluster } from './proxied_cluster.js';
import { checkRegisterHistory, type HistoryEntry } from './checker.js';
import { nextRegisterOp, performRegisterOp, registerKeys } from './register.js';
import { appendSet, fencedLock, MemberBoundClient, watchPrefix, type AppendReport, type LockReport, type WatchReport } from './workloads.js';

export interface ChaosOptions {
  nodes: number;
  /** Seconds of workload under faults. */
  time: number;
  seed: number;
  workers: number;
  keys: number;
  /** Where a failed run keeps its history and logs. */
  outDir: string;
  /** The fault kinds the schedule draws from; DEFAULT_FAULTS if absent. */
  faults?: readonly FaultKind[];
  log?: (line: string) => void;
}

export interface FaultWindow {
  kind: string;
  start: number;
  end: number;
}

export interface ChaosReport {
  seed: number;
  ops: number;
  ok: number;
  failed: number;
  unknown: number;
  linearizable: boolean;
  checkerTimedOut: boolean;
  failingKey?: string;
  failingWindow?: HistoryEntry[];
  hashesEqual: boolean;
  append: AppendReport;
  watch: WatchReport;
  lock: LockReport;
  faults: FaultWindow[];
  /** ok / total per fault kind (and "none" for quiet periods). */
  availability: Record<string, { ok: number; total: number }>;
  membership: MembershipSteps;
  keptAt?: string;
}

/**
 * The fault kinds, each injected for a few seconds and then healed (links healed, paused
 * members resumed, killed ones restarted):
 * - partition-leader: the leader's links to everyone cut, both ways;
 * - partition-minority: a random minority cut off from the rest, both ways;
 * - bridge: two sides that do not hear each other, and one member that hears both;
 * - silence-leader: only the leader's outgoing links cut (it hears, nobody hears it);
 * - delay: every link delayed by 30-100 ms;
 * - kill-leader: the leader SIGKILLed;
 * - kill-random: a random member SIGKILLed;
 * - pause-leader: the leader SIGSTOPped (resumed by SIGCONT at heal);
 * - kill-majority: a majority SIGKILLed;
 * - restart-all: every member stopped with SIGTERM (restarted at heal);
 * - membership: one step of MembershipNemesis's cycle (add a learner, promote it, remove a
 *   member, between 3 and 5 voters); not healed: the membership stays as it was changed.
 * Link faults act on every member's links, those added at runtime too (ProxiedCluster.addJoiner).
 */
const FAULTS = [
  'partition-leader',
  'partition-minority',
  'bridge',
  'silence-leader',
  'delay',
  'kill-leader',
  'kill-random',
  'pause-leader',
  'kill-majority',
  'restart-all',
  'membership',
] as const;
export type FaultKind = (typeof FAULTS)[number];
/** Every kind but membership: the schedule of runs that do not ask for --faults. */
const DEFAULT_FAULTS: readonly FaultKind[] = FAULTS.filter((k) => k !== 'membership');

/** `--faults a,b,c`, each a known kind. */
function parseFaults(list: string): FaultKind[] {
  return list.split(',').map((k) => {
    const kind = FAULTS.find((f) => f === k.trim());
    if (!kind) throw new Error(`unknown fault kind ${k} (known: ${FAULTS.join(', ')})`);
    return kind;
  });
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const rand = seededRandom(opts.seed);
  const pc = await ProxiedCluster.create({ nodes: opts.nodes, tickMs: 50, electionTicks: 10 });
  const cluster = pc.cluster;
  cluster.startAll();
  await cluster.waitForLeader();
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const history: HistoryEntry[] = [];
  const faults: FaultWindow[] = [];
  const paused = new Set<string>();
  let stopping = false;
  let nextId = 0;

  // ---- clients --------------------------------------------------------------------------
  // Keys are retired after OPS_PER_KEY operations each and replaced by fresh ones (Jepsen's
  // "independent" keys): every per-key history stays small enough to check exhaustively, while
  // the workload never stops contending on a few keys at a time.
  let invoked = 0;
  const worker = async (w: number): Promise<void> => {
    const bound = new MemberBoundClient(cluster, w);
    const wrand = seededRandom(opts.seed * 1000 + w);
    let seq = 0;
    const seen = new Map<string, string | null>();
    while (!stopping) {
      const names = registerKeys(invoked, opts.keys);
      const key = names[wrand(names.length)]!;
      invoked++;
      const op = nextRegisterOp(wrand(10), w, ++seq, key, seen);
      const entry: HistoryEntry = { id: nextId++, client: w, op, invoke: now(), status: 'unknown' };
      history.push(entry);
      await performRegisterOp(bound.client, entry, seen, now);
    }
  };
  const workers = Array.from({ length: opts.workers }, (_, w) => worker(w));
  const appender = appendSet(cluster, opts.seed, 3, 3);
  const watcher = watchPrefix(cluster, 'r/', 4);
  const locker = fencedLock(cluster, 3);
  const kinds = opts.faults ?? DEFAULT_FAULTS;
  const membership = new MembershipNemesis(
    cluster,
    rand,
    log,
    (n) => !cluster.procs.has(n) || paused.has(n),
    (n) => pc.addJoiner(n),
  );

  // ---- faults ---------------------------------------------------------------------------
  // Only the current members: a removed one is never restarted (it would be refused anyway).
  const heal = async (): Promise<void> => {
    pc.heal();
    for (const n of paused) cluster.resume(n);
    paused.clear();
    for (const n of cluster.names) if (!cluster.procs.has(n)) cluster.start(n);
  };
  const inject = async (kind: FaultKind): Promise<void> => {
    const leader = await leaderOf(cluster);
    const names = cluster.names;
    const pick = (): string => names[rand(names.length)]!;
    const minority = (): string[] => {
      const shuffled = [...names].sort(() => rand(3) - 1);
      return shuffled.slice(0, Math.floor((names.length - 1) / 2) || 1);
    };
    switch (kind) {
      case 'partition-leader':
        if (leader) pc.split([leader]);
        break;
      case 'partition-minority':
        pc.split(minority());
        break;
      case 'bridge': {
        const b = pick();
        const rest = names.filter((n) => n !== b);
        pc.bridge(rest.slice(0, Math.floor(rest.length / 2)), b);
        break;
      }
      case 'silence-leader':
        if (leader) pc.silence(leader);
        break;
      case 'delay':
        pc.delayAll(30 + rand(70));
        break;
      case 'kill-leader':
        if (leader) await cluster.kill(leader, 'SIGKILL');
        break;
      case 'kill-random':
        await cluster.kill(pick(), 'SIGKILL');
        break;
      case 'pause-leader':
        if (leader) {
          cluster.pause(leader);
          paused.add(leader);
        }
        break;
      case 'kill-majority':
        for (const n of [...names].sort(() => rand(3) - 1).slice(0, Math.floor(names.length / 2) + 1)) await cluster.kill(n, 'SIGKILL');
        break;
      case 'restart-all':
        for (const n of names) await cluster.kill(n, 'SIGTERM');
        break;
      case 'membership':
        await membership.step();
        break;
    }
  };
  const end = opts.time * 1000;
  while (now() < end) {
    await new Promise((r) => setTimeout(r, 1000 + rand(1500)));
    if (now() >= end) break;
    const kind = kinds[rand(kinds.length)]!;
    const window: FaultWindow = { kind, start: now(), end: 0 };
    log(`t=${(window.start / 1000).toFixed(1)}s fault: ${kind}`);
    await inject(kind);
    await new Promise((r) => setTimeout(r, 1500 + rand(2500)));
    await heal();
    window.end = now();
    faults.push(window);
  }

  // ---- quiesce and check --------------------------------------------------------------------
  await heal();
  await membership.settle();
  await cluster.waitForLeader(cluster.names, 30_000);
  stopping = true;
  await Promise.all(workers);
  await appender.stop();
  await locker.stop();
  // Final reads on a healthy cluster are part of the history: they pin down what was kept.
  const finalClient = cluster.client();
  const keyNames = registerKeys(invoked, opts.keys);
  for (const key of keyNames) {
    const entry: HistoryEntry = { id: nextId++, client: opts.workers, op: { kind: 'read', key }, invoke: now(), status: 'unknown' };
    const r = await finalClient.get(key);
    (entry.op as { value?: string | null }).value = r.kvs[0]?.value.toString() ?? null;
    entry.status = 'ok';
    entry.complete = now();
    history.push(entry);
  }
  const finalRev = (await finalClient.get(keyNames[0]!)).header.revision;
  await LocalCluster.until(
    async () => {
      const st = await Promise.all(cluster.names.map((n) => cluster.status(n)));
      return st.every((s) => s && s.revision >= finalRev);
    },
    'members to converge',
    60_000,
  );
  const hashes = await Promise.all(cluster.names.map((n) => finalClient.hashKV(cluster.url(n), finalRev)));
  const hashesEqual = new Set(hashes.map((h) => h.hash)).size === 1;
  await watcher.stop();
  const append = await appender.check();
  const watch = await watcher.check();
  const lock = await locker.check();

  const result = checkRegisterHistory(history, { timeoutMs: 30_000 });
  const availability: Record<string, { ok: number; total: number }> = {};
  for (const e of history) {
    const f = faults.find((w) => e.invoke >= w.start && e.invoke <= w.end);
    const kind = f ? f.kind : 'none';
    const a = (availability[kind] ??= { ok: 0, total: 0 });
    a.total++;
    if (e.status === 'ok') a.ok++;
  }
  const report: ChaosReport = {
    seed: opts.seed,
    ops: history.length,
    ok: history.filter((e) => e.status === 'ok').length,
    failed: history.filter((e) => e.status === 'fail').length,
    unknown: history.filter((e) => e.status === 'unknown').length,
    linearizable: result.linearizable,
    checkerTimedOut: !!result.timedOut,
    ...(result.failingKey ? { failingKey: result.failingKey } : {}),
    ...(result.window ? { failingWindow: result.window } : {}),
    hashesEqual,
    append,
    watch,
    lock,
    faults,
    availability,
    membership: membership.steps,
  };
  if (!chaosPassed(report)) {
    const dir = path.resolve(opts.outDir, `chaos-seed${opts.seed}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'history.json'), JSON.stringify(history, null, 1));
    await writeFile(path.join(dir, 'report.json'), JSON.stringify(report, null, 2));
    for (const n of [...cluster.names, ...membership.removedNames]) await copyFile(cluster.logPath(n), path.join(dir, `${n}.log`)).catch(() => {});
    report.keptAt = dir;
  }
  await pc.destroy();
  return report;
}

/** Every check of a run: linearizable, equal replicas, nothing lost, watch histories exact. */
export function chaosPassed(r: ChaosReport): boolean {
  return (
    r.linearizable &&
    !r.checkerTimedOut &&
    r.hashesEqual &&
    r.append.lost === 0 &&
    r.append.duplicated === 0 &&
    r.append.phantom === 0 &&
    r.watch.mismatched === 0 &&
    r.lock.violations === 0
  );
}

export function formatReport(r: ChaosReport): string {
  const lines = [
    `seed ${r.seed}: ${r.ops} ops (${r.ok} ok, ${r.failed} failed, ${r.unknown} unknown)`,
    `linearizable: ${r.checkerTimedOut ? 'unknown (checker timed out)' : r.linearizable ? 'yes' : `NO (key ${r.failingKey})`}`,
    `replica hashes equal: ${r.hashesEqual ? 'yes' : 'NO'}`,
    `append-set: ${r.append.acknowledged} acknowledged of ${r.append.attempted} attempted; lost ${r.append.lost}, duplicated ${r.append.duplicated}, phantom ${r.append.phantom}`,
    `lock: ${r.lock.accepted} fenced writes accepted, ${r.lock.fenced} stale holders fenced off, fencing violations ${r.lock.violations}`,
    `watch: ${r.watch.watchers} watchers, ${r.watch.events} events; histories differing from the store: ${r.watch.mismatched}${r.watch.detail ? ` (${r.watch.detail})` : ''}`,
    `membership: ${r.membership.added} learners added, ${r.membership.promoted} promoted, ${r.membership.removed} members removed (${r.membership.removedLeader} of them the leader), ${r.membership.skipped} steps skipped`,
    'availability (ok / ops invoked) by fault:',
    ...Object.entries(r.availability).map(([k, a]) => `  ${k.padEnd(20)} ${a.ok}/${a.total} (${((100 * a.ok) / Math.max(1, a.total)).toFixed(0)}%)`),
  ];
  if (r.failingWindow) lines.push('smallest failing window:', ...r.failingWindow.map((e) => `  ${JSON.stringify(e)}`));
  if (r.keptAt) lines.push(`history and logs kept in ${r.keptAt}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
  };
  const report = await runChaos({
    nodes: Number(arg('nodes', '3')),
    time: Number(arg('time', '60')),
    seed: Number(arg('seed', String(Date.now() % 100000))),
    workers: Number(arg('workers', '6')),
    keys: Number(arg('keys', '4')),
    outDir: arg('out', '.qkv-tmp'),
    faults: parseFaults(arg('faults', DEFAULT_FAULTS.join(','))),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  process.exitCode = chaosPassed(report) ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) void main();
