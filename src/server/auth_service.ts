/**
 * etcd's Auth service on a member, as etcd 3.4 answers it: changes are proposed with their
 * caller and checked at apply (the root role; src/mvcc/auth.ts), so every member decides alike;
 * UserGet, RoleGet and the lists are read after a ReadIndex barrier (etcd sends them through
 * Raft: the same linearizable answer), a user may read itself and the roles it has.
 * Authenticate checks the password here, under the guessing bound (auth.ts), then proposes the
 * token's letters, and answers the token once its entry is applied.
 */
import { Buffer } from 'node:buffer';
import {
  checkAdmin,
  copyRoleRecord,
  findRole,
  findUser,
  AuthFailedError,
  NoPasswordUserError,
  RoleNotFoundError,
  UserAlreadyExistError,
  UserNotFoundError,
  AuthUserEmptyError,
  PermissionDeniedError,
} from '../mvcc/index.js';
import type { AuthRecord, Caller, Permission, PermissionType } from '../mvcc/types.js';
import { hashPassword, verifyPassword } from './password.js';
import { AuthNotEnabledError } from './errors.js';
import type { Member } from './member.js';
import type { ApiHeader } from '../api/types.js';

type Header = { header: ApiHeader };

const EMPTY_RECORD: AuthRecord = { enabled: false, revision: 0, users: [], roles: [] };

async function change(m: Member, r: Parameters<Member['authChange']>[0], caller: Caller | undefined): Promise<Header> {
  return { header: m.header((await m.authChange(r, caller)).revision) };
}

export async function authEnable(m: Member, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'enable' }, caller);
}

export async function authDisable(m: Member, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'disable' }, caller);
}

/**
 * etcd's Authenticate: auth must be enabled; a user that does not exist and a wrong password are
 * the same failure; a no_password user cannot authenticate with a password.
 */
export async function authenticate(m: Member, req: { name: string; password: string }, connection: string): Promise<Header & { token: string }> {
  const a = m.store.auth();
  if (!a?.enabled) throw new AuthNotEnabledError();
  await m.authn.limited(req.name, connection, async () => {
    const user = findUser(a, req.name);
    if (!user) throw new AuthFailedError();
    if (user.noPassword) throw new NoPasswordUserError();
    if (!(await verifyPassword(req.password, user.password))) throw new AuthFailedError();
  });
  return issueToken(m, req.name);
}

/**
 * A token for `name`, whose credentials were checked already (a password, or the client
 * certificate of a call forwarded to the leader): its Authenticate entry proposed and applied.
 */
async function issueToken(m: Member, name: string): Promise<Header & { token: string }> {
  const prefix = m.authn.newTokenPrefix();
  const { revision } = await m.authChange({ op: 'authenticate', name, prefix }, undefined);
  const token = m.authn.tokenFor(prefix, name, m.store.auth()?.revision ?? 0);
  if (token === undefined) throw new AuthFailedError();
  return { header: m.header(revision), token };
}

/**
 * The token a follower sends a leader-only call (LeaseRevoke, MoveLeader) with, for a caller it
 * knows by its certificate's CN: a CN that names no user is refused as etcd refuses it (it finds
 * no such user at the permission check: permission denied), not as a failed login.
 */
export async function tokenToForward(m: Member, user: string): Promise<string> {
  if (!findUser(m.store.auth() ?? EMPTY_RECORD, user)) throw new PermissionDeniedError();
  return (await issueToken(m, user)).token;
}

export async function userAdd(
  m: Member,
  req: { name: string; password: string; options?: { noPassword?: boolean } },
  caller: Caller | undefined,
): Promise<Header> {
  if (req.name === '') throw new AuthUserEmptyError();
  const noPassword = req.options?.noPassword ?? false;
  // Refused before the (slow) hash when it is certain to be refused at apply.
  if (findUser(m.store.auth() ?? EMPTY_RECORD, req.name)) throw new UserAlreadyExistError();
  const password = noPassword ? '' : await hashPassword(req.password);
  return change(m, { op: 'userAdd', name: req.name, password, noPassword }, caller);
}

export async function userChangePassword(m: Member, req: { name: string; password: string }, caller: Caller | undefined): Promise<Header> {
  if (!findUser(m.store.auth() ?? EMPTY_RECORD, req.name)) throw new UserNotFoundError();
  return change(m, { op: 'userChangePassword', name: req.name, password: await hashPassword(req.password) }, caller);
}

export async function userDelete(m: Member, name: string, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'userDelete', name }, caller);
}

export async function userGrantRole(m: Member, req: { user: string; role: string }, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'userGrantRole', user: req.user, role: req.role }, caller);
}

export async function userRevokeRole(m: Member, req: { name: string; role: string }, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'userRevokeRole', name: req.name, role: req.role }, caller);
}

export async function roleAdd(m: Member, name: string, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'roleAdd', name }, caller);
}

export async function roleDelete(m: Member, role: string, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'roleDelete', role }, caller);
}

export async function roleGrantPermission(
  m: Member,
  req: { name: string; perm?: { permType?: PermissionType; key?: Buffer; rangeEnd?: Buffer } },
  caller: Caller | undefined,
): Promise<Header> {
  const p = req.perm ?? {};
  const perm: Permission = { permType: p.permType ?? 'READ', key: bytesOf(p.key), rangeEnd: bytesOf(p.rangeEnd) };
  return change(m, { op: 'roleGrantPermission', name: req.name, perm }, caller);
}

export async function roleRevokePermission(m: Member, req: { role: string; key?: Buffer; rangeEnd?: Buffer }, caller: Caller | undefined): Promise<Header> {
  return change(m, { op: 'roleRevokePermission', role: req.role, key: bytesOf(req.key), rangeEnd: bytesOf(req.rangeEnd) }, caller);
}

const bytesOf = (b: Buffer | undefined): Buffer => (b === undefined ? Buffer.alloc(0) : b);

/** A user's roles: the root role's holders read anyone, a user itself. */
export async function userGet(m: Member, name: string, caller: Caller | undefined): Promise<Header & { roles: string[] }> {
  const a = (await m.authRead()) ?? EMPTY_RECORD;
  if (!(caller && 'user' in caller && caller.user === name && caller.user !== '')) checkAdmin(a, caller);
  const u = findUser(a, name);
  if (!u) throw new UserNotFoundError();
  return { header: m.header(), roles: [...u.roles] };
}

export async function userList(m: Member, caller: Caller | undefined): Promise<Header & { users: string[] }> {
  const a = (await m.authRead()) ?? EMPTY_RECORD;
  checkAdmin(a, caller);
  return { header: m.header(), users: a.users.map((u) => u.name) };
}

/** A role's permissions: the root role's holders read any, a user the roles it has. */
export async function roleGet(m: Member, role: string, caller: Caller | undefined): Promise<Header & { perm: Permission[] }> {
  const a = (await m.authRead()) ?? EMPTY_RECORD;
  const own = caller !== undefined && 'user' in caller && (findUser(a, caller.user)?.roles.includes(role) ?? false);
  if (!own) checkAdmin(a, caller);
  const r = findRole(a, role);
  if (!r) throw new RoleNotFoundError();
  return { header: m.header(), perm: copyRoleRecord(r).permissions };
}

export async function roleList(m: Member, caller: Caller | undefined): Promise<Header & { roles: string[] }> {
  const a = (await m.authRead()) ?? EMPTY_RECORD;
  checkAdmin(a, caller);
  return { header: m.header(), roles: a.roles.map((r) => r.name) };
}
