/**
 * Recipes on top of the client, after etcd's clientv3/concurrency: optimistic concurrency
 * (read, compute, write if unchanged), a lease-backed Session, a Mutex and leader Election.
 *
 * Mutex and Election order contenders by the create revision of their key under a prefix: the
 * lowest holds the lock; everyone else waits for the deletion of the key just before its own
 * (no thundering herd). The holder's create revision is a fencing token: it only grows.
 */
import { Buffer } from 'node:buffer';
import { type Client, compare, op, toBuffer, type Bytes } from './client.js';
import { prefixEnd } from '../api/keys.js';
import type { KeyValue, TxnResponse } from '../api/kv.js';
import { EtcdMessage } from '../errors.js';

/** A lock or election name as the key prefix of its contenders: with a trailing '/'. */
function dirPrefix(name: Bytes): Buffer {
  const p = toBuffer(name);
  return p[p.length - 1] === 0x2f ? p : Buffer.concat([p, Buffer.from('/')]);
}

/** Lease ids print as hex, as etcdctl does. */
export function leaseHex(id: number): string {
  return id.toString(16);
}

export interface StmOptions {
  /** Attempts before giving up. */
  maxRetries?: number;
}

export class ConflictError extends Error {
  readonly code = 'ERR_CONFLICT';
  constructor(attempts: number) {
    super(`optimistic update gave up after ${attempts} conflicting attempts`);
  }
}

/**
 * Reads `key`, computes its next value with `update` (which sees undefined for a missing key),
 * and writes it only if the key's mod revision is unchanged; retries on conflict. Returns the
 * value written and the revision of the write.
 */
export async function updateOptimistically(
  client: Client,
  key: Bytes,
  update: (current: Buffer | undefined) => Bytes,
  opts: StmOptions = {},
): Promise<{ value: Buffer; revision: number }> {
  const max = opts.maxRetries ?? 100;
  for (let attempt = 1; attempt <= max; attempt++) {
    const got = await client.get(key);
    const kv = got.kvs[0];
    const next = toBuffer(update(kv?.value));
    const res = await client.txn({
      compare: [compare.modRevision(key, 'EQUAL', kv?.modRevision ?? 0)],
      success: [op.put(key, next)],
    });
    if (res.succeeded) return { value: next, revision: res.header.revision };
  }
  throw new ConflictError(max);
}

export interface SessionOptions {
  /** Lease TTL in seconds (etcd's default session TTL is 60). */
  ttl?: number;
}

/** A lease kept alive in the background until closed; keys written with it vanish if the process dies. */
export class Session {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Set when a keep-alive found the lease gone. */
  expired = false;

  private constructor(
    readonly client: Client,
    readonly leaseId: number,
    readonly ttl: number,
  ) {}

  static async create(client: Client, opts: SessionOptions = {}): Promise<Session> {
    const grant = await client.leaseGrant(opts.ttl ?? 60);
    const s = new Session(client, grant.id, grant.ttl);
    s.scheduleKeepAlive();
    return s;
  }

  private scheduleKeepAlive(): void {
    if (this.closed) return;
    // Renew at a third of the TTL, as clientv3 does.
    this.timer = setTimeout(() => void this.keepAlive(), Math.max(100, (this.ttl * 1000) / 3));
    this.timer.unref();
  }

  private async keepAlive(): Promise<void> {
    try {
      const r = await this.client.leaseKeepAliveOnce(this.leaseId);
      if (r.ttl <= 0) {
        this.expired = true;
        return;
      }
    } catch {
      // Transient: try again at the next tick while the lease may still be alive.
    }
    this.scheduleKeepAlive();
  }

  /** Stops the keep-alives and revokes the lease (deleting its keys). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    try {
      await this.client.leaseRevoke(this.leaseId);
    } catch {
      // Already gone.
    }
  }
}

/** Waits until no key under `prefix` has a create revision <= maxCreateRevision. */
async function waitDeletes(client: Client, prefix: Buffer, maxCreateRevision: number, signal?: AbortSignal): Promise<void> {
  for (;;) {
    if (signal?.aborted) throw new Error('aborted');
    const r = await client.get(prefix, {
      rangeEnd: prefixEnd(prefix),
      maxCreateRevision,
      sortTarget: 'CREATE',
      sortOrder: 'DESCEND',
      limit: 1,
    });
    const last = r.kvs[0];
    if (!last) return;
    await waitDelete(client, last.key, r.header.revision, signal);
  }
}

async function waitDelete(client: Client, key: Buffer, revision: number, signal?: AbortSignal): Promise<void> {
  const w = client.watch(key, { startRevision: revision + 1, noPut: true });
  const onAbort = (): void => w.cancel();
  signal?.addEventListener('abort', onAbort);
  try {
    for await (const resp of w) {
      if (resp.canceled) return; // compacted: re-check by reading
      if (resp.events.some((e) => e.type === 'DELETE')) return;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    w.cancel();
  }
}

export class Mutex {
  private myKey: Buffer | undefined;
  private myRevision = 0;
  readonly prefix: Buffer;

  constructor(
    readonly session: Session,
    prefix: Bytes,
  ) {
    this.prefix = dirPrefix(prefix);
  }

  /** The key holding (or waiting for) the lock. */
  get key(): Buffer {
    if (!this.myKey) throw new Error('mutex not locked');
    return this.myKey;
  }

  /** The lock's create revision: a fencing token that increases with every new holder. */
  get revision(): number {
    return this.myRevision;
  }

  async lock(signal?: AbortSignal): Promise<void> {
    const client = this.session.client;
    const key = Buffer.concat([this.prefix, Buffer.from(leaseHex(this.session.leaseId))]);
    const res: TxnResponse = await client.txn({
      compare: [compare.createRevision(key, 'EQUAL', 0)],
      success: [op.put(key, '', { lease: this.session.leaseId }), op.get(this.prefix, { prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 })],
      failure: [op.get(key), op.get(this.prefix, { prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 })],
    });
    this.myKey = key;
    let myRev = res.header.revision;
    if (!res.succeeded) {
      const first = res.responses[0]!;
      myRev = 'responseRange' in first ? (first.responseRange.kvs[0]?.createRevision ?? myRev) : myRev;
    }
    this.myRevision = myRev;
    const ownerOp = res.responses[1]!;
    const owner: KeyValue | undefined = 'responseRange' in ownerOp ? ownerOp.responseRange.kvs[0] : undefined;
    if (!owner || owner.createRevision === myRev) return;
    try {
      await waitDeletes(client, this.prefix, myRev - 1, signal);
    } catch (err) {
      await this.unlock();
      throw err;
    }
  }

  async unlock(): Promise<void> {
    if (!this.myKey) return;
    await this.session.client.delete(this.myKey);
    this.myKey = undefined;
    this.myRevision = 0;
  }
}

export class Election {
  private leaderKey: Buffer | undefined;
  private leaderRevision = 0;
  readonly prefix: Buffer;

  constructor(
    readonly session: Session,
    prefix: Bytes,
  ) {
    this.prefix = dirPrefix(prefix);
  }

  /** Waits until this session leads, then returns; `value` is the proclaimed value. */
  async campaign(value: Bytes, signal?: AbortSignal): Promise<void> {
    const client = this.session.client;
    const key = Buffer.concat([this.prefix, Buffer.from(leaseHex(this.session.leaseId))]);
    const res = await client.txn({
      compare: [compare.createRevision(key, 'EQUAL', 0)],
      success: [op.put(key, value, { lease: this.session.leaseId })],
      failure: [op.get(key)],
    });
    let rev = res.header.revision;
    if (!res.succeeded) {
      const got = res.responses[0]!;
      const kv = 'responseRange' in got ? got.responseRange.kvs[0] : undefined;
      rev = kv?.createRevision ?? rev;
      if (kv && !kv.value.equals(toBuffer(value))) await client.put(key, value, { lease: this.session.leaseId });
    }
    this.leaderKey = key;
    this.leaderRevision = rev;
    try {
      await waitDeletes(client, this.prefix, rev - 1, signal);
    } catch (err) {
      await this.resign();
      throw err;
    }
  }

  /** Changes the leader's value without a new election. */
  async proclaim(value: Bytes): Promise<void> {
    if (!this.leaderKey) throw new Error(EtcdMessage.electionNotLeader);
    const res = await this.session.client.txn({
      compare: [compare.createRevision(this.leaderKey, 'EQUAL', this.leaderRevision)],
      success: [op.put(this.leaderKey, value, { lease: this.session.leaseId })],
    });
    if (!res.succeeded) throw new Error('election: session lost leadership');
  }

  async resign(): Promise<void> {
    if (!this.leaderKey) return;
    await this.session.client.delete(this.leaderKey);
    this.leaderKey = undefined;
  }

  /** The current leader's key-value, if any. */
  static async leader(client: Client, prefix: Bytes): Promise<KeyValue | undefined> {
    const r = await client.get(dirPrefix(prefix), { prefix: true, sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 });
    return r.kvs[0];
  }
}
