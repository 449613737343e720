/** `put`: puts the given key into the store (etcdctl's put_command.go). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';
import { parseLeaseId, readStdin } from './util.js';

interface PutFlags {
  lease?: number;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('put <key> [value]')
    .description('puts the given key into the store (value from stdin when omitted)')
    .option('--lease <id>', 'lease ID (in hexadecimal) to attach to the key', parseLeaseId)
    .option('--prev-kv', 'return the previous key-value pair before modification')
    .option('--ignore-value', 'update the key using its current value')
    .option('--ignore-lease', 'update the key using its current lease')
    .action(async (key: string, value: string | undefined, o: PutFlags) => {
      const v = value ?? (o.ignoreValue ? '' : await readStdin());
      const r = await ctx.client().put(key, v, {
        ...(o.lease ? { lease: o.lease } : {}),
        ...(o.prevKv ? { prevKv: true } : {}),
        ...(o.ignoreValue ? { ignoreValue: true } : {}),
        ...(o.ignoreLease ? { ignoreLease: true } : {}),
      });
      ctx.printer().put(r);
    });
}
