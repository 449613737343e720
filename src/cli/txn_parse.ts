/**
 * The interactive txn input of `etcdctl txn`: compares, a blank line, success requests, a blank
 * line, failure requests. For example:
 *
 *   mod("key1") > "0"
 *
 *   put key1 "overwrote-key1"
 *
 *   put key1 "created-key1"
 */
import { Buffer } from 'node:buffer';
import type { Compare, RequestOp, TxnRequest } from '../api/kv.js';
import { op } from '../client/client.js';

export class TxnSyntaxError extends Error {
  readonly code = 'ERR_TXN_SYNTAX';
}

const TARGETS: Record<string, Compare['target']> = { value: 'VALUE', mod: 'MOD', create: 'CREATE', ver: 'VERSION', version: 'VERSION', lease: 'LEASE' };
const RESULTS: Record<string, Compare['result']> = { '=': 'EQUAL', '==': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' };

/** Splits a line into words, honouring double quotes and backslash escapes inside them. */
export function splitWords(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let word = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        word += line[i];
        i++;
      }
      if (line[i] !== '"') throw new TxnSyntaxError(`unterminated quote in: ${line}`);
      i++;
    } else {
      while (i < line.length && !/\s/.test(line[i]!)) word += line[i++];
    }
    out.push(word);
  }
  return out;
}

export function parseCompare(line: string): Compare {
  const m = /^\s*(\w+)\("((?:[^"\\]|\\.)*)"\)\s*(==|=|!=|<|>)\s*(.+?)\s*$/.exec(line);
  if (!m) throw new TxnSyntaxError(`malformed comparison: ${line}`);
  const target = TARGETS[m[1]!];
  if (!target) throw new TxnSyntaxError(`unknown comparison target ${JSON.stringify(m[1])} (value, mod, create, ver, lease)`);
  const result = RESULTS[m[3]!]!;
  const key = Buffer.from(m[2]!.replace(/\\(.)/g, '$1'));
  const rawWords = splitWords(m[4]!);
  if (rawWords.length !== 1) throw new TxnSyntaxError(`malformed comparison value: ${line}`);
  const raw = rawWords[0]!;
  if (target === 'VALUE') return { key, target, result, value: Buffer.from(raw) };
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new TxnSyntaxError(`comparison value must be an integer: ${line}`);
  const field = { VERSION: 'version', CREATE: 'createRevision', MOD: 'modRevision', LEASE: 'lease' }[target];
  return { key, target, result, [field]: n };
}

export function parseOp(line: string): RequestOp {
  const words = splitWords(line);
  const [cmd, ...rest] = words;
  const flags = rest.filter((w) => w.startsWith('--'));
  const args = rest.filter((w) => !w.startsWith('--'));
  const prefix = flags.includes('--prefix');
  switch (cmd) {
    case 'put':
      if (args.length !== 2) throw new TxnSyntaxError(`put takes a key and a value: ${line}`);
      return op.put(args[0]!, args[1]!);
    case 'get':
      if (args.length < 1 || args.length > 2) throw new TxnSyntaxError(`get takes a key and an optional range end: ${line}`);
      return op.get(args[0]!, { prefix, ...(args[1] ? { rangeEnd: args[1] } : {}) });
    case 'del':
    case 'delete':
      if (args.length < 1 || args.length > 2) throw new TxnSyntaxError(`del takes a key and an optional range end: ${line}`);
      return args[1] ? { requestDeleteRange: { key: Buffer.from(args[0]!), rangeEnd: Buffer.from(args[1]) } } : op.delete(args[0]!, { prefix });
    default:
      throw new TxnSyntaxError(`unknown request ${JSON.stringify(cmd)} (get, put, del)`);
  }
}

/** Parses the three blank-line separated sections. */
export function parseTxn(text: string): TxnRequest {
  const sections: string[][] = [[]];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      if (sections[sections.length - 1]!.length > 0 || sections.length < 3) sections.push([]);
      continue;
    }
    sections[sections.length - 1]!.push(line);
  }
  const [cmps = [], succ = [], fail = []] = sections.filter((_, i) => i < 3);
  return { compare: cmps.map(parseCompare), success: succ.map(parseOp), failure: fail.map(parseOp) };
}
