/**
 * A child process's peak memory: its VmHWM (the resident set's high-water mark) read from
 * /proc/<pid>/status while it runs, every POLL_MS, the last reading kept (the status is gone
 * once the child is reaped). For the snapshot restore's memory test and the bench's rows.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const POLL_MS = 20;

/** What a run gave: exit code, output, and the highest VmHWM read, in bytes. */
export interface PeakRssRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly peakRssBytes: number;
}

function vmHwm(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined; // exited between two readings
  }
}

/** Runs `cmd args` to its end, polling its VmHWM. */
export function runMeasuringPeakRss(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<PeakRssRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = (): void => {
      const v = child.pid === undefined ? undefined : vmHwm(child.pid);
      if (v !== undefined) peak = Math.max(peak, v);
    };
    const timer = setInterval(poll, POLL_MS);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, peakRssBytes: peak });
    });
  });
}
