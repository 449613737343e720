/**
 * The one-command local cluster: `qkv cluster up` starts the members, reports the leader,
 * serves requests, and stops every member on Ctrl-C (SIGINT). Also /health and /metrics.
 */
import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../server/ports.js';
import { localMembers, prepareConfig } from '../../src/cli/cluster.js';
import { Client } from '../../src/client/client.js';

describe('qkv cluster up', () => {
  test('a 5-member layout follows etcd local-cluster ports', async () => {
    const m = localMembers(5, '/base');
    expect(m.map((x) => x.clientUrl)).toEqual([
      'http://127.0.0.1:2379',
      'http://127.0.0.1:22379',
      'http://127.0.0.1:32379',
      'http://127.0.0.1:42379',
      'http://127.0.0.1:52379',
    ]);
    expect(m[4]!.peerUrl).toBe('http://127.0.0.1:52380');
    expect(() => prepareConfig({ config: 'cluster.config.json', nodes: 4 })).toThrow(/3 or 5/);
  });

  test('starts five members, serves, reports health and metrics, and stops on SIGINT', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-up-'));
    const ports = await freePorts(10);
    const members = Array.from({ length: 5 }, (_, i) => ({
      name: `n${i + 1}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: `data/n${i + 1}`,
    }));
    const config = path.join(dir, 'cluster.config.json');
    await writeFile(config, JSON.stringify({ name: 'up-test', tickMs: 50, members }));
    const up = spawn(process.execPath, [path.resolve('bin/qkv.mjs'), 'cluster', 'up', '--config', config, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    up.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const deadline = Date.now() + 30_000;
      while (!/leader: n\d/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/leader: n\d/);
      expect(out).toContain('curl -X PUT');
      const client = new Client({ endpoints: members.map((m) => m.clientUrl) });
      await client.put('up', 'five');
      for (const m of members) {
        const got = await new Client({ endpoints: [m.clientUrl] }).get('up');
        expect(got.kvs[0]?.value.toString()).toBe('five');
      }
      const health = await fetch(`${members[2]!.clientUrl}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ health: 'true' });
      const metrics = await (await fetch(`${members[0]!.clientUrl}/metrics`)).text();
      expect(metrics).toMatch(/^qkv_server_raft_term [1-9]/m);
      expect(metrics).toMatch(/^etcd_disk_wal_fsync_duration_seconds_count [1-9]/m);
      expect(metrics).toMatch(/^etcd_server_has_leader 1$/m);
    } finally {
      const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
      up.kill('SIGINT');
      const code = await exited;
      expect(out).toContain('all members stopped');
      expect(code).toBe(0);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('--tls: https:// members with certificates made on the spot; qkv (--cacert, --cert, --key) and etcdctl work against it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-up-tls-'));
    const ports = await freePorts(6);
    const members = Array.from({ length: 3 }, (_, i) => ({
      name: `n${i + 1}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: `data/n${i + 1}`,
    }));
    const config = path.join(dir, 'cluster.config.json');
    await writeFile(config, JSON.stringify({ name: 'up-tls', tickMs: 50, members }));
    const up = spawn(process.execPath, [path.resolve('bin/qkv.mjs'), 'cluster', 'up', '--tls', '--config', config, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    up.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const certs = path.join(dir, 'data', 'tls');
    const tlsFlags = [`--cacert=${path.join(certs, 'ca.pem')}`, `--cert=${path.join(certs, 'client.pem')}`, `--key=${path.join(certs, 'client-key.pem')}`];
    const hosts = members.map((m) => m.clientUrl.replace('http://', '')).join(',');
    try {
      const deadline = Date.now() + 30_000;
      while (!/leader: n\d/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/leader: n\d/);
      expect(out).toContain(`client https://127.0.0.1:${ports[0]}`);
      expect(out).toContain(`curl --cacert ${path.join(certs, 'ca.pem')}`);
      // qkv's CLI: scheme-less endpoints are https:// with the TLS flags, as etcdctl's.
      const put = await run(process.execPath, [path.resolve('bin/qkv.mjs'), ...tlsFlags, `--endpoints=${hosts}`, 'put', 'up-tls', 'yes']);
      expect(put).toEqual({ code: 0, stdout: 'OK\n' });
      const got = await run('etcdctl', [
        ...tlsFlags,
        `--endpoints=${members.map((m) => m.clientUrl.replace('http://', 'https://')).join(',')}`,
        'get',
        'up-tls',
        '--print-value-only',
      ]);
      expect(got).toEqual({ code: 0, stdout: 'yes\n' });
      const health = await run(process.execPath, [path.resolve('bin/qkv.mjs'), ...tlsFlags, `--endpoints=${hosts}`, 'endpoint', 'health']);
      expect(health.code).toBe(0);
      expect(health.stdout.match(/is healthy/g)).toHaveLength(3);
      // Without a client certificate the member refuses the connection.
      const refused = await run(process.execPath, [path.resolve('bin/qkv.mjs'), tlsFlags[0]!, `--endpoints=${hosts}`, '--command-timeout=2s', 'get', 'up-tls']);
      expect(refused.code).toBe(1);
    } finally {
      const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
      up.kill('SIGINT');
      const code = await exited;
      expect(out).toContain('all members stopped');
      expect(code).toBe(0);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Runs a command to its end: exit code and stdout. */
function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ETCDCTL_API: '3' } });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}
