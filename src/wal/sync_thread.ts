/**
 * SyncThread: a thread of the WAL's own that runs its fdatasyncs, one at a time, and times each.
 *
 * Why not libuv's threadpool (fs.fdatasync): its four threads also run every LevelDB read,
 * iterator step and batch write (classic-level queues them there), so under read load a Raft
 * fsync would wait behind range scans; and its callback comes back only when the event loop gets
 * to it, so timing it from the main thread measures the loop's backlog as well as the disk (at
 * 64 clients 5 ms where the syscall takes well under one). etcd's
 * `etcd_disk_wal_fsync_duration_seconds` times the syscall alone; the thread here does the same.
 *
 * The hand-off is a shared Int32Array, no message passing: the main thread writes the fd and
 * bumps the request counter (Atomics.notify), the thread syncs, stores the outcome and bumps the
 * done counter, which resolves the main thread's Atomics.waitAsync. A thread's fds are the
 * process's, so the fd the main thread writes through is the one synced.
 */
import { getSystemErrorName } from 'node:util';
import { Worker } from 'node:worker_threads';

/** Int32 slots of the shared state. */
const REQUEST = 0; // bumped by the main thread for each sync; -1 asks the thread to exit
const DONE = 1; // set to the request's number by the thread when it has synced
const FD = 2;
const ERRNO = 3; // 0, or the failed fdatasync's (negative) errno
/** Byte offset of the Float64 slot: the last fdatasync's duration in ms. */
const DURATION_OFFSET = 16;
const STATE_BYTES = 24;

/** The thread's code (CommonJS, run with eval: nothing to resolve against the build layout). */
const THREAD_SOURCE = `
const { workerData } = require('node:worker_threads');
const { fdatasyncSync } = require('node:fs');
const state = new Int32Array(workerData, 0, 4);
const duration = new Float64Array(workerData, ${DURATION_OFFSET}, 1);
let seen = 0;
for (;;) {
  Atomics.wait(state, ${REQUEST}, seen);
  const request = Atomics.load(state, ${REQUEST});
  if (request < 0) break;
  if (request === seen) continue;
  seen = request;
  const started = performance.now();
  let errno = 0;
  try {
    fdatasyncSync(state[${FD}]);
  } catch (err) {
    errno = typeof err.errno === 'number' && err.errno < 0 ? err.errno : -5;
  }
  duration[0] = performance.now() - started;
  state[${ERRNO}] = errno;
  Atomics.store(state, ${DONE}, request);
  Atomics.notify(state, ${DONE});
}
`;

type WaitAsync = (typedArray: Int32Array, index: number, value: number) => { async: false; value: string } | { async: true; value: Promise<string> };
/** Atomics.waitAsync (ES2024; Node 16+ has it, this project's TypeScript lib is ES2022). */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** A failed fdatasync, shaped as Node's own fs errors (code, errno, syscall). */
function fdatasyncError(errno: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(errno);
  } catch {
    code = 'EIO';
  }
  return Object.assign(new Error(`${code}: fdatasync failed`), { code, errno, syscall: 'fdatasync' });
}

export class SyncThread {
  private readonly state: Int32Array;
  private readonly duration: Float64Array;
  private readonly worker: Worker;
  /** Rejects once the thread is gone (an error in it, or stopped): a sync waiting on it fails. */
  private readonly gone: Promise<never>;
  private requests = 0;
  private busy = false;
  private stopped = false;

  constructor() {
    const shared = new SharedArrayBuffer(STATE_BYTES);
    this.state = new Int32Array(shared, 0, 4);
    this.duration = new Float64Array(shared, DURATION_OFFSET, 1);
    // No execArgv of the process (--input-type=module would make the source a module, --cpu-prof
    // would profile the thread too).
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: shared, execArgv: [] });
    this.gone = new Promise<never>((_, reject) => {
      this.worker.once('error', (err) => reject(new Error(`wal: the sync thread failed: ${err.message}`)));
      this.worker.once('exit', (code) => reject(new Error(`wal: the sync thread exited (${code})`)));
    });
    this.gone.catch(() => undefined);
    // The thread waits for work forever: only a sync in flight keeps the process alive (ref below).
    this.worker.unref();
  }

  /** fdatasync(fd) on the thread: resolves with the syscall's duration in ms, rejects with its error. One at a time. */
  async sync(fd: number): Promise<number> {
    if (this.stopped) throw new Error('wal: sync thread stopped');
    if (this.busy) throw new Error('wal: concurrent fdatasync on the sync thread');
    this.busy = true;
    this.worker.ref();
    try {
      const request = ++this.requests;
      this.state[FD] = fd;
      Atomics.store(this.state, REQUEST, request);
      Atomics.notify(this.state, REQUEST);
      // Done is request - 1 until the thread answers (or already request: it was quicker).
      const wait = waitAsync(this.state, DONE, request - 1);
      if (wait.async) await Promise.race([wait.value, this.gone]);
      const errno = this.state[ERRNO]!;
      if (errno !== 0) throw fdatasyncError(errno);
      return this.duration[0]!;
    } finally {
      this.worker.unref();
      this.busy = false;
    }
  }

  /** Ends the thread (after the sync in progress, if any). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.state, REQUEST, -1);
    Atomics.notify(this.state, REQUEST);
    await this.worker.terminate();
  }
}
