/**
 * Prometheus metrics of one member, on its own registry (so several members in one test
 * process do not collide; a scrape is of one member, so no sample carries a member label).
 *
 * Names, types, label names and histogram buckets are etcd 3.4's wherever qkv has the same
 * figure, so that etcd's Grafana dashboard and alert rules (the etcd-mixin) read a qkv member
 * unchanged; gRPC calls are counted as go-grpc-prometheus counts them. qkv's own figures keep a
 * `qkv_` prefix. What is recorded on every request, Ready or apply is a plain number or array
 * (LatencyHistogram, FastCounter): prom-client's label handling runs only when scraped.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Histogram } from 'prom-client';

/** One exported sample, in the shape prom-client's registry reads from a metric's get(). */
interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

type Labels = Record<string, string>;

/** What prom-client's registry needs of a metric: its name, get() and reset(). */
abstract class ScrapedMetric<T extends 'counter' | 'gauge' | 'histogram'> {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: T,
    registry: Registry,
  ) {
    // The registry calls only get() and reset(); prom-client's types list its own classes.
    registry.registerMetric(this as unknown as Histogram);
  }

  protected abstract values(): ExportedValue[] | Promise<ExportedValue[]>;
  abstract reset(): void;

  async get(): Promise<{ name: string; help: string; type: T; aggregator: 'sum'; values: ExportedValue[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: await this.values() };
  }
}

/** etcd's prometheus.ExponentialBuckets(start, factor, count). */
function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** etcd's WAL fsync and backend commit buckets: 1 ms to ~8 s. */
const DISK_BUCKETS = exponentialBuckets(0.001, 2, 14);
/** etcd's peer round-trip buckets: 0.1 ms to ~3.3 s. */
const RTT_BUCKETS = exponentialBuckets(0.0001, 2, 16);
/** go-grpc-prometheus's (Prometheus' DefBuckets). */
const GRPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** qkv's apply latency buckets, from 0.1 ms to ~8 s. */
const LATENCY_BUCKETS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];

/** etcd's warnApplyDuration: an apply slower than this counts as slow. */
const SLOW_APPLY_SECONDS = 0.1;

/** The counts of one histogram (one label set): observe() is a loop over the bounds. */
export class HistogramCounts {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
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

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** prom-client's samples of this histogram: cumulative buckets, +Inf, sum, count. */
  export(name: string, labels: Labels, out: ExportedValue[]): void {
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += this.counts[i]!;
      out.push({ labels: { ...labels, le }, value: cumulative, metricName: `${name}_bucket` });
    });
    out.push({ labels: { ...labels, le: '+Inf' }, value: this.count, metricName: `${name}_bucket` });
    out.push({ labels, value: this.sum, metricName: `${name}_sum` });
    out.push({ labels, value: this.count, metricName: `${name}_count` });
  }
}

/**
 * A histogram without labels, observed on every Ready and every apply. prom-client's Histogram
 * builds a label object, validates and hashes it on each observation: 2-4% of a member's main
 * thread under sequential puts. This one counts into an array and builds prom-client's export
 * format only when scraped; the exposition text is the same.
 */
export class LatencyHistogram extends ScrapedMetric<'histogram'> {
  private readonly counts: HistogramCounts;

  constructor(name: string, help: string, bounds: readonly number[], registry: Registry) {
    super(name, help, 'histogram', registry);
    this.counts = new HistogramCounts(bounds);
  }

  observe(seconds: number): void {
    this.counts.observe(seconds);
  }

  /** What the registry's resetMetrics() calls. */
  reset(): void {
    this.counts.reset();
  }

  protected values(): ExportedValue[] {
    const out: ExportedValue[] = [];
    this.counts.export(this.name, {}, out);
    return out;
  }
}

/** A histogram with labels whose children are made once and kept by the code that observes. */
export class LatencyHistogramVec extends ScrapedMetric<'histogram'> {
  private readonly children: { labels: Labels; counts: HistogramCounts }[] = [];

  constructor(
    name: string,
    help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, 'histogram', registry);
  }

  /** A new child for `labels` (callers keep it: there is no lookup). */
  child(labels: Labels): HistogramCounts {
    const counts = new HistogramCounts(this.bounds);
    this.children.push({ labels, counts });
    return counts;
  }

  reset(): void {
    for (const c of this.children) c.counts.reset();
  }

  protected values(): ExportedValue[] {
    const out: ExportedValue[] = [];
    for (const c of this.children) c.counts.export(this.name, c.labels, out);
    return out;
  }
}

/** A counter child: `value++` on the hot path. */
export interface FastCounter {
  value: number;
}

/** A counter (or gauge) with labels whose children are plain objects made once. */
export class FastCounterVec<T extends 'counter' | 'gauge' = 'counter'> extends ScrapedMetric<T> {
  private readonly children: { labels: Labels; counter: FastCounter }[] = [];

  child(labels: Labels): FastCounter {
    const counter = { value: 0 };
    this.children.push({ labels, counter });
    return counter;
  }

  reset(): void {
    for (const c of this.children) c.counter.value = 0;
  }

  protected values(): ExportedValue[] {
    return this.children.map((c) => ({ labels: c.labels, value: c.counter.value, metricName: this.name }));
  }
}

/** A figure read when scraped (etcd's GaugeFunc). */
class ScrapedGauge extends ScrapedMetric<'gauge'> {
  constructor(
    name: string,
    help: string,
    registry: Registry,
    private readonly read: () => number | Promise<number>,
  ) {
    super(name, help, 'gauge', registry);
  }

  reset(): void {}

  protected async values(): Promise<ExportedValue[]> {
    return [{ labels: {}, value: await this.read(), metricName: this.name }];
  }
}

/** A member id (decimal uint64) as etcd writes it in labels (types.ID.String(): hex, no padding). */
const hexId = (id: string): string => BigInt(id).toString(16);

/** The per-peer counters of the peer transport. */
interface PeerChildren {
  sent: FastCounter;
  received: FastCounter;
  sendFailures: FastCounter;
  active: FastCounter;
  disconnected: FastCounter;
  rtt: HistogramCounts;
}

/** etcd's rafthttp metrics, fed by PeerTransport (the PeerStats it calls). */
export class PeerMetrics {
  private readonly peers = new Map<number, PeerChildren>();
  private readonly vecs: {
    sent: FastCounterVec;
    received: FastCounterVec;
    failures: FastCounterVec;
    active: FastCounterVec<'gauge'>;
    disconnected: FastCounterVec;
    rtt: LatencyHistogramVec;
  };

  constructor(
    private readonly self: string,
    /** A peer's label: its member id in hex, from the raft id the transport knows it by. */
    private readonly labelOf: (raftId: number) => string,
    registry: Registry,
  ) {
    this.vecs = {
      sent: new FastCounterVec('etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', 'counter', registry),
      received: new FastCounterVec('etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', 'counter', registry),
      failures: new FastCounterVec('etcd_network_peer_sent_failures_total', 'The total number of send failures from peers.', 'counter', registry),
      active: new FastCounterVec('etcd_network_active_peers', 'The current number of active peer connections.', 'gauge', registry),
      disconnected: new FastCounterVec('etcd_network_disconnected_peers_total', 'The total number of disconnected peers.', 'counter', registry),
      rtt: new LatencyHistogramVec('etcd_network_peer_round_trip_time_seconds', 'Round-Trip-Time histogram between peers', RTT_BUCKETS, registry),
    };
  }

  /** A peer's series (by its raft id), made the first time it is seen or dialled (members join at runtime). */
  of(peer: number): PeerChildren {
    let p = this.peers.get(peer);
    if (!p) {
      const v = this.vecs;
      const remote = this.labelOf(peer);
      const link = { Local: hexId(this.self), Remote: remote };
      p = {
        sent: v.sent.child({ To: remote }),
        received: v.received.child({ From: remote }),
        sendFailures: v.failures.child({ To: remote }),
        active: v.active.child(link),
        disconnected: v.disconnected.child(link),
        rtt: v.rtt.child({ To: remote }),
      };
      this.peers.set(peer, p);
    }
    return p;
  }

  sent(peer: number, bytes: number): void {
    const p = this.of(peer);
    if (p) p.sent.value += bytes;
  }

  received(peer: number, bytes: number): void {
    const p = this.of(peer);
    if (p) p.received.value += bytes;
  }

  sendFailed(peer: number): void {
    const p = this.of(peer);
    if (p) p.sendFailures.value++;
  }

  roundTrip(peer: number, seconds: number): void {
    this.of(peer)?.rtt.observe(seconds);
  }

  connection(peer: number, up: boolean): void {
    const p = this.of(peer);
    if (!p) return;
    p.active.value = up ? 1 : 0;
    if (!up) p.disconnected.value++;
  }
}

/** go-grpc-prometheus's code labels: Go's codes.Code.String(), by code number. */
const GRPC_CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
] as const;

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** The counters of one gRPC method: plain numbers, bumped by the instrumented handlers. */
export interface GrpcMethodStats {
  started: FastCounter;
  received: FastCounter;
  sent: FastCounter;
  /** By code number (GRPC_CODE_NAMES). */
  handled: FastCounter[];
  seconds: HistogramCounts;
}

/** go-grpc-prometheus's server metrics, and etcd's client gRPC byte counters. */
export class GrpcServerMetrics {
  private readonly started: FastCounterVec;
  private readonly handled: FastCounterVec;
  private readonly received: FastCounterVec;
  private readonly sent: FastCounterVec;
  private readonly seconds: LatencyHistogramVec;
  private readonly sentBytesVec: FastCounterVec;
  private readonly receivedBytesVec: FastCounterVec;
  /** etcd_network_client_grpc_sent_bytes_total / _received_: the encoded messages' bytes. */
  readonly sentBytes: FastCounter;
  readonly receivedBytes: FastCounter;
  /** By type, service and method: a second server on the same member shares the counters. */
  private readonly methods = new Map<string, GrpcMethodStats>();

  constructor(registry: Registry) {
    this.started = new FastCounterVec('grpc_server_started_total', 'Total number of RPCs started on the server.', 'counter', registry);
    this.handled = new FastCounterVec(
      'grpc_server_handled_total',
      'Total number of RPCs completed on the server, regardless of success or failure.',
      'counter',
      registry,
    );
    this.received = new FastCounterVec('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', 'counter', registry);
    this.sent = new FastCounterVec('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', 'counter', registry);
    this.seconds = new LatencyHistogramVec(
      'grpc_server_handling_seconds',
      'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      GRPC_BUCKETS,
      registry,
    );
    this.sentBytesVec = new FastCounterVec('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.', 'counter', registry);
    this.receivedBytesVec = new FastCounterVec(
      'etcd_network_client_grpc_received_bytes_total',
      'The total number of bytes received from grpc clients.',
      'counter',
      registry,
    );
    this.sentBytes = this.sentBytesVec.child({});
    this.receivedBytes = this.receivedBytesVec.child({});
  }

  /** The counters of a method, every one at zero (as go-grpc-prometheus pre-registers them). */
  method(type: GrpcType, service: string, method: string): GrpcMethodStats {
    const key = `${type} ${service} ${method}`;
    let stats = this.methods.get(key);
    if (stats) return stats;
    const labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    stats = {
      started: this.started.child(labels),
      received: this.received.child(labels),
      sent: this.sent.child(labels),
      handled: GRPC_CODE_NAMES.map((code) => this.handled.child({ ...labels, grpc_code: code })),
      seconds: this.seconds.child(labels),
    };
    this.methods.set(key, stats);
    return stats;
  }
}

/** Figures read from the member when scraped. */
export interface MetricsSource {
  committedIndex(): number;
  appliedIndex(): number;
  dbSizeBytes(): Promise<number>;
  keys(): number;
  revision(): number;
  compactRevision(): number;
  watchers(): number;
  slowWatchers(): number;
}

export interface MetricsOptions {
  /** This member's id (etcd's, decimal). */
  id: string;
  /** A peer's label (its member id in hex) from its raft id. */
  peerLabel: (raftId: number) => string;
  /** etcd_server_version's and etcd_cluster_version's labels. */
  serverVersion: string;
  clusterVersion: string;
  /** etcd_server_quota_backend_bytes: the resolved --quota-backend-bytes (negative: no quota, as etcd reports it). */
  quotaBackendBytes: number;
}

export class Metrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private leader = 0;
  /** Proposals of this member waiting for their entry to be applied (etcd_server_proposals_pending). */
  pendingProposals = 0;

  readonly term = new Gauge({ name: 'qkv_server_raft_term', help: 'Current Raft term of this member.', registers: [this.registry] });
  readonly hasLeader = new Gauge({
    name: 'etcd_server_has_leader',
    help: 'Whether or not a leader exists. 1 is existence, 0 is not.',
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'etcd_server_is_leader',
    help: 'Whether or not this member is a leader. 1 if is, 0 otherwise.',
    registers: [this.registry],
  });
  readonly isLearner = new Gauge({
    name: 'etcd_server_is_learner',
    help: 'Whether or not this member is a learner. 1 if is, 0 otherwise.',
    registers: [this.registry],
  });
  readonly leaderChanges = new Counter({
    name: 'etcd_server_leader_changes_seen_total',
    help: 'The number of leader changes seen.',
    registers: [this.registry],
  });
  readonly proposalsFailed = new Counter({
    name: 'etcd_server_proposals_failed_total',
    help: 'The total number of failed proposals seen.',
    registers: [this.registry],
  });
  readonly slowApplies = new Counter({
    name: 'etcd_server_slow_apply_total',
    help: 'The total number of slow apply requests (likely overloaded from slow disk).',
    registers: [this.registry],
  });
  readonly snapshotApplyInProgress = new Gauge({
    name: 'etcd_server_snapshot_apply_in_progress_total',
    help: '1 if the server is applying the incoming snapshot. 0 if none.',
    registers: [this.registry],
  });
  readonly healthSuccess = new Counter({
    name: 'etcd_server_health_success',
    help: 'The total number of successful health checks',
    registers: [this.registry],
  });
  /** 1 while the data dir's filesystem has less free space than --disk-reserve-bytes (writes refused). */
  readonly diskSpaceLow = new Gauge({
    name: 'qkv_disk_space_low',
    help: "1 while the data dir's filesystem has less free space than the reserve and this member refuses writes.",
    registers: [this.registry],
  });
  readonly healthFailures = new Counter({ name: 'etcd_server_health_failures', help: 'The total number of failed health checks', registers: [this.registry] });
  readonly leaseGranted = new Counter({ name: 'etcd_debugging_lease_granted_total', help: 'The total number of granted leases.', registers: [this.registry] });
  readonly leaseRevoked = new Counter({ name: 'etcd_debugging_lease_revoked_total', help: 'The total number of revoked leases.', registers: [this.registry] });
  readonly leaseRenewed = new Counter({
    name: 'etcd_debugging_lease_renewed_total',
    help: 'The number of renewed leases seen by the leader.',
    registers: [this.registry],
  });
  readonly leaseExpired = new Counter({
    name: 'etcd_debugging_server_lease_expired_total',
    help: 'The total number of expired leases.',
    registers: [this.registry],
  });
  readonly fsyncSeconds = new LatencyHistogram(
    'etcd_disk_wal_fsync_duration_seconds',
    'The latency distributions of fsync called by WAL.',
    DISK_BUCKETS,
    this.registry,
  );
  /** The store's LevelDB batch write after each apply (etcd's bolt commit). */
  readonly backendCommitSeconds = new LatencyHistogram(
    'etcd_disk_backend_commit_duration_seconds',
    'The latency distributions of commit called by backend.',
    DISK_BUCKETS,
    this.registry,
  );
  readonly applySeconds = new LatencyHistogram(
    'qkv_server_apply_duration_seconds',
    'Latency of applying a batch of committed entries to the store.',
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly peers: PeerMetrics;
  readonly grpc: GrpcServerMetrics;

  constructor(opts: MetricsOptions) {
    const r = this.registry;
    new Gauge({
      name: 'etcd_server_id',
      help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      labelNames: ['server_id'],
      registers: [r],
    }).set({ server_id: hexId(opts.id) }, 1);
    new Gauge({
      name: 'etcd_server_version',
      help: "Which version is running. 1 for 'server_version' label with current version.",
      labelNames: ['server_version'],
      registers: [r],
    }).set({ server_version: opts.serverVersion }, 1);
    new Gauge({
      name: 'etcd_cluster_version',
      help: "Which version is running. 1 for 'cluster_version' label with current cluster version",
      labelNames: ['cluster_version'],
      registers: [r],
    }).set({ cluster_version: opts.clusterVersion }, 1);
    new Gauge({ name: 'etcd_server_quota_backend_bytes', help: 'Current backend storage quota size in bytes.', registers: [r] }).set(opts.quotaBackendBytes);
    const src = (): MetricsSource | undefined => this.source;
    new ScrapedGauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', r, () => src()?.committedIndex() ?? 0);
    new ScrapedGauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', r, () => src()?.appliedIndex() ?? 0);
    new ScrapedGauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', r, () => this.pendingProposals);
    // LevelDB has no allocated-but-free pages: in use is the whole size (as Status reports).
    const dbSize = (): Promise<number> => src()?.dbSizeBytes() ?? Promise.resolve(0);
    new ScrapedGauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', r, dbSize);
    new ScrapedGauge('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', r, dbSize);
    new ScrapedGauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', r, dbSize);
    new ScrapedGauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.', r, () => src()?.keys() ?? 0);
    new ScrapedGauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', r, () => src()?.revision() ?? 0);
    new ScrapedGauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', r, () => src()?.compactRevision() ?? 0);
    new ScrapedGauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', r, () => src()?.watchers() ?? 0);
    new ScrapedGauge('etcd_debugging_mvcc_slow_watcher_total', 'Total number of unsynced slow watchers.', r, () => src()?.slowWatchers() ?? 0);
    this.peers = new PeerMetrics(opts.id, opts.peerLabel, r);
    this.grpc = new GrpcServerMetrics(r);
    collectDefaultMetrics({ register: r });
  }

  /** Where the scrape-time figures come from (the member, once its Raft node and store are open). */
  bind(source: MetricsSource): void {
    this.source = source;
  }

  /** A Ready's soft state: etcd counts a leader change when a leader other than the last one appears. */
  softState(leader: number, isLeader: boolean, term: number): void {
    if (leader !== 0 && leader !== this.leader) this.leaderChanges.inc();
    this.leader = leader;
    this.hasLeader.set(leader !== 0 ? 1 : 0);
    this.isLeader.set(isLeader ? 1 : 0);
    this.term.set(term);
  }

  /** An applied batch took `seconds`. */
  applied(seconds: number): void {
    this.applySeconds.observe(seconds);
    if (seconds > SLOW_APPLY_SECONDS) this.slowApplies.inc();
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
