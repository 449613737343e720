import { describe, expect, test } from 'vitest';
import { parseCompare, parseOp, parseTxn, splitWords, TxnSyntaxError } from '../../src/cli/txn_parse.js';
import { humanBytes } from '../../src/cli/printer/printer.js';
import { table } from '../../src/cli/printer/table.js';
import { parseDuration } from '../../src/cli/main.js';

describe("etcdctl's txn input", () => {
  test.each([
    ['value("k") = "v"', { target: 'VALUE', result: 'EQUAL', value: Buffer.from('v') }],
    ['mod("key1") > "0"', { target: 'MOD', result: 'GREATER', modRevision: 0 }],
    ['create("a b") != 3', { target: 'CREATE', result: 'NOT_EQUAL', createRevision: 3 }],
    ['ver("k") < "2"', { target: 'VERSION', result: 'LESS', version: 2 }],
    ['lease("k") = "0"', { target: 'LEASE', result: 'EQUAL', lease: 0 }],
  ])('compare %s', (line, want) => {
    expect(parseCompare(line)).toMatchObject(want);
  });

  test.each([['bogus("k") = "v"'], ['mod("k") > "x"'], ['value k = v']])('rejects %s', (line) => {
    expect(() => parseCompare(line)).toThrow(TxnSyntaxError);
  });

  test('requests, quoting and sections', () => {
    expect(splitWords('put k "a \\"quoted\\" value"')).toEqual(['put', 'k', 'a "quoted" value']);
    expect(parseOp('get k --prefix')).toMatchObject({ requestRange: { key: Buffer.from('k'), rangeEnd: Buffer.from('l') } });
    expect(() => parseOp('put onlykey')).toThrow(TxnSyntaxError);
    const t = parseTxn('mod("key1") > "0"\n\nput key1 "overwrote-key1"\n\nput key1 "created-key1"\nput key2 "some extra key"\n');
    expect(t.compare).toHaveLength(1);
    expect(t.success).toHaveLength(1);
    expect(t.failure).toHaveLength(2);
    const noCompares = parseTxn('\nput a b\n\n');
    expect(noCompares.compare).toHaveLength(0);
    expect(noCompares.success).toHaveLength(1);
  });
});

describe('output helpers', () => {
  test('sizes and durations', () => {
    expect(humanBytes(0)).toBe('0 B');
    expect(humanBytes(20480)).toBe('20 kB');
    // go-humanize's Bytes, as etcdctl prints sizes: one decimal below 10, %.0f rounding half to even.
    expect([5, 512, 4096, 10_500, 11_500, 102_400, 3_250_000].map(humanBytes)).toEqual(['5 B', '512 B', '4.1 kB', '10 kB', '12 kB', '102 kB', '3.3 MB']);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/bad duration/);
  });
  test('tables are aligned like etcdctl -w table', () => {
    expect(table(['A', 'LONG'], [['x', 'y']]).split('\n')).toEqual(['+---+------+', '| A | LONG |', '+---+------+', '| x |    y |', '+---+------+']);
  });
});
