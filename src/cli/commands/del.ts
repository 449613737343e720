/** `del`: removes the specified key or range of keys (etcdctl's del_command.go). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';
import { rangeOptions } from './util.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('del <key> [range_end]')
    .description('removes the specified key or range of keys')
    .option('--prefix', 'delete keys with matching prefix')
    .option('--from-key', 'delete keys that are greater than or equal to the given key')
    .option('--prev-kv', 'return deleted key-value pairs')
    .action(async (key: string, rangeEnd: string | undefined, o: { prefix?: boolean; fromKey?: boolean; prevKv?: boolean }) => {
      const r = await ctx.client().delete(key, { ...rangeOptions(rangeEnd, o), ...(o.prevKv ? { prevKv: true } : {}) });
      ctx.printer().del(r);
    });
}
