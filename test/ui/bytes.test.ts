/** The web console's byte handling (src/ui/bytes.ts): display, paths, the key tree's segments, how values are shown. */
import { describe, expect, test } from 'vitest';
import { Buffer } from 'node:buffer';
import { childOf, displayBytes, HEX_SHOWN, hexDump, keyAfter, keyBytes, pathOf, prefixEnd, TEXT_SHOWN, textBytes, valueView } from '../../src/ui/bytes.js';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

describe('console bytes', () => {
  test('every byte survives a /v1 path: percent-encoded but unreserved characters and /', () => {
    const all = new Uint8Array(256).map((_, i) => i);
    const p = pathOf(all);
    expect(p).toMatch(/^[A-Za-z0-9\-._~/%]*$/);
    // Decoded as the server does (bytes, not UTF-8).
    const decoded = Buffer.from(
      p.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    );
    expect([...decoded]).toEqual([...all]);
    expect(pathOf(textBytes('a b/c?d#e'))).toBe('a%20b/c%3Fd%23e');
  });

  test('keys: text as is (control characters escaped), other bytes as \\xNN', () => {
    expect(displayBytes(textBytes('app/café'))).toBe('app/café');
    expect(displayBytes(textBytes('a\nb'))).toBe('a\\x0ab');
    expect(displayBytes(bytes('bin\xff\x00\\'))).toBe('bin\\xff\\x00\\x5c');
    expect(text(keyBytes({ key_base64: Buffer.from([0x61, 0xff]).toString('base64') }))).toBe('a\xff');
  });

  test('the tree: a key belongs to its next / segment under the prefix', () => {
    expect(childOf(bytes('app/'), bytes('app/x/y'))).toEqual({ bytes: bytes('app/x/'), folder: true });
    expect(childOf(bytes('app/'), bytes('app/x'))).toEqual({ bytes: bytes('app/x'), folder: false });
    expect(childOf(bytes(''), bytes('/abs'))).toEqual({ bytes: bytes('/'), folder: true });
    expect(childOf(bytes('app/'), bytes('app/'))).toEqual({ bytes: bytes('app/'), folder: false });
    expect(prefixEnd(bytes('a/'))).toEqual(bytes('a0'));
    expect(prefixEnd(bytes('a\xff\xff'))).toEqual(bytes('b'));
    expect(prefixEnd(bytes('\xff'))).toBeNull();
    expect(prefixEnd(bytes(''))).toBeNull();
    expect(keyAfter(bytes('k'))).toEqual(bytes('k\x00'));
  });

  test('values: JSON pretty, text as is, binary as hex, both bounded with a note', () => {
    expect(valueView({ value: '{"a":[1]}' })).toEqual({ kind: 'json', text: '{\n  "a": [\n    1\n  ]\n}', size: 9 });
    expect(valueView({ value: '{not json' })).toEqual({ kind: 'text', text: '{not json', size: 9 });
    const big = valueView({ value: 'é'.repeat(TEXT_SHOWN + 1) });
    expect(big.text.length).toBe(TEXT_SHOWN);
    expect(big.note).toBe(`truncated: showing the first 65,536 characters of ${(2 * (TEXT_SHOWN + 1)).toLocaleString('en-US')} bytes`);
    const bin = valueView({ value_base64: Buffer.alloc(HEX_SHOWN + 10, 0xab).toString('base64') });
    expect(bin.kind).toBe('hex');
    expect(bin.size).toBe(HEX_SHOWN + 10);
    expect(bin.text.split('\n')).toHaveLength(HEX_SHOWN / 16);
    expect(bin.note).toBe('binary value: showing the first 4,096 of 4,106 bytes as hex');
    expect(hexDump(bytes('0123456789abcdefXY\x00'))).toBe(
      `00000000  30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66  0123456789abcdef\n00000010  ${'58 59 00'.padEnd(47)}  XY.`,
    );
  });
});
