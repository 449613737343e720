import { describe, expect, test } from 'vitest';
import { Inflights, Progress, ProgressState } from '../../src/raft/tracker.js';

describe('Inflights', () => {
  test('bounded window freed in order', () => {
    const inf = new Inflights(3);
    inf.add(5);
    inf.add(7);
    inf.add(9);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(10)).toThrow();
    inf.freeLE(7);
    expect(inf.count).toBe(1);
    inf.freeLE(100);
    expect(inf.count).toBe(0);
  });
});

describe('Progress.maybeDecrTo', () => {
  const cases: {
    name: string;
    state: ProgressState;
    match: number;
    next: number;
    rejected: number;
    hint: number;
    ok: boolean;
    wantNext: number;
  }[] = [
    { name: 'replicate: stale rejection below match', state: ProgressState.Replicate, match: 5, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 },
    { name: 'replicate: falls back to match+1', state: ProgressState.Replicate, match: 5, next: 10, rejected: 9, hint: 9, ok: true, wantNext: 6 },
    { name: 'probe: rejection of another message is stale', state: ProgressState.Probe, match: 0, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 },
    { name: 'probe: jumps to hint+1', state: ProgressState.Probe, match: 0, next: 10, rejected: 9, hint: 3, ok: true, wantNext: 4 },
    { name: 'probe: never below match+1', state: ProgressState.Probe, match: 6, next: 10, rejected: 9, hint: 2, ok: true, wantNext: 7 },
    { name: 'probe: hint beyond rejected uses rejected', state: ProgressState.Probe, match: 0, next: 10, rejected: 9, hint: 20, ok: true, wantNext: 9 },
  ];
  test.each(cases)('$name', ({ state, match, next, rejected, hint, ok, wantNext }) => {
    const pr = new Progress(next, 4);
    pr.state = state;
    pr.match = match;
    pr.probeSent = true;
    expect(pr.maybeDecrTo(rejected, hint)).toBe(ok);
    expect(pr.next).toBe(wantNext);
    if (ok && state === ProgressState.Probe) expect(pr.probeSent).toBe(false);
  });
});

describe('Progress pause rules', () => {
  test('probe pauses after one message until answered', () => {
    const pr = new Progress(1, 4);
    expect(pr.isPaused()).toBe(false);
    pr.probeSent = true;
    expect(pr.isPaused()).toBe(true);
    pr.maybeUpdate(1);
    expect(pr.isPaused()).toBe(false);
  });
  test('replicate pauses when the inflight window is full', () => {
    const pr = new Progress(1, 2);
    pr.becomeReplicate();
    pr.inflights.add(1);
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(2);
    expect(pr.isPaused()).toBe(true);
  });
  test('snapshot always pauses appends; becomeProbe resumes after the snapshot', () => {
    const pr = new Progress(1, 2);
    pr.becomeSnapshot(50);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(51);
  });
});
