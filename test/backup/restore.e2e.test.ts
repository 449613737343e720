/**
 * Backups that restore, through whole clusters of real processes:
 * - qkv: a 3-member cluster is loaded (a few hundred keys, a txn, overwrites, range deletes,
 *   leases with keys, a revoked lease, a compaction and writes after it), `qkv snapshot save`
 *   writes the file, which `etcdctl snapshot status` reads as qkv's status does; every member is
 *   killed and wiped, three members are restored from the file with `qkv snapshot restore`
 *   (another token: new member and cluster ids), started with `qkv serve` and etcd's flags, and
 *   every key, revision, history read, compaction point, lease and HashKV is what it was. The
 *   real `etcdctl snapshot restore` and etcd itself accept qkv's file too.
 * - etcd: the same load on a real etcd 3.4, `etcdctl snapshot save`, three qkv members restored
 *   from that file: the same keys and revisions, leases under ids within 2^53 (each reported).
 * - a truncated or damaged file is refused by status and restore, and no data dir is written.
 */
import { Buffer } from 'node:buffer';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { etcdctl, hostOf, qkvctl, RealEtcd, type CtlResult } from '../grpc/helpers.js';
import { LocalCluster } from '../server/cluster_harness.js';
import { memberIdOf } from '../../src/server/member_id.js';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/** etcd's JSON gateway on `endpoint` (qkv's and etcd's alike). */
async function gateway(endpoint: string, route: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await fetch(`${endpoint}/v3/${route}`, { method: 'POST', body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The load, the same on qkv and on etcd; returns the compaction point. */
async function load(endpoint: string): Promise<number> {
  const put = (key: string, value: string, lease?: string) => gateway(endpoint, 'kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  for (let i = 0; i < 300; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => put(`k/${String(i + j).padStart(3, '0')}`, `value ${i + j} `.repeat(1 + ((i + j) % 4)))));
  }
  // One revision of several changes: sub-revisions 0, 1, 2.
  await gateway(endpoint, 'kv/txn', {
    success: ['t/a', 't/b', 't/c'].map((k) => ({ request_put: { key: b64(k), value: b64(`txn ${k}`) } })),
  });
  for (let i = 0; i < 40; i++) await put(`k/${String(i).padStart(3, '0')}`, `overwritten ${i}`);
  await gateway(endpoint, 'kv/deleterange', { key: b64('k/200'), range_end: b64('k/220') });
  const leases: string[] = [];
  for (const ttl of [600, 900, 1200]) leases.push(String((await gateway(endpoint, 'lease/grant', { TTL: ttl })).ID));
  await put('leased/a', 'a', leases[0]);
  await put('leased/b', 'b', leases[0]);
  await put('leased/c', 'c', leases[1]);
  const revoked = String((await gateway(endpoint, 'lease/grant', { TTL: 60 })).ID);
  await put('leased/revoked', 'r', revoked);
  await gateway(endpoint, 'lease/revoke', { ID: revoked });
  const compactAt = Number(((await gateway(endpoint, 'kv/range', { key: b64('x') })).header as { revision: string }).revision) - 5;
  await gateway(endpoint, 'kv/compaction', { revision: String(compactAt), physical: true });
  for (let v = 0; v < 5; v++) await put('k/001', `after compaction ${v}`);
  await put('leased/b', 'b moved', leases[2]);
  await gateway(endpoint, 'kv/deleterange', { key: b64('k/299') });
  return compactAt;
}

/** A KeyValue as etcdctl's JSON prints it (lease quoted before parsing: etcd's exceed 2^53). */
interface CtlKeyValue {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: string;
}

/** What a cluster holds, as etcdctl reads it. */
interface Observed {
  revision: number;
  kvs: CtlKeyValue[];
  /** Every key at the compaction point and a little after it (the history kept). */
  atCompaction: CtlKeyValue[];
  afterCompaction: CtlKeyValue[];
  /** Below the compaction point: etcd's error. */
  belowCompaction: string;
  /** Lease id (decimal) -> granted TTL and attached keys (base64, sorted). */
  leases: Map<string, { grantedTtl: number; keys: string[] }>;
}

async function ctlOk(endpoints: string, args: string[]): Promise<string> {
  const r = await etcdctl(endpoints, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const quoteIds = (json: string): string => json.replace(/"(lease|id|ID)":(\d+)/g, '"$1":"$2"');

async function observe(endpoint: string, compactAt: number): Promise<Observed> {
  const ep = hostOf(endpoint);
  const get = async (args: string[]): Promise<{ header: { revision: number }; kvs?: CtlKeyValue[] }> =>
    JSON.parse(quoteIds(await ctlOk(ep, ['get', '', '--from-key', '-w', 'json', ...args]))) as { header: { revision: number }; kvs?: CtlKeyValue[] };
  const now = await get([]);
  const below = await etcdctl(ep, ['get', '', '--from-key', `--rev=${compactAt - 1}`]);
  const leases = new Map<string, { grantedTtl: number; keys: string[] }>();
  const list = await ctlOk(ep, ['lease', 'list']);
  for (const hex of list.split('\n').slice(1).filter(Boolean)) {
    const ttl = JSON.parse(quoteIds(await ctlOk(ep, ['lease', 'timetolive', hex, '--keys', '-w', 'json']))) as {
      id: string;
      'granted-ttl': number;
      keys?: string[];
    };
    leases.set(BigInt(`0x${hex}`).toString(), { grantedTtl: ttl['granted-ttl'], keys: [...(ttl.keys ?? [])].sort() });
  }
  return {
    revision: now.header.revision,
    kvs: now.kvs ?? [],
    atCompaction: (await get([`--rev=${compactAt}`])).kvs ?? [],
    afterCompaction: (await get([`--rev=${compactAt + 3}`])).kvs ?? [],
    belowCompaction: below.stderr.trim().split('\n').at(-1)!,
    leases,
  };
}

/** The HashKV of every member (etcdctl endpoint hashkv), at the current revision. */
async function hashKVs(endpoints: string[]): Promise<number[]> {
  const out = JSON.parse(await ctlOk(endpoints.map(hostOf).join(','), ['endpoint', 'hashkv', '-w', 'json'])) as { HashKV: { hash: number } }[];
  return out.map((e) => e.HashKV.hash);
}

async function ok(r: Promise<CtlResult>, what: string): Promise<string> {
  const done = await r;
  if (done.code !== 0) throw new Error(`${what} exited ${done.code}: ${done.stderr}`);
  return done.stdout;
}

/** The summary `qkv snapshot restore -w json` prints. */
interface Restored {
  dataDir: string;
  memberId: string;
  clusterId: string;
  revision: number;
  compactRevision: number;
  leases: number;
  remappedLeases: { from: string; to: string }[];
}

/**
 * Kills and wipes every member of `cluster`, restores each from `file` with `qkv snapshot
 * restore` under `token`, starts them with etcd's flags, and waits for a leader.
 */
async function restoreCluster(cluster: LocalCluster, file: string, token: string): Promise<Restored[]> {
  await Promise.all(cluster.names.map((n) => cluster.kill(n)));
  const initial = cluster.config.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const restored: Restored[] = [];
  for (const m of cluster.config.members) {
    await rm(m.dataDir, { recursive: true, force: true });
    const args = ['snapshot', 'restore', file, '--name', m.name, '--data-dir', m.dataDir, '--initial-cluster', initial];
    args.push('--initial-advertise-peer-urls', m.peerUrl, '--initial-cluster-token', token, '-w', 'json');
    restored.push(JSON.parse(await ok(qkvctl(m.clientUrl, args), `restore ${m.name}`)) as Restored);
    cluster.setNewClusterFlags(m.name, token);
  }
  cluster.startAll();
  await cluster.waitForLeader();
  return restored;
}

/** The members the cluster lists: id (decimal) and peer URLs. */
async function members(endpoint: string): Promise<{ id: string; peerURLs: string[] }[]> {
  const r = (await gateway(endpoint, 'cluster/member/list', {})) as { members: { ID: string; peerURLs: string[] }[] };
  return r.members.map((m) => ({ id: String(m.ID), peerURLs: m.peerURLs })).sort((a, b) => a.id.localeCompare(b.id));
}

describe('a qkv cluster saved, wiped and restored from its snapshot', () => {
  let cluster: LocalCluster;
  let tmp: string;
  let file: string;
  let compactAt: number;
  let before: Observed;
  let hashesBefore: number[];
  let restored: Restored[];
  const TOKEN = 'qkv-restored';

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'qkv-restore-'));
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    await cluster.waitForLeader();
    compactAt = await load(cluster.url('n1'));
    before = await observe(cluster.url('n2'), compactAt);
    hashesBefore = await hashKVs(cluster.endpoints);
    file = path.join(tmp, 'qkv.db');
    expect(await ok(qkvctl(cluster.url('n3'), ['snapshot', 'save', file]), 'qkv snapshot save')).toBe(`Snapshot saved at ${file}\n`);
    expect(existsSync(`${file}.part`)).toBe(false);
  });

  afterAll(async () => {
    await cluster?.destroy();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the load is what the test means: history, sub-revisions, leases, a compaction', () => {
    expect(before.kvs.length).toBeGreaterThan(270);
    expect(before.kvs.find((kv) => Buffer.from(kv.key, 'base64').toString() === 't/c')).toMatchObject({ version: 1 });
    expect(before.leases.size).toBe(3);
    expect(before.belowCompaction).toContain('required revision has been compacted');
    expect(new Set(hashesBefore).size).toBe(1);
  });

  test('etcdctl snapshot save over gRPC writes the same bytes as qkv snapshot save over the gateway (nothing changed in between)', async () => {
    const overGrpc = path.join(tmp, 'by-etcdctl.db');
    await ok(etcdctl(hostOf(cluster.url('n3')), ['snapshot', 'save', overGrpc]), 'etcdctl snapshot save');
    expect((await readFile(overGrpc)).equals(await readFile(file))).toBe(true);
  });

  test("etcdctl snapshot status reads qkv's file as qkv's status does, in every format", async () => {
    for (const format of ['json', 'table', 'simple']) {
      const theirs = await ok(etcdctl('127.0.0.1:1', ['snapshot', 'status', file, '-w', format]), 'etcdctl snapshot status');
      expect(await ok(qkvctl('127.0.0.1:1', ['snapshot', 'status', file, '-w', format]), 'qkv snapshot status')).toBe(theirs);
    }
    const status = JSON.parse(await ok(qkvctl('127.0.0.1:1', ['snapshot', 'status', file, '-w', 'json']), 'status')) as { revision: number; totalKey: number };
    expect(status.revision).toBe(before.revision);
  });

  test("the real etcd restores from qkv's file and serves the same keys at the same revision", async () => {
    const dir = path.join(tmp, 'etcd-restored');
    // The restored member's own flags win over RealEtcd's (the last of a flag given twice counts); its peer URL is not checked on a restart.
    await ok(
      etcdctl('127.0.0.1:1', ['snapshot', 'restore', file, '--data-dir', dir, '--name', 'e1', '--initial-cluster', 'e1=http://localhost:2380']),
      'etcdctl snapshot restore',
    );
    const etcd = await RealEtcd.start([`--data-dir=${dir}`]);
    try {
      const theirs = await observe(etcd.endpoint, compactAt);
      expect(theirs).toEqual(before);
    } finally {
      await etcd.stop();
    }
  });

  test('three members restored from the file hold every key, revision, history, lease and HashKV, under new ids', async () => {
    restored = await restoreCluster(cluster, file, TOKEN);
    const after = await observe(cluster.url('n1'), compactAt);
    expect(after).toEqual(before);
    expect(await hashKVs(cluster.endpoints)).toEqual(hashesBefore);
    // Membership from the flags: the ids serve derives from the peer URLs and the new token.
    const ids = cluster.config.members.map((m) => String(memberIdOf([m.peerUrl], TOKEN)));
    expect(restored.map((r) => r.memberId)).toEqual(ids);
    expect((await members(cluster.url('n2'))).map((m) => m.id)).toEqual([...ids].sort((a, b) => a.localeCompare(b)));
    expect(new Set(restored.map((r) => r.clusterId)).size).toBe(1);
    expect(restored[0]!.revision).toBe(before.revision);
    expect(restored[0]!.remappedLeases).toEqual([]);
    // The cluster goes on from the restored revision.
    const put = (await gateway(cluster.url('n3'), 'kv/put', { key: b64('after/restore'), value: b64('1') })) as { header: { revision: string } };
    expect(Number(put.header.revision)).toBe(before.revision + 1);
  });

  test('a truncated or damaged file is refused by status and restore, and nothing is written', async () => {
    const bytes = await readFile(file);
    const truncated = path.join(tmp, 'truncated.db');
    await writeFile(truncated, bytes.subarray(0, bytes.length - 4096));
    const flipped = path.join(tmp, 'flipped.db');
    const damaged = Buffer.from(bytes);
    damaged[3 * 4096 + 100] = damaged[3 * 4096 + 100]! ^ 0xff;
    await writeFile(flipped, damaged);
    for (const bad of [truncated, flipped]) {
      const dataDir = path.join(tmp, `restored-${path.basename(bad)}`);
      const r = await qkvctl('127.0.0.1:1', ['snapshot', 'restore', bad, '--data-dir', dataDir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^Error: etcd snapshot: .*(truncated|sha256 mismatch)/);
      expect(existsSync(dataDir)).toBe(false);
      const s = await qkvctl('127.0.0.1:1', ['snapshot', 'status', bad]);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(/^Error: etcd snapshot: /);
    }
    // etcdctl refuses the damaged one on restore too (its own words).
    const theirs = await etcdctl('127.0.0.1:1', ['snapshot', 'restore', flipped, '--data-dir', path.join(tmp, 'etcd-flipped')]);
    expect(theirs.code).toBe(1);
    expect(theirs.stderr).toContain('expected sha256');
    // A data dir that is there is never written over.
    const there = await qkvctl('127.0.0.1:1', ['snapshot', 'restore', file, '--data-dir', cluster.config.members[0]!.dataDir]);
    expect(codeAndStderr(there)).toEqual({ code: 1, stderr: `Error: data-dir ${JSON.stringify(cluster.config.members[0]!.dataDir)} exists\n` });
  });
});

const codeAndStderr = (x: CtlResult): { code: number | null; stderr: string } => ({ code: x.code, stderr: x.stderr });

describe('qkv members restored from a snapshot saved by a real etcd 3.4', () => {
  let etcd: RealEtcd;
  let cluster: LocalCluster;
  let tmp: string;
  let file: string;
  let compactAt: number;
  let before: Observed;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'qkv-restore-etcd-'));
    [etcd, cluster] = await Promise.all([RealEtcd.start(), LocalCluster.create({ nodes: 3 })]);
    compactAt = await load(etcd.endpoint);
    before = await observe(etcd.endpoint, compactAt);
    file = path.join(tmp, 'etcd.db');
    await ok(etcdctl(hostOf(etcd.endpoint), ['snapshot', 'save', file]), 'etcdctl snapshot save');
  });

  test("qkv snapshot save from the real etcd (its gateway's stream) writes the file etcdctl does, byte for byte", async () => {
    const ours = path.join(tmp, 'by-qkv.db');
    expect(await ok(qkvctl(etcd.endpoint, ['snapshot', 'save', ours]), 'qkv snapshot save')).toBe(`Snapshot saved at ${ours}\n`);
    expect((await readFile(ours)).equals(await readFile(file))).toBe(true);
    expect(((await stat(ours)).mode & 0o777).toString(8)).toBe(((await stat(file)).mode & 0o777).toString(8));
  });

  afterAll(async () => {
    await etcd?.stop();
    await cluster?.destroy();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test("every key, revision and history read is etcd's; leases come back under ids within 2^53, keys attached, each change reported", async () => {
    const restored = await restoreCluster(cluster, file, 'from-etcd');
    const after = await observe(cluster.url('n2'), compactAt);
    const remap = new Map(restored[0]!.remappedLeases.map((l) => [l.from, l.to]));
    // etcd 3.4's lease ids carry its member id's low 16 bits on top: all beyond 2^53.
    expect([...before.leases.keys()].every((id) => remap.has(id))).toBe(true);
    for (const other of restored) expect(other.remappedLeases).toEqual(restored[0]!.remappedLeases);
    const mapped = (kvs: CtlKeyValue[]): CtlKeyValue[] => kvs.map((kv) => (kv.lease ? { ...kv, lease: remap.get(kv.lease)! } : kv));
    expect(after.revision).toBe(before.revision);
    expect(after.kvs).toEqual(mapped(before.kvs));
    expect(after.atCompaction).toEqual(mapped(before.atCompaction));
    expect(after.afterCompaction).toEqual(mapped(before.afterCompaction));
    expect(after.belowCompaction).toBe(before.belowCompaction);
    expect(after.leases).toEqual(new Map([...before.leases].map(([id, l]) => [remap.get(id)!, l])));
    for (const to of remap.values()) expect(BigInt(to) <= BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    const hashes = await hashKVs(cluster.endpoints);
    expect(new Set(hashes).size).toBe(1);
    // A lease restored keeps its keys: revoking it deletes them.
    const [oldId, newId] = [...remap].find(([from]) => before.leases.get(from)!.keys.length > 0)!;
    await gateway(cluster.url('n1'), 'lease/revoke', { ID: newId });
    const left = (await observe(cluster.url('n3'), compactAt)).kvs.map((kv) => kv.key);
    for (const key of before.leases.get(oldId)!.keys) expect(left).not.toContain(key);
  });
});

/** The users and roles both systems are given, then auth enabled (etcdctl's commands, the same on each). */
const AUTH_SETUP: string[][] = [
  ['user', 'add', 'root:rootpw'],
  ['role', 'add', 'reader'],
  ['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix'],
  ['role', 'grant-permission', 'reader', 'readwrite', 'app/w'],
  ['user', 'add', 'alice:alicepw'],
  ['user', 'grant-role', 'alice', 'reader'],
  ['user', 'add', 'carl', '--no-password'],
  ['put', 'app/x', 'secret'],
  ['put', 'other', 'hidden'],
  ['auth', 'enable'],
];

/** What a user sees and may do, read with etcdctl; the same probes on etcd and on qkv. */
const AUTH_PROBES: string[][] = [
  ['--user=alice:alicepw', 'get', 'app/x'],
  ['--user=alice:alicepw', 'get', 'other'],
  ['--user=alice:alicepw', 'put', 'app/x', 'changed'],
  ['--user=alice:wrong', 'get', 'app/x'],
  ['get', 'app/x'],
  ['--user=root:rootpw', 'user', 'list'],
  ['--user=root:rootpw', 'user', 'get', 'alice', '--detail'],
  ['--user=root:rootpw', 'user', 'get', 'carl'],
  ['--user=root:rootpw', 'role', 'get', 'reader'],
  ['--user=root:rootpw', 'get', 'other'],
];

/** A probe's outcome, without etcdctl's retry warnings (their time and client id differ run to run). */
async function probe(endpoint: string, args: string[]): Promise<{ code: number | null; stdout: string; error: string }> {
  const r = await etcdctl(hostOf(endpoint), args);
  return { code: r.code, stdout: r.stdout, error: r.stderr.trim().split('\n').at(-1) ?? '' };
}

async function probes(endpoint: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const args of AUTH_PROBES) out[args.join(' ')] = await probe(endpoint, args);
  return out;
}

describe('users, roles and permissions survive a backup, from etcd to qkv and from qkv to etcd', () => {
  let etcd: RealEtcd;
  let cluster: LocalCluster;
  let tmp: string;
  let etcdProbes: Record<string, unknown>;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'qkv-restore-auth-'));
    [etcd, cluster] = await Promise.all([RealEtcd.start(), LocalCluster.create({ nodes: 3 })]);
    cluster.startAll();
    await cluster.waitForLeader();
    for (const args of AUTH_SETUP) {
      await ok(etcdctl(hostOf(etcd.endpoint), args), `etcd: ${args.join(' ')}`);
      await ok(etcdctl(hostOf(cluster.url('n1')), args), `qkv: ${args.join(' ')}`);
    }
    etcdProbes = await probes(etcd.endpoint);
  });

  afterAll(async () => {
    await etcd?.stop();
    await cluster?.destroy();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the probes mean something: alice reads app/ only, a wrong password and no user are refused', () => {
    expect(etcdProbes['--user=alice:alicepw get app/x']).toMatchObject({ code: 0, stdout: 'app/x\nsecret\n' });
    expect(etcdProbes['--user=alice:alicepw get other']).toMatchObject({ code: 1, error: 'Error: etcdserver: permission denied' });
    expect(etcdProbes['--user=alice:wrong get app/x']).toMatchObject({
      code: 2,
      error: 'Error: etcdserver: authentication failed, invalid user ID or password',
    });
    expect(etcdProbes['get app/x']).toMatchObject({ code: 1, error: 'Error: etcdserver: user name is empty' });
  });

  test("qkv members restored from etcd's snapshot log its users in with their passwords and enforce their roles, as etcd does", async () => {
    const file = path.join(tmp, 'etcd-auth.db');
    await ok(etcdctl(hostOf(etcd.endpoint), ['--user=root:rootpw', 'snapshot', 'save', file]), 'etcdctl snapshot save');
    await restoreCluster(cluster, file, 'auth-from-etcd');
    for (const n of cluster.names) expect(await probes(cluster.url(n))).toEqual(etcdProbes);
    const hashes = JSON.parse(await ctlOk(cluster.endpoints.map(hostOf).join(','), ['--user=root:rootpw', 'endpoint', 'hashkv', '-w', 'json'])) as {
      HashKV: { hash: number };
    }[];
    expect(new Set(hashes.map((h) => h.HashKV.hash)).size).toBe(1);
  });

  test("the real etcd restored from qkv's snapshot logs the same users in and enforces the same roles", async () => {
    const file = path.join(tmp, 'qkv-auth.db');
    await ok(qkvctl(cluster.url('n2'), ['--user=root:rootpw', 'snapshot', 'save', file]), 'qkv snapshot save');
    const dir = path.join(tmp, 'etcd-from-qkv');
    await ok(
      etcdctl('127.0.0.1:1', ['snapshot', 'restore', file, '--data-dir', dir, '--name', 'e1', '--initial-cluster', 'e1=http://localhost:2380']),
      'etcdctl snapshot restore',
    );
    const restored = await RealEtcd.start([`--data-dir=${dir}`]);
    try {
      expect(await probes(restored.endpoint)).toEqual(etcdProbes);
    } finally {
      await restored.stop();
    }
  });
});
