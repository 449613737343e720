/**
 * src/grpc/hpack_decoder.ts: what hpack.js's decompressor gives for blocks hpack.js's compressor
 * wrote, over thousands of blocks (the dynamic table filling and evicting); RFC 7541 Appendix
 * C's examples, with the table's size after each block; each representation; and malformed
 * blocks refused.
 */
import { Buffer } from 'node:buffer';
import hpack, { type HpackHeader } from 'hpack.js';
import { describe, expect, test } from 'vitest';
import { HpackDecoder } from '../../src/grpc/hpack_decoder.js';
import { seededRandom } from '../raft/harness.js';

const TABLE_BYTES = 4096;

/** A block written as the RFC does, hex octets with spaces. */
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** The fields hpack.js gives: neverIndex false but for a never-indexed literal. */
const fields = (...pairs: [string, string][]): HpackHeader[] => pairs.map(([name, value]) => ({ name, value, neverIndex: false }));

function encodeBlock(encoder: ReturnType<typeof hpack.compressor.create>, headers: HpackHeader[]): Buffer {
  encoder.write(headers);
  const chunks: Buffer[] = [];
  for (let c = encoder.read(); c !== null; c = encoder.read()) chunks.push(c);
  return Buffer.concat(chunks);
}

function referenceDecode(decoder: ReturnType<typeof hpack.decompressor.create>, block: Buffer): HpackHeader[] {
  decoder.write(block);
  decoder.execute();
  const headers: HpackHeader[] = [];
  for (let h = decoder.read(); h !== null; h = decoder.read()) headers.push(h);
  return headers;
}

describe('HpackDecoder against hpack.js', () => {
  test.each([TABLE_BYTES, 1024, 256, 0])('random header lists from a compressor with a %i-byte table decode as hpack.js decodes them', (encoderTableBytes) => {
    const random = seededRandom(7541 + encoderTableBytes);
    const text = (length: number): string => String.fromCharCode(...Array.from({ length }, () => random(256)));
    /** Short mostly, some up to 300 octets (entries that evict many). */
    const length = (): number => (random(4) === 0 ? random(301) : random(20));
    const names = [':path', ':authority', 'content-type', 'user-agent', 'grpc-timeout', 'te', 'authorization'];
    const recent: HpackHeader[] = [];
    const encoder = hpack.compressor.create({ table: { maxSize: encoderTableBytes } });
    const reference = hpack.decompressor.create({ table: { maxSize: TABLE_BYTES } });
    const decoder = new HpackDecoder(TABLE_BYTES);
    let indexed = 0;
    for (let i = 0; i < 3000; i++) {
      const headers: HpackHeader[] = [];
      for (let n = random(12); n >= 0; n--) {
        const kind = random(10);
        if (kind < 3 && recent.length > 0) {
          headers.push({ ...recent[random(recent.length)]! }); // sent before: indexed, if still in the table
        } else {
          const name = kind < 6 ? names[random(names.length)]! : text(length());
          const header: HpackHeader = { name, value: text(length()) };
          if (kind === 9) header.neverIndex = true;
          if (random(4) === 0) header.huffman = false;
          headers.push(header);
          recent.push(header);
          if (recent.length > 40) recent.shift();
        }
      }
      const block = encodeBlock(encoder, headers);
      indexed += [...block].filter((octet) => octet & 0x80).length;
      const expected = referenceDecode(reference, block);
      expect(decoder.decode(block)).toEqual(expected);
      expect(expected.map((h) => [h.name, h.value])).toEqual(headers.map((h) => [h.name, h.value]));
      expect(decoder.tableBytes).toBeLessThanOrEqual(TABLE_BYTES);
    }
    if (encoderTableBytes > 0) expect(indexed).toBeGreaterThan(1000);
  });

  test('every octet Huffman-coded and raw', () => {
    const every = String.fromCharCode(...Array.from({ length: 256 }, (_, octet) => octet));
    const encoder = hpack.compressor.create({ table: { maxSize: TABLE_BYTES } });
    const decoder = new HpackDecoder(TABLE_BYTES);
    const headers = [
      { name: 'x-every', value: every },
      { name: every, value: 'raw', huffman: false },
    ];
    expect(decoder.decode(encodeBlock(encoder, headers))).toEqual(fields(['x-every', every], [every, 'raw']));
  });
});

describe('RFC 7541 Appendix C', () => {
  test('C.2: one block of each literal representation, and an indexed field', () => {
    const decoder = new HpackDecoder(TABLE_BYTES);
    // C.2.1: literal with incremental indexing, new name.
    expect(decoder.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))).toEqual(fields(['custom-key', 'custom-header']));
    expect(decoder.tableBytes).toBe(55);
    // C.2.2: literal without indexing, indexed name.
    expect(new HpackDecoder(TABLE_BYTES).decode(hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual(fields([':path', '/sample/path']));
    // C.2.3: literal never indexed, new name.
    const never = new HpackDecoder(TABLE_BYTES);
    expect(never.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).toEqual([{ name: 'password', value: 'secret', neverIndex: true }]);
    expect(never.tableBytes).toBe(0);
    // C.2.4: indexed field, static table.
    expect(new HpackDecoder(TABLE_BYTES).decode(hex('82'))).toEqual(fields([':method', 'GET']));
  });

  const requests = [
    fields([':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']),
    fields([':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']),
    fields([':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']),
  ];
  const requestTableBytes = [57, 110, 164];

  test.each([
    [
      'C.3, raw strings',
      [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ],
    ],
    [
      'C.4, Huffman-coded',
      ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'],
    ],
  ])('%s: three requests on one table', (_, blocks) => {
    const decoder = new HpackDecoder(TABLE_BYTES);
    blocks.forEach((block, i) => {
      expect(decoder.decode(hex(block))).toEqual(requests[i]);
      expect(decoder.tableBytes).toBe(requestTableBytes[i]);
    });
  });

  const date = (second: number): string => `Mon, 21 Oct 2013 20:13:${second} GMT`;
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
  const responses = [
    fields([':status', '302'], ['cache-control', 'private'], ['date', date(21)], ['location', 'https://www.example.com']),
    fields([':status', '307'], ['cache-control', 'private'], ['date', date(21)], ['location', 'https://www.example.com']),
    fields(
      [':status', '200'],
      ['cache-control', 'private'],
      ['date', date(22)],
      ['location', 'https://www.example.com'],
      ['content-encoding', 'gzip'],
      ['set-cookie', cookie],
    ),
  ];
  // 222 twice (`:status 302` evicted for `:status 307`), then 215: three entries evicted for three.
  const responseTableBytes = [222, 222, 215];

  test.each([
    [
      'C.5, raw strings',
      [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
      ],
    ],
    [
      'C.6, Huffman-coded',
      [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ],
    ],
  ])('%s: three responses on a 256-byte table, with eviction', (_, blocks) => {
    const decoder = new HpackDecoder(256);
    blocks.forEach((block, i) => {
      expect(decoder.decode(hex(block))).toEqual(responses[i]);
      expect(decoder.tableBytes).toBe(responseTableBytes[i]);
    });
    // The table now holds set-cookie, content-encoding, date (62-64): 65 was evicted.
    expect(decoder.decode(hex('be bf c0'))).toEqual(fields(['set-cookie', cookie], ['content-encoding', 'gzip'], ['date', date(22)]));
    expect(() => decoder.decode(hex('c1'))).toThrow(/past the table/);
  });
});

describe('representations', () => {
  test('literals with an indexed name, and a never-indexed one with a multi-octet index', () => {
    const decoder = new HpackDecoder(TABLE_BYTES);
    // 0x7a: incremental indexing, name 58 (user-agent); 0x0f 0x10: without indexing, name 31 (15 + 16: content-type);
    // 0x1f 0x08: never indexed, name 23 (15 + 8: authorization); then the new entry, indexed (62).
    const block = Buffer.concat([hex('7a 03'), Buffer.from('qkv'), hex('0f 10 04'), Buffer.from('json'), hex('1f 08 01'), Buffer.from('t'), hex('be')]);
    expect(decoder.decode(block)).toEqual([
      { name: 'user-agent', value: 'qkv', neverIndex: false },
      { name: 'content-type', value: 'json', neverIndex: false },
      { name: 'authorization', value: 't', neverIndex: true },
      { name: 'user-agent', value: 'qkv', neverIndex: false },
    ]);
    expect(decoder.tableBytes).toBe(32 + 10 + 3);
  });

  test('latin1 strings, empty strings, an empty block', () => {
    const decoder = new HpackDecoder(TABLE_BYTES);
    expect(decoder.decode(hex('00 02 e9ff 00'))).toEqual(fields(['\u00e9\u00ff', '']));
    expect(decoder.decode(hex('00 80 80'))).toEqual(fields(['', ''])); // Huffman-coded, empty
    expect(decoder.decode(Buffer.alloc(0))).toEqual([]);
  });

  test('an entry larger than the table empties it and is not added', () => {
    const decoder = new HpackDecoder(64);
    decoder.decode(Buffer.concat([hex('40 01'), Buffer.from('a'), hex('01'), Buffer.from('b')]));
    expect(decoder.tableBytes).toBe(34);
    decoder.decode(Buffer.concat([hex('40 01'), Buffer.from('c'), hex('20'), Buffer.alloc(32, 'v')]));
    expect(decoder.tableBytes).toBe(0);
    expect(() => decoder.decode(hex('be'))).toThrow(/past the table/);
  });

  test('entries are evicted, oldest first, only while the table would be over its size: one that fills it exactly stays', () => {
    const decoder = new HpackDecoder(71);
    const entry = (name: string, valueBytes: number): Buffer =>
      Buffer.concat([hex('40 01'), Buffer.from(name), Buffer.from([valueBytes]), Buffer.alloc(valueBytes, 'v')]);
    decoder.decode(Buffer.concat([entry('a', 2), entry('b', 2)])); // 35 + 35
    expect(decoder.tableBytes).toBe(70);
    decoder.decode(entry('c', 3)); // 36: 'a' goes, and 'b' and 'c' fill the 71 octets
    expect(decoder.tableBytes).toBe(71);
    expect(decoder.decode(hex('be bf')).map((h) => h.name)).toEqual(['c', 'b']);
    expect(() => decoder.decode(hex('c0'))).toThrow(/past the table/);
  });

  test('a table size update to 0 then back, at the start of a block, empties the table', () => {
    const decoder = new HpackDecoder(TABLE_BYTES);
    decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')); // C.3.1: one entry
    // 0x20: size 0; 0x3f 0xe1 0x1f: size 31 + 97 + 31 * 128 = 4096; then :method GET.
    expect(decoder.decode(hex('20 3fe11f 82'))).toEqual(fields([':method', 'GET']));
    expect(decoder.tableBytes).toBe(0);
    expect(() => decoder.decode(hex('be'))).toThrow(/past the table/);
    decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'));
    expect(decoder.tableBytes).toBe(57);
    expect(decoder.decode(hex('be'))).toEqual(fields([':authority', 'www.example.com']));
  });

  test('a smaller table size evicts the oldest entries until the rest fit', () => {
    const decoder = new HpackDecoder(TABLE_BYTES);
    for (const block of ['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865']) decoder.decode(hex(block));
    expect(decoder.tableBytes).toBe(110);
    decoder.decode(hex('3f 21')); // 31 + 33 = 64: :authority (57) goes, cache-control (53) stays
    expect(decoder.tableBytes).toBe(53);
    expect(decoder.decode(hex('be'))).toEqual(fields(['cache-control', 'no-cache']));
    expect(() => decoder.decode(hex('bf'))).toThrow(/past the table/);
  });
});

describe('malformed blocks', () => {
  const decoding =
    (block: string, tableBytes = TABLE_BYTES) =>
    () =>
      new HpackDecoder(tableBytes).decode(hex(block));

  test('index 0, and indices past the table (indexed field, literal name)', () => {
    expect(decoding('80')).toThrow(/index 0/);
    expect(decoding('bd')).not.toThrow(); // 61, the static table's last
    expect(decoding('be')).toThrow(/past the table/);
    expect(decoding('7e 00')).toThrow(/past the table/);
    expect(decoding('0f 2f 00')).toThrow(/past the table/);
    expect(decoding('ff 80ffffff 07')).toThrow(/past the table/); // 127 + 2^31 - 128: the largest integer taken
  });

  test('integers that overflow 2^31 or run past the block', () => {
    expect(decoding('ff 81808080 08')).toThrow(/overflows/); // 127 + 1 + 2^31
    expect(decoding('ff 8080808080 00')).toThrow(/overflows/); // six continuation octets
    expect(decoding('ff')).toThrow(/past the block/);
    expect(decoding('ff 80')).toThrow(/past the block/);
    expect(decoding('40')).toThrow(/ends inside a field/);
    expect(decoding('04')).toThrow(/ends inside a field/); // :path without a value
  });

  test('strings longer than the block', () => {
    expect(decoding('40 05 61')).toThrow(/longer than the block/);
    expect(decoding('04 85 ff')).toThrow(/longer than the block/);
  });

  test('Huffman padding of zeros, longer than 7 bits, or EOS in the string', () => {
    expect(decoding('04 81 1f')).not.toThrow(); // 'a' (00011) and 111
    expect(decoding('04 81 18')).toThrow(/padding/); // 'a' and 000
    expect(decoding('04 81 1e')).toThrow(/padding/); // 'a' and 110
    expect(decoding('04 81 ff')).toThrow(/padding/); // 8 bits of ones
    expect(decoding('04 82 1fff')).toThrow(/padding/); // 'a' and 11 bits of ones
    expect(decoding('04 84 ffffffff')).toThrow(/EOS/); // EOS (30 ones) and 2 bits
    expect(decoding('04 85 1fffffffff')).toThrow(/EOS/); // 'a', then EOS
  });

  test('a table size update above the limit, or after a field', () => {
    expect(decoding('3f e11f')).not.toThrow(); // 4096
    expect(decoding('3f e21f')).toThrow(/above 4096/);
    expect(decoding('3f 21', 63)).toThrow(/above 63/);
    expect(decoding('82 20')).toThrow(/after a field/);
    expect(decoding('20 82 20')).toThrow(/after a field/);
  });
});
