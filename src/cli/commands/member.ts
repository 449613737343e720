/** `member list` (etcdctl's member_command.go). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';

export function register(program: Command, ctx: CliContext): void {
  const member = program.command('member').description('membership related commands');
  member
    .command('list')
    .description('lists all members in the cluster')
    .action(async () => ctx.printer().memberList(await ctx.client().memberList()));
}
