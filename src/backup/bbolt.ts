/**
 * A read-only reader of a bbolt database (go.etcd.io/bbolt, formerly boltdb), the file format of
 * etcd's backend and of `etcdctl snapshot save`, read from a Buffer or from a file through
 * positional reads (a page at a time, through a small cache of aligned windows: memory does not
 * grow with the file).
 *
 * The format, little-endian throughout:
 * - The file is a sequence of pages of one size (the creating OS's page size, usually 4096).
 *   Every page starts with a 16-byte header: id u64 (its own page number), flags u16 (branch 0x01,
 *   leaf 0x02, meta 0x04, freelist 0x10), count u16 (elements), overflow u32 (how many further
 *   pages the page spans: a page holding a large value is 1 + overflow pages long).
 * - Pages 0 and 1 are meta pages, written alternately (txid % 2); after the header, the meta:
 *   magic u32 0xED0CDAED, version u32 2, page size u32, flags u32, the root bucket (root page id
 *   u64, sequence u64), freelist page id u64 (all ones: no freelist is stored), the high water
 *   mark u64 (the number of pages in use), txid u64, and a FNV-1a 64 checksum of those 56 bytes.
 *   The valid meta with the highest txid is the database's current state.
 * - A bucket is a B+tree: branch pages hold 16-byte elements (pos u32, ksize u32, child page id
 *   u64), leaf pages 16-byte elements (flags u32, pos u32, ksize u32, vsize u32); `pos` counts from
 *   the element itself to its key, and a leaf's value follows its key. Keys are in byte order.
 * - A leaf element with flag 0x01 is a nested bucket: its value is the bucket header (root page id
 *   u64, sequence u64), and when the root is 0 the bucket is inline: its one leaf page (header and
 *   elements, positions relative to that element) follows the header inside the value.
 *
 * Everything read is checked before it is used (page ids below the high water mark, a page's
 * elements and their keys and values inside the page, known flags, keys in strictly increasing
 * order, no page reached twice in one walk, a bounded depth): a damaged file throws
 * BboltCorruptError naming what is wrong, never reads out of range and never loops.
 */
import { Buffer } from 'node:buffer';
import { readSync } from 'node:fs';
import { BboltCorruptError } from './errors.js';

export const PAGE_HEADER_SIZE = 16;
/** Branch and leaf elements are both 16 bytes. */
export const ELEMENT_SIZE = 16;
const META_SIZE = 64;
/** The checksum covers the meta up to the checksum itself. */
const META_CHECKSUMMED_SIZE = 56;
export const BUCKET_HEADER_SIZE = 16;

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;

export const BRANCH_PAGE = 0x01;
export const LEAF_PAGE = 0x02;
export const META_PAGE = 0x04;
const FREELIST_PAGE = 0x10;
export const BUCKET_LEAF_FLAG = 0x01;

/** The freelist page id that says no freelist is stored (etcd 3.4+ sets bbolt's NoFreelistSync). */
export const NO_FREELIST = 0xffff_ffff_ffff_ffffn;

/**
 * The page sizes accepted: powers of two in this range. bbolt looks for the second meta page at
 * 1 KiB up to 16 MiB; a smaller page could not hold a meta page and a few elements.
 */
const MIN_PAGE_SIZE = 512;
const MAX_PAGE_SIZE = 1 << 24;
/** Where bbolt looks for meta page 1 when meta page 0 cannot tell the page size: 1 KiB << 0..14. */
const SECOND_META_CANDIDATES = 15;

/**
 * The deepest bucket tree read: with at least two keys per page, 64 levels would hold more keys
 * than any file can; a deeper tree is a loop or garbage.
 */
const MAX_TREE_DEPTH = 64;

const FNV64_OFFSET_BASIS = 0xcbf2_9ce4_8422_2325n;
const FNV64_PRIME = 0x100_0000_01b3n;
const U64_MASK = 0xffff_ffff_ffff_ffffn;

/** FNV-1a 64 of `bytes` (Go's hash/fnv New64a), bbolt's meta checksum. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV64_OFFSET_BASIS;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV64_PRIME) & U64_MASK;
  return h;
}

/**
 * Where a database's bytes come from. `read` returns `length` bytes at `offset` (inside `size`);
 * the bytes are never overwritten afterwards, so views of them (pairs) stay valid.
 */
export interface PageSource {
  readonly size: number;
  read(offset: number, length: number): Buffer;
}

/** A database held in a Buffer: reads are views of it. */
export function bufferSource(data: Buffer): PageSource {
  return { size: data.length, read: (offset, length) => data.subarray(offset, offset + length) };
}

/** A file is read in windows of this size (aligned to it); a page larger than a window, or across two, is read on its own. */
const WINDOW_BYTES = 1 << 20;
/** The windows kept: a tree walk needs one leaf window and the branch pages above it, a few MiB in all. */
const CACHED_WINDOWS = 8;

/**
 * The first `size` bytes of the open file `fd`, read with positional reads through a cache of
 * the last CACHED_WINDOWS windows used (each a fresh Buffer, never reused: views handed out stay
 * valid for as long as their holder keeps them). Bounded memory whatever the file's size.
 */
export class FileSource implements PageSource {
  private readonly windows = new Map<number, Buffer>();

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  read(offset: number, length: number): Buffer {
    const index = Math.floor(offset / WINDOW_BYTES);
    if (offset + length > (index + 1) * WINDOW_BYTES) return this.readAt(offset, length);
    let window = this.windows.get(index);
    if (window === undefined) {
      const start = index * WINDOW_BYTES;
      window = this.readAt(start, Math.min(WINDOW_BYTES, this.size - start));
      if (this.windows.size >= CACHED_WINDOWS) this.windows.delete(this.windows.keys().next().value!);
    } else {
      this.windows.delete(index); // re-inserted below: the Map's order is the order of last use
    }
    this.windows.set(index, window);
    const at = offset - index * WINDOW_BYTES;
    return window.subarray(at, at + length);
  }

  private readAt(offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(length, this.size - offset)));
    for (let done = 0; done < out.length; ) {
      const n = readSync(this.fd, out, done, out.length - done, offset + done);
      if (n === 0) throw new BboltCorruptError(`the file ended at ${offset + done} bytes, before the ${this.size} it had when opened`);
      done += n;
    }
    return out;
  }
}

/** The current meta page of a database, as read. */
export interface BboltMeta {
  /** Which meta page it was read from (0 or 1). */
  readonly metaPage: number;
  readonly pageSize: number;
  readonly flags: number;
  readonly rootPageId: number;
  readonly rootSequence: bigint;
  /** The freelist's page, or undefined when none is stored (the freelist is rebuilt by scanning). */
  readonly freelistPageId: number | undefined;
  /** The high water mark: pages 0 .. pageCount-1 are in use. */
  readonly pageCount: number;
  readonly txid: bigint;
}

/** A key and its value in a bucket; both are views into the bytes read, not copies. */
export interface BboltPair {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** A page's header and the bytes it spans (for an inline page, the bytes of its bucket value after the bucket header). */
interface PageView {
  readonly id: number;
  readonly flags: number;
  readonly count: number;
  /** The page's bytes, from its header on: everything it may use. */
  readonly buf: Buffer;
}

/** A leaf element, resolved and checked. */
interface LeafElement {
  readonly isBucket: boolean;
  readonly key: Buffer;
  readonly value: Buffer;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** A meta page whose magic, version and checksum hold; its ids not yet checked against its page count. */
interface ValidMeta {
  readonly metaPage: number;
  readonly pageSize: number;
  readonly flags: number;
  readonly root: bigint;
  readonly rootSequence: bigint;
  readonly freelist: bigint;
  readonly pageCount: bigint;
  readonly txid: bigint;
}

/** Checks a meta page where `index` says (as bbolt's Meta.Validate, and the page size); returns it, or why it is not a valid meta. */
function readMetaAt(src: PageSource, offset: number, index: number): ValidMeta | string {
  if (offset + PAGE_HEADER_SIZE + META_SIZE > src.size) return `meta page ${index} lies beyond the end of the file (${src.size} bytes)`;
  const buf = src.read(offset, PAGE_HEADER_SIZE + META_SIZE);
  const flags = buf.readUInt16LE(8);
  if (flags !== META_PAGE) return `meta page ${index} has page flags ${hex(flags)}, not a meta page's`;
  const m = PAGE_HEADER_SIZE;
  const magic = buf.readUInt32LE(m);
  if (magic !== MAGIC) return `meta page ${index} has magic 0x${magic.toString(16)}, not 0x${MAGIC.toString(16)}: not a bbolt database`;
  const version = buf.readUInt32LE(m + 4);
  if (version !== VERSION) return `meta page ${index} has version ${version}, only version ${VERSION} is read`;
  const checksum = buf.readBigUInt64LE(m + 56);
  const computed = fnv1a64(buf.subarray(m, m + META_CHECKSUMMED_SIZE));
  if (checksum !== computed) return `meta page ${index} checksum mismatch (stored ${checksum.toString(16)}, computed ${computed.toString(16)})`;
  const id = buf.readBigUInt64LE(0);
  if (id !== BigInt(index)) return `meta page ${index} says it is page ${id}`;
  const pageSize = buf.readUInt32LE(m + 8);
  if (pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE || (pageSize & (pageSize - 1)) !== 0) {
    return `meta page ${index} has page size ${pageSize}, not a power of two from ${MIN_PAGE_SIZE} to ${MAX_PAGE_SIZE}`;
  }
  return {
    metaPage: index,
    pageSize,
    flags: buf.readUInt32LE(m + 12),
    root: buf.readBigUInt64LE(m + 16),
    rootSequence: buf.readBigUInt64LE(m + 24),
    freelist: buf.readBigUInt64LE(m + 32),
    pageCount: buf.readBigUInt64LE(m + 40),
    txid: buf.readBigUInt64LE(m + 48),
  };
}

/** The page size, from meta page 0 or (as bbolt does when page 0 is damaged) from meta page 1 at each possible size. */
function findPageSize(src: PageSource): number {
  const first = readMetaAt(src, 0, 0);
  if (typeof first !== 'string') return first.pageSize;
  for (let i = 0; i < SECOND_META_CANDIDATES; i++) {
    const size = 1024 << i;
    const second = readMetaAt(src, size, 1);
    if (typeof second !== 'string' && second.pageSize === size) return size;
  }
  throw new BboltCorruptError(`no valid meta page: ${first}; no valid meta page 1 at any page size`);
}

/** A bbolt database read from a PageSource (or a Buffer). Nothing is copied: pairs are views of the bytes read. */
export class BboltDb {
  private constructor(
    private readonly src: PageSource,
    readonly meta: BboltMeta,
  ) {}

  /**
   * Reads and checks the meta pages of `data` and picks the current one (the valid meta with the
   * highest txid). Throws BboltCorruptError when neither meta page is valid, when the file is
   * shorter than the pages the meta says are in use, or when the meta names pages out of range.
   * The trees are checked as they are read.
   */
  static open(source: PageSource | Buffer): BboltDb {
    const data = Buffer.isBuffer(source) ? bufferSource(source) : source;
    if (data.size < 2 * MIN_PAGE_SIZE) throw new BboltCorruptError(`a file of ${data.size} bytes is too short for the two meta pages`);
    const pageSize = findPageSize(data);
    const metas = [readMetaAt(data, 0, 0), readMetaAt(data, pageSize, 1)].map((m) =>
      typeof m !== 'string' && m.pageSize !== pageSize ? `meta page ${m.metaPage} has page size ${m.pageSize}, not the file's ${pageSize}` : m,
    );
    const valid = metas.filter((m): m is ValidMeta => typeof m !== 'string');
    if (valid.length === 0) throw new BboltCorruptError(`no valid meta page: ${metas.join('; ')}`);
    const m = valid.reduce((a, b) => (b.txid > a.txid ? b : a));
    const which = `meta page ${m.metaPage}`;
    const needed = m.pageCount * BigInt(pageSize);
    if (needed > BigInt(data.size)) {
      throw new BboltCorruptError(`truncated file: ${which} says ${m.pageCount} pages of ${pageSize} bytes (${needed} bytes), the file has ${data.size}`);
    }
    // From here the page count times the page size fits in the file, so every page id below it is an exact number.
    const pageCount = Number(m.pageCount);
    if (pageCount < 3) throw new BboltCorruptError(`${which} says ${pageCount} pages: there must be two meta pages and a root`);
    const inRange = (id: bigint): boolean => id >= 2n && id < m.pageCount;
    if (!inRange(m.root)) throw new BboltCorruptError(`${which}: root bucket page ${m.root} out of range (pages 2 to ${pageCount - 1})`);
    if (m.freelist !== NO_FREELIST) {
      if (!inRange(m.freelist)) throw new BboltCorruptError(`${which}: freelist page ${m.freelist} out of range (pages 2 to ${pageCount - 1})`);
      const flags = data.read(Number(m.freelist) * pageSize + 8, 2).readUInt16LE(0);
      if (flags !== FREELIST_PAGE) throw new BboltCorruptError(`${which}: freelist page ${m.freelist} has page flags ${hex(flags)}, not a freelist page's`);
    }
    const meta: BboltMeta = {
      metaPage: m.metaPage,
      pageSize,
      flags: m.flags,
      rootPageId: Number(m.root),
      rootSequence: m.rootSequence,
      freelistPageId: m.freelist === NO_FREELIST ? undefined : Number(m.freelist),
      pageCount,
      txid: m.txid,
    };
    return new BboltDb(data, meta);
  }

  /** The top-level bucket (bbolt's root bucket holds only buckets). */
  get root(): BboltBucket {
    return new BboltBucket(this, this.page(this.meta.rootPageId, 'the root bucket'), '');
  }

  /** The top-level bucket named `name`, if there is one. */
  bucket(name: string | Buffer): BboltBucket | undefined {
    return this.root.bucket(name);
  }

  /** The names of the top-level buckets, in key order. */
  bucketNames(): Buffer[] {
    return [...this.root.bucketNames()];
  }

  /** The tree page `id` (a branch or leaf), checked: in range, naming itself, its elements inside it. */
  page(id: number | bigint, where: string): PageView {
    const { pageCount, pageSize } = this.meta;
    if (id < 2 || id >= pageCount) throw new BboltCorruptError(`${where}: page ${id} out of range (pages 2 to ${pageCount - 1})`);
    const n = Number(id);
    const start = n * pageSize;
    const header = this.src.read(start, PAGE_HEADER_SIZE);
    const own = header.readBigUInt64LE(0);
    if (own !== BigInt(n)) throw new BboltCorruptError(`${where}: page ${n} says it is page ${own}`);
    const flags = header.readUInt16LE(8);
    if (flags !== BRANCH_PAGE && flags !== LEAF_PAGE)
      throw new BboltCorruptError(`${where}: page ${n} has page flags ${hex(flags)}, not a branch or leaf page's`);
    const overflow = header.readUInt32LE(12);
    if (n + overflow >= pageCount) throw new BboltCorruptError(`${where}: page ${n} overflows ${overflow} pages, past the last page ${pageCount - 1}`);
    return checkedView({ id: n, flags, count: header.readUInt16LE(10), buf: this.src.read(start, (overflow + 1) * pageSize) }, where);
  }

  /** The inline page inside a bucket value (the bytes after its 16-byte header), checked. */
  inlinePage(value: Buffer, where: string): PageView {
    if (value.length < BUCKET_HEADER_SIZE + PAGE_HEADER_SIZE)
      throw new BboltCorruptError(`${where}: inline bucket value of ${value.length} bytes is too short for its page`);
    const buf = value.subarray(BUCKET_HEADER_SIZE);
    const flags = buf.readUInt16LE(8);
    // An inline bucket is small by definition: one leaf, never a branch.
    if (flags !== LEAF_PAGE) throw new BboltCorruptError(`${where}: inline page has page flags ${hex(flags)}, not a leaf page's`);
    return checkedView({ id: 0, flags, count: buf.readUInt16LE(10), buf }, where);
  }

  /** Every leaf element under `page`, in tree order; `visited` holds the pages of this walk, so that none is read twice. */
  *leafElements(page: PageView, where: string, visited: Set<number>): Generator<LeafElement> {
    // The tree is walked a page at a time (leafPages), each leaf's elements in a plain loop: an
    // element passes through no generator per tree level.
    for (const leaf of this.leafPages(page, where, visited, 0)) {
      const d = leaf.buf;
      for (let i = 0; i < leaf.count; i++) {
        const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        const flags = d.readUInt32LE(e);
        if ((flags & ~BUCKET_LEAF_FLAG) !== 0) throw new BboltCorruptError(`${where}: page ${leaf.id} element ${i} has unknown flags ${hex(flags)}`);
        const keyStart = e + d.readUInt32LE(e + 4);
        const keyEnd = keyStart + d.readUInt32LE(e + 8);
        const valueEnd = keyEnd + d.readUInt32LE(e + 12);
        if (valueEnd > d.length) throw new BboltCorruptError(`${where}: page ${leaf.id} element ${i}: key or value runs past the end of the page`);
        yield { isBucket: flags === BUCKET_LEAF_FLAG, key: d.subarray(keyStart, keyEnd), value: d.subarray(keyEnd, valueEnd) };
      }
    }
  }

  /** The leaf pages under `page` (a leaf itself, or a branch), in tree order; each branch element checked before its child is read. */
  private *leafPages(page: PageView, where: string, visited: Set<number>, depth: number): Generator<PageView> {
    if (depth > MAX_TREE_DEPTH) throw new BboltCorruptError(`${where}: tree deeper than ${MAX_TREE_DEPTH} levels at page ${page.id}`);
    if (page.id !== 0) {
      if (visited.has(page.id)) throw new BboltCorruptError(`${where}: page ${page.id} is reached twice (a loop or a shared page)`);
      visited.add(page.id);
    }
    if (page.flags !== BRANCH_PAGE) {
      yield page;
      return;
    }
    const d = page.buf;
    for (let i = 0; i < page.count; i++) {
      const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const keyStart = e + d.readUInt32LE(e);
      const keyEnd = keyStart + d.readUInt32LE(e + 4);
      if (keyEnd > d.length) throw new BboltCorruptError(`${where}: page ${page.id} element ${i}: key runs past the end of the page`);
      yield* this.leafPages(this.page(d.readBigUInt64LE(e + 8), `${where} (child ${i} of page ${page.id})`), where, visited, depth + 1);
    }
  }
}

/** A page whose element array fits in it; a branch page must have elements (an empty bucket is an empty leaf). */
function checkedView(page: PageView, where: string): PageView {
  const name = page.id === 0 ? 'inline page' : `page ${page.id}`;
  if (PAGE_HEADER_SIZE + page.count * ELEMENT_SIZE > page.buf.length)
    throw new BboltCorruptError(`${where}: ${name} has ${page.count} elements, more than fit in it`);
  if (page.flags === BRANCH_PAGE && page.count === 0) throw new BboltCorruptError(`${where}: branch ${name} has no elements`);
  return page;
}

/** A bucket of a BboltDb: its pairs and nested buckets, read and checked on each walk. */
export class BboltBucket {
  /** @internal Made by BboltDb and by parent buckets. */
  constructor(
    private readonly db: BboltDb,
    private readonly rootPage: PageView,
    /** The bucket's path of names, for error messages (empty for the root). */
    readonly path: string,
  ) {}

  private get where(): string {
    return this.path === '' ? 'the root bucket' : `bucket ${this.path}`;
  }

  /** Every element in key order; throws if the keys are not strictly increasing. */
  private *elements(): Generator<LeafElement> {
    let previous: Buffer | undefined;
    for (const e of this.db.leafElements(this.rootPage, this.where, new Set())) {
      if (previous !== undefined && Buffer.compare(previous, e.key) >= 0) {
        throw new BboltCorruptError(`${this.where}: keys out of order (${e.key.toString('hex')} after ${previous.toString('hex')})`);
      }
      previous = e.key;
      yield e;
    }
  }

  /** The key/value pairs (not the nested buckets), in key order. */
  *pairs(): Generator<BboltPair> {
    for (const e of this.elements()) if (!e.isBucket) yield e;
  }

  /** The names of the nested buckets, in key order. */
  *bucketNames(): Generator<Buffer> {
    for (const e of this.elements()) if (e.isBucket) yield e.key;
  }

  /** The value of `key`, if it holds one (not a bucket). */
  get(key: string | Buffer): Buffer | undefined {
    const e = this.find(key);
    return e !== undefined && !e.isBucket ? e.value : undefined;
  }

  /** The nested bucket `name`, if there is one. */
  bucket(name: string | Buffer): BboltBucket | undefined {
    const e = this.find(name);
    if (e === undefined || !e.isBucket) return undefined;
    const path = `${this.path}/${JSON.stringify(e.key.toString('latin1'))}`.replace(/^\//, '');
    const where = `bucket ${path}`;
    if (e.value.length < BUCKET_HEADER_SIZE) throw new BboltCorruptError(`${where}: bucket header of ${e.value.length} bytes, not ${BUCKET_HEADER_SIZE}`);
    const root = e.value.readBigUInt64LE(0);
    return new BboltBucket(this.db, root === 0n ? this.db.inlinePage(e.value, where) : this.db.page(root, where), path);
  }

  /** The element with key `key`: a scan in key order (the buckets read here are walked whole anyway). */
  private find(key: string | Buffer): LeafElement | undefined {
    const wanted = typeof key === 'string' ? Buffer.from(key) : key;
    for (const e of this.elements()) {
      const c = Buffer.compare(e.key, wanted);
      if (c === 0) return e;
      if (c > 0) return undefined;
    }
    return undefined;
  }
}
