import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION, QKV_VERSION } from '../src/version.js';

test("qkv's version is package.json's", () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  expect(QKV_VERSION).toBe(pkg.version);
});

test('the etcd versions are plain numeric versions (clients parse each part as an integer)', () => {
  for (const v of [ETCD_SERVER_VERSION, ETCD_CLUSTER_VERSION]) {
    expect(v).toMatch(/^3\.4\.\d+$/);
    expect(
      v
        .split('.')
        .map((part) => Number.parseInt(part, 10))
        .join('.'),
    ).toBe(v);
  }
});
