/**
 * Backups in etcd's format, both ways:
 * - save: a member's store as etcd 3.4's backend database (src/backup/etcd_snapshot_writer.ts),
 *   from one point-in-time snapshot of the store (its revisions in revision order, its leases,
 *   membership and alarms), for Maintenance.Snapshot to stream with etcd's sha256 after it;
 * - restore: a new member's data dir from such a file, qkv's or one saved from a real etcd 3.4
 *   (src/backup/etcd_snapshot.ts reads and checks the whole file first: nothing is written for
 *   a damaged one; then its revisions are read again as the store is built, so memory stays
 *   bounded whatever the file's size), as `etcdctl snapshot restore` builds one: keys, revisions, compaction point
 *   and leases kept; a new cluster whose members, ids and cluster id come from the flags, derived
 *   as `qkv serve` derives them (resolveMemberFlags, bootstrapCluster), so the restored member
 *   starts with `qkv serve` and the same flags.
 *
 * Lease ids: qkv's are exact JS numbers (at most 2^53 - 1; it grants them below 2^52), etcd's
 * int64 (etcd 3.4 puts the member id's low 16 bits on top, so they are nearly always larger).
 * A lease id beyond 2^53 - 1 is restored under a new id: its low 52 bits, or the next id up that
 * no other lease has; every revision attached to it follows, and the restore reports each change.
 */
import { Buffer } from 'node:buffer';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AlarmType } from '../api/kv.js';
import { openEtcdSnapshotFile, type EtcdAuth, type EtcdRevisionRecord, type EtcdSnapshot } from '../backup/etcd_snapshot.js';
import { RestoreTargetExistsError } from '../backup/errors.js';
import type { BboltWritten } from '../backup/bbolt_writer.js';
import { writeEtcdDatabase } from '../backup/etcd_snapshot_writer.js';
import { MvccStore, PERMISSION_TYPES, type MvccStoreOptions, type StoreRevision } from '../mvcc/index.js';
import type { AuthRecord, PermissionType } from '../mvcc/types.js';
import { resolveMemberFlags, type ClusterConfig, type MemberConfig, type MemberFlags } from './config.js';
import { bootstrapCluster, writeIdentityFile } from './identity.js';

/** authpb.Permission.Type's numbers. */
const PERMISSION_NUMBERS: Record<PermissionType, 0 | 1 | 2> = { READ: 0, WRITE: 1, READWRITE: 2 };

/** etcdserverpb.AlarmType's numbers. */
const ALARM_NUMBERS: Record<Exclude<AlarmType, 'NONE'>, number> = { NOSPACE: 1, CORRUPT: 2 };

/** The largest lease id qkv holds exactly. */
const MAX_LEASE_ID = BigInt(Number.MAX_SAFE_INTEGER);
/** A remapped lease id keeps this many low bits (qkv grants its own ids below 2^52). */
const REMAP_MASK = (1n << 52n) - 1n;

/**
 * The store a restore builds is written and closed, never read: no live-key filter (its build
 * would read CURRENT whole) and LevelDB's own small block cache, so the restore's memory stays
 * fixed (the member opens the store with its own options).
 */
const RESTORE_STORE_OPTIONS: MvccStoreOptions = { liveKeyFilterKeys: 0, cacheSize: 8 << 20 };

/** What a save wrote. */
export interface SavedDatabase extends BboltWritten {
  readonly revision: number;
}

/**
 * Writes `store`'s state now as an etcd backend database at `file`; `scratchDir` (empty, the
 * caller's, removed by it) holds the revisions while they are sorted into revision order.
 */
export async function saveEtcdDatabase(store: MvccStore, file: string, scratchDir: string): Promise<SavedDatabase> {
  const exported = await store.snapshot().export(path.join(scratchDir, 'sort'));
  const cluster = exported.cluster;
  let written: BboltWritten;
  try {
    written = await writeEtcdDatabase(file, {
      revisions: etcdRevisions(exported.revisions),
      leases: exported.leases.map((l) => ({ id: BigInt(l.id), ttl: l.ttl, remainingTtl: 0 })),
      consistentIndex: exported.appliedIndex,
      compactRevision: exported.compactRevision,
      members: (cluster?.members ?? []).map((m) => ({
        id: BigInt(m.id),
        name: m.name,
        peerUrls: m.peerUrls,
        clientUrls: m.clientUrls,
        isLearner: m.isLearner,
      })),
      removedMemberIds: (cluster?.removed ?? []).map((id) => BigInt(id)),
      alarms: exported.alarms.flatMap((a) => (a.alarm === 'NONE' ? [] : [{ memberId: BigInt(a.memberId), alarm: ALARM_NUMBERS[a.alarm] }])),
      ...(exported.auth ? { auth: etcdAuth(exported.auth) } : {}),
    });
  } finally {
    await exported.close();
  }
  return { ...written, revision: exported.revision };
}

/** qkv's auth state as etcd's auth store (the same hashes: both are bcrypt, src/server/password.ts). */
function etcdAuth(a: AuthRecord): EtcdAuth {
  return {
    enabled: a.enabled,
    revision: a.revision,
    users: a.users.map((u) => ({ name: u.name, password: u.password, roles: u.roles, noPassword: u.noPassword })),
    roles: a.roles.map((r) => ({
      name: r.name,
      permissions: r.permissions.map((p) => ({ permType: PERMISSION_NUMBERS[p.permType], key: p.key, rangeEnd: p.rangeEnd })),
    })),
  };
}

/**
 * etcd's auth store as qkv's auth state; undefined for the store etcd starts with and never
 * changed (disabled, revision at most 1, no user, no role), which qkv holds as no auth state.
 */
function authRecord(a: EtcdAuth | undefined): AuthRecord | undefined {
  if (a === undefined || (!a.enabled && a.revision <= 1 && a.users.length === 0 && a.roles.length === 0)) return undefined;
  const byName = (x: { name: string }, y: { name: string }): number => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
  return {
    enabled: a.enabled,
    revision: Math.max(1, a.revision),
    users: a.users.map((u) => ({ name: u.name, password: u.password, roles: [...u.roles].sort(), noPassword: u.noPassword })).sort(byName),
    roles: a.roles
      .map((r) => ({
        name: r.name,
        permissions: r.permissions.map((p) => ({ permType: PERMISSION_TYPES[p.permType]!, key: Buffer.from(p.key), rangeEnd: Buffer.from(p.rangeEnd) })),
      }))
      .sort(byName),
  };
}

/** The export's chunks of revisions as etcd's, a chunk at a time. */
async function* etcdRevisions(chunks: AsyncIterable<readonly StoreRevision[]>): AsyncGenerator<Iterable<EtcdRevisionRecord>> {
  for await (const chunk of chunks) yield chunk.map(etcdRevision);
}

function etcdRevision(r: StoreRevision): EtcdRevisionRecord {
  const revision = { main: r.main, sub: r.sub };
  if (r.tombstone) return { revision, tombstone: true, key: r.key };
  const kv = r.kv;
  return {
    revision,
    tombstone: false,
    kv: { key: kv.key, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, value: kv.value, lease: BigInt(kv.lease) },
  };
}

/** The flags of `snapshot restore`, etcd's. */
export type RestoreFlags = Pick<MemberFlags, 'name' | 'dataDir' | 'initialCluster' | 'initialAdvertisePeerUrls' | 'initialClusterToken'>;

/** What a restore built. */
export interface RestoreSummary {
  readonly dataDir: string;
  readonly name: string;
  /** The new member's id and cluster id, decimal. */
  readonly memberId: string;
  readonly clusterId: string;
  readonly revision: number;
  readonly compactRevision: number;
  readonly revisions: number;
  readonly leases: number;
  /** Lease ids (decimal) beyond qkv's range and the ids they were restored under. */
  readonly remappedLeases: readonly { readonly from: string; readonly to: string }[];
}

/**
 * The new lease id of every lease id in `snap` beyond 2^53 - 1 (leases first, then those only
 * revisions name, each in increasing order, so the same file always restores the same way).
 */
function leaseRemapping(snap: EtcdSnapshot): Map<bigint, number> {
  const ids = new Set<bigint>([...snap.leases.map((l) => l.id), ...snap.revisionLeases]);
  const taken = new Set<bigint>([...ids].filter((id) => id > 0n && id <= MAX_LEASE_ID));
  const remap = new Map<bigint, number>();
  const beyond = [...ids].filter((id) => id < 0n || id > MAX_LEASE_ID).sort((a, b) => (a < b ? -1 : 1));
  for (const id of beyond) {
    let next = BigInt.asUintN(64, id) & REMAP_MASK;
    while (next === 0n || taken.has(next)) next = (next + 1n) & REMAP_MASK;
    taken.add(next);
    remap.set(id, Number(next));
  }
  return remap;
}

/**
 * Builds the data dir of a new member from the snapshot file `file` (see the module comment).
 * The file is read and checked whole first; the store is built in a directory beside the data
 * dir and moved into place last, so a failure leaves no data dir behind.
 */
export async function restoreDataDir(file: string, flags: RestoreFlags): Promise<RestoreSummary> {
  const { cluster: config, self } = resolveMemberFlags(flags);
  const dataDir = self.dataDir;
  if (existsSync(dataDir)) throw new RestoreTargetExistsError(flags.dataDir ?? dataDir);
  const snap = await openEtcdSnapshotFile(file);
  try {
    return await restoreChecked(snap, dataDir, config, self);
  } finally {
    await snap.close();
  }
}

/** The rest of restoreDataDir, once the file is open and checked. */
async function restoreChecked(snap: EtcdSnapshot, dataDir: string, config: ClusterConfig, self: MemberConfig): Promise<RestoreSummary> {
  const remap = leaseRemapping(snap);
  const leaseOf = (id: bigint): number => remap.get(id) ?? Number(id);
  function* revisions(): Generator<StoreRevision> {
    for (const r of snap.revisions()) {
      if (r.tombstone) yield { main: r.revision.main, sub: r.revision.sub, tombstone: true, key: r.key };
      else {
        const kv = r.kv;
        const lease = kv.lease === 0n ? 0 : leaseOf(kv.lease);
        yield {
          main: r.revision.main,
          sub: r.revision.sub,
          tombstone: false,
          kv: { key: kv.key, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, value: kv.value, lease },
        };
      }
    }
  }
  const cluster = bootstrapCluster(config);
  const auth = authRecord(snap.auth);
  const parent = path.dirname(dataDir);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(path.join(parent, `.${path.basename(dataDir)}.restoring-`));
  try {
    const store = await MvccStore.importRevisions(
      path.join(staging, 'kv'),
      {
        revision: snap.currentRevision,
        // etcd finishes a compaction that was scheduled but not done when it restores.
        compactRevision: Math.max(snap.compactRevision, snap.scheduledCompactRevision),
        revisions: revisions(),
        leases: snap.leases.map((l) => ({ id: leaseOf(l.id), ttl: l.ttl })),
        cluster,
        ...(auth ? { auth } : {}),
      },
      RESTORE_STORE_OPTIONS,
    );
    const revision = store.revision;
    const compactRevision = store.compactRevision;
    await store.close();
    await writeIdentityFile(staging, { id: self.id, clusterId: cluster.id });
    await rename(staging, dataDir);
    return {
      dataDir,
      name: self.name,
      memberId: String(self.id),
      clusterId: cluster.id,
      revision,
      compactRevision,
      revisions: snap.revisionCount,
      leases: snap.leases.length,
      remappedLeases: [...remap].map(([from, to]) => ({ from: from.toString(), to: String(to) })),
    };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}
