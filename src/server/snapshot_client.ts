/**
 * Store snapshots between members: the leader streams its MVCC snapshot over HTTP as
 * length-prefixed chunks (uint32 big-endian length, then the chunk), and a follower that Raft
 * told to install a snapshot pulls it from there.
 */
import type { MvccStore } from '../mvcc/store.js';

export const SNAPSHOT_PATH = '/internal/v1/snapshot';
/** No single chunk of a store snapshot is anywhere near this; larger means a corrupt stream. */
const MAX_CHUNK = 256 * 1024 * 1024;

/** The frames of a store snapshot, for the HTTP route to write. */
export async function* snapshotFrames(store: MvccStore): AsyncGenerator<Buffer> {
  for await (const chunk of store.snapshot()) {
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(chunk.byteLength, 0);
    yield head;
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/** Pulls a store snapshot from the member serving `clientUrl`, yielding its chunks. */
export async function* fetchSnapshot(clientUrl: string): AsyncGenerator<Uint8Array> {
  const res = await fetch(clientUrl + SNAPSHOT_PATH);
  if (!res.ok || !res.body) throw new Error(`snapshot fetch from ${clientUrl} failed: HTTP ${res.status}`);
  let buffered = Buffer.alloc(0);
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered = buffered.length === 0 ? Buffer.from(part) : Buffer.concat([buffered, part]);
    for (;;) {
      if (buffered.length < 4) break;
      const len = buffered.readUInt32BE(0);
      if (len > MAX_CHUNK) throw new Error(`snapshot chunk of ${len} bytes from ${clientUrl} is too large`);
      if (buffered.length < 4 + len) break;
      yield buffered.subarray(4, 4 + len);
      buffered = buffered.subarray(4 + len);
    }
  }
  if (buffered.length > 0) throw new Error(`snapshot stream from ${clientUrl} ended mid-chunk`);
}
