import { describe, expect, test } from 'vitest';
import { LengthPrefixedFrames } from '../../src/server/frames.js';

const frame = (body: Buffer): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
};

describe('LengthPrefixedFrames', () => {
  const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('last one')];
  const stream = Buffer.concat(bodies.map(frame));
  const splits: { name: string; parts: (s: Buffer) => Buffer[] }[] = [
    { name: 'all at once', parts: (s) => [s] },
    { name: 'byte by byte', parts: (s) => [...s].map((b) => Buffer.from([b])) },
    { name: 'in 64 KiB parts', parts: (s) => Array.from({ length: Math.ceil(s.length / 65536) }, (_, i) => s.subarray(i * 65536, (i + 1) * 65536)) },
    { name: 'a split inside every length prefix', parts: (s) => [s.subarray(0, 2), s.subarray(2, 7), s.subarray(7, 9), s.subarray(9)] },
  ];
  test.each(splits)('gives every body in order, $name', ({ parts }) => {
    const frames = new LengthPrefixedFrames(1 << 20, () => new Error('too large'));
    const out: Buffer[] = [];
    for (const p of parts(stream)) out.push(...frames.push(p));
    expect(out.map((b) => b.toString('hex'))).toEqual(bodies.map((b) => b.toString('hex')));
    expect(frames.pending).toBe(0);
  });

  test('counts what an unfinished frame has so far', () => {
    const frames = new LengthPrefixedFrames(1 << 20, () => new Error('too large'));
    expect(frames.push(frame(Buffer.from('abcdef')).subarray(0, 7))).toEqual([]);
    expect(frames.pending).toBe(7);
  });

  test('throws the given error for a frame over the limit, as soon as its length is known', () => {
    const frames = new LengthPrefixedFrames(5, (len, limit) => new RangeError(`${len} > ${limit}`));
    expect(() => frames.push(frame(Buffer.alloc(6)).subarray(0, 4))).toThrow(new RangeError('6 > 5'));
  });
});
