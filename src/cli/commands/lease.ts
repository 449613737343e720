/** `lease grant|revoke|timetolive|list|keep-alive` (etcdctl's lease_command.go). */
import type { Command } from 'commander';
import type { CliContext } from './global.js';
import { interruptFlag, parseIntArg, parseLeaseId, sleep } from './util.js';

export function register(program: Command, ctx: CliContext): void {
  const lease = program.command('lease').description('lease related commands');
  lease
    .command('grant <ttl>')
    .description('creates leases')
    .action(async (ttl: string) => ctx.printer().leaseGrant(await ctx.client().leaseGrant(parseIntArg('ttl')(ttl))));
  lease
    .command('revoke <leaseID>')
    .description('revokes leases')
    .action(async (id: string) => {
      const leaseId = parseLeaseId(id);
      await ctx.client().leaseRevoke(leaseId);
      ctx.printer().leaseRevoke(leaseId);
    });
  lease
    .command('timetolive <leaseID>')
    .description('get lease information')
    .option('--keys', 'get keys attached to this lease')
    .action(async (id: string, o: { keys?: boolean }) =>
      ctx.printer().leaseTimeToLive(await ctx.client().leaseTimeToLive(parseLeaseId(id), !!o.keys), !!o.keys),
    );
  lease
    .command('list')
    .description('list all active leases')
    .action(async () => ctx.printer().leaseList(await ctx.client().leases()));
  lease
    .command('keep-alive <leaseID>')
    .description('keeps leases alive (renew)')
    .option('--once', 'keep alive once, then exit')
    .action(async (id: string, o: { once?: boolean }) => {
      const leaseId = parseLeaseId(id);
      const c = ctx.client();
      const interrupted = interruptFlag();
      for (;;) {
        const r = await c.leaseKeepAliveOnce(leaseId);
        ctx.printer().leaseKeepAlive(leaseId, r);
        if (r.ttl <= 0) {
          process.exitCode = o.once ? 1 : 0;
          return;
        }
        if (o.once || interrupted.stopped) return;
        await sleep(Math.max(500, (r.ttl * 1000) / 3));
        if (interrupted.stopped) return;
      }
    });
}
