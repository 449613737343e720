/**
 * `qkv auth|user|role` against etcdctl's: each step run with etcdctl on a real etcd 3.4 and with
 * qkv's CLI on a qkv cluster (through a follower), the same stdout, the same error line, the same
 * exit code; `--user` makes both act as that user.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { etcdctl, type RealEtcd, startBesideEtcd } from '../grpc/helpers.js';
import type { LocalCluster } from '../server/cluster_harness.js';

interface Run {
  code: number | null;
  stdout: string;
  error: string;
}

const BIN = path.resolve('bin/qkv.mjs');

function qkvCli(endpoint: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, `--endpoints=${endpoint}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The answer without etcdctl's retry warnings (a random client id, the time). */
const run = async (p: Promise<{ code: number | null; stdout: string; stderr: string }>): Promise<Run> => {
  const r = await p;
  return {
    code: r.code,
    stdout: r.stdout,
    error: r.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('{"level":"warn"'))
      .join('\n'),
  };
};

describe('qkv auth, user and role against etcdctl', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let qUrl: string;

  beforeAll(async () => {
    let follower: string;
    ({ cluster, etcd, follower } = await startBesideEtcd());
    qUrl = cluster.url(follower);
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.stop();
  });

  test('every step prints what etcdctl prints', async () => {
    const root = '--user=root:rootpw';
    const steps: string[][] = [
      ['user', 'add', 'root:rootpw'],
      ['auth', 'enable'],
      [root, 'user', 'add', 'alice:alicepw'],
      [root, 'user', 'add', 'alice:again'],
      [root, 'user', 'add', 'carl', '--no-password'],
      [root, 'role', 'add', 'app'],
      [root, 'role', 'add', 'app'],
      [root, 'role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix'],
      [root, 'role', 'grant-permission', 'app', 'read', '/config'],
      [root, 'role', 'grant-permission', 'app', 'write', 'w', 'x'],
      [root, 'role', 'grant-permission', 'app', 'read', 'z', '--from-key'],
      [root, 'role', 'grant-permission', 'nosuch', 'read', 'k'],
      [root, 'user', 'grant-role', 'alice', 'app'],
      [root, 'user', 'grant-role', 'alice', 'nosuch'],
      [root, 'role', 'get', 'app'],
      [root, 'role', 'get', 'nosuch'],
      [root, 'role', 'list'],
      [root, 'user', 'get', 'alice'],
      [root, 'user', 'get', 'alice', '--detail'],
      [root, 'user', 'get', 'nobody'],
      [root, 'user', 'list'],
      ['--user=alice:alicepw', 'put', '/app/x', '1'],
      ['--user=alice:alicepw', 'get', '/app/', '--prefix'],
      ['--user=alice:alicepw', 'put', '/config', 'mine'],
      ['--user=alice:alicepw', 'user', 'list'],
      ['--user=alice:alicepw', 'auth', 'disable'],
      ['--user=alice:wrong', 'get', '/app/x'],
      ['get', '/app/x'],
      [root, 'user', 'passwd', 'alice'],
      [root, 'role', 'revoke-permission', 'app', '/config'],
      [root, 'role', 'revoke-permission', 'app', 'w', 'x'],
      [root, 'role', 'revoke-permission', 'app', '/nothing'],
      [root, 'user', 'revoke-role', 'alice', 'app'],
      [root, 'user', 'revoke-role', 'alice', 'app'],
      [root, 'user', 'delete', 'root'],
      [root, 'role', 'delete', 'app'],
      [root, 'user', 'delete', 'alice'],
      [root, 'user', 'delete', 'alice'],
      [root, 'auth', 'disable'],
      ['user', 'list'],
    ];
    const passwd = (args: string[]): boolean => args.includes('passwd');
    for (const args of steps) {
      // etcdctl's passwd reads the password from stdin with --interactive=false; qkv's too.
      const [e, q] = await Promise.all([
        run(passwd(args) ? etcdctlStdin(etcd.endpoint, [...args, '--interactive=false'], 'changed\n') : etcdctl(etcd.endpoint, args)),
        run(passwd(args) ? qkvStdin(qUrl, args, 'changed\n') : qkvCli(qUrl, args)),
      ]);
      expect({ args, ...q }).toEqual({ args, ...e });
    }
  }, 180_000);
});

function etcdctlStdin(endpoint: string, args: string[], input: string): ReturnType<typeof etcdctl> {
  return etcdctl(endpoint, args, { input });
}

function qkvStdin(endpoint: string, args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, `--endpoints=${endpoint}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}
