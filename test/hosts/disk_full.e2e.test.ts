/**
 * The disk filling up under one member, on a small filesystem made for the test (a 96 MiB tmpfs
 * mounted on n1's data dir; root): below its reserve (--disk-reserve-bytes) the member raises
 * NOSPACE, so every member refuses writes with etcd's "database space exceeded" while reads go
 * on; it says so in its log, /health and metrics; nothing acknowledged is lost; and once space is
 * freed (a ballast file removed) it clears the alarm and writes resume, in the same process.
 *
 * Planted bug tried: a guard that never reports low space (DiskSpaceGuard.check returning at
 * once) lets the writes run n1's disk full: it stops on ENOSPC, the other two take all 200 puts,
 * and no NOSPACE comes. The same happened with the guard checking on its 1 s timer alone (before
 * DiskSpaceGuard.written): 1 MiB puts filled the rest of the tmpfs between two checks.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LocalCluster } from '../server/cluster_harness.js';

const MiB = 1024 * 1024;
let cluster: LocalCluster;
let mounted: string | undefined;

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

async function put(name: string, key: string, value: Buffer): Promise<{ status: number; body: { message?: string } }> {
  const res = await fetch(`${cluster.url(name)}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(key), value: b64(value) }) });
  return { status: res.status, body: (await res.json()) as { message?: string } };
}

beforeAll(async () => {
  cluster = await LocalCluster.create({ nodes: 3, diskReserveBytes: 24 * MiB, maxRequestBytes: 1.5 * MiB });
  const n1 = cluster.config.members[0]!.dataDir;
  mkdirSync(n1, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', n1]);
  mounted = n1;
  // Other data on the same disk, which the operator removes to make room.
  writeFileSync(path.join(n1, 'ballast'), Buffer.alloc(40 * MiB, 1));
  cluster.startAll();
  await cluster.waitForLeader();
}, 60_000);

afterAll(async () => {
  await cluster?.destroy().catch(() => undefined);
  if (mounted) execFileSync('umount', ['-l', mounted]);
});

test('below the reserve writes stop with NOSPACE everywhere, reads go on, nothing acknowledged is lost; freed, writes resume without a restart', async () => {
  const n1 = cluster.procs.get('n1')!.child;
  const value = Buffer.alloc(1 * MiB, 7);
  const acknowledged: string[] = [];
  let refused: { status: number; body: { message?: string } } | undefined;
  for (let i = 0; i < 200 && !refused; i++) {
    const r = await put('n2', `big/${i}`, value);
    if (r.status === 200) acknowledged.push(`big/${i}`);
    else refused = r;
  }
  expect(refused).toEqual({ status: 429, body: expect.objectContaining({ message: 'etcdserver: mvcc: database space exceeded' }) });
  expect(acknowledged.length).toBeGreaterThan(5);
  // n1 is still the same process: it never ran into ENOSPC.
  expect(n1.exitCode).toBe(null);
  expect(cluster.procs.get('n1')!.child).toBe(n1);

  // Every member refuses writes; reads go on.
  for (const name of cluster.names) expect((await put(name, 'one-more', Buffer.from('x'))).status).toBe(429);
  const range = await fetch(`${cluster.url('n3')}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: b64('big/'), range_end: b64('big0'), keys_only: true }),
  });
  expect(Number(((await range.json()) as { count?: string }).count)).toBe(acknowledged.length);
  // Said in n1's health, metrics and log.
  const health = await fetch(`${cluster.url('n1')}/health`);
  expect(health.status).toBe(503);
  expect(((await health.json()) as { reason: string }).reason).toMatch(/^disk space low: \d+ bytes free$/);
  expect(await (await fetch(`${cluster.url('n1')}/metrics`)).text()).toMatch(/^qkv_disk_space_low 1$/m);
  expect(await readFile(cluster.logPath('n1'), 'utf8')).toContain('disk space low: raising NOSPACE');
  const alarms = await fetch(`${cluster.url('n2')}/v3/maintenance/alarm`, { method: 'POST', body: JSON.stringify({ action: 'GET' }) });
  expect(((await alarms.json()) as { alarms?: { alarm: string }[] }).alarms?.map((a) => a.alarm)).toEqual(['NOSPACE']);

  // The operator frees space: n1 clears its alarm by itself, and writes resume.
  rmSync(path.join(mounted!, 'ballast'));
  await LocalCluster.until(async () => (await put('n2', 'after', Buffer.from('freed'))).status === 200, 'writes to resume', 30_000);
  expect(n1.exitCode).toBe(null);
  expect((await fetch(`${cluster.url('n1')}/health`)).status).toBe(200);
  // Nothing acknowledged was lost, on n1 either.
  const onN1 = await fetch(`${cluster.url('n1')}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: b64('big/'), range_end: b64('big0'), keys_only: true, serializable: true }),
  });
  const keys = (((await onN1.json()) as { kvs?: { key: string }[] }).kvs ?? []).map((kv) => Buffer.from(kv.key, 'base64').toString());
  expect(keys.sort()).toEqual([...acknowledged].sort());
}, 180_000);
