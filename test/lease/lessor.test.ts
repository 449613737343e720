import { describe, expect, test } from 'vitest';
import { Lessor, MAX_LEASE_TTL, type Clock } from '../../src/lease/lessor.js';
import { LeaseExistsError, LeaseNotFoundError, LeaseNotPrimaryError, LeaseTTLTooLargeError } from '../../src/lease/errors.js';

class ManualClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

function primary(clock = new ManualClock(), minTtlSeconds = 2): { lessor: Lessor; clock: ManualClock } {
  const lessor = new Lessor({ minTtlSeconds, clock });
  lessor.promote(0);
  return { lessor, clock };
}

describe('grant and revoke (replicated state)', () => {
  test('grant applies the minimum TTL; duplicate ids and huge TTLs are refused', () => {
    const { lessor } = primary();
    expect(lessor.grant(1, 1)).toEqual({ id: 1, ttl: 2 });
    expect(lessor.grant(2, 60)).toEqual({ id: 2, ttl: 60 });
    expect(() => lessor.grant(1, 10)).toThrow(LeaseExistsError);
    expect(() => lessor.grant(3, MAX_LEASE_TTL + 1)).toThrow(LeaseTTLTooLargeError);
    expect(lessor.ids()).toEqual([1, 2]);
  });

  test('revoke forgets the lease; a second revoke is not found', () => {
    const { lessor } = primary();
    lessor.grant(7, 10);
    lessor.revoke(7);
    expect(lessor.has(7)).toBe(false);
    expect(() => lessor.revoke(7)).toThrow(LeaseNotFoundError);
  });

  test('load replaces the leases', () => {
    const { lessor } = primary();
    lessor.grant(1, 10);
    lessor.load([{ id: 5, ttl: 30 }]);
    expect(lessor.records()).toEqual([{ id: 5, ttl: 30 }]);
  });
});

describe('expiry (primary only, controllable clock)', () => {
  test('a lease expires after its TTL and not before', () => {
    const { lessor, clock } = primary();
    lessor.grant(1, 10);
    clock.advance(9_999);
    expect(lessor.expired(10)).toEqual([]);
    clock.advance(1);
    expect(lessor.expired(10)).toEqual([1]);
    expect(lessor.timeToLive(1)!.ttl).toBe(-1);
  });

  test('keep-alive prevents expiry; an expired lease cannot be renewed', () => {
    const { lessor, clock } = primary();
    lessor.grant(1, 10);
    for (let i = 0; i < 10; i++) {
      clock.advance(5_000);
      expect(lessor.renew(1)).toBe(10);
      expect(lessor.expired(10)).toEqual([]);
    }
    clock.advance(10_000);
    expect(lessor.expired(10)).toEqual([1]);
    expect(() => lessor.renew(1)).toThrow(LeaseNotFoundError);
  });

  test('followers never expire leases and refuse keep-alives', () => {
    const clock = new ManualClock();
    const follower = new Lessor({ minTtlSeconds: 2, clock });
    follower.grant(1, 5);
    clock.advance(3_600_000);
    expect(follower.expired(10)).toEqual([]);
    expect(() => follower.renew(1)).toThrow(LeaseNotPrimaryError);
    expect(follower.timeToLive(1)).toEqual({ id: 1, ttl: 5, grantedTtl: 5 });
  });

  test('a leader change does not expire a lease that was kept alive', () => {
    const clock = new ManualClock();
    const oldLeader = new Lessor({ minTtlSeconds: 2, clock });
    const newLeader = new Lessor({ minTtlSeconds: 2, clock });
    oldLeader.promote(0);
    for (const l of [oldLeader, newLeader]) l.grant(1, 10);
    // The holder keeps it alive on the old leader for a long time; the follower knows nothing of that.
    for (let i = 0; i < 20; i++) {
      clock.advance(4_000);
      oldLeader.renew(1);
    }
    oldLeader.demote();
    newLeader.promote(1_000);
    expect(newLeader.expired(10)).toEqual([]);
    clock.advance(10_500);
    expect(newLeader.expired(10)).toEqual([]);
    clock.advance(500);
    expect(newLeader.expired(10)).toEqual([1]);
  });

  test('expired() is bounded and returns the soonest first', () => {
    const { lessor, clock } = primary();
    for (let id = 1; id <= 5; id++) {
      lessor.grant(id, 10 + (5 - id));
    }
    clock.advance(60_000);
    expect(lessor.expired(3)).toEqual([5, 4, 3]);
  });

  test('remaining TTL counts down in whole seconds', () => {
    const { lessor, clock } = primary();
    lessor.grant(1, 10);
    clock.advance(2_500);
    expect(lessor.timeToLive(1)).toEqual({ id: 1, ttl: 7, grantedTtl: 10 });
  });
});
