/**
 * Users, roles and permissions as replicated state, as etcd's auth store keeps them in its
 * backend's `auth`, `authUsers` and `authRoles` buckets: whether auth is enabled, its revision
 * (bumped by every change, as etcd's), the users (name, salted password hash, roles, no_password)
 * and the roles (their key permissions). Changed only by applied entries, kept in the meta record
 * (written in the same LevelDB batch as the applied index), carried by the snapshot stream's header
 * and counted in the whole-store Hash, as alarms and the membership are.
 *
 * Passwords never reach the log: the member that receives UserAdd or UserChangePassword hashes
 * the password (bcrypt, as etcd, with a salt of its own) before proposing, so the entry carries only the
 * hash and every member applies the same bytes.
 *
 * Permission checks are here too, pure over the record, so that the apply path (writes, whose
 * entry names its caller) and the serving member (reads, watches) decide alike. A caller with the
 * root role may do anything; otherwise a request's key range must be covered by the union of
 * the caller's permissions of the needed type (READWRITE counts as both), a range end of "\0"
 * meaning every key from the start on, as in etcd.
 */
import { Buffer } from 'node:buffer';
import {
  AuthOldRevisionError,
  AuthUserEmptyError,
  CorruptError,
  InvalidAuthManagementError,
  PermissionDeniedError,
  PermissionNotGrantedError,
  RoleAlreadyExistError,
  RoleEmptyError,
  RoleNotFoundError,
  RoleNotGrantedError,
  RootRoleNotExistError,
  RootUserNotExistError,
  UserAlreadyExistError,
  AuthFailedError,
  UserNotFoundError,
} from './errors.js';
import { Packr } from 'msgpackr';
import type { TxnRequest } from '../api/kv.js';

/** As records.ts's (which imports this module): the same input always gives the same bytes. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';
export const PERMISSION_TYPES: readonly PermissionType[] = ['READ', 'WRITE', 'READWRITE'];

/** A key permission of a role: one key (empty range end), a range [key, rangeEnd), or every key from key on (range end "\0"). */
export interface Permission {
  permType: PermissionType;
  key: Buffer;
  rangeEnd: Buffer;
}

export interface UserRecord {
  name: string;
  /** The password's salted hash (server/auth.ts's format); empty for a no_password user. */
  password: string;
  /** Granted roles, sorted. */
  roles: string[];
  /** Added with no_password: it authenticates by certificate only, never by password. */
  noPassword: boolean;
}

export interface RoleRecord {
  name: string;
  /** Sorted by key (permissions with equal keys in the order granted), as etcd keeps them. */
  permissions: Permission[];
}

export interface AuthRecord {
  enabled: boolean;
  /** etcd's auth revision: 1 at first, bumped by every change but enabling; a caller checked at an older one is refused at apply. */
  revision: number;
  /** Sorted by name. */
  users: UserRecord[];
  /** Sorted by name. */
  roles: RoleRecord[];
}

const ROOT = 'root';

/**
 * Who made a request, as the entry carries it: a user (checked at `authRevision`; the empty name
 * when the request came without a token; `certificate` when a verified client certificate's CN
 * named it rather than a token: such a user missing from the store is refused as etcd refuses
 * it, permission denied, not as an invalid token), or the member itself (its lease expiry),
 * which is never refused. An entry without one was proposed while auth was disabled: an empty user.
 */
export type Caller = { user: string; authRevision: number; certificate?: true } | { member: true };

/** An auth change as applied (the Auth service's writes; Authenticate only checks the user is still there). */
export type AuthRequest =
  | { op: 'enable' }
  | { op: 'disable' }
  /** `prefix`: the token's letters, chosen by the member that checked the password (src/server/auth.ts). */
  | { op: 'authenticate'; name: string; prefix: string }
  | { op: 'userAdd'; name: string; password: string; noPassword: boolean }
  | { op: 'userDelete'; name: string }
  | { op: 'userChangePassword'; name: string; password: string }
  | { op: 'userGrantRole'; user: string; role: string }
  | { op: 'userRevokeRole'; name: string; role: string }
  | { op: 'roleAdd'; name: string }
  | { op: 'roleDelete'; role: string }
  | { op: 'roleGrantPermission'; name: string; perm: Permission }
  | { op: 'roleRevokePermission'; role: string; key: Buffer; rangeEnd: Buffer };

export interface AuthResponse {
  header: { revision: number };
}

export const EMPTY_AUTH: AuthRecord = { enabled: false, revision: 1, users: [], roles: [] };

const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

const copyPermission = (p: Permission): Permission => ({ permType: p.permType, key: Buffer.from(p.key), rangeEnd: Buffer.from(p.rangeEnd) });
const copyUser = (u: UserRecord): UserRecord => ({ ...u, roles: [...u.roles] });
const copyRole = (r: RoleRecord): RoleRecord => ({ name: r.name, permissions: r.permissions.map(copyPermission) });

export const findUser = (a: AuthRecord, name: string): UserRecord | undefined => a.users.find((u) => u.name === name);
export const findRole = (a: AuthRecord, name: string): RoleRecord | undefined => a.roles.find((r) => r.name === name);
export const copyRoleRecord = copyRole;

/** A user with the root role: etcd's admin, permitted everything. */
function isAdmin(a: AuthRecord, user: string): boolean {
  return findUser(a, user)?.roles.includes(ROOT) ?? false;
}

/**
 * The auth record after `r` (a new record; the one given is not touched), checked as etcd's
 * auth store checks each change (who may make it is checkAdmin's business).
 */
export function withAuthChange(a: AuthRecord, r: AuthRequest): AuthRecord {
  const next: AuthRecord = { enabled: a.enabled, revision: a.revision, users: a.users.map(copyUser), roles: a.roles.map(copyRole) };
  const user = (name: string): UserRecord => {
    const u = findUser(next, name);
    if (!u) throw new UserNotFoundError();
    return u;
  };
  const role = (name: string): RoleRecord => {
    const x = findRole(next, name);
    if (!x) throw new RoleNotFoundError();
    return x;
  };
  switch (r.op) {
    case 'enable': {
      if (a.enabled) return a;
      const root = findUser(next, ROOT);
      if (!root) throw new RootUserNotExistError();
      if (!root.roles.includes(ROOT)) throw new RootRoleNotExistError();
      next.enabled = true;
      // etcd 3.4 keeps the revision when enabling (and bumps it when disabling): a JWT's
      // revision claim means the same on both.
      return next;
    }
    case 'disable':
      if (!a.enabled) return a;
      next.enabled = false;
      break;
    case 'authenticate':
      // Checked on the receiving member; the user may have been deleted since (etcd: auth failed).
      if (!findUser(next, r.name)) throw new AuthFailedError();
      return a;
    case 'userAdd':
      if (r.name === '') throw new AuthUserEmptyError();
      if (findUser(next, r.name)) throw new UserAlreadyExistError();
      next.users.push({ name: r.name, password: r.noPassword ? '' : r.password, roles: [], noPassword: r.noPassword });
      next.users.sort(byName);
      break;
    case 'userDelete':
      if (a.enabled && r.name === ROOT) throw new InvalidAuthManagementError();
      user(r.name);
      next.users = next.users.filter((u) => u.name !== r.name);
      break;
    case 'userChangePassword':
      user(r.name).password = r.password;
      break;
    case 'userGrantRole': {
      const u = user(r.user);
      // etcd grants the root role whether or not a role of that name exists.
      if (r.role !== ROOT) role(r.role);
      if (u.roles.includes(r.role)) return a; // etcd: ignored, no new revision
      u.roles = [...u.roles, r.role].sort();
      break;
    }
    case 'userRevokeRole': {
      if (a.enabled && r.name === ROOT && r.role === ROOT) throw new InvalidAuthManagementError();
      const u = user(r.name);
      if (!u.roles.includes(r.role)) throw new RoleNotGrantedError();
      u.roles = u.roles.filter((x) => x !== r.role);
      break;
    }
    case 'roleAdd':
      if (r.name === '') throw new RoleEmptyError();
      if (findRole(next, r.name)) throw new RoleAlreadyExistError();
      next.roles.push({ name: r.name, permissions: [] });
      next.roles.sort(byName);
      break;
    case 'roleDelete':
      if (a.enabled && r.role === ROOT) throw new InvalidAuthManagementError();
      role(r.role);
      next.roles = next.roles.filter((x) => x.name !== r.role);
      for (const u of next.users) u.roles = u.roles.filter((x) => x !== r.role);
      break;
    case 'roleGrantPermission': {
      const x = role(r.name);
      const same = x.permissions.find((p) => p.key.equals(r.perm.key) && p.rangeEnd.equals(r.perm.rangeEnd));
      if (same) same.permType = r.perm.permType;
      else {
        // After every permission whose key is not greater: sorted by key, equal keys in grant order.
        const at = x.permissions.findIndex((p) => Buffer.compare(p.key, r.perm.key) > 0);
        x.permissions.splice(at < 0 ? x.permissions.length : at, 0, copyPermission(r.perm));
      }
      break;
    }
    case 'roleRevokePermission': {
      const x = role(r.role);
      const at = x.permissions.findIndex((p) => p.key.equals(r.key) && p.rangeEnd.equals(r.rangeEnd));
      if (at < 0) throw new PermissionNotGrantedError();
      x.permissions.splice(at, 1);
      break;
    }
  }
  next.revision = a.revision + 1;
  return next;
}

// ---- permission checks -----------------------------------------------------------------

/** What a request needs of a key range: to read it, or to write it. */
type Access = 'READ' | 'WRITE';

/** A key range a request touches: one key (no range end), [key, rangeEnd), or key onward (range end "\0"). */
interface KeyRange {
  key: Buffer;
  rangeEnd?: Buffer | undefined;
}

/** One access a request needs. */
export interface Need {
  access: Access;
  range: KeyRange;
}

const isFromKey = (end: Buffer | undefined): boolean => end !== undefined && end.length === 1 && end[0] === 0;

/** [start, end) with end undefined for no upper bound. */
interface Span {
  start: Buffer;
  end: Buffer | undefined;
}

function spanOf(key: Buffer, rangeEnd: Buffer | undefined): Span {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { start: key, end: Buffer.concat([key, Buffer.from([0])]) };
  if (isFromKey(rangeEnd)) return { start: key, end: undefined };
  return { start: key, end: rangeEnd };
}

/** Whether the spans' union covers `want`. */
function covers(spans: Span[], want: Span): boolean {
  if (want.end !== undefined && Buffer.compare(want.end, want.start) <= 0) return true; // an empty range touches no key
  const sorted = [...spans].sort((a, b) => Buffer.compare(a.start, b.start));
  let reached = want.start; // every key below this (from want.start) is covered
  for (const s of sorted) {
    if (Buffer.compare(s.start, reached) > 0) break; // a gap
    if (s.end === undefined) return true;
    if (Buffer.compare(s.end, reached) > 0) reached = s.end;
    if (want.end !== undefined && Buffer.compare(reached, want.end) >= 0) return true;
  }
  return false;
}

/** Whether `user` may `access` every key of `range` (the user's permissions; the root role any). */
export function isPermitted(a: AuthRecord, user: string, access: Access, range: KeyRange): boolean {
  const u = findUser(a, user);
  if (!u) return false;
  if (u.roles.includes(ROOT)) return true;
  const spans: Span[] = [];
  for (const name of u.roles) {
    for (const p of findRole(a, name)?.permissions ?? []) {
      if (p.permType === 'READWRITE' || p.permType === access) spans.push(spanOf(p.key, p.rangeEnd));
    }
  }
  return covers(spans, spanOf(range.key, range.rangeEnd));
}

/**
 * Refuses a caller that may not do what `needs` lists (nothing when auth is disabled, or the
 * member itself asks): no user is "user name is empty", a check made at an older auth revision
 * "revision of auth store is old", a range not covered "permission denied".
 */
export function checkAccess(a: AuthRecord | undefined, caller: Caller | undefined, needs: readonly Need[]): void {
  if (!a?.enabled || needs.length === 0) return;
  const c = caller ?? { user: '', authRevision: 0 };
  if ('member' in c) return;
  if (c.user === '') throw new AuthUserEmptyError();
  if (c.authRevision < a.revision) throw new AuthOldRevisionError();
  for (const n of needs) if (!isPermitted(a, c.user, n.access, n.range)) throw new PermissionDeniedError();
}

/** Refuses a caller without the root role (auth enabled): what etcd asks of auth management. */
export function checkAdmin(a: AuthRecord | undefined, caller: Caller | undefined): void {
  if (!a?.enabled) return;
  const c = caller ?? { user: '', authRevision: 0 };
  if ('member' in c) return;
  if (c.user === '') throw new AuthUserEmptyError();
  if (!isAdmin(a, c.user)) throw new PermissionDeniedError();
}

/** What a txn needs: to read every compared range, and each op's access, in both branches and nested txns. */
export function txnNeeds(t: TxnRequest): Need[] {
  const needs: Need[] = (t.compare ?? []).map((c) => ({ access: 'READ', range: { key: c.key, rangeEnd: c.rangeEnd } }));
  for (const op of [...(t.success ?? []), ...(t.failure ?? [])]) {
    if ('requestRange' in op) needs.push({ access: 'READ', range: op.requestRange });
    else if ('requestPut' in op) {
      needs.push({ access: 'WRITE', range: { key: op.requestPut.key } });
      // etcd 3.4 lets a txn's put return the previous value unread; qkv asks for READ, as a plain put does.
      if (op.requestPut.prevKv) needs.push({ access: 'READ', range: { key: op.requestPut.key } });
    } else if ('requestDeleteRange' in op) {
      needs.push({ access: 'WRITE', range: op.requestDeleteRange });
      if (op.requestDeleteRange.prevKv) needs.push({ access: 'READ', range: op.requestDeleteRange });
    } else if ('requestTxn' in op) needs.push(...txnNeeds(op.requestTxn));
  }
  return needs;
}

// ---- the record's form in the meta record and the snapshot header ----------------------

const encodedAuth = new WeakMap<AuthRecord, Buffer>();

/**
 * The record as one msgpack blob, made once per record (records are replaced, never mutated):
 * the meta record is written with every batch, and the auth state rarely changes.
 */
export function encodeAuth(a: AuthRecord): Buffer {
  let packed = encodedAuth.get(a);
  if (!packed) {
    packed = packr.pack([
      a.enabled,
      a.revision,
      a.users.map((u) => [u.name, u.password, u.roles, u.noPassword]),
      a.roles.map((r) => [r.name, r.permissions.map((p) => [PERMISSION_TYPES.indexOf(p.permType), p.key, p.rangeEnd])]),
    ]);
    encodedAuth.set(a, packed);
  }
  return packed;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const bytes = (v: unknown): Buffer => {
  if (!(v instanceof Uint8Array)) throw new CorruptError('bad auth record (bytes)');
  return Buffer.from(v);
};

/** Inverse of encodeAuth; absent (no auth change ever applied) is undefined. */
export function decodeAuth(v: unknown): AuthRecord | undefined {
  if (v === undefined || v === null) return undefined;
  if (!(v instanceof Uint8Array)) throw new CorruptError('bad auth record');
  const o = packr.unpack(v) as unknown[];
  if (!Array.isArray(o) || o.length !== 4 || typeof o[0] !== 'boolean' || !Number.isSafeInteger(o[1]) || !Array.isArray(o[2]) || !Array.isArray(o[3])) {
    throw new CorruptError('bad auth record');
  }
  const users = o[2].map((u: unknown): UserRecord => {
    if (!Array.isArray(u) || typeof u[0] !== 'string' || typeof u[1] !== 'string' || !isStrings(u[2]) || typeof u[3] !== 'boolean') {
      throw new CorruptError('bad auth user record');
    }
    return { name: u[0], password: u[1], roles: [...u[2]], noPassword: u[3] };
  });
  const roles = o[3].map((r: unknown): RoleRecord => {
    if (!Array.isArray(r) || typeof r[0] !== 'string' || !Array.isArray(r[1])) throw new CorruptError('bad auth role record');
    return {
      name: r[0],
      permissions: r[1].map((p: unknown): Permission => {
        const t = Array.isArray(p) ? PERMISSION_TYPES[p[0] as number] : undefined;
        if (!Array.isArray(p) || t === undefined) throw new CorruptError('bad auth permission record');
        return { permType: t, key: bytes(p[1]), rangeEnd: bytes(p[2]) };
      }),
    };
  });
  const a: AuthRecord = { enabled: o[0], revision: o[1] as number, users, roles };
  encodedAuth.set(a, Buffer.from(v));
  return a;
}
