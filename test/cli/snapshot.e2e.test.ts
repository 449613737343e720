/**
 * `qkv snapshot save` against what no real member sends: a stream whose trailing sha256 does not
 * match the database before it (a damaged transfer), from a small HTTP server speaking the
 * gateway's stream format; the file is not kept. And the argument errors, as etcdctl's.
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { etcdctl, qkvctl } from '../grpc/helpers.js';
import { freePorts } from '../server/ports.js';

describe('qkv snapshot save', () => {
  let dir: string;
  let server: http.Server;
  let endpoint: string;
  const database = randomBytes(3 * 4096);
  /** The digest the server sends: right, or damaged. */
  let digest = createHash('sha256').update(database).digest();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-snapshot-save-'));
    const [port] = await freePorts(1);
    server = http.createServer((req, res) => {
      if (req.method !== 'POST' || req.url !== '/v3/maintenance/snapshot') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      const blobs = [database.subarray(0, 8192), database.subarray(8192), digest];
      let remaining = database.length;
      for (const blob of blobs) {
        remaining = blob === digest ? 0 : remaining - blob.length;
        res.write(`${JSON.stringify({ result: { header: {}, remaining_bytes: String(remaining), blob: blob.toString('base64') } })}\n`);
      }
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('keeps a stream whose sha256 matches, byte for byte', async () => {
    digest = createHash('sha256').update(database).digest();
    const file = path.join(dir, 'good.db');
    const r = await qkvctl(endpoint, ['snapshot', 'save', file]);
    expect(r).toMatchObject({ code: 0, stdout: `Snapshot saved at ${file}\n` });
    expect((await readFile(file)).equals(Buffer.concat([database, digest]))).toBe(true);
  });

  test('refuses a stream whose sha256 does not match the database: exit code 5, neither the file nor its .part kept', async () => {
    digest = Buffer.alloc(32, 7);
    const file = path.join(dir, 'bad.db');
    const r = await qkvctl(endpoint, ['snapshot', 'save', file]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^Error: snapshot from 127\.0\.0\.1:\d+ is damaged: sha256 of its 12288 bytes is [0-9a-f]{64}, it says (07){32}\n$/);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}.part`)).toBe(false);
  });

  test('argument errors say what etcdctl says, with its exit codes', async () => {
    for (const [endpoints, args] of [
      ['127.0.0.1:1,127.0.0.1:2', ['snapshot', 'save', path.join(dir, 'x.db')]],
      ...[
        ['snapshot', 'save'],
        ['snapshot', 'status'],
        ['snapshot', 'restore'],
        ['snapshot', 'status', path.join(dir, 'missing.db')],
        ['snapshot', 'restore', path.join(dir, 'missing.db'), '--data-dir', path.join(dir, 'never')],
      ].map((a) => ['127.0.0.1:1', a] as const),
    ] as const) {
      const theirs = await etcdctl(endpoints, [...args]);
      const ours = await qkvctl(endpoints, [...args]);
      expect({ code: ours.code, error: ours.stderr.trim().split('\n').at(-1) }).toEqual({ code: theirs.code, error: theirs.stderr.trim().split('\n').at(-1) });
    }
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });
});
