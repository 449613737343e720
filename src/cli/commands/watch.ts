/** `watch`: watches events on a key or prefix until interrupted (etcdctl's watch_command.go). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';
import { parseIntArg, rangeOptions, untilInterrupted } from './util.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('watch <key> [range_end]')
    .description('watches events stream on a key or prefix')
    .option('--prefix', 'watch on a prefix')
    .option('--rev <rev>', 'revision to start watching from', parseIntArg('--rev'))
    .option('--prev-kv', 'get the previous key-value pair before the event happens')
    .action(async (key: string, rangeEnd: string | undefined, o: { prefix?: boolean; rev?: number; prevKv?: boolean }) => {
      const w = ctx.client().watch(key, {
        ...rangeOptions(rangeEnd, o),
        ...(o.rev ? { startRevision: o.rev } : {}),
        ...(o.prevKv ? { prevKv: true } : {}),
      });
      void untilInterrupted().then(() => w.cancel());
      const printer = ctx.printer();
      for await (const resp of w) {
        if (!printer.watch(resp)) {
          process.exitCode = 1;
          break;
        }
      }
    });
}
