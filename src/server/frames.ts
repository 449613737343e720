/**
 * Length-prefixed framing, the one way members split a byte stream into frames: a uint32
 * big-endian length, then that many bytes. Used by the peer transport (Raft message batches) and
 * by the store snapshot stream.
 *
 * Linear in the bytes pushed: parts are kept as they arrive and joined once, when a frame is
 * complete (joining on every part made a 1 MiB frame arriving in 64 KiB parts cost 8 MiB of
 * copying).
 */
import { Buffer } from 'node:buffer';
export const FRAME_HEADER_BYTES = 4;

export class LengthPrefixedFrames {
  private parts: Buffer[] = [];
  private buffered = 0;

  /** `tooLarge` makes the error thrown for a frame announcing more than `maxFrameBytes`. */
  constructor(
    private readonly maxFrameBytes: number,
    private readonly tooLarge: (len: number, limit: number) => Error,
  ) {}

  /** Bytes received that do not yet make a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  /** The bodies (without their length) of the frames that `part` completes, in order. */
  push(part: Buffer): Buffer[] {
    this.parts.push(part);
    this.buffered += part.length;
    const out: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const len = this.head().readUInt32BE(0);
      if (len > this.maxFrameBytes) throw this.tooLarge(len, this.maxFrameBytes);
      if (this.buffered < FRAME_HEADER_BYTES + len) break;
      out.push(this.take(FRAME_HEADER_BYTES + len).subarray(FRAME_HEADER_BYTES));
    }
    return out;
  }

  /** The first part, holding at least the length prefix. */
  private head(): Buffer {
    if (this.parts[0]!.length < FRAME_HEADER_BYTES) this.parts = [Buffer.concat(this.parts, this.buffered)];
    return this.parts[0]!;
  }

  private take(n: number): Buffer {
    const joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.buffered);
    const rest = joined.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return joined.subarray(0, n);
  }
}
