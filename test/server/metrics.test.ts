import { describe, expect, test } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { LatencyHistogram } from '../../src/server/metrics.js';

describe('LatencyHistogram', () => {
  const bounds = [0.0001, 0.001, 0.01, 0.1, 1];
  const cases: { name: string; observations: number[] }[] = [
    { name: 'nothing observed', observations: [] },
    { name: 'values on the bounds, between them and beyond the last', observations: [0, 0.0001, 0.00011, 0.001, 0.05, 0.1, 0.7, 1, 3.5, 100] },
    { name: 'many of one bucket', observations: Array.from({ length: 1000 }, (_, i) => 0.002 + i * 1e-6) },
  ];
  test.each(cases)('exports exactly what prom-client Histogram exports: $name', async ({ observations }) => {
    const theirs = new Registry();
    const ours = new Registry();
    for (const r of [theirs, ours]) r.setDefaultLabels({ member: 'n1' });
    const reference = new Histogram({ name: 'x_seconds', help: 'Help text.', buckets: bounds, registers: [theirs] });
    const fast = new LatencyHistogram('x_seconds', 'Help text.', bounds, ours);
    for (const v of observations) {
      reference.observe(v);
      fast.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  test("the registry's resetMetrics() starts it from zero", async () => {
    const registry = new Registry();
    const h = new LatencyHistogram('z_seconds', 'Help.', bounds, registry);
    h.observe(0.5);
    registry.resetMetrics();
    h.observe(0.05);
    const text = await registry.metrics();
    expect(text).toMatch(/^z_seconds_count 1$/m);
    expect(text).toMatch(/^z_seconds_sum 0.05$/m);
    expect(text).toMatch(/^z_seconds_bucket\{le="1"\} 1$/m);
  });

  test('a value that is not a finite number is not counted', async () => {
    const registry = new Registry();
    const h = new LatencyHistogram('y_seconds', 'Help.', bounds, registry);
    h.observe(Number.NaN);
    h.observe(Number.POSITIVE_INFINITY);
    h.observe(0.5);
    expect(await registry.metrics()).toMatch(/^y_seconds_count 1$/m);
  });
});
