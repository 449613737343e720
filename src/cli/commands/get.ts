/** `get`: gets the key or a range of keys (etcdctl's get_command.go). */
import { Option, type Command } from 'commander';
import type { GetOptions } from '../../client/client.js';
import type { CliContext } from './global.js';
import { parseIntArg, rangeOptions } from './util.js';

const SORT_TARGETS: Record<string, NonNullable<GetOptions['sortTarget']>> = {
  KEY: 'KEY',
  VERSION: 'VERSION',
  CREATE: 'CREATE',
  MODIFY: 'MOD',
  VALUE: 'VALUE',
};

interface GetFlags {
  prefix?: boolean;
  fromKey?: boolean;
  rev?: number;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  printValueOnly?: boolean;
  order?: 'ASCEND' | 'DESCEND';
  sortBy?: string;
  consistency?: 'l' | 's';
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('get <key> [range_end]')
    .description('gets the key or a range of keys')
    .option('--prefix', 'get keys with matching prefix')
    .option('--from-key', 'get keys that are greater than or equal to the given key')
    .option('--rev <rev>', 'the revision to read at', parseIntArg('--rev'))
    .option('--limit <n>', 'maximum number of results', parseIntArg('--limit'))
    .option('--keys-only', 'get only the keys')
    .option('--count-only', 'get only the count')
    .option('--print-value-only', 'only write values')
    .addOption(new Option('--order <order>', 'order of results').choices(['ASCEND', 'DESCEND']))
    .addOption(new Option('--sort-by <target>', 'sort target').choices(['CREATE', 'KEY', 'MODIFY', 'VALUE', 'VERSION']))
    .addOption(new Option('--consistency <c>', 'linearizable (l) or serializable (s)').choices(['l', 's']).default('l'))
    .action(async (key: string, rangeEnd: string | undefined, o: GetFlags) => {
      const opts: GetOptions = {
        ...rangeOptions(rangeEnd, o),
        ...(o.rev ? { revision: o.rev } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
        ...(o.keysOnly ? { keysOnly: true } : {}),
        ...(o.countOnly ? { countOnly: true } : {}),
        ...(o.consistency === 's' ? { serializable: true } : {}),
        ...(o.order ? { sortOrder: o.order } : {}),
        ...(o.sortBy ? { sortTarget: SORT_TARGETS[o.sortBy]! } : {}),
      };
      if (opts.sortTarget && !opts.sortOrder) opts.sortOrder = 'ASCEND';
      const r = await ctx.client().get(key, opts);
      ctx.printer().get(r, { countOnly: !!opts.countOnly, keysOnly: !!o.keysOnly, printValueOnly: !!o.printValueOnly });
    });
}
