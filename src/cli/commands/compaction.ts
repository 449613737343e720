/** `compaction`: compacts the event history up to a revision (etcdctl's compaction_command.go). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';
import { parseIntArg } from './util.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('compaction <revision>')
    .description('compacts the event history up to a revision')
    .option('--physical', 'wait for the compaction to physically remove the history')
    .action(async (rev: string, o: { physical?: boolean }) => {
      const revision = parseIntArg('revision')(rev);
      await ctx.client().compact(revision, !!o.physical);
      ctx.printer().compaction(revision);
    });
}
