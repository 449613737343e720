/**
 * `cluster up`: a local cluster of member processes (qkv's own). The command only parses its
 * flags; the cluster itself is `../cluster.ts`, a library that tests and scripts use too.
 */
import type { Command } from 'commander';
import { parseIntArg } from './util.js';

export function register(program: Command): void {
  const cluster = program.command('cluster').description('local cluster commands');
  cluster
    .command('up')
    .description('starts a local cluster of member processes; Ctrl-C stops it')
    .option('--nodes <n>', 'number of members (3 or 5)', parseIntArg('--nodes'))
    .option('--config <file>', 'cluster config file', 'cluster.config.json')
    .option('--log-level <level>', 'member log level', 'info')
    .option('--tls', 'https:// URLs: certificates made into data/tls (test/tls/make-certs.sh), client certificates required, mutual TLS between members')
    .action(async (o: { nodes?: number; config: string; logLevel: string; tls?: boolean }) => {
      const { clusterUp } = await import('../cluster.js');
      await clusterUp({ config: o.config, logLevel: o.logLevel, ...(o.nodes ? { nodes: o.nodes } : {}), ...(o.tls ? { tls: true } : {}) });
    });
}
