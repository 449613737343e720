/** Key ranges as etcd clients compute them (clientv3's WithPrefix / WithFromKey). */
import { Buffer } from 'node:buffer';

/** The range end that makes `key` a prefix: increment the last byte below 0xff, dropping the 0xff tail. */
export function prefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  // Empty or all 0xff: every key from `key` on.
  return Buffer.from([0]);
}

export interface RangeOptions {
  prefix?: boolean;
  /** Every key >= key. */
  fromKey?: boolean;
  rangeEnd?: Buffer;
}

/**
 * The [key, rangeEnd) of a request. As clientv3 does, an empty key with prefix or fromKey
 * means every key: key "\0", range end "\0".
 */
export function keyRange(key: Buffer, opts: RangeOptions): { key: Buffer; rangeEnd?: Buffer } {
  if ((opts.prefix || opts.fromKey) && key.length === 0) return { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) };
  if (opts.prefix) return { key, rangeEnd: prefixEnd(key) };
  if (opts.fromKey) return { key, rangeEnd: Buffer.from([0]) };
  if (opts.rangeEnd !== undefined && opts.rangeEnd.length > 0) return { key, rangeEnd: opts.rangeEnd };
  return { key };
}
