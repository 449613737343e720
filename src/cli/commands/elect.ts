/** `elect`: observes (--listen) or joins a leader election (etcdctl's elect_command.go). */
import type { Command } from 'commander';
import type { Client } from '../../client/client.js';
import { Election, Session } from '../../client/concurrency.js';
import type { Printer } from '../printer/index.js';
import type { CliContext } from './global.js';
import { interruptFlag, parseIntArg, sleep, untilInterrupted } from './util.js';

/** Prints the leader each time it changes, until interrupted. */
async function observe(c: Client, printer: Printer, name: string): Promise<void> {
  let last = '';
  const interrupted = interruptFlag();
  while (!interrupted.stopped) {
    const leader = await Election.leader(c, name);
    const cur = leader ? `${leader.key.toString()}\n${leader.value.toString()}` : '';
    if (leader && cur && cur !== last) printer.electionLeader(leader);
    last = cur;
    await sleep(200);
  }
}

/** Campaigns with `proposal`, prints the leader once elected, and holds leadership until interrupted. */
async function campaign(c: Client, printer: Printer, name: string, proposal: string, ttl: number): Promise<void> {
  const session = await Session.create(c, { ttl });
  const election = new Election(session, name);
  try {
    await election.campaign(proposal);
    const leader = await Election.leader(c, name);
    if (leader) printer.electionLeader(leader);
    await untilInterrupted();
  } finally {
    await election.resign().catch(() => {});
    await session.close();
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('elect <election-name> [proposal]')
    .description('observes and participates in leader election')
    .option('-l, --listen', 'observation mode')
    .option('--ttl <seconds>', 'timeout for the session', parseIntArg('--ttl'), 10)
    .action(async (name: string, proposal: string | undefined, o: { listen?: boolean; ttl: number }) => {
      const c = ctx.client();
      if (o.listen) return observe(c, ctx.printer(), name);
      if (proposal === undefined) throw new Error('elect: a proposal is required unless --listen');
      await campaign(c, ctx.printer(), name, proposal, o.ttl);
    });
}
