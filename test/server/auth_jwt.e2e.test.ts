/**
 * etcd's --auth-token jwt: a 3-member qkv cluster and a real etcd 3.4 started with the same RSA
 * key pair. Both issue JWTs (claims username, revision, exp) that the other accepts; a tampered
 * token is "invalid auth token"; a token issued before an auth change is "revision of auth store
 * is old", on both.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { RealEtcd } from '../grpc/helpers.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function post(base: string, p: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + p, { method: 'POST', body: JSON.stringify(body), headers: token ? { authorization: token } : {} });
  const parsed = (await res.json()) as Record<string, unknown>;
  const { header: _h, ...rest } = parsed;
  return { status: res.status, body: rest };
}

describe('JWT tokens, qkv against etcd with the same key', () => {
  let dir: string;
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let q: string;
  let e: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-jwt-'));
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pub = path.join(dir, 'jwt.pub');
    const priv = path.join(dir, 'jwt.key');
    await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const spec = `jwt,pub-key=${pub},priv-key=${priv},sign-method=RS256,ttl=10m`;
    cluster = await LocalCluster.create({ nodes: 3, authToken: spec });
    cluster.startAll();
    const [leader, real] = await Promise.all([cluster.waitForLeader(), RealEtcd.start([`--auth-token=${spec}`])]);
    etcd = real;
    q = cluster.url(cluster.names.find((n) => n !== leader)!);
    e = etcd.endpoint;
    for (const base of [q, e]) {
      await post(base, '/v3/auth/user/add', { name: 'root', password: 'rootpw' });
      await post(base, '/v3/auth/role/add', { name: 'root' });
      await post(base, '/v3/auth/user/grant', { user: 'root', role: 'root' });
      await post(base, '/v3/auth/enable', {});
    }
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const login = async (base: string): Promise<string> => {
    const r = await post(base, '/v3/auth/authenticate', { name: 'root', password: 'rootpw' });
    expect(r.status).toBe(200);
    return r.body['token'] as string;
  };
  const claims = (t: string): Record<string, unknown> => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

  test('each issues a JWT the other accepts; a tampered one is refused', async () => {
    const [tq, te] = await Promise.all([login(q), login(e)]);
    expect(tq.split('.')).toHaveLength(3);
    expect(Object.keys(claims(tq)).sort()).toEqual(Object.keys(claims(te)).sort());
    expect(claims(tq)['username']).toBe('root');
    expect(claims(tq)['revision']).toBe(claims(te)['revision']);
    // A token etcd signed works on qkv, and one qkv signed works on etcd.
    expect(await post(q, '/v3/kv/put', { key: b64('k'), value: b64('from etcd') }, te)).toEqual({ status: 200, body: {} });
    expect(await post(e, '/v3/kv/put', { key: b64('k'), value: b64('from qkv') }, tq)).toEqual({ status: 200, body: {} });
    // Another user's name in the claims, the signature kept: refused alike.
    const [h, , sig] = tq.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims(tq), username: 'someone' })).toString('base64url')}.${sig}`;
    const [fq, fe] = await Promise.all([post(q, '/v3/kv/range', { key: b64('k') }, forged), post(e, '/v3/kv/range', { key: b64('k') }, forged)]);
    expect(fq).toEqual(fe);
    expect(fq.status).toBe(401);
  });

  test('a token from before an auth change is "revision of auth store is old", alike', async () => {
    const [tq, te] = await Promise.all([login(q), login(e)]);
    await Promise.all([post(q, '/v3/auth/role/add', { name: 'later' }, tq), post(e, '/v3/auth/role/add', { name: 'later' }, te)]);
    const [pq, pe] = await Promise.all([
      post(q, '/v3/kv/put', { key: b64('k'), value: b64('x') }, tq),
      post(e, '/v3/kv/put', { key: b64('k'), value: b64('x') }, te),
    ]);
    expect(pq).toEqual(pe);
    expect(pq).toEqual({
      status: 400,
      body: { error: 'etcdserver: revision of auth store is old', message: 'etcdserver: revision of auth store is old', code: 3 },
    });
  });
});
