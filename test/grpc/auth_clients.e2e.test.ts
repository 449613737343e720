/**
 * Authentication over gRPC with the real clients, unchanged: etcdctl (`--user`, which sends
 * Authenticate and then its token as the `token` metadata) and the etcd3 npm client (its users
 * and roles API, `auth` option, and errors), each against a 3-member qkv cluster (through a
 * follower) and against a real etcd 3.4, compared.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Etcd3, Range } from 'etcd3';
import type { LocalCluster } from '../server/cluster_harness.js';
import * as grpc from '@grpc/grpc-js';
import { etcdctl, outcomeRecorder, type RealEtcd, startBesideEtcd } from './helpers.js';
import { RawClient } from './raw_client.js';

/** etcdctl's answer without its retry warnings (they name a random client id and the time). */
const ctl = async (endpoint: string, args: string[]): Promise<{ code: number | null; stdout: string; error: string }> => {
  const r = await etcdctl(endpoint, args);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{"level":"warn"'));
  return { code: r.code, stdout: r.stdout, error: lines.join('\n') };
};

describe('etcdctl and etcd3 with auth, qkv against etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let qUrl: string;
  let leaderUrl: string;
  let followerUrls: string[];
  const clients: Etcd3[] = [];

  beforeAll(async () => {
    let follower: string;
    let leader: string;
    ({ cluster, etcd, follower, leader } = await startBesideEtcd());
    qUrl = cluster.url(follower);
    leaderUrl = cluster.url(leader);
    followerUrls = cluster.names.filter((n) => n !== leader).map((n) => cluster.url(n));
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.destroy();
    await etcd?.stop();
  });

  test('etcdctl: users, roles, permissions and keys, as etcd prints them', async () => {
    const run = async (endpoint: string): Promise<unknown[]> => {
      const out: unknown[] = [];
      const as = (user: string | undefined, ...args: string[]): Promise<void> =>
        ctl(endpoint, [...(user ? [`--user=${user}`] : []), ...args]).then((r) => void out.push([args.join(' '), r]));
      await as(undefined, 'user', 'add', 'root:rootpw');
      await as(undefined, 'auth', 'enable');
      const root = 'root:rootpw';
      await as(root, 'user', 'add', 'alice:alicepw');
      await as(root, 'user', 'add', 'alice:again');
      await as(root, 'role', 'add', 'app');
      await as(root, 'role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix');
      await as(root, 'role', 'grant-permission', 'app', 'read', '/config');
      await as(root, 'role', 'grant-permission', 'app', 'write', 'w', 'x');
      await as(root, 'user', 'grant-role', 'alice', 'app');
      await as(root, 'user', 'grant-role', 'alice', 'nosuch');
      await as(root, 'role', 'get', 'app');
      await as(root, 'role', 'list');
      await as(root, 'user', 'get', 'alice');
      await as(root, 'user', 'get', 'alice', '--detail');
      await as(root, 'user', 'list');
      await as(root, 'put', '/config', 'c');
      await as('alice:alicepw', 'put', '/app/x', '1');
      await as('alice:alicepw', 'get', '/app/', '--prefix');
      await as('alice:alicepw', 'get', '/config');
      await as('alice:alicepw', 'put', '/config', 'mine');
      await as('alice:alicepw', 'get', '/other');
      await as('alice:alicepw', 'del', '/app/', '--prefix');
      await as('alice:alicepw', 'user', 'list');
      // A watch partly outside her range: canceled by the member serving it (a follower on qkv).
      await as('alice:alicepw', 'watch', '/app/', '/b');
      await as('alice:alicepw', 'auth', 'disable');
      await as('alice:wrong', 'get', '/app/x');
      await as(undefined, 'get', '/app/x');
      await as(root, 'role', 'revoke-permission', 'app', '/config');
      await as(root, 'role', 'revoke-permission', 'app', '/nothing');
      await as(root, 'user', 'revoke-role', 'alice', 'app');
      await as(root, 'user', 'revoke-role', 'alice', 'app');
      await as(root, 'user', 'delete', 'root');
      await as(root, 'role', 'delete', 'app');
      await as(root, 'user', 'delete', 'alice');
      await as(root, 'user', 'delete', 'alice');
      await as(root, 'auth', 'disable');
      await as(undefined, 'get', '/config');
      return out;
    };
    const [q, e] = await Promise.all([run(qUrl), run(etcd.endpoint)]);
    expect(q).toEqual(e);
    // Spot checks of what the comparison covers.
    expect(JSON.stringify(q)).toContain('etcdserver: permission denied');
    expect(JSON.stringify(q)).toContain('Authentication Enabled');
    expect(JSON.stringify(q)).toContain('watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)');
    expect(q).toContainEqual(['get /app/ --prefix', { code: 0, stdout: '/app/x\n1\n', error: '' }]);
  }, 180_000);

  test('etcd3: users and roles through its API, and its auth option with its error classes', async () => {
    const run = async (host: string): Promise<unknown[]> => {
      const { out, outcome } = outcomeRecorder();
      const admin = new Etcd3({ hosts: host, dialTimeout: 5_000 });
      clients.push(admin);
      // root and its role are there from the etcdctl test (which ends with auth disabled).
      await outcome('root again', async () => (await admin.user('root').create('rootpw')).name);
      await outcome('root role again', async () => (await admin.role('root').create()).name);
      await outcome('grant root again', async () => (await admin.user('root').addRole('root')).name);
      await outcome('role', async () => (await admin.role('svc').create()).name);
      await outcome('role again', async () => (await admin.role('svc').create()).name);
      await outcome('grant', async () => {
        await admin.role('svc').grant({ permission: 'Readwrite', range: Range.prefix('svc/') });
        await admin.role('svc').grant({ permission: 'Read', key: 'shared' });
        return (await admin.role('svc').permissions()).map((p) => [p.permission, p.range.start.toString(), p.range.end.toString()]);
      });
      await outcome('user', async () => (await admin.user('bob').create('bobpw')).name);
      await outcome('user again', async () => (await admin.user('bob').create('x')).name);
      await outcome('add role', async () => (await admin.user('bob').addRole('svc')).name);
      await outcome('roles of bob', async () => (await admin.user('bob').roles()).map((r) => r.name));
      await outcome('users', async () => (await admin.getUsers()).map((u) => u.name));
      await outcome('roles', async () => (await admin.getRoles()).map((r) => r.name));
      await outcome('unknown user', async () => admin.user('nobody').roles());
      await outcome('unknown role', async () => admin.role('nobody').permissions());
      await outcome('enable', async () => admin.auth.authEnable());
      await outcome('no credentials', async () => admin.get('svc/a').string());
      const rootClient = new Etcd3({ hosts: host, dialTimeout: 5_000, auth: { username: 'root', password: 'rootpw' } });
      const bob = new Etcd3({ hosts: host, dialTimeout: 5_000, auth: { username: 'bob', password: 'bobpw' } });
      const wrong = new Etcd3({ hosts: host, dialTimeout: 5_000, auth: { username: 'bob', password: 'nope' } });
      clients.push(rootClient, bob, wrong);
      await outcome('root put shared', async () => (await rootClient.put('shared').value('s')).header.revision !== undefined);
      await outcome('bob put', async () => (await bob.put('svc/a').value('1')).header.revision !== undefined);
      await outcome('bob get', async () => bob.get('svc/a').string());
      await outcome('bob get shared', async () => bob.get('shared').string());
      await outcome('bob put shared', async () => bob.put('shared').value('mine'));
      await outcome('bob range', async () => bob.getAll().prefix('s').keys());
      await outcome('bob users', async () => bob.getUsers());
      await outcome('wrong password', async () => wrong.get('svc/a').string());
      await outcome('remove role', async () => (await rootClient.user('bob').removeRole('svc')).name);
      await outcome('remove role again', async () => (await rootClient.user('bob').removeRole('svc')).name);
      await outcome('bob get after', async () => bob.get('svc/a').string());
      await outcome('disable', async () => rootClient.auth.authDisable());
      return out;
    };
    const [q, e] = await Promise.all([run(qUrl), run(etcd.endpoint)]);
    const shape = (xs: unknown[]): unknown[] =>
      xs.map((x) => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (typeof v === 'object' && v !== null && 'header' in v ? {} : v))) as unknown);
    expect(shape(q)).toEqual(shape(e));
    expect(JSON.stringify(q)).toContain('EtcdPermissionDeniedError');
    expect(JSON.stringify(q)).toContain('EtcdAuthenticationFailedError');
    expect(q).toContainEqual(['bob get', 'ok', '1']);
    expect(q).toContainEqual(['users', 'ok', ['bob', 'root']]);
  }, 180_000);

  test('a gRPC watch on a follower with a token just issued by the leader is served, not refused', async () => {
    // Auth is enabled again here with root (the tests above end with it disabled).
    const admin = new Etcd3({ hosts: leaderUrl, dialTimeout: 5_000 });
    clients.push(admin);
    await admin.auth.authEnable();
    const watchers = followerUrls.map((u) => new RawClient(u));
    try {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${leaderUrl}/v3/auth/authenticate`, { method: 'POST', body: JSON.stringify({ name: 'root', password: 'rootpw' }) });
        const { token } = (await res.json()) as { token: string };
        const md = new grpc.Metadata();
        md.set('token', token);
        const streams = watchers.map((w) => w.stream('Watch', 'Watch', md));
        for (const st of streams) st.send({ create_request: { key: Buffer.from('svc/'), range_end: Buffer.from('svc0') } });
        for (const st of streams) {
          const [created] = await st.count(1);
          expect(created).toMatchObject({ created: true, canceled: false });
          st.cancel();
        }
      }
    } finally {
      for (const w of watchers) w.close();
      const root = new Etcd3({ hosts: leaderUrl, dialTimeout: 5_000, auth: { username: 'root', password: 'rootpw' } });
      clients.push(root);
      await root.auth.authDisable();
    }
  }, 60_000);
});
