/**
 * Writes a bbolt database (the format src/backup/bbolt.ts reads, see there) to a file, streamed:
 * the layout a compacted snapshot has (`bbolt compact`, `Tx.WriteTo` of a fresh database): every
 * page in use, no freelist page (the freelist id is all ones, as etcd's NoFreelistSync writes it:
 * bbolt rebuilds the freelist by walking the trees), two meta pages.
 *
 * Top-level buckets only (etcd's backend has no nested ones), each fed its pairs in strictly
 * increasing key order. A bucket's leaves are written as its pairs arrive; only the first key
 * and page id of each leaf stay in memory (for the branch pages above them, written when the
 * bucket ends), so memory is bounded by a bucket's leaf count, not its data. A pair larger than
 * a page gets a leaf of its own that spans further pages (bbolt's overflow). The meta pages,
 * which name the root and the page count, are written last, at the start of the file.
 */
import { Buffer } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { InternalError } from '../errors.js';
// The page format's constants are the reader's: one definition of bbolt's layout.
import {
  BRANCH_PAGE,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  ELEMENT_SIZE,
  fnv1a64,
  LEAF_PAGE,
  MAGIC,
  META_PAGE,
  NO_FREELIST,
  PAGE_HEADER_SIZE,
  VERSION,
} from './bbolt.js';
/** A page's element count is a u16. */
const MAX_ELEMENTS = 0xffff;
/** Written pages are gathered up to this size before each write. */
const WRITE_BUFFER = 1 << 20;
/** The txid of the current meta (page 0); page 1 holds the one before, as a database after two commits. */
const TXID = 2n;

/** A branch element: the first key under a child page. */
interface ChildRef {
  readonly key: Buffer;
  readonly page: number;
}

/** What was written: the file's size (every page in use) and its pages. */
export interface BboltWritten {
  readonly size: number;
  readonly pageCount: number;
  readonly pageSize: number;
}

/** A key/value pair to write. */
export type BboltPairInput = readonly [key: Buffer, value: Buffer];

/**
 * A bucket's pairs: all at hand, or in chunks as they come (a chunk is written without a turn of
 * the event loop per pair).
 */
export type BboltPairsInput = Iterable<BboltPairInput> | AsyncIterable<Iterable<BboltPairInput>>;

/**
 * The leaf page being filled: its pairs' bytes copied in as they come (so a caller may reuse its
 * buffers for the next pair), their lengths, and the page's size so far with its header.
 */
class LeafInProgress {
  data: Buffer;
  dataUsed = 0;
  readonly keyLengths: number[] = [];
  readonly valueLengths: number[] = [];
  bytes = PAGE_HEADER_SIZE;

  constructor(pageSize: number) {
    this.data = Buffer.allocUnsafe(pageSize);
  }

  get count(): number {
    return this.keyLengths.length;
  }

  add(key: Buffer, value: Buffer): void {
    const n = key.length + value.length;
    if (this.dataUsed + n > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.data.length, this.dataUsed + n));
      this.data.copy(grown, 0, 0, this.dataUsed);
      this.data = grown;
    }
    key.copy(this.data, this.dataUsed);
    value.copy(this.data, this.dataUsed + key.length);
    this.dataUsed += n;
    this.keyLengths.push(key.length);
    this.valueLengths.push(value.length);
    this.bytes += ELEMENT_SIZE + n;
  }

  clear(): void {
    this.dataUsed = 0;
    this.keyLengths.length = 0;
    this.valueLengths.length = 0;
    this.bytes = PAGE_HEADER_SIZE;
  }
}

/** A bbolt database being written to a file: `bucket` for each top-level bucket, then `finish`. */
export class BboltFileWriter {
  private nextPage = 2;
  /** Pages gathered for the next write (the last of them just before page `nextPage`), zero-filled beyond what they hold. */
  private out: Buffer = Buffer.alloc(WRITE_BUFFER);
  private outUsed = 0;
  private readonly buckets: ChildRef[] = [];
  private finished = false;
  private readonly leafInProgress: LeafInProgress;
  /** The last key of the bucket being written (a copy), for the order check. */
  private previous = Buffer.allocUnsafe(256);
  private previousLength = -1;

  private constructor(
    private readonly fh: FileHandle,
    readonly pageSize: number,
  ) {
    this.leafInProgress = new LeafInProgress(pageSize);
  }

  /** Creates (or truncates) `file`. */
  static async create(file: string, pageSize = 4096): Promise<BboltFileWriter> {
    return new BboltFileWriter(await open(file, 'w'), pageSize);
  }

  /**
   * Writes the top-level bucket `name` with `pairs`, which must come in strictly increasing key
   * order (anything else is the caller's bug: InternalError). Each pair is copied as it comes: the
   * caller may reuse its buffers for the next one.
   */
  async bucket(name: string, pairs: BboltPairsInput): Promise<void> {
    if (this.finished) throw new InternalError('bbolt writer: finished');
    if (this.buckets.some((b) => b.key.toString() === name)) throw new InternalError(`bbolt writer: bucket ${name} written twice`);
    const leaves: ChildRef[] = [];
    this.leafInProgress.clear();
    this.previousLength = -1;
    const addAll = async (chunk: Iterable<BboltPairInput>): Promise<void> => {
      for (const [key, value] of chunk) {
        const written = this.addPair(name, leaves, key, value);
        if (written !== undefined) await written;
      }
    };
    if (Symbol.iterator in pairs) await addAll(pairs);
    else for await (const chunk of pairs) await addAll(chunk);
    // An empty bucket is one empty leaf.
    if (this.leafInProgress.count > 0 || leaves.length === 0) {
      const done = this.writeLeaf(leaves);
      if (done !== undefined) await done;
    }
    this.buckets.push({ key: Buffer.from(name), page: await this.branches(leaves) });
  }

  /** Adds one pair to the leaf in progress, writing that leaf first when the pair does not fit; a promise only when pages had to be written to the file. */
  private addPair(name: string, leaves: ChildRef[], key: Buffer, value: Buffer): Promise<void> | undefined {
    if (this.previousLength >= 0 && key.compare(this.previous, 0, this.previousLength) <= 0) {
      const previous = this.previous.toString('hex', 0, this.previousLength);
      throw new InternalError(`bbolt writer: bucket ${name}: key ${key.toString('hex')} after ${previous}: not in increasing order`);
    }
    if (key.length > this.previous.length) this.previous = Buffer.allocUnsafe(2 * key.length);
    key.copy(this.previous, 0);
    this.previousLength = key.length;
    const leaf = this.leafInProgress;
    const size = ELEMENT_SIZE + key.length + value.length;
    let written: Promise<void> | undefined;
    if (leaf.count > 0 && (leaf.bytes + size > this.pageSize || leaf.count === MAX_ELEMENTS)) written = this.writeLeaf(leaves);
    if (written === undefined) {
      leaf.add(key, value);
      return undefined;
    }
    return written.then(() => leaf.add(key, value));
  }

  /** Writes the leaf in progress as one leaf page (spanning more pages if it must), and empties it; a promise only when pages had to be written to the file. */
  private writeLeaf(leaves: ChildRef[], flags = 0): Promise<void> | undefined {
    const leaf = this.leafInProgress;
    const count = leaf.count;
    const { buf, at: page, id } = this.pageAt(LEAF_PAGE, count, leaf.bytes);
    let data = page + PAGE_HEADER_SIZE + count * ELEMENT_SIZE;
    for (let i = 0; i < count; i++) {
      const at = page + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const k = leaf.keyLengths[i]!;
      const v = leaf.valueLengths[i]!;
      buf.writeUInt32LE(flags, at);
      buf.writeUInt32LE(data - at, at + 4);
      buf.writeUInt32LE(k, at + 8);
      buf.writeUInt32LE(v, at + 12);
      data += k + v;
    }
    leaf.data.copy(buf, page + PAGE_HEADER_SIZE + count * ELEMENT_SIZE, 0, leaf.dataUsed);
    // The first key is copied: the leaf's data is reused.
    leaves.push({ key: Buffer.from(leaf.data.subarray(0, leaf.keyLengths[0] ?? 0)), page: id });
    leaf.clear();
    return this.pageDone();
  }

  /** Writes the root bucket and the meta pages, and closes the file. */
  async finish(): Promise<BboltWritten> {
    if (this.finished) throw new InternalError('bbolt writer: finished');
    this.finished = true;
    try {
      const sorted = [...this.buckets].sort((a, b) => Buffer.compare(a.key, b.key));
      const roots: ChildRef[] = [];
      const leaf = this.leafInProgress;
      leaf.clear();
      for (const b of sorted) {
        const header = Buffer.alloc(BUCKET_HEADER_SIZE);
        header.writeBigUInt64LE(BigInt(b.page), 0);
        leaf.add(b.key, header);
      }
      const written = this.writeLeaf(roots, BUCKET_LEAF_FLAG);
      if (written !== undefined) await written;
      await this.flush();
      const metas = Buffer.alloc(2 * this.pageSize);
      this.writeMeta(metas, 0, roots[0]!.page, TXID);
      this.writeMeta(metas, 1, roots[0]!.page, TXID - 1n);
      await this.fh.write(metas, 0, metas.length, 0);
      await this.fh.sync();
      return { size: this.nextPage * this.pageSize, pageCount: this.nextPage, pageSize: this.pageSize };
    } finally {
      await this.fh.close();
    }
  }

  /** Closes the file without finishing it (after a failure; the caller removes it). */
  async abandon(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.fh.close();
  }

  private writeMeta(out: Buffer, index: number, root: number, txid: bigint): void {
    const p = index * this.pageSize;
    out.writeBigUInt64LE(BigInt(index), p);
    out.writeUInt16LE(META_PAGE, p + 8);
    const m = p + PAGE_HEADER_SIZE;
    out.writeUInt32LE(MAGIC, m);
    out.writeUInt32LE(VERSION, m + 4);
    out.writeUInt32LE(this.pageSize, m + 8);
    out.writeUInt32LE(0, m + 12);
    out.writeBigUInt64LE(BigInt(root), m + 16);
    out.writeBigUInt64LE(0n, m + 24);
    out.writeBigUInt64LE(NO_FREELIST, m + 32);
    out.writeBigUInt64LE(BigInt(this.nextPage), m + 40);
    out.writeBigUInt64LE(txid, m + 48);
    out.writeBigUInt64LE(fnv1a64(out.subarray(m, m + 56)), m + 56);
  }

  /** Writes the branch levels above `children` (if more than one); returns the bucket's root page. */
  private async branches(children: ChildRef[]): Promise<number> {
    let level = children;
    while (level.length > 1) {
      const next: ChildRef[] = [];
      let group: ChildRef[] = [];
      let bytes = PAGE_HEADER_SIZE;
      for (const child of level) {
        const size = ELEMENT_SIZE + child.key.length;
        if (group.length > 0 && (bytes + size > this.pageSize || group.length === MAX_ELEMENTS)) {
          next.push(await this.branch(group, bytes));
          group = [];
          bytes = PAGE_HEADER_SIZE;
        }
        group.push(child);
        bytes += size;
      }
      next.push(await this.branch(group, bytes));
      level = next;
    }
    return level[0]!.page;
  }

  private async branch(children: readonly ChildRef[], bytes: number): Promise<ChildRef> {
    const { buf, at: page, id } = this.pageAt(BRANCH_PAGE, children.length, bytes);
    let data = page + PAGE_HEADER_SIZE + children.length * ELEMENT_SIZE;
    children.forEach((c, i) => {
      const at = page + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      buf.writeUInt32LE(data - at, at);
      buf.writeUInt32LE(c.key.length, at + 4);
      buf.writeBigUInt64LE(BigInt(c.page), at + 8);
      c.key.copy(buf, data);
      data += c.key.length;
    });
    await this.pageDone();
    return { key: children[0]!.key, page: id };
  }

  /**
   * The next page (or pages, for `bytes` beyond one) at the end of the gathered ones, zeroed, with
   * its header written, and its page id: `buf` (the write buffer) from offset `at`.
   */
  private pageAt(flags: number, count: number, bytes: number): { buf: Buffer; at: number; id: number } {
    const pages = Math.max(1, Math.ceil(bytes / this.pageSize));
    const size = pages * this.pageSize;
    if (this.outUsed + size > this.out.length) {
      // Only a page larger than the write buffer's room (a large value's overflow) gets here.
      const grown = Buffer.alloc(this.outUsed + size);
      this.out.copy(grown, 0, 0, this.outUsed);
      this.out = grown;
    }
    const buf = this.out;
    const at = this.outUsed;
    this.outUsed += size;
    const id = this.nextPage;
    this.nextPage += pages;
    buf.writeBigUInt64LE(BigInt(id), at);
    buf.writeUInt16LE(flags, at + 8);
    buf.writeUInt16LE(count, at + 10);
    buf.writeUInt32LE(pages - 1, at + 12);
    return { buf, at, id };
  }

  /** After a page is written into the write buffer: the buffer written to the file if another page would not fit. */
  private pageDone(): Promise<void> | undefined {
    return this.outUsed + this.pageSize > this.out.length ? this.flush() : undefined;
  }

  /** Writes the gathered pages after the ones already written (page 2 starts after the meta pages), and empties the buffer (zeroed again). */
  private async flush(): Promise<void> {
    if (this.outUsed === 0) return;
    const n = this.outUsed;
    const at = this.nextPage * this.pageSize - n;
    for (let done = 0; done < n; ) {
      const { bytesWritten } = await this.fh.write(this.out, done, n - done, at + done);
      done += bytesWritten;
    }
    if (this.out.length > WRITE_BUFFER) this.out = Buffer.alloc(WRITE_BUFFER);
    else this.out.fill(0, 0, n);
    this.outUsed = 0;
  }
}
