/**
 * Runs every script in test/raft/testdata/*.txt (see interaction.ts) and fails at the first
 * command whose output differs from the expected one, with a line diff. QKV_REWRITE=1 rewrites
 * the expected outputs from the actual ones instead (review the change with git diff).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { firstMismatch, formatScript, parseScript, runScript } from './interaction.js';

const DIR = path.join(import.meta.dirname, 'testdata');
const rewrite = process.env['QKV_REWRITE'] === '1';
const scripts = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('interaction scripts (test/raft/testdata)', () => {
  test('there are scripts', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(4);
  });

  test('a wrong expectation is reported with the command, its line and a diff', () => {
    const script = [
      '# two nodes',
      'add-nodes 2',
      '----',
      '1: StateFollower Term:0 Vote:0 Commit:0 Applied:0 LastIndex:0 Lead:0',
      '2: StateLeader',
      '',
      'campaign 1',
      '----',
      'ok',
      '',
    ].join('\n');
    const parts = parseScript(script, 'inline.txt');
    expect(firstMismatch('inline.txt', parts, runScript(parts))).toBe(
      [
        'inline.txt:2: add-nodes 2',
        'output differs (- expected, + actual; QKV_REWRITE=1 rewrites the expected outputs):',
        '  1: StateFollower Term:0 Vote:0 Commit:0 Applied:0 LastIndex:0 Lead:0',
        '- 2: StateLeader',
        '+ 2: StateFollower Term:0 Vote:0 Commit:0 Applied:0 LastIndex:0 Lead:0',
      ].join('\n'),
    );
    // A rewrite puts the actual output in place and keeps everything else.
    const rewritten = formatScript(parts, runScript(parts));
    expect(rewritten).toBe(script.replace('2: StateLeader', '2: StateFollower Term:0 Vote:0 Commit:0 Applied:0 LastIndex:0 Lead:0'));
    expect(() => parseScript('campaign 1\nok\n', 'bad.txt')).toThrow('bad.txt:1');
  });

  test.each(scripts)('%s', (name) => {
    const file = path.join(DIR, name);
    const source = readFileSync(file, 'utf8');
    const parts = parseScript(source, name);
    const outputs = runScript(parts);
    if (rewrite) {
      writeFileSync(file, formatScript(parts, outputs));
      return;
    }
    const mismatch = firstMismatch(`testdata/${name}`, parts, outputs);
    if (mismatch) throw new Error(mismatch);
    // Whatever the stanzas say, the file is in canonical form (so a rewrite changes nothing).
    expect(formatScript(parts, outputs)).toBe(source);
  });
});
