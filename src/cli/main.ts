/**
 * `qkv`: the command line, in the spirit of etcdctl (same commands, flags and output).
 *
 *   qkv put /crontab/jobs/job1 job1
 *   qkv get /crontab/jobs/ --prefix
 *   qkv watch /crontab/jobs/ --prefix
 *   qkv lease grant 10
 *   qkv cluster up --nodes 3
 */
import { Buffer } from 'node:buffer';
import { Command, Option } from 'commander';
import { Client, type GetOptions } from '../client/client.js';
import { Election, Mutex, Session, leaseHex } from '../client/concurrency.js';
import * as S from '../api/schemas.js';
import type { KeyValue, ResponseOp, TxnResponse } from '../api/kv.js';
import { etcdctlJson, humanBytes, table, type OutputFormat } from './format.js';
import { parseTxn } from './txn_parse.js';

const DEFAULT_ENDPOINTS = '127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379';

interface GlobalOptions {
  endpoints: string;
  writeOut: OutputFormat;
  hex?: boolean;
  commandTimeout: string;
}

function endpointsOf(g: GlobalOptions): string[] {
  return g.endpoints
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map((e) => (e.startsWith('http://') ? e : `http://${e}`));
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function bytes(b: Buffer, g: GlobalOptions): string {
  return g.hex ? b.toString('hex') : b.toString();
}

function printKvs(kvs: KeyValue[], g: GlobalOptions, opts: { keysOnly?: boolean; printValueOnly?: boolean } = {}): void {
  for (const kv of kvs) {
    if (!opts.printValueOnly) out(bytes(kv.key, g));
    if (opts.keysOnly) {
      out('');
      continue;
    }
    out(bytes(kv.value, g));
  }
}

function printResponseOp(r: ResponseOp, g: GlobalOptions): void {
  if ('responsePut' in r) out('OK');
  else if ('responseRange' in r) printKvs(r.responseRange.kvs, g);
  else if ('responseDeleteRange' in r) out(String(r.responseDeleteRange.deleted));
  else printTxn(r.responseTxn, g);
}

function printTxn(t: TxnResponse, g: GlobalOptions): void {
  out(t.succeeded ? 'SUCCESS' : 'FAILURE');
  for (const r of t.responses) {
    out('');
    printResponseOp(r, g);
  }
}

const SORT_TARGETS: Record<string, NonNullable<GetOptions['sortTarget']>> = {
  KEY: 'KEY',
  VERSION: 'VERSION',
  CREATE: 'CREATE',
  MODIFY: 'MOD',
  VALUE: 'VALUE',
};

function parseIntArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
    return n;
  };
}

function parseLeaseId(v: string): number {
  if (!/^[0-9a-fA-F]+$/.test(v)) throw new Error(`bad lease ID ${JSON.stringify(v)}: expected hexadecimal`);
  const n = parseInt(v, 16);
  if (!Number.isSafeInteger(n)) throw new Error(`lease ID ${v} is out of range`);
  return n;
}

/** Reads all of stdin (for `txn`). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Resolves when the process is asked to stop. */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

export function buildProgram(): Command {
  const program = new Command('qkv')
    .description('qkv: a Raft-replicated, etcd-style key-value store')
    .option('--endpoints <list>', 'comma-separated client endpoints', process.env['QKV_ENDPOINTS'] ?? DEFAULT_ENDPOINTS)
    .addOption(new Option('-w, --write-out <format>', 'output format').choices(['simple', 'json', 'table']).default('simple'))
    .option('--hex', 'print byte strings as hex')
    .option('--command-timeout <duration>', 'timeout for short commands', '5s')
    .showHelpAfterError();

  const g = (): GlobalOptions => program.opts<GlobalOptions>();
  const client = (): Client => new Client({ endpoints: endpointsOf(g()), timeoutMs: parseDuration(g().commandTimeout) });

  program
    .command('put <key> [value]')
    .description('puts the given key into the store (value from stdin when omitted)')
    .option('--lease <id>', 'lease ID (in hexadecimal) to attach to the key', parseLeaseId)
    .option('--prev-kv', 'return the previous key-value pair before modification')
    .option('--ignore-value', 'update the key using its current value')
    .option('--ignore-lease', 'update the key using its current lease')
    .action(async (key: string, value: string | undefined, o: { lease?: number; prevKv?: boolean; ignoreValue?: boolean; ignoreLease?: boolean }) => {
      const v = value ?? (o.ignoreValue ? '' : await readStdin());
      const r = await client().put(key, v, {
        ...(o.lease ? { lease: o.lease } : {}),
        ...(o.prevKv ? { prevKv: true } : {}),
        ...(o.ignoreValue ? { ignoreValue: true } : {}),
        ...(o.ignoreLease ? { ignoreLease: true } : {}),
      });
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.PutResponse));
      out('OK');
      if (r.prevKv) printKvs([r.prevKv], g());
    });

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
    .action(async (key: string, rangeEnd: string | undefined, o: Record<string, string | number | boolean | undefined>) => {
      const opts: GetOptions = {
        ...(o['prefix'] ? { prefix: true } : {}),
        ...(o['fromKey'] ? { fromKey: true } : {}),
        ...(rangeEnd ? { rangeEnd } : {}),
        ...(o['rev'] ? { revision: o['rev'] as number } : {}),
        ...(o['limit'] ? { limit: o['limit'] as number } : {}),
        ...(o['keysOnly'] ? { keysOnly: true } : {}),
        ...(o['countOnly'] ? { countOnly: true } : {}),
        ...(o['consistency'] === 's' ? { serializable: true } : {}),
        ...(o['order'] ? { sortOrder: o['order'] as 'ASCEND' | 'DESCEND' } : {}),
        ...(o['sortBy'] ? { sortTarget: SORT_TARGETS[o['sortBy'] as string]! } : {}),
      };
      if (opts.sortTarget && !opts.sortOrder) opts.sortOrder = 'ASCEND';
      const r = await client().get(key, opts);
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.RangeResponse));
      if (opts.countOnly) return out(String(r.count));
      printKvs(r.kvs, g(), { keysOnly: !!o['keysOnly'], printValueOnly: !!o['printValueOnly'] });
    });

  program
    .command('del <key> [range_end]')
    .description('removes the specified key or range of keys')
    .option('--prefix', 'delete keys with matching prefix')
    .option('--from-key', 'delete keys that are greater than or equal to the given key')
    .option('--prev-kv', 'return deleted key-value pairs')
    .action(async (key: string, rangeEnd: string | undefined, o: { prefix?: boolean; fromKey?: boolean; prevKv?: boolean }) => {
      const r = await client().delete(key, {
        ...(o.prefix ? { prefix: true } : {}),
        ...(o.fromKey ? { fromKey: true } : {}),
        ...(rangeEnd ? { rangeEnd } : {}),
        ...(o.prevKv ? { prevKv: true } : {}),
      });
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.DeleteRangeResponse));
      out(String(r.deleted));
      printKvs(r.prevKvs, g());
    });

  program
    .command('txn')
    .description('txn processes all the requests in one transaction (read from stdin)')
    .option('-i, --interactive', 'prompt-free interactive mode: the same input format')
    .action(async () => {
      if (process.stdin.isTTY) {
        process.stderr.write('compares:\n(then a blank line, success requests, a blank line, failure requests; end with Ctrl-D)\n');
      }
      const req = parseTxn(await readStdin());
      const r = await client().txn(req);
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.TxnResponse));
      printTxn(r, g());
    });

  program
    .command('compaction <revision>')
    .description('compacts the event history up to a revision')
    .option('--physical', 'wait for the compaction to physically remove the history')
    .action(async (rev: string, o: { physical?: boolean }) => {
      const revision = parseIntArg('revision')(rev);
      await client().compact(revision, !!o.physical);
      out(`compacted revision ${revision}`);
    });

  program
    .command('watch <key> [range_end]')
    .description('watches events stream on a key or prefix')
    .option('--prefix', 'watch on a prefix')
    .option('--rev <rev>', 'revision to start watching from', parseIntArg('--rev'))
    .option('--prev-kv', 'get the previous key-value pair before the event happens')
    .action(async (key: string, rangeEnd: string | undefined, o: { prefix?: boolean; rev?: number; prevKv?: boolean }) => {
      const w = client().watch(key, {
        ...(o.prefix ? { prefix: true } : {}),
        ...(rangeEnd ? { rangeEnd } : {}),
        ...(o.rev ? { startRevision: o.rev } : {}),
        ...(o.prevKv ? { prevKv: true } : {}),
      });
      const stop = untilInterrupted().then(() => w.cancel());
      for await (const resp of w) {
        if (g().writeOut === 'json') {
          out(etcdctlJson(resp, S.WatchResponse));
          continue;
        }
        if (resp.canceled) {
          process.stderr.write(`watch was canceled (${resp.cancelReason || `compacted at ${resp.compactRevision}`})\n`);
          process.exitCode = 1;
          break;
        }
        for (const e of resp.events) {
          out(e.type);
          if (e.prevKv) printKvs([e.prevKv], g());
          out(bytes(e.kv.key, g()));
          out(bytes(e.kv.value, g()));
        }
      }
      void stop;
    });

  const lease = program.command('lease').description('lease related commands');
  lease
    .command('grant <ttl>')
    .description('creates leases')
    .action(async (ttl: string) => {
      const r = await client().leaseGrant(parseIntArg('ttl')(ttl));
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.LeaseGrantResponse));
      out(`lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)`);
    });
  lease
    .command('revoke <leaseID>')
    .description('revokes leases')
    .action(async (id: string) => {
      const leaseId = parseLeaseId(id);
      await client().leaseRevoke(leaseId);
      out(`lease ${leaseHex(leaseId)} revoked`);
    });
  lease
    .command('timetolive <leaseID>')
    .description('get lease information')
    .option('--keys', 'get keys attached to this lease')
    .action(async (id: string, o: { keys?: boolean }) => {
      const r = await client().leaseTimeToLive(parseLeaseId(id), !!o.keys);
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.LeaseTimeToLiveResponse));
      if (r.ttl === -1) return out(`lease ${leaseHex(r.id)} already expired`);
      let line = `lease ${leaseHex(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`;
      if (o.keys) line += `, attached keys([${r.keys.map((k) => bytes(k, g())).join(' ')}])`;
      out(line);
    });
  lease
    .command('list')
    .description('list all active leases')
    .action(async () => {
      const r = await client().leases();
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.LeaseLeasesResponse));
      out(`found ${r.leases.length} leases`);
      for (const l of r.leases) out(leaseHex(l.id));
    });
  lease
    .command('keep-alive <leaseID>')
    .description('keeps leases alive (renew)')
    .option('--once', 'keep alive once, then exit')
    .action(async (id: string, o: { once?: boolean }) => {
      const leaseId = parseLeaseId(id);
      const c = client();
      let stopped = false;
      void untilInterrupted().then(() => (stopped = true));
      for (;;) {
        const r = await c.leaseKeepAliveOnce(leaseId);
        if (r.ttl <= 0) {
          out(`lease ${leaseHex(leaseId)} expired or revoked.`);
          process.exitCode = o.once ? 1 : 0;
          return;
        }
        out(`lease ${leaseHex(leaseId)} keepalived with TTL(${r.ttl})`);
        if (o.once || stopped) return;
        await new Promise((res) => setTimeout(res, Math.max(500, (r.ttl * 1000) / 3)));
        if (stopped) return;
      }
    });

  program
    .command('lock <lockname> [command...]')
    .description('acquires a named lock; runs the command while holding it, or holds it until interrupted')
    .option('--ttl <seconds>', 'timeout for the session', parseIntArg('--ttl'), 10)
    .action(async (name: string, command: string[], o: { ttl: number }) => {
      const session = await Session.create(client(), { ttl: o.ttl });
      const mutex = new Mutex(session, name);
      try {
        await mutex.lock();
        out(mutex.key.toString());
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

  program
    .command('elect <election-name> [proposal]')
    .description('observes and participates in leader election')
    .option('-l, --listen', 'observation mode')
    .option('--ttl <seconds>', 'timeout for the session', parseIntArg('--ttl'), 10)
    .action(async (name: string, proposal: string | undefined, o: { listen?: boolean; ttl: number }) => {
      const c = client();
      if (o.listen) {
        let last = '';
        const stop = untilInterrupted();
        let stopped = false;
        void stop.then(() => (stopped = true));
        while (!stopped) {
          const leader = await Election.leader(c, name);
          const cur = leader ? `${leader.key.toString()}\n${leader.value.toString()}` : '';
          if (cur && cur !== last) out(cur);
          last = cur;
          await new Promise((r) => setTimeout(r, 200));
        }
        return;
      }
      if (proposal === undefined) throw new Error('elect: a proposal is required unless --listen');
      const session = await Session.create(c, { ttl: o.ttl });
      const election = new Election(session, name);
      try {
        await election.campaign(proposal);
        const leader = await Election.leader(c, name);
        if (leader) out(`${leader.key.toString()}\n${leader.value.toString()}`);
        await untilInterrupted();
      } finally {
        await election.resign().catch(() => {});
        await session.close();
      }
    });

  const member = program.command('member').description('membership related commands');
  member
    .command('list')
    .description('lists all members in the cluster')
    .action(async () => {
      const r = await client().memberList();
      if (g().writeOut === 'json') return out(etcdctlJson(r, S.MemberListResponse));
      const rows = r.members.map((m) => [BigInt(m.id).toString(16), 'started', m.name, m.peerUrls.join(','), m.clientUrls.join(','), String(!!m.isLearner)]);
      if (g().writeOut === 'table') return out(table(['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'], rows));
      for (const row of rows) out(row.join(', '));
    });

  const endpoint = program.command('endpoint').description('endpoint related commands');
  endpoint
    .command('status')
    .description('prints out the status of the endpoints')
    .option('--cluster', 'use all endpoints from the cluster member list')
    .action(async (o: { cluster?: boolean }) => {
      const c = client();
      let eps = endpointsOf(g());
      if (o.cluster) eps = (await c.memberList()).members.flatMap((m) => m.clientUrls);
      const rows: string[][] = [];
      for (const ep of eps) {
        try {
          const s = await c.status(ep);
          if (g().writeOut === 'json') {
            out(JSON.stringify({ Endpoint: ep.replace(/^http:\/\//, ''), Status: JSON.parse(etcdctlJson(s, S.StatusResponse)) }));
            continue;
          }
          rows.push([
            ep.replace(/^http:\/\//, ''),
            BigInt(s.header.memberId).toString(16),
            s.version,
            humanBytes(s.dbSize),
            String(s.leader === s.header.memberId),
            String(!!s.isLearner),
            String(s.raftTerm),
            String(s.raftIndex),
            String(s.raftAppliedIndex),
            s.errors.join(', '),
          ]);
        } catch (err) {
          process.stderr.write(`Failed to get the status of endpoint ${ep} (${(err as Error).message})\n`);
          process.exitCode = 1;
        }
      }
      if (g().writeOut === 'json') return;
      const headers = ['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS'];
      if (g().writeOut === 'table') return out(table(headers, rows));
      for (const r of rows) out(`${r.join(', ')}`);
    });
  endpoint
    .command('health')
    .description('checks the healthiness of endpoints')
    .action(async () => {
      for (const ep of endpointsOf(g())) {
        const started = performance.now();
        try {
          const res = await fetch(`${ep}/health`, { signal: AbortSignal.timeout(parseDuration(g().commandTimeout)) });
          const body = (await res.json()) as { health?: string; reason?: string };
          const took = (performance.now() - started).toFixed(3);
          if (body.health === 'true') out(`${ep.replace(/^http:\/\//, '')} is healthy: successfully committed proposal: took = ${took}ms`);
          else {
            out(`${ep.replace(/^http:\/\//, '')} is unhealthy: ${body.reason ?? 'unknown'}`);
            process.exitCode = 1;
          }
        } catch (err) {
          out(`${ep.replace(/^http:\/\//, '')} is unhealthy: failed to connect: ${(err as Error).message}`);
          process.exitCode = 1;
        }
      }
    });
  endpoint
    .command('hashkv')
    .description('prints the KV history hash for each endpoint')
    .option('--rev <rev>', 'maximum revision to hash (0: the latest)', parseIntArg('--rev'), 0)
    .action(async (o: { rev: number }) => {
      const c = client();
      for (const ep of endpointsOf(g())) {
        const h = await c.hashKV(ep, o.rev);
        if (g().writeOut === 'json') out(JSON.stringify({ Endpoint: ep.replace(/^http:\/\//, ''), HashKV: JSON.parse(etcdctlJson(h, S.HashKVResponse)) }));
        else out(`${ep.replace(/^http:\/\//, '')}, ${h.hash}`);
      }
    });

  program
    .command('serve')
    .description('runs one cluster member (see cluster.config.json)')
    .option('--name <name>', 'member name in the config', process.env['QKV_NAME'])
    .option('--config <file>', 'cluster config file', process.env['QKV_CONFIG'] ?? 'cluster.config.json')
    .option('--data-dir <dir>', 'override the member data directory', process.env['QKV_DATA_DIR'])
    .option('--client-url <url>', "override the member's client URL")
    .option('--peer-url <url>', "override the member's peer URL")
    .option('--log-level <level>', 'pino log level', process.env['QKV_LOG_LEVEL'] ?? 'info')
    .option('--peer-dial <list>', 'dial peers elsewhere: id=host:port,... (fault-injection proxies)', process.env['QKV_PEER_DIAL'])
    .action(async (o: { name?: string; config: string; dataDir?: string; clientUrl?: string; peerUrl?: string; logLevel: string; peerDial?: string }) => {
      if (!o.name) throw new Error('serve: --name (or QKV_NAME) is required');
      const { serveUntilSignalled } = await import('../member_process.js');
      await serveUntilSignalled({
        configPath: o.config,
        name: o.name,
        logLevel: o.logLevel,
        ...(o.dataDir ? { dataDir: o.dataDir } : {}),
        ...(o.clientUrl ? { clientUrl: o.clientUrl } : {}),
        ...(o.peerUrl ? { peerUrl: o.peerUrl } : {}),
        ...(o.peerDial ? { peerDial: o.peerDial } : {}),
      });
    });

  const cluster = program.command('cluster').description('local cluster commands');
  cluster
    .command('up')
    .description('starts a local cluster of member processes; Ctrl-C stops it')
    .option('--nodes <n>', 'number of members (3 or 5)', parseIntArg('--nodes'))
    .option('--config <file>', 'cluster config file', 'cluster.config.json')
    .option('--log-level <level>', 'member log level', 'info')
    .action(async (o: { nodes?: number; config: string; logLevel: string }) => {
      const { clusterUp } = await import('./cluster.js');
      await clusterUp({ config: o.config, logLevel: o.logLevel, ...(o.nodes ? { nodes: o.nodes } : {}) });
    });

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
    process.exitCode = 1;
  }
}
