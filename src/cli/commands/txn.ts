/** `txn`: one transaction read from stdin in etcdctl's input format (etcdctl's txn_command.go). */
import type { Command } from 'commander';
import { parseTxn } from '../txn_parse.js';
import type { CliContext } from './global.js';
import { readStdin } from './util.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('txn')
    .description('txn processes all the requests in one transaction (read from stdin)')
    .option('-i, --interactive', 'prompt-free interactive mode: the same input format')
    .action(async () => {
      if (process.stdin.isTTY) {
        process.stderr.write('compares:\n(then a blank line, success requests, a blank line, failure requests; end with Ctrl-D)\n');
      }
      const req = parseTxn(await readStdin());
      const r = await ctx.client().txn(req);
      ctx.printer().txn(r);
    });
}
