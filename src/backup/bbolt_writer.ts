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

/** A bbolt database being written to a file: `bucket` for each top-level bucket, then `finish`. */
export class BboltFileWriter {
  private nextPage = 2;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly buckets: ChildRef[] = [];
  private finished = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly pageSize: number,
  ) {}

  /** Creates (or truncates) `file`. */
  static async create(file: string, pageSize = 4096): Promise<BboltFileWriter> {
    return new BboltFileWriter(await open(file, 'w'), pageSize);
  }

  /**
   * Writes the top-level bucket `name` with `pairs`, which must come in strictly increasing key
   * order (anything else is the caller's bug: InternalError).
   */
  async bucket(name: string, pairs: AsyncIterable<readonly [Buffer, Buffer]> | Iterable<readonly [Buffer, Buffer]>): Promise<void> {
    if (this.finished) throw new InternalError('bbolt writer: finished');
    if (this.buckets.some((b) => b.key.toString() === name)) throw new InternalError(`bbolt writer: bucket ${name} written twice`);
    const leaves: ChildRef[] = [];
    let elements: (readonly [Buffer, Buffer])[] = [];
    let bytes = PAGE_HEADER_SIZE;
    let previous: Buffer | undefined;
    for await (const pair of pairs) {
      const [key, value] = pair;
      if (previous !== undefined && Buffer.compare(previous, key) >= 0) {
        throw new InternalError(`bbolt writer: bucket ${name}: key ${key.toString('hex')} after ${previous.toString('hex')}: not in increasing order`);
      }
      previous = key;
      const size = ELEMENT_SIZE + key.length + value.length;
      if (elements.length > 0 && (bytes + size > this.pageSize || elements.length === MAX_ELEMENTS)) {
        leaves.push(await this.leaf(elements, bytes));
        elements = [];
        bytes = PAGE_HEADER_SIZE;
      }
      elements.push(pair);
      bytes += size;
    }
    // An empty bucket is one empty leaf.
    if (elements.length > 0 || leaves.length === 0) leaves.push(await this.leaf(elements, bytes));
    this.buckets.push({ key: Buffer.from(name), page: await this.branches(leaves) });
  }

  /** Writes the root bucket and the meta pages, and closes the file. */
  async finish(): Promise<BboltWritten> {
    if (this.finished) throw new InternalError('bbolt writer: finished');
    this.finished = true;
    try {
      const sorted = [...this.buckets].sort((a, b) => Buffer.compare(a.key, b.key));
      const elements = sorted.map((b): readonly [Buffer, Buffer] => {
        const header = Buffer.alloc(BUCKET_HEADER_SIZE);
        header.writeBigUInt64LE(BigInt(b.page), 0);
        return [b.key, header];
      });
      const bytes = elements.reduce((n, [k, v]) => n + ELEMENT_SIZE + k.length + v.length, PAGE_HEADER_SIZE);
      const root = await this.leaf(elements, bytes, BUCKET_LEAF_FLAG);
      await this.flush();
      const metas = Buffer.alloc(2 * this.pageSize);
      this.writeMeta(metas, 0, root.page, TXID);
      this.writeMeta(metas, 1, root.page, TXID - 1n);
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

  /** Writes one leaf page (spanning more pages if it must) of `elements`, `bytes` long with its header. */
  private async leaf(elements: readonly (readonly [Buffer, Buffer])[], bytes: number, flags = 0): Promise<ChildRef> {
    const page = this.pageBuffer(LEAF_PAGE, elements.length, bytes);
    let data = PAGE_HEADER_SIZE + elements.length * ELEMENT_SIZE;
    elements.forEach(([key, value], i) => {
      const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      page.buf.writeUInt32LE(flags, at);
      page.buf.writeUInt32LE(data - at, at + 4);
      page.buf.writeUInt32LE(key.length, at + 8);
      page.buf.writeUInt32LE(value.length, at + 12);
      key.copy(page.buf, data);
      value.copy(page.buf, data + key.length);
      data += key.length + value.length;
    });
    await this.append(page.buf);
    // The key is copied: the caller's may be a view into a buffer it reuses.
    return { key: Buffer.from(elements[0]?.[0] ?? Buffer.alloc(0)), page: page.id };
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
    const page = this.pageBuffer(BRANCH_PAGE, children.length, bytes);
    let data = PAGE_HEADER_SIZE + children.length * ELEMENT_SIZE;
    children.forEach((c, i) => {
      const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      page.buf.writeUInt32LE(data - at, at);
      page.buf.writeUInt32LE(c.key.length, at + 4);
      page.buf.writeBigUInt64LE(BigInt(c.page), at + 8);
      c.key.copy(page.buf, data);
      data += c.key.length;
    });
    await this.append(page.buf);
    return { key: children[0]!.key, page: page.id };
  }

  /** A zeroed page buffer with its header, allocated the next page id(s). */
  private pageBuffer(flags: number, count: number, bytes: number): { buf: Buffer; id: number } {
    const pages = Math.max(1, Math.ceil(bytes / this.pageSize));
    const buf = Buffer.alloc(pages * this.pageSize);
    const id = this.nextPage;
    this.nextPage += pages;
    buf.writeBigUInt64LE(BigInt(id), 0);
    buf.writeUInt16LE(flags, 8);
    buf.writeUInt16LE(count, 10);
    buf.writeUInt32LE(pages - 1, 12);
    return { buf, id };
  }

  private async append(page: Buffer): Promise<void> {
    this.pending.push(page);
    this.pendingBytes += page.length;
    if (this.pendingBytes >= WRITE_BUFFER) await this.flush();
  }

  /** Writes the gathered pages after the ones already written (page 2 starts after the meta pages). */
  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const data = Buffer.concat(this.pending);
    const at = this.nextPage * this.pageSize - data.length;
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.write(data, 0, data.length, at);
  }
}
