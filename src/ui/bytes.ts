/**
 * The web console's byte handling (keys and values are bytes, not text): decoding the /v1
 * API's text-or-base64 fields, escaping for display, percent-encoding into /v1 paths, the `/`
 * segments of the key tree, and how a value is shown (bounded: a large value is truncated, a
 * binary one is a hex dump of its start). Pure functions, without the DOM.
 */
import type { V1KeyValue } from '../api/v1.js';

/** Characters of text values shown at most; the rest is left out with a note. */
export const TEXT_SHOWN = 64 * 1024;
/** Bytes of a binary value shown as hex at most. */
export const HEX_SHOWN = 4 * 1024;

const SLASH = 0x2f;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function textBytes(s: string): Uint8Array {
  return utf8.encode(s);
}

function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A key's bytes from its /v1 field (`key`, or `key_base64` when not UTF-8). */
export function keyBytes(kv: Pick<V1KeyValue, 'key' | 'key_base64'>): Uint8Array {
  return kv.key !== undefined ? textBytes(kv.key) : base64Bytes(kv.key_base64 ?? '');
}

/** The bytes as text when they are valid UTF-8, else undefined. */
export function utf8Text(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}

/** Bytes for display: UTF-8 text as is (control characters escaped), other bytes as \xNN. */
export function displayBytes(b: Uint8Array): string {
  const text = utf8Text(b);
  const escaped = (x: number): string => `\\x${x.toString(16).padStart(2, '0')}`;
  let out = '';
  if (text !== undefined) {
    for (const c of text) {
      const x = c.charCodeAt(0);
      out += x < 0x20 || x === 0x7f ? escaped(x) : c;
    }
    return out;
  }
  for (const x of b) out += x >= 0x20 && x < 0x7f && x !== 0x5c ? String.fromCharCode(x) : escaped(x);
  return out;
}

/** The bytes percent-encoded for a /v1/kv/ or /v1/watch/ path (every byte but unreserved ones and '/'). */
export function pathOf(b: Uint8Array): string {
  let out = '';
  for (const x of b) {
    const unreserved =
      (x >= 0x30 && x <= 0x39) || (x >= 0x41 && x <= 0x5a) || (x >= 0x61 && x <= 0x7a) || x === 0x2d || x === 0x2e || x === 0x5f || x === 0x7e || x === SLASH;
    out += unreserved ? String.fromCharCode(x) : `%${x.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  if (b.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && startsWith(a, b);
}

/** The first key after every key with this prefix; null when there is none (empty or all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]! += 1;
      return end;
    }
  }
  return null;
}

/** The key just after `key`: key + 0x00. */
export function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

/** The tree's child of `prefix` that holds `key`: its next `/` segment (a folder, ending in '/'), or the key itself. */
export interface TreeChild {
  bytes: Uint8Array;
  folder: boolean;
}

export function childOf(prefix: Uint8Array, key: Uint8Array): TreeChild {
  const slash = key.indexOf(SLASH, prefix.length);
  if (slash < 0) return { bytes: key, folder: false };
  return { bytes: key.slice(0, slash + 1), folder: true };
}

export interface ValueView {
  kind: 'text' | 'json' | 'hex';
  text: string;
  /** The value's size in bytes. */
  size: number;
  /** Why not all of it is shown, when it is not. */
  note?: string;
}

const count = (n: number): string => n.toLocaleString('en-US');

/** How a value is shown: JSON pretty-printed, other text as is, binary as a hex dump; truncated beyond the limits. */
export function valueView(kv: Pick<V1KeyValue, 'value' | 'value_base64'>): ValueView {
  if (kv.value === undefined) {
    const bytes = base64Bytes(kv.value_base64 ?? '');
    const shown = bytes.subarray(0, HEX_SHOWN);
    const note =
      bytes.length > HEX_SHOWN
        ? `binary value: showing the first ${count(HEX_SHOWN)} of ${count(bytes.length)} bytes as hex`
        : 'binary value (not UTF-8), as hex';
    return { kind: 'hex', text: hexDump(shown), size: bytes.length, note };
  }
  const size = textBytes(kv.value).length;
  if (kv.value.length > TEXT_SHOWN) {
    return {
      kind: 'text',
      text: kv.value.slice(0, TEXT_SHOWN),
      size,
      note: `truncated: showing the first ${count(TEXT_SHOWN)} characters of ${count(size)} bytes`,
    };
  }
  const trimmed = kv.value.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return { kind: 'json', text: JSON.stringify(JSON.parse(kv.value), null, 2), size };
    } catch {
      // not JSON after all: shown as text
    }
  }
  return { kind: 'text', text: kv.value, size };
}

/** 16 bytes a line: offset, hex bytes, printable ASCII. */
export function hexDump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < b.length; off += 16) {
    const row = b.subarray(off, off + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
