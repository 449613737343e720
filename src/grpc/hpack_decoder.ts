/**
 * An HPACK (RFC 7541) decoder for the header blocks clients send: h2_front.ts's and
 * h2_authority.ts's, whose blocks are decoded here and encoded again (hpack.js's compressor) for
 * nghttp2.
 *
 * Why our own: hpack.js's decompressor (an OffsetBuffer read bit by bit, Huffman codes decoded
 * one bit at a time down a tree of objects) was about 4% of every member's CPU at 256 gRPC
 * clients, ~7 us a block in that profile. No cache of blocks spares it: grpc-go (etcd's clientv3)
 * sends `grpc-timeout` with a new value on every call, a Huffman-coded literal with incremental
 * indexing, so nearly every block changes the table. Here a block is read in one pass over its
 * bytes, strings are sliced from it (latin1, as Node gives header values), and Huffman codes are
 * decoded four bits at a time with a state table built once. In one micro-benchmark a grpc-go put
 * block takes ~0.28 us (hpack.js ~1.7 us), and a block of indexed fields ~0.12 us, about what
 * finding it among remembered blocks took (~0.1 us): the front remembers none.
 *
 * Every malformed block throws: the connection's HPACK state is then lost, and its caller ends it.
 */
import { Buffer } from 'node:buffer';
import type { HpackHeader } from 'hpack.js';

/** The static table (RFC 7541 Appendix A): index 1 is its first entry. */
const STATIC_TABLE: readonly (readonly [name: string, value: string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/**
 * The bit length of each symbol's Huffman code (RFC 7541 Appendix B), octets 0-255 then EOS (256).
 * The code is canonical: codes of one length are consecutive in symbol order, and each length's
 * first code follows the previous length's last one, shifted; so the lengths alone give the codes.
 */
// biome-ignore format: a row of 32 octets
const HUFFMAN_CODE_LENGTHS = [
  /* 0x00 */ 13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  /* 0x20 */ 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  /* 0x40 */ 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  /* 0x60 */ 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  /* 0x80 */ 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  /* 0xa0 */ 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  /* 0xc0 */ 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  /* 0xe0 */ 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  /* EOS */ 30,
];
const EOS = 256;

/** Each symbol's code (its low `HUFFMAN_CODE_LENGTHS[symbol]` bits), assigned canonically. */
const HUFFMAN_CODES: readonly number[] = (() => {
  const bySymbol = HUFFMAN_CODE_LENGTHS.map((length, symbol) => ({ length, symbol })).sort((a, b) => a.length - b.length || a.symbol - b.symbol);
  const codes: number[] = [];
  let code = 0;
  let length = bySymbol[0]!.length;
  for (const s of bySymbol) {
    code <<= s.length - length;
    length = s.length;
    codes[s.symbol] = code++;
  }
  return codes;
})();

/**
 * The Huffman decoder as a state machine read four bits at a time. A state is an inner node of
 * the code tree (0 the root); for each state and nibble, `HUFFMAN_STEPS` gives the state reached,
 * with the symbol completed on the way if one was (codes are at least 5 bits long: at most one a
 * nibble), or that the nibble leads to EOS. `HUFFMAN_ACCEPTS` marks the states a string may end in:
 * the root, or up to 7 bits of EOS's prefix (all ones), which is how RFC 7541 §5.2 pads.
 */
const STEP_STATE = 0xff;
const STEP_SYMBOL_SHIFT = 8;
const STEP_EMITS = 1 << 16;
const STEP_FAILS = 1 << 17;
const MAX_PADDING_BITS = 7;

const { HUFFMAN_STEPS, HUFFMAN_ACCEPTS } = (() => {
  // children[2 * node + bit]: an inner node's id, ~symbol for a leaf (0, the root's id, for none).
  const children: number[] = [0, 0];
  let nodes = 1;
  HUFFMAN_CODES.forEach((code, symbol) => {
    let node = 0;
    for (let bit = HUFFMAN_CODE_LENGTHS[symbol]! - 1; bit > 0; bit--) {
      const at = 2 * node + ((code >>> bit) & 1);
      if (children[at] === 0) {
        children[at] = nodes++;
        children.push(0, 0);
      }
      node = children[at]!;
    }
    children[2 * node + (code & 1)] = ~symbol;
  });
  // 257 leaves, 256 inner nodes: a state fits STEP_STATE.
  if (nodes > STEP_STATE + 1) throw new Error('hpack: Huffman code not complete');
  const steps = new Uint32Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let step = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[2 * node + ((nibble >>> bit) & 1)]!;
        if (child > 0) {
          node = child;
        } else if (child === 0 || ~child === EOS) {
          step = STEP_FAILS;
          break;
        } else {
          step = STEP_EMITS | (~child << STEP_SYMBOL_SHIFT);
          node = 0;
        }
      }
      steps[state * 16 + nibble] = step | node;
    }
  }
  const accepts = new Uint8Array(nodes);
  for (let node = 0, bits = 0; bits <= MAX_PADDING_BITS; bits++, node = children[2 * node + 1]!) accepts[node] = 1;
  return { HUFFMAN_STEPS: steps, HUFFMAN_ACCEPTS: accepts };
})();

/** Where Huffman-decoded octets are put before they become a string; grown as needed (decoding is synchronous). */
let huffmanOut = Buffer.allocUnsafe(1024);

function decodeHuffman(block: Buffer, start: number, end: number): string {
  // Codes are at least 5 bits long: at most 8 symbols in 5 octets.
  const most = Math.ceil(((end - start) * 8) / 5);
  if (huffmanOut.length < most) huffmanOut = Buffer.allocUnsafe(most);
  const out = huffmanOut;
  let length = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const octet = block[i]!;
    let step = HUFFMAN_STEPS[(state << 4) | (octet >>> 4)]!;
    if (step & STEP_FAILS) throw new Error('hpack: EOS in a Huffman-coded string');
    if (step & STEP_EMITS) out[length++] = (step >>> STEP_SYMBOL_SHIFT) & 0xff;
    step = HUFFMAN_STEPS[((step & STEP_STATE) << 4) | (octet & 0xf)]!;
    if (step & STEP_FAILS) throw new Error('hpack: EOS in a Huffman-coded string');
    if (step & STEP_EMITS) out[length++] = (step >>> STEP_SYMBOL_SHIFT) & 0xff;
    state = step & STEP_STATE;
  }
  if (!HUFFMAN_ACCEPTS[state]) throw new Error('hpack: Huffman padding longer than 7 bits or not of ones');
  return out.toString('latin1', 0, length);
}

/** An entry's size in the dynamic table (RFC 7541 §4.1): its octets (latin1: one a character) and 32. */
const ENTRY_OVERHEAD = 32;
const entrySize = (name: string, value: string): number => ENTRY_OVERHEAD + name.length + value.length;

/** Integers above this are refused (RFC 7541 §5.1 leaves the limit to the implementation). */
const MAX_INTEGER = 2 ** 31 - 1;

/** The dynamic table (RFC 7541 §2.3.2, §4): a ring of entries, the newest at `newest`. */
class DynamicTable {
  private readonly names: string[];
  private readonly values: string[];
  private newest = 0;
  private count = 0;
  /** The entries' total size. */
  bytes = 0;
  /** The most `bytes` may be: the last size update's, `limit` until one. */
  private maxBytes: number;

  /** `limit`: the most a size update may ask, and the size until one does. */
  constructor(private readonly limit: number) {
    this.maxBytes = limit;
    // Every entry takes at least ENTRY_OVERHEAD: no more fit at once (and one slot, unused, for a table of 0).
    const slots = Math.max(1, Math.floor(limit / ENTRY_OVERHEAD));
    this.names = new Array<string>(slots).fill('');
    this.values = new Array<string>(slots).fill('');
  }

  /** The slot of the entry `index` places from the newest (0), or -1 past the table. */
  slot(index: number): number {
    if (index >= this.count) return -1;
    const slot = this.newest - index;
    return slot < 0 ? slot + this.names.length : slot;
  }

  name(slot: number): string {
    return this.names[slot]!;
  }

  value(slot: number): string {
    return this.values[slot]!;
  }

  /** An entry larger than the table empties it and is not added (RFC 7541 §4.4). */
  add(name: string, value: string): void {
    const size = entrySize(name, value);
    while (this.count > 0 && this.bytes + size > this.maxBytes) this.evictOldest();
    if (size > this.maxBytes) return;
    this.newest = this.newest + 1 === this.names.length ? 0 : this.newest + 1;
    this.names[this.newest] = name;
    this.values[this.newest] = value;
    this.count++;
    this.bytes += size;
  }

  /** A dynamic table size update (RFC 7541 §6.3): at most the size we advertised. */
  resize(maxBytes: number): void {
    if (maxBytes > this.limit) throw new Error(`hpack: table size update to ${maxBytes}, above ${this.limit}`);
    this.maxBytes = maxBytes;
    while (this.bytes > maxBytes) this.evictOldest();
  }

  private evictOldest(): void {
    const slot = this.slot(this.count - 1);
    this.bytes -= entrySize(this.names[slot]!, this.values[slot]!);
    this.names[slot] = '';
    this.values[slot] = '';
    this.count--;
  }
}

const NO_BLOCK = Buffer.alloc(0);

/** The decoder of one connection's header blocks: its dynamic table lasts from block to block. */
export class HpackDecoder {
  private readonly table: DynamicTable;
  /** The block being decoded, and where in it. */
  private block: Buffer = NO_BLOCK;
  private at = 0;

  /** `maxTableBytes`: the SETTINGS_HEADER_TABLE_SIZE we advertise, the most a size update may ask. */
  constructor(maxTableBytes: number) {
    this.table = new DynamicTable(maxTableBytes);
  }

  /** The dynamic table's size (RFC 7541 §4.1), for the tests. */
  get tableBytes(): number {
    return this.table.bytes;
  }

  /** A whole header block's fields, in order; `neverIndex` as hpack.js gives it (true for a never-indexed literal). */
  decode(block: Buffer): HpackHeader[] {
    this.block = block;
    this.at = 0;
    const headers: HpackHeader[] = [];
    while (this.at < block.length) {
      const first = block[this.at]!;
      if (first & 0x80) {
        // Indexed field (§6.1).
        const index = this.integer(7);
        headers.push({ name: this.nameAt(index), value: this.valueAt(index), neverIndex: false });
      } else if (first & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const name = this.literalName(6);
        const value = this.string();
        this.table.add(name, value);
        headers.push({ name, value, neverIndex: false });
      } else if (first & 0x20) {
        // Dynamic table size update (§6.3): only before the block's first field (§4.2).
        if (headers.length > 0) throw new Error('hpack: table size update after a field');
        this.table.resize(this.integer(5));
      } else {
        // Literal without indexing (§6.2.2, 0000) or never indexed (§6.2.3, 0001).
        const name = this.literalName(4);
        headers.push({ name, value: this.string(), neverIndex: (first & 0x10) !== 0 });
      }
    }
    this.block = NO_BLOCK;
    return headers;
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1), from the current octet on. */
  private integer(prefixBits: number): number {
    const { block } = this;
    if (this.at >= block.length) throw new Error('hpack: block ends inside a field');
    const max = (1 << prefixBits) - 1;
    let value = block[this.at++]! & max;
    if (value < max) return value;
    for (let weight = 1; ; weight *= 128) {
      if (this.at >= block.length) throw new Error('hpack: integer runs past the block');
      // Past a fifth continuation octet (weight 2^28), only zeros could keep the value below 2^31.
      if (weight > 2 ** 28) throw new Error('hpack: integer overflows');
      const octet = block[this.at++]!;
      value += (octet & 0x7f) * weight;
      if (value > MAX_INTEGER) throw new Error('hpack: integer overflows');
      if (!(octet & 0x80)) return value;
    }
  }

  /** A string literal (RFC 7541 §5.2), raw or Huffman-coded. */
  private string(): string {
    const huffman = ((this.block[this.at] ?? 0) & 0x80) !== 0;
    const length = this.integer(7);
    const start = this.at;
    const end = start + length;
    if (end > this.block.length) throw new Error('hpack: string longer than the block');
    this.at = end;
    return huffman ? decodeHuffman(this.block, start, end) : this.block.toString('latin1', start, end);
  }

  /** A literal's name: an index (N-bit prefix) or, for index 0, a string. */
  private literalName(prefixBits: number): string {
    const index = this.integer(prefixBits);
    return index === 0 ? this.string() : this.nameAt(index);
  }

  private nameAt(index: number): string {
    if (index <= STATIC_TABLE.length) return this.staticEntry(index)[0];
    return this.table.name(this.dynamicSlot(index));
  }

  private valueAt(index: number): string {
    if (index <= STATIC_TABLE.length) return this.staticEntry(index)[1];
    return this.table.value(this.dynamicSlot(index));
  }

  private staticEntry(index: number): readonly [string, string] {
    if (index === 0) throw new Error('hpack: index 0');
    return STATIC_TABLE[index - 1]!;
  }

  /** The dynamic table's indices follow the static table's (RFC 7541 §2.3.3). */
  private dynamicSlot(index: number): number {
    const slot = this.table.slot(index - STATIC_TABLE.length - 1);
    if (slot < 0) throw new Error(`hpack: index ${index} past the table`);
    return slot;
  }
}
