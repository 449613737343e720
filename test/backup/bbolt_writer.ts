/**
 * A tiny bbolt writer for the reader's tests: lays out a tree of buckets as bbolt would (meta pages
 * 0 and 1 as Tx.WriteTo writes them, leaf pages with overflow for large contents, branch levels
 * above them, inline buckets), so that tests can build small databases and then damage them byte
 * by byte. Written from the format, independently of src/backup/bbolt.ts (its own checksum too).
 */
import { Buffer } from 'node:buffer';

/** A bucket's entries: a value, or a nested bucket. */
export type Tree = ReadonlyArray<readonly [key: string | Buffer, value: string | Buffer | BucketSpec]>;
interface BucketSpec {
  readonly bucket: Tree;
  /** Written inside its parent's leaf (root 0, the page after the header). */
  readonly inline?: boolean;
}

export interface WriterOptions {
  pageSize?: number;
  /** Elements per leaf page, before a bucket gets another leaf and a branch above. */
  leafCapacity?: number;
  /** Children per branch page. */
  branchCapacity?: number;
  txid?: bigint;
}

export interface Written {
  data: Buffer;
  pageSize: number;
  /** Every non-inline bucket's pages, root first, by path ('' is the root bucket, then "a/b"). */
  pages: Map<string, { id: number; flags: number }[]>;
}

export const PAGE = { branch: 0x01, leaf: 0x02, meta: 0x04, freelist: 0x10 } as const;
const NO_FREELIST = 0xffff_ffff_ffff_ffffn;

/** FNV-1a 64, Go's hash/fnv, computed on its own here. */
function fnv64a(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

/** The fields of a meta page. */
export interface MetaFields {
  magic: number;
  version: number;
  pageSize: number;
  flags: number;
  root: bigint;
  sequence: bigint;
  freelist: bigint;
  pageCount: bigint;
  txid: bigint;
}

/** Reads meta page `index` of `data` (its fields, whatever they hold). */
export function readMetaFields(data: Buffer, index: number, pageSize: number): MetaFields {
  const m = index * pageSize + 16;
  return {
    magic: data.readUInt32LE(m),
    version: data.readUInt32LE(m + 4),
    pageSize: data.readUInt32LE(m + 8),
    flags: data.readUInt32LE(m + 12),
    root: data.readBigUInt64LE(m + 16),
    sequence: data.readBigUInt64LE(m + 24),
    freelist: data.readBigUInt64LE(m + 32),
    pageCount: data.readBigUInt64LE(m + 40),
    txid: data.readBigUInt64LE(m + 48),
  };
}

/** Writes meta page `index` (header and fields) with a correct checksum, unless `checksum` is given. */
export function writeMeta(data: Buffer, index: number, pageSize: number, f: MetaFields, checksum?: bigint): void {
  const p = index * pageSize;
  data.writeBigUInt64LE(BigInt(index), p);
  data.writeUInt16LE(PAGE.meta, p + 8);
  const m = p + 16;
  data.writeUInt32LE(f.magic, m);
  data.writeUInt32LE(f.version, m + 4);
  data.writeUInt32LE(f.pageSize, m + 8);
  data.writeUInt32LE(f.flags, m + 12);
  data.writeBigUInt64LE(f.root, m + 16);
  data.writeBigUInt64LE(f.sequence, m + 24);
  data.writeBigUInt64LE(f.freelist, m + 32);
  data.writeBigUInt64LE(f.pageCount, m + 40);
  data.writeBigUInt64LE(f.txid, m + 48);
  data.writeBigUInt64LE(checksum ?? fnv64a(data.subarray(m, m + 56)), m + 56);
}

/** Changes fields of meta page `index` and re-checksums it (the damage gets past the checksum). */
export function patchMeta(w: Written, index: number, patch: Partial<MetaFields>): void {
  writeMeta(w.data, index, w.pageSize, { ...readMetaFields(w.data, index, w.pageSize), ...patch });
}

interface Element {
  flags: number;
  key: Buffer;
  value: Buffer;
}

/** A page's bytes: header, elements (16 bytes each), then the keys and values. */
function pageBytes(id: number, flags: number, elements: Element[] | { key: Buffer; child: number }[], pageSize: number): Buffer {
  const headerAndElements = 16 + elements.length * 16;
  const dataSize = elements.reduce((n, e) => n + e.key.length + ('value' in e ? e.value.length : 0), 0);
  const size = pageSize === 0 ? headerAndElements + dataSize : Math.ceil((headerAndElements + dataSize) / pageSize) * pageSize;
  const b = Buffer.alloc(size);
  b.writeBigUInt64LE(BigInt(id), 0);
  b.writeUInt16LE(flags, 8);
  b.writeUInt16LE(elements.length, 10);
  b.writeUInt32LE(pageSize === 0 ? 0 : size / pageSize - 1, 12);
  let data = headerAndElements;
  elements.forEach((e, i) => {
    const at = 16 + i * 16;
    if ('value' in e) {
      b.writeUInt32LE(e.flags, at);
      b.writeUInt32LE(data - at, at + 4);
      b.writeUInt32LE(e.key.length, at + 8);
      b.writeUInt32LE(e.value.length, at + 12);
    } else {
      b.writeUInt32LE(data - at, at);
      b.writeUInt32LE(e.key.length, at + 4);
      b.writeBigUInt64LE(BigInt(e.child), at + 8);
    }
    e.key.copy(b, data);
    data += e.key.length;
    if ('value' in e) {
      e.value.copy(b, data);
      data += e.value.length;
    }
  });
  return b;
}

const chunks = <T>(xs: T[], n: number): T[][] =>
  xs.length === 0 ? [[]] : Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

/** Lays out `root` as a bbolt database (a snapshot's layout: exactly the pages in use, no freelist). */
export function writeBbolt(root: Tree, opts: WriterOptions = {}): Written {
  const pageSize = opts.pageSize ?? 4096;
  const leafCapacity = opts.leafCapacity ?? 64;
  const branchCapacity = opts.branchCapacity ?? 64;
  const txid = opts.txid ?? 7n;
  const out: Buffer[] = [];
  const pagesByPath = new Map<string, { id: number; flags: number }[]>();
  let next = 2;
  const allocate = (b: Buffer): number => {
    const id = next;
    b.writeBigUInt64LE(BigInt(id), 0);
    out.push(b);
    next += b.length / pageSize;
    return id;
  };

  const elementsOf = (tree: Tree, path: string): Element[] =>
    [...tree]
      .map(([k, v]) => [Buffer.from(k), v] as const)
      .sort(([a], [b]) => Buffer.compare(a, b))
      .map(([key, v]) => {
        if (typeof v === 'string' || Buffer.isBuffer(v)) return { flags: 0, key, value: Buffer.from(v) };
        const childPath = path === '' ? key.toString() : `${path}/${key.toString()}`;
        const header = Buffer.alloc(16);
        if (v.inline) return { flags: 1, key, value: Buffer.concat([header, pageBytes(0, PAGE.leaf, elementsOf(v.bucket, childPath), 0)]) };
        header.writeBigUInt64LE(BigInt(writeBucket(v.bucket, childPath)), 0);
        return { flags: 1, key, value: header };
      });

  /** Writes a bucket's pages; returns its root page id. */
  function writeBucket(tree: Tree, path: string): number {
    const elements = elementsOf(tree, path);
    const mine: { id: number; flags: number }[] = [];
    let level = chunks(elements, leafCapacity).map((leaf) => {
      const id = allocate(pageBytes(0, PAGE.leaf, leaf, pageSize));
      mine.push({ id, flags: PAGE.leaf });
      return { key: leaf[0]?.key ?? Buffer.alloc(0), child: id };
    });
    while (level.length > 1) {
      level = chunks(level, branchCapacity).map((children) => {
        const id = allocate(pageBytes(0, PAGE.branch, children, pageSize));
        mine.push({ id, flags: PAGE.branch });
        return { key: children[0]!.key, child: id };
      });
    }
    mine.reverse();
    pagesByPath.set(path, mine);
    return level[0]!.child;
  }

  const rootId = writeBucket(root, '');
  const data = Buffer.concat([Buffer.alloc(2 * pageSize), ...out]);
  const fields: MetaFields = {
    magic: 0xed0cdaed,
    version: 2,
    pageSize,
    flags: 0,
    root: BigInt(rootId),
    sequence: 0n,
    freelist: NO_FREELIST,
    pageCount: BigInt(next),
    txid,
  };
  writeMeta(data, 0, pageSize, fields);
  writeMeta(data, 1, pageSize, { ...fields, txid: txid - 1n });
  return { data, pageSize, pages: pagesByPath };
}
