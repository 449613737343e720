/**
 * Member and cluster ids are etcd's, all 64 bits: a real etcd 3.4 and qkv started in turn with
 * the same flags (names, peer URLs, --initial-cluster-token) list the same members with the same
 * ids (`etcdctl member list`, simple and JSON) and report the same cluster id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { etcdctl, sleep } from '../grpc/helpers.js';
import { freePorts } from './ports.js';

const BIN = path.resolve('bin/qkv.mjs');

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await stopAll();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function stopAll(): Promise<void> {
  await Promise.all(
    children.splice(0).map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }),
  );
}

/** Starts `command` with etcd's member flags for member `name` of `initial`. */
async function startWithFlags(command: string[], name: string, clientUrl: string, peerUrl: string, initial: string, token: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-ids-'));
  dirs.push(dir);
  const flags = [
    `--name=${name}`,
    `--data-dir=${path.join(dir, 'data')}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${initial}`,
    `--initial-cluster-token=${token}`,
  ];
  children.push(spawn(command[0]!, [...command.slice(1), ...flags], { stdio: ['ignore', 'ignore', 'ignore'] }));
}

/** Three members of `command` on these ports, all with etcd's flags; resolves once the first answers member list with all three started. */
async function startCluster(command: string[], ports: number[], token: string): Promise<void> {
  const names = ['e1', 'e2', 'e3'];
  const initial = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
  for (const [i, n] of names.entries())
    await startWithFlags(command, n, `http://127.0.0.1:${ports[2 * i]}`, `http://127.0.0.1:${ports[2 * i + 1]}`, initial, token);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await etcdctl(`http://127.0.0.1:${ports[0]}`, ['member', 'list'], { timeoutMs: 3_000 });
    if (r.code === 0 && !r.stdout.includes('unstarted')) return;
    if (Date.now() > deadline) throw new Error(`${command.join(' ')}: not all started: ${r.stdout}${r.stderr}`);
    await sleep(100);
  }
}

interface Listing {
  simple: string;
  ids: string[];
  clusterId: string;
}

async function listing(clientUrl: string): Promise<Listing> {
  const simple = (await etcdctl(clientUrl, ['member', 'list'])).stdout;
  // etcdctl prints uint64 ids as JSON numbers, beyond 2^53: keep their digits.
  const json = (await etcdctl(clientUrl, ['member', 'list', '-w', 'json'])).stdout.replace(/"(ID|cluster_id|member_id)":(\d+)/g, '"$1":"$2"');
  const r = JSON.parse(json) as { header: { cluster_id: string }; members: { ID: string }[] };
  return { simple, ids: r.members.map((m) => m.ID).sort(), clusterId: r.header.cluster_id };
}

describe("member ids are etcd's", () => {
  test('the same flags give the same member ids and cluster id on etcd 3.4 and on qkv', async () => {
    // The same ports for both, one after the other: the peer URLs are part of the ids.
    const ports = await freePorts(6);
    const token = `ids-${ports[0]}`;
    const clientUrl = `http://127.0.0.1:${ports[0]}`;

    await startCluster(['etcd', '--log-level=error'], ports, token);
    const etcd = await listing(clientUrl);
    await stopAll();
    await startCluster([process.execPath, BIN, 'serve', '--log-level=error'], ports, token);
    const qkv = await listing(clientUrl);

    expect(qkv.ids).toEqual(etcd.ids);
    expect(qkv.clusterId).toBe(etcd.clusterId);
    // Ids, names, peer and client URLs: the same lines.
    expect(qkv.simple.split('\n').sort()).toEqual(etcd.simple.split('\n').sort());
    // Not vacuous: 64-bit ids, not masked to 53 bits (one of three is below 2^53 with odds 1 in 2^33).
    expect(etcd.ids.some((id) => BigInt(id) >= 2n ** 53n)).toBe(true);
  });

  test("a data dir whose identity has an older qkv's 53-bit id refuses to start, saying so", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-ids-'));
    dirs.push(dir);
    const dataDir = path.join(dir, 'data');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'member.json'), JSON.stringify({ id: 4503599627370495, clusterId: '5' }));
    const [client, peer] = await freePorts(2);
    const c = spawn(
      process.execPath,
      [
        BIN,
        'serve',
        '--name=e1',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=e1=http://127.0.0.1:${peer}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(c);
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => c.once('close', resolve));
    expect(code).toBe(1);
    expect(out).toContain('has a 53-bit member id of an older qkv: start this member on an empty data dir');
  });
});
