/**
 * The real etcdctl 3.4 (v3 API, gRPC) against a 3-member qkv cluster, command by command next
 * to a real single-member etcd 3.4 started here: the same commands on both, outputs compared
 * after normalizing what legitimately differs (headers, lease ids, revisions relative to where
 * each scenario started, member ids and URLs). qkv is reached through a follower, so writes and
 * leader-only lease calls also exercise forwarding.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../server/cluster_harness.js';
import { CtlChild, etcdctl, hostOf, type RealEtcd, sameOnBoth, sleep, type CtlOptions, type CtlResult, startBesideEtcd } from './helpers.js';

interface Target {
  name: 'qkv' | 'etcd';
  /** One endpoint (a follower for qkv). */
  ep: string;
  /** Every member. */
  all: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A lock or election key ends in its session's lease id, in hex without padding. */
const LEASE_HEX = /\/[0-9a-f]{1,16}$/gm;

describe('etcdctl against qkv and against etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let qkv: Target;
  let real: Target;
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'qkv-etcdctl-'));
    let follower: string;
    ({ cluster, etcd, follower } = await startBesideEtcd());
    qkv = { name: 'qkv', ep: hostOf(cluster.url(follower)), all: cluster.endpoints.map(hostOf).join(',') };
    real = { name: 'etcd', ep: hostOf(etcd.endpoint), all: hostOf(etcd.endpoint) };
  });

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const ctl = (t: Target, args: string[], opts?: CtlOptions): Promise<CtlResult> => etcdctl(t.ep, args, opts);
  const out = async (t: Target, args: string[], opts?: CtlOptions): Promise<string> => {
    const r = await ctl(t, args, opts);
    if (r.code !== 0) throw new Error(`${t.name}: etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  /** The "Error: ..." line of a failed command, and its exit code (retry log lines dropped). */
  const failure = async (t: Target, args: string[], opts?: CtlOptions): Promise<{ code: number | null; error: string }> => {
    const r = await ctl(t, args, opts);
    return {
      code: r.code,
      error: r.stderr
        .split('\n')
        .filter((l) => l.startsWith('Error:'))
        .join('\n'),
    };
  };
  const revision = async (t: Target): Promise<number> =>
    (JSON.parse(await out(t, ['get', '/no-such-key', '-w', 'json'])) as { header: { revision: number } }).header.revision;

  /** A -w json answer without its header, revisions relative to `base`, lease ids masked. */
  function normJson(text: string, base: number): Json {
    const walk = (v: Json, key = ''): Json => {
      if (Array.isArray(v)) return v.map((x) => walk(x));
      if (v !== null && typeof v === 'object') {
        const o: { [k: string]: Json } = {};
        for (const [k, x] of Object.entries(v)) if (k !== 'header') o[k] = walk(x, k);
        return o;
      }
      if (typeof v === 'number' && /revision$/.test(key) && v > 0) return v - base;
      if (typeof v === 'number' && /^(lease|ID)$/.test(key) && v !== 0) return 'LEASE';
      return v;
    };
    return walk(JSON.parse(text) as Json);
  }

  /** Runs the scenario on both, in parallel; qkv's result must equal etcd's. */
  const same = <T>(scenario: (t: Target) => Promise<T>): Promise<T> => sameOnBoth(qkv, real, scenario);

  test('put and get: prefix, limit, sort, keys-only, values, count, revision, range, json', async () => {
    const r = await same(async (t) => {
      const base = await revision(t);
      const o: Record<string, Json> = {};
      for (const [k, v] of [
        ['/pg/a', '1'],
        ['/pg/b', '3'],
        ['/pg/c', '2'],
        ['/pg/a', '4'],
      ] as const) {
        o[`put ${k}=${v}`] = await out(t, ['put', k, v]);
      }
      o.prefix = await out(t, ['get', '/pg/', '--prefix']);
      o.limit = normJson(await out(t, ['get', '/pg/', '--prefix', '--limit', '2', '-w', 'json']), base);
      o.sortValueDesc = await out(t, ['get', '/pg/', '--prefix', '--sort-by=VALUE', '--order=DESCEND']);
      o.sortModify = await out(t, ['get', '/pg/', '--prefix', '--sort-by=MODIFY', '--order=ASCEND']);
      o.sortCreateDesc = await out(t, ['get', '/pg/', '--prefix', '--sort-by=CREATE', '--order=DESCEND', '--limit=2']);
      o.keysOnly = await out(t, ['get', '/pg/', '--prefix', '--keys-only']);
      o.values = await out(t, ['get', '/pg/', '--prefix', '--print-value-only']);
      o.countJson = normJson(await out(t, ['get', '/pg/', '--prefix', '--keys-only', '--limit=1', '-w', 'json']), base);
      o.oldRev = await out(t, ['get', '/pg/a', `--rev=${base + 1}`]);
      o.range = await out(t, ['get', '/pg/a', '/pg/c']);
      o.fromKey = await out(t, ['get', '/pg/b', '--from-key', '--keys-only', '--limit=2']);
      o.serializable = await out(t, ['get', '/pg/c', '--consistency=s']);
      o.json = normJson(await out(t, ['get', '/pg/a', '-w', 'json']), base);
      o.missing = await out(t, ['get', '/pg/zzz']);
      return o;
    });
    expect(r.prefix).toBe('/pg/a\n4\n/pg/b\n3\n/pg/c\n2\n');
    expect(r.oldRev).toBe('/pg/a\n1\n');
    expect(r.sortValueDesc).toBe('/pg/a\n4\n/pg/b\n3\n/pg/c\n2\n');
    expect(r.json).toEqual({
      kvs: [{ key: Buffer.from('/pg/a').toString('base64'), create_revision: 1, mod_revision: 4, version: 2, value: Buffer.from('4').toString('base64') }],
      count: 1,
    });
  });

  test('del: single key with prev-kv, prefix, missing key', async () => {
    const r = await same(async (t) => {
      for (const k of ['a', 'b', 'c']) await out(t, ['put', `/del/${k}`, k.toUpperCase()]);
      return {
        prev: await out(t, ['del', '/del/a', '--prev-kv']),
        prefix: await out(t, ['del', '/del/', '--prefix']),
        missing: await out(t, ['del', '/del/zz']),
        after: await out(t, ['get', '/del/', '--prefix']),
      };
    });
    expect(r).toEqual({ prev: '1\n/del/a\nA\n', prefix: '2\n', missing: '0\n', after: '' });
  });

  test('txn from stdin: compare / success / failure, both branches, json', async () => {
    const r = await same(async (t) => {
      const base = await revision(t);
      const cas = 'value("/tx/k") = "v"\n\nput /tx/k yes\nget /tx/k\n\nput /tx/k no\nget /tx/k\n\n';
      const o: Record<string, Json> = {};
      o.absent = await out(t, ['txn'], { input: cas });
      await out(t, ['put', '/tx/k', 'v']);
      o.matches = await out(t, ['txn'], { input: cas });
      o.created = await out(t, ['txn'], { input: 'create("/tx/new") = "0"\nversion("/tx/k") > "0"\n\nput /tx/new first\ndel /tx/k\n\nput /tx/new again\n\n' });
      o.json = normJson(await out(t, ['txn', '-w', 'json'], { input: 'mod("/tx/new") > "0"\n\nget /tx/new\n\n\n' }), base);
      o.final = await out(t, ['get', '/tx/', '--prefix']);
      return o;
    });
    expect(r.absent).toBe('FAILURE\n\nOK\n\n/tx/k\nno\n');
    expect(r.matches).toBe('SUCCESS\n\nOK\n\n/tx/k\nyes\n');
    expect(r.final).toBe('/tx/new\nfirst\n');
  });

  test('watch: history from --rev with --prev-kv, live events, prefix', async () => {
    const r = await same(async (t) => {
      const base = await revision(t);
      await out(t, ['put', '/w/a', '1']);
      await out(t, ['put', '/w/a', '2']);
      await out(t, ['del', '/w/a']);
      await out(t, ['put', '/w/b', '3']);
      await out(t, ['put', '/other', 'x']);
      const hist = new CtlChild(t.ep, ['watch', '/w/', '--prefix', '--prev-kv', `--rev=${base + 1}`]);
      const history = await hist.waitFor((s) => s.includes('/w/b\n3\n'), 'the history');
      await hist.stop();
      // Live: a watch from the next revision gets the next write however fast it comes.
      const next = (await revision(t)) + 1;
      const live = new CtlChild(t.ep, ['watch', '/w/live', `--rev=${next}`]);
      await out(t, ['put', '/w/live', 'now']);
      await out(t, ['put', '/w/livex', 'not-this-key']);
      await out(t, ['put', '/w/live', 'again']);
      const liveOut = await live.waitFor((s) => s.includes('again'), 'live events');
      await live.stop();
      return { history, live: liveOut };
    });
    expect(r.history).toBe('PUT\n/w/a\n1\nPUT\n/w/a\n1\n/w/a\n2\nDELETE\n/w/a\n2\n/w/a\n\nPUT\n/w/b\n3\n');
    expect(r.live).toBe('PUT\n/w/live\nnow\nPUT\n/w/live\nagain\n');
  });

  test('lease: grant, put --lease, timetolive --keys, keep-alive, list, revoke, errors', async () => {
    const r = await same(async (t) => {
      const o: Record<string, Json> = {};
      const granted = await out(t, ['lease', 'grant', '100']);
      const id = /lease ([0-9a-f]{16}) granted/.exec(granted)?.[1];
      if (!id) throw new Error(`${t.name}: no lease id in ${granted}`);
      const mask = (s: string): string => s.replaceAll(id, 'ID').replace(/remaining\((\d+)s\)/, (_, n: string) => `remaining(${Number(n) >= 95 ? 'ok' : n}s)`);
      o.grant = mask(granted);
      o.put = await out(t, ['put', '/ls/k', 'v', `--lease=${id}`]);
      o.ttl = mask(await out(t, ['lease', 'timetolive', id, '--keys']));
      o.once = mask(await out(t, ['lease', 'keep-alive', '--once', id]));
      o.listed = (await out(t, ['lease', 'list'])).includes(id);
      // The streaming keep-alive: etcdctl renews every TTL/3 seconds; with TTL 3 two renewals come within ~2 s.
      const short = /lease ([0-9a-f]{16}) granted/.exec(await out(t, ['lease', 'grant', '3']))![1]!;
      const ka = new CtlChild(t.ep, ['lease', 'keep-alive', short]);
      const kaOut = await ka.waitFor((s) => s.split('keepalived').length >= 3, 'two keep-alives');
      await ka.stop();
      o.keepAlive = kaOut.split('\n')[0]!.replaceAll(short, 'ID');
      o.revoke = mask(await out(t, ['lease', 'revoke', id]));
      o.afterRevoke = await out(t, ['get', '/ls/k']);
      o.expired = mask(await out(t, ['lease', 'timetolive', id]));
      o.revokeAgain = await failure(t, ['lease', 'revoke', id]);
      o.putUnknown = await failure(t, ['put', '/ls/x', 'v', '--lease=1234abcd']);
      await out(t, ['lease', 'revoke', short]);
      return o;
    });
    expect(r.grant).toBe('lease ID granted with TTL(100s)\n');
    expect(r.ttl).toBe('lease ID granted with TTL(100s), remaining(oks), attached keys([/ls/k])\n');
    expect(r.once).toBe('lease ID keepalived with TTL(100)\n');
    expect(r.listed).toBe(true);
    expect(r.afterRevoke).toBe('');
    expect(r.expired).toBe('lease ID already expired\n');
    expect(r.revokeAgain).toEqual({ code: 1, error: 'Error: failed to revoke lease (etcdserver: requested lease not found)' });
    expect(r.putUnknown).toEqual({ code: 1, error: 'Error: etcdserver: requested lease not found' });
  });

  test('lock: runs the command under the lock; a second holder waits for the first to release', async () => {
    const r = await same(async (t) => {
      const withCmd = await out(t, ['lock', '/lk/cmd', '--', 'sh', '-c', 'echo in-lock']);
      const first = new CtlChild(t.ep, ['lock', '/lk/m']);
      const key1 = (await first.waitFor((s) => s.includes('\n'), 'first holder')).trim();
      const second = new CtlChild(t.ep, ['lock', '/lk/m']);
      await sleep(700);
      const secondWhileHeld = second.stdout;
      await first.stop('SIGINT');
      const key2 = (await second.waitFor((s) => s.includes('\n'), 'second holder')).trim();
      await second.stop('SIGINT');
      return { withCmd, secondWhileHeld, key1: key1.replace(LEASE_HEX, '/ID'), key2: key2.replace(LEASE_HEX, '/ID'), distinct: key1 !== key2 };
    });
    expect(r).toEqual({ withCmd: 'in-lock\n', secondWhileHeld: '', key1: '/lk/m/ID', key2: '/lk/m/ID', distinct: true });
  });

  test('lock holders on different qkv members never overlap', async () => {
    const file = path.join(tmp, 'lock-trace.txt');
    await writeFile(file, '');
    const eps = cluster.endpoints.map(hostOf);
    const holders = ['a', 'b', 'c'].map((tag, i) =>
      etcdctl(eps[i]!, ['lock', '/lk/overlap', '--', 'sh', '-c', `echo start-${tag} >> ${file}; sleep 0.3; echo end-${tag} >> ${file}`]),
    );
    const results = await Promise.all(holders);
    expect(results.map((x) => x.code)).toEqual([0, 0, 0]);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) expect(lines[i + 1]).toBe(lines[i]!.replace('start-', 'end-'));
  });

  test('elect: campaign, observe, and hand-over when the leader resigns', async () => {
    const r = await same(async (t) => {
      const p1 = new CtlChild(t.ep, ['elect', '/el/e', 'p1']);
      const won = await p1.waitFor((s) => s.includes('p1\n'), 'p1 elected');
      const p2 = new CtlChild(t.ep, ['elect', '/el/e', 'p2']);
      const observer = new CtlChild(t.ep, ['elect', '-l', '/el/e']);
      await observer.waitFor((s) => s.includes('p1\n'), 'observer sees p1');
      await sleep(300);
      const p2WhileP1 = p2.stdout;
      await p1.stop('SIGINT');
      const p2Won = await p2.waitFor((s) => s.includes('p2\n'), 'p2 elected');
      const observed = await observer.waitFor((s) => s.includes('p2\n'), 'observer sees p2');
      await Promise.all([p2.stop('SIGINT'), observer.stop('SIGINT')]);
      return { won: won.replace(LEASE_HEX, '/ID'), p2WhileP1, p2Won: p2Won.replace(LEASE_HEX, '/ID'), observed: observed.replace(LEASE_HEX, '/ID') };
    });
    expect(r).toEqual({ won: '/el/e/ID\np1\n', p2WhileP1: '', p2Won: '/el/e/ID\np2\n', observed: '/el/e/ID\np1\n/el/e/ID\np2\n' });
  });

  test('compaction: compacted revisions answer etcd errors; watch from one is canceled', async () => {
    const r = await same(async (t) => {
      const base = await revision(t);
      for (const v of ['1', '2', '3']) await out(t, ['put', '/cp/a', v]);
      const compacted = (await out(t, ['compaction', String(base + 2)])).replace(String(base + 2), 'REV');
      const old = await failure(t, ['get', '/cp/a', `--rev=${base + 1}`]);
      const atCompaction = await out(t, ['get', '/cp/a', `--rev=${base + 2}`]);
      const physical = (await out(t, ['compaction', '--physical', String(base + 3)])).replace(String(base + 3), 'REV');
      const w = await ctl(t, ['watch', '/cp/a', `--rev=${base + 1}`], { timeoutMs: 10_000 });
      const future = await failure(t, ['get', '/cp/a', `--rev=${base + 1000}`]);
      return {
        compacted,
        old,
        atCompaction,
        physical,
        watch: {
          code: w.code,
          stdout: w.stdout,
          stderr: w.stderr
            .split('\n')
            .filter((l) => !l.startsWith('{'))
            .join('\n'),
        },
        future,
      };
    });
    expect(r.compacted).toBe('compacted revision REV\n');
    expect(r.old).toEqual({ code: 1, error: 'Error: etcdserver: mvcc: required revision has been compacted' });
    expect(r.atCompaction).toBe('/cp/a\n2\n');
    expect(r.future).toEqual({ code: 1, error: 'Error: etcdserver: mvcc: required revision is a future revision' });
    expect(r.watch.stdout + r.watch.stderr).toMatch(/required revision has been compacted/);
  });

  test('request errors: too large, too many txn ops, duplicate txn keys, empty key', async () => {
    const r = await same(async (t) => ({
      tooLarge: await failure(t, ['put', '/er/big'], { input: 'x'.repeat(1_700_000) }),
      tooManyOps: await failure(t, ['txn'], { input: '\n' + Array.from({ length: 129 }, (_, i) => `put /er/op${i} v`).join('\n') + '\n\n\n' }),
      duplicate: await failure(t, ['txn'], { input: '\nput /er/d 1\nput /er/d 2\n\n\n' }),
      emptyKey: await failure(t, ['put', '', 'v']),
      nothingWritten: await out(t, ['get', '/er/', '--prefix', '--keys-only']),
    }));
    expect(r.tooLarge.error).toBe('Error: etcdserver: request is too large');
    expect(r.tooManyOps.error).toBe('Error: etcdserver: too many operations in txn request');
    expect(r.duplicate.error).toBe('Error: etcdserver: duplicate key given in txn request');
    expect(r.nothingWritten).toBe('');
  });

  test('member list, endpoint status / health / hashkv on every qkv member', async () => {
    const members = await etcdctl(qkv.all, ['member', 'list']);
    expect(members.stdout.trim().split('\n')).toEqual(
      [...cluster.config.members]
        .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1))
        .map((m) => `${BigInt(m.id).toString(16)}, started, ${m.name}, ${m.peerUrl}, ${m.clientUrl}, false`),
    );
    const etcdMembers = await etcdctl(real.all, ['member', 'list']);
    expect(etcdMembers.stdout).toMatch(/^[0-9a-f]+, started, e1, http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+, false\n$/);

    // etcdctl prints uint64 ids as JSON numbers, beyond 2^53: keep their digits.
    const statusJson = (await etcdctl(qkv.all, ['endpoint', 'status', '-w', 'json'])).stdout.replace(/"(leader|member_id)":(\d+)/g, '"$1":"$2"');
    const status = JSON.parse(statusJson) as {
      Endpoint: string;
      Status: { leader: string; header: { member_id: string } };
    }[];
    expect(status.map((s) => s.Endpoint).sort()).toEqual(cluster.endpoints.map(hostOf).sort());
    expect(new Set(status.map((s) => s.Status.leader)).size).toBe(1);
    expect(status.map((s) => s.Status.header.member_id).sort()).toEqual(cluster.config.members.map((m) => m.id).sort());
    expect(cluster.config.members.map((m) => m.id)).toContain(status[0]!.Status.leader);
    const table = await etcdctl(qkv.all, ['endpoint', 'status', '-w', 'table']);
    expect(table.stdout).toMatch(/ 3\.4\.23 /);

    const health = await etcdctl(qkv.all, ['endpoint', 'health']);
    expect(health.code).toBe(0);
    expect(health.stderr.split('\n').filter((l) => l.includes('is healthy'))).toHaveLength(3);
    const etcdHealth = await etcdctl(real.all, ['endpoint', 'health']);
    expect(etcdHealth.stderr).toMatch(/is healthy: successfully committed proposal/);
    expect(health.stderr).toMatch(/is healthy: successfully committed proposal/);

    // Every member's store hashes alike at one revision (followers may need a moment to apply it).
    const rev = await revision(qkv);
    await LocalCluster.until(
      async () => {
        const h = JSON.parse((await etcdctl(qkv.all, ['endpoint', 'hashkv', `--rev=${rev}`, '-w', 'json'])).stdout) as { HashKV: { hash: number } }[];
        return h.length === 3 && new Set(h.map((x) => x.HashKV.hash)).size === 1 && h[0]!.HashKV.hash !== 0;
      },
      'equal HashKV on all members',
      10_000,
    );

    // Alarms: none. Defragment: accepted.
    expect((await etcdctl(qkv.all, ['alarm', 'list'])).stdout).toBe('');
    const defrag = await etcdctl(qkv.ep, ['defrag']);
    expect(defrag.stdout).toMatch(/^Finished defragmenting etcd member\[/);
  });

  test('snapshot save: the file etcdctl accepts (512-byte pages + SHA-256), from qkv and etcd', async () => {
    await same(async (t) => {
      const file = path.join(tmp, `${t.name}.snap`);
      const r = await ctl(t, ['snapshot', 'save', file]);
      const data = await readFile(file);
      const body = data.subarray(0, data.length - 32);
      return {
        code: r.code,
        saved: r.stdout.replace(file, 'FILE'),
        aligned: data.length % 512 === 32,
        digest: createHash('sha256')
          .update(body)
          .digest()
          .equals(data.subarray(data.length - 32)),
        mode: ((await stat(file)).mode & 0o777).toString(8),
      };
    });
  });
});
