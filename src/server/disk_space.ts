/**
 * The disk under a member's data dir filling up. A full disk fails the WAL's or the store's
 * writes (ENOSPC), and a member whose storage failed stops (raft_node's fatal path) and needs a
 * restart. So the member watches the free space instead: once it falls below a reserve, the
 * member raises NOSPACE for itself through Raft, which refuses writes on every member ("etcdserver:
 * mvcc: database space exceeded", etcd's answer to a full quota) while reads, deletes and
 * compaction go on and the log stays far from ENOSPC; it says so in its log, health and
 * metrics; and once space is freed it clears the alarm it raised by itself, without a restart.
 */
import { statfs } from 'node:fs/promises';

export interface DiskSpaceGuardOptions {
  /** The data dir whose filesystem is watched. */
  dir: string;
  /** Free bytes below which writes stop; 0 turns the guard off. */
  reserveBytes: number;
  /**
   * Called at every check while free space is below the reserve, `first` on the one that found
   * it so (the alarm may have been disarmed meanwhile: the member raises it again).
   */
  onLow: (freeBytes: number, first: boolean) => void;
  /** Called once when it is back above the reserve (with a margin, so that it does not flap). */
  onRecovered: (freeBytes: number) => void;
  checkEveryMs?: number;
  /** Free bytes of the filesystem under `dir` (for unprivileged users: statfs's bavail). */
  freeBytes?: (dir: string) => Promise<number>;
}

const CHECK_EVERY_MS = 1_000;

async function statfsFreeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export class DiskSpaceGuard {
  /** Whether free space is below the reserve (writes stopped by this member). */
  low = false;
  /** Free bytes at the last check. */
  freeBytes = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** Bytes the member wrote since the last check began (see written). */
  private writtenSinceCheck = 0;

  constructor(private readonly opts: DiskSpaceGuardOptions) {}

  get enabled(): boolean {
    return this.opts.reserveBytes > 0;
  }

  /** Space to be free again before writes resume: the reserve plus a quarter of it. */
  private get recoverBytes(): number {
    return this.opts.reserveBytes + Math.ceil(this.opts.reserveBytes / 4);
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => void this.check(), this.opts.checkEveryMs ?? CHECK_EVERY_MS);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Counts `bytes` the member is writing (the entries it applies, each also in the WAL and in
   * LevelDB): past an eighth of the reserve since the last check, checks now. A timer alone lets
   * a fast writer (large puts on a fast disk) use the whole reserve between two ticks and reach
   * ENOSPC before the alarm is raised.
   */
  written(bytes: number): void {
    if (!this.enabled) return;
    this.writtenSinceCheck += bytes;
    if (this.writtenSinceCheck >= this.opts.reserveBytes / 8) void this.check();
  }

  /** Measures the free space now and reports a crossing of the reserve. */
  async check(): Promise<void> {
    if (!this.enabled || this.checking) return;
    this.checking = true;
    this.writtenSinceCheck = 0;
    try {
      this.freeBytes = await (this.opts.freeBytes ?? statfsFreeBytes)(this.opts.dir);
    } catch {
      return; // the directory is briefly missing while a restored store is swapped in
    } finally {
      this.checking = false;
    }
    if (!this.low && this.freeBytes < this.opts.reserveBytes) {
      this.low = true;
      this.opts.onLow(this.freeBytes, true);
    } else if (this.low && this.freeBytes < this.recoverBytes) {
      this.opts.onLow(this.freeBytes, false);
    } else if (this.low && this.freeBytes >= this.recoverBytes) {
      this.low = false;
      this.opts.onRecovered(this.freeBytes);
    }
  }
}
