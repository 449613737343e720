// The part of hpack.js (RFC 7541 header compression, no types of its own) that qkv uses: its
// compressor, for the blocks passed to nghttp2, and its decompressor, the reference the tests
// compare src/grpc/hpack_decoder.ts with.
declare module 'hpack.js' {
  export interface HpackHeader {
    name: string;
    value: string;
    neverIndex?: boolean;
    /** The compressor's: false sends the strings raw (else they are Huffman-coded). */
    huffman?: boolean;
  }
  /** `maxSize`: the dynamic table's size; hpack.js reads no other option (without it, the table never evicts). */
  interface TableOptions {
    table: { maxSize: number };
  }
  export interface Compressor {
    /** Encodes one header block; its bytes are then read(). */
    write(headers: HpackHeader[]): void;
    read(): Buffer | null;
  }
  export interface Decompressor {
    write(block: Buffer): void;
    /** Decodes what was written; throws on a malformed block. */
    execute(): void;
    read(): HpackHeader | null;
  }
  const hpack: {
    compressor: { create(options: TableOptions): Compressor };
    decompressor: { create(options: TableOptions): Decompressor };
  };
  export default hpack;
}
