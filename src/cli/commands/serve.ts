/**
 * `serve`: runs one cluster member (qkv's own: etcdctl has no server). A member is given either
 * by its entry in cluster.config.json (--config, --name) or, as etcd starts one, by etcd's member
 * flags (--initial-cluster and the rest; each also a QKV_* environment variable, as etcd reads
 * ETCD_*). Any of the etcd member flags selects the second way; etcd's TLS flags (--cert-file
 * and the rest) go with either.
 */
import type { Command } from 'commander';
import { boolFlag, type MemberFlags, type TlsFlags } from '../../server/config.js';

interface ServeFlags extends MemberFlags, Omit<TlsFlags, 'clientCertAuth' | 'peerClientCertAuth'> {
  /** A bool flag as etcd's: alone, or =true / =false (or the variable's text). */
  clientCertAuth?: boolean | string;
  peerClientCertAuth?: boolean | string;
  config: string;
  clientUrl?: string;
  peerUrl?: string;
  logLevel: string;
  peerDial?: string;
  quotaBackendBytes?: string;
  diskReserveBytes?: string;
  uiWritable?: boolean | string;
}

/** etcd's member flags: the option, its QKV_* variable, and what it is. */
const ETCD_FLAGS: readonly { flag: string; key: keyof MemberFlags; help: string }[] = [
  { flag: 'listen-client-urls', key: 'listenClientUrls', help: 'URL to listen on for clients (default http://localhost:2379)' },
  { flag: 'advertise-client-urls', key: 'advertiseClientUrls', help: "the member's client URL as told to the cluster (default: the listen URL)" },
  { flag: 'listen-peer-urls', key: 'listenPeerUrls', help: 'URL to listen on for peers (default http://localhost:2380)' },
  { flag: 'initial-advertise-peer-urls', key: 'initialAdvertisePeerUrls', help: "the member's peer URL as told to the cluster (default: the listen URL)" },
  { flag: 'initial-cluster', key: 'initialCluster', help: 'the initial members: name=peerURL,... (default <name>=<peer URL>)' },
  { flag: 'initial-cluster-state', key: 'initialClusterState', help: 'new (bootstrap a cluster) or existing (join one; add the member first)' },
  { flag: 'initial-cluster-token', key: 'initialClusterToken', help: "the cluster's token (default etcd-cluster)" },
  { flag: 'heartbeat-interval', key: 'heartbeatInterval', help: 'ms between heartbeats (default 100)' },
  { flag: 'election-timeout', key: 'electionTimeout', help: 'ms before an election (default 1000)' },
  { flag: 'snapshot-count', key: 'snapshotCount', help: 'applied entries between snapshots' },
  { flag: 'max-request-bytes', key: 'maxRequestBytes', help: 'largest client request (default 1.5 MiB)' },
  { flag: 'auth-token-ttl', key: 'authTokenTtl', help: 'seconds a simple auth token lives unused (default 300)' },
  { flag: 'auth-token', key: 'authToken', help: 'simple (default) or jwt,pub-key=<file>,priv-key=<file>,sign-method=RS256,ttl=5m' },
];

/** etcd's TLS flags: with either way of giving the member (they select neither). */
const TLS_FILE_FLAGS: readonly {
  flag: string;
  key: 'certFile' | 'keyFile' | 'trustedCaFile' | 'peerCertFile' | 'peerKeyFile' | 'peerTrustedCaFile';
  help: string;
}[] = [
  { flag: 'cert-file', key: 'certFile', help: 'the client port certificate (PEM); needed for an https:// client URL' },
  { flag: 'key-file', key: 'keyFile', help: "the client port certificate's key" },
  { flag: 'trusted-ca-file', key: 'trustedCaFile', help: "CA that verifies clients' certificates (with --client-cert-auth) and other members' client ports" },
  { flag: 'peer-cert-file', key: 'peerCertFile', help: 'the peer port certificate (PEM), also shown when dialling peers; needed for an https:// peer URL' },
  { flag: 'peer-key-file', key: 'peerKeyFile', help: "the peer certificate's key" },
  { flag: 'peer-trusted-ca-file', key: 'peerTrustedCaFile', help: "CA that verifies the peers' certificates" },
];
const TLS_BOOL_FLAGS: readonly { flag: string; key: 'clientCertAuth' | 'peerClientCertAuth'; help: string }[] = [
  { flag: 'client-cert-auth', key: 'clientCertAuth', help: 'clients must show a certificate the trusted CA signed' },
  { flag: 'peer-client-cert-auth', key: 'peerClientCertAuth', help: 'peers must show a certificate the peer trusted CA signed' },
];

const envName = (flag: string): string => `QKV_${flag.toUpperCase().replaceAll('-', '_')}`;

export function register(program: Command): void {
  const serve = program
    .command('serve')
    .description("runs one cluster member (from cluster.config.json, or from etcd's member flags)")
    .option('--name <name>', 'member name', process.env['QKV_NAME'])
    .option('--config <file>', 'cluster config file', process.env['QKV_CONFIG'] ?? 'cluster.config.json')
    .option('--data-dir <dir>', 'data directory (with etcd flags: default <name>.etcd)', process.env['QKV_DATA_DIR'])
    .option('--client-url <url>', "override the member's client URL (config file)")
    .option('--peer-url <url>', "override the member's peer URL (config file)")
    .option('--log-level <level>', 'pino log level', process.env['QKV_LOG_LEVEL'] ?? 'info')
    .option(
      '--peer-dial <list>',
      'dial peers elsewhere: name=host:port or peerURL=host:port,..., or @file of such lines, re-read on each dial (fault-injection proxies)',
      process.env['QKV_PEER_DIAL'],
    )
    .option(
      '--quota-backend-bytes <bytes>',
      "raise the NOSPACE alarm when the member's store would exceed this size (0: etcd's default 2 GiB; negative: no quota)",
      process.env['QKV_QUOTA_BACKEND_BYTES'],
    )
    .option(
      '--disk-reserve-bytes <bytes>',
      "free bytes to keep on the data dir's filesystem: below, writes stop (NOSPACE) until space is freed (default 64 MiB; 0: off)",
      process.env['QKV_DISK_RESERVE_BYTES'],
    )
    .option('--ui-writable [bool]', 'the web console (/ui) offers put and delete (default: read-only) [QKV_UI_WRITABLE]', process.env['QKV_UI_WRITABLE']);
  for (const f of ETCD_FLAGS) serve.option(`--${f.flag} <value>`, `${f.help} [${envName(f.flag)}]`, process.env[envName(f.flag)]);
  for (const f of TLS_FILE_FLAGS) serve.option(`--${f.flag} <file>`, `${f.help} [${envName(f.flag)}]`, process.env[envName(f.flag)]);
  for (const f of TLS_BOOL_FLAGS) serve.option(`--${f.flag} [bool]`, `${f.help} [${envName(f.flag)}]`, process.env[envName(f.flag)]);
  serve.action(async (o: ServeFlags) => {
    const etcdStyle = ETCD_FLAGS.some((f) => o[f.key] !== undefined);
    const flags: MemberFlags = {};
    for (const f of ETCD_FLAGS) if (o[f.key] !== undefined) flags[f.key] = o[f.key];
    const tls: TlsFlags = {};
    for (const f of TLS_FILE_FLAGS) if (o[f.key] !== undefined) tls[f.key] = o[f.key];
    for (const f of TLS_BOOL_FLAGS) {
      const v = boolFlag(f.flag, o[f.key]);
      if (v !== undefined) tls[f.key] = v;
    }
    const { serveUntilSignalled } = await import('../../member_process.js');
    await serveUntilSignalled({
      configPath: o.config,
      logLevel: o.logLevel,
      ...(o.name ? { name: o.name } : {}),
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ...(o.clientUrl ? { clientUrl: o.clientUrl } : {}),
      ...(o.peerUrl ? { peerUrl: o.peerUrl } : {}),
      ...(o.peerDial ? { peerDial: o.peerDial } : {}),
      ...(etcdStyle ? { flags } : {}),
      ...(o.quotaBackendBytes !== undefined ? { quotaBackendBytes: o.quotaBackendBytes } : {}),
      ...(o.diskReserveBytes !== undefined ? { diskReserveBytes: o.diskReserveBytes } : {}),
      uiWritable: boolFlag('ui-writable', o.uiWritable) === true,
      tls,
    });
  });
}
