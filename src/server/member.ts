/**
 * Member: one qkv process. Wires the Raft node (durable log, timers, peer transport), the MVCC
 * store it applies to, the lessor, the watch hub, and exposes the etcd v3 operations that the
 * HTTP layer serves. Writes go through Raft; linearizable reads wait for a ReadIndex barrier;
 * serializable reads are served from local applied state.
 */
import { Buffer } from 'node:buffer';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type http from 'node:http';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  AdminPermissionDeniedError,
  AdminUserEmptyError,
  AuthUserEmptyError,
  checkAccess,
  checkAdmin,
  decodeEntryRequest,
  findUser,
  InvalidAuthTokenError,
  encodeRequest,
  InvalidArgumentError,
  isTxnReadonly,
  MvccStore,
  NoSpaceError,
  PermissionDeniedError,
  StoreFileCorruptError,
  txnNeeds,
  validateTxn,
} from '../mvcc/index.js';
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
import type {
  ApplyEntry,
  ApplyResult,
  AuthRecord,
  AuthRequest,
  Caller,
  ClusterRecord,
  HashKVResult,
  MemberChangeRequest,
  MemberRecord,
  MvccRequest,
  MvccResponse,
  StoreHashResult,
} from '../mvcc/types.js';
import { Lessor, MAX_LEASE_TTL } from '../lease/lessor.js';
import { LeaseNotFoundError, LeaseTTLTooLargeError } from '../lease/errors.js';
import { WatchHub } from '../watch/hub.js';
import { StoreWatchSource } from '../watch/store_source.js';
import type { LogStore } from '../wal/log_store.js';
import { openRaftLog } from '../wal/wal.js';
import type { ConfChange, Entry, Snapshot } from '../raft/types.js';
import { EntryType, StateRole } from '../raft/types.js';
import { decodeConfChange } from '../raft/confchange.js';
import type { ApiHeader, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseTimeToLiveResponse, Member as MemberInfo, StatusResponse } from '../api/types.js';
import { RaftNode, type StateMachine } from './raft_node.js';
import { PeerTransport, type PeerHello } from './transport.js';
import { ConfigError, hostPort, type ClusterConfig, type MemberConfig } from './config.js';
import { Metrics } from './metrics.js';
import { ClusterMismatchError, MemberRemovedError, NoLeaderError, RequestTimedOutError, ServerStoppedError } from './errors.js';
import { clusterIdOf } from './member_id.js';
import { InternalError } from '../errors.js';
import { requestTimeoutMs, Retry } from './leader.js';
import { ProposalDroppedError, ReadIndexDroppedError } from '../raft/errors.js';
import { CHECKPOINT_PREFIX, fetchStoreInto, recordStreamFrames, SNAPSHOT_PATH, snapshotFrames, STREAM_HEADER } from './snapshot_client.js';
import { syncDir } from '../sync_dir.js';
import type { PortTls, TlsCredentials } from '../tls.js';
import { ETCD_SERVER_VERSION } from '../version.js';
import { Authenticator, type JwtKeys } from './auth.js';
import { BackendQuota, MAX_RECOMMENDED_QUOTA_BYTES, quotaCost, storeFileBytes, type QuotaRequest } from './quota.js';
import { DiskSpaceGuard } from './disk_space.js';
import { bootstrapCluster, IDENTITY_FILE, writeIdentityFile, type MemberIdentity } from './identity.js';

/** The keys of --auth-token jwt, read once at start (a bad file stops the member there). */
function jwtKeysOf(t: ClusterConfig['authToken']): { jwt?: JwtKeys } {
  if (t.kind !== 'jwt') return {};
  const read = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`--auth-token: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return {
    jwt: {
      publicKey: createPublicKey(read(t.publicKeyFile)),
      ...(t.privateKeyFile ? { privateKey: createPrivateKey(read(t.privateKeyFile)) } : {}),
      signMethod: t.signMethod,
      ttlSeconds: t.ttlSeconds,
    },
  };
}

/** The member's own proposals (its lease expiry): never refused by permissions. */
const MEMBER_CALLER: Caller = { member: true };

/** etcd's default --max-txn-ops. */
const MAX_TXN_OPS = 128;

/** How long a member whose store is corrupt tries its peers for a copy before refusing to start (the others may be starting too). */
const RECOVERY_DEADLINE_MS = 60_000;
/** A store that failed its check, moved aside as kv.corrupt-<ms since epoch> (the newest one kept). */
const CORRUPT_PREFIX = 'kv.corrupt-';

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
   * Where to dial a peer instead of its peer URL (by its peer URL, or its name in the initial
   * cluster), undefined for the URL itself: lets a test put a fault-injecting proxy on each
   * directed link (this member -> that peer), members added at runtime included.
   */
  peerDial?: (peerUrl: string, name: string | undefined) => { host: string; port: number } | undefined;
  /**
   * The membership of the running cluster this member joins (--initial-cluster-state existing,
   * read from a peer's /members): seeds an empty data dir, and names this member's id.
   */
  join?: ClusterRecord;
  /** The member's TLS (https:// URLs): the client port's credentials (also shown when it forwards to the leader's client port), and the peer port's mutual TLS. */
  tls?: { client?: PortTls; peer?: PortTls };
}

const sameStrings = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** A member record as the API's Member. */
export function memberInfo(m: MemberRecord): MemberInfo {
  return { id: m.id, name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: m.isLearner };
}

/** The store's request of a conf change entry: its context, as membership.ts proposed it. */
function memberChangeOf(cc: ConfChange | undefined): MemberChangeRequest {
  if (!cc?.context) throw new InvalidArgumentError('conf change without a member');
  const v = JSON.parse(Buffer.from(cc.context).toString()) as MemberChangeRequest;
  if (v.member?.raftId !== cc.nodeId) throw new InvalidArgumentError("conf change whose member is not the change's node");
  return v;
}

/** The Raft snapshot data: where to fetch the store from (the state itself is streamed on demand). */
interface SnapshotMarker {
  /** The raft id of the member that took it. */
  raftId: number;
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
  // One promise and a timer, no race or finally: every proposal passes here, and those two
  // made it the largest allocation of a put after the HTTP/2 stream itself.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RequestTimedOutError()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export class Member implements StateMachine {
  /** etcd's 64-bit member id, decimal. */
  readonly id: string;
  /** This member's id in the Raft core (MemberRecord.raftId), from the seeded membership. */
  raftId = 0;
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
  /** Calls waiting for this member's removal (or a peer's refusal): the process stops then. */
  private readonly removedListeners = new Set<(err: Error) => void>();
  private removal: Error | undefined;
  /** This member's space quota over its own store (etcd's --quota-backend-bytes). */
  private readonly quota: BackendQuota;
  /** The free space of the data dir's filesystem (--disk-reserve-bytes). */
  private readonly diskSpace: DiskSpaceGuard;
  /** Tokens, password checks and the guessing bound (auth.ts); the users and roles are the store's. */
  readonly authn: Authenticator;

  private constructor(
    readonly opts: MemberOptions,
    identity: MemberIdentity,
  ) {
    this.id = identity.id;
    this.metrics = new Metrics({
      id: this.id,
      peerLabel: (raftId) => {
        const id = this.memberIdOfRaft(raftId);
        return id === undefined ? `raft-${raftId}` : BigInt(id).toString(16);
      },
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
    this.authn = new Authenticator({ auth: () => this.authState(), tokenTtlSeconds: opts.cluster.authTokenTtl, ...jwtKeysOf(opts.cluster.authToken) });
    this.quota = new BackendQuota({ quotaBytes: opts.cluster.quotaBackendBytes, measure: () => dirBytes(this.kvDir) });
    this.diskSpace = new DiskSpaceGuard({
      dir: opts.self.dataDir,
      reserveBytes: opts.cluster.diskReserveBytes,
      onLow: (freeBytes, first) => {
        if (first) {
          this.log.error(
            { freeBytes, reserveBytes: opts.cluster.diskReserveBytes, dir: opts.self.dataDir },
            "disk space low: raising NOSPACE, writes are refused until space is freed on this member's data dir",
          );
          this.metrics.diskSpaceLow.set(1);
        }
        if (!this.hasOwnNoSpaceAlarm()) void this.proposeNoSpace('ACTIVATE');
      },
      onRecovered: (freeBytes) => {
        this.log.info({ freeBytes }, 'disk space freed: clearing the NOSPACE alarm this member raised, writes resume');
        this.metrics.diskSpaceLow.set(0);
        if (this.hasOwnNoSpaceAlarm()) void this.proposeNoSpace('DEACTIVATE');
      },
    });
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
    await mkdir(opts.self.dataDir, { recursive: true });
    const m = new Member(opts, await Member.identity(opts));
    await m.open();
    return m;
  }

  /**
   * This member's id and cluster: as its data dir recorded them at its first start, else from
   * the cluster it joins (the member added with its peer URL), else derived (a new cluster).
   */
  private static async identity(opts: MemberOptions): Promise<MemberIdentity> {
    const file = path.join(opts.self.dataDir, IDENTITY_FILE);
    let recorded: MemberIdentity | undefined;
    try {
      recorded = JSON.parse(await readFile(file, 'utf8')) as MemberIdentity;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new InternalError(`qkv: cannot read ${file}: ${(err as Error).message}`);
    }
    if (recorded) {
      if (typeof recorded.id === 'number') {
        // qkv before 64-bit member ids kept 53 bits: such a member's peers and store disagree with etcd's ids.
        throw new InternalError(`qkv: ${file} has a 53-bit member id of an older qkv: start this member on an empty data dir (remove and add it again)`);
      }
      if (typeof recorded.id !== 'string' || !/^[1-9]\d{0,19}$/.test(recorded.id) || typeof recorded.clusterId !== 'string')
        throw new InternalError(`qkv: ${file} is not a member identity`);
      return recorded;
    }
    let identity: MemberIdentity;
    if (opts.join) {
      const self = opts.join.members.find((m) => m.peerUrls.includes(opts.self.peerUrl));
      if (!self) {
        throw new ClusterMismatchError(
          `no member of cluster ${BigInt(opts.join.id).toString(16)} has the peer URL ${opts.self.peerUrl}: add it first (member add --peer-urls=${opts.self.peerUrl})`,
        );
      }
      identity = { id: self.id, clusterId: opts.join.id };
    } else {
      identity = { id: opts.self.id, clusterId: clusterIdOf(opts.cluster.members.map((m) => m.id)) };
    }
    return identity;
  }

  /**
   * Records the identity, once the membership it belongs with is seeded: a data dir with this
   * file has its membership, and every later start takes the same identity.
   */
  private async recordIdentity(): Promise<void> {
    if (existsSync(path.join(this.opts.self.dataDir, IDENTITY_FILE))) return;
    await writeIdentityFile(this.opts.self.dataDir, { id: this.id, clusterId: this.cluster().id });
  }

  /** The applied membership (seeded before the Raft node starts). */
  cluster(): ClusterRecord {
    const c = this.store.cluster();
    if (!c) throw new InternalError('qkv: the membership was not seeded');
    return c;
  }

  /** The member id (decimal) of a raft id, in the applied membership (undefined: none, or not known yet). */
  memberIdOfRaft(raftId: number): string | undefined {
    return this.store?.clusterMember((m) => m.raftId === raftId)?.id;
  }

  /** The raft id of a member id (decimal), in the applied membership. */
  raftIdOf(memberId: string): number | undefined {
    return this.store?.clusterMember((m) => m.id === memberId)?.raftId;
  }

  /** This member is a learner in its applied membership (one not yet in it, still catching up, is not: etcd's IsMemberExist && IsLearner). */
  get isLearner(): boolean {
    return this.store.clusterMember((m) => m.id === this.id)?.isLearner === true;
  }

  get clusterId(): string {
    const id = this.store.clusterId;
    if (id === undefined) throw new InternalError('qkv: the membership was not seeded');
    return id;
  }

  private async open(): Promise<void> {
    const dataDir = this.opts.self.dataDir;
    // A restore that did not finish leaves a staging directory: it is worthless. A crash in the
    // middle of the directory swap leaves the previous store as kv.old: put it back.
    await rm(path.join(dataDir, 'kv.staging'), { recursive: true, force: true });
    // Copies of the store being sent to a peer when the process stopped: worthless too.
    if (existsSync(dataDir)) {
      for (const name of await readdir(dataDir)) if (name.startsWith(CHECKPOINT_PREFIX)) await rm(path.join(dataDir, name), { recursive: true, force: true });
    }
    if (!existsSync(this.kvDir) && existsSync(path.join(dataDir, 'kv.old'))) await rename(path.join(dataDir, 'kv.old'), this.kvDir);
    this.logStore = await openRaftLog(dataDir);
    await this.openOrRecoverStore();
    const cfg = this.opts.cluster;
    await this.store.seedCluster(this.opts.join ?? bootstrapCluster(cfg));
    await this.recordIdentity();
    const cluster = this.cluster();
    if (cluster.removed.includes(this.id)) {
      await this.store.close();
      await this.logStore.close();
      throw new MemberRemovedError();
    }
    const mine = cluster.members.find((m) => m.id === this.id);
    if (!mine) {
      await this.store.close();
      await this.logStore.close();
      throw new InternalError(`qkv: member ${BigInt(this.id).toString(16)} is not in its own membership`);
    }
    this.raftId = mine.raftId;
    this.transport = new PeerTransport({
      id: this.raftId,
      listen: hostPort(this.opts.self.listenPeerUrl ?? this.opts.self.peerUrl),
      peers: new Map(),
      hello: { clusterId: cluster.id, memberId: this.id, peerUrl: this.opts.self.peerUrl },
      admit: (hello) => this.admitPeer(hello),
      onRejected: (peer, reason) => this.onRefusedByPeer(peer, reason),
      addressOf: (_peer, url) => this.dialAddress(url),
      httpHandler: (req, res) => this.servePeerHttp(req, res),
      onMessage: (msg) => this.raft.receive(msg),
      onError: (err, peer) => this.log.debug({ err: err.message, peer }, 'peer transport error'),
      stats: this.metrics.peers,
      ...(this.opts.tls?.peer
        ? { tls: { ...this.opts.tls.peer, onRejected: (err, remote) => this.log.warn({ err: err.message, remote }, 'rejected peer connection') } }
        : {}),
    });
    // The members a joiner was told of run now, beside those it starts with (the bootstrap's).
    for (const m of [...cluster.members, ...(this.opts.join?.members ?? [])]) this.dialMember(m);
    this.raft = new RaftNode({
      id: this.raftId,
      // The configuration at index 0; the log's conf changes (or a snapshot) bring it up to date.
      peers: cluster.bootstrap.map((m) => m.raftId),
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
      committedIndex: () => this.raft.commitIndex,
      appliedIndex: () => this.store.appliedIndex,
      // The directory is briefly missing while a restored store is swapped in.
      dbSizeBytes: () => dirBytes(this.kvDir).catch(() => 0),
      keys: () => this.store.keyCount,
      revision: () => this.store.revision,
      compactRevision: () => this.store.compactRevision,
      watchers: () => this.hub.size,
      slowWatchers: () => this.hub.unsyncedCount,
    });
    this.raft.on('fatal', (err) => {
      // As etcd's Fatal on a failed WAL save: nothing more is acknowledged, and the member stops
      // (the process exits 1) rather than serve from a log it could not make durable.
      this.log.fatal({ err }, 'raft node stopped after a storage failure');
      this.removed(err);
    });
    await this.transport.start();
    await this.raft.start();
    void this.publish();
    this.leaseTimer = setInterval(() => void this.expireLeases(), 500);
    this.diskSpace.start();
    this.progressTimer = setInterval(() => this.hub.progressNotify(), 10 * 60 * 1000);
    this.log.info({ member: this.opts.self.name, id: this.id, applied: this.store.appliedIndex, revision: this.store.revision }, 'member started');
  }

  /** `checkedCopy`: the store was fetched and opened (its files checked) by fetchStore just before. */
  private async openStore(checkedCopy = false): Promise<void> {
    // The store checks a put's lease against its own replicated lease table (same batch, same answer everywhere).
    const store = await MvccStore.open(this.kvDir, {
      checkFiles: !checkedCopy,
      onBatchWritten: (ms) => this.metrics.backendCommitSeconds.observe(ms / 1000),
      // A store that can no longer tell what it holds answers nothing more: the member stops
      // (the process exits 1); at the next start the check of its files finds what is wrong.
      onFailure: (err) => {
        this.log.fatal({ err: err.message }, 'store failed');
        this.removed(err);
      },
    });
    // Served only once its lease table is loaded: no request sees the new store with the old leases.
    this.lessor.load(await store.leases());
    this.store = store;
    this.source.attach(store);
  }

  /**
   * Opens the store; one whose files fail their check at open (a bit flipped at rest: never
   * served) is fetched whole from a peer into a staging directory, then moved aside as
   * kv.corrupt-<ms since epoch> (kept for the operator, only the newest) and replaced. The fetched store's applied
   * index need not match the one lost: Raft replays this member's log after it (its entries at or
   * below it are skipped), and a store older than the log's snapshot is restored again at start
   * (RaftNode.start). With no peer able to send one within RECOVERY_DEADLINE_MS, or no peer at all,
   * the member refuses to start, naming the file, and the data dir stays as it was.
   */
  private async openOrRecoverStore(): Promise<void> {
    let corrupt: StoreFileCorruptError;
    try {
      return await this.openStore();
    } catch (err) {
      if (!(err instanceof StoreFileCorruptError)) throw err;
      corrupt = err;
    }
    const peers = this.opts.cluster.members.filter((m) => m.id !== this.id && m.peerUrl !== '');
    if (peers.length === 0) throw corrupt;
    this.log.error({ err: corrupt.message, file: corrupt.file }, 'store is corrupt: recovering it from a peer');
    const staging = path.join(this.opts.self.dataDir, 'kv.staging');
    const deadline = performance.now() + RECOVERY_DEADLINE_MS;
    const failures: string[] = [];
    for (;;) {
      for (const m of peers) {
        try {
          const applied = await this.fetchStore(staging, m.peerUrl);
          // One corrupt copy kept, the newest: a disk that keeps corrupting must not fill up with them.
          const dataDir = this.opts.self.dataDir;
          for (const name of await readdir(dataDir)) if (name.startsWith(CORRUPT_PREFIX)) await rm(path.join(dataDir, name), { recursive: true, force: true });
          const aside = path.join(dataDir, `${CORRUPT_PREFIX}${Date.now()}`);
          await rename(this.kvDir, aside);
          await rename(staging, this.kvDir);
          await syncDir(dataDir);
          this.log.warn({ from: m.name, applied, corrupt: aside }, 'recovered the store from a peer; the corrupt one is kept aside');
          return await this.openStore(true);
        } catch (err) {
          failures.push(`${m.name}: ${(err as Error).message}`);
        }
      }
      if (performance.now() > deadline) {
        throw new StoreFileCorruptError(
          corrupt.file,
          corrupt.offset,
          `${corrupt.detail}; no peer could send its store: ${failures.slice(-peers.length).join('; ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** A peer's whole store received into `staging` (emptied first), checked, synced: its applied index (snapshot_client.ts). */
  private fetchStore(staging: string, peerUrl: string): Promise<number> {
    return fetchStoreInto(staging, peerUrl, this.opts.tls?.peer?.credentials);
  }

  // ---- StateMachine (called by the Raft node's Ready loop) -------------------------------

  appliedIndex(): number {
    return this.store.appliedIndex;
  }

  async apply(entries: Entry[]): Promise<unknown[]> {
    let membershipChanged = false;
    const batch: ApplyEntry[] = entries.map((e) => {
      if (e.data.byteLength === 0) return { index: e.index };
      this.diskSpace.written(e.data.byteLength);
      try {
        if (e.type === EntryType.ConfChange) {
          membershipChanged = true;
          return { index: e.index, request: { memberChange: memberChangeOf(decodeConfChange(e.data)) } };
        }
        const { request, caller } = decodeEntryRequest(e.data);
        if ('memberAttributes' in request) membershipChanged = true;
        return caller ? { index: e.index, request, caller } : { index: e.index, request };
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
    if (membershipChanged) this.membershipApplied();
    return results;
  }

  // ---- membership (the operations on it are membership.ts's) ------------------------------

  /** Brings the peer links in line with the applied membership; stops if this member was removed. */
  private membershipApplied(): void {
    const cluster = this.cluster();
    if (cluster.removed.includes(this.id)) {
      this.removed(new MemberRemovedError());
      return;
    }
    this.metrics.isLearner.set(this.isLearner ? 1 : 0);
    const ids = new Set(cluster.members.map((m) => m.raftId));
    for (const peer of this.transport.peerIds()) if (!ids.has(peer)) this.transport.removePeer(peer);
    for (const m of cluster.members) this.dialMember(m);
    // A leader's client URL may be known now.
    for (const wake of [...this.leaderWaiters]) wake();
  }

  private dialMember(m: MemberRecord): void {
    const url = m.peerUrls[0];
    if (url && m.raftId !== this.raftId) this.transport.setPeer(m.raftId, this.dialAddress(url));
  }

  /** Where a peer URL is dialled: itself, or the test's fault proxy for it (by its URL, or its name in the initial cluster). */
  private dialAddress(peerUrl: string): { host: string; port: number } {
    const name = this.opts.cluster.members.find((m) => m.peerUrl === peerUrl)?.name;
    return this.opts.peerDial?.(peerUrl, name) ?? hostPort(peerUrl);
  }

  /** Why a connecting peer is refused (etcd's peer handler: 412 for another cluster, 410 for a removed member). */
  private admitPeer(hello: PeerHello): string | undefined {
    const cluster = this.store.cluster();
    if (!cluster) return 'not ready';
    if (hello.clusterId !== cluster.id) return `cluster ID mismatch: ${BigInt(hello.clusterId).toString(16)} is not ${BigInt(cluster.id).toString(16)}`;
    if (cluster.removed.includes(hello.memberId)) return 'removed';
    // Its raft id must be the one the membership gave it (a member this one has not learned of yet is let in: its messages are Raft's to judge).
    const known = cluster.members.find((m) => m.id === hello.memberId || m.raftId === hello.from);
    if (known && (known.id !== hello.memberId || known.raftId !== hello.from))
      return `member ${BigInt(hello.memberId).toString(16)} is not raft node ${hello.from} here`;
    return undefined;
  }

  private onRefusedByPeer(peer: number, reason: string): void {
    this.log.error({ peer: peer.toString(16), reason }, 'refused by a peer');
    if (reason === 'removed') this.removed(new MemberRemovedError());
    else if (reason.startsWith('cluster ID mismatch')) this.removed(new ClusterMismatchError(reason));
  }

  /** This member must stop (removed, refused by the cluster, or its storage failed): the process does, once (member_process.ts listens). */
  private removed(err: Error): void {
    if (this.removal) return;
    this.removal = err;
    this.log.warn({ err: err.message }, 'stopping: this member takes no more part in the cluster');
    for (const listen of this.removedListeners) listen(err);
  }

  /** Calls `listener` once this member must stop: removed from the cluster, refused by it, or after a storage failure. */
  onRemoved(listener: (err: Error) => void): void {
    if (this.removal) listener(this.removal);
    else this.removedListeners.add(listener);
  }

  /** The peer port's HTTP: GET /members, the applied membership (what a joining member starts from). */
  private servePeerHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'GET' && req.url === '/members') {
      const body = JSON.stringify(this.cluster());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && req.url === SNAPSHOT_PATH) {
      // A store snapshot for a member that installs a Raft snapshot: on the peer port, so over
      // the peers' (mutual) TLS, as etcd sends its snapshots over rafthttp. Its LevelDB files;
      // the record stream to a member of an earlier version (it asks without the header).
      const files = req.headers[STREAM_HEADER] === 'files';
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(files ? { [STREAM_HEADER]: 'files' } : {}) });
      const frames = Readable.from(files ? snapshotFrames(this.store, this.opts.self.dataDir) : recordStreamFrames(this.store));
      // A receiver that goes away ends the stream, which removes the copy (its hard links hold
      // tables the store may have deleted since).
      res.once('close', () => frames.destroy());
      frames
        .on('error', (err) => {
          this.log.warn({ err: err.message }, 'store snapshot stream failed');
          res.destroy(err);
        })
        .pipe(res);
      return;
    }
    res.writeHead(404).end();
  }

  /** Whether the client port requires a verified client certificate (etcd's --client-cert-auth): then its CN names the caller of a gRPC call without a token. */
  get clientCertAuth(): boolean {
    return this.opts.tls?.client?.clientCertAuth === true;
  }

  /** The credentials this member shows as a client of another member's client port (its own client certificate), if TLS. */
  get clientTls(): TlsCredentials | undefined {
    return this.opts.tls?.client?.credentials;
  }

  /**
   * etcd's publish: once running, a member proposes its name and client URLs until the applied
   * membership shows them (retrying after failures, e.g. while it is not yet caught up).
   */
  private async publish(): Promise<void> {
    const want = { id: String(this.id), name: this.opts.self.name, clientUrls: [this.opts.self.clientUrl] };
    while (!this.stopped && !this.removal) {
      const mine = this.store.clusterMember((m) => m.id === want.id);
      if (mine && mine.name === want.name && sameStrings(mine.clientUrls, want.clientUrls)) return;
      if (mine) {
        try {
          await this.propose({ memberAttributes: want });
          continue;
        } catch (err) {
          this.log.debug({ err: (err as Error).message }, 'publishing the member attributes failed; retrying');
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Mirrors applied lease changes into the lessor (which only adds expiry on top). */
  private afterApply(e: ApplyEntry, r: ApplyResult): void {
    if (r.status !== 'ok' || !e.request) return;
    if ('auth' in e.request) this.authn.applied(e.request.auth, e.index);
    else if ('leaseGrant' in e.request) {
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
    const marker: SnapshotMarker = { raftId: this.raftId };
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
    // Every member the store knows of (a joiner knows those it was told of too), at its peer port.
    const known = new Map<number, { id: number; name: string; peerUrl: string }>();
    for (const m of [...(this.opts.join?.members ?? []), ...this.cluster().members]) {
      if (m.raftId !== this.raftId && m.peerUrls[0]) known.set(m.raftId, { id: m.raftId, name: m.name, peerUrl: m.peerUrls[0] });
    }
    const others = [...known.values()];
    const order = [marker.raftId, this.raft.leader];
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
      try {
        applied = await this.fetchStore(staging, m.peerUrl);
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
    await syncDir(this.opts.self.dataDir);
    await rm(old, { recursive: true, force: true });
    await this.openStore(true);
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
    const leaderId = this.memberIdOfRaft(leader);
    this.log.info({ leader: leaderId === undefined ? leader : BigInt(leaderId).toString(16), role, term: this.raft.status().term }, 'raft state changed');
    if (leader !== 0) for (const wake of [...this.leaderWaiters]) wake();
  }

  private async expireLeases(): Promise<void> {
    if (this.stopped || !this.lessor.isPrimary) return;
    // Bounded per round, like etcd's lease revoke rate.
    for (const id of this.lessor.expired(500)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.metrics.leaseExpired.inc();
      this.propose({ leaseRevoke: { id } }, MEMBER_CALLER)
        .catch((err: Error) => this.log.debug({ id, err: err.message }, 'lease revoke failed; retrying'))
        .finally(() => this.revoking.delete(id));
    }
  }

  // ---- operations ------------------------------------------------------------------------

  header(revision = this.store.revision): ApiHeader {
    return { clusterId: this.clusterId, memberId: String(this.id), revision, raftTerm: this.raft.term };
  }

  /** The deadline (performance.now() clock) of a request that starts now. */
  requestDeadline(): number {
    return performance.now() + this.requestTimeoutMs;
  }

  /** Whether a leader is known and votes in the current configuration (a leader being removed may still lead). */
  private hasVotingLeader(): boolean {
    const leader = this.raft.leader;
    return leader !== 0 && this.raft.isVoter(leader);
  }

  /**
   * The leader's id once one is known, waiting for an election until `deadline` if need be (as
   * etcd's waitLeader): fails with "no leader" at the deadline, "server stopped" on stop.
   */
  async waitForLeader(deadline: number): Promise<number> {
    for (;;) {
      if (this.stopped) throw new ServerStoppedError();
      const leader = this.raft.leader;
      if (this.hasVotingLeader()) return leader;
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
    for (;;) {
      if (this.raft.isLeader) return undefined;
      const leader = await this.waitForLeader(deadline);
      if (this.raft.isLeader) return undefined;
      // A new leader's client URL is known once its published attributes are applied here.
      const url = this.cluster().members.find((m) => m.raftId === leader)?.clientUrls[0];
      if (url) return url;
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new NoLeaderError();
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.leaderWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(remaining, 100));
        this.leaderWaiters.add(wake);
      });
    }
  }

  /** Proposes `req`, made by `caller` (undefined while auth is disabled), and answers its applied result. */
  private async propose(req: MvccRequest, caller?: Caller): Promise<MvccResponse> {
    const data = encodeRequest(req, caller);
    const retry = new Retry(this.requestDeadline());
    let result: unknown;
    this.metrics.pendingProposals++;
    try {
      for (;;) {
        try {
          // As etcd's raft node holds proposals while there is no leader (until the deadline).
          // No promise to wait on while the leader is known (every proposal asks).
          if (this.stopped || !this.hasVotingLeader()) await this.waitForLeader(retry.deadline);
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

  /**
   * The applied auth state (undefined before any auth change). A store being swapped by a
   * restore throws (the request fails): never taken for "auth disabled".
   */
  private authState(): AuthRecord | undefined {
    return this.store.auth();
  }

  /**
   * Refuses a read `caller` may not make (auth enabled): reads are checked where they are
   * served, against the applied auth state, as etcd checks them before reading.
   */
  checkRead(caller: Caller | undefined, needs: Parameters<typeof checkAccess>[2]): void {
    const a = this.authState();
    // The caller's token was good when the call came; a linearizable read checks after its
    // barrier, and a user deleted meanwhile has no tokens any more (as etcd answers then). A
    // certificate's user that is missing is refused by checkAccess (permission denied).
    if (a?.enabled && caller && 'user' in caller && caller.user !== '' && !caller.certificate && !findUser(a, caller.user)) throw new InvalidAuthTokenError();
    checkAccess(a, caller, needs);
  }

  /**
   * Refuses a Maintenance call (Hash, HashKV, Defragment, Snapshot, MoveLeader) by a caller
   * without the root role, with the errors etcd 3.4's maintenance server leaves unmapped.
   */
  checkMaintenanceAdmin(caller: Caller | undefined): void {
    try {
      checkAdmin(this.authState(), caller);
    } catch (err) {
      if (err instanceof AuthUserEmptyError) throw new AdminUserEmptyError();
      if (err instanceof PermissionDeniedError) throw new AdminPermissionDeniedError();
      throw err;
    }
  }

  /**
   * Waits (within the request timeout) until this member has applied the Authenticate entry a
   * simple token names (`<letters>.<index>`), if that entry is committed but not yet applied
   * here: a token issued through another member works here at once. A token naming an index
   * not committed (forged, or of another cluster) is not waited for. Undefined when there is
   * nothing to wait for: every call asks, and for most there is nothing.
   */
  tokenApplied(token: string | undefined): Promise<void> | undefined {
    const m = token === undefined ? null : /\.(\d{1,15})$/.exec(token);
    if (!m) return undefined;
    const index = Number(m[1]);
    if (index <= this.store.appliedIndex || index > this.raft.commitIndex) return undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.raft.off('applied', onApplied);
        resolve();
      };
      const onApplied = (): void => {
        if (this.store.appliedIndex >= index) done();
      };
      const timer = setTimeout(done, this.requestTimeoutMs);
      this.raft.on('applied', onApplied);
      onApplied();
    });
  }

  /** An auth change through Raft (who may make it is checked at apply). */
  async authChange(r: AuthRequest, caller: Caller | undefined): Promise<{ revision: number }> {
    const resp = await this.propose({ auth: r }, caller);
    if (!('auth' in resp)) throw unexpectedResult('auth');
    return resp.auth.header;
  }

  /** The applied auth state after a ReadIndex barrier (UserGet, RoleGet and the lists: etcd sends them through Raft). */
  async authRead(): Promise<AuthRecord | undefined> {
    await this.linearizableBarrier();
    return this.authState();
  }

  async range(req: RangeRequest, caller?: Caller): Promise<RangeResponse> {
    if (!req.serializable) await this.linearizableBarrier();
    this.checkRead(caller, [{ access: 'READ', range: req }]);
    return this.store.range(req);
  }

  /**
   * etcd's quotaAlarmer: a write that would take this member's store past its quota is refused
   * before it is proposed, and raises NOSPACE for this member through Raft (waited for, as
   * etcd does, so that the alarm is listed once the write has been refused; its own failure is
   * not the client's error). Undefined when the write fits and that is known at once (the size
   * was measured lately), so a write waits on no promise for it.
   */
  checkQuota(req: QuotaRequest): Promise<void> | undefined {
    // Until the disk guard's alarm is applied, this member refuses writes itself.
    if (this.diskSpace.low) return Promise.reject(new NoSpaceError());
    const fits = this.quota.fits(quotaCost(req));
    return fits === true ? undefined : this.refuseUnlessFits(fits);
  }

  /** The rest of checkQuota once the answer is not a plain yes: NOSPACE raised and the write refused, unless it fits after all. */
  private async refuseUnlessFits(fits: boolean | Promise<boolean>): Promise<void> {
    if (await fits) return;
    await this.proposeNoSpace('ACTIVATE');
    throw new NoSpaceError();
  }

  private hasOwnNoSpaceAlarm(): boolean {
    return this.store.alarms('NOSPACE').some((a) => a.memberId === String(this.id));
  }

  /** Raises or clears NOSPACE for this member through Raft; a failure is logged (the guard or the next write tries again). */
  private proposeNoSpace(action: 'ACTIVATE' | 'DEACTIVATE'): Promise<void> {
    return this.propose({ alarm: { action, memberId: String(this.id), alarm: 'NOSPACE' } }).then(
      () => undefined,
      (err: Error) => this.log.warn({ err: err.message, action }, 'could not change the NOSPACE alarm'),
    );
  }

  async put(req: PutRequest, caller?: Caller): Promise<PutResponse> {
    await this.checkQuota({ put: req });
    const r = await this.propose({ put: req }, caller);
    if (!('put' in r)) throw unexpectedResult('put');
    return r.put;
  }

  async deleteRange(req: DeleteRangeRequest, caller?: Caller): Promise<DeleteRangeResponse> {
    const r = await this.propose({ deleteRange: req }, caller);
    if (!('deleteRange' in r)) throw unexpectedResult('deleteRange');
    return r.deleteRange;
  }

  async txn(req: TxnRequest, caller?: Caller): Promise<TxnResponse> {
    // etcd's --max-txn-ops: refused before it reaches the log.
    validateTxn(req, MAX_TXN_OPS);
    if (isTxnReadonly(req)) {
      // A read-only txn is a read: no proposal, as in etcd.
      await this.linearizableBarrier();
      this.checkRead(caller, txnNeeds(req));
      return this.store.readTxn(req);
    }
    await this.checkQuota({ txn: req });
    const r = await this.propose({ txn: req }, caller);
    if (!('txn' in r)) throw unexpectedResult('txn');
    return r.txn;
  }

  async compact(req: CompactionRequest, caller?: Caller): Promise<{ revision: number }> {
    const r = await this.propose({ compaction: { revision: req.revision } }, caller);
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

  async leaseRevoke(id: number, caller?: Caller): Promise<{ revision: number }> {
    const r = await this.propose({ leaseRevoke: { id } }, caller);
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

  /** The applied membership, as etcd's MemberList answers it (served locally, as etcd 3.4 does). */
  members(): MemberInfo[] {
    return this.cluster().members.map(memberInfo);
  }

  async status(): Promise<StatusResponse> {
    const st = this.raft.status();
    const files = await storeFileBytes(this.kvDir);
    const dbSize = files.total;
    return {
      header: this.header(),
      version: ETCD_SERVER_VERSION,
      dbSize,
      leader: this.memberIdOfRaft(st.leader) ?? '0',
      raftIndex: st.lastIndex,
      raftTerm: st.term,
      raftAppliedIndex: this.store.appliedIndex,
      // As etcd: every active alarm, in its text form.
      errors: this.store.alarms().map(alarmText),
      // etcd's is the bbolt file less its free pages. LevelDB's nearest: its estimate of the
      // tables' bytes over the whole key range plus the write-ahead log (the newest data, not in
      // a table yet), which leaves out its bookkeeping files; never above dbSize, as etcd's.
      dbSizeInUse: Math.min(dbSize, (await this.store.approximateSize()) + files.writeAheadLog),
      isLearner: this.isLearner,
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
    if (this.removal) return { health: false, reason: `stopping: ${this.removal.message}` };
    if (this.diskSpace.low) return { health: false, reason: `disk space low: ${this.diskSpace.freeBytes} bytes free` };
    const st = this.raft.status();
    if (st.leader === 0) return { health: false, reason: 'no leader' };
    if (this.store.appliedIndex < st.commit) return { health: false, reason: `applied ${this.store.appliedIndex} < commit ${st.commit}` };
    return { health: true };
  }

  /** To the member `to` (etcd's id, decimal); a member not in the membership is ignored. */
  transferLeadership(to: string): void {
    const raftId = this.raftIdOf(to);
    if (raftId !== undefined) this.raft.transferLeadership(raftId);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const wake of [...this.leaderWaiters]) wake();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.diskSpace.stop();
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.hub.stop();
    await this.raft.stop();
    await this.transport.stop();
    await this.store.close();
    await this.logStore.close();
    this.log.info({ member: this.opts.self.name }, 'member stopped');
  }
}
