/** The console's reading of /metrics (src/ui/prometheus.ts). */
import { describe, expect, test } from 'vitest';
import { MeanSeries, SERIES_POINTS, sampleOf } from '../../src/ui/prometheus.js';

const scrape = (sum: number, count: number): string =>
  `# HELP h x\n# TYPE h histogram\nh_bucket{le="0.001"} 1\nh_sum ${sum}\nh_count ${count}\netcd_server_leader_changes_seen_total 2\n`;

describe('console metrics', () => {
  test('samples by exact name, unlabelled', () => {
    expect(sampleOf(scrape(1.5, 3), 'h_sum')).toBe(1.5);
    expect(sampleOf(scrape(1.5, 3), 'h_count')).toBe(3);
    expect(sampleOf(scrape(1.5, 3), 'etcd_server_leader_changes_seen_total')).toBe(2);
    expect(sampleOf(scrape(1.5, 3), 'h')).toBeUndefined();
    expect(sampleOf(scrape(1.5, 3), 'h_bucket')).toBeUndefined();
  });

  test("a histogram's mean per interval; none without observations or after a restart; bounded", () => {
    const s = new MeanSeries('h');
    s.add(scrape(1, 10));
    expect(s.points).toEqual([]);
    s.add(scrape(1.5, 20));
    s.add(scrape(1.5, 20));
    s.add(scrape(0.1, 1)); // restarted
    expect(s.points).toEqual([0.05, null, null]);
    expect(s.latest()).toBeNull();
    for (let i = 2; i < 200; i++) s.add(scrape(0.1 * i, i));
    expect(s.points).toHaveLength(SERIES_POINTS);
    expect(s.latest()).toBeCloseTo(0.1);
  });
});
