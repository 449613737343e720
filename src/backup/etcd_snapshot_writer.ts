/**
 * Writes an etcd v3 backend database, the bbolt file `etcdctl snapshot save` stores (before its
 * trailing sha256), in etcd 3.4's layout (see etcd_snapshot.ts, which reads it back):
 * - `key`: each revision (main, '_', sub, and 't' for a tombstone) -> mvccpb.KeyValue;
 * - `meta`: `consistent_index`, and `scheduledCompactRev` and `finishedCompactRev` once compacted;
 * - `lease`: each lease id (8 bytes big-endian) -> leasepb.Lease;
 * - `members` (hex id -> the member's JSON), `members_removed` (hex id -> "removed"),
 *   `cluster` (`clusterVersion` 3.4.0), `alarm` (an etcdserverpb.AlarmMember -> empty);
 * - `auth` (`authEnabled`, `authRevision`), `authUsers` (name -> authpb.User), `authRoles`
 *   (name -> authpb.Role): always, as etcd's auth store creates them (disabled, revision 1, when
 *   there is no auth state).
 * So etcdctl's `snapshot status` and `snapshot restore` read it as one of etcd's, and qkv's
 * restore reads both alike. The revisions are streamed (bbolt_writer.ts): memory stays bounded.
 */
import { Buffer } from 'node:buffer';
import { BboltFileWriter, type BboltPairInput, type BboltPairsInput, type BboltWritten } from './bbolt_writer.js';
import {
  KeyValueField,
  LeaseField,
  PermissionField,
  RoleField,
  UserField,
  UserOptionsField,
  REVISION_KEY_SIZE,
  REVISION_SEPARATOR,
  TOMBSTONE_MARK,
  type EtcdAuth,
  type EtcdLease,
  type EtcdMember,
  type EtcdRevision,
  type EtcdRevisionRecord,
} from './etcd_snapshot.js';
import { encodeMessage, fieldSize, writeField, type ProtoField } from './protobuf.js';

/** An active alarm: the member it is raised for and etcdserverpb.AlarmType's number (NOSPACE 1, CORRUPT 2). */
interface EtcdAlarm {
  readonly memberId: bigint;
  readonly alarm: number;
}

/** What goes into the database. */
export interface EtcdDatabaseContent {
  /**
   * Every revision kept, in revision order: all at hand, or in chunks as they come (an export
   * read from its scratch file; each chunk written without a turn of the event loop per revision).
   */
  readonly revisions: Iterable<EtcdRevisionRecord> | AsyncIterable<Iterable<EtcdRevisionRecord>>;
  /** The leases, in id order. */
  readonly leases: readonly EtcdLease[];
  /** The Raft index of the last entry applied. */
  readonly consistentIndex: number;
  /** The compaction point, 0 if none. */
  readonly compactRevision: number;
  readonly members: readonly EtcdMember[];
  readonly removedMemberIds: readonly bigint[];
  readonly alarms: readonly EtcdAlarm[];
  /** The auth store; undefined writes etcd's initial one (disabled, revision 1, no users or roles). */
  readonly auth?: EtcdAuth;
}

/** etcd's ClusterVersion as its backend records it. */
const CLUSTER_VERSION = '3.4.0';

const TWO32 = 0x1_0000_0000;
const EMPTY = Buffer.alloc(0);

/** Writes the revision key (etcd's revToBytes) of `main` and `sub` (non-negative safe integers) at the start of `b`. */
function writeRevisionKey(b: Buffer, main: number, sub: number): void {
  b.writeUInt32BE(Math.floor(main / TWO32), 0);
  b.writeUInt32BE(main % TWO32, 4);
  b[8] = REVISION_SEPARATOR;
  b.writeUInt32BE(Math.floor(sub / TWO32), 9);
  b.writeUInt32BE(sub % TWO32, 13);
}

/** A revision key (etcd's revToBytes). */
function revisionKey(r: EtcdRevision): Buffer {
  const b = Buffer.alloc(REVISION_KEY_SIZE);
  writeRevisionKey(b, r.main, r.sub);
  return b;
}

const u64 = (n: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
};

/**
 * The `key` bucket's pairs, encoded into buffers reused from one revision to the next (the bbolt
 * writer copies each pair as it comes): a million revisions cost no allocation each.
 */
class RevisionPairEncoder {
  private readonly putKey = Buffer.alloc(REVISION_KEY_SIZE);
  private readonly tombstoneKey = Buffer.alloc(REVISION_KEY_SIZE + 1, TOMBSTONE_MARK);
  private value = Buffer.allocUnsafe(4096);

  /** The pair of `r`: views of the encoder's buffers, valid until the next call. */
  pair(r: EtcdRevisionRecord): BboltPairInput {
    const key = r.tombstone ? this.tombstoneKey : this.putKey;
    writeRevisionKey(key, r.revision.main, r.revision.sub);
    // A tombstone's KeyValue holds only the key.
    if (r.tombstone) return [key, this.encode(r.key, 0, 0, 0, EMPTY, 0n)];
    const kv = r.kv;
    return [key, this.encode(kv.key, kv.createRevision, kv.modRevision, kv.version, kv.value, kv.lease)];
  }

  /** mvccpb.KeyValue, as encodeMessage writes it, in the reused buffer. */
  private encode(key: Buffer, createRevision: number, modRevision: number, version: number, value: Buffer, lease: bigint): Buffer {
    const size =
      fieldSize(KeyValueField.key, key) +
      fieldSize(KeyValueField.createRevision, createRevision) +
      fieldSize(KeyValueField.modRevision, modRevision) +
      fieldSize(KeyValueField.version, version) +
      fieldSize(KeyValueField.value, value) +
      fieldSize(KeyValueField.lease, lease);
    if (size > this.value.length) this.value = Buffer.allocUnsafe(2 * size);
    const b = this.value;
    let pos = writeField(b, 0, KeyValueField.key, key);
    pos = writeField(b, pos, KeyValueField.createRevision, createRevision);
    pos = writeField(b, pos, KeyValueField.modRevision, modRevision);
    pos = writeField(b, pos, KeyValueField.version, version);
    pos = writeField(b, pos, KeyValueField.value, value);
    pos = writeField(b, pos, KeyValueField.lease, lease);
    return b.subarray(0, pos);
  }
}

function keyPairs(revisions: EtcdDatabaseContent['revisions']): BboltPairsInput {
  const encoder = new RevisionPairEncoder();
  function* pairs(records: Iterable<EtcdRevisionRecord>): Generator<BboltPairInput> {
    for (const r of records) yield encoder.pair(r);
  }
  if (Symbol.iterator in revisions) return pairs(revisions);
  return (async function* () {
    for await (const chunk of revisions) yield pairs(chunk);
  })();
}

/** A member as etcd's membership JSON (the uint64 id written exactly, not through a double). */
function memberJson(m: EtcdMember): Buffer {
  const urls = (xs: readonly string[]): string => JSON.stringify([...xs]);
  const learner = m.isLearner ? ',"isLearner":true' : '';
  return Buffer.from(`{"id":${m.id},"peerURLs":${urls(m.peerUrls)}${learner},"name":${JSON.stringify(m.name)},"clientURLs":${urls(m.clientUrls)}}`);
}

/** etcd's auth store when nothing was ever changed: what NewAuthStore writes. */
const INITIAL_AUTH: EtcdAuth = { enabled: false, revision: 1, users: [], roles: [] };

function userPairs(auth: EtcdAuth): (readonly [Buffer, Buffer])[] {
  return auth.users.map((u) => {
    const fields: ProtoField[] = [
      [UserField.name, Buffer.from(u.name)],
      [UserField.password, Buffer.from(u.password, 'latin1')],
      ...u.roles.map((r): ProtoField => [UserField.roles, Buffer.from(r)]),
    ];
    if (u.noPassword) fields.push([UserField.options, encodeMessage([[UserOptionsField.noPassword, 1]])]);
    return [Buffer.from(u.name), encodeMessage(fields)] as const;
  });
}

function rolePairs(auth: EtcdAuth): (readonly [Buffer, Buffer])[] {
  return auth.roles.map((r) => {
    const permissions = r.permissions.map(
      (p): ProtoField => [
        RoleField.keyPermission,
        encodeMessage([
          [PermissionField.permType, p.permType],
          [PermissionField.key, p.key],
          [PermissionField.rangeEnd, p.rangeEnd],
        ]),
      ],
    );
    return [Buffer.from(r.name), encodeMessage([[RoleField.name, Buffer.from(r.name)], ...permissions])] as const;
  });
}

const byKey = (a: readonly [Buffer, Buffer], b: readonly [Buffer, Buffer]): number => Buffer.compare(a[0], b[0]);

/** Writes `content` as an etcd backend database at `file` (created or truncated). */
export async function writeEtcdDatabase(file: string, content: EtcdDatabaseContent): Promise<BboltWritten> {
  const w = await BboltFileWriter.create(file);
  try {
    await w.bucket(
      'alarm',
      content.alarms
        .map(
          (a) =>
            [
              encodeMessage([
                [1, a.memberId],
                [2, a.alarm],
              ]),
              Buffer.alloc(0),
            ] as const,
        )
        .sort(byKey),
    );
    const auth = content.auth ?? INITIAL_AUTH;
    await w.bucket('auth', [
      [Buffer.from('authEnabled'), Buffer.from([auth.enabled ? 1 : 0])],
      [Buffer.from('authRevision'), u64(auth.revision)],
    ]);
    await w.bucket('authRoles', rolePairs(auth).sort(byKey));
    await w.bucket('authUsers', userPairs(auth).sort(byKey));
    await w.bucket('cluster', [[Buffer.from('clusterVersion'), Buffer.from(CLUSTER_VERSION)]]);
    await w.bucket('key', keyPairs(content.revisions));
    await w.bucket(
      'lease',
      content.leases
        .map(
          (l) =>
            [
              u64(l.id),
              encodeMessage([
                [LeaseField.id, l.id],
                [LeaseField.ttl, l.ttl],
                [LeaseField.remainingTtl, l.remainingTtl],
              ]),
            ] as const,
        )
        .sort(byKey),
    );
    await w.bucket('members', content.members.map((m) => [Buffer.from(m.id.toString(16)), memberJson(m)] as const).sort(byKey));
    await w.bucket('members_removed', content.removedMemberIds.map((id) => [Buffer.from(id.toString(16)), Buffer.from('removed')] as const).sort(byKey));
    const meta: (readonly [Buffer, Buffer])[] = [[Buffer.from('consistent_index'), u64(content.consistentIndex)]];
    if (content.compactRevision > 0) {
      const rev = revisionKey({ main: content.compactRevision, sub: 0 });
      meta.push([Buffer.from('finishedCompactRev'), rev], [Buffer.from('scheduledCompactRev'), rev]);
    }
    await w.bucket('meta', meta);
    return await w.finish();
  } catch (err) {
    await w.abandon();
    throw err;
  }
}
