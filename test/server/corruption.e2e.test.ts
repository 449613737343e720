/**
 * Corruption at rest: a flipped bit in a WAL segment of a stopped member. At start the member
 * refuses with exit code 1 and a message naming the file and offset, before it serves anything;
 * the other members go on; with the byte restored it starts and catches up. (Planted bug tried:
 * treating every bad record of the last segment as a torn write, as the WAL did before, starts
 * the member on a log without acknowledged entries; test/wal/wal.test.ts shows it at the store.)
 */
import { readdir, readFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await LocalCluster.create({ nodes: 3 });
  cluster.startAll();
  await cluster.waitForLeader();
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** Offsets of the records in a WAL segment: [u32 length][u32 crc][payload], zeros after the last. */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 8 <= buf.length && buf.readUInt32LE(off) !== 0; off += 8 + buf.readUInt32LE(off)) out.push(off);
  return out;
}

async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] = b[0]! ^ 0x10;
  await fh.write(b, 0, 1, offset);
  await fh.close();
}

test('a member with a flipped bit in a WAL record refuses to start, naming the file; restored, it starts and catches up', async () => {
  const client = cluster.client();
  for (let i = 0; i < 20; i++) await client.put(`k${i}`, `v${i}`);
  const leader = await cluster.waitForLeader();
  const victim = cluster.names.find((n) => n !== leader)!;
  await LocalCluster.until(async () => (await cluster.status(victim))?.revision === 21, 'the follower to apply every put');
  await cluster.kill(victim, 'SIGTERM');

  const walDir = path.join(cluster.config.members.find((m) => m.name === victim)!.dataDir, 'raftlog', 'wal');
  const segment = path.join(walDir, (await readdir(walDir)).filter((n) => n.endsWith('.wal')).sort()[0]!);
  const offsets = recordOffsets(await readFile(segment));
  expect(offsets.length).toBeGreaterThan(3);
  // Inside the payload of a record in the middle of the log, followed by others.
  const target = offsets[Math.floor(offsets.length / 2)]! + 9;
  await flipByte(segment, target);

  cluster.start(victim);
  const exitCode = await new Promise<number | null>((resolve) => cluster.procs.get(victim)!.child.once('exit', resolve));
  expect(exitCode).toBe(1);
  const log = await readFile(cluster.logPath(victim), 'utf8');
  expect(log).toMatch(new RegExp(`qkv: raft log store: bad record in ${segment.replaceAll('/', '\\/')} at byte \\d+; refusing to start`));

  // The others go on meanwhile.
  await client.put('while-down', 'yes');

  await flipByte(segment, target);
  cluster.start(victim);
  await LocalCluster.until(async () => {
    const s = await cluster.status(victim);
    return s !== undefined && s.revision === 22;
  }, 'the repaired member to start and catch up');
}, 90_000);
