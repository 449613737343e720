/**
 * `etcdctl check datascale` against a qkv cluster: it writes 10,000 keys of 1 KiB through 50
 * clients (the smallest load, `--load=s`), reads process_resident_memory_bytes from the
 * endpoint's /metrics before and after (a sample line must be the bare name, then the value),
 * and deletes the keys again.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from '../server/cluster_harness.js';
import { etcdctl, hostOf } from './helpers.js';

describe('etcdctl check against qkv', () => {
  let cluster: LocalCluster;
  let leader: string;

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    leader = await cluster.waitForLeader();
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  test('check datascale --load=s passes and leaves no keys behind', async () => {
    const r = await etcdctl(hostOf(cluster.url(leader)), ['check', 'datascale', '--load=s'], { timeoutMs: 110_000 });
    expect(r.stdout, r.stderr).toMatch(/^PASS: Approximate system memory used : -?\d+\.\d\d MB\.$/m);
    expect(r.stdout).not.toMatch(/FAIL|could not find|parse error/);
    expect(r.code).toBe(0);
    const left = await etcdctl(hostOf(cluster.url(leader)), ['get', '/etcdctl-check-datascale/', '--prefix', '--limit=1', '-w', 'json']);
    expect((JSON.parse(left.stdout) as { count?: number }).count ?? 0).toBe(0);
  }, 120_000);
});
