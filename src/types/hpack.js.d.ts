// The part of hpack.js (RFC 7541 header compression, no types of its own) that qkv uses.
declare module 'hpack.js' {
  export interface HpackHeader {
    name: string;
    value: string;
    neverIndex?: boolean;
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
    compressor: { create(options: { table: { size: number } }): Compressor };
    decompressor: { create(options: { table: { size: number } }): Decompressor };
  };
  export default hpack;
}
