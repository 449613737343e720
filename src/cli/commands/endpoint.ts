/** `endpoint status|health|hashkv` (etcdctl's ep_command.go). */
import type { Command } from 'commander';
import type { Client } from '../../client/client.js';
import type { EndpointHealth, EndpointStatus } from '../printer/printer.js';
import type { CliContext } from './global.js';
import { parseIntArg } from './util.js';
import { fetchOver, TlsCredentials } from '../../tls.js';

/** Each endpoint's status as it answers; an endpoint that fails is reported on stderr (exit code 1) and skipped. */
async function* statuses(c: Client, endpoints: string[]): AsyncGenerator<EndpointStatus> {
  for (const endpoint of endpoints) {
    let status: Awaited<ReturnType<Client['status']>>;
    try {
      status = await c.status(endpoint);
    } catch (err) {
      process.stderr.write(`Failed to get the status of endpoint ${endpoint} (${(err as Error).message})\n`);
      process.exitCode = 1;
      continue;
    }
    yield { endpoint, status };
  }
}

/** One endpoint's /health, with the time it took. */
async function health(endpoint: string, timeoutMs: number, tls: TlsCredentials): Promise<EndpointHealth> {
  const started = performance.now();
  try {
    const res = await fetchOver(`${endpoint}/health`, { signal: AbortSignal.timeout(timeoutMs) }, tls);
    const body = (await res.json()) as { health?: string; reason?: string };
    const took = (performance.now() - started).toFixed(3);
    return body.health === 'true' ? { endpoint, health: true, took } : { endpoint, health: false, error: body.reason ?? 'unknown' };
  } catch (err) {
    return { endpoint, health: false, error: `failed to connect: ${(err as Error).message}` };
  }
}

export function register(program: Command, ctx: CliContext): void {
  const endpoint = program.command('endpoint').description('endpoint related commands');
  endpoint
    .command('status')
    .description('prints out the status of the endpoints')
    .option('--cluster', 'use all endpoints from the cluster member list')
    .action(async (o: { cluster?: boolean }) => {
      const c = ctx.client();
      let eps = ctx.options().endpoints;
      if (o.cluster) eps = (await c.memberList()).members.flatMap((m) => m.clientUrls);
      await ctx.printer().endpointStatus(statuses(c, eps));
    });
  endpoint
    .command('health')
    .description('checks the healthiness of endpoints')
    .action(async () => {
      const { endpoints, commandTimeoutMs, tls } = ctx.options();
      const credentials = new TlsCredentials(tls);
      for (const ep of endpoints) {
        const h = await health(ep, commandTimeoutMs, credentials);
        ctx.printer().endpointHealth(h);
        if (!h.health) process.exitCode = 1;
      }
    });
  endpoint
    .command('hashkv')
    .description('prints the KV history hash for each endpoint')
    .option('--rev <rev>', 'maximum revision to hash (0: the latest)', parseIntArg('--rev'), 0)
    .action(async (o: { rev: number }) => {
      const c = ctx.client();
      for (const ep of ctx.options().endpoints) ctx.printer().endpointHashKV(ep, await c.hashKV(ep, o.rev));
    });
}
