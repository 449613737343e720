/**
 * TLS and auth together: a 3-member qkv cluster with https:// URLs and --client-cert-auth, auth
 * enabled, beside a real etcd 3.4 with the same certificates (test/tls/make-certs.sh) and the
 * same users: root, and alice whose role reads and writes /alice/ only. Compared side by side:
 *
 * - a verified client certificate's CN is the user when no token comes (etcd's
 *   AuthInfoFromTLS), on the leader and on a follower; a token, when one comes, is used instead
 *   (a wrong password is refused, not replaced by the certificate); a leader-only call through
 *   a follower (LeaseRevoke) is made as the certificate's user, not as the follower's own
 *   certificate it is forwarded with;
 * - Lock and Election as alice: inside her prefix served, outside refused;
 * - the etcd3 npm client (certificate alone, certificate and password, its roles API) and a
 *   raw HTTPS client of the gateway (which, as etcd 3.4's, refuses a certificate with a CN once
 *   auth is on: it would not take the CN as the user);
 * - bad inputs under TLS + auth (a wrong password, a key one byte outside, a txn whose else
 *   branch writes outside) refused with etcd's error, and the revision unchanged after them.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster, makeTestCerts, type HarnessTls } from '../server/cluster_harness.js';
import { CtlChild, etcdctl, outcomeRecorder, RealEtcd } from '../grpc/helpers.js';

/** etcdctl's answer without its retry warnings (they name a random client id and the time). */
interface Answer {
  code: number | null;
  stdout: string;
  error: string;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('TLS + auth: qkv beside the real etcd, same certificates and users', () => {
  let certs: string;
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let leader: string;
  let follower: string;
  const clients: Etcd3[] = [];
  const file = (name: string): string => path.join(certs, name);

  /** etcdctl's flags to show certificate `cert` (client: CN=root; alice: CN=alice). */
  const certFlags = (cert: string): string[] => [`--cacert=${file('ca.pem')}`, `--cert=${file(`${cert}.pem`)}`, `--key=${file(`${cert}-key.pem`)}`];
  /** etcdctl at `endpoint` showing certificate `cert` (client: CN=root; alice: CN=alice), its answer with lease ids made stable. */
  const ctl = async (endpoint: string, cert: string, args: string[], input?: string): Promise<Answer> => {
    const r = await etcdctl(endpoint, [...certFlags(cert), ...args], {
      ...(input !== undefined ? { input } : {}),
    });
    const error = r.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('{"level":"warn"'))
      .join('\n');
    return { code: r.code, stdout: r.stdout.replace(/\b[0-9a-f]{10,16}\b/g, '<lease>'), error };
  };
  /** The same etcdctl call on qkv's `member` and on etcd. */
  const both = (member: string, cert: string, args: string[], input?: string): Promise<[Answer, Answer]> =>
    Promise.all([ctl(cluster.url(member), cert, args, input), ctl(etcd.endpoint, cert, args, input)]);
  /** A lease granted at `endpoint` by `cert`'s user, its id in hex. */
  const grant = async (endpoint: string, cert: string): Promise<string> => {
    const r = await etcdctl(endpoint, [...certFlags(cert), 'lease', 'grant', '60']);
    const id = /lease ([0-9a-f]+) granted/.exec(r.stdout)?.[1];
    if (!id) throw new Error(`lease grant: ${r.stdout} ${r.stderr}`);
    return id;
  };
  /** The store's revision as root sees it. */
  const revisionOf = async (endpoint: string): Promise<number> => {
    const r = await ctl(endpoint, 'client', ['get', 'x', '-w', 'json']);
    return Number((JSON.parse(r.stdout) as { header: { revision: number } }).header.revision);
  };

  beforeAll(async () => {
    certs = await makeTestCerts();
    const tls: HarnessTls = { dir: certs, clientCertAuth: true };
    cluster = await LocalCluster.create({ nodes: 3, tls });
    cluster.startAll();
    [leader, etcd] = await Promise.all([cluster.waitForLeader(), RealEtcd.start([], tls)]);
    follower = cluster.names.find((n) => n !== leader)!;
    const setup = [
      ['user', 'add', 'root:rootpw'],
      ['user', 'add', 'alice:alicepw'],
      ['role', 'add', 'app'],
      ['role', 'grant-permission', 'app', 'readwrite', '/alice/', '--prefix'],
      ['user', 'grant-role', 'alice', 'app'],
      ['auth', 'enable'],
      // As root by the certificate's CN (client.pem is CN=root): no password.
      ['put', '/bob/k', 'b'],
    ];
    for (const args of setup) {
      const [q, e] = await both(leader, 'client', args);
      expect(q).toEqual(e);
      expect(q.code).toBe(0);
    }
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.destroy();
    await etcd?.stop();
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  test("the client certificate's CN is the user without a token, on the leader and on a follower; a token comes first", async () => {
    for (const member of [leader, follower]) {
      const out: unknown[] = [];
      const step = async (cert: string, ...args: string[]): Promise<void> => {
        const [q, e] = await both(member, cert, args);
        out.push([cert, args.join(' '), q]);
        expect([cert, args, q]).toEqual([cert, args, e]);
      };
      await step('alice', 'put', `/alice/${member}`, 'v');
      await step('alice', 'get', `/alice/${member}`);
      await step('alice', 'get', '/alice/', '--prefix', '--keys-only');
      await step('alice', 'put', '/bob/k', 'mine');
      await step('alice', 'get', '/bob/k');
      await step('alice', 'del', '/alice/', '--prefix');
      await step('alice', 'user', 'list');
      // A token wins over the certificate: root's password with alice's certificate is root.
      await step('alice', '--user=root:rootpw', 'get', '/bob/k', '--print-value-only');
      // A wrong password is refused, not replaced by the certificate's user.
      await step('alice', '--user=alice:wrong', 'get', `/alice/${member}`);
      await step('client', 'user', 'list');
      const text = JSON.stringify(out);
      expect(text).toContain('etcdserver: permission denied');
      expect(text).toContain('etcdserver: authentication failed, invalid user ID or password');
      expect(out).toContainEqual(['alice', `get /alice/${member}`, { code: 0, stdout: `/alice/${member}\nv\n`, error: '' }]);
      expect(out).toContainEqual(['alice', '--user=root:rootpw get /bob/k --print-value-only', { code: 0, stdout: 'b\n', error: '' }]);
    }
  }, 120_000);

  test("a lease revoked through a follower is revoked as the certificate's user (the caller travels with the forwarded call)", async () => {
    const out: unknown[] = [];
    for (const [endpoint, qkv] of [
      [cluster.url(follower), true],
      [etcd.endpoint, false],
    ] as const) {
      // LeaseRevoke needs write permission on every key of the lease (etcd's checkLeasePuts).
      const own = await grant(endpoint, 'alice');
      const theirs = await grant(endpoint, 'alice');
      const r: Answer[] = [];
      r.push(await ctl(endpoint, 'alice', ['put', '/alice/leased', 'x', `--lease=${own}`]));
      r.push(await ctl(endpoint, 'client', ['put', '/bob/leased', 'x', `--lease=${theirs}`]));
      r.push(await ctl(endpoint, 'alice', ['lease', 'revoke', own]));
      r.push(await ctl(endpoint, 'alice', ['lease', 'revoke', theirs]));
      r.push(await ctl(endpoint, 'client', ['get', '/alice/leased', '/alice/leasee', '--keys-only']));
      r.push(await ctl(endpoint, 'client', ['get', '/bob/leased', '--keys-only']));
      out.push(r);
      if (qkv) expect(r[2]).toEqual({ code: 0, stdout: 'lease <lease> revoked\n', error: '' });
    }
    expect(out[0]).toEqual(out[1]);
    expect(JSON.stringify(out[0])).toContain('etcdserver: permission denied');
  }, 60_000);

  test('Lock and Election as alice (by her certificate): inside her prefix served, outside refused, as on etcd', async () => {
    for (const member of [leader, follower]) {
      const locked = await both(member, 'alice', ['lock', `/alice/lock-${member}`, '--', 'echo', 'in-lock']);
      expect(locked[0]).toEqual(locked[1]);
      expect(locked[0]).toEqual({ code: 0, stdout: 'in-lock\n', error: '' });
      const refused = await both(member, 'alice', ['lock', '/bob/lock', '--', 'echo', 'in-lock']);
      expect(refused[0]).toEqual(refused[1]);
      expect(refused[0].error).toContain('etcdserver: permission denied');
      const campaign = await both(member, 'alice', ['elect', '/bob/election', 'p']);
      expect(campaign[0]).toEqual(campaign[1]);
      expect(campaign[0].error).toContain('etcdserver: permission denied');
      const observe = await both(member, 'alice', ['elect', '-l', '/bob/election']);
      expect(observe[0]).toEqual(observe[1]);
      expect(observe[0].code).not.toBe(0);
      // A campaign inside her prefix wins, and she observes it.
      const flags = certFlags('alice');
      const leaders = [cluster.url(member), etcd.endpoint].map((ep) => new CtlChild(ep, [...flags, 'elect', `/alice/election-${member}`, 'p1']));
      const observers = [cluster.url(member), etcd.endpoint].map((ep) => new CtlChild(ep, [...flags, 'elect', '-l', `/alice/election-${member}`]));
      try {
        const won = await Promise.all(leaders.map((c) => c.waitFor((o) => o.includes('p1'), 'the campaign to win')));
        const seen = await Promise.all(observers.map((c) => c.waitFor((o) => o.includes('p1'), 'the observer to see the leader')));
        const shape = (o: string): string => o.replace(/\/[0-9a-f]+\n/g, '/<lease>\n');
        expect(won.map(shape)).toEqual([`/alice/election-${member}/<lease>\np1\n`, `/alice/election-${member}/<lease>\np1\n`]);
        expect(shape(seen[0]!)).toBe(shape(seen[1]!));
      } finally {
        await Promise.all([...leaders, ...observers].map((c) => c.stop()));
      }
    }
  }, 120_000);

  test('the etcd3 client with a certificate (alone, with a password) and its roles API; a raw HTTPS client of the gateway', async () => {
    const credentials = (cert: string): { rootCertificate: Buffer; certChain: Buffer; privateKey: Buffer } => ({
      rootCertificate: readFileSync(file('ca.pem')),
      certChain: readFileSync(file(`${cert}.pem`)),
      privateKey: readFileSync(file(`${cert}-key.pem`)),
    });
    const runEtcd3 = async (host: string): Promise<unknown[]> => {
      const { out, outcome } = outcomeRecorder();
      const alice = new Etcd3({ hosts: host, dialTimeout: 5_000, credentials: credentials('alice') });
      const aliceAsRoot = new Etcd3({ hosts: host, dialTimeout: 5_000, credentials: credentials('alice'), auth: { username: 'root', password: 'rootpw' } });
      const wrong = new Etcd3({ hosts: host, dialTimeout: 5_000, credentials: credentials('alice'), auth: { username: 'alice', password: 'nope' } });
      const root = new Etcd3({ hosts: host, dialTimeout: 5_000, credentials: credentials('client') });
      clients.push(alice, aliceAsRoot, wrong, root);
      await outcome('alice put', async () => (await alice.put('/alice/e3').value('1')).header.revision !== undefined);
      await outcome('alice get', async () => alice.get('/alice/e3').string());
      await outcome('alice get outside', async () => alice.get('/bob/k').string());
      await outcome('alice put outside', async () => alice.put('/bob/e3').value('x'));
      await outcome('alice roles', async () => alice.getRoles());
      await outcome('alice own roles', async () => (await alice.user('alice').roles()).map((r) => r.name));
      await outcome('password first', async () => aliceAsRoot.get('/bob/k').string());
      await outcome('wrong password', async () => wrong.get('/alice/e3').string());
      await outcome('root roles', async () => (await root.getRoles()).map((r) => r.name));
      await outcome('root role of alice', async () =>
        (await root.role('app').permissions()).map((p) => [p.permission, p.range.start.toString(), p.range.end.toString()]),
      );
      await outcome('root users', async () => (await root.getUsers()).map((u) => u.name));
      return out;
    };
    const [q, e] = await Promise.all([runEtcd3(cluster.url(follower)), runEtcd3(etcd.endpoint)]);
    expect(q).toEqual(e);
    expect(q).toContainEqual(['alice get', 'ok', '1']);
    expect(q).toContainEqual(['password first', 'ok', 'b']);
    expect(JSON.stringify(q)).toContain('EtcdPermissionDeniedError');
    expect(JSON.stringify(q)).toContain('EtcdAuthenticationFailedError');

    // A raw HTTPS client of the gateway with a certificate: etcd 3.4 refuses every /v3/ call once auth is on, its CN never being the user there.
    const post = (base: string, url: string, body: object, cert: string, token?: string): Promise<{ status: number; type: string; body: string }> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          `${base}${url}`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(token ? { authorization: token } : {}) },
            ca: readFileSync(file('ca.pem')),
            cert: readFileSync(file(`${cert}.pem`)),
            key: readFileSync(file(`${cert}-key.pem`)),
            agent: false,
          },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: text }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    const runRaw = async (base: string): Promise<unknown[]> => [
      await post(base, '/v3/kv/range', { key: b64('/alice/e3') }, 'alice'),
      await post(base, '/v3/kv/put', { key: b64('/alice/raw'), value: b64('x') }, 'alice'),
      await post(base, '/v3/auth/authenticate', { name: 'alice', password: 'alicepw' }, 'alice'),
      await post(base, '/v3/kv/range', { key: b64('/bob/k') }, 'client'),
      await post(base, '/v3/lease/grant', { TTL: 10 }, 'client'),
    ];
    const [rq, re] = await Promise.all([runRaw(cluster.url(follower)), runRaw(etcd.endpoint)]);
    expect(rq).toEqual(re);
    expect(rq[0]).toEqual({
      status: 400,
      type: 'text/plain; charset=utf-8',
      body: 'CommonName of client sending a request against gateway will be ignored and not used as expected\n',
    });
    // Nothing was written by the refused calls.
    const [gq, ge] = await both(follower, 'client', ['get', '/alice/raw']);
    expect(gq).toEqual(ge);
    expect(gq).toEqual({ code: 0, stdout: '', error: '' });
  }, 120_000);

  test('bad inputs under TLS + auth get etcd’s errors and change nothing', async () => {
    const before = await Promise.all([revisionOf(cluster.url(leader)), revisionOf(etcd.endpoint)]);
    const cases: [string, string[], string?][] = [
      ['wrong password', ['--user=alice:wrong', 'put', '/alice/bad', 'x']],
      ['one byte outside the prefix', ['put', '/alice0', 'x']],
      ['a range one byte past the prefix', ['del', '/alice/', '/alice1']],
      ['a txn whose else branch writes outside', ['txn'], 'value("/alice/none") = "z"\n\nput /alice/then x\n\nput /bob/else x\n\n'],
    ];
    for (const member of [leader, follower]) {
      for (const [name, args, input] of cases) {
        const [q, e] = await both(member, 'alice', args, input);
        expect([name, q]).toEqual([name, e]);
        expect(q.code).not.toBe(0);
      }
    }
    const after = await Promise.all([revisionOf(cluster.url(leader)), revisionOf(etcd.endpoint)]);
    expect(after).toEqual(before);
    const [q, e] = await both(follower, 'client', ['get', '', '--from-key', '--keys-only']);
    expect(q).toEqual(e);
    expect(q.stdout).not.toMatch(/\/bad|\/alice0|\/then|\/else/);
  }, 120_000);

  // Last: it deletes alice.
  test('a certificate whose CN names no user (alice deleted): permission denied on the leader and through a follower, as on etcd', async () => {
    // A lease with a key under /alice/: revoking it needs write permission there (a leader-only call, forwarded by the follower).
    const leases: string[] = [];
    for (const endpoint of [cluster.url(follower), etcd.endpoint]) {
      const id = await grant(endpoint, 'client');
      expect((await ctl(endpoint, 'client', ['put', '/alice/leased-by-root', 'x', `--lease=${id}`])).code).toBe(0);
      expect((await ctl(endpoint, 'client', ['user', 'delete', 'alice'])).code).toBe(0);
      leases.push(id);
    }
    for (const member of [leader, follower]) {
      for (const args of [
        ['put', '/alice/gone', 'x'],
        ['get', '/alice/', '--prefix'],
      ]) {
        const [q, e] = await both(member, 'alice', args);
        expect([args, q]).toEqual([args, e]);
        expect(q.error).toContain('etcdserver: permission denied');
      }
    }
    const revoked = [
      await ctl(cluster.url(follower), 'alice', ['lease', 'revoke', leases[0]!]),
      await ctl(etcd.endpoint, 'alice', ['lease', 'revoke', leases[1]!]),
    ];
    expect(revoked[0]).toEqual(revoked[1]);
    expect(revoked[0]!.error).toContain('etcdserver: permission denied');
    const [kq, ke] = await both(follower, 'client', ['get', '/alice/leased-by-root', '--print-value-only']);
    expect(kq).toEqual(ke);
    expect(kq.stdout).toBe('x\n');
  }, 120_000);
});
