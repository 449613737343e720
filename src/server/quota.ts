/**
 * The backend space quota (etcd's --quota-backend-bytes; etcdserver/quota.go and
 * api/v3rpc/quota.go). The member that receives a put, a txn or a lease grant checks, before
 * proposing it, that its own store plus the request's estimated cost stays below the quota; if
 * not, it raises NOSPACE for itself through Raft (the replicated alarm, src/mvcc/alarm.ts, then
 * refuses such writes on every member) and answers "etcdserver: mvcc: database space exceeded".
 *
 * "The store's size" is the bytes of the member's LevelDB directory (what `du` counts, and what
 * Status reports as dbSize), as etcd's is the size of its bbolt file: it is what the operator's
 * disk actually holds, write-ahead log and not yet compacted tables included, and it only falls
 * when the space is really given back (LevelDB's compactions, a defragment).
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { PutRequest, RequestOp, TxnRequest } from '../api/kv.js';

/** etcd's estimate of a key's metadata in the store (kvOverhead). */
const KV_OVERHEAD = 256;
/** etcd's estimate of a lease in the store (leaseOverhead). */
const LEASE_OVERHEAD = 64;
/** Above this etcd warns at start (MaxQuotaBytes): a larger store degrades. */
export const MAX_RECOMMENDED_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;
/**
 * How old a measured size may be when a write is checked against it: measuring is a readdir and
 * a stat per file, too much for every write; etcd's bbolt knows its size for free.
 */
const MEASURE_EVERY_MS = 100;

/** The writes the quota checks, as etcd's backendQuota.Cost takes them. */
export type QuotaRequest = { put: PutRequest } | { txn: TxnRequest } | { leaseGrant: Record<string, never> };

const putCost = (r: PutRequest): number => KV_OVERHEAD + r.key.length + (r.value?.length ?? 0);

const branchCost = (ops: readonly RequestOp[] | undefined): number =>
  (ops ?? []).reduce((sum, op) => sum + ('requestPut' in op ? putCost(op.requestPut) : 0), 0);

/**
 * etcd's cost of a request against the quota: a put its key, value and metadata; a txn the
 * top-level puts of its costlier branch (only one branch runs); a lease grant a lease's record.
 */
export function quotaCost(req: QuotaRequest): number {
  if ('put' in req) return putCost(req.put);
  if ('txn' in req) return Math.max(branchCost(req.txn.success), branchCost(req.txn.failure));
  return LEASE_OVERHEAD;
}

/** A LevelDB directory's bytes: all its files, and those of its write-ahead logs (`*.log`). */
export interface StoreFileBytes {
  total: number;
  writeAheadLog: number;
}

/**
 * The bytes of the files in a store's LevelDB directory, as `du` would count them. Read with the
 * synchronous calls: a readdir and a stat per file of a directory of a few dozen files (its
 * metadata in the kernel's cache) take about 0.1 ms of CPU, where the promise versions (a thread
 * pool round trip each) took ten times that, every MEASURE_EVERY_MS while writes come in.
 */
export async function storeFileBytes(dir: string): Promise<StoreFileBytes> {
  const out: StoreFileBytes = { total: 0, writeAheadLog: 0 };
  for (const name of readdirSync(dir)) {
    // undefined: a compaction removed it meanwhile.
    const size = statSync(path.join(dir, name), { throwIfNoEntry: false })?.size;
    if (size === undefined) continue;
    out.total += size;
    // LevelDB's write-ahead log is NNNNNN.log; its info log is LOG (and LOG.old).
    if (name.endsWith('.log')) out.writeAheadLog += size;
  }
  return out;
}

export interface BackendQuotaOptions {
  /** Resolved quotaBackendBytes (config.ts): positive, or negative for no quota. */
  quotaBytes: number;
  /** The store's size now, in bytes. */
  measure: () => Promise<number>;
  /** The clock (ms), for tests. */
  now?: () => number;
}

/** etcd's backendQuota: does a write of some cost still fit? */
export class BackendQuota {
  private size = 0;
  private measuredAt = Number.NEGATIVE_INFINITY;
  private measuring: Promise<number> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: BackendQuotaOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** A negative quota turns it off, as etcd's passthroughQuota. */
  get enabled(): boolean {
    return this.opts.quotaBytes > 0;
  }

  get quotaBytes(): number {
    return this.opts.quotaBytes;
  }

  /**
   * Whether a write costing `cost` fits: the store's size (measured at most MEASURE_EVERY_MS
   * ago) plus the cost stays below the quota, as etcd's Available. A write that costs nothing
   * (a txn of deletes and reads) always fits, as in etcd 3.4.23: space is freed that way.
   * Answered at once unless the size must be measured again: every write asks, and a promise
   * (an async function's) for each was a share of a put's allocations.
   */
  fits(cost: number): boolean | Promise<boolean> {
    if (!this.enabled || cost === 0) return true;
    if (this.now() - this.measuredAt < MEASURE_EVERY_MS) return this.size + cost < this.opts.quotaBytes;
    return this.measure().then((size) => size + cost < this.opts.quotaBytes);
  }

  /** Measures the size again, from after the call (a defragment just gave space back). */
  async remeasure(): Promise<number> {
    await this.measuring;
    return this.measure();
  }

  /** The measurement under way, or a new one: one at a time; a failed one keeps the last size. */
  private measure(): Promise<number> {
    if (this.measuring) return this.measuring;
    const run = (async () => {
      try {
        this.size = await this.opts.measure();
        this.measuredAt = this.now();
      } catch {
        // The directory is briefly missing while a restored store is swapped in.
      }
      return this.size;
    })();
    this.measuring = run;
    void run.finally(() => {
      if (this.measuring === run) this.measuring = undefined;
    });
    return run;
  }
}
