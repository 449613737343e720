/**
 * Sorting more records than memory should hold: (key, value) pairs sorted by key bytewise in
 * bounded memory, for an import of etcd's revisions (revisions.ts), whose order (revision) is not
 * the store's (key). Pairs are copied into a run buffer; a full run is sorted (an index of record
 * offsets, the keys compared in place) and written to a file of its own in the sorter's
 * directory; reading the result merges the runs through one read buffer each. Memory: RUN_BYTES
 * and WRITE_BYTES while runs are written, then READ_BYTES per run while they are merged (a 2 GiB
 * import: 128 runs, 8 MiB). A run that never fills is sorted in memory and never written.
 */
import { Buffer } from 'node:buffer';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InternalError } from '../errors.js';

/** The run buffer's size: pairs gathered before a run is sorted and written. */
const RUN_BYTES = 16 << 20;
/** Runs are written in writes of this size. */
const WRITE_BYTES = 1 << 20;
/** Each run is read back in reads of this size. */
const READ_BYTES = 64 << 10;
/** The sorted pairs are handed out in chunks of this many. */
const SORTED_CHUNK = 1024;
/** A pair is stored as key length, value length (u32 each), key, value. */
const PAIR_HEADER = 8;

/** A sorted run's pairs read back in order; `key` and `value` are views of a buffer never reused, so they stay valid. */
class RunReader {
  key: Buffer = Buffer.alloc(0);
  value: Buffer = Buffer.alloc(0);
  private buf = Buffer.alloc(0);
  private at = 0;
  private filePos = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  /** Moves to the next pair; false at the end. Synchronous while the pair is in the buffer already. */
  next(): boolean | Promise<boolean> {
    if (this.buffered(PAIR_HEADER) && this.buffered(PAIR_HEADER + this.pairLength())) return this.take();
    return this.refill().then(() => this.take());
  }

  private buffered(n: number): boolean {
    return this.buf.length - this.at >= n;
  }

  private pairLength(): number {
    return this.buf.readUInt32LE(this.at) + this.buf.readUInt32LE(this.at + 4);
  }

  private take(): boolean {
    if (this.at === this.buf.length) return false;
    if (!this.buffered(PAIR_HEADER) || !this.buffered(PAIR_HEADER + this.pairLength())) throw new InternalError('external sort: a run file ends inside a pair');
    const k = this.buf.readUInt32LE(this.at);
    const v = this.buf.readUInt32LE(this.at + 4);
    const start = this.at + PAIR_HEADER;
    this.key = this.buf.subarray(start, start + k);
    this.value = this.buf.subarray(start + k, start + k + v);
    this.at = start + k + v;
    return true;
  }

  /** A fresh buffer holding the rest of the current one and at least the next whole pair (or up to the file's end). */
  private async refill(): Promise<void> {
    const rest = this.buf.subarray(this.at);
    const need = rest.length >= PAIR_HEADER ? PAIR_HEADER + rest.readUInt32LE(0) + rest.readUInt32LE(4) - rest.length : 0;
    const read = Math.min(Math.max(need, READ_BYTES), this.size - this.filePos);
    const next = Buffer.allocUnsafe(rest.length + read);
    rest.copy(next, 0);
    for (let done = 0; done < read; ) {
      const { bytesRead } = await this.fh.read(next, rest.length + done, read - done, this.filePos);
      if (bytesRead === 0) throw new InternalError(`external sort: run file ended at ${this.filePos} bytes, not ${this.size}`);
      this.filePos += bytesRead;
      done += bytesRead;
    }
    this.buf = next;
    this.at = 0;
    // A pair whose header was short of the first read: read again now that its length is known.
    if (this.filePos < this.size && this.buffered(PAIR_HEADER) && !this.buffered(PAIR_HEADER + this.pairLength())) await this.refill();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** A min-heap of run readers by their current key. */
function siftDown(heap: RunReader[], i: number): void {
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < heap.length && Buffer.compare(heap[l]!.key, heap[m]!.key) < 0) m = l;
    if (r < heap.length && Buffer.compare(heap[r]!.key, heap[m]!.key) < 0) m = r;
    if (m === i) return;
    [heap[i], heap[m]] = [heap[m]!, heap[i]!];
    i = m;
  }
}

/** Pairs added in any order, read back in key order once (see the module comment). */
export class ExternalSorter {
  private buf: Buffer;
  private used = 0;
  private starts: number[] = [];
  private writeBuf: Buffer | undefined;
  private readonly runs: string[] = [];

  /** `dir` exists and is the sorter's alone (the caller removes it); `name` prefixes its run files. */
  constructor(
    private readonly dir: string,
    private readonly name: string,
    runBytes = RUN_BYTES,
  ) {
    this.buf = Buffer.allocUnsafe(runBytes);
  }

  /**
   * Copies `key` and `value` in (the caller may reuse its buffers). A promise only when a full run
   * had to be written first: await it before the next add.
   */
  add(key: Buffer, value: Buffer): Promise<void> | undefined {
    const size = PAIR_HEADER + key.length + value.length;
    if (this.used + size <= this.buf.length) {
      this.put(key, value);
      return undefined;
    }
    return this.spill().then(() => {
      // A pair larger than the run buffer is a run of its own.
      if (size > this.buf.length) this.buf = Buffer.allocUnsafe(size);
      this.put(key, value);
    });
  }

  private put(key: Buffer, value: Buffer): void {
    const size = PAIR_HEADER + key.length + value.length;
    const b = this.buf;
    this.starts.push(this.used);
    b.writeUInt32LE(key.length, this.used);
    b.writeUInt32LE(value.length, this.used + 4);
    key.copy(b, this.used + PAIR_HEADER);
    value.copy(b, this.used + PAIR_HEADER + key.length);
    this.used += size;
  }

  /** The run buffer's pairs in key order (start offsets): Array's sort (TimSort) takes input in order, or nearly, in about one pass. */
  private sortedStarts(): number[] {
    const b = this.buf;
    return this.starts.sort((x, y) => {
      const xs = x + PAIR_HEADER;
      const ys = y + PAIR_HEADER;
      return b.compare(b, ys, ys + b.readUInt32LE(y), xs, xs + b.readUInt32LE(x));
    });
  }

  /**
   * Writes the run buffer's pairs, sorted, as a run file, and empties the buffer. Through one
   * write buffer of the sorter's, reused: not a second run-sized buffer per run (memory freed that
   * large and that often is kept by the allocator rather than given back).
   */
  private async spill(): Promise<void> {
    if (this.starts.length === 0) return;
    const file = path.join(this.dir, `${this.name}-${this.runs.length}`);
    const fh = await open(file, 'w');
    try {
      const out = (this.writeBuf ??= Buffer.allocUnsafe(WRITE_BYTES));
      let at = 0;
      for (const s of this.sortedStarts()) {
        const end = s + PAIR_HEADER + this.buf.readUInt32LE(s) + this.buf.readUInt32LE(s + 4);
        if (at > 0 && at + (end - s) > out.length) {
          await fh.write(out, 0, at);
          at = 0;
        }
        // A pair larger than the write buffer goes straight from the run buffer.
        if (end - s > out.length) await fh.write(this.buf, s, end - s);
        else at += this.buf.copy(out, at, s, end);
      }
      if (at > 0) await fh.write(out, 0, at);
    } finally {
      await fh.close();
    }
    this.runs.push(file);
    this.starts = [];
    this.used = 0;
  }

  /**
   * Every pair added, in key order (equal keys in no particular order), in chunks of up to
   * SORTED_CHUNK pairs (a consumer takes a chunk without a turn of the event loop per pair); read
   * once. The pairs are views of buffers never reused: they stay valid.
   */
  async *sorted(): AsyncGenerator<Array<readonly [Buffer, Buffer]>> {
    if (this.runs.length === 0) {
      const b = this.buf;
      let chunk: Array<readonly [Buffer, Buffer]> = [];
      for (const s of this.sortedStarts()) {
        const k = b.readUInt32LE(s);
        const start = s + PAIR_HEADER;
        chunk.push([b.subarray(start, start + k), b.subarray(start + k, start + k + b.readUInt32LE(s + 4))]);
        if (chunk.length === SORTED_CHUNK) {
          yield chunk;
          chunk = [];
        }
      }
      this.release();
      if (chunk.length > 0) yield chunk;
      return;
    }
    await this.spill();
    this.release();
    const readers: RunReader[] = [];
    try {
      for (const file of this.runs) {
        const fh = await open(file, 'r');
        const reader = new RunReader(fh, (await fh.stat()).size);
        readers.push(reader);
      }
      const heap: RunReader[] = [];
      for (const r of readers) if (await r.next()) heap.push(r);
      for (let i = Math.floor(heap.length / 2) - 1; i >= 0; i--) siftDown(heap, i);
      let chunk: Array<readonly [Buffer, Buffer]> = [];
      while (heap.length > 0) {
        const top = heap[0]!;
        chunk.push([top.key, top.value]);
        if (chunk.length === SORTED_CHUNK) {
          yield chunk;
          chunk = [];
        }
        const more = top.next();
        if (more instanceof Promise ? await more : more) siftDown(heap, 0);
        else {
          heap[0] = heap[heap.length - 1]!;
          heap.pop();
          if (heap.length > 0) siftDown(heap, 0);
        }
      }
      if (chunk.length > 0) yield chunk;
    } finally {
      await Promise.all(readers.map((r) => r.close()));
      await Promise.all(this.runs.map((f) => rm(f, { force: true })));
    }
  }

  private release(): void {
    this.buf = Buffer.alloc(0);
    this.writeBuf = undefined;
    this.starts = [];
    this.used = 0;
  }
}
