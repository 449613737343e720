/**
 * Prometheus metrics of one member, on its own registry (so several members in one test
 * process do not collide). Names follow etcd's where etcd has the same figure.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Histogram } from 'prom-client';

/** One exported sample, in the shape prom-client's registry reads from a metric's get(). */
interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/** Latency buckets in seconds, from 0.1 ms to ~8 s, like etcd's disk histograms. */
const LATENCY_BUCKETS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];

/**
 * A histogram without labels, observed on every Ready and every apply. prom-client's Histogram
 * builds a label object, validates and hashes it on each observation: 2-4% of a member's main
 * thread under sequential puts. This one counts into an array and builds prom-client's export
 * format only when scraped; the exposition text is the same.
 */
export class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(bounds.length);
    // The registry calls only get() and reset(); prom-client's types list its own classes.
    registry.registerMetric(this as unknown as Histogram);
  }

  observe(seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    this.sum += seconds;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  /** What the registry's resetMetrics() calls. */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += this.counts[i]!;
      values.push({ labels: { le }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly term = new Gauge({ name: 'qkv_server_raft_term', help: 'Current Raft term of this member.', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'qkv_server_is_leader', help: '1 if this member is the leader.', registers: [this.registry] });
  readonly hasLeader = new Gauge({ name: 'qkv_server_has_leader', help: '1 if a leader is known.', registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'qkv_server_leader_changes_seen_total', help: 'Leader changes seen.', registers: [this.registry] });
  readonly proposalsCommitted = new Counter({ name: 'qkv_server_proposals_committed_total', help: 'Proposals applied on this member.', registers: [this.registry] });
  readonly proposalsFailed = new Counter({ name: 'qkv_server_proposals_failed_total', help: 'Proposals that failed (dropped, lost, timed out).', registers: [this.registry] });
  readonly appliedIndex = new Gauge({ name: 'qkv_server_applied_index', help: 'Raft index applied to the store.', registers: [this.registry] });
  readonly fsyncSeconds = new LatencyHistogram('qkv_disk_wal_fsync_duration_seconds', 'Latency of the Raft log writes with fsync.', LATENCY_BUCKETS, this.registry);
  readonly applySeconds = new LatencyHistogram(
    'qkv_server_apply_duration_seconds',
    'Latency of applying a batch of committed entries to the store.',
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly watchers = new Gauge({ name: 'qkv_watch_watchers', help: 'Open watchers on this member.', registers: [this.registry] });
  readonly slowWatchers = new Gauge({ name: 'qkv_watch_slow_watchers', help: 'Watchers catching up from history.', registers: [this.registry] });
  readonly dbSizeBytes = new Gauge({ name: 'qkv_mvcc_db_total_size_in_bytes', help: 'Approximate on-disk size of the store.', registers: [this.registry] });
  readonly revision = new Gauge({ name: 'qkv_mvcc_revision', help: 'Current store revision.', registers: [this.registry] });

  constructor(labels: { member: string }) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
