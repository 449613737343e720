/**
 * Store snapshots between members: the leader streams its MVCC snapshot over HTTP as
 * length-prefixed chunks (uint32 big-endian length, then the chunk), and a follower that Raft
 * told to install a snapshot pulls it from there.
 */
import { Buffer } from 'node:buffer';
import type { MvccStore } from '../mvcc/index.js';
import { FRAME_HEADER_BYTES, LengthPrefixedFrames } from './frames.js';

export const SNAPSHOT_PATH = '/internal/v1/snapshot';
/** No single chunk of a store snapshot is anywhere near this; larger means a corrupt stream. */
const MAX_CHUNK = 256 * 1024 * 1024;

/** The frames of a store snapshot, for the HTTP route to write. */
export async function* snapshotFrames(store: MvccStore): AsyncGenerator<Buffer> {
  for await (const chunk of store.snapshot()) {
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    head.writeUInt32BE(chunk.byteLength, 0);
    yield head;
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/** Pulls a store snapshot from the member serving `clientUrl`, yielding its chunks. */
export async function* fetchSnapshot(clientUrl: string): AsyncGenerator<Uint8Array> {
  const res = await fetch(clientUrl + SNAPSHOT_PATH);
  if (!res.ok || !res.body) throw new Error(`snapshot fetch from ${clientUrl} failed: HTTP ${res.status}`);
  const frames = new LengthPrefixedFrames(MAX_CHUNK, (len) => new Error(`snapshot chunk of ${len} bytes from ${clientUrl} is too large`));
  // The body's parts are fresh buffers (one per socket read), so frames may keep views of them.
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    yield* frames.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
  }
  if (frames.pending > 0) throw new Error(`snapshot stream from ${clientUrl} ended mid-chunk`);
}
