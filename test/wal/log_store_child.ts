/**
 * Child process for the crash test: appends entries in a loop and reports each index on stdout
 * only after save() resolved (i.e. after fsync). The parent SIGKILLs it mid-stream.
 */
import type { LogStore } from '../../src/wal/log_store.js';
import { WalLogStore } from '../../src/wal/wal.js';
import { EntryType } from '../../src/raft/types.js';

const kind = process.argv[2]!;
const dir = process.argv[3]!;
if (kind !== 'wal') throw new Error(`unknown log store kind ${kind}`);
// Small segments, so that the crash also lands around segment rotations.
const store: LogStore = await WalLogStore.open(dir, { segmentBytes: 64 * 1024 });
let index = store.lastIndex();
for (let i = 0; i < 100_000; i++) {
  const batch = Array.from({ length: 1 + (i % 5) }, () => {
    index++;
    return { term: 1, index, type: EntryType.Normal, data: Buffer.from(`entry-${index}`) };
  });
  await store.save({ hardState: { term: 1, vote: 1, commit: index }, entries: batch });
  process.stdout.write(`${index}\n`);
}
