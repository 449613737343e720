/** Argument parsers and process helpers shared by the commands (etcdctl's util.go). */
import { Buffer } from 'node:buffer';

/** A commander argument parser for an integer flag or argument called `name`. */
export function parseIntArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** An error that ends the program with etcdctl's exit code for it (any other error: 1, ExitError). */
export abstract class ExitCodeError extends Error {
  abstract readonly exitCode: number;
}

/** A command's arguments are wrong: etcdctl's ExitBadArgs (exit code 128), before anything is sent. */
export class BadArgsError extends ExitCodeError {
  readonly exitCode = 128;
}

/** A snapshot save that failed: etcdctl's ExitInterrupted (exit code 5). */
export class InterruptedError extends ExitCodeError {
  readonly exitCode = 5;
}

/** A lease ID as etcdctl takes it: hexadecimal. */
export function parseLeaseId(v: string): number {
  if (!/^[0-9a-fA-F]+$/.test(v)) throw new Error(`bad lease ID ${JSON.stringify(v)}: expected hexadecimal`);
  const n = parseInt(v, 16);
  if (!Number.isSafeInteger(n)) throw new Error(`lease ID ${v} is out of range`);
  return n;
}

/** The key range flags of get, del and watch, as the client's options. */
export function rangeOptions(rangeEnd: string | undefined, o: { prefix?: boolean; fromKey?: boolean }): { prefix?: true; fromKey?: true; rangeEnd?: string } {
  return {
    ...(o.prefix ? { prefix: true } : {}),
    ...(o.fromKey ? { fromKey: true } : {}),
    ...(rangeEnd ? { rangeEnd } : {}),
  };
}

/** Reads all of stdin (for `put` without a value, and `txn`). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Resolves when the process is asked to stop. */
export function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

/** A flag that turns true when the process is asked to stop (for the commands that loop). */
export function interruptFlag(): { readonly stopped: boolean } {
  const flag = { stopped: false };
  void untilInterrupted().then(() => (flag.stopped = true));
  return flag;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
