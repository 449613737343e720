/**
 * Store snapshots between members of two versions, as in a rolling upgrade: members before the
 * files stream ask a peer's /internal/v1/snapshot without the qkv-store-stream header and read
 * the record stream (the store's MVCC snapshot, length-prefixed chunks, rebuilt with
 * MvccStore.restore); they answer such a request with that stream, without the header. A member
 * of this version must answer them with the record stream, and read theirs: either way the copy
 * holds the same keys, revisions and HashKV as the member it came from.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import type { ApplyEntry } from '../../src/mvcc/types.js';
import { LengthPrefixedFrames } from '../../src/server/frames.js';
import { fetchStoreInto, recordStreamFrames, SNAPSHOT_PATH, STREAM_HEADER } from '../../src/server/snapshot_client.js';
import { LocalCluster } from './cluster_harness.js';

let dir: string;
let cluster: LocalCluster;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-snapshot-versions-'));
  cluster = await LocalCluster.create({ nodes: 1 });
  cluster.startAll();
  await cluster.waitForLeader();
});

afterAll(async () => {
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a member of an earlier version asking for a store snapshot (no header) gets the record stream, which rebuilds the same store', async () => {
  const name = cluster.names[0]!;
  const client = cluster.client();
  for (let i = 0; i < 300; i++) await client.put(`k/${i % 120}`, `v${i}`);
  await client.delete('k/7');
  const lease = await client.leaseGrant(600);
  await client.put('leased', 'x', { lease: lease.id });
  const want = await client.hashKV(cluster.url(name));
  const peerUrl = cluster.config.members[0]!.peerUrl;

  // What the earlier version's member did: GET, split the length-prefixed chunks, MvccStore.restore.
  const res = await fetch(peerUrl + SNAPSHOT_PATH);
  expect(res.status).toBe(200);
  expect(res.headers.get(STREAM_HEADER)).toBeNull();
  const split = new LengthPrefixedFrames(1 << 28, () => new Error('frame too large'));
  const chunks: Buffer[] = [];
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) chunks.push(...split.push(Buffer.from(part)));
  expect(split.pending).toBe(0);
  const restored = await MvccStore.restore(path.join(dir, 'old-member'), chunks);
  try {
    const got = await restored.hashKV(0);
    expect([got.hash, got.compactRevision, restored.revision]).toEqual([want.hash, want.compactRevision, want.header.revision]);
    expect((await restored.leases()).map((l) => l.id)).toContain(lease.id);
  } finally {
    await restored.close();
  }

  // This version's members ask with the header and get the LevelDB files.
  const files = await fetch(peerUrl + SNAPSHOT_PATH, { headers: { [STREAM_HEADER]: 'files' } });
  expect(files.headers.get(STREAM_HEADER)).toBe('files');
  await files.body?.cancel();
});

test('a member of this version reads the record stream a member of an earlier version sends (no header in its answer)', async () => {
  const src = await MvccStore.open(path.join(dir, 'earlier-version-src'));
  const entries: ApplyEntry[] = [];
  for (let i = 0; i < 200; i++) entries.push({ index: i + 1, request: { put: { key: Buffer.from(`e/${i % 70}`), value: Buffer.from(`v${i}`) } } });
  await src.applyBatch(entries);
  // The earlier version's peer route: the record stream whatever the request says, no header.
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== SNAPSHOT_PATH) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    Readable.from(recordStreamFrames(src)).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const staging = path.join(dir, 'staging');
    const applied = await fetchStoreInto(staging, url, undefined);
    expect(applied).toBe(200);
    const copy = await MvccStore.open(staging);
    try {
      const [a, b] = [await copy.hashKV(0), await src.hashKV(0)];
      expect(a.hash).toBe(b.hash);
      expect([copy.revision, copy.appliedIndex]).toEqual([src.revision, src.appliedIndex]);
    } finally {
      await copy.close();
    }
  } finally {
    server.close();
    await src.close();
  }
});
