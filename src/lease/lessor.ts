/**
 * Leases: TTL'd handles that keys attach to. Two halves, as in etcd's lessor:
 *
 * - Replicated state (grant, revoke, attach, detach), changed only by applying committed
 *   entries, so it is identical on every member and needs no clock.
 * - Expiry, kept by the primary (the Raft leader) alone on its own clock. Followers never
 *   expire anything; when the primary sees a lease run out it proposes its revocation through
 *   Raft. A member that becomes primary first gives every lease a fresh TTL plus an extension,
 *   so a failover never expires a lease whose holder kept it alive.
 */
import { LeaseExistsError, LeaseNotFoundError, LeaseNotPrimaryError, LeaseTTLTooLargeError } from './errors.js';

/** etcd's MaxLeaseTTL, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;
/** Lease id 0 means "no lease" on a key. */
export const NO_LEASE = 0;

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

export interface LeaseRecord {
  id: number;
  /** Granted TTL in seconds (after the minimum was applied). */
  ttl: number;
}

interface Lease extends LeaseRecord {
  /** Attached keys, as latin1 strings of their bytes (binary-safe map keys). */
  keys: Set<string>;
  /** Primary only: when it expires (ms on the clock); Infinity on followers. */
  expiry: number;
}

export interface TimeToLive {
  id: number;
  /** Remaining seconds, or -1 if the lease has expired. */
  ttl: number;
  grantedTtl: number;
  keys?: Buffer[];
}

export interface LessorOptions {
  /** Leases shorter than this are granted with this TTL: they must outlive an election. */
  minTtlSeconds: number;
  clock?: Clock;
}

const keyString = (key: Buffer): string => key.toString('latin1');

export class Lessor {
  private readonly leases = new Map<number, Lease>();
  private readonly clock: Clock;
  private primary = false;
  readonly minTtlSeconds: number;

  constructor(opts: LessorOptions) {
    this.minTtlSeconds = opts.minTtlSeconds;
    this.clock = opts.clock ?? systemClock;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get size(): number {
    return this.leases.size;
  }

  // ---- replicated state: called from apply ---------------------------------------------

  /** Validates a grant before it is proposed (and again when applied). */
  static checkGrant(ttl: number): void {
    if (ttl > MAX_LEASE_TTL) throw new LeaseTTLTooLargeError();
  }

  grant(id: number, ttl: number): LeaseRecord {
    Lessor.checkGrant(ttl);
    if (this.leases.has(id)) throw new LeaseExistsError();
    const effective = Math.max(ttl, this.minTtlSeconds);
    const lease: Lease = { id, ttl: effective, keys: new Set(), expiry: Infinity };
    if (this.primary) lease.expiry = this.clock.now() + effective * 1000;
    this.leases.set(id, lease);
    return { id, ttl: effective };
  }

  /** Removes the lease and returns the keys attached to it, which the caller deletes in the same revision. */
  revoke(id: number): Buffer[] {
    const lease = this.leases.get(id);
    if (!lease) throw new LeaseNotFoundError();
    this.leases.delete(id);
    return [...lease.keys].sort().map((k) => Buffer.from(k, 'latin1'));
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  /** A key's lease changed from `prevLease` to `nextLease` (either may be NO_LEASE). */
  updateKey(key: Buffer, prevLease: number, nextLease: number): void {
    if (prevLease === nextLease) return;
    const k = keyString(key);
    if (prevLease !== NO_LEASE) this.leases.get(prevLease)?.keys.delete(k);
    if (nextLease !== NO_LEASE) this.leases.get(nextLease)?.keys.add(k);
  }

  /** Replaces the whole replicated state (on start, or after restoring a snapshot). */
  load(records: LeaseRecord[], attachments: Iterable<{ key: Buffer; lease: number }>): void {
    this.leases.clear();
    const expiry = this.primary ? this.clock.now() : Infinity;
    for (const r of records) this.leases.set(r.id, { id: r.id, ttl: r.ttl, keys: new Set(), expiry: expiry + r.ttl * 1000 });
    for (const a of attachments) this.leases.get(a.lease)?.keys.add(keyString(a.key));
  }

  records(): LeaseRecord[] {
    return [...this.leases.values()].map(({ id, ttl }) => ({ id, ttl })).sort((a, b) => a.id - b.id);
  }

  ids(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  // ---- primary only: clock-driven ------------------------------------------------------

  /** This member became leader: every lease gets a fresh TTL plus `extendMs`. */
  promote(extendMs: number): void {
    this.primary = true;
    const now = this.clock.now();
    for (const lease of this.leases.values()) lease.expiry = now + extendMs + lease.ttl * 1000;
  }

  /** This member is no longer leader: it stops tracking expiry. */
  demote(): void {
    this.primary = false;
    for (const lease of this.leases.values()) lease.expiry = Infinity;
  }

  /** A keep-alive: the lease lives another TTL. Returns the TTL. */
  renew(id: number): number {
    if (!this.primary) throw new LeaseNotPrimaryError();
    const lease = this.leases.get(id);
    // An expired lease is being revoked: it cannot be revived.
    if (!lease || lease.expiry <= this.clock.now()) throw new LeaseNotFoundError();
    lease.expiry = this.clock.now() + lease.ttl * 1000;
    return lease.ttl;
  }

  timeToLive(id: number, withKeys: boolean): TimeToLive | undefined {
    const lease = this.leases.get(id);
    if (!lease) return undefined;
    let ttl = lease.ttl;
    if (this.primary) {
      const remainingMs = lease.expiry - this.clock.now();
      ttl = remainingMs <= 0 ? -1 : Math.floor(remainingMs / 1000);
    }
    const out: TimeToLive = { id, ttl, grantedTtl: lease.ttl };
    if (withKeys) out.keys = [...lease.keys].sort().map((k) => Buffer.from(k, 'latin1'));
    return out;
  }

  /** Primary only: up to `max` leases whose time has run out, soonest first. */
  expired(max: number): number[] {
    if (!this.primary) return [];
    const now = this.clock.now();
    const out: { id: number; expiry: number }[] = [];
    for (const lease of this.leases.values()) if (lease.expiry <= now) out.push({ id: lease.id, expiry: lease.expiry });
    out.sort((a, b) => a.expiry - b.expiry || a.id - b.id);
    return out.slice(0, max).map((l) => l.id);
  }
}
