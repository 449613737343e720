/**
 * Process-wide V8 settings of a member process. `bench:mvcc` applies them too, so that it
 * measures the store as a member runs it.
 */
import v8 from 'node:v8';

/**
 * Dead ArrayBuffers are freed on the main thread, not on V8's helper thread.
 *
 * Every LevelDB read hands its value over in a fresh Buffer, malloc'd on the main thread; a
 * point get makes one. Freed on the helper thread, that memory goes back through glibc's arena
 * lock, which the main thread's next allocations then wait for (perf shows both threads in the
 * lock), and never into the main thread's own allocation cache. In-process A/B on a 1M-key store,
 * the setting toggled between rounds of 200,000 point gets: 151,000 against 119,000 gets per
 * main-thread CPU-second (medians of 9 rounds each), although the freeing now runs on that
 * thread; applied puts 2-4% more per CPU-second.
 */
export function tuneV8(): void {
  v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');
}
