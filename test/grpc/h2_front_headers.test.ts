/**
 * The front's client header blocks (src/grpc/h2_front.ts ClientHeaderBlocks): blocks of indexed
 * fields are remembered, and what they decode to is what a plain HPACK decoder fed the same
 * blocks says, while the client's table changes between them (entries added, old ones evicted,
 * so the same bytes come to mean other headers).
 */
import hpack, { type HpackHeader } from 'hpack.js';
import { describe, expect, test } from 'vitest';
import { HeaderBlock, HPACK_TABLE_BYTES } from '../../src/grpc/h2_authority.js';
import { ClientHeaderBlocks } from '../../src/grpc/h2_front.js';

/**
 * An encoder as a gRPC client's: a header in its table is sent as its index (one byte), any other
 * as a literal with incremental indexing (a new entry, older ones evicted past the table size).
 */
class IndexingEncoder {
  private readonly table: HpackHeader[] = [];

  encode(headers: HpackHeader[]): Buffer {
    const out: number[] = [];
    for (const h of headers) {
      if (h.name === ':method' && h.value === 'POST') {
        out.push(0x83); // static index 3
        continue;
      }
      const at = this.table.findIndex((e) => e.name === h.name && e.value === h.value);
      if (at >= 0 && 62 + at < 127) {
        out.push(0x80 | (62 + at));
        continue;
      }
      out.push(0x40);
      for (const s of [h.name, h.value]) {
        if (s.length >= 127) throw new Error('test encoder: short strings only');
        out.push(s.length, ...Buffer.from(s, 'latin1'));
      }
      this.table.unshift(h);
      let size = this.table.reduce((n, e) => n + 32 + e.name.length + e.value.length, 0);
      while (size > HPACK_TABLE_BYTES) {
        const old = this.table.pop()!;
        size -= 32 + old.name.length + old.value.length;
      }
    }
    return Buffer.from(out);
  }
}

describe('client header blocks', () => {
  test('decode as a plain decoder does, remembered blocks included, as the table changes', () => {
    const encoder = new IndexingEncoder();
    const reference = hpack.decompressor.create({ table: { size: HPACK_TABLE_BYTES } });
    const blocks = new ClientHeaderBlocks();
    let remembered = 0;
    for (let i = 0; i < 400; i++) {
      const headers: HpackHeader[] = [
        { name: ':method', value: 'POST' },
        { name: ':path', value: `/etcdserverpb.KV/${['Range', 'Put', 'Txn'][i % 3]}` },
        { name: 'content-type', value: 'application/grpc' },
        // A value that comes back now and then, and one new every 7th call (entries added, old ones evicted).
        { name: 'x-turn', value: `turn-${i % 4}` },
        ...(i % 7 === 0 ? [{ name: 'x-new', value: `${i}`.repeat(40).slice(0, 120) }] : []),
      ];
      const bytes = encoder.encode(headers);
      const block = new HeaderBlock(2 * i + 1, true, undefined);
      block.add(bytes);
      if (bytes.every((b) => b > 0x80 && b < 0xff)) remembered++;
      reference.write(bytes);
      reference.execute();
      const expected: HpackHeader[] = [];
      for (let h = reference.read(); h !== null; h = reference.read()) expected.push(h);
      expect(blocks.decode(block).list).toEqual(expected);
    }
    // The case that matters came up: blocks of indexed fields only, most of them.
    expect(remembered).toBeGreaterThan(200);
  });
});
