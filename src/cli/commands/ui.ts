/** `ui`: prints the web console's URL on each endpoint (every member serves it at /ui/). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('ui')
    .description("prints the web console's URL on each endpoint (open one in a browser)")
    .action(() => {
      for (const e of ctx.options().endpoints) process.stdout.write(`${e.replace(/\/+$/, '')}/ui/\n`);
    });
}
