/**
 * The HTTP surfaces on a real cluster: every bad input gets its etcd error and status and
 * changes nothing; the etcd gateway and the /v1 API answer the same data; CLI locks exclude
 * each other.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LocalCluster } from './cluster_harness.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('HTTP API on a 3-member cluster', () => {
  let cluster: LocalCluster;
  let url: string;

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3, maxRequestBytes: 64 * 1024 });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    // Talk to a follower: errors must come back the same through forwarding.
    url = cluster.url(cluster.names.find((n) => n !== leader)!);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  async function post(p: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(url + p, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  test('bad inputs answer etcd errors with fitting statuses and change nothing', async () => {
    const client = cluster.client();
    await client.put('stable', 'before');
    for (let i = 0; i < 5; i++) await client.put('history', String(i));
    const compactAt = (await client.get('history')).header.revision - 1;
    await client.compact(compactAt);
    const before = await client.get('stable');

    const cases: { name: string; run: () => Promise<{ status: number; json: Record<string, unknown> }>; status: number; message: RegExp; code?: number }[] = [
      {
        name: 'invalid JSON',
        run: () => post('/v3/kv/put', '{bad json'),
        status: 400,
        message: /^invalid character 'b' looking for beginning of object key string$/,
        code: 3,
      },
      { name: 'bad base64', run: () => post('/v3/kv/put', { key: '@@@', value: b64('x') }), status: 400, message: /illegal base64 data/, code: 3 },
      { name: 'empty key', run: () => post('/v3/kv/put', { key: '', value: b64('x') }), status: 400, message: /^etcdserver: key is not provided$/, code: 3 },
      {
        name: 'oversize value',
        run: () => post('/v3/kv/put', { key: b64('big'), value: b64(Buffer.alloc(70 * 1024)) }),
        status: 400,
        message: /^etcdserver: request is too large$/,
        code: 3,
      },
      {
        name: 'body over the HTTP limit',
        run: () => post('/v3/kv/put', { key: b64('huge'), value: b64(Buffer.alloc(200 * 1024)) }),
        status: 400,
        message: /^etcdserver: request is too large$/,
      },
      {
        name: 'unknown lease',
        run: () => post('/v3/kv/put', { key: b64('k'), value: b64('v'), lease: '12345' }),
        status: 404,
        message: /^etcdserver: requested lease not found$/,
        code: 5,
      },
      {
        name: 'future revision',
        run: () => post('/v3/kv/range', { key: b64('stable'), revision: '100000' }),
        status: 400,
        message: /^etcdserver: mvcc: required revision is a future revision$/,
        code: 11,
      },
      {
        name: 'compacted revision',
        run: () => post('/v3/kv/range', { key: b64('history'), revision: String(compactAt - 1) }),
        status: 400,
        message: /^etcdserver: mvcc: required revision has been compacted$/,
        code: 11,
      },
      {
        name: 'duplicate key in txn',
        run: () => post('/v3/kv/txn', { success: [{ request_put: { key: b64('d'), value: b64('1') } }, { request_put: { key: b64('d'), value: b64('2') } }] }),
        status: 400,
        message: /^etcdserver: duplicate key given in txn request$/,
        code: 3,
      },
      {
        name: 'revoke of an unknown lease',
        run: () => post('/v3/lease/revoke', { ID: '777' }),
        status: 404,
        message: /^etcdserver: requested lease not found$/,
        code: 5,
      },
      {
        name: 'lease TTL too large',
        run: () => post('/v3/lease/grant', { TTL: '9000000001' }),
        status: 400,
        message: /^etcdserver: too large lease TTL$/,
        code: 11,
      },
      {
        name: 'unknown sort order',
        run: () => post('/v3/kv/range', { key: b64('k'), sort_order: 'SIDEWAYS' }),
        status: 400,
        message: /unknown value "SIDEWAYS"/,
        code: 3,
      },
      {
        name: 'v1: lease that is not a number',
        run: async () => {
          const res = await fetch(`${url}/v1/kv/k?lease=banana`, { method: 'PUT', body: 'v' });
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        status: 400,
        message: /lease must be/,
      },
      {
        name: 'v1: bad percent-encoding in the key',
        run: async () => {
          const res = await fetch(`${url}/v1/kv/bad%zzkey`, { method: 'PUT', body: 'v' });
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        status: 400,
        message: /invalid percent-encoding/,
      },
      {
        name: 'v1: txn that is not an object',
        run: async () => {
          const res = await fetch(`${url}/v1/txn`, { method: 'POST', body: '[1,2]' });
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        status: 400,
        message: /txn body must be a JSON object/,
      },
      {
        name: 'v1: keep-alive of an unknown lease',
        run: async () => {
          const res = await fetch(`${url}/v1/lease/777/keepalive`, { method: 'POST', body: '' });
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        status: 404,
        message: /^etcdserver: requested lease not found$/,
        code: 5,
      },
      {
        name: 'v1: time-to-live of an unknown lease',
        run: async () => {
          const res = await fetch(`${url}/v1/lease/777`);
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        status: 404,
        message: /^etcdserver: requested lease not found$/,
        code: 5,
      },
      {
        name: 'v1: non-integer revision',
        run: async () => {
          const res = await fetch(`${url}/v1/kv/stable?rev=soon`);
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        status: 400,
        message: /rev must be an integer/,
      },
    ];
    for (const c of cases) {
      const r = await c.run();
      expect({ name: c.name, status: r.status }).toEqual({ name: c.name, status: c.status });
      expect(String(r.json['message']), c.name).toMatch(c.message);
      if (c.code !== undefined) expect(r.json['code'], c.name).toBe(c.code);
      expect(r.json['error'], c.name).toBe(r.json['message']);
    }
    const after = await client.get('stable');
    expect(after.header.revision).toBe(before.header.revision);
    expect(after.kvs[0]!.value.toString()).toBe('before');
    for (const k of ['big', 'huge', 'k', 'd']) expect((await client.get(k)).count).toBe(0);
  });

  test('gateway and /v1 agree, binary keys included', async () => {
    const client = cluster.client();
    const key = Buffer.from([0x2f, 0x00, 0xff, 0x41]);
    await client.put(key, Buffer.from([0xff, 0xfe, 0x00]));
    const res = await fetch(`${url}/v1/kv/%2F%00%FFA`);
    const body = (await res.json()) as { kvs: { key_base64?: string; value_base64?: string }[] };
    expect(Buffer.from(body.kvs[0]!.key_base64!, 'base64')).toEqual(key);
    expect(Buffer.from(body.kvs[0]!.value_base64!, 'base64')).toEqual(Buffer.from([0xff, 0xfe, 0x00]));
    const txn = await fetch(`${url}/v1/txn`, {
      method: 'POST',
      body: JSON.stringify({
        compare: [{ key: 'stable', target: 'value', result: '=', value: 'before' }],
        success: [{ put: { key: 'txn-ok', value: 'yes' } }],
        failure: [{ put: { key: 'txn-ok', value: 'no' } }],
      }),
    });
    expect(((await txn.json()) as { succeeded: boolean }).succeeded).toBe(true);
    expect((await client.getValue('txn-ok'))?.toString()).toBe('yes');
  });

  test('two CLI lock holders never overlap', async () => {
    const file = path.join(cluster.dir, 'lock-trace.txt');
    const endpoints = cluster.endpoints.map((e) => e.replace('http://', '')).join(',');
    const holder = (tag: string) =>
      new Promise<number>((resolve, reject) => {
        const p = spawn(
          process.execPath,
          [
            path.resolve('bin/qkv.mjs'),
            '--endpoints',
            endpoints,
            'lock',
            'e2e-lock',
            '--',
            'sh',
            '-c',
            `echo start-${tag} >> ${file}; sleep 0.4; echo end-${tag} >> ${file}`,
          ],
          { stdio: ['ignore', 'ignore', 'inherit'] },
        );
        p.on('error', reject);
        p.on('exit', (code) => resolve(code ?? 1));
      });
    const codes = await Promise.all(['a', 'b', 'c'].map(holder));
    expect(codes).toEqual([0, 0, 0]);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(6);
    for (let i = 0; i < lines.length; i += 2) {
      const tag = lines[i]!.replace('start-', '');
      expect(lines[i + 1]).toBe(`end-${tag}`);
    }
  });
});
