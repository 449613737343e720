/**
 * A FIFO async lock. It serializes everything that writes LevelDB (apply batches and physical
 * compaction steps), so a batch is built on exactly the state the previous one left, and steps
 * interleave fairly with batches.
 */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
