/**
 * Child process of the crash test: applies the deterministic entries in batches, continuing
 * from the store's applied index, and prints each applied index once its batch is in LevelDB.
 * The parent kills it with SIGKILL at some point.
 *
 * usage: node --import tsx test/mvcc/crash-child.ts <dir> <lastIndex> <batchSize>
 */
import { MvccStore } from '../../src/mvcc/index.js';
import { entryFor } from './crash-entries.js';

const [dir, lastArg, batchArg] = process.argv.slice(2);
const last = Number(lastArg);
const batch = Number(batchArg);
const store = await MvccStore.open(dir!);
let next = store.appliedIndex + 1;
process.stdout.write(`start ${store.appliedIndex}\n`);
while (next <= last) {
  const n = Math.min(batch, last - next + 1);
  await store.applyBatch(Array.from({ length: n }, (_, j) => ({ index: next + j, request: entryFor(next + j) })));
  next += n;
  process.stdout.write(`${next - 1}\n`);
}
await store.close();
process.stdout.write('done\n');
