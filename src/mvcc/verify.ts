/**
 * The store's LevelDB files checked before LevelDB opens them: a flipped bit at rest must never be
 * served, and classic-level does not expose LevelDB's paranoid_checks or verify_checksums, so
 * LevelDB as qkv opens it reads a table's blocks without their checksums (a bit flipped in a value
 * comes back as a wrong value), drops a write-ahead log record that fails its checksum and goes on
 * with the next ones, and would copy a bad block into the tables a compaction writes, checksummed
 * anew. So every start reads what the store is made of as LevelDB's own formats say:
 *
 * - CURRENT names the MANIFEST; the MANIFEST's records (LevelDB's log format, each record
 *   CRC-32C'd) give the live table files with their sizes and the live write-ahead logs;
 * - every block of every live table (data, index, filter, metaindex) has its CRC-32C and its
 *   compression type checked (table/format.cc's trailer), the footer its magic;
 * - every record of the live write-ahead logs is checked; a bad record with nothing readable after
 *   it in the newest log is a write cut short by a crash (LevelDB drops it, and with it the
 *   applied index its batch carried: Raft replays), anywhere else the store is corrupt.
 *
 * Cost: one sequential read of the whole store and a CRC over it at every open (about 400 MB/s of
 * CRC here): chosen over a per-record checksum of qkv's own, which would cost every read and write
 * and a format change, and cannot see LevelDB's own structures (the index, the filter, the
 * MANIFEST). Files LevelDB no longer lists (left by a crash, deleted at open) are not read.
 */
import { Buffer } from 'node:buffer';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32cUpdate } from '../backup/crc32c.js';
import { StoreFileCorruptError } from './errors.js';

/** LevelDB's log format (db/log_format.h): 32 KiB blocks, records with a 7-byte header. */
const LOG_BLOCK = 32 * 1024;
const LOG_HEADER = 7;
enum RecordType {
  Zero = 0,
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}

/** table/format.h: the footer's size and magic, a block trailer's size. */
const FOOTER_BYTES = 48;
const TABLE_MAGIC = Buffer.from([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);
const BLOCK_TRAILER = 5;
const NO_COMPRESSION = 0;
const SNAPPY = 1;

/** util/crc32c.h's Mask: a CRC stored next to data that may itself hold CRCs. */
function maskedCrc(bytes: Uint8Array): number {
  const c = crc32cUpdate(0, bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** A reader of a buffer that throws `bad(offset, detail)` on anything out of bounds. */
class Cursor {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly end: number,
    private readonly bad: (offset: number, detail: string) => never,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.pos >= this.end) this.bad(this.pos, 'truncated varint');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * 2 ** shift; // file numbers and sizes are far below 2^53
      if ((b & 0x80) === 0) return v;
    }
    return this.bad(this.pos, 'varint too long');
  }

  bytes(n: number): Buffer {
    if (n > this.end - this.pos) this.bad(this.pos, `${n} bytes past the end`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/**
 * The logical records of a LevelDB log file (a MANIFEST or a write-ahead log), each record's
 * checksum checked. A bad record followed by a good one is corruption; a bad one at the end is
 * corruption too unless `tornTailAllowed`.
 */
function logRecords(file: string, buf: Buffer, tornTailAllowed: boolean, collect: boolean): Buffer[] {
  const out: Buffer[] = [];
  let fragments: Buffer[] | undefined;
  let bad: { offset: number; detail: string } | undefined;
  let off = 0;
  while (off < buf.length) {
    const blockEnd = Math.min((Math.floor(off / LOG_BLOCK) + 1) * LOG_BLOCK, buf.length);
    // A block's last bytes too short for a header are zeros; so is the rest of a block LevelDB's
    // writer never filled (it skips it, as here).
    if (blockEnd - off < LOG_HEADER || buf.readUInt32LE(off) + buf.readUInt16LE(off + 4) + buf[off + 6]! === 0) {
      off = blockEnd;
      continue;
    }
    const len = buf.readUInt16LE(off + 4);
    const type = buf[off + 6]!;
    let problem: string | undefined;
    if (off + LOG_HEADER + len > blockEnd) problem = `record of ${len} bytes past its block`;
    else if (maskedCrc(buf.subarray(off + 6, off + LOG_HEADER + len)) !== buf.readUInt32LE(off)) problem = 'record checksum mismatch';
    else if (type < RecordType.Full || type > RecordType.Last) problem = `bad record type ${type}`;
    if (problem !== undefined) {
      bad ??= { offset: off, detail: problem };
      fragments = undefined;
      off = blockEnd; // as LevelDB: the length itself may be what is wrong
      continue;
    }
    // A sound record after a bad one: LevelDB would replay it over the gap.
    if (bad) throw new StoreFileCorruptError(file, bad.offset, `${bad.detail}, with records after it`);
    if ((type === RecordType.Middle || type === RecordType.Last) !== (fragments !== undefined)) {
      throw new StoreFileCorruptError(file, off, 'record fragments out of order');
    }
    const data = buf.subarray(off + LOG_HEADER, off + LOG_HEADER + len);
    if (type === RecordType.Full) {
      if (collect) out.push(data);
    } else if (type === RecordType.First) {
      fragments = [data];
    } else {
      fragments!.push(data);
      if (type === RecordType.Last) {
        if (collect) out.push(Buffer.concat(fragments!));
        fragments = undefined;
      }
    }
    off += LOG_HEADER + len;
  }
  if (bad && !tornTailAllowed) throw new StoreFileCorruptError(file, bad.offset, bad.detail);
  return out;
}

/** What the MANIFEST says is live: table files (number → size) and the log numbers LevelDB recovers from. */
export interface LiveFiles {
  tables: Map<number, number>;
  logNumber: number;
  prevLogNumber: number;
}

/** db/version_edit.cc's tags. */
enum Tag {
  Comparator = 1,
  LogNumber = 2,
  NextFileNumber = 3,
  LastSequence = 4,
  CompactPointer = 5,
  DeletedFile = 6,
  NewFile = 7,
  PrevLogNumber = 9,
}

/**
 * The live files of the version the MANIFEST `buf` (named `file` in errors) leads to: the tables
 * its edits add and do not delete, and the log numbers. `tornTailAllowed`: a bad last record is a
 * torn write (a copy of a MANIFEST being appended to, checkpoint.ts), not corruption.
 */
export function manifestLiveFiles(file: string, buf: Buffer, tornTailAllowed = false): LiveFiles {
  const bad = (offset: number, detail: string): never => {
    throw new StoreFileCorruptError(file, offset, `bad version edit: ${detail}`);
  };
  const byLevel = new Map<string, { number: number; size: number }>();
  const live: LiveFiles = { tables: new Map(), logNumber: 0, prevLogNumber: 0 };
  for (const record of logRecords(file, buf, tornTailAllowed, true)) {
    // Offsets inside a record are reported from the record's start: it may span blocks.
    const c = new Cursor(record, 0, record.length, bad);
    while (!c.done) {
      const tag = c.varint();
      if (tag === Tag.Comparator) c.bytes(c.varint());
      else if (tag === Tag.LogNumber) live.logNumber = c.varint();
      else if (tag === Tag.PrevLogNumber) live.prevLogNumber = c.varint();
      else if (tag === Tag.NextFileNumber || tag === Tag.LastSequence) c.varint();
      else if (tag === Tag.CompactPointer) {
        c.varint();
        c.bytes(c.varint());
      } else if (tag === Tag.DeletedFile) {
        const level = c.varint();
        byLevel.delete(`${level}:${c.varint()}`);
      } else if (tag === Tag.NewFile) {
        const level = c.varint();
        const number = c.varint();
        const size = c.varint();
        c.bytes(c.varint());
        c.bytes(c.varint());
        byLevel.set(`${level}:${number}`, { number, size });
      } else bad(c.pos, `unknown tag ${tag}`);
    }
  }
  for (const { number, size } of byLevel.values()) live.tables.set(number, size);
  return live;
}

/** Snappy's raw format (the block compression LevelDB uses); undefined if it does not decode. */
function snappyDecompress(src: Buffer): Buffer | undefined {
  const c = new Cursor(src, 0, src.length, () => {
    throw new RangeError('snappy');
  });
  try {
    const out = Buffer.alloc(c.varint());
    let o = 0;
    while (!c.done) {
      const tag = c.bytes(1)[0]!;
      let len: number;
      let offset = 0;
      if ((tag & 3) === 0) {
        len = tag >>> 2;
        if (len >= 60) {
          const n = c.bytes(len - 59);
          len = 0;
          for (let k = n.length - 1; k >= 0; k--) len = len * 256 + n[k]!;
        }
        len += 1;
        if (o + len > out.length) return undefined;
        c.bytes(len).copy(out, o);
        o += len;
        continue;
      }
      if ((tag & 3) === 1) {
        len = ((tag >>> 2) & 7) + 4;
        offset = ((tag >>> 5) << 8) | c.bytes(1)[0]!;
      } else if ((tag & 3) === 2) {
        len = (tag >>> 2) + 1;
        offset = c.bytes(2).readUInt16LE(0);
      } else {
        len = (tag >>> 2) + 1;
        offset = c.bytes(4).readUInt32LE(0);
      }
      if (offset === 0 || offset > o || o + len > out.length) return undefined;
      for (let k = 0; k < len; k++, o++) out[o] = out[o - offset]!;
    }
    return o === out.length ? out : undefined;
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/** A block's place in a table file: its stored bytes, without the 5-byte trailer after them. */
export interface BlockHandle {
  offset: number;
  size: number;
}

/**
 * Checks one table file (`buf`, read from `file`): the footer, then every block the index and the
 * metaindex point to. Returns the data blocks (the index's), in key order.
 */
export function checkTable(file: string, buf: Buffer): BlockHandle[] {
  const bad = (offset: number, detail: string): never => {
    throw new StoreFileCorruptError(file, offset, detail);
  };
  if (buf.length < FOOTER_BYTES) bad(0, `${buf.length} bytes, too short for a table`);
  const footer = buf.length - FOOTER_BYTES;
  if (!buf.subarray(buf.length - TABLE_MAGIC.length).equals(TABLE_MAGIC)) bad(buf.length - TABLE_MAGIC.length, 'bad table magic');
  const handle = (c: Cursor): BlockHandle => ({ offset: c.varint(), size: c.varint() });
  /** A block's stored bytes checked; its contents (decompressed) if `contents`. */
  const block = (h: BlockHandle, contents: boolean): Buffer | undefined => {
    if (h.offset + h.size + BLOCK_TRAILER > footer) return bad(h.offset, `block of ${h.size} bytes past the table's end`);
    const stored = buf.subarray(h.offset, h.offset + h.size + 1);
    if (maskedCrc(stored) !== buf.readUInt32LE(h.offset + h.size + 1)) bad(h.offset, 'block checksum mismatch');
    const type = buf[h.offset + h.size]!;
    if (type !== NO_COMPRESSION && type !== SNAPPY) bad(h.offset + h.size, `bad block type ${type}`);
    if (!contents) return undefined;
    const raw = stored.subarray(0, h.size);
    return type === SNAPPY ? (snappyDecompress(raw) ?? bad(h.offset, 'block does not decompress')) : raw;
  };
  /** The values of a block's entries (table/block.cc: shared, unshared and value lengths, then the bytes). */
  const values = (at: number, b: Buffer): Buffer[] => {
    if (b.length < 4) bad(at, 'block too short');
    const restarts = b.readUInt32LE(b.length - 4);
    const end = b.length - 4 - 4 * restarts;
    if (end < 0) bad(at, `block of ${b.length} bytes with ${restarts} restarts`);
    const c = new Cursor(b, 0, end, (_o, detail) => bad(at, `bad block entry: ${detail}`));
    const out: Buffer[] = [];
    while (!c.done) {
      c.varint(); // bytes shared with the previous key
      const unshared = c.varint();
      const valueLen = c.varint();
      c.bytes(unshared);
      out.push(c.bytes(valueLen));
    }
    return out;
  };
  const f = new Cursor(buf, footer, buf.length - TABLE_MAGIC.length, bad);
  const metaindex = handle(f);
  const index = handle(f);
  const blocks = [index, metaindex].map((top) =>
    values(top.offset, block(top, true)!).map((v) => {
      const h = handle(new Cursor(v, 0, v.length, (_o, d) => bad(top.offset, `bad block handle: ${d}`)));
      block(h, false);
      return h;
    }),
  );
  return blocks[0]!;
}

const TABLE_FILE = /^(\d+)\.(ldb|sst)$/;
const LOG_FILE = /^(\d+)\.log$/;

/**
 * Checks the LevelDB store in `dir` as the module comment says; throws StoreFileCorruptError
 * naming the first bad file (and the byte). A missing or empty directory is a new store.
 */
export async function verifyStoreFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const current = path.join(dir, 'CURRENT');
  if (!names.includes('CURRENT')) {
    const data = names.find((n) => TABLE_FILE.test(n) || LOG_FILE.test(n) || n.startsWith('MANIFEST-'));
    if (data !== undefined) throw new StoreFileCorruptError(current, 0, `missing, beside ${data}`);
    return;
  }
  const manifestName = /^(MANIFEST-\d+)\n$/.exec(await readFile(current, 'latin1'))?.[1];
  if (manifestName === undefined || !names.includes(manifestName)) throw new StoreFileCorruptError(current, 0, 'does not name a MANIFEST of the store');
  const manifest = path.join(dir, manifestName);
  const live = manifestLiveFiles(manifest, await readFile(manifest));
  const byNumber = new Map<number, string>();
  for (const n of names) {
    const m = TABLE_FILE.exec(n);
    if (m) byNumber.set(Number(m[1]), n);
  }
  for (const [number, size] of live.tables) {
    const name = byNumber.get(number);
    if (name === undefined) throw new StoreFileCorruptError(path.join(dir, `${String(number).padStart(6, '0')}.ldb`), 0, `missing (${manifestName} lists it)`);
    const file = path.join(dir, name);
    const buf = await readFile(file);
    if (buf.length !== size) throw new StoreFileCorruptError(file, Math.min(buf.length, size), `${buf.length} bytes, ${manifestName} says ${size}`);
    checkTable(file, buf);
  }
  const logs = names
    .map((n) => ({ n, number: Number(LOG_FILE.exec(n)?.[1] ?? -1) }))
    .filter((l) => l.number >= 0 && (l.number >= live.logNumber || l.number === live.prevLogNumber))
    .sort((a, b) => a.number - b.number);
  for (const [i, l] of logs.entries()) {
    const file = path.join(dir, l.n);
    logRecords(file, await readFile(file), i === logs.length - 1, false);
  }
}
