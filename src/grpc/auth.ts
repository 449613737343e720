/**
 * etcdserverpb.Auth over gRPC. qkv has no users yet, so authentication is never enabled, and
 * the service answers as etcd does in that state: Authenticate fails with "authentication is
 * not enabled" (clientv3 then goes on without a token, so `etcdctl --user` works), disabling
 * succeeds as a no-op. Managing users and roles is not supported yet.
 */
import * as S from '../api/schemas.js';
import type { Schema } from '../api/codec.js';
import { AuthNotEnabledError, UnsupportedError } from '../server/errors.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import { toServiceError } from './status.js';

const EMPTY: Schema = { type: 'etcdserverpb.Empty', fields: [] };

const USER_AND_ROLE_METHODS = [
  'AuthEnable',
  'UserAdd',
  'UserGet',
  'UserList',
  'UserDelete',
  'UserChangePassword',
  'UserGrantRole',
  'UserRevokeRole',
  'RoleAdd',
  'RoleGet',
  'RoleList',
  'RoleDelete',
  'RoleGrantPermission',
  'RoleRevokePermission',
] as const;

export function authService(ctx: GrpcContext): Record<string, UnaryHandler> {
  const handlers: Record<string, UnaryHandler> = {
    Authenticate: ctx.unary(EMPTY, EMPTY, async () => {
      throw new AuthNotEnabledError();
    }),
    AuthDisable: ctx.unary(EMPTY, S.HeaderOnlyResponse, async () => ({ header: ctx.member.header() })),
  };
  for (const method of USER_AND_ROLE_METHODS) {
    handlers[method] = (_call, callback) => callback(toServiceError(new UnsupportedError('authentication')));
  }
  return handlers;
}
