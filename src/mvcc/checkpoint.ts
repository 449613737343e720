/**
 * A consistent copy of a live store's LevelDB files, without stopping its writes: what a member
 * streams to a member that must catch up from a snapshot (as files, not records: no key or value
 * passes through JavaScript on either side).
 *
 * LevelDB's table files (*.ldb, *.sst) never change once written; its write-ahead logs (*.log)
 * and its MANIFEST are only appended to. A store's batches each land in one log record (the data
 * with its meta record, see store.ts), and LevelDB's recovery drops a torn last record of a log
 * or of the MANIFEST as a crash would have left it. So the copy is made in this order:
 *
 *   1. the table files present now, hard-linked (cheap, and a link keeps a file a compaction
 *      deletes afterwards);
 *   2. the logs, copied oldest first: every log but the newest was finished before the newest
 *      began, so the copies hold a prefix of the store's writes, ending at some batch (a log
 *      deleted meanwhile was flushed into a table the MANIFEST of step 3 names);
 *   3. the MANIFEST that CURRENT names, copied, and CURRENT written: it names the tables and
 *      the oldest log still needed as of a moment after step 2;
 *   4. the table files made since step 1, hard-linked: those the MANIFEST of step 3 may name.
 *
 * Opening a copy of it (its files' contents, in other files: never the hard links, whose
 * tables are the store's own, and which a LevelDB opened there could write over when it reuses a
 * file number) gives the store as of the end of the copied logs, or as of a later flush (then it
 * ignores those logs): a state a crash could have left, at a batch boundary. A table the MANIFEST
 * names but that a compaction deleted between steps 3 and 4 would make that open fail ("missing
 * files"): the copied MANIFEST is read (verify.ts's manifestLiveFiles, its records' checksums
 * checked) and the copy taken again if one is missing; the tables it does not name (obsolete, or being written) are left out.
 */
import { copyFile, link, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CorruptError } from './errors.js';
import { manifestLiveFiles } from './verify.js';

const TABLE = /^\d+\.(ldb|sst)$/;
const LOG = /^(\d+)\.log$/;
const MANIFEST = /^MANIFEST-\d+$/;
/** The names a store's copy is made of: anything else in a received copy is refused. */
export const STORE_FILE_NAME = /^(\d+\.(ldb|sst|log)|MANIFEST-\d+|CURRENT)$/;

/** Attempts at a copy whose tables compactions keep deleting under it. */
const ATTEMPTS = 10;

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Hard-links into `target` the table files of `dir` not in `linked` yet (and adds them to it). */
async function linkTables(dir: string, target: string, linked: Set<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!TABLE.test(name) || linked.has(name)) continue;
    try {
      await link(path.join(dir, name), path.join(target, name));
      linked.add(name);
    } catch (err) {
      // Deleted since the listing: an obsolete table no MANIFEST from now on names.
      if (!isMissing(err)) throw err;
    }
  }
}

/** The tables `target`'s MANIFEST names that are not there whole; unnamed tables are removed. */
async function missingTables(target: string, manifest: string): Promise<number[]> {
  const file = path.join(target, manifest);
  // A copy of a MANIFEST being appended to may end in a torn record, as a crash leaves one.
  const live = manifestLiveFiles(file, await readFile(file), true).tables;
  const present = new Map<number, string>();
  for (const name of await readdir(target)) {
    if (!TABLE.test(name)) continue;
    const number = Number.parseInt(name, 10);
    if (live.has(number)) present.set(number, name);
    else await rm(path.join(target, name));
  }
  const missing: number[] = [];
  for (const [number, size] of live) {
    const name = present.get(number);
    if (name === undefined || (await stat(path.join(target, name))).size !== size) missing.push(number);
  }
  return missing;
}

/**
 * Copies the LevelDB database in `dir` (open, being written) into `target` (removed first; on
 * the same file system, for the hard links): see the module comment. The copy is to be read (and
 * sent), never opened where it is.
 */
export async function checkpointLevelDb(dir: string, target: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const missing = await copyOnce(dir, target);
    if (missing.length === 0) return;
    if (attempt === ATTEMPTS)
      throw new CorruptError(`no consistent copy of the store in ${dir}: tables ${missing.join(', ')} missing after ${ATTEMPTS} attempts`);
  }
}

/** One attempt: the tables missing from the copy (none: it is whole). */
async function copyOnce(dir: string, target: string): Promise<number[]> {
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  const linked = new Set<string>();
  await linkTables(dir, target, linked);
  const logs = (await readdir(dir))
    .map((name) => ({ name, number: Number(LOG.exec(name)?.[1] ?? NaN) }))
    .filter((l) => !Number.isNaN(l.number))
    .sort((a, b) => a.number - b.number);
  for (const l of logs) {
    try {
      await copyFile(path.join(dir, l.name), path.join(target, l.name));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }
  // CURRENT names the MANIFEST; LevelDB only starts a new one when it opens.
  const current = await readFile(path.join(dir, 'CURRENT'), 'utf8');
  const manifest = current.trim();
  if (!MANIFEST.test(manifest)) throw new CorruptError(`LevelDB's CURRENT in ${dir} names no MANIFEST`);
  await copyFile(path.join(dir, manifest), path.join(target, manifest));
  await writeFile(path.join(target, 'CURRENT'), current);
  await linkTables(dir, target, linked);
  return missingTables(target, manifest);
}
