/**
 * `auth enable|disable`, `user ...` and `role ...` (etcdctl's auth_command.go, user_command.go,
 * role_command.go), with etcdctl's sentences. Passwords come as `name:password`, with
 * --new-user-password, or as the first line of stdin (etcdctl's --interactive=false).
 */
import { Buffer } from 'node:buffer';
import type { Command } from 'commander';
import { keyRange } from '../../api/keys.js';
import type { CliContext } from './global.js';
import { BadArgsError, readStdin } from './util.js';

const PERM_TYPES = { read: 'READ', write: 'WRITE', readwrite: 'READWRITE' } as const;

/** A password: given, else the first line of stdin. */
async function passwordOf(given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  return (await readStdin()).split('\n')[0] ?? '';
}

/** The key range of grant-permission and revoke-permission: a key, [key, end), --prefix or --from-key. */
function permRange(key: string, end: string | undefined, o: { prefix?: boolean; fromKey?: boolean }): { key: Buffer; rangeEnd?: Buffer } {
  if (o.prefix && o.fromKey) throw new BadArgsError('--from-key and --prefix flags are mutually exclusive');
  if (end !== undefined && (o.prefix || o.fromKey)) throw new BadArgsError('too many arguments');
  return keyRange(Buffer.from(key), {
    ...(o.prefix ? { prefix: true } : {}),
    ...(o.fromKey ? { fromKey: true } : {}),
    ...(end !== undefined ? { rangeEnd: Buffer.from(end) } : {}),
  });
}

export function register(program: Command, ctx: CliContext): void {
  const auth = program.command('auth').description('enable or disable authentication');
  auth
    .command('enable')
    .description('enables authentication')
    .action(async () => {
      const c = ctx.client();
      try {
        await c.authEnable();
      } catch (err) {
        // As etcdctl: a root user without the root role gets it (and the role is made).
        if (!(err instanceof Error) || !/root user does not have root role/.test(err.message)) throw err;
        await c.roleAdd('root').catch((e: Error) => {
          if (!/role name already exists/.test(e.message)) throw e;
        });
        await c.userGrantRole('root', 'root');
        await c.authEnable();
      }
      ctx.printer().authChanged('Authentication Enabled');
    });
  auth
    .command('disable')
    .description('disables authentication')
    .action(async () => {
      await ctx.client().authDisable();
      ctx.printer().authChanged('Authentication Disabled');
    });

  const user = program.command('user').description('user related commands');
  user
    .command('add <name>')
    .description('adds a new user (<user name or user:password>)')
    .option('--new-user-password <password>', 'the password of the new user')
    .option('--no-password', 'a user without a password (certificate authentication only)')
    .action(async (arg: string, o: { newUserPassword?: string; password?: boolean }) => {
      const colon = arg.indexOf(':');
      const name = colon < 0 ? arg : arg.slice(0, colon);
      const noPassword = o.password === false;
      const password = noPassword ? '' : colon >= 0 ? arg.slice(colon + 1) : await passwordOf(o.newUserPassword);
      await ctx.client().userAdd(name, password, noPassword);
      ctx.printer().authChanged(`User ${name} created`);
    });
  user
    .command('delete <name>')
    .description('deletes a user')
    .action(async (name: string) => {
      await ctx.client().userDelete(name);
      ctx.printer().authChanged(`User ${name} deleted`);
    });
  user
    .command('get <name>')
    .description('gets detailed information of a user')
    .option('--detail', 'show permissions of the roles granted to the user')
    .action(async (name: string, o: { detail?: boolean }) => {
      const c = ctx.client();
      const r = await c.userGet(name);
      const detail = o.detail ? await Promise.all(r.roles.map(async (role) => ({ role, perm: (await c.roleGet(role)).perm }))) : undefined;
      ctx.printer().userGet(name, r.roles, detail);
    });
  user
    .command('list')
    .description('lists all users')
    .action(async () => ctx.printer().names((await ctx.client().userList()).users));
  user
    .command('passwd <name>')
    .description('changes the password of a user (the new password from stdin)')
    .option('--new-user-password <password>', 'the new password')
    .action(async (name: string, o: { newUserPassword?: string }) => {
      await ctx.client().userChangePassword(name, await passwordOf(o.newUserPassword));
      ctx.printer().authChanged('Password updated');
    });
  user
    .command('grant-role <name> <role>')
    .description('grants a role to a user')
    .action(async (name: string, role: string) => {
      await ctx.client().userGrantRole(name, role);
      ctx.printer().authChanged(`Role ${role} is granted to user ${name}`);
    });
  user
    .command('revoke-role <name> <role>')
    .description('revokes a role from a user')
    .action(async (name: string, role: string) => {
      await ctx.client().userRevokeRole(name, role);
      ctx.printer().authChanged(`Role ${role} is revoked from user ${name}`);
    });

  const role = program.command('role').description('role related commands');
  role
    .command('add <name>')
    .description('adds a new role')
    .action(async (name: string) => {
      await ctx.client().roleAdd(name);
      ctx.printer().authChanged(`Role ${name} created`);
    });
  role
    .command('delete <name>')
    .description('deletes a role')
    .action(async (name: string) => {
      await ctx.client().roleDelete(name);
      ctx.printer().authChanged(`Role ${name} deleted`);
    });
  role
    .command('get <name>')
    .description('gets detailed information of a role')
    .action(async (name: string) => ctx.printer().roleGet(name, (await ctx.client().roleGet(name)).perm));
  role
    .command('list')
    .description('lists all roles')
    .action(async () => ctx.printer().names((await ctx.client().roleList()).roles));
  role
    .command('grant-permission <name> <type> <key> [endkey]')
    .description('grants a key (range) to a role: type read, write or readwrite')
    .option('--prefix', 'grant a prefix permission')
    .option('--from-key', 'grant a permission of keys greater than or equal to the given key')
    .action(async (name: string, type: string, key: string, end: string | undefined, o: { prefix?: boolean; fromKey?: boolean }) => {
      const permType = PERM_TYPES[type.toLowerCase() as keyof typeof PERM_TYPES];
      if (!permType) throw new BadArgsError(`invalid permission type ${type}`);
      await ctx.client().roleGrantPermission(name, { permType, ...permRange(key, end, o) });
      ctx.printer().authChanged(`Role ${name} updated`);
    });
  role
    .command('revoke-permission <name> <key> [endkey]')
    .description('revokes a key (range) from a role')
    .option('--prefix', 'revoke a prefix permission')
    .option('--from-key', 'revoke a permission of keys greater than or equal to the given key')
    .action(async (name: string, key: string, end: string | undefined, o: { prefix?: boolean; fromKey?: boolean }) => {
      const r = permRange(key, end, o);
      await ctx.client().roleRevokePermission(name, r.key, r.rangeEnd);
      const what = r.rangeEnd ? `range [${key}, ${r.rangeEnd.toString()})` : `key ${key}`;
      ctx.printer().authChanged(`Permission of ${what} is revoked from role ${name}`);
    });
}
