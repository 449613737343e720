/**
 * qkv inside a Node program (src/embed.ts): a throwaway cluster started from code, in this
 * process and as child processes, used with etcd's own npm client; a member restarted on its
 * data dir keeps its keys; the built package exports the API under its own name.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, test } from 'vitest';
import { startLocalCluster, startMember } from '../src/embed.js';
import { freePorts } from './server/ports.js';

const ROOT = path.join(import.meta.dirname, '..');

/** Whether something accepts connections on the client URL's port. */
function accepting(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('startLocalCluster', () => {
  test('three members in this process: a leader, writes through etcd3 read through qkv, and stop() removes every trace', async () => {
    const cluster = await startLocalCluster({ size: 3 });
    const etcd = new Etcd3({ hosts: [...cluster.endpoints], dialTimeout: 5_000 });
    try {
      expect(cluster.members.map((m) => m.name)).toEqual(['n1', 'n2', 'n3']);
      expect(['n1', 'n2', 'n3']).toContain(await cluster.leader());
      await etcd.put('greeting').value('hello');
      const client = cluster.client();
      const got = await client.range({ key: Buffer.from('greeting') });
      expect(got.kvs?.map((kv) => Buffer.from(kv.value ?? []).toString())).toEqual(['hello']);
      // Every member has it: a serializable read on each answers from its own store.
      for (const url of cluster.endpoints) {
        const one = new Etcd3({ hosts: url, dialTimeout: 5_000 });
        try {
          await expect.poll(() => one.get('greeting').serializable(true).string(), { timeout: 10_000 }).toBe('hello');
        } finally {
          one.close();
        }
      }
    } finally {
      etcd.close();
      await cluster.stop();
    }
    const dir = path.dirname(cluster.members[0]!.dataDir);
    expect(existsSync(dir)).toBe(false);
    for (const url of cluster.endpoints) expect(await accepting(url)).toBe(false);
    // Idempotent.
    await cluster.stop();
  });

  test('one member as a child process, in a directory of the caller that stop() leaves in place', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-embed-'));
    try {
      const cluster = await startLocalCluster({ size: 1, processes: true, dir, logLevel: 'warn' });
      const etcd = new Etcd3({ hosts: [...cluster.endpoints], dialTimeout: 5_000 });
      try {
        expect(await cluster.leader()).toBe('n1');
        await etcd.put('k').value('v');
        expect(await etcd.get('k').string()).toBe('v');
      } finally {
        etcd.close();
        await cluster.stop();
      }
      expect(await accepting(cluster.endpoints[0]!)).toBe(false);
      expect(existsSync(cluster.members[0]!.dataDir)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a size other than 1, 3 or 5 is refused before anything starts', async () => {
    await expect(startLocalCluster({ size: 2 as 3 })).rejects.toThrow('size must be 1, 3 or 5, got 2');
  });
});

describe('startMember', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-embed-member-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a member started with etcd's flags keeps its keys when started again on its data dir", async () => {
    const [clientPort, peerPort] = await freePorts(2);
    const flags = {
      name: 'solo',
      dataDir: path.join(dir, 'solo'),
      listenClientUrls: `http://127.0.0.1:${clientPort}`,
      listenPeerUrls: `http://127.0.0.1:${peerPort}`,
      initialCluster: `solo=http://127.0.0.1:${peerPort}`,
    };
    const first = await startMember(flags);
    expect(first.clientUrl).toBe(`http://127.0.0.1:${clientPort}`);
    const etcd = new Etcd3({ hosts: first.clientUrl, dialTimeout: 5_000 });
    try {
      // A request waits for the member's first election, as one to etcd does.
      await etcd.put('kept').value('yes');
    } finally {
      etcd.close();
      await first.stop();
    }
    const second = await startMember(flags);
    const again = new Etcd3({ hosts: second.clientUrl, dialTimeout: 5_000 });
    try {
      expect(await again.get('kept').string()).toBe('yes');
    } finally {
      again.close();
      await second.stop();
    }
  });
});

describe('the package', () => {
  test("exports startLocalCluster and the client as 'qkv', and the client alone as 'qkv/client'", () => {
    // Node resolves a package's own name inside it through its exports map: this is what an
    // application that installed qkv gets (dist/, which the test setup builds).
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const main = await import('qkv'); const client = await import('qkv/client'); console.log(JSON.stringify({ main: [typeof main.startLocalCluster, typeof main.startMember, typeof main.Client], client: [typeof client.Client, typeof client.startLocalCluster] }));",
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({ main: ['function', 'function', 'function'], client: ['function', 'undefined'] });
  });
});
