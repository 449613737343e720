/**
 * Wall-clock jumps on members (fault_shim.ts: an LD_PRELOAD shim that offsets the real-time
 * clocks of one process, the monotonic clock untouched, as a step of the system clock does):
 * leases expire by the leader's monotonic clock only. A lease granted for 8 s outlives its
 * leader's clock jumping an hour ahead and the followers' an hour back, and still expires.
 *
 * Planted bug tried: the lessor's clock as Date.now() (src/lease/lessor.ts systemClock) expires
 * the lease, and deletes its key, at the leader's jump ahead.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { startFaultyCluster, type FaultyCluster, type MemberFaults } from './fault_shim.js';

let lab: FaultyCluster;
let cluster: LocalCluster;
let faults: Map<string, MemberFaults>;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function call<T>(name: string, route: string, body: object): Promise<T> {
  const res = await fetch(`${cluster.url(name)}${route}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

const keyExists = async (name: string, key: string): Promise<boolean> =>
  ((await call<{ count?: string }>(name, '/v3/kv/range', { key: b64(key) })).count ?? '0') !== '0';

beforeAll(async () => {
  lab = await startFaultyCluster(3);
  cluster = lab.cluster;
  faults = lab.faults;
}, 60_000);

afterAll(async () => {
  await lab?.destroy();
});

test("a lease outlives its leader's wall clock jumping an hour ahead and the followers' an hour back, and still expires", async () => {
  const leader = await cluster.waitForLeader();
  const followers = cluster.names.filter((n) => n !== leader);
  const { ID: id } = await call<{ ID: string }>(leader, '/v3/lease/grant', { TTL: 8 });
  await call(leader, '/v3/kv/put', { key: b64('leased'), value: b64('v'), lease: id });

  faults.get(leader)!.clockOffset(3600);
  for (const f of followers) faults.get(f)!.clockOffset(-3600);
  // Past the lessor's checks (every 500 ms) a few times over, well inside the TTL.
  await new Promise((r) => setTimeout(r, 2_000));
  expect(await keyExists(leader, 'leased')).toBe(true);
  const ttl = Number((await call<{ TTL: string }>(leader, '/v3/lease/timetolive', { ID: id })).TTL);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(8);
  // Nor does the jump back keep it forever: it expires, everywhere.
  await LocalCluster.until(async () => !(await keyExists(leader, 'leased')), 'the lease to expire', 30_000);
  for (const f of followers) expect(await keyExists(f, 'leased')).toBe(false);
  expect((await cluster.status(leader))?.leader?.name).toBe(leader);
  for (const name of cluster.names) faults.get(name)!.clockOffset(0);
}, 60_000);
