/**
 * Password hashes, as etcd's auth store keeps them: bcrypt (`$2a$10$...`, etcd's default cost
 * 10), so that the users of a qkv backup restored into etcd, and of an etcd backup restored into
 * qkv, log in with the same passwords. Hashes of qkv's earlier scrypt form
 * (`scrypt$N$r$p$salt$hash`) are still verified, so existing data dirs keep working.
 *
 * bcrypt runs in one worker thread: at cost 10 a hash or a check is about 0.1 s of CPU, which on
 * the main thread would stall Raft's heartbeats and every other request (Node has no bcrypt of its
 * own; bcryptjs is pure JavaScript). scrypt runs in libuv's thread pool. The worker's queue is
 * bounded (Authenticate's attempts are rate-limited before they get here, src/server/auth.ts).
 */
import { Buffer } from 'node:buffer';
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { TooManyRequestsError } from './raft_node.js';

/** etcd's bcrypt.DefaultCost (its --bcrypt-cost default). */
export const BCRYPT_COST = 10;
/** Hashes and checks waiting for the worker: beyond, "too many requests". */
const MAX_PENDING = 256;

/** The worker's code: CommonJS (an eval'd worker), loading bcryptjs's CommonJS build by its resolved path (so knip.json names the dependency: no import shows it). */
function workerSource(bcryptPath: string): string {
  return `
const { parentPort } = require('node:worker_threads');
const bcrypt = require(${JSON.stringify(bcryptPath)});
parentPort.on('message', ({ id, password, hash, cost }) => {
  try {
    // Go's bcrypt writes version 2a; bcryptjs's salt says 2b: same algorithm, etcd's spelling kept.
    const result = hash === undefined ? bcrypt.hashSync(password, bcrypt.genSaltSync(cost).replace(/^\\$2b\\$/, '$2a$')) : bcrypt.compareSync(password, hash);
    parentPort.postMessage({ id, result });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message) });
  }
});`;
}

interface Pending {
  resolve(result: string | boolean): void;
  reject(err: Error): void;
}

/** The one bcrypt worker of the process, started on first use, not keeping the process alive when idle. */
class BcryptWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  run(request: { password: string; hash?: string; cost?: number }): Promise<string | boolean> {
    if (this.pending.size >= MAX_PENDING) return Promise.reject(new TooManyRequestsError());
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, ...request });
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
    const worker = new Worker(workerSource(bcryptPath), { eval: true });
    worker.unref();
    worker.on('message', (m: { id: number; result?: string | boolean; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.error !== undefined || m.result === undefined) p.reject(new Error(`bcrypt: ${m.error ?? 'no result'}`));
      else p.resolve(m.result);
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`bcrypt worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

const bcrypt = new BcryptWorker();

/** A bcrypt hash etcd's Go bcrypt reads: `$2a$`, `$2b$` or `$2y$`, a two-digit cost, 53 characters of salt and hash. */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** The salted bcrypt hash the store keeps for `password` (etcd's, at `cost`). */
export async function hashPassword(password: string, cost = BCRYPT_COST): Promise<string> {
  return (await bcrypt.run({ password, cost })) as string;
}

/** Whether `password` is the one `stored` was made from (bcrypt, or qkv's earlier scrypt); a stored value of another form never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (BCRYPT_HASH.test(stored)) return (await bcrypt.run({ password, hash: stored })) === true;
  return verifyScrypt(password, stored);
}

// ---- qkv's earlier hashes: scrypt --------------------------------------------------------

const SCRYPT_KEY_BYTES = 32;

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, SCRYPT_KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64), as qkv stored passwords before it took etcd's bcrypt. */
async function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((x) => Number.isSafeInteger(x) && x > 0) || N > 1 << 20 || r > 32 || p > 16) return false;
  const want = Buffer.from(parts[5]!, 'base64');
  if (want.length !== SCRYPT_KEY_BYTES) return false;
  const got = await scrypt(password, Buffer.from(parts[4]!, 'base64'), { N, r, p, maxmem: 256 * N * r + (1 << 20) });
  return timingSafeEqual(got, want);
}

/** An scrypt hash in qkv's earlier form (tests of the old form's verification make theirs with it). */
export async function scryptHash(password: string): Promise<string> {
  const params = { N: 16_384, r: 8, p: 1 } as const;
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}
