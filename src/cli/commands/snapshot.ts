/**
 * `snapshot save|status|restore` (etcdctl's snapshot_command.go). A snapshot file is etcd's: the
 * backend database (bbolt, etcd 3.4's buckets) and its sha256, as a qkv or an etcd member streams
 * it (Maintenance.Snapshot); qkv's and etcd's files are alike to every command here and to
 * etcdctl's. Exit codes as etcdctl's: 128 for bad arguments, 5 for a save that failed, 1 else.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { openEtcdSnapshotFile, SHA256_SIZE } from '../../backup/etcd_snapshot.js';
import { snapshotStatus } from '../../backup/snapshot_status.js';
import { hostOf } from '../printer/printer.js';
import type { CliContext } from './global.js';
import { BadArgsError, InterruptedError } from './util.js';

/**
 * Streams Maintenance.Snapshot from `endpoint` into `file` (through `file.part`, renamed once
 * complete and synced, as etcdctl does), and checks the trailing sha256 against the database
 * received: a damaged transfer is never saved.
 */
async function save(ctx: CliContext, endpoint: string, file: string): Promise<void> {
  const part = `${file}.part`;
  // Owner-only, as etcdctl's (fileutil.PrivateFileMode): a snapshot holds every value.
  const fh = await open(part, 'w', 0o600);
  try {
    const hash = createHash('sha256');
    // The digest is the last message: every blob before it is the database.
    let held: Buffer | undefined;
    let databaseBytes = 0;
    for await (const r of ctx.client().snapshot(endpoint)) {
      if (held !== undefined) {
        hash.update(held);
        databaseBytes += held.length;
        await fh.write(held);
      }
      held = Buffer.from(r.blob);
    }
    if (held === undefined || held.length !== SHA256_SIZE) throw new Error(`snapshot stream from ${hostOf(endpoint)} ended without its sha256`);
    const computed = hash.digest();
    if (!computed.equals(held)) {
      throw new Error(
        `snapshot from ${hostOf(endpoint)} is damaged: sha256 of its ${databaseBytes} bytes is ${computed.toString('hex')}, it says ${held.toString('hex')}`,
      );
    }
    await fh.write(held);
    await fh.sync();
    await fh.close();
    await rename(part, file);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(part, { force: true });
    throw new InterruptedError((err as Error).message);
  }
}

interface RestoreOptions {
  name?: string;
  dataDir?: string;
  initialCluster?: string;
  initialClusterToken?: string;
  initialAdvertisePeerUrls?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const snapshot = program.command('snapshot').description('manages etcd node snapshots');
  snapshot
    .command('save [filename]')
    .description('stores an etcd node backend snapshot to a given file')
    .action(async (file: string | undefined) => {
      if (!file) throw new BadArgsError('snapshot save expects one argument');
      const endpoints = ctx.options().endpoints;
      if (endpoints.length !== 1) {
        throw new InterruptedError(`snapshot must be requested to one selected node, not multiple [${endpoints.map(hostOf).join(' ')}]`);
      }
      await save(ctx, endpoints[0]!, file);
      ctx.printer().snapshotSaved(file);
    });
  snapshot
    .command('status [filename]')
    .description('gets backend snapshot status of a given file')
    .action(async (file: string | undefined) => {
      if (!file) throw new BadArgsError('snapshot status requires exactly one argument');
      const snap = await openEtcdSnapshotFile(file, 'stat');
      try {
        ctx.printer().snapshotStatus(snapshotStatus(snap));
      } finally {
        await snap.close();
      }
    });
  snapshot
    .command('restore [filename]')
    .description('restores an etcd member snapshot to an etcd directory')
    .option('--name <name>', 'human-readable name for this member', 'default')
    .option('--data-dir <dir>', 'path to the data directory (default <name>.etcd)')
    .option('--initial-cluster <list>', 'initial cluster configuration for restore bootstrap (default <name>=<peer URL>)')
    .option('--initial-cluster-token <token>', 'initial cluster token for the etcd cluster during restore bootstrap', 'etcd-cluster')
    .option('--initial-advertise-peer-urls <url>', "this member's peer URL to advertise to the rest of the cluster", 'http://localhost:2380')
    .action(async (file: string | undefined, o: RestoreOptions) => {
      if (!file) throw new BadArgsError('snapshot restore requires exactly one argument');
      // The member's data dir is the server's business: loaded only for this command.
      const { restoreDataDir } = await import('../../server/backup.js');
      ctx.printer().snapshotRestored(
        await restoreDataDir(file, {
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
          ...(o.initialCluster !== undefined ? { initialCluster: o.initialCluster } : {}),
          ...(o.initialClusterToken !== undefined ? { initialClusterToken: o.initialClusterToken } : {}),
          ...(o.initialAdvertisePeerUrls !== undefined ? { initialAdvertisePeerUrls: o.initialAdvertisePeerUrls } : {}),
        }),
      );
    });
}
