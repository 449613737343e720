/**
 * The bbolt reader on small databases laid out by the test writer: what it reads back (nested,
 * inline and empty buckets, branch levels, overflow pages, meta choice), and every kind of damage
 * refused with BboltCorruptError naming it.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { BboltDb, type BboltBucket } from '../../src/backup/bbolt.js';
import { BboltCorruptError } from '../../src/backup/errors.js';
import { PAGE, patchMeta, readMetaFields, type Tree, writeBbolt, type Written, writeMeta } from './bbolt_writer.js';

const pairsOf = (b: BboltBucket | undefined): [string, string][] => [...b!.pairs()].map((p) => [p.key.toString(), p.value.toString()]);

/** The error `read` throws: a BboltCorruptError, its message matching `text`. */
function refusedWith(data: Buffer, text: string | RegExp): void {
  const read = (): void => {
    const db = BboltDb.open(data);
    const walk = (b: BboltBucket): void => {
      for (const _ of b.pairs()) {
      }
      for (const name of b.bucketNames()) walk(b.bucket(name)!);
    };
    walk(db.root);
  };
  expect(read).toThrow(BboltCorruptError);
  expect(read).toThrow(text);
  try {
    read();
  } catch (e) {
    expect((e as BboltCorruptError).code).toBe('ERR_BBOLT_CORRUPT');
  }
}

const manyKeys = (n: number, prefix = 'k'): [string, string][] => Array.from({ length: n }, (_, i) => [`${prefix}${String(i).padStart(5, '0')}`, `v${i}`]);

/** A database with a bucket of 200 keys over two branch levels, an inline bucket, an empty one and a big value. */
function sample(opts: Parameters<typeof writeBbolt>[1] = {}): Written {
  const tree: Tree = [
    ['many', { bucket: manyKeys(200) }],
    [
      'small',
      {
        bucket: [
          ['x', '1'],
          ['nested', { bucket: [['deep', 'yes']], inline: true }],
        ],
        inline: true,
      },
    ],
    ['empty', { bucket: [] }],
    [
      'big',
      {
        bucket: [
          ['value', Buffer.alloc(20_000, 7)],
          ['after', 'a'],
        ],
      },
    ],
  ];
  return writeBbolt(tree, { leafCapacity: 8, branchCapacity: 4, ...opts });
}

describe('reading a bbolt database', () => {
  it('reads buckets, nested and inline buckets, branch levels and overflow pages, keys in order', () => {
    const w = sample();
    const db = BboltDb.open(w.data);
    expect(db.bucketNames().map(String)).toEqual(['big', 'empty', 'many', 'small']);
    // 200 keys in leaves of 8 under branches of 4: three branch levels.
    expect(w.pages.get('many')!.filter((p) => p.flags === PAGE.branch).length).toBeGreaterThan(5);
    expect(pairsOf(db.bucket('many'))).toEqual(manyKeys(200));
    expect(pairsOf(db.bucket('empty'))).toEqual([]);
    const small = db.bucket('small')!;
    expect(pairsOf(small)).toEqual([['x', '1']]);
    expect([...small.bucketNames()].map(String)).toEqual(['nested']);
    expect(pairsOf(small.bucket('nested'))).toEqual([['deep', 'yes']]);
    const big = db.bucket('big')!;
    expect(big.get('value')!.equals(Buffer.alloc(20_000, 7))).toBe(true);
    expect(big.get('after')!.toString()).toBe('a');
    expect(big.get('missing')).toBeUndefined();
    expect(db.bucket('nope')).toBeUndefined();
    // A value is not a bucket, nor a bucket a value.
    expect(big.bucket('value')).toBeUndefined();
    expect(db.root.get('many')).toBeUndefined();
    expect(db.meta).toMatchObject({ metaPage: 0, pageSize: 4096, txid: 7n, freelistPageId: undefined, pageCount: w.data.length / 4096 });
  });

  it('reads other page sizes', () => {
    for (const pageSize of [1024, 16384]) {
      const db = BboltDb.open(sample({ pageSize }).data);
      expect(db.meta.pageSize).toBe(pageSize);
      expect(pairsOf(db.bucket('many'))).toEqual(manyKeys(200));
    }
  });

  it('takes the valid meta with the highest txid, and the other when that one is damaged', () => {
    const w = sample();
    expect(BboltDb.open(w.data).meta.metaPage).toBe(0);
    patchMeta(w, 1, { txid: 8n });
    expect(BboltDb.open(w.data).meta).toMatchObject({ metaPage: 1, txid: 8n });
    w.data[4096 + 16 + 20]! ^= 1; // meta 1's root, under its checksum
    expect(BboltDb.open(w.data).meta).toMatchObject({ metaPage: 0, txid: 7n });
  });

  it('finds the page size from meta page 1 when meta page 0 is damaged', () => {
    const w = sample({ pageSize: 8192 });
    w.data[16]! ^= 0xff;
    expect(BboltDb.open(w.data).meta).toMatchObject({ metaPage: 1, pageSize: 8192 });
    expect(pairsOf(BboltDb.open(w.data).bucket('many'))).toEqual(manyKeys(200));
  });

  it('accepts a freelist page that is one, and refuses one that is not', () => {
    const w = sample();
    const last = w.data.length / 4096;
    const withFreelist = Buffer.concat([w.data, Buffer.alloc(4096)]);
    withFreelist.writeBigUInt64LE(BigInt(last), last * 4096);
    withFreelist.writeUInt16LE(PAGE.freelist, last * 4096 + 8);
    const fields = { ...readMetaFields(withFreelist, 0, 4096), freelist: BigInt(last), pageCount: BigInt(last + 1) };
    writeMeta(withFreelist, 0, 4096, fields);
    expect(BboltDb.open(withFreelist).meta.freelistPageId).toBe(last);
    withFreelist.writeUInt16LE(PAGE.leaf, last * 4096 + 8);
    refusedWith(withFreelist, /freelist page \d+ has page flags 0x02/);
  });
});

describe('refusing a damaged bbolt database', () => {
  it('a file too short for the meta pages', () => {
    refusedWith(Buffer.alloc(100), /too short for the two meta pages/);
  });

  it('no valid meta page: bad magic, bad version, bad checksum, not a meta page', () => {
    const both = (damage: (w: Written, index: number) => void): Buffer => {
      const w = sample();
      damage(w, 0);
      damage(w, 1);
      return w.data;
    };
    refusedWith(
      both((w, i) => patchMeta(w, i, { magic: 0xdeadbeef })),
      /no valid meta page: meta page 0 has magic 0xdeadbeef, not 0xed0cdaed: not a bbolt database/,
    );
    refusedWith(
      both((w, i) => patchMeta(w, i, { version: 1 })),
      /meta page 0 has version 1, only version 2 is read/,
    );
    refusedWith(
      both((w, i) => void (w.data[i * 4096 + 16 + 48]! ^= 1)),
      /no valid meta page: meta page 0 checksum mismatch.*no valid meta page 1 at any page size/,
    );
    refusedWith(
      both((w, i) => w.data.writeUInt16LE(PAGE.leaf, i * 4096 + 8)),
      /meta page 0 has page flags 0x02, not a meta page's/,
    );
    refusedWith(
      both((w, i) => patchMeta(w, i, { pageSize: 1000 })),
      /page size 1000, not a power of two/,
    );
  });

  it('a meta page with a valid checksum that disagrees with the other about the page size', () => {
    const w = sample();
    patchMeta(w, 1, { pageSize: 8192, txid: 9n });
    // Meta 1 is at 4096 but says 8192: it is not a meta of this file; meta 0 stands.
    expect(BboltDb.open(w.data).meta.metaPage).toBe(0);
    w.data[16]! ^= 0xff;
    refusedWith(w.data, /no valid meta page/);
  });

  it('a truncated file', () => {
    const w = sample();
    refusedWith(w.data.subarray(0, w.data.length - 4096), /truncated file: meta page 0 says \d+ pages of 4096 bytes/);
    refusedWith(w.data.subarray(0, w.data.length - 1), /truncated file/);
    refusedWith(w.data.subarray(0, 4096 + 100), /truncated file|no valid meta page/);
  });

  it('a root or freelist page id out of range', () => {
    const w = sample();
    const pages = w.data.length / 4096;
    patchMeta(w, 0, { root: BigInt(pages + 3) });
    refusedWith(w.data, `meta page 0: root bucket page ${pages + 3} out of range (pages 2 to ${pages - 1})`);
    patchMeta(w, 0, { root: 1n });
    refusedWith(w.data, /root bucket page 1 out of range/);
    patchMeta(w, 0, { root: 0xffff_ffff_ffff_fff0n });
    refusedWith(w.data, /root bucket page 18446744073709551600 out of range/);
    const f = sample();
    patchMeta(f, 0, { freelist: BigInt(pages) });
    refusedWith(f.data, /freelist page \d+ out of range/);
    const tiny = sample();
    patchMeta(tiny, 0, { pageCount: 2n });
    refusedWith(tiny.data, /says 2 pages: there must be two meta pages and a root/);
  });

  it('a branch element naming a page out of range, a meta page, or itself', () => {
    const branchOf = (w: Written): number => w.pages.get('many')!.find((p) => p.flags === PAGE.branch)!.id;
    const childAt = (w: Written): number => branchOf(w) * 4096 + 16 + 8;
    const out = sample();
    out.data.writeBigUInt64LE(9999n, childAt(out));
    refusedWith(out.data, /bucket "many" \(child 0 of page \d+\): page 9999 out of range/);
    const meta = sample();
    meta.data.writeBigUInt64LE(0n, childAt(meta));
    refusedWith(meta.data, /page 0 out of range/);
    const loop = sample();
    loop.data.writeBigUInt64LE(BigInt(branchOf(loop)), childAt(loop));
    refusedWith(loop.data, /page \d+ is reached twice \(a loop or a shared page\)/);
  });

  it('a page that does not name itself, or has unknown flags, or overflows past the end', () => {
    const root = (w: Written): number => w.pages.get('many')![0]!.id * 4096;
    const id = sample();
    id.data.writeBigUInt64LE(12345n, root(id));
    refusedWith(id.data, /page \d+ says it is page 12345/);
    const flags = sample();
    flags.data.writeUInt16LE(0x20, root(flags) + 8);
    refusedWith(flags.data, /has page flags 0x20, not a branch or leaf page's/);
    const overflow = sample();
    overflow.data.writeUInt32LE(1000, root(overflow) + 12);
    refusedWith(overflow.data, /overflows 1000 pages, past the last page/);
  });

  it('an element count, key or value that does not fit in its page', () => {
    const leafOf = (w: Written): number => w.pages.get('many')!.find((p) => p.flags === PAGE.leaf)!.id * 4096;
    const count = sample();
    count.data.writeUInt16LE(0xffff, leafOf(count) + 10);
    refusedWith(count.data, /has 65535 elements, more than fit in it/);
    const ksize = sample();
    ksize.data.writeUInt32LE(0xffff_ffff, leafOf(ksize) + 16 + 8);
    refusedWith(ksize.data, /element 0: key or value runs past the end of the page/);
    const vsize = sample();
    vsize.data.writeUInt32LE(5000, leafOf(vsize) + 16 + 16 * 3 + 12);
    refusedWith(vsize.data, /element 3: key or value runs past the end of the page/);
    const pos = sample();
    pos.data.writeUInt32LE(4096, leafOf(pos) + 16 + 4);
    refusedWith(pos.data, /runs past the end of the page/);
    const branchKey = sample();
    const branch = branchKey.pages.get('many')![0]!.id * 4096;
    branchKey.data.writeUInt32LE(100_000, branch + 16 + 4);
    refusedWith(branchKey.data, /key runs past the end of the page/);
    const emptyBranch = sample();
    emptyBranch.data.writeUInt16LE(0, branch + 10);
    refusedWith(emptyBranch.data, /branch page \d+ has no elements/);
  });

  it('keys out of order, and unknown element flags', () => {
    const leaf = (w: Written): number => w.pages.get('many')!.find((p) => p.flags === PAGE.leaf)!.id * 4096;
    const order = sample();
    // The first leaf holds k00000..k00007 (7 bytes keys, 2-3 byte values); make its second key sort first.
    const e1 = leaf(order) + 16 + 16;
    order.data[e1 + order.data.readUInt32LE(e1 + 4)] = 0x00;
    refusedWith(order.data, /bucket "many": keys out of order/);
    const flags = sample();
    flags.data.writeUInt32LE(0x04, leaf(flags) + 16);
    refusedWith(flags.data, /element 0 has unknown flags 0x04/);
  });

  it('a nested bucket whose header or inline page is damaged', () => {
    // Find the root leaf element of "small" (inline) and of "big" (a bucket header).
    const element = (w: Written, name: string): { at: number; value: number; length: number } => {
      const page = w.pages.get('')![0]!.id * 4096;
      for (let i = 0; i < w.data.readUInt16LE(page + 10); i++) {
        const at = page + 16 + i * 16;
        const key = at + w.data.readUInt32LE(at + 4);
        const ksize = w.data.readUInt32LE(at + 8);
        if (w.data.subarray(key, key + ksize).toString() === name) return { at, value: key + ksize, length: w.data.readUInt32LE(at + 12) };
      }
      throw new Error(name);
    };
    const short = sample();
    short.data.writeUInt32LE(8, element(short, 'big').at + 12);
    refusedWith(short.data, /bucket "big": bucket header of 8 bytes, not 16/);
    const inlineShort = sample();
    inlineShort.data.writeUInt32LE(20, element(inlineShort, 'small').at + 12);
    refusedWith(inlineShort.data, /bucket "small": inline bucket value of 20 bytes is too short for its page/);
    const inlineFlags = sample();
    inlineFlags.data.writeUInt16LE(PAGE.branch, element(inlineFlags, 'small').value + 16 + 8);
    refusedWith(inlineFlags.data, /bucket "small": inline page has page flags 0x01, not a leaf page's/);
    const inlineCount = sample();
    inlineCount.data.writeUInt16LE(40, element(inlineCount, 'small').value + 16 + 10);
    refusedWith(inlineCount.data, /bucket "small": inline page has 40 elements, more than fit in it/);
    const badRoot = sample();
    badRoot.data.writeBigUInt64LE(77777n, element(badRoot, 'big').value);
    refusedWith(badRoot.data, /bucket "big": page 77777 out of range/);
  });

  it('a tree deeper than any file could hold is cut off (no endless descent)', () => {
    // A chain of single-child branch pages, 70 deep, each naming the next.
    const w = writeBbolt([['b', { bucket: [['k', 'v']] }]]);
    const depth = 70;
    const base = w.data.length / 4096;
    const chain = Buffer.alloc(depth * 4096);
    for (let i = 0; i < depth; i++) {
      const at = i * 4096;
      chain.writeBigUInt64LE(BigInt(base + i), at);
      chain.writeUInt16LE(PAGE.branch, at + 8);
      chain.writeUInt16LE(1, at + 10);
      chain.writeUInt32LE(16, at + 16); // pos: the key right after the element
      chain.writeUInt32LE(1, at + 20);
      chain.writeBigUInt64LE(BigInt(i === depth - 1 ? w.pages.get('b')![0]!.id : base + i + 1), at + 24);
      chain[at + 32] = 0x6b;
    }
    const data = Buffer.concat([w.data, chain]);
    // Bucket "b", the root leaf's one element, now starts at the top of the chain.
    const element = w.pages.get('')![0]!.id * 4096 + 16;
    data.writeBigUInt64LE(BigInt(base), element + data.readUInt32LE(element + 4) + data.readUInt32LE(element + 8));
    writeMeta(data, 0, 4096, { ...readMetaFields(data, 0, 4096), pageCount: BigInt(base + depth) });
    refusedWith(data, /tree deeper than 64 levels/);
  });
});

describe('the error', () => {
  it('is a DataLoss BboltCorruptError', () => {
    const e = new BboltCorruptError('x');
    expect(e.message).toBe('bbolt: x');
    expect(e.grpcCode).toBe(15);
  });
});
