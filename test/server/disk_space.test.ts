import { describe, expect, test } from 'vitest';
import { DiskSpaceGuard } from '../../src/server/disk_space.js';
import { ConfigError, resolveDiskReserveBytes } from '../../src/server/config.js';

/** A guard over a filesystem whose free bytes the test sets. */
function guard(reserveBytes: number): { g: DiskSpaceGuard; set(free: number): void; events: string[] } {
  let free = 1_000;
  const events: string[] = [];
  const g = new DiskSpaceGuard({
    dir: '/nowhere',
    reserveBytes,
    freeBytes: async () => free,
    onLow: (bytes, first) => events.push(`low ${bytes}${first ? ' first' : ''}`),
    onRecovered: (bytes) => events.push(`recovered ${bytes}`),
  });
  return { g, set: (f) => (free = f), events };
}

describe('DiskSpaceGuard', () => {
  test('reports low once it falls below the reserve, again at every check while low, and recovered only past the reserve plus a quarter', async () => {
    const { g, set, events } = guard(100);
    await g.check();
    expect(events).toEqual([]);
    set(99);
    await g.check();
    expect(g.low).toBe(true);
    set(124); // above the reserve, below the margin: still low (no flapping)
    await g.check();
    set(125);
    await g.check();
    expect(g.low).toBe(false);
    set(110);
    await g.check();
    expect(events).toEqual(['low 99 first', 'low 124', 'recovered 125']);
  });

  test('writing an eighth of the reserve checks at once, without waiting for the timer', async () => {
    const { g, set, events } = guard(800);
    set(500);
    g.written(99);
    await Promise.resolve();
    expect(events).toEqual([]);
    g.written(1); // 100 bytes since the last check: an eighth of 800
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['low 500 first']);
    g.written(99); // the count starts again at that check
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['low 500 first']);
  });

  test('a reserve of 0 turns it off', async () => {
    const { g, set, events } = guard(0);
    set(0);
    await g.check();
    expect(g.enabled).toBe(false);
    expect(events).toEqual([]);
  });
});

describe('--disk-reserve-bytes', () => {
  test('a non-negative integer; the default 64 MiB; anything else is a configuration error', () => {
    expect(resolveDiskReserveBytes(undefined, 'x')).toBe(64 * 1024 * 1024);
    expect(resolveDiskReserveBytes('0', 'x')).toBe(0);
    expect(resolveDiskReserveBytes(' 1048576 ', 'x')).toBe(1048576);
    expect(resolveDiskReserveBytes(5, 'x')).toBe(5);
    for (const bad of ['-1', '1.5', 'lots', -3, 1.5]) {
      expect(() => resolveDiskReserveBytes(bad, '--disk-reserve-bytes')).toThrow(ConfigError);
    }
    expect(() => resolveDiskReserveBytes('-1', '--disk-reserve-bytes')).toThrow(
      '--disk-reserve-bytes: expected a non-negative integer number of bytes, got "-1"',
    );
  });
});
