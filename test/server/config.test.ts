import { describe, expect, test } from 'vitest';
import path from 'node:path';
import { ConfigError, loadClusterConfig, parseClusterConfig, resolveAuthToken, resolveMemberFlags, resolveMemberTls } from '../../src/server/config.js';
import { clusterIdOf, memberIdOf } from '../../src/server/member_id.js';

const member = (i: number) => ({
  name: `n${i}`,
  clientUrl: `http://127.0.0.1:${2379 + i * 10}`,
  peerUrl: `http://127.0.0.1:${2380 + i * 10}`,
  dataDir: `data/n${i}`,
});

describe('cluster config', () => {
  test('the shipped cluster.config.json is a valid 3-member cluster', () => {
    const cfg = loadClusterConfig(path.resolve('cluster.config.json'));
    expect(cfg.members.map((m) => m.name)).toEqual(['n1', 'n2', 'n3']);
    expect(cfg.members[0]!.dataDir).toBe(path.resolve('data/n1'));
    expect(cfg.electionTicks).toBeGreaterThan(cfg.heartbeatTicks);
  });

  test('defaults fill missing tuning fields', () => {
    const cfg = parseClusterConfig({ members: [member(1)] }, '/base');
    expect(cfg).toMatchObject({ tickMs: 100, heartbeatTicks: 1, electionTicks: 10, maxRequestBytes: 1572864 });
    expect(cfg.members[0]!.dataDir).toBe('/base/data/n1');
  });

  const bad: { name: string; raw: unknown; message: RegExp }[] = [
    { name: 'not an object', raw: [], message: /expected a JSON object/ },
    { name: 'no members', raw: { members: [] }, message: /members: expected a non-empty array/ },
    { name: 'an id', raw: { members: [{ ...member(1), id: 1 }] }, message: /members\[0\]\.id: member ids are derived/ },
    { name: 'bad url', raw: { members: [{ ...member(1), clientUrl: 'nope' }] }, message: /clientUrl: invalid URL/ },
    { name: 'another scheme', raw: { members: [{ ...member(1), peerUrl: 'unix://127.0.0.1:1' }] }, message: /only http:\/\/ and https:\/\// },
    { name: 'no port', raw: { members: [{ ...member(1), peerUrl: 'http://127.0.0.1' }] }, message: /explicit port/ },
    { name: 'duplicate peer url', raw: { members: [member(1), { ...member(2), peerUrl: member(1).peerUrl }] }, message: /duplicate peerUrl/ },
    { name: 'a path in a url', raw: { members: [{ ...member(1), peerUrl: 'http://127.0.0.1:1/x' }] }, message: /no path/ },
    { name: 'duplicate client url', raw: { members: [member(1), { ...member(2), clientUrl: member(1).clientUrl }] }, message: /duplicate clientUrl/ },
    { name: 'election not above heartbeat', raw: { electionTicks: 1, heartbeatTicks: 1, members: [member(1)] }, message: /electionTicks/ },
  ];
  test.each(bad)('rejects $name with a clear error', ({ raw, message }) => {
    expect(() => parseClusterConfig(raw as never, '/base')).toThrow(ConfigError);
    expect(() => parseClusterConfig(raw as never, '/base')).toThrow(message);
  });

  test('member ids are derived from the peer URL and the cluster name, as etcd derives them', () => {
    const a = parseClusterConfig({ name: 'one', members: [member(1), member(2)] }, '/base');
    const b = parseClusterConfig({ name: 'two', members: [member(1), member(2)] }, '/base');
    expect(a.members[0]!.id).toBe(memberIdOf([member(1).peerUrl], 'one'));
    expect(a.members[0]!.id).not.toBe(a.members[1]!.id);
    expect(a.members[0]!.id).not.toBe(b.members[0]!.id);
    for (const m of [...a.members, ...b.members]) {
      expect(BigInt(m.id) > 2n ** 32n && BigInt(m.id) < 2n ** 64n).toBe(true);
    }
    // A runtime addition's id also takes the time.
    expect(memberIdOf([member(1).peerUrl], 'one', 5_000)).not.toBe(a.members[0]!.id);
  });

  test("the cluster id is etcd's hash of the sorted member ids", () => {
    // etcd's genID over member ids 1 and 2 (big-endian uint64s): sha1 → first 8 bytes.
    expect(clusterIdOf(['2', '1'])).toBe(clusterIdOf(['1', '2']));
    expect(BigInt(clusterIdOf(['1', '2'])) > 0n).toBe(true);
  });

  test('the ids are all 64 bits of what etcd 3.4.23 derives for the same flags', () => {
    // etcd --name e1 --initial-advertise-peer-urls http://127.0.0.1:20902
    //   --initial-cluster e1=http://127.0.0.1:20902 --initial-cluster-token tok:
    // member b3383b9b282aa052 (Status's leader 12914137469064749138), cluster d27a6b5ef86bbec8.
    const id = memberIdOf(['http://127.0.0.1:20902'], 'tok');
    expect(id).toBe('12914137469064749138');
    expect(BigInt(clusterIdOf([id])).toString(16)).toBe('d27a6b5ef86bbec8');
  });

  test("etcd's member flags resolve to a configuration, with etcd's defaults", () => {
    const { cluster, self } = resolveMemberFlags({
      name: 'n2',
      initialCluster: 'n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380',
      initialAdvertisePeerUrls: 'http://127.0.0.1:12380',
      listenPeerUrls: 'http://0.0.0.0:12380',
      advertiseClientUrls: 'http://127.0.0.1:12379',
      listenClientUrls: 'http://0.0.0.0:12379',
      initialClusterState: 'existing',
      initialClusterToken: 'tok',
      electionTimeout: '500',
      heartbeatInterval: '50',
    });
    expect(cluster).toMatchObject({ name: 'tok', state: 'existing', tickMs: 50, heartbeatTicks: 1, electionTicks: 10 });
    expect(self).toMatchObject({ name: 'n2', peerUrl: 'http://127.0.0.1:12380', clientUrl: 'http://127.0.0.1:12379', listenPeerUrl: 'http://0.0.0.0:12380' });
    expect(self.dataDir).toBe(path.resolve('n2.etcd'));
    expect(cluster.members.map((m) => m.id)).toEqual([memberIdOf(['http://127.0.0.1:2380'], 'tok'), memberIdOf(['http://127.0.0.1:12380'], 'tok')]);
    const alone = resolveMemberFlags({ name: 'x' });
    expect(alone.self.peerUrl).toBe('http://localhost:2380');
    expect(alone.cluster.members.map((m) => m.name)).toEqual(['x']);
  });

  test.each([
    [{ name: 'n3', initialCluster: 'n1=http://h:1' }, /no member named "n3"/],
    [{ name: 'n1', initialCluster: 'n1=http://h:1', initialAdvertisePeerUrls: 'http://h:2' }, /missing from --initial-advertise-peer-urls/],
    [{ name: 'n1', initialCluster: 'n1=http://h:1', initialAdvertisePeerUrls: 'http://h:1', initialClusterState: 'old' }, /initial-cluster-state/],
    [{ name: 'n1', initialCluster: 'n1=nope' }, /invalid URL/],
    [{ name: 'n1', initialCluster: 'n1=http://h:1,n2=http://h:1' }, /duplicate peer URL/],
    [{ name: 'n1', listenClientUrls: 'http://h:1,http://h:2' }, /exactly one URL/],
  ])('bad member flags are refused: %j', (flags, message) => {
    expect(() => resolveMemberFlags(flags)).toThrow(ConfigError);
    expect(() => resolveMemberFlags(flags)).toThrow(message);
  });

  test('unreadable and malformed files name the file', () => {
    expect(() => loadClusterConfig('/nonexistent/cluster.json')).toThrow(/cluster.json: cannot read/);
  });
});

describe("etcd's TLS flags (resolveMemberTls)", () => {
  const secure = resolveMemberFlags({ name: 'x', listenClientUrls: 'https://127.0.0.1:2379', listenPeerUrls: 'https://127.0.0.1:2380' }).self;
  const plain = resolveMemberFlags({ name: 'x' }).self;
  const files = { certFile: 'm.pem', keyFile: 'm-key.pem', trustedCaFile: 'ca.pem' };
  const peerFiles = { peerCertFile: 'p.pem', peerKeyFile: 'p-key.pem', peerTrustedCaFile: 'pca.pem' };

  test('https:// URLs keep their scheme; the files resolve to absolute paths; client-cert-auth is off unless given', () => {
    expect(secure.clientUrl).toBe('https://127.0.0.1:2379');
    expect(secure.peerUrl).toBe('https://127.0.0.1:2380');
    const tls = resolveMemberTls({ ...files, clientCertAuth: true, ...peerFiles }, secure);
    expect(tls.client).toEqual({
      certFile: path.resolve('m.pem'),
      keyFile: path.resolve('m-key.pem'),
      trustedCaFile: path.resolve('ca.pem'),
      clientCertAuth: true,
    });
    expect(tls.peer).toEqual({
      certFile: path.resolve('p.pem'),
      keyFile: path.resolve('p-key.pem'),
      trustedCaFile: path.resolve('pca.pem'),
      clientCertAuth: false,
    });
  });

  test('as etcd: the files of an http:// side are ignored; --client-cert-auth without --trusted-ca-file is allowed (system roots verify)', () => {
    expect(resolveMemberTls({ ...files, ...peerFiles }, plain)).toEqual({});
    expect(
      resolveMemberTls(
        { certFile: 'm.pem', keyFile: 'k.pem', clientCertAuth: true },
        { ...secure, listenPeerUrl: 'http://127.0.0.1:2380', peerUrl: 'http://127.0.0.1:2380' },
      ),
    ).toEqual({
      client: { certFile: path.resolve('m.pem'), keyFile: path.resolve('k.pem'), clientCertAuth: true },
    });
  });

  const bad: { name: string; flags: Parameters<typeof resolveMemberTls>[0]; message: string }[] = [
    {
      name: 'an https:// client URL without a certificate',
      flags: peerFiles,
      message: 'TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme',
    },
    {
      name: 'an https:// peer URL without a certificate',
      flags: files,
      message: 'cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented',
    },
    {
      name: 'a certificate without its key',
      flags: { certFile: 'm.pem', ...peerFiles },
      message: 'KeyFile and CertFile must both be present[key: , cert: m.pem]',
    },
    {
      name: 'a key without its certificate',
      flags: { keyFile: 'k.pem', ...peerFiles },
      message: 'KeyFile and CertFile must both be present[key: k.pem, cert: ]',
    },
  ];
  test.each(bad)("refuses $name with etcd's message", ({ flags, message }) => {
    expect(() => resolveMemberTls(flags, secure)).toThrow(ConfigError);
    expect(() => resolveMemberTls(flags, secure)).toThrow(message);
  });
});

describe("etcd's --auth-token", () => {
  test('simple by default; jwt with its key files, sign method and TTL', () => {
    expect(resolveAuthToken(undefined)).toEqual({ kind: 'simple' });
    expect(resolveAuthToken('simple')).toEqual({ kind: 'simple' });
    expect(resolveAuthToken('jwt,pub-key=/k.pub,priv-key=/k.pem,sign-method=ES256,ttl=10m')).toEqual({
      kind: 'jwt',
      publicKeyFile: '/k.pub',
      privateKeyFile: '/k.pem',
      signMethod: 'ES256',
      ttlSeconds: 600,
    });
    expect(resolveAuthToken('jwt,pub-key=/k.pub')).toEqual({ kind: 'jwt', publicKeyFile: '/k.pub', signMethod: 'RS256', ttlSeconds: 300 });
  });

  test.each([
    ['paseto', 'unknown token type'],
    ['jwt,priv-key=/k', 'needs pub-key'],
    ['jwt,pub-key=/k,sign-method=HS999', 'sign-method must be one of'],
    ['jwt,pub-key=/k,ttl=soon', 'ttl must be a duration'],
    ['jwt,pub-key=/k,colour=blue', 'unknown option colour'],
  ])('%s is refused', (spec, why) => {
    expect(() => resolveAuthToken(spec)).toThrow(ConfigError);
    expect(() => resolveAuthToken(spec)).toThrow(why);
  });
});
