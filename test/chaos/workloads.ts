/**
 * Chaos workloads beside the register one (run.ts):
 * - append-set: each write appends a unique element to a key's list with an optimistic txn;
 *   every acknowledged element must be in the final lists, none twice, none never attempted;
 * - watch: watchers on a prefix from various revisions, re-established on another member when
 *   their stream breaks (from the revision after the last one seen), must each see exactly the
 *   store's history of that prefix: in order, no gap, no duplicate.
 */
import { Client } from '../../src/client/client.js';
import { Mutex, Session } from '../../src/client/concurrency.js';
import type { LocalCluster } from '../server/cluster_harness.js';
import { seededRandom } from '../raft/harness.js';

export interface AppendReport {
  attempted: number;
  acknowledged: number;
  /** Acknowledged elements missing from the final lists (must be 0). */
  lost: number;
  /** Elements present twice (must be 0). */
  duplicated: number;
  /** Elements present that no client ever tried to add (must be 0). */
  phantom: number;
}

export interface WatchReport {
  watchers: number;
  events: number;
  /** Watchers whose sequence differs from the store's history (must be 0). */
  mismatched: number;
  detail?: string;
}

export interface Workload<R> {
  stop(): Promise<void>;
  /** Runs the checks once the cluster is healed and quiet. */
  check(): Promise<R>;
}

/**
 * A client of one member, chosen by worker number; re-bound to a current member once the
 * cluster removed it (a removed member is gone for good).
 */
export class MemberBoundClient {
  private member: string;
  private bound: Client;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly worker: number,
  ) {
    this.member = this.pick();
    this.bound = this.connect();
  }

  private pick(): string {
    return this.cluster.names[this.worker % this.cluster.names.length]!;
  }

  private connect(): Client {
    return new Client({ endpoints: [this.cluster.url(this.member)], timeoutMs: 1500 });
  }

  get client(): Client {
    if (!this.cluster.names.includes(this.member)) {
      this.member = this.pick();
      this.bound = this.connect();
    }
    return this.bound;
  }
}

export function appendSet(cluster: LocalCluster, seed: number, workers: number, keys: number): Workload<AppendReport> {
  const attempted = new Set<string>();
  const acknowledged = new Set<string>();
  let stopping = false;
  const keyName = (i: number): string => `append/k${i}`;
  const run = async (w: number): Promise<void> => {
    const bound = new MemberBoundClient(cluster, w);
    const rand = seededRandom(seed * 7 + w);
    let seq = 0;
    while (!stopping) {
      const client = bound.client;
      const key = keyName(rand(keys));
      const elem = `${w}.${++seq}`;
      attempted.add(elem);
      // Retry the optimistic append a few times; an error leaves its outcome unknown.
      for (let attempt = 0; attempt < 5 && !stopping; attempt++) {
        try {
          const got = await client.get(key);
          const kv = got.kvs[0];
          const next = kv ? `${kv.value.toString()},${elem}` : elem;
          const r = await client.txn({
            compare: [{ key: Buffer.from(key), target: 'MOD', result: 'EQUAL', modRevision: kv?.modRevision ?? 0 }],
            success: [{ requestPut: { key: Buffer.from(key), value: Buffer.from(next) } }],
          });
          if (r.succeeded) {
            acknowledged.add(elem);
            break;
          }
        } catch {
          await new Promise((r) => setTimeout(r, 200));
          break;
        }
      }
    }
  };
  const running = Array.from({ length: workers }, (_, w) => run(w));
  return {
    stop: async () => {
      stopping = true;
      await Promise.all(running);
    },
    check: async () => {
      const client = cluster.client();
      const present = new Map<string, number>();
      for (let i = 0; i < keys; i++) {
        const v = (await client.get(keyName(i))).kvs[0]?.value.toString();
        for (const e of v ? v.split(',') : []) present.set(e, (present.get(e) ?? 0) + 1);
      }
      return {
        attempted: attempted.size,
        acknowledged: acknowledged.size,
        lost: [...acknowledged].filter((e) => !present.has(e)).length,
        duplicated: [...present.values()].filter((n) => n > 1).length,
        phantom: [...present.keys()].filter((e) => !attempted.has(e)).length,
      };
    },
  };
}

interface SeenEvent {
  rev: number;
  type: string;
  key: string;
  value: string;
}

export function watchPrefix(cluster: LocalCluster, prefix: string, watchers: number): Workload<WatchReport> {
  let stopping = false;
  const seen: SeenEvent[][] = Array.from({ length: watchers }, () => []);
  const starts: number[] = [];
  const streams = new Set<{ cancel(): void }>();
  const run = async (w: number): Promise<void> => {
    // Half start from the beginning of history, half from "now".
    let next = w % 2 === 0 ? 1 : 0;
    starts[w] = next;
    let member = w;
    while (!stopping) {
      const client = new Client({ endpoints: [cluster.url(cluster.names[member % cluster.names.length]!)], timeoutMs: 2000 });
      const stream = client.watch(prefix, { prefix: true, ...(next > 0 ? { startRevision: next } : {}) });
      streams.add(stream);
      try {
        for await (const resp of stream) {
          if (resp.created && next === 0) {
            next = resp.header.revision + 1;
            starts[w] = next;
          }
          if (resp.canceled) break;
          for (const e of resp.events) {
            seen[w]!.push({ rev: e.kv.modRevision, type: e.type, key: e.kv.key.toString(), value: e.kv.value.toString() });
            next = e.kv.modRevision + 1;
          }
          if (stopping) break;
        }
      } catch {
        // The member went away: resume on the next one from where we were.
      } finally {
        streams.delete(stream);
        stream.cancel();
      }
      member++;
      if (!stopping) await new Promise((r) => setTimeout(r, 100));
    }
  };
  const running = Array.from({ length: watchers }, (_, w) => run(w));
  return {
    stop: async () => {
      // Give live streams a moment to deliver the last revisions before stopping them.
      await new Promise((r) => setTimeout(r, 1000));
      stopping = true;
      for (const s of streams) s.cancel();
      await Promise.all(running);
    },
    check: async () => {
      // The reference: the whole history of the prefix, replayed from revision 1.
      const client = cluster.client();
      // The prefix's last change: its keys are only ever put, never deleted, in these workloads.
      const current = await client.get(prefix, { prefix: true, keysOnly: true });
      const finalRev = Math.max(0, ...current.kvs.map((kv) => kv.modRevision));
      const ref: SeenEvent[] = [];
      const stream = client.watch(prefix, { prefix: true, startRevision: 1 });
      const timer = setTimeout(() => stream.cancel(), 30_000);
      for await (const resp of stream) {
        if (finalRev === 0) break;
        for (const e of resp.events) ref.push({ rev: e.kv.modRevision, type: e.type, key: e.kv.key.toString(), value: e.kv.value.toString() });
        if (ref.length > 0 && ref[ref.length - 1]!.rev >= finalRev) break;
      }
      clearTimeout(timer);
      stream.cancel();
      let mismatched = 0;
      let detail: string | undefined;
      seen.forEach((events, w) => {
        const from = starts[w] ?? 1;
        const upTo = events.length ? events[events.length - 1]!.rev : from - 1;
        const want = ref.filter((e) => e.rev >= from && e.rev <= upTo);
        const same = want.length === events.length && want.every((e, i) => JSON.stringify(e) === JSON.stringify(events[i]));
        if (!same) {
          mismatched++;
          detail ??= `watcher ${w} from ${from}: got ${events.length} events, history has ${want.length} in [${from}, ${upTo}]`;
        }
      });
      return { watchers, events: seen.reduce((n, s) => n + s.length, 0), mismatched, ...(detail ? { detail } : {}) };
    },
  };
}

export interface LockReport {
  /** Fenced writes the store accepted. */
  accepted: number;
  /** Fenced writes refused because a newer holder had written (a stale holder, stopped by its token). */
  fenced: number;
  /** Accepted writes carrying a token lower than one accepted before them (must be 0). */
  violations: number;
}

/** Tokens as fixed-width text, so etcd's bytewise value compare orders them numerically. */
const token = (n: number): string => String(n).padStart(15, '0');

/**
 * Lease-backed locks (Mutex) whose holders write a protected key only through a txn that checks
 * their fencing token (the lock's create revision) is newer than the last one written. A lease
 * can expire while its holder is paused — etcd's known limit — so two clients may believe they
 * hold the lock; the token must still keep a stale holder's write out.
 */
export function fencedLock(cluster: LocalCluster, workers: number): Workload<LockReport> {
  let stopping = false;
  let accepted = 0;
  let fenced = 0;
  const run = async (w: number): Promise<void> => {
    while (!stopping) {
      // The current members' endpoints each round: the membership may have changed.
      const client = new Client({ endpoints: cluster.endpoints.slice(w % cluster.endpoints.length).concat(cluster.endpoints), timeoutMs: 1500 });
      let session: Session | undefined;
      try {
        session = await Session.create(client, { ttl: 2 });
        const mutex = new Mutex(session, 'locks/L');
        const abort = AbortSignal.timeout(5000);
        await mutex.lock(abort);
        const r = await client.txn({
          compare: [{ key: Buffer.from('locked/token'), target: 'VALUE', result: 'LESS', value: Buffer.from(token(mutex.revision)) }],
          success: [
            { requestPut: { key: Buffer.from('locked/token'), value: Buffer.from(token(mutex.revision)) } },
            { requestPut: { key: Buffer.from('locked/resource'), value: Buffer.from(`${token(mutex.revision)}:w${w}`) } },
          ],
        });
        if (r.succeeded) accepted++;
        else fenced++;
        await mutex.unlock();
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      } finally {
        await session?.close().catch(() => {});
      }
    }
  };
  let running: Promise<void>[] = [];
  const started = (async () => {
    await cluster.client().put('locked/token', token(0));
    running = Array.from({ length: workers }, (_, w) => run(w));
  })();
  return {
    stop: async () => {
      stopping = true;
      await started;
      await Promise.all(running);
    },
    check: async () => {
      // Replay every accepted write of the protected key, in revision order.
      const client = cluster.client();
      const last = (await client.get('locked/resource')).kvs[0]?.modRevision ?? 0;
      const tokens: string[] = [];
      if (last > 0) {
        const stream = client.watch('locked/resource', { startRevision: 1 });
        const timer = setTimeout(() => stream.cancel(), 30_000);
        for await (const resp of stream) {
          for (const e of resp.events) if (e.type === 'PUT') tokens.push(e.kv.value.toString().split(':')[0]!);
          if (resp.events.some((e) => e.kv.modRevision >= last)) break;
        }
        clearTimeout(timer);
        stream.cancel();
      }
      let violations = 0;
      let max = '';
      for (const t of tokens) {
        if (t < max) violations++;
        if (t > max) max = t;
      }
      return { accepted, fenced, violations };
    },
  };
}
