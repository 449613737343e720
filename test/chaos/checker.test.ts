/**
 * The linearizability checker, itself tested: hand-written linearizable and non-linearizable
 * histories (stale read, lost write, write visible before it was invoked, impossible cas),
 * generated valid histories and their corruption, and a history of thousands of operations.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { checkRegisterHistory, type HistoryEntry, type RegisterOp } from './checker.js';

let nextId = 0;
function op(client: number, o: RegisterOp, invoke: number, complete: number | undefined, status: HistoryEntry['status'] = 'ok'): HistoryEntry {
  return { id: nextId++, client, op: o, invoke, ...(complete !== undefined ? { complete } : {}), status };
}
const w = (key: string, value: string): RegisterOp => ({ kind: 'write', key, value });
const r = (key: string, value: string | null): RegisterOp => ({ kind: 'read', key, value });
const cas = (key: string, expected: string | null, value: string, succeeded?: boolean): RegisterOp => ({
  kind: 'cas',
  key,
  expected,
  value,
  ...(succeeded !== undefined ? { succeeded } : {}),
});

describe('linearizable histories', () => {
  const cases: [string, HistoryEntry[]][] = [
    ['sequential', [op(1, w('x', 'a'), 0, 1), op(2, r('x', 'a'), 2, 3), op(1, w('x', 'b'), 4, 5), op(2, r('x', 'b'), 6, 7)]],
    ['a read concurrent with a write may see the old value', [op(1, w('x', 'a'), 0, 1), op(1, w('x', 'b'), 2, 10), op(2, r('x', 'a'), 3, 4)]],
    ['... or the new one', [op(1, w('x', 'a'), 0, 1), op(1, w('x', 'b'), 2, 10), op(2, r('x', 'b'), 3, 4)]],
    ['a missing key reads null', [op(1, r('x', null), 0, 1), op(2, w('x', 'a'), 2, 3)]],
    [
      'cas success and failure consistent',
      [op(1, w('x', 'a'), 0, 1), op(2, cas('x', 'a', 'b', true), 2, 3), op(3, cas('x', 'a', 'c', false), 4, 5), op(1, r('x', 'b'), 6, 7)],
    ],
    ['an unknown write that later becomes visible', [op(1, w('x', 'a'), 0, undefined, 'unknown'), op(2, r('x', null), 1, 2), op(2, r('x', 'a'), 50, 51)]],
    [
      'an unknown write that never takes effect',
      [op(1, w('x', 'a'), 0, 1), op(1, w('x', 'b'), 2, undefined, 'unknown'), op(2, r('x', 'a'), 10, 11), op(2, r('x', 'a'), 20, 21)],
    ],
    ['failed operations are ignored', [op(1, w('x', 'a'), 0, 1), op(1, w('x', 'zzz'), 2, 3, 'fail'), op(2, r('x', 'a'), 4, 5)]],
    ['keys are independent', [op(1, w('x', 'a'), 0, 1), op(2, w('y', 'b'), 0, 1), op(3, r('y', 'b'), 2, 3), op(3, r('x', 'a'), 2, 3)]],
    ['an unknown cas that happened', [op(1, w('x', 'a'), 0, 1), op(2, cas('x', 'a', 'b'), 2, undefined, 'unknown'), op(3, r('x', 'b'), 10, 11)]],
  ];
  test.each(cases)('%s', (_name, history) => {
    const res = checkRegisterHistory(history);
    expect(res.linearizable).toBe(true);
    expect(res.timedOut).toBeFalsy();
  });
});

describe('non-linearizable histories', () => {
  const cases: [string, HistoryEntry[], number][] = (() => {
    nextId = 1000;
    const stale = [op(1, w('x', 'a'), 0, 1), op(1, w('x', 'b'), 2, 3), op(2, r('x', 'a'), 4, 5)];
    const lost = [op(1, w('x', 'a'), 0, 1), op(2, w('x', 'b'), 2, 3), op(3, r('x', 'a'), 10, 11), op(3, r('x', 'a'), 20, 21)];
    const early = [op(2, r('x', 'a'), 0, 1), op(1, w('x', 'a'), 5, 6)];
    const impossibleCas = [op(1, w('x', 'a'), 0, 1), op(2, cas('x', 'q', 'b', true), 2, 3)];
    return [
      ['stale read after a completed write', stale, stale[2]!.id],
      ['lost write: an acknowledged write never visible', lost, lost[2]!.id],
      ['write visible before it was invoked', early, early[0]!.id],
      ['cas succeeded against a value the register never had', impossibleCas, impossibleCas[1]!.id],
    ];
  })();
  test.each(cases)('%s', (_name, history, culprit) => {
    const res = checkRegisterHistory(history);
    expect(res.linearizable).toBe(false);
    expect(res.timedOut).toBeFalsy();
    expect(res.failingKey).toBe('x');
    expect(res.window!.map((e) => e.id)).toContain(culprit);
  });
});

/** A valid concurrent history: ops take effect at a point inside their interval, in order. */
function generate(seed: number, ops: number, clients: number, keys: number): HistoryEntry[] {
  let s = seed >>> 0;
  const rnd = (n: number): number => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
  const state = new Map<string, string | null>();
  const out: HistoryEntry[] = [];
  const busyUntil = new Array<number>(clients).fill(0);
  let t = 0;
  for (let i = 0; i < ops; i++) {
    t += 1 + rnd(3);
    // The effect happens at t; the interval stretches around it, and a client does one op at a time.
    const c = rnd(clients);
    const invoke = Math.max(busyUntil[c]! + 1, t - rnd(6));
    if (invoke > t) {
      t = invoke;
    }
    const complete = t + rnd(6);
    busyUntil[c] = complete;
    const key = `k${rnd(keys)}`;
    const cur = state.get(key) ?? null;
    const dice = rnd(10);
    let o: RegisterOp;
    if (dice < 4) o = r(key, cur);
    else if (dice < 7) {
      o = w(key, `v${i}`);
      state.set(key, `v${i}`);
    } else {
      const expected = rnd(2) === 0 ? cur : `v${rnd(i + 1)}`;
      const ok = expected === cur;
      o = cas(key, expected, `c${i}`, ok);
      if (ok) state.set(key, `c${i}`);
    }
    out.push({ id: i, client: c, op: o, invoke, complete, status: 'ok' });
  }
  return out;
}

describe('generated histories', () => {
  test('valid concurrent histories are linearizable; one corrupted read is caught', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
        const h = generate(seed, 120, 4, 2);
        expect(checkRegisterHistory(h).linearizable).toBe(true);
        const reads = h.filter((e) => e.op.kind === 'read');
        if (reads.length === 0) return;
        const victim = reads[seed % reads.length]!;
        (victim.op as { value?: string | null }).value = 'never-written';
        const res = checkRegisterHistory(h);
        expect(res.linearizable).toBe(false);
        expect(res.window!.map((e) => e.id)).toContain(victim.id);
      }),
      { numRuns: 100 },
    );
  });

  test('3,000 operations from 8 clients on 5 keys are checked well within the time limit', () => {
    const h = generate(42, 3000, 8, 5);
    // A few unknown writes, as timeouts produce.
    for (const e of h.filter((x) => x.op.kind === 'write').slice(0, 20)) {
      e.status = 'unknown';
      delete e.complete;
    }
    const started = performance.now();
    const res = checkRegisterHistory(h, { timeoutMs: 20_000 });
    console.log(`checked ${h.length} ops in ${(performance.now() - started).toFixed(0)} ms (${res.explored} steps)`);
    expect(res.timedOut).toBeFalsy();
    expect(res.linearizable).toBe(true);
  });
});
