/**
 * `ui`: prints the web console's URL on each endpoint (every member serves it at /ui/) and opens
 * the first in the system's browser (xdg-open, or macOS's open, when on the PATH), unless --no-open.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from './global.js';

/** The system's opener for URLs on the PATH, if any. */
function opener(): string | undefined {
  const names = process.platform === 'darwin' ? ['open'] : ['xdg-open'];
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('ui')
    .description("prints the web console's URL on each endpoint and opens the first in a browser")
    .option('--no-open', 'only print the URLs')
    .action((o: { open: boolean }) => {
      const urls = ctx.options().endpoints.map((e) => `${e.replace(/\/+$/, '')}/ui/`);
      for (const url of urls) process.stdout.write(`${url}\n`);
      if (!o.open || urls.length === 0) return;
      const file = opener();
      if (!file) {
        process.stderr.write('no xdg-open (or open) on the PATH: open the URL above in a browser\n');
        return;
      }
      // Detached: the browser outlives this command.
      const child = spawn(file, [urls[0]!], { detached: true, stdio: 'ignore' });
      child.on('error', (err) => process.stderr.write(`${path.basename(file)} failed: ${err.message}\n`));
      child.unref();
    });
}
