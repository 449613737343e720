/**
 * The load generator: etcd v3's JSON gateway over HTTP/1.1 keep-alive (node:http with a pooled
 * agent, cheaper per request than fetch), the same for qkv and etcd. Requests go round-robin to
 * every member; a member that is not the leader forwards writes, as each system does.
 */
import http from 'node:http';

export interface LoadTarget {
  endpoints: string[];
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** POSTs JSON (with `token` as etcd's Authorization header, if given) and resolves with the parsed answer; rejects on a non-2xx status. */
export function post(url: string, body: string, token?: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(token !== undefined ? { authorization: token } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          else resolve(text ? (JSON.parse(text) as Record<string, unknown>) : {});
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface Stats {
  ops: number;
  /** Ops completed during the unmeasured warm-up. */
  warmupOps: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  /** Sorted latencies in ms (for plots). */
  latencies: Float64Array;
}

export function summarize(latencies: number[], errors: number, seconds: number, warmupOps = 0): Stats {
  const sorted = Float64Array.from(latencies).sort();
  const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
  return { ops: sorted.length, warmupOps, errors, seconds, opsPerSec: sorted.length / seconds, p50: pct(50), p99: pct(99), p999: pct(99.9), latencies: sorted };
}

/**
 * Runs `inFlight` concurrent loops of `op` for `seconds` (after a short warm-up that is not
 * measured) and returns the latency statistics.
 */
export async function closedLoop(inFlight: number, seconds: number, op: (i: number) => Promise<unknown>): Promise<Stats> {
  const warmUntil = performance.now() + Math.min(1000, seconds * 200);
  const end = warmUntil + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let warmupOps = 0;
  let n = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (;;) {
        const t = performance.now();
        if (t >= end) return;
        try {
          await op(n++);
          if (t >= warmUntil) latencies.push(performance.now() - t);
          else warmupOps++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return summarize(latencies, errors, seconds, warmupOps);
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
