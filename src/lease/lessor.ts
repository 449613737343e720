/**
 * Leases: TTL'd handles that keys attach to. Two halves, as in etcd's lessor:
 *
 * - Replicated state (which leases exist, with which TTL), changed only by applying committed
 *   entries, so it is identical on every member and needs no clock. Which keys are attached
 *   to a lease is the MVCC store's business (its LEASES table), not kept here twice.
 * - Expiry, kept by the primary (the Raft leader) alone on its own clock. Followers never
 *   expire anything; when the primary sees a lease run out it proposes its revocation through
 *   Raft. A member that becomes primary first gives every lease a fresh TTL plus an extension,
 *   so a failover never expires a lease whose holder kept it alive.
 */
import { LeaseExistsError, LeaseNotFoundError, LeaseNotPrimaryError, LeaseTTLTooLargeError } from './errors.js';

/** etcd's MaxLeaseTTL, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

const systemClock: Clock = { now: () => performance.now() };

export interface LeaseRecord {
  id: number;
  /** Granted TTL in seconds (after the minimum was applied). */
  ttl: number;
}

interface Lease extends LeaseRecord {
  /** Primary only: when it expires (ms on the clock); Infinity on followers. */
  expiry: number;
}

export interface TimeToLive {
  id: number;
  /** Remaining seconds, or -1 if the lease has expired. */
  ttl: number;
  grantedTtl: number;
}

export interface LessorOptions {
  /** Leases shorter than this are granted with this TTL: they must outlive an election. */
  minTtlSeconds: number;
  clock?: Clock;
}

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
    const lease: Lease = { id, ttl: effective, expiry: Infinity };
    if (this.primary) lease.expiry = this.clock.now() + effective * 1000;
    this.leases.set(id, lease);
    return { id, ttl: effective };
  }

  /** Forgets the lease (the store deletes its keys in the same revision). */
  revoke(id: number): void {
    if (!this.leases.delete(id)) throw new LeaseNotFoundError();
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  /** Replaces the whole replicated state (on start, or after restoring a snapshot). */
  load(records: LeaseRecord[]): void {
    this.leases.clear();
    const now = this.primary ? this.clock.now() : Infinity;
    for (const r of records) this.leases.set(r.id, { id: r.id, ttl: r.ttl, expiry: now + r.ttl * 1000 });
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

  timeToLive(id: number): TimeToLive | undefined {
    const lease = this.leases.get(id);
    if (!lease) return undefined;
    let ttl = lease.ttl;
    if (this.primary) {
      const remainingMs = lease.expiry - this.clock.now();
      ttl = remainingMs <= 0 ? -1 : Math.floor(remainingMs / 1000);
    }
    return { id, ttl, grantedTtl: lease.ttl };
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
