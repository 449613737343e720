/**
 * The front's header blocks (src/grpc/h2_front.ts): the client's, decoded with this side's copy
 * of its table, say what a plain HPACK decoder fed the same blocks says while the client's table
 * changes between them (entries added, old ones evicted, so the same bytes come to mean other
 * headers); and the blocks encoded again for nghttp2 refer only to entries its table still holds.
 */
import hpack, { type HpackHeader } from 'hpack.js';
import { describe, expect, test } from 'vitest';
import { encodeHeaderBlock, FrameReader, HeaderBlock, HeaderBlockCollector, HPACK_TABLE_BYTES, serverHeaderEncoder } from '../../src/grpc/h2_authority.js';
import { HpackDecoder } from '../../src/grpc/hpack_decoder.js';

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

describe('header blocks on the front', () => {
  test('blocks from the client decode as a plain decoder does, as the table changes, over CONTINUATION fragments too', () => {
    const encoder = new IndexingEncoder();
    const reference = hpack.decompressor.create({ table: { maxSize: HPACK_TABLE_BYTES } });
    const decoder = new HpackDecoder(HPACK_TABLE_BYTES);
    /** What each block's bytes meant when last sent: the same bytes come to mean other headers. */
    const meanings = new Map<string, string>();
    let meaningsChanged = 0;
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
      const cut = i % 3 === 0 ? Math.floor(bytes.length / 2) : bytes.length;
      block.add(bytes.subarray(0, cut));
      if (cut < bytes.length) block.add(bytes.subarray(cut));
      reference.write(bytes);
      reference.execute();
      const expected: HpackHeader[] = [];
      for (let h = reference.read(); h !== null; h = reference.read()) expected.push(h);
      expect(block.decode(decoder)).toEqual(expected);
      const key = bytes.toString('hex');
      const meaning = JSON.stringify(expected);
      if (meanings.has(key) && meanings.get(key) !== meaning) meaningsChanged++;
      meanings.set(key, meaning);
    }
    // The case that matters came up: the same bytes decoded to other headers after the table changed.
    expect(meaningsChanged).toBeGreaterThan(10);
  });

  test('the blocks encoded again for nghttp2 refer only to entries its table still holds', () => {
    const encoder = serverHeaderEncoder();
    // As strict as nghttp2's decoder: an index past what its table holds is an error.
    const nghttp2 = new HpackDecoder(HPACK_TABLE_BYTES);
    const frames = new FrameReader();
    const blocks = new HeaderBlockCollector();
    for (let i = 0; i < 200; i++) {
      // 30 fields of ~180 octets, sent again and again: more than the table holds.
      const headers: HpackHeader[] = [
        { name: ':authority', value: 'http://127.0.0.1:2379' },
        { name: `x-field-${i % 30}`, value: 'v'.repeat(150) },
      ];
      frames.push(encodeHeaderBlock(encoder, new HeaderBlock(2 * i + 1, true, undefined), headers));
      const block = blocks.take(frames.next()!);
      if (typeof block === 'string') throw new Error('one HEADERS frame expected');
      expect(block.decode(nghttp2).map((h) => [h.name, h.value])).toEqual([
        [':authority', '127.0.0.1:2379'],
        [headers[1]!.name, headers[1]!.value],
      ]);
    }
  });
});
