/**
 * Reads an etcd v3 snapshot file, as `etcdctl snapshot save` (etcd 3.4, 3.5) writes it: the
 * member's bbolt database (src/backup/bbolt.ts) followed by the 32-byte sha256 of the database
 * bytes, which etcd's server appends to the Snapshot stream. Read-only: the whole file is checked
 * (its size and sha256, then every page and record) before anything uses it, so a restore built on
 * this refuses a damaged file before it writes anything. A file is read with positional reads
 * (bbolt.ts's FileSource) and its revisions are not kept: `revisions()` walks the `key` bucket
 * again, so memory does not grow with the file (the small buckets, leases, members and auth, are
 * held).
 *
 * The buckets read (etcd's mvcc and lease backends):
 * - `key`: one pair per revision. The key is the revision: main (8 bytes big-endian), '_', sub
 *   (8 bytes big-endian), and a trailing 't' for a tombstone (a delete); big-endian makes byte
 *   order revision order. The value is an mvccpb.KeyValue (a tombstone's holds only the key).
 * - `meta`: `consistent_index` (u64 big-endian, the last applied Raft index), `term` (3.5),
 *   `scheduledCompactRev` and `finishedCompactRev` (a revision key, as above, without the 't').
 * - `lease`: key the lease id (8 bytes big-endian), value a leasepb.Lease.
 * - `members`, `members_removed` (when present): key the member id in hex, value the member as
 *   JSON (`removed` for a removed one).
 * - `auth` (`authEnabled`: one byte, 1 or 0; `authRevision`: u64 big-endian), `authUsers` (key
 *   the name, value an authpb.User: its bcrypt hash, roles, no_password) and `authRoles` (key the
 *   name, value an authpb.Role: its key permissions), when present.
 *
 * Numbers: revisions, versions, TTLs and the consistent index are JS numbers as in src/api/kv.ts
 * (a file with one beyond 2^53 is refused); lease and member ids are bigint, since etcd draws lease
 * ids from the whole int64 range and member ids from uint64, well past 2^53.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { BboltDb, bufferSource, FileSource, type BboltBucket, type BboltMeta, type PageSource } from './bbolt.js';
import { SnapshotContentError, SnapshotIntegrityError } from './errors.js';
import {
  bytesField,
  bytesValue,
  decodeFieldList,
  decodeMessage,
  int64Field,
  int64Value,
  ProtoFieldReader,
  repeatedBytesField,
  safeIntField,
  safeIntValue,
  type FieldValue,
} from './protobuf.js';

/** The sha256 etcd appends to a snapshot. */
export const SHA256_SIZE = 32;
/**
 * etcd's snapshot restore tells a file with a hash by its size: `size % 512 == 32` (every bbolt
 * page size is a multiple of 512).
 */
const HASH_SIZE_ALIGNMENT = 512;

/** A revision key: main, '_', sub; a tombstone adds 't'. */
export const REVISION_KEY_SIZE = 17;
export const REVISION_SEPARATOR = 0x5f; // '_'
export const TOMBSTONE_MARK = 0x74; // 't'

/** mvccpb.KeyValue's field numbers. */
export const KeyValueField = { key: 1, createRevision: 2, modRevision: 3, version: 4, value: 5, lease: 6 } as const;
/** leasepb.Lease's field numbers. */
export const LeaseField = { id: 1, ttl: 2, remainingTtl: 3 } as const;

/** A revision of etcd's MVCC store: the transaction (main) and the change within it (sub). @public */
export interface EtcdRevision {
  readonly main: number;
  readonly sub: number;
}

/** A key's value at one revision, as mvccpb.KeyValue. */
export interface EtcdKeyValue {
  readonly key: Buffer;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly value: Buffer;
  /** The lease attached, 0n for none (exact: etcd's lease ids exceed 2^53). */
  readonly lease: bigint;
}

/** One pair of the `key` bucket: a put (its KeyValue) or a delete (a tombstone, naming the key). @public */
export type EtcdRevisionRecord =
  | { readonly revision: EtcdRevision; readonly tombstone: false; readonly kv: EtcdKeyValue }
  | { readonly revision: EtcdRevision; readonly tombstone: true; readonly key: Buffer };

/** A lease, as leasepb.Lease. @public */
export interface EtcdLease {
  readonly id: bigint;
  /** The granted TTL, in seconds. */
  readonly ttl: number;
  /** The TTL left at the last lease checkpoint; 0 unless checkpointing was on (3.4's default is off). */
  readonly remainingTtl: number;
}

/** authpb.User's, authpb.UserAddOptions', authpb.Role's and authpb.Permission's field numbers. */
export const UserField = { name: 1, password: 2, roles: 3, options: 4 } as const;
export const UserOptionsField = { noPassword: 1 } as const;
export const RoleField = { name: 1, keyPermission: 2 } as const;
export const PermissionField = { permType: 1, key: 2, rangeEnd: 3 } as const;

/** A user of etcd's auth store, as authpb.User. @public */
export interface EtcdUser {
  readonly name: string;
  /** The password's hash as stored (etcd's bcrypt), empty for a user without a password. */
  readonly password: string;
  readonly roles: readonly string[];
  readonly noPassword: boolean;
}

/** A key permission: authpb.Permission.Type's number (READ 0, WRITE 1, READWRITE 2) and its range. @public */
export interface EtcdPermission {
  readonly permType: 0 | 1 | 2;
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
}

/** A role of etcd's auth store, as authpb.Role. @public */
export interface EtcdRole {
  readonly name: string;
  readonly permissions: readonly EtcdPermission[];
}

/** etcd's auth store: whether auth is on, its revision, users and roles (each in name order, as the buckets hold them). @public */
export interface EtcdAuth {
  readonly enabled: boolean;
  readonly revision: number;
  readonly users: readonly EtcdUser[];
  readonly roles: readonly EtcdRole[];
}

/** A member of the cluster the snapshot was taken from, as etcd's membership JSON. @public */
export interface EtcdMember {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/** What an etcd snapshot file holds, checked whole. Buffers are views of the bytes read, not copies. */
export interface EtcdSnapshot {
  /** The bbolt meta the database was read at (page size, txid). */
  readonly db: BboltMeta;
  /** The database itself, for a walk of every bucket (snapshot status). */
  readonly database: BboltDb;
  /**
   * Every revision the `key` bucket holds (those after the compaction, and the latest of each key
   * at it), in revision order: read (and checked) again on each call, not held.
   */
  revisions(): Generator<EtcdRevisionRecord>;
  /** How many revisions there are. */
  readonly revisionCount: number;
  /** The main revision of the last one, 0 when there are none. */
  readonly lastRevision: number;
  /** The lease ids the revisions are attached to (0 left out). */
  readonly revisionLeases: ReadonlySet<bigint>;
  /**
   * The store's revision, as etcd computes it on restore: the last revision in the `key` bucket,
   * or the compact revision if later (a compaction can remove the tombstone at the top), at least 1.
   */
  readonly currentRevision: number;
  /** The revision the last finished compaction compacted at, 0 if none. */
  readonly compactRevision: number;
  /** The revision of the last compaction scheduled, 0 if none; later than compactRevision if it did not finish (etcd finishes it on restore). */
  readonly scheduledCompactRevision: number;
  /** The Raft index of the last entry applied to the store. */
  readonly consistentIndex: number;
  /** The Raft term of that entry (etcd 3.5+), undefined when the snapshot does not record it (3.4). */
  readonly term: number | undefined;
  /** The leases, in id order. */
  readonly leases: readonly EtcdLease[];
  /** The members recorded (`members` bucket), empty when there is none. */
  readonly members: readonly EtcdMember[];
  /** The ids of removed members (`members_removed` bucket). */
  readonly removedMemberIds: readonly bigint[];
  /** The auth store, undefined when the database has no `auth` bucket. */
  readonly auth: EtcdAuth | undefined;
}

/** A snapshot read from a file: its descriptor stays open for `revisions()` until `close`. */
export interface EtcdSnapshotFile extends EtcdSnapshot {
  close(): Promise<void>;
}

/** The sha256 of the file's database is computed in reads of this size. */
const HASH_READ_BYTES = 1 << 20;

/**
 * Opens and checks the etcd snapshot file at `path` (as readEtcdSnapshot checks a Buffer) without
 * reading it into memory: its size, then its sha256 computed over one sequential read, then the
 * database walked through positional reads. A missing file is reported as etcdctl's Go os error
 * says it: `open FILE: no such file or directory` (`op` 'stat' for `snapshot status`, which stats first).
 */
export async function openEtcdSnapshotFile(path: string, op: 'open' | 'stat' = 'open'): Promise<EtcdSnapshotFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${op} ${path}: no such file or directory`);
    throw err;
  }
  try {
    const { size } = await fh.stat();
    checkHashedSize(size);
    const dbLength = size - SHA256_SIZE;
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(HASH_READ_BYTES);
    for (let at = 0; at < dbLength; ) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, dbLength - at), at);
      if (bytesRead === 0) throw new SnapshotIntegrityError(`the file ended at ${at} bytes while its sha256 was computed (it had ${size})`);
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    const stored = Buffer.alloc(SHA256_SIZE);
    const { bytesRead } = await fh.read(stored, 0, SHA256_SIZE, dbLength);
    if (bytesRead !== SHA256_SIZE) throw new SnapshotIntegrityError(`the file ended before its sha256 (it had ${size} bytes)`);
    checkHash(stored, hash.digest());
    const snap = readDatabase(new FileSource(fh.fd, dbLength));
    return { ...snap, close: () => fh.close() };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Reads and checks an etcd snapshot file held in `file`: its size and sha256 first
 * (SnapshotIntegrityError), then the bbolt database (BboltCorruptError), then etcd's buckets
 * (SnapshotContentError).
 */
export function readEtcdSnapshot(file: Buffer): EtcdSnapshot {
  checkHashedSize(file.length);
  const db = file.subarray(0, file.length - SHA256_SIZE);
  checkHash(file.subarray(file.length - SHA256_SIZE), createHash('sha256').update(db).digest());
  return readDatabase(bufferSource(db));
}

/** Reads and checks the database (the file without its sha256) in `source`: every bucket read is walked whole. */
function readDatabase(source: PageSource): EtcdSnapshot {
  const db = BboltDb.open(source);
  const keys = db.bucket('key');
  const meta = db.bucket('meta');
  if (keys === undefined || meta === undefined) throw new SnapshotContentError(`no ${keys === undefined ? 'key' : 'meta'} bucket: not an etcd v3 database`);
  // bbolt's snapshot is the whole file of pages in use; anything beyond them would be data no meta accounts for.
  if (source.size !== db.meta.pageCount * db.meta.pageSize) {
    throw new SnapshotIntegrityError(`the database is ${source.size} bytes, but its meta says ${db.meta.pageCount} pages of ${db.meta.pageSize} bytes`);
  }
  // One walk checks every revision; only their count, the last and the leases named are kept.
  let revisionCount = 0;
  let lastRevision = 0;
  const revisionLeases = new Set<bigint>();
  for (const r of readRevisions(keys)) {
    revisionCount++;
    lastRevision = r.revision.main;
    if (!r.tombstone && r.kv.lease !== 0n) revisionLeases.add(r.kv.lease);
  }
  const compactRevision = metaRevision(meta, 'finishedCompactRev');
  return {
    db: db.meta,
    database: db,
    revisions: () => readRevisions(keys),
    revisionCount,
    lastRevision,
    revisionLeases,
    currentRevision: Math.max(1, lastRevision, compactRevision),
    compactRevision,
    scheduledCompactRevision: metaRevision(meta, 'scheduledCompactRev'),
    consistentIndex: metaUint(meta, 'consistent_index') ?? 0,
    term: metaUint(meta, 'term'),
    leases: readLeases(db.bucket('lease')),
    members: readMembers(db.bucket('members')),
    removedMemberIds: [...(db.bucket('members_removed')?.pairs() ?? [])].map((p) => memberId(p.key, 'members_removed')),
    auth: readAuth(db),
  };
}

/** A snapshot file is whole pages and a sha256 (etcd's test for a hash: see HASH_SIZE_ALIGNMENT). */
function checkHashedSize(size: number): void {
  if (size % HASH_SIZE_ALIGNMENT !== SHA256_SIZE) {
    throw new SnapshotIntegrityError(
      `a file of ${size} bytes is not whole ${HASH_SIZE_ALIGNMENT}-byte pages and a ${SHA256_SIZE}-byte sha256: it is truncated or has no hash (not saved by etcdctl snapshot save)`,
    );
  }
}

function checkHash(stored: Buffer, computed: Buffer): void {
  if (!computed.equals(stored)) {
    throw new SnapshotIntegrityError(
      `sha256 mismatch (stored ${stored.toString('hex')}, computed ${computed.toString('hex')}): the file is corrupted or truncated`,
    );
  }
}

const TWO32 = 0x1_0000_0000;
/** The high 32 bits of a non-negative safe integer are at most this. */
const MAX_SAFE_HIGH = Math.floor(Number.MAX_SAFE_INTEGER / TWO32);

/** A revision key (17 bytes, or 18 with a tombstone's 't'), checked. */
function parseRevisionKey(key: Buffer, what: string): { revision: EtcdRevision; tombstone: boolean } {
  const tombstone = key.length === REVISION_KEY_SIZE + 1 && key[REVISION_KEY_SIZE] === TOMBSTONE_MARK;
  if ((key.length !== REVISION_KEY_SIZE && !tombstone) || key[8] !== REVISION_SEPARATOR) {
    throw new SnapshotContentError(`${what}: ${key.toString('hex')} is not a revision key`);
  }
  // Read as two 32-bit halves each (no bigint per revision): a high half up to MAX_SAFE_HIGH is a non-negative safe integer.
  const mainHigh = key.readUInt32BE(0);
  const subHigh = key.readUInt32BE(9);
  if (mainHigh > MAX_SAFE_HIGH || subHigh > MAX_SAFE_HIGH) {
    throw new SnapshotContentError(`${what}: revision ${key.readBigInt64BE(0)}_${key.readBigInt64BE(9)} is not a pair of non-negative safe integers`);
  }
  return { revision: { main: mainHigh * TWO32 + key.readUInt32BE(4), sub: subHigh * TWO32 + key.readUInt32BE(13) }, tombstone };
}

/** A put's mvccpb.KeyValue, its fields checked as safeIntField and bytesField check them (the last of a field given twice; the key not empty), read without a Map. */
function readKeyValue(value: Buffer, what: () => string): EtcdKeyValue {
  let key: FieldValue;
  let createRevision: FieldValue;
  let modRevision: FieldValue;
  let version: FieldValue;
  let v: FieldValue;
  let lease: FieldValue;
  const r = new ProtoFieldReader(value, what);
  while (r.next()) {
    const x = r.value();
    if (x === undefined) continue;
    switch (r.field) {
      case KeyValueField.key:
        key = x;
        break;
      case KeyValueField.createRevision:
        createRevision = x;
        break;
      case KeyValueField.modRevision:
        modRevision = x;
        break;
      case KeyValueField.version:
        version = x;
        break;
      case KeyValueField.value:
        v = x;
        break;
      case KeyValueField.lease:
        lease = x;
        break;
    }
  }
  const k = bytesValue(key, KeyValueField.key, what);
  if (k.length === 0) throw new SnapshotContentError(`${what()}: empty key`);
  return {
    key: k,
    createRevision: safeIntValue(createRevision, KeyValueField.createRevision, what),
    modRevision: safeIntValue(modRevision, KeyValueField.modRevision, what),
    version: safeIntValue(version, KeyValueField.version, what),
    value: bytesValue(v, KeyValueField.value, what),
    lease: lease === 0 || lease === undefined ? 0n : int64Value(lease, KeyValueField.lease, what),
  };
}

/** A tombstone's mvccpb.KeyValue: only its key is read (the last given), as bytesField reads it. */
function readTombstoneKey(value: Buffer, what: () => string): Buffer {
  let key: FieldValue;
  const r = new ProtoFieldReader(value, what);
  while (r.next()) {
    const x = r.value();
    if (x !== undefined && r.field === KeyValueField.key) key = x;
  }
  return bytesValue(key, KeyValueField.key, what);
}

/** The `key` bucket's revisions, in revision order, each checked (a revision given twice, as a put and a delete, too). */
function* readRevisions(bucket: BboltBucket): Generator<EtcdRevisionRecord> {
  let previous: EtcdRevision | undefined;
  for (const { key, value } of bucket.pairs()) {
    const { revision, tombstone } = parseRevisionKey(key, 'key bucket');
    // Made only for an error: a million revisions build no text.
    const what = (): string => `key bucket, revision ${revision.main}_${revision.sub}`;
    // The keys are in byte order (bbolt.ts checks it), which is revision order; the same revision twice differs only in the 't'.
    if (previous !== undefined && previous.main === revision.main && previous.sub === revision.sub)
      throw new SnapshotContentError(`${what()}: given twice (a put and a tombstone)`);
    previous = revision;
    if (tombstone) {
      const k = readTombstoneKey(value, what);
      if (k.length === 0) throw new SnapshotContentError(`${what()}: empty key`);
      yield { revision, tombstone, key: k };
      continue;
    }
    const kv = readKeyValue(value, what);
    // etcd writes a put's KeyValue with its own revision: anything else is not etcd's data.
    if (kv.modRevision !== revision.main) throw new SnapshotContentError(`${what()}: mod_revision is ${kv.modRevision}`);
    if (kv.createRevision < 1 || kv.createRevision > kv.modRevision || kv.version < 1) {
      throw new SnapshotContentError(`${what()}: create_revision ${kv.createRevision} and version ${kv.version} do not fit mod_revision ${kv.modRevision}`);
    }
    yield { revision, tombstone, kv };
  }
}

/** A u64 big-endian value of the meta bucket (or of `bucketName`'s), as a safe number; undefined when absent. */
function metaUint(meta: BboltBucket, name: string, bucketName = 'meta'): number | undefined {
  const v = meta.get(name);
  if (v === undefined) return undefined;
  if (v.length !== 8) throw new SnapshotContentError(`${bucketName} bucket: ${name} is ${v.length} bytes, not 8`);
  const n = v.readBigUInt64BE(0);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new SnapshotContentError(`${bucketName} bucket: ${name} ${n} is beyond 2^53`);
  return Number(n);
}

/** A compaction revision of the meta bucket (a revision key's main), 0 when absent. */
function metaRevision(meta: BboltBucket, name: string): number {
  const v = meta.get(name);
  if (v === undefined) return 0;
  const { revision, tombstone } = parseRevisionKey(v, `meta bucket, ${name}`);
  if (tombstone) throw new SnapshotContentError(`meta bucket: ${name} is a tombstone key`);
  return revision.main;
}

function readLeases(bucket: BboltBucket | undefined): EtcdLease[] {
  const out: EtcdLease[] = [];
  for (const { key, value } of bucket?.pairs() ?? []) {
    if (key.length !== 8) throw new SnapshotContentError(`lease bucket: key ${key.toString('hex')} is not an 8-byte lease id`);
    const id = key.readBigInt64BE(0);
    const what = `lease bucket, lease ${id.toString(16)}`;
    const msg = decodeMessage(value, what);
    const lease: EtcdLease = {
      id: int64Field(msg, LeaseField.id, what),
      ttl: safeIntField(msg, LeaseField.ttl, what),
      remainingTtl: safeIntField(msg, LeaseField.remainingTtl, what),
    };
    if (lease.id !== id) throw new SnapshotContentError(`${what}: the lease says it is ${lease.id.toString(16)}`);
    out.push(lease);
  }
  return out;
}

/** A member id key: the id in lowercase hex, as etcd's types.ID.String writes it. */
function memberId(key: Buffer, bucket: string): bigint {
  const text = key.toString('latin1');
  if (!/^[0-9a-f]{1,16}$/.test(text)) throw new SnapshotContentError(`${bucket} bucket: key ${JSON.stringify(text)} is not a member id`);
  return BigInt(`0x${text}`);
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function readMembers(bucket: BboltBucket | undefined): EtcdMember[] {
  const out: EtcdMember[] = [];
  for (const { key, value } of bucket?.pairs() ?? []) {
    const id = memberId(key, 'members');
    const what = `members bucket, member ${id.toString(16)}`;
    let json: unknown;
    try {
      json = JSON.parse(value.toString('utf8'));
    } catch (e) {
      throw new SnapshotContentError(`${what}: not JSON (${(e as Error).message})`);
    }
    if (typeof json !== 'object' || json === null) throw new SnapshotContentError(`${what}: not a JSON object`);
    // The JSON's own "id" is a uint64 that JSON.parse would round; the key is the exact id.
    const { name = '', peerURLs = [], clientURLs = [], isLearner = false } = json as Record<string, unknown>;
    if (typeof name !== 'string' || !isStringArray(peerURLs) || !isStringArray(clientURLs) || typeof isLearner !== 'boolean') {
      throw new SnapshotContentError(`${what}: name, peerURLs, clientURLs or isLearner of the wrong type`);
    }
    out.push({ id, name, peerUrls: peerURLs, clientUrls: clientURLs, isLearner });
  }
  return out;
}

/** A name (of a user, a role) as UTF-8 text, refused if its bytes are not. */
function utf8Name(b: Buffer, what: string): string {
  const text = b.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(b)) throw new SnapshotContentError(`${what}: name ${b.toString('hex')} is not UTF-8`);
  return text;
}

function readAuth(db: BboltDb): EtcdAuth | undefined {
  const bucket = db.bucket('auth');
  if (bucket === undefined) return undefined;
  const flag = bucket.get('authEnabled');
  if (flag !== undefined && (flag.length !== 1 || flag[0]! > 1))
    throw new SnapshotContentError(`auth bucket: authEnabled is ${flag.toString('hex')}, not 00 or 01`);
  const users: EtcdUser[] = [];
  for (const { key, value } of db.bucket('authUsers')?.pairs() ?? []) {
    const name = utf8Name(key, 'authUsers bucket');
    const what = `authUsers bucket, user ${JSON.stringify(name)}`;
    const fields = decodeFieldList(value, what);
    const msg = new Map(fields);
    if (utf8Name(bytesField(msg, UserField.name, what), what) !== name) throw new SnapshotContentError(`${what}: the user says it is another`);
    const options = decodeMessage(bytesField(msg, UserField.options, what), `${what}, options`);
    users.push({
      name,
      password: bytesField(msg, UserField.password, what).toString('latin1'),
      roles: repeatedBytesField(fields, UserField.roles, what).map((r) => utf8Name(r, `${what}, role`)),
      noPassword: int64Field(options, UserOptionsField.noPassword, `${what}, options`) !== 0n,
    });
  }
  const roles: EtcdRole[] = [];
  for (const { key, value } of db.bucket('authRoles')?.pairs() ?? []) {
    const name = utf8Name(key, 'authRoles bucket');
    const what = `authRoles bucket, role ${JSON.stringify(name)}`;
    const fields = decodeFieldList(value, what);
    if (utf8Name(bytesField(new Map(fields), RoleField.name, what), what) !== name) throw new SnapshotContentError(`${what}: the role says it is another`);
    const permissions = repeatedBytesField(fields, RoleField.keyPermission, what).map((p): EtcdPermission => {
      const perm = decodeMessage(p, `${what}, permission`);
      const permType = int64Field(perm, PermissionField.permType, `${what}, permission`);
      if (permType < 0n || permType > 2n) throw new SnapshotContentError(`${what}: permission type ${permType} is not READ, WRITE or READWRITE`);
      return {
        permType: Number(permType) as 0 | 1 | 2,
        key: bytesField(perm, PermissionField.key, what),
        rangeEnd: bytesField(perm, PermissionField.rangeEnd, what),
      };
    });
    roles.push({ name, permissions });
  }
  return { enabled: flag?.[0] === 1, revision: metaUint(bucket, 'authRevision', 'auth') ?? 0, users, roles };
}
