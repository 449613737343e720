/**
 * A FIFO async lock: operations run one after another, in call order, and one that fails does not
 * stop those queued behind it. The MVCC store serializes everything that writes LevelDB with it
 * (apply batches and physical compaction steps), so a batch is built on exactly the state the
 * previous one left; the Raft log (src/wal) serializes its saves with it.
 */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Resolves once everything queued so far has finished. */
  idle(): Promise<void> {
    return this.run(async () => undefined);
  }
}
