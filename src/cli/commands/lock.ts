/** `lock`: acquires a named lock, runs a command while holding it or holds it until interrupted (etcdctl's lock_command.go). */
import type { Command } from 'commander';
import { Mutex, Session } from '../../client/concurrency.js';
import type { CliContext } from './global.js';
import { parseIntArg, untilInterrupted } from './util.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('lock <lockname> [command...]')
    .description('acquires a named lock; runs the command while holding it, or holds it until interrupted')
    .option('--ttl <seconds>', 'timeout for the session', parseIntArg('--ttl'), 10)
    .action(async (name: string, command: string[], o: { ttl: number }) => {
      const session = await Session.create(ctx.client(), { ttl: o.ttl });
      const mutex = new Mutex(session, name);
      try {
        await mutex.lock();
        ctx.printer().lock(mutex.key);
        if (command.length > 0) {
          const { spawnSync } = await import('node:child_process');
          const r = spawnSync(command[0]!, command.slice(1), {
            stdio: 'inherit',
            env: { ...process.env, ETCD_LOCK_KEY: mutex.key.toString(), ETCD_LOCK_REV: String(mutex.revision) },
          });
          process.exitCode = r.status ?? 1;
        } else {
          await untilInterrupted();
        }
      } finally {
        await mutex.unlock().catch(() => {});
        await session.close();
      }
    });
}
