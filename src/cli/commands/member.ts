/** `member add|remove|update|promote|list` (etcdctl's member_command.go): ids in hex, as etcdctl takes and prints them. */
import type { Command } from 'commander';
import type { CliContext } from './global.js';
import { BadArgsError } from './util.js';

/** A member id argument as etcdctl parses it (strconv.ParseUint(arg, 16, 64)), as decimal digits. */
function parseMemberId(arg: string | undefined): string {
  if (arg === undefined) throw new BadArgsError('member ID is not provided');
  if (!/^[0-9a-fA-F]{1,16}$/.test(arg))
    throw new BadArgsError(`bad member ID arg (strconv.ParseUint: parsing ${JSON.stringify(arg)}: invalid syntax), expecting ID in Hex`);
  return BigInt(`0x${arg}`).toString();
}

/** --peer-urls as etcdctl checks it before sending (types.NewURLs): each a URL with a scheme etcd knows and host:port. */
function parsePeerUrls(v: string | undefined): string[] {
  if (!v) throw new BadArgsError('member peer urls not provided');
  return v.split(',').map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`URL scheme must be http, https, unix, or unixs: ${u}`);
    }
    if (!['http:', 'https:', 'unix:', 'unixs:'].includes(url.protocol)) throw new Error(`URL scheme must be http, https, unix, or unixs: ${u}`);
    if (!url.port) throw new Error(`URL address does not have the form "host:port": ${u}`);
    return u;
  });
}

export function register(program: Command, ctx: CliContext): void {
  const member = program.command('member').description('membership related commands');
  member
    .command('add [memberName]')
    .description('adds a member into the cluster')
    .option('--peer-urls <urls>', 'comma separated peer URLs for the new member')
    .option('--learner', 'indicates if the new member is raft learner')
    .action(async (name: string | undefined, o: { peerUrls?: string; learner?: boolean }) => {
      if (!name) throw new BadArgsError('member name not provided');
      const urls = parsePeerUrls(o.peerUrls);
      const c = ctx.client();
      const r = await c.memberAdd(urls, !!o.learner);
      // What to start the member with comes from a fresh list, as etcdctl's (the answer's may be
      // older if the request failed over).
      ctx.printer().memberAdd(r, name, await c.memberList());
    });
  member
    .command('remove [memberID]')
    .description('removes a member from the cluster')
    .action(async (arg: string | undefined) => {
      const id = parseMemberId(arg);
      ctx.printer().memberChanged('removed from', id, await ctx.client().memberRemove(id));
    });
  member
    .command('update [memberID]')
    .description('updates a member in the cluster')
    .option('--peer-urls <urls>', 'comma separated peer URLs for the updated member')
    .action(async (arg: string | undefined, o: { peerUrls?: string }) => {
      const id = parseMemberId(arg);
      const urls = parsePeerUrls(o.peerUrls);
      ctx.printer().memberChanged('updated in', id, await ctx.client().memberUpdate(id, urls));
    });
  member
    .command('promote [memberID]')
    .description('promotes a non-voting member in the cluster')
    .action(async (arg: string | undefined) => {
      const id = parseMemberId(arg);
      ctx.printer().memberChanged('promoted in', id, await ctx.client().memberPromote(id));
    });
  member
    .command('list')
    .description('lists all members in the cluster')
    .action(async () => ctx.printer().memberList(await ctx.client().memberList()));
}
