/**
 * A slow or failing disk for one member process: disk_fault_shim.c, built here with the C
 * compiler and preloaded into the member (LD_PRELOAD), acting on the files under its data dir
 * only. The fault is a control file the shim reads at every call, so it changes while the
 * member runs.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const SOURCE = path.join(import.meta.dirname, 'disk_fault_shim.c');

/** Builds the shim into `dir`; returns the shared object's path. */
export function buildDiskFaultShim(dir: string): string {
  const out = path.join(dir, 'disk_fault_shim.so');
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o', out, SOURCE, '-ldl'], { stdio: 'pipe' });
  return out;
}

export type DiskFault = { delayMs?: number; fail?: 'none' | 'sync' | 'write' };

/** A member's disk: its environment (for its process) and the switch of its fault. */
export class FaultyDisk {
  readonly control: string;

  constructor(
    private readonly shim: string,
    readonly dataDir: string,
    controlDir: string,
    name: string,
  ) {
    this.control = path.join(controlDir, `${name}.disk-fault`);
    this.set({});
  }

  /** The variables that make a member process use this disk. */
  get env(): Record<string, string> {
    return { LD_PRELOAD: this.shim, QKV_DISK_FAULT_DIR: path.resolve(this.dataDir), QKV_DISK_FAULT_CTL: this.control };
  }

  set(fault: DiskFault): void {
    writeFileSync(this.control, `delay_ms=${fault.delayMs ?? 0} fail=${fault.fail ?? 'none'}\n`);
  }
}
