import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { BackendQuota, quotaCost, storeFileBytes } from '../../src/server/quota.js';
import { CLUSTER_DEFAULTS, ConfigError, parseClusterConfig, resolveQuotaBackendBytes } from '../../src/server/config.js';

const b = (s: string): Buffer => Buffer.from(s);

describe('quotaCost: etcd backendQuota.Cost', () => {
  test('a put: key + value + 256 bytes of metadata', () => {
    expect(quotaCost({ put: { key: b('key'), value: b('12345') } })).toBe(256 + 3 + 5);
    expect(quotaCost({ put: { key: b('k') } })).toBe(257);
  });

  test('a txn: the top-level puts of its costlier branch; reads and deletes cost nothing', () => {
    const put = (k: string, v: string) => ({ requestPut: { key: b(k), value: b(v) } });
    expect(quotaCost({ txn: { success: [put('a', '1'), put('b', '22')], failure: [put('c', '333333')] } })).toBe(256 + 2 + 256 + 3);
    expect(quotaCost({ txn: { success: [put('a', '1')], failure: [put('c', '333333')] } })).toBe(256 + 7);
    expect(quotaCost({ txn: { success: [{ requestRange: { key: b('a') } }, { requestDeleteRange: { key: b('b') } }] } })).toBe(0);
    expect(quotaCost({ txn: { success: [{ requestTxn: { success: [put('a', '1')] } }] } })).toBe(0);
    expect(quotaCost({ txn: {} })).toBe(0);
  });

  test('a lease grant: 64 bytes', () => {
    expect(quotaCost({ leaseGrant: {} })).toBe(64);
  });
});

describe('BackendQuota', () => {
  const quota = (quotaBytes: number, sizes: number[], clock = { t: 0 }) => {
    let measured = 0;
    const q = new BackendQuota({
      quotaBytes,
      measure: async () => sizes[Math.min(measured++, sizes.length - 1)]!,
      now: () => clock.t,
    });
    return { q, clock, measured: () => measured };
  };

  test('fits while size + cost stays below the quota (etcd: strictly below)', async () => {
    const { q } = quota(1000, [700]);
    expect(await q.fits(299)).toBe(true);
    expect(await q.fits(300)).toBe(false);
  });

  test('a request that costs nothing always fits, even past the quota (etcd 3.4.23)', async () => {
    const { q, measured } = quota(1000, [5000]);
    expect(await q.fits(0)).toBe(true);
    expect(measured()).toBe(0);
  });

  test('a negative quota is no quota: nothing is measured', async () => {
    const { q, measured } = quota(-1, [1e12]);
    expect(q.enabled).toBe(false);
    expect(await q.fits(1e9)).toBe(true);
    expect(measured()).toBe(0);
  });

  test('the size is measured again once 100 ms old, and at once by remeasure', async () => {
    const { q, clock, measured } = quota(1000, [900, 100, 50]);
    expect(await q.fits(200)).toBe(false);
    clock.t = 50;
    expect(await q.fits(200)).toBe(false); // still the first measurement
    expect(measured()).toBe(1);
    clock.t = 150;
    expect(await q.fits(200)).toBe(true);
    expect(measured()).toBe(2);
    expect(await q.remeasure()).toBe(50);
  });

  test('concurrent checks share one measurement; a failed one keeps the last size', async () => {
    let calls = 0;
    let fail = false;
    const q = new BackendQuota({
      quotaBytes: 1000,
      measure: async () => {
        calls++;
        if (fail) throw new Error('ENOENT');
        return 900;
      },
      now: () => 0,
    });
    expect(await Promise.all([q.fits(200), q.fits(50), q.fits(200)])).toEqual([false, true, false]);
    expect(calls).toBe(1);
    fail = true;
    expect(await q.remeasure()).toBe(900);
  });
});

test('storeFileBytes: every file, and the write-ahead logs (*.log) apart', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-quota-'));
  try {
    await writeFile(path.join(dir, '000005.ldb'), Buffer.alloc(100));
    await writeFile(path.join(dir, '000007.log'), Buffer.alloc(30));
    await writeFile(path.join(dir, 'LOG'), Buffer.alloc(7));
    expect(await storeFileBytes(dir)).toEqual({ total: 137, writeAheadLog: 30 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('quotaBackendBytes in the config', () => {
  const member = { name: 'n1', clientUrl: 'http://127.0.0.1:2379', peerUrl: 'http://127.0.0.1:2380', dataDir: 'd' };

  test("default and 0: etcd's 2 GiB; negative: no quota; the flag's text too", () => {
    expect(CLUSTER_DEFAULTS.quotaBackendBytes).toBe(2 * 1024 ** 3);
    expect(parseClusterConfig({ members: [member] }, '/b').quotaBackendBytes).toBe(2 * 1024 ** 3);
    expect(parseClusterConfig({ members: [member], quotaBackendBytes: 0 }, '/b').quotaBackendBytes).toBe(2 * 1024 ** 3);
    expect(parseClusterConfig({ members: [member], quotaBackendBytes: 16777216 }, '/b').quotaBackendBytes).toBe(16777216);
    expect(resolveQuotaBackendBytes('-1', '--quota-backend-bytes')).toBe(-1);
    expect(resolveQuotaBackendBytes(' 4096 ', '--quota-backend-bytes')).toBe(4096);
  });

  test.each([1.5, '16MiB', true, null, ''])('rejects %j with its path', (v) => {
    expect(() => parseClusterConfig({ members: [member], quotaBackendBytes: v }, '/b')).toThrow(ConfigError);
    expect(() => parseClusterConfig({ members: [member], quotaBackendBytes: v }, '/b')).toThrow(/quotaBackendBytes: expected an integer number of bytes/);
  });
});
