/**
 * Output of the CLI in etcdctl's formats: `simple` (default, human), `json` (the response with
 * bytes base64 and integers as JSON numbers, as `etcdctl -w json` prints it) and `table`.
 */
import { encodeMessage, type Schema } from '../api/codec.js';

export type OutputFormat = 'simple' | 'json' | 'table';

/** JSON with every all-digit string of an integer field printed as a bare number (exact, even past 2^53). */
export function etcdctlJson(obj: object, schema: Schema): string {
  return stringifyNumbers(encodeMessage(obj, schema), schema);
}

const INTEGER_FIELDS = /^(cluster_id|member_id|revision|raft_term|create_revision|mod_revision|version|lease|count|deleted|ID|TTL|grantedTTL|compact_revision|watch_id|dbSize|leader|raftIndex|raftTerm|raftAppliedIndex|dbSizeInUse|hash)$/;

function stringifyNumbers(v: unknown, schema: Schema, key?: string): string {
  if (Array.isArray(v)) return `[${v.map((x) => stringifyNumbers(x, schema, key)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}:${stringifyNumbers(x, schema, k)}`);
    return `{${parts.join(',')}}`;
  }
  if (typeof v === 'string' && key && INTEGER_FIELDS.test(key) && /^-?\d+$/.test(v)) return v;
  return JSON.stringify(v);
}

/** A plain text table with borders, as etcdctl -w table draws it. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const center = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const row = (cells: string[], align: (s: string, w: number) => string): string =>
    `|${cells.map((c, i) => ` ${align(c, widths[i]!)} `).join('|')}|`;
  const right = (s: string, w: number): string => s.padStart(w);
  return [line, row(headers, center), line, ...rows.map((r) => row(r, right)), line].join('\n');
}

/** Human-readable byte size, as etcdctl's endpoint status prints it (20 kB). */
export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : Math.round(v)} ${units[i]}`;
}
