/**
 * `qkv`: the command line, in the spirit of etcdctl (same commands, flags and output).
 *
 *   qkv put /crontab/jobs/job1 job1
 *   qkv get /crontab/jobs/ --prefix
 *   qkv watch /crontab/jobs/ --prefix
 *   qkv lease grant 10
 *   qkv cluster up --nodes 3
 *
 * This file is the program and its global flags; each command group is a file of `commands/`
 * (as etcdctl's ctlv3/command) and each output format a printer of `printer/`.
 */
import { BadArgsError, ExitCodeError } from './commands/util.js';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { Client } from '../client/client.js';
import { LoginError } from '../client/errors.js';
import type { CliContext, GlobalOptions } from './commands/global.js';
import { newPrinter, OUTPUT_FORMATS, type OutputFormat, type Printer } from './printer/index.js';
import * as put from './commands/put.js';
import * as get from './commands/get.js';
import * as del from './commands/del.js';
import * as txn from './commands/txn.js';
import * as compaction from './commands/compaction.js';
import * as watch from './commands/watch.js';
import * as lease from './commands/lease.js';
import * as lock from './commands/lock.js';
import * as elect from './commands/elect.js';
import * as member from './commands/member.js';
import * as endpoint from './commands/endpoint.js';
import * as auth from './commands/auth.js';
import * as ui from './commands/ui.js';
import * as serve from './commands/serve.js';
import * as cluster from './commands/cluster.js';
import * as snapshot from './commands/snapshot.js';

const DEFAULT_ENDPOINTS = '127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379';

/** The global flags as commander parses them. */
interface GlobalFlags {
  endpoints: string;
  writeOut: OutputFormat;
  hex?: boolean;
  commandTimeout: string;
  cacert?: string;
  cert?: string;
  key?: string;
  user?: string;
  password?: string;
}

/** The global flags, resolved and validated (a bad --command-timeout throws). */
export function resolveGlobalOptions(f: GlobalFlags): GlobalOptions {
  // As etcdctl: an endpoint without a scheme is https:// once any TLS flag is given.
  const secure = f.cacert !== undefined || f.cert !== undefined || f.key !== undefined;
  if ((f.cert === undefined) !== (f.key === undefined)) throw new BadArgsError('--cert and --key must be given together');
  return {
    endpoints: f.endpoints
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e.length > 0)
      .map((e) => (/^https?:\/\//.test(e) ? e : `${secure ? 'https' : 'http'}://${e}`)),
    commandTimeoutMs: parseDuration(f.commandTimeout),
    writeOut: f.writeOut,
    hex: !!f.hex,
    tls: {
      ...(f.cacert !== undefined ? { trustedCaFile: f.cacert } : {}),
      ...(f.cert !== undefined ? { certFile: f.cert } : {}),
      ...(f.key !== undefined ? { keyFile: f.key } : {}),
    },
    ...userOf(f),
  };
}

/** --user name:password, or --user name with --password (etcdctl would prompt: qkv asks for it). */
function userOf(f: GlobalFlags): { user?: { name: string; password: string } } {
  if (f.user === undefined) return {};
  const colon = f.user.indexOf(':');
  if (colon >= 0) {
    if (f.password !== undefined) throw new BadArgsError('--user with a password and --password cannot be given together');
    return { user: { name: f.user.slice(0, colon), password: f.user.slice(colon + 1) } };
  }
  if (f.password === undefined) throw new BadArgsError('--user without a password needs --password');
  return { user: { name: f.user, password: f.password } };
}

/** The commands' context: the global flags resolved once, on first use, and the client and printer made from them. */
function contextOf(program: Command): CliContext {
  let options: GlobalOptions | undefined;
  let client: Client | undefined;
  let printer: Printer | undefined;
  const ctx: CliContext = {
    options: () => (options ??= resolveGlobalOptions(program.opts<GlobalFlags>())),
    client: () => {
      const o = ctx.options();
      return (client ??= new Client({ endpoints: o.endpoints, timeoutMs: o.commandTimeoutMs, tls: o.tls, ...(o.user ? { user: o.user } : {}) }));
    },
    printer: () => {
      const o = ctx.options();
      return (printer ??= newPrinter(
        o.writeOut,
        { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) },
        o.hex,
      ));
    },
  };
  return ctx;
}

export function buildProgram(): Command {
  const program = new Command('qkv')
    .description('qkv: a Raft-replicated, etcd-style key-value store')
    .option('--endpoints <list>', 'comma-separated client endpoints', process.env['QKV_ENDPOINTS'] ?? DEFAULT_ENDPOINTS)
    .addOption(new Option('-w, --write-out <format>', 'output format').choices(OUTPUT_FORMATS).default('simple'))
    .option('--hex', 'print byte strings as hex')
    .option('--command-timeout <duration>', 'timeout for short commands', '5s')
    .option('--cacert <file>', 'verify the members of https:// endpoints with this CA bundle', process.env['QKV_CACERT'])
    .option('--cert <file>', 'identify this client with this certificate (https://)', process.env['QKV_CERT'])
    .option('--key <file>', "the client certificate's key", process.env['QKV_KEY'])
    .option('--user <username[:password]>', 'username[:password] for authentication')
    .option('--password <password>', 'password for authentication (with --user)')
    .showHelpAfterError();

  const ctx = contextOf(program);
  for (const group of [put, get, del, txn, compaction, watch, lease, lock, elect, member, endpoint, snapshot, auth, ui]) group.register(program, ctx);
  serve.register(program);
  cluster.register(program);
  return program;
}

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${JSON.stringify(s)} (e.g. 5s, 500ms)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    // etcdctl: bad arguments 128; a client that cannot be made (its --user refused) ExitBadConnection, 2.
    process.exitCode = err instanceof ExitCodeError ? err.exitCode : err instanceof LoginError ? 2 : 1;
  }
}

// Run as a program (`node dist/cli/main.js ...`), not only through bin/qkv.mjs.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) await main(process.argv);
