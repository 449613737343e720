/**
 * TLS on every connection: a 3-member qkv cluster with https:// client and peer URLs
 * (--client-cert-auth on the client port, mutual TLS between members), beside a real etcd 3.4
 * started with the same certificates (test/tls/make-certs.sh, made fresh into a temp dir).
 * etcdctl, the etcd3 npm client and a raw HTTPS client get the same answers from both; the bad
 * inputs (a plaintext client, no client certificate, another CA's client certificate, a peer
 * with another CA's certificate) get the same outcome as on etcd and change nothing; a store
 * snapshot reaches a member that fell behind over the peers' TLS; a certificate renewed on disk
 * is served without a restart.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster, makeTestCerts, type HarnessTls } from './cluster_harness.js';
import { freePorts } from './ports.js';
import { CtlChild, etcdctl, hostOf, RealEtcd, sleep, type CtlResult } from '../grpc/helpers.js';

/** etcdctl's TLS flags for a client that shows `cert` (a name in the certs folder: client, other-client), or none. */
function ctlTls(dir: string, cert: string | null): string[] {
  return [`--cacert=${path.join(dir, 'ca.pem')}`, ...(cert ? [`--cert=${path.join(dir, `${cert}.pem`)}`, `--key=${path.join(dir, `${cert}-key.pem`)}`] : [])];
}

/** What a refused etcdctl call shows: its exit code and its last line (etcdctl also logs a retry line with random ids). */
const outcome = (r: CtlResult): { code: number | null; error: string } => ({
  code: r.code,
  error: r.stderr.trim().split('\n').filter(Boolean).at(-1) ?? '',
});

/** A raw HTTPS request (Node's https, HTTP/1.1) with the given certificate, or its failure's kind. */
function rawRequest(
  url: string,
  body: object,
  opts: { ca?: Buffer; cert?: Buffer; key?: Buffer },
): Promise<{ status: number; json: Record<string, unknown> } | { failed: true }> {
  return new Promise((resolve) => {
    const request = url.startsWith('https:') ? https.request : http.request;
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, ...opts, agent: false, timeout: 5_000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      res.on('error', () => resolve({ failed: true }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ failed: true }));
    req.end(JSON.stringify(body));
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('TLS: qkv beside the real etcd with the same certificates', () => {
  let certs: string;
  let tlsOpts: HarnessTls;
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let leader: string;
  let follower: string;
  const clients: Etcd3[] = [];
  const file = (name: string): Buffer => readFileSync(path.join(certs, name));

  beforeAll(async () => {
    certs = await makeTestCerts();
    tlsOpts = { dir: certs, clientCertAuth: true };
    cluster = await LocalCluster.create({ nodes: 3, tls: tlsOpts, snapshotEvery: 200, snapshotCatchUpEntries: 20 });
    cluster.startAll();
    [leader, etcd] = await Promise.all([cluster.waitForLeader(), RealEtcd.start([], tlsOpts)]);
    follower = cluster.names.find((n) => n !== leader)!;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.destroy();
    await etcd?.stop();
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  /** etcdctl against qkv's `member` (default the follower: leader-only calls are forwarded over TLS) and against etcd, with `cert`. */
  const bothCtl = (args: string[], cert: string | null = 'client', member = follower, endpointOf = (u: string) => u): Promise<[CtlResult, CtlResult]> =>
    Promise.all([
      etcdctl(endpointOf(cluster.url(member)), [...ctlTls(certs, cert), '--dial-timeout=1s', ...args]),
      etcdctl(endpointOf(etcd.endpoint), [...ctlTls(certs, cert), '--dial-timeout=1s', ...args]),
    ]);

  test("a member that fell behind gets the store snapshot over the peers' TLS", async () => {
    const behind = follower;
    await cluster.kill(behind);
    const c = cluster.client(cluster.names.filter((n) => n !== behind));
    // Past two snapshots (every 200 entries, 20 kept): the log the member needs is gone.
    for (let i = 0; i < 400; i++) await c.put(`/snap/${i}`, `v${i}`);
    cluster.start(behind);
    const own = cluster.client([behind]);
    // The store is served the moment it is swapped in, a moment before the member logs the
    // restore: wait for both (a catch-up from the log alone never logs it, and times out here).
    await cluster.untilLogged(behind, 'restored store from snapshot');
    await LocalCluster.until(async () => {
      try {
        const r = await own.range({ key: Buffer.from('/snap/399'), serializable: true });
        return r.kvs.length === 1;
      } catch {
        return false;
      }
    }, `${behind} to catch up from a store snapshot`);
    const all = await own.range({ key: Buffer.from('/snap/'), rangeEnd: Buffer.from('/snap0'), serializable: true, countOnly: true });
    expect(Number(all.count)).toBe(400);
  });

  test('etcdctl with --cacert, --cert, --key and https:// endpoints: the same output as etcd', async () => {
    for (const args of [
      ['put', '/tls/a', '1'],
      ['put', '/tls/b', '2'],
      ['get', '/tls/', '--prefix'],
      ['del', '/tls/b'],
      ['get', '/tls/b'],
    ]) {
      const [q, e] = await bothCtl(args);
      expect({ args, code: q.code, out: q.stdout }).toEqual({ args, code: e.code, out: e.stdout });
      expect(q.code).toBe(0);
    }
    // Also with every member as an endpoint, and scheme-less endpoints (TLS because of --cacert).
    const all = await etcdctl(cluster.endpoints.map(hostOf).join(','), [...ctlTls(certs, 'client'), 'get', '/tls/a', '--print-value-only']);
    expect(all).toMatchObject({ code: 0, stdout: '1\n' });
    // A lease grant on a follower is the leader's: the follower forwards it to the leader's https:// client port with its own certificate.
    const [q, e] = await bothCtl(['lease', 'grant', '60']);
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/^lease [0-9a-f]+ granted with TTL\(60s\)\n$/);
    expect(e.stdout).toMatch(/^lease [0-9a-f]+ granted with TTL\(60s\)\n$/);
  });

  test('streams over TLS: etcdctl watch sees a put, snapshot save gets the whole snapshot', async () => {
    const watchers = [cluster.url(follower), etcd.endpoint].map((ep) => new CtlChild(ep, [...ctlTls(certs, 'client'), 'watch', '/tls/w']));
    try {
      // The watch is established once a put made after it shows up; put until it does (bounded).
      for (let i = 0; i < 50 && !watchers.every((w) => w.stdout.includes('PUT')); i++) {
        await bothCtl(['put', '/tls/w', `v${i}`]);
        await sleep(100);
      }
      for (const w of watchers) expect(await w.waitFor((out) => /^PUT\n\/tls\/w\nv\d+\n/m.test(out), 'a watched put')).toMatch(/PUT/);
    } finally {
      for (const w of watchers) await w.stop();
    }
    const [q, e] = await Promise.all(
      [cluster.url(leader), etcd.endpoint].map((ep, i) =>
        etcdctl(ep, [...ctlTls(certs, 'client'), 'snapshot', 'save', path.join(cluster.dir, `snap-${i}.db`)]),
      ),
    );
    expect([q!.code, q!.stdout]).toEqual([0, `Snapshot saved at ${path.join(cluster.dir, 'snap-0.db')}\n`]);
    expect([e!.code, e!.stdout]).toEqual([0, `Snapshot saved at ${path.join(cluster.dir, 'snap-1.db')}\n`]);
  });

  test('the etcd3 npm client (gRPC over TLS with a client certificate): the same answers as etcd', async () => {
    const credentials = { rootCertificate: file('ca.pem'), certChain: file('client.pem'), privateKey: file('client-key.pem') };
    const q = new Etcd3({ hosts: cluster.endpoints, credentials, dialTimeout: 5_000 });
    const e = new Etcd3({ hosts: etcd.endpoint, credentials, dialTimeout: 5_000 });
    clients.push(q, e);
    for (const c of [q, e]) {
      await c.put('/tls/e3/x').value('ten');
      await c.put('/tls/e3/y').value('eleven');
    }
    const [qa, ea] = await Promise.all([q.getAll().prefix('/tls/e3/').strings(), e.getAll().prefix('/tls/e3/').strings()]);
    expect(qa).toEqual({ '/tls/e3/x': 'ten', '/tls/e3/y': 'eleven' });
    expect(qa).toEqual(ea);
    const [qd, ed] = await Promise.all([q.delete().key('/tls/e3/x').exec(), e.delete().key('/tls/e3/x').exec()]);
    expect(qd.deleted).toBe(ed.deleted);
  });

  test('a raw HTTPS client: /v3 as etcd answers it, and /v1 on the same port', async () => {
    const creds = { ca: file('ca.pem'), cert: file('client.pem'), key: file('client-key.pem') };
    for (const base of [cluster.url(follower), etcd.endpoint]) {
      const put = await rawRequest(`${base}/v3/kv/put`, { key: b64('tls-raw'), value: b64('v') }, creds);
      expect(put).toMatchObject({ status: 200 });
    }
    const [q, e] = await Promise.all([cluster.url(leader), etcd.endpoint].map((base) => rawRequest(`${base}/v3/kv/range`, { key: b64('tls-raw') }, creds)));
    const kvsOf = (r: Awaited<ReturnType<typeof rawRequest>> | undefined): unknown =>
      r === undefined || 'failed' in r ? r : { status: r.status, kvs: (r.json['kvs'] as { key: string; value: string }[]).map((kv) => [kv.key, kv.value]) };
    expect(kvsOf(q)).toEqual({ status: 200, kvs: [[b64('tls-raw'), b64('v')]] });
    expect(kvsOf(q)).toEqual(kvsOf(e));
    const v1 = await new Promise<string>((resolve, reject) => {
      https
        .get(`${cluster.url(follower)}/v1/kv/tls-raw`, { ...creds, agent: false }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(JSON.parse(v1)).toMatchObject({ count: 1, kvs: [{ key: 'tls-raw', value: 'v' }] });
  });

  describe('bad input: the same outcome as etcd, and nothing changes', () => {
    const plaintext = (u: string): string => u.replace('https://', 'http://');
    const cases: {
      name: string;
      cert: string | null;
      endpointOf?: (u: string) => string;
      raw: { ca?: string; cert?: string; key?: string };
      plain?: boolean;
    }[] = [
      { name: 'a plaintext client on the TLS port', cert: null, endpointOf: plaintext, raw: {}, plain: true },
      { name: 'a client without a certificate (--client-cert-auth)', cert: null, raw: { ca: 'ca.pem' } },
      { name: 'a client certificate of another CA', cert: 'other-client', raw: { ca: 'ca.pem', cert: 'other-client.pem', key: 'other-client-key.pem' } },
    ];
    for (const c of cases) {
      test(c.name, async () => {
        const [q, e] = await bothCtl(['--command-timeout=2s', 'put', '/tls/bad', 'x'], c.cert, follower, c.endpointOf);
        expect(outcome(q)).toEqual(outcome(e));
        expect(outcome(q)).toEqual({ code: 1, error: 'Error: context deadline exceeded' });
        // A raw HTTP client gets no HTTP answer from either (the connection is closed in or after the handshake).
        const opts = Object.fromEntries(Object.entries(c.raw).map(([k, f]) => [k, file(f)]));
        const [rq, re] = await Promise.all(
          [cluster.url(follower), etcd.endpoint].map((base) =>
            rawRequest(`${c.plain ? plaintext(base) : base}/v3/kv/put`, { key: b64('/tls/bad'), value: b64('x') }, opts),
          ),
        );
        expect(rq).toEqual(re);
        expect(rq).toEqual({ failed: true });
        // Nothing was written, on either.
        const [gq, ge] = await bothCtl(['get', '/tls/bad', '--print-value-only']);
        expect([gq.code, gq.stdout]).toEqual([0, '']);
        expect([gq.code, gq.stdout]).toEqual([ge.code, ge.stdout]);
      });
    }

    test('a peer with a certificate of another CA is refused in its handshake: it cannot join, the cluster keeps working', async () => {
      const other = { cert: path.join(certs, 'other-member.pem'), key: path.join(certs, 'other-member-key.pem'), ca: path.join(certs, 'other-ca.pem') };
      const before = await cluster.client().memberList();
      // A raw dial of a member's peer port with that certificate: the handshake fails, the hello and frame after it are never read.
      const n1Peer = new URL(cluster.config.members[0]!.peerUrl);
      const raw = await new Promise<string>((resolve) => {
        const s = tls.connect(
          { host: n1Peer.hostname, port: Number(n1Peer.port), cert: readFileSync(other.cert), key: readFileSync(other.key), rejectUnauthorized: false },
          () => s.write('QKV-PEER 1 1 1 https://127.0.0.1:1\n'),
        );
        s.on('data', () => resolve('answered'));
        s.on('error', (err) => resolve(`error: ${err.message}`));
        s.on('close', () => resolve('closed'));
      });
      expect(raw).not.toBe('answered');
      await cluster.untilLogged('n1', 'rejected peer connection');

      // A member process with that certificate that tries to join each cluster, as etcd's runbook starts a joiner.
      const joinerOf = async (kind: 'qkv' | 'etcd', peerUrl: string): Promise<{ code: number | null; stderr: string }> => {
        const [cp, pp] = await freePorts(2);
        const dir = path.join(cluster.dir, `rogue-${kind}`);
        const self = `https://127.0.0.1:${pp}`;
        const args = [
          '--name=rogue',
          `--data-dir=${dir}`,
          `--listen-client-urls=https://127.0.0.1:${cp}`,
          `--advertise-client-urls=https://127.0.0.1:${cp}`,
          `--listen-peer-urls=${self}`,
          `--initial-advertise-peer-urls=${self}`,
          `--initial-cluster=${kind === 'qkv' ? 'n1' : 'e1'}=${peerUrl},rogue=${self}`,
          '--initial-cluster-state=existing',
          `--initial-cluster-token=${kind === 'qkv' ? cluster.config.name : 'etcd-cluster'}`,
          `--cert-file=${other.cert}`,
          `--key-file=${other.key}`,
          `--trusted-ca-file=${other.ca}`,
          `--peer-cert-file=${other.cert}`,
          `--peer-key-file=${other.key}`,
          `--peer-trusted-ca-file=${other.ca}`,
          '--peer-client-cert-auth',
        ];
        const stdio: ['ignore', 'ignore', 'pipe'] = ['ignore', 'ignore', 'pipe'];
        // qkv's joiner takes every flag as its QKV_* environment variable (as etcd's ETCD_*): --name=x is QKV_NAME=x, a bare flag is "true".
        const env = Object.fromEntries(
          args.map((a) => {
            const [flag, value] = a.slice(2).split(/=(.*)/s) as [string, string | undefined];
            return [`QKV_${flag.toUpperCase().replaceAll('-', '_')}`, value ?? 'true'];
          }),
        );
        const child =
          kind === 'qkv'
            ? spawn(process.execPath, [path.resolve('bin/qkv.mjs'), 'serve'], { stdio, env: { ...process.env, ...env } })
            : spawn('etcd', args, { stdio });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
        clearTimeout(timer);
        return { code, stderr };
      };
      const [q0, e0] = await Promise.all([joinerOf('qkv', cluster.config.members[0]!.peerUrl), joinerOf('etcd', etcd.peerUrl)]);
      // Both refuse to start: they cannot read the cluster's members from its peer port.
      expect(e0.stderr).toContain('could not retrieve cluster information from the given URLs');
      expect(q0.stderr).toContain("could not get the cluster's members from any peer");
      expect(q0.code).not.toBe(0);
      expect(q0.code).not.toBeNull();
      expect(e0.code).not.toBe(0);
      expect(e0.code).not.toBeNull();
      // Nothing changed, and the cluster keeps working.
      expect((await cluster.client().memberList()).members).toEqual(before.members);
      const [q, e] = await bothCtl(['put', '/tls/after-rogue', 'ok']);
      expect([q.code, q.stdout]).toEqual([0, 'OK\n']);
      expect([q.code, q.stdout]).toEqual([e.code, e.stdout]);
    });
  });

  test('a certificate renewed on disk is served from the next connection on, without a restart; files that do not load leave the old one', async () => {
    const serialOf = (url: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const u = new URL(url);
        const s = tls.connect(
          { host: u.hostname, port: Number(u.port), ca: file('ca.pem'), cert: file('client.pem'), key: file('client-key.pem'), ALPNProtocols: ['http/1.1'] },
          () => {
            resolve(s.getPeerCertificate().serialNumber);
            s.end();
          },
        );
        s.on('error', reject);
      });
    const url = cluster.url(leader);
    const first = await serialOf(url);
    execFileSync('bash', [path.resolve('test/tls/make-certs.sh'), certs, 'renew']);
    const renewed = await serialOf(url);
    expect(renewed).not.toBe(first);
    // The peer port too (a new peer connection would be shown the renewed certificate).
    expect(await serialOf(cluster.config.members.find((m) => m.name === leader)!.peerUrl)).toBe(renewed);
    // A key that does not match the certificate (half-written renewal): the renewed pair stays in use.
    const goodKey = readFileSync(path.join(certs, 'member-key.pem'));
    writeFileSync(path.join(certs, 'member-key.pem'), readFileSync(path.join(certs, 'client-key.pem')));
    expect(await serialOf(url)).toBe(renewed);
    writeFileSync(path.join(certs, 'member-key.pem'), goodKey);
    // The cluster works on across the renewal (new peer connections use the new certificate too).
    const c = cluster.client();
    await c.put('/tls/renewed', 'yes');
    expect((await c.range({ key: Buffer.from('/tls/renewed') })).kvs.map((kv) => Buffer.from(kv.value).toString())).toEqual(['yes']);
    const e = await etcdctl(etcd.endpoint, [...ctlTls(certs, 'client'), 'get', '/tls/a', '--print-value-only']);
    expect(e.code).toBe(0);
  });
});
