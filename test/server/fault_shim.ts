/**
 * Faults beyond the process for one member process: fault_shim.c, built here with the C
 * compiler and preloaded into the member (LD_PRELOAD). A slow or failing disk acts on the files
 * under the member's data dir only; a wall clock offset on the real-time clocks only. Each fault
 * is a control file the shim reads at every call, so it changes while the member runs.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from './cluster_harness.js';

const SOURCE = path.join(import.meta.dirname, 'fault_shim.c');

/** Builds the shim into `dir`; returns the shared object's path. */
function buildFaultShim(dir: string): string {
  const out = path.join(dir, 'fault_shim.so');
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o', out, SOURCE, '-ldl'], { stdio: 'pipe' });
  return out;
}

export type DiskFault = { delayMs?: number; fail?: 'none' | 'sync' | 'write' };

/** One member's faults: the environment for its process, and the switches. */
export class MemberFaults {
  private readonly diskControl: string;
  private readonly clockControl: string;

  constructor(
    private readonly shim: string,
    private readonly dataDir: string,
    controlDir: string,
    name: string,
  ) {
    this.diskControl = path.join(controlDir, `${name}.disk-fault`);
    this.clockControl = path.join(controlDir, `${name}.clock-offset`);
    this.disk({});
    this.clockOffset(0);
  }

  /** The variables that put a member process under these faults. */
  get env(): Record<string, string> {
    return {
      LD_PRELOAD: this.shim,
      QKV_DISK_FAULT_DIR: path.resolve(this.dataDir),
      QKV_DISK_FAULT_CTL: this.diskControl,
      QKV_CLOCK_OFFSET_CTL: this.clockControl,
    };
  }

  disk(fault: DiskFault): void {
    writeFileSync(this.diskControl, `delay_ms=${fault.delayMs ?? 0} fail=${fault.fail ?? 'none'}\n`);
  }

  /** Steps the member's wall clock to the real time plus `seconds` (negative: into the past). */
  clockOffset(seconds: number): void {
    writeFileSync(this.clockControl, `offset_s=${Math.trunc(seconds)}\n`);
  }
}

/** A running cluster of `nodes` members, each under its own MemberFaults (none at first). */
export interface FaultyCluster {
  cluster: LocalCluster;
  faults: Map<string, MemberFaults>;
  destroy(): Promise<void>;
}

export async function startFaultyCluster(nodes: number): Promise<FaultyCluster> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'qkv-faults-'));
  const shim = buildFaultShim(workDir);
  const cluster = await LocalCluster.create({ nodes });
  const faults = new Map<string, MemberFaults>();
  for (const m of cluster.config.members) {
    const f = new MemberFaults(shim, m.dataDir, workDir, m.name);
    faults.set(m.name, f);
    cluster.extraEnv.set(m.name, f.env);
  }
  cluster.startAll();
  await cluster.waitForLeader();
  return {
    cluster,
    faults,
    destroy: async () => {
      await cluster.destroy();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
