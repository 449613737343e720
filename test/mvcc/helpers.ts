/** Test helpers: temp stores, byte helpers, an index-assigning applier, normalisation for deep equality. */
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MvccStore, type MvccStoreOptions } from '../../src/mvcc/index.js';
import type { KeyValue } from '../../src/api/kv.js';
import type { ApplyEntry, ApplyResult, MvccRequest, MvccResponse } from '../../src/mvcc/types.js';

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');
export const bytes = (...xs: number[]): Buffer => Buffer.from(xs);
/** etcd clients' prefix range end: the prefix with its last byte < 0xff incremented. */
export function prefixEnd(p: Buffer): Buffer {
  const end = Buffer.from(p);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return bytes(0);
}
export const ALL = bytes(0);

/**
 * Applies batches as a member does: the next batch is handed over as soon as the last one is
 * visible to reads, while LevelDB may still be writing it. `atVisible(i)` runs when batch i
 * becomes visible (a read started there takes its view then). Resolves with each batch's
 * results once all are written.
 */
export async function applyAtVisible(store: MvccStore, batches: readonly ApplyEntry[][], atVisible?: (i: number) => void): Promise<ApplyResult[][]> {
  const out: ApplyResult[][] = [];
  const writes: Array<Promise<unknown>> = [];
  for (let i = 0; i < batches.length; i++) {
    const visible = new Promise<ApplyResult[]>((resolve, reject) => {
      const onVisible = (results: ApplyResult[]): void => {
        atVisible?.(i);
        resolve(results);
      };
      writes.push(store.applyBatch(batches[i]!, onVisible).catch(reject));
    });
    out.push(await visible);
  }
  await Promise.all(writes);
  return out;
}

const made: string[] = [];

/** A fresh directory under the OS temp dir; removeTempDirs() removes it even if a test failed. */
export async function tempDir(tag = 'mvcc'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `qkv-${tag}-`));
  made.push(dir);
  return dir;
}

/** Removes every directory tempDir made (use in afterEach / afterAll). */
export async function removeTempDirs(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** A store in a fresh temp dir; `cleanup` closes it and removes the dir. */
export async function tempStore(opts: MvccStoreOptions = {}): Promise<{ store: MvccStore; dir: string; cleanup: () => Promise<void> }> {
  const dir = await tempDir();
  const store = await MvccStore.open(dir, opts);
  return {
    store,
    dir,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Applies requests with consecutive Raft indexes. */
export class Applier {
  index: number;
  constructor(
    public store: MvccStore,
    start = store.appliedIndex,
  ) {
    this.index = start;
  }
  async result(req: MvccRequest): Promise<ApplyResult> {
    return this.store.apply(++this.index, req);
  }
  /** Applies and returns the response, failing the test on an error result. */
  async ok(req: MvccRequest): Promise<MvccResponse> {
    const r = await this.result(req);
    if (r.status !== 'ok') throw new Error(`expected ok, got ${r.status === 'error' ? r.error.message : r.status}`);
    return r.response;
  }
  /** Applies and returns the error code, failing the test if it succeeded. */
  async err(req: MvccRequest): Promise<string> {
    const r = await this.result(req);
    if (r.status !== 'error') throw new Error(`expected an error, got ${r.status}`);
    return r.error.code;
  }
  async put(key: string | Buffer, value: string | Buffer, lease = 0): Promise<number> {
    const r = await this.ok({ put: { key: typeof key === 'string' ? b(key) : key, value: typeof value === 'string' ? b(value) : value, lease } });
    return 'put' in r ? r.put.header.revision : -1;
  }
  /** Grants leases (no revision changes). */
  async grant(...ids: number[]): Promise<void> {
    for (const id of ids) await this.ok({ leaseGrant: { id, ttl: 60 } });
  }
  async del(key: string | Buffer, rangeEnd?: Buffer): Promise<number> {
    const k = typeof key === 'string' ? b(key) : key;
    const r = await this.ok({ deleteRange: rangeEnd === undefined ? { key: k } : { key: k, rangeEnd } });
    return 'deleteRange' in r ? r.deleteRange.deleted : -1;
  }
}

/** A short readable form of key-values: "key=value@mod/create/vN[/lL]". */
export function show(kvs: readonly KeyValue[]): string[] {
  return kvs.map(
    (kv) =>
      `${kv.key.toString('latin1')}=${kv.value.toString('latin1')}@${kv.modRevision}/${kv.createRevision}/v${kv.version}${kv.lease ? `/l${kv.lease}` : ''}`,
  );
}

/** JSON-like deep copy with Buffers as hex strings and undefined fields dropped. */
export function norm(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof Error) return { error: (v as Error & { code?: string }).code ?? v.message };
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = norm(x);
    return out;
  }
  return v;
}

/** Counts the raw LevelDB entries of each table of a closed store ('c', 'h', 'e', 'l', 'm'). */
export async function rawTables(dir: string): Promise<Record<string, number>> {
  const { Level } = await import('level');
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const out: Record<string, number> = {};
  try {
    for await (const k of db.keys()) {
      const t = String.fromCharCode(k[0]!);
      out[t] = (out[t] ?? 0) + 1;
    }
  } finally {
    await db.close();
  }
  return out;
}

/** Flips one bit (0x10) of the byte at `offset` in `file`: corruption at rest; flipping again restores it. */
export async function flipBit(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, offset);
    one[0] = one[0]! ^ 0x10;
    await fh.write(one, 0, 1, offset);
  } finally {
    await fh.close();
  }
}
