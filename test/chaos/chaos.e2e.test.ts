/**
 * A short chaos run in the suite: a fixed seed's fault schedule (partitions, asymmetric cuts,
 * bridges, delays, kills, pauses, a lost majority, full restarts) against real processes, with
 * concurrent register clients; and one whose faults are membership changes and kills. Longer
 * runs: npm run chaos -- --time 600 --seed N [--faults ...].
 */
import { expect, test } from 'vitest';
import { formatReport, runChaos, type ChaosReport } from './run.js';

test('a short chaos run: linearizable, identical replicas, no acknowledged append lost, exact watch histories', async () => {
  const lines: string[] = [];
  const report = await runChaos({ nodes: 3, time: 35, seed: 11, workers: 6, keys: 4, outDir: '.qkv-tmp', log: (l) => lines.push(l) });
  console.log([...lines, formatReport(report)].join('\n'));
  expect(report.faults.length).toBeGreaterThanOrEqual(5);
  expectChecksPassed(report);
}, 180_000);

test('a short membership chaos run: learners added, promoted, members (the leader too) removed, among kills', async () => {
  const lines: string[] = [];
  const report = await runChaos({
    nodes: 3,
    time: 40,
    seed: 13,
    workers: 6,
    keys: 4,
    outDir: '.qkv-tmp',
    faults: ['membership', 'kill-random'],
    log: (l) => lines.push(l),
  });
  console.log([...lines, formatReport(report)].join('\n'));
  expect(report.membership.added).toBeGreaterThanOrEqual(1);
  expect(report.membership.promoted).toBeGreaterThanOrEqual(1);
  expect(report.membership.removed).toBeGreaterThanOrEqual(1);
  expectChecksPassed(report);
}, 180_000);

function expectChecksPassed(report: ChaosReport): void {
  expect(report.ok).toBeGreaterThan(1000);
  expect(report.checkerTimedOut).toBe(false);
  expect(report.linearizable).toBe(true);
  expect(report.hashesEqual).toBe(true);
  expect(report.append.acknowledged).toBeGreaterThan(50);
  expect(report.append).toMatchObject({ lost: 0, duplicated: 0, phantom: 0 });
  expect(report.watch.events).toBeGreaterThan(100);
  expect(report.watch.mismatched).toBe(0);
  expect(report.lock.accepted).toBeGreaterThan(10);
  expect(report.lock.violations).toBe(0);
}
