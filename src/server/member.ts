/**
 * Member: one qkv process. Wires the Raft node (durable log, timers, peer transport), the MVCC
 * store it applies to, the lessor, the watch hub, and exposes the etcd v3 operations that the
 * HTTP layer serves. Writes go through Raft; linearizable reads wait for a ReadIndex barrier;
 * serializable reads are served from local applied state.
 */
import { Buffer } from 'node:buffer';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { MvccStore, decodeRequest, encodeRequest, InvalidArgumentError, isTxnReadonly, NoSpaceError, validateTxn } from '../mvcc/index.js';
import type {
  AlarmMember,
  AlarmRequest,
  AlarmResponse,
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
} from '../api/kv.js';
import type { ApplyEntry, ApplyResult, HashKVResult, MvccRequest, MvccResponse, StoreHashResult } from '../mvcc/types.js';
import { Lessor, MAX_LEASE_TTL } from '../lease/lessor.js';
import { LeaseNotFoundError, LeaseTTLTooLargeError } from '../lease/errors.js';
import { WatchHub } from '../watch/hub.js';
import { StoreWatchSource } from '../watch/store_source.js';
import type { LogStore } from '../wal/log_store.js';
import { openRaftLog } from '../wal/wal.js';
import type { Entry, Snapshot } from '../raft/types.js';
import { StateRole } from '../raft/types.js';
import type { ApiHeader, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseTimeToLiveResponse, Member as MemberInfo, StatusResponse } from '../api/types.js';
import { RaftNode, type StateMachine } from './raft_node.js';
import { PeerTransport } from './transport.js';
import { hostPort, type ClusterConfig, type MemberConfig } from './config.js';
import { Metrics } from './metrics.js';
import { NoLeaderError, RequestTimedOutError, ServerStoppedError } from './errors.js';
import { InternalError } from '../errors.js';
import { requestTimeoutMs, Retry } from './leader.js';
import { ProposalDroppedError, ReadIndexDroppedError } from '../raft/errors.js';
import { fetchSnapshot } from './snapshot_client.js';
import { ETCD_SERVER_VERSION } from '../version.js';
import { BackendQuota, MAX_RECOMMENDED_QUOTA_BYTES, quotaCost, storeFileBytes, type QuotaRequest } from './quota.js';

/** etcd's default --max-txn-ops. */
const MAX_TXN_OPS = 128;

export interface MemberOptions {
  cluster: ClusterConfig;
  self: MemberConfig;
  logger: Logger;
  /**
   * How long a request may wait for a leader, Raft, or the leader's answer (ms); default etcd's
   * request timeout (leader.ts).
   */
  requestTimeoutMs?: number;
  /**
   * Addresses to dial peers at instead of their peer URLs, by member id: lets a test put a
   * fault-injecting proxy on each directed link (this member -> that peer).
   */
  peerDialOverrides?: Map<number, { host: string; port: number }>;
}

/** A stable cluster id derived from the member list, as etcd derives it from the initial cluster. */
function clusterIdOf(cfg: ClusterConfig): string {
  let h = 0xcbf29ce484222325n;
  for (const m of [...cfg.members].sort((a, b) => a.id - b.id)) {
    for (const ch of `${m.id}=${m.peerUrl};`) {
      h ^= BigInt(ch.charCodeAt(0));
      h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
  }
  return h.toString();
}

/** The Raft snapshot data: where to fetch the store from (the state itself is streamed on demand). */
interface SnapshotMarker {
  memberId: number;
}

/** Bytes of the files in a directory (the store's LevelDB files): what `du` would count. */
const dirBytes = async (dir: string): Promise<number> => (await storeFileBytes(dir)).total;

/** An alarm as etcd prints AlarmMember (proto text: zero fields left out, each followed by a space). */
function alarmText(a: AlarmMember): string {
  return `${a.memberId !== '0' ? `memberID:${a.memberId} ` : ''}${a.alarm !== 'NONE' ? `alarm:${a.alarm} ` : ''}`;
}

/** An apply result of another kind than the request's: a bug, reported as Internal (never as the client's InvalidArgument). */
const unexpectedResult = (kind: string): InternalError => new InternalError(`qkv: unexpected apply result (no ${kind} response)`);

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimedOutError()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Member implements StateMachine {
  readonly id: number;
  readonly clusterId: string;
  readonly metrics: Metrics;
  readonly lessor: Lessor;
  readonly hub: WatchHub;
  raft!: RaftNode;
  store!: MvccStore;
  private logStore!: LogStore;
  private transport!: PeerTransport;
  private readonly source: StoreWatchSource;
  readonly requestTimeoutMs: number;
  private leaseTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private revoking = new Set<number>();
  /** Requests waiting for a leader to be known: woken on every change of leader, and on stop. */
  private readonly leaderWaiters = new Set<() => void>();
  private stopped = false;
  /** This member's space quota over its own store (etcd's --quota-backend-bytes). */
  private readonly quota: BackendQuota;

  private constructor(readonly opts: MemberOptions) {
    this.id = opts.self.id;
    this.clusterId = clusterIdOf(opts.cluster);
    this.metrics = new Metrics({
      id: this.id,
      members: opts.cluster.members.map((m) => m.id),
      serverVersion: ETCD_SERVER_VERSION,
      clusterVersion: '3.4',
      quotaBackendBytes: opts.cluster.quotaBackendBytes,
    });
    this.requestTimeoutMs = opts.requestTimeoutMs ?? requestTimeoutMs(opts.cluster);
    const electionMs = opts.cluster.tickMs * opts.cluster.electionTicks;
    // etcd: leases must outlive an election: min TTL = ceil(1.5 x election timeout).
    this.lessor = new Lessor({ minTtlSeconds: Math.ceil((1.5 * electionMs) / 1000) });
    this.source = new StoreWatchSource();
    this.hub = new WatchHub(this.source);
    this.quota = new BackendQuota({ quotaBytes: opts.cluster.quotaBackendBytes, measure: () => dirBytes(this.kvDir) });
    if (!this.quota.enabled) this.log.info('backend quota disabled');
    else if (this.quota.quotaBytes > MAX_RECOMMENDED_QUOTA_BYTES)
      this.log.warn({ quotaBytes: this.quota.quotaBytes }, 'backend quota exceeds the recommended maximum (8 GiB)');
  }

  get log(): Logger {
    return this.opts.logger;
  }

  private get kvDir(): string {
    return path.join(this.opts.self.dataDir, 'kv');
  }

  static async start(opts: MemberOptions): Promise<Member> {
    const m = new Member(opts);
    await m.open();
    return m;
  }

  private async open(): Promise<void> {
    const dataDir = this.opts.self.dataDir;
    await mkdir(dataDir, { recursive: true });
    // A restore that did not finish leaves a staging directory: it is worthless. A crash in the
    // middle of the directory swap leaves the previous store as kv.old: put it back.
    await rm(path.join(dataDir, 'kv.staging'), { recursive: true, force: true });
    if (!existsSync(this.kvDir) && existsSync(path.join(dataDir, 'kv.old'))) await rename(path.join(dataDir, 'kv.old'), this.kvDir);
    this.logStore = await openRaftLog(dataDir);
    await this.openStore();
    const cfg = this.opts.cluster;
    const peers = new Map(cfg.members.map((m) => [m.id, this.opts.peerDialOverrides?.get(m.id) ?? hostPort(m.peerUrl)]));
    this.transport = new PeerTransport({
      id: this.id,
      listen: hostPort(this.opts.self.peerUrl),
      peers,
      onMessage: (msg) => this.raft.receive(msg),
      onError: (err, peer) => this.log.debug({ err: err.message, peer }, 'peer transport error'),
      stats: this.metrics.peers,
    });
    this.raft = new RaftNode({
      id: this.id,
      peers: cfg.members.map((m) => m.id),
      logStore: this.logStore,
      stateMachine: this,
      transport: this.transport,
      tickMs: cfg.tickMs,
      raft: { electionTick: cfg.electionTicks, heartbeatTick: cfg.heartbeatTicks },
      snapshotEvery: cfg.snapshotEvery,
      snapshotCatchUpEntries: cfg.snapshotCatchUpEntries,
      proposalTimeoutMs: this.requestTimeoutMs,
    });
    this.raft.on('softState', (ss) => this.onSoftState(ss.leader, ss.role));
    this.raft.on('fsync', (ms) => {
      this.metrics.fsyncSeconds.observe(ms / 1000);
      if (ms > 1000) this.log.warn({ ms }, 'slow fsync');
    });
    this.metrics.bind({
      committedIndex: () => this.raft.status().commit,
      appliedIndex: () => this.store.appliedIndex,
      // The directory is briefly missing while a restored store is swapped in.
      dbSizeBytes: () => dirBytes(this.kvDir).catch(() => 0),
      keys: () => this.store.keyCount,
      revision: () => this.store.revision,
      compactRevision: () => this.store.compactRevision,
      watchers: () => this.hub.size,
      slowWatchers: () => this.hub.unsyncedCount,
    });
    this.raft.on('fatal', (err) => this.log.fatal({ err }, 'raft node stopped after a storage failure'));
    await this.transport.start();
    await this.raft.start();
    this.leaseTimer = setInterval(() => void this.expireLeases(), 500);
    this.progressTimer = setInterval(() => this.hub.progressNotify(), 10 * 60 * 1000);
    this.log.info({ member: this.opts.self.name, id: this.id, applied: this.store.appliedIndex, revision: this.store.revision }, 'member started');
  }

  private async openStore(): Promise<void> {
    // The store checks a put's lease against its own replicated lease table (same batch, same answer everywhere).
    this.store = await MvccStore.open(this.kvDir, { onBatchWritten: (ms) => this.metrics.backendCommitSeconds.observe(ms / 1000) });
    this.lessor.load(await this.store.leases());
    this.source.attach(this.store);
  }

  // ---- StateMachine (called by the Raft node's Ready loop) -------------------------------

  appliedIndex(): number {
    return this.store.appliedIndex;
  }

  async apply(entries: Entry[]): Promise<unknown[]> {
    const batch: ApplyEntry[] = entries.map((e) => {
      if (e.data.byteLength === 0) return { index: e.index };
      try {
        return { index: e.index, request: decodeRequest(e.data) };
      } catch {
        // Not a request we can read: applied as a no-op on every member alike.
        return { index: e.index };
      }
    });
    const started = performance.now();
    // Answered as soon as the batch is visible to reads; its LevelDB write goes on behind (the
    // Raft log already holds it durably, and the next batch waits for it). A write that fails
    // after that stops the node, as a failed apply does.
    const results = await new Promise<ApplyResult[]>((resolve, reject) => {
      this.store.applyBatch(batch, resolve).catch((err: Error) => {
        reject(err);
        this.raft.fail(err);
      });
    });
    this.metrics.applied((performance.now() - started) / 1000);
    batch.forEach((e, i) => this.afterApply(e, results[i]!));
    return results;
  }

  /** Mirrors applied lease changes into the lessor (which only adds expiry on top). */
  private afterApply(e: ApplyEntry, r: ApplyResult): void {
    if (r.status !== 'ok' || !e.request) return;
    if ('leaseGrant' in e.request) {
      this.lessor.grant(e.request.leaseGrant.id, e.request.leaseGrant.ttl);
      this.metrics.leaseGranted.inc();
    } else if ('leaseRevoke' in e.request && this.lessor.has(e.request.leaseRevoke.id)) {
      this.lessor.revoke(e.request.leaseRevoke.id);
      this.metrics.leaseRevoked.inc();
    }
  }

  async snapshot(): Promise<Uint8Array> {
    // Peers stream the store from LevelDB: it must hold everything up to the snapshot's index;
    // and the Raft log drops entries behind it, so that much must survive a power loss too.
    await this.store.durable();
    const marker: SnapshotMarker = { memberId: this.id };
    return Buffer.from(JSON.stringify(marker));
  }

  /**
   * Replaces the store with a peer's: streamed from the member named in the snapshot, or, if it
   * is gone, from the leader or any other member whose store is at least as new as the snapshot.
   */
  async restore(snapshot: Snapshot): Promise<void> {
    this.metrics.snapshotApplyInProgress.set(1);
    try {
      await this.restoreStore(snapshot);
    } finally {
      this.metrics.snapshotApplyInProgress.set(0);
    }
  }

  private async restoreStore(snapshot: Snapshot): Promise<void> {
    const marker = JSON.parse(Buffer.from(snapshot.data).toString()) as SnapshotMarker;
    const others = this.opts.cluster.members.filter((m) => m.id !== this.id);
    const order = [marker.memberId, this.raft.leader];
    const candidates = [...others].sort((a, b) => {
      const ra = order.indexOf(a.id);
      const rb = order.indexOf(b.id);
      return (ra < 0 ? 9 : ra) - (rb < 0 ? 9 : rb);
    });
    const staging = path.join(this.opts.self.dataDir, 'kv.staging');
    const started = performance.now();
    let applied = -1;
    let from = '';
    const failures: string[] = [];
    for (const m of candidates) {
      await rm(staging, { recursive: true, force: true });
      try {
        const restored = await MvccStore.restore(staging, fetchSnapshot(m.clientUrl));
        applied = restored.appliedIndex;
        await restored.close();
      } catch (err) {
        failures.push(`${m.name}: ${(err as Error).message}`);
        continue;
      }
      if (applied >= snapshot.metadata.index) {
        from = m.name;
        break;
      }
      failures.push(`${m.name}: store at ${applied} is older than the Raft snapshot at ${snapshot.metadata.index}`);
    }
    if (!from) throw new Error(`no member could provide a store snapshot at ${snapshot.metadata.index}: ${failures.join('; ')}`);
    this.source.detach();
    await this.store.close();
    const old = path.join(this.opts.self.dataDir, 'kv.old');
    await rm(old, { recursive: true, force: true });
    await rename(this.kvDir, old);
    await rename(staging, this.kvDir);
    await rm(old, { recursive: true, force: true });
    await this.openStore();
    // Watchers replay from the new store's history (or are canceled if it was compacted).
    this.hub.resyncAll();
    this.log.info({ from, applied, ms: Math.round(performance.now() - started) }, 'restored store from snapshot');
  }

  // ---- leadership ------------------------------------------------------------------------

  private onSoftState(leader: number, role: StateRole): void {
    const wasLeader = this.lessor.isPrimary;
    this.metrics.softState(leader, role === StateRole.Leader, this.raft.status().term);
    if (role === StateRole.Leader && !wasLeader) {
      // A new leader first gives every lease a fresh TTL (plus an election's time), so no lease
      // kept alive through the old leader expires during the failover.
      this.lessor.promote(this.opts.cluster.tickMs * this.opts.cluster.electionTicks);
    } else if (role !== StateRole.Leader && wasLeader) {
      this.lessor.demote();
    }
    this.log.info({ leader, role, term: this.raft.status().term }, 'raft state changed');
    if (leader !== 0) for (const wake of [...this.leaderWaiters]) wake();
  }

  private async expireLeases(): Promise<void> {
    if (this.stopped || !this.lessor.isPrimary) return;
    // Bounded per round, like etcd's lease revoke rate.
    for (const id of this.lessor.expired(500)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.metrics.leaseExpired.inc();
      this.propose({ leaseRevoke: { id } })
        .catch((err: Error) => this.log.debug({ id, err: err.message }, 'lease revoke failed; retrying'))
        .finally(() => this.revoking.delete(id));
    }
  }

  // ---- operations ------------------------------------------------------------------------

  header(revision = this.store.revision): ApiHeader {
    return { clusterId: this.clusterId, memberId: String(this.id), revision, raftTerm: this.raft.status().term };
  }

  /** The deadline (performance.now() clock) of a request that starts now. */
  requestDeadline(): number {
    return performance.now() + this.requestTimeoutMs;
  }

  /**
   * The leader's id once one is known, waiting for an election until `deadline` if need be (as
   * etcd's waitLeader): fails with "no leader" at the deadline, "server stopped" on stop.
   */
  async waitForLeader(deadline: number): Promise<number> {
    for (;;) {
      if (this.stopped) throw new ServerStoppedError();
      const leader = this.raft.leader;
      if (leader !== 0 && this.opts.cluster.members.some((m) => m.id === leader)) return leader;
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new NoLeaderError();
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.leaderWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, remaining);
        this.leaderWaiters.add(wake);
      });
    }
  }

  /**
   * Where a request only the leader can answer must go: undefined when this member is the
   * leader, else the leader's client URL, once there is a leader (waiting until `deadline`).
   */
  async leaderClientUrl(deadline = this.requestDeadline()): Promise<string | undefined> {
    if (this.raft.isLeader) return undefined;
    const leader = await this.waitForLeader(deadline);
    if (this.raft.isLeader) return undefined;
    return this.opts.cluster.members.find((x) => x.id === leader)!.clientUrl;
  }

  private async propose(req: MvccRequest): Promise<MvccResponse> {
    const data = encodeRequest(req);
    const retry = new Retry(this.requestDeadline());
    let result: unknown;
    this.metrics.pendingProposals++;
    try {
      for (;;) {
        try {
          // As etcd's raft node holds proposals while there is no leader (until the deadline).
          await this.waitForLeader(retry.deadline);
          result = await withTimeout(this.raft.propose(data), Math.max(1, retry.remainingMs));
          break;
        } catch (err) {
          // A dropped proposal never entered the log (the leader was lost, or is handing over):
          // proposing it again cannot apply it twice.
          if (err instanceof ProposalDroppedError && (await retry.pause())) continue;
          this.metrics.proposalsFailed.inc();
          throw err;
        }
      }
    } finally {
      this.metrics.pendingProposals--;
    }
    const r = result as ApplyResult;
    if (r.status === 'error') throw r.error;
    if (r.status === 'skipped') throw new InternalError('etcdserver: entry applied twice');
    return r.response;
  }

  /**
   * Waits until local state reflects every write acknowledged before the call: a ReadIndex
   * once there is a leader (waiting for one within the request timeout), asked again if the
   * read was dropped by a change of leader.
   */
  async linearizableBarrier(): Promise<void> {
    const retry = new Retry(this.requestDeadline());
    for (;;) {
      try {
        await this.waitForLeader(retry.deadline);
        await this.raft.readBarrier(Math.max(1, retry.remainingMs));
        return;
      } catch (err) {
        if ((err instanceof ReadIndexDroppedError || err instanceof ProposalDroppedError) && (await retry.pause())) continue;
        throw err;
      }
    }
  }

  async range(req: RangeRequest): Promise<RangeResponse> {
    if (!req.serializable) await this.linearizableBarrier();
    return this.store.range(req);
  }

  /**
   * etcd's quotaAlarmer: a write that would take this member's store past its quota is refused
   * before it is proposed, and raises NOSPACE for this member through Raft (waited for, as
   * etcd does, so that the alarm is listed once the write has been refused; its own failure is
   * not the client's error).
   */
  async checkQuota(req: QuotaRequest): Promise<void> {
    if (await this.quota.fits(quotaCost(req))) return;
    await this.propose({ alarm: { action: 'ACTIVATE', memberId: String(this.id), alarm: 'NOSPACE' } }).catch((err: Error) =>
      this.log.warn({ err: err.message }, 'could not raise the NOSPACE alarm'),
    );
    throw new NoSpaceError();
  }

  async put(req: PutRequest): Promise<PutResponse> {
    await this.checkQuota({ put: req });
    const r = await this.propose({ put: req });
    if (!('put' in r)) throw unexpectedResult('put');
    return r.put;
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const r = await this.propose({ deleteRange: req });
    if (!('deleteRange' in r)) throw unexpectedResult('deleteRange');
    return r.deleteRange;
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    // etcd's --max-txn-ops: refused before it reaches the log.
    validateTxn(req, MAX_TXN_OPS);
    if (isTxnReadonly(req)) {
      // A read-only txn is a read: no proposal, as in etcd.
      await this.linearizableBarrier();
      return this.store.readTxn(req);
    }
    await this.checkQuota({ txn: req });
    const r = await this.propose({ txn: req });
    if (!('txn' in r)) throw unexpectedResult('txn');
    return r.txn;
  }

  async compact(req: CompactionRequest): Promise<{ revision: number }> {
    const r = await this.propose({ compaction: { revision: req.revision } });
    if (!('compaction' in r)) throw unexpectedResult('compaction');
    if (req.physical) await this.store.compactionDone();
    return r.compaction.header;
  }

  async leaseGrant(ttl: number, requestedId: number): Promise<LeaseGrantResponse> {
    if (ttl > MAX_LEASE_TTL) throw new LeaseTTLTooLargeError();
    let id = requestedId;
    if (id === 0) {
      // A random id below 2^52 (exact as a JS number), not in use.
      do id = Number(randomBytes(8).readBigUInt64LE(0) & 0xfffffffffffffn) || 1;
      while (this.lessor.has(id));
    }
    if (id < 0) throw new InvalidArgumentError('lease ID must be positive');
    const effective = Math.max(ttl, this.lessor.minTtlSeconds);
    await this.checkQuota({ leaseGrant: {} });
    const r = await this.propose({ leaseGrant: { id, ttl: effective } });
    if (!('leaseGrant' in r)) throw unexpectedResult('leaseGrant');
    return { header: this.header(r.leaseGrant.header.revision), id, ttl: effective };
  }

  async leaseRevoke(id: number): Promise<{ revision: number }> {
    const r = await this.propose({ leaseRevoke: { id } });
    if (!('leaseRevoke' in r)) throw unexpectedResult('leaseRevoke');
    return r.leaseRevoke.header;
  }

  /** Leader only (the HTTP layer forwards). TTL 0 when the lease is gone, as etcd answers. */
  leaseKeepAlive(id: number): LeaseKeepAliveResponse {
    try {
      const ttl = this.lessor.renew(id);
      this.metrics.leaseRenewed.inc();
      return { header: this.header(), id, ttl };
    } catch (err) {
      if (err instanceof LeaseNotFoundError) return { header: this.header(), id, ttl: 0 };
      throw err;
    }
  }

  /** Leader only (the HTTP layer forwards): remaining TTL is known to the leader alone. */
  async leaseTimeToLive(id: number, keys: boolean): Promise<LeaseTimeToLiveResponse> {
    const ttl = this.lessor.timeToLive(id);
    if (!ttl) return { header: this.header(), id, ttl: -1, grantedTtl: 0, keys: [] };
    return { header: this.header(), id, ttl: ttl.ttl, grantedTtl: ttl.grantedTtl, keys: keys ? await this.store.leaseKeys(id) : [] };
  }

  leaseLeases(): { id: number }[] {
    return this.lessor.ids().map((id) => ({ id }));
  }

  members(): MemberInfo[] {
    return this.opts.cluster.members.map((m) => ({ id: String(m.id), name: m.name, peerUrls: [m.peerUrl], clientUrls: [m.clientUrl] }));
  }

  async status(): Promise<StatusResponse> {
    const st = this.raft.status();
    const files = await storeFileBytes(this.kvDir);
    const dbSize = files.total;
    return {
      header: this.header(),
      version: ETCD_SERVER_VERSION,
      dbSize,
      leader: String(st.leader),
      raftIndex: st.lastIndex,
      raftTerm: st.term,
      raftAppliedIndex: this.store.appliedIndex,
      // As etcd: every active alarm, in its text form.
      errors: this.store.alarms().map(alarmText),
      // etcd's is the bbolt file less its free pages. LevelDB's nearest: its estimate of the
      // tables' bytes over the whole key range plus the write-ahead log (the newest data, not in
      // a table yet), which leaves out its bookkeeping files; never above dbSize, as etcd's.
      dbSizeInUse: Math.min(dbSize, (await this.store.approximateSize()) + files.writeAheadLog),
    };
  }

  async hashKV(revision: number): Promise<HashKVResult> {
    return this.store.hashKV(revision);
  }

  /** etcd Maintenance.Hash: the whole store (see MvccStore.hash). */
  async hash(): Promise<StoreHashResult> {
    return this.store.hash();
  }

  /**
   * etcd Maintenance.Alarm. ACTIVATE and DEACTIVATE are applied through Raft (any member id,
   * as etcd: 0 or one not in the cluster too); GET reads the applied alarms after a ReadIndex
   * barrier (etcd sends it through Raft: the same linearizable answer).
   */
  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    if (req.action === 'GET') {
      await this.linearizableBarrier();
      return { header: { revision: this.store.revision }, alarms: this.store.alarms(req.alarm) };
    }
    const r = await this.propose({ alarm: req });
    if (!('alarm' in r)) throw unexpectedResult('alarm');
    return r.alarm;
  }

  /**
   * etcd Maintenance.Defragment, on this member only (as etcd's): LevelDB rewrites its tables
   * without the compacted history and deleted keys (MvccStore.defragment). The quota is
   * measured again at once, so that writes fit again as soon as the alarm is disarmed.
   */
  async defragment(): Promise<{ beforeBytes: number; afterBytes: number }> {
    const started = performance.now();
    const beforeBytes = await dirBytes(this.kvDir);
    this.log.info({ beforeBytes }, 'defragmenting the store');
    await this.store.defragment();
    const afterBytes = await this.quota.remeasure();
    this.log.info({ beforeBytes, afterBytes, ms: Math.round(performance.now() - started) }, 'defragmented the store');
    return { beforeBytes, afterBytes };
  }

  /** Healthy: a leader is known and this member has applied what it knows to be committed. */
  health(): { health: boolean; reason?: string } {
    const st = this.raft.status();
    if (st.leader === 0) return { health: false, reason: 'no leader' };
    if (this.store.appliedIndex < st.commit) return { health: false, reason: `applied ${this.store.appliedIndex} < commit ${st.commit}` };
    return { health: true };
  }

  transferLeadership(to: number): void {
    this.raft.transferLeadership(to);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const wake of [...this.leaderWaiters]) wake();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.hub.stop();
    await this.raft.stop();
    await this.transport.stop();
    await this.store.close();
    await this.logStore.close();
    this.log.info({ member: this.opts.self.name }, 'member stopped');
  }
}
