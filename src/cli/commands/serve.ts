/** `serve`: runs one cluster member (qkv's own: etcdctl has no server). */
import type { Command } from 'commander';

interface ServeFlags {
  name?: string;
  config: string;
  dataDir?: string;
  clientUrl?: string;
  peerUrl?: string;
  logLevel: string;
  peerDial?: string;
  quotaBackendBytes?: string;
}

export function register(program: Command): void {
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
    .option(
      '--quota-backend-bytes <bytes>',
      "raise the NOSPACE alarm when the member's store would exceed this size (0: etcd's default 2 GiB; negative: no quota)",
      process.env['QKV_QUOTA_BACKEND_BYTES'],
    )
    .action(async (o: ServeFlags) => {
      if (!o.name) throw new Error('serve: --name (or QKV_NAME) is required');
      const { serveUntilSignalled } = await import('../../member_process.js');
      await serveUntilSignalled({
        configPath: o.config,
        name: o.name,
        logLevel: o.logLevel,
        ...(o.dataDir ? { dataDir: o.dataDir } : {}),
        ...(o.clientUrl ? { clientUrl: o.clientUrl } : {}),
        ...(o.peerUrl ? { peerUrl: o.peerUrl } : {}),
        ...(o.peerDial ? { peerDial: o.peerDial } : {}),
        ...(o.quotaBackendBytes !== undefined ? { quotaBackendBytes: o.quotaBackendBytes } : {}),
      });
    });
}
