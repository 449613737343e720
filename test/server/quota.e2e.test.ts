/**
 * The space quota end to end, with the real etcdctl: etcd's documented maintenance recipe
 * (fill the store past --quota-backend-bytes, see NOSPACE raised, keep reading and deleting,
 * compact, defragment, disarm, write again) on a 3-member qkv cluster and on a real etcd 3.4 with
 * the same small quota, step by step the same outcomes. And qkv's defragment really gives space
 * back on every member.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { etcdctl, hostOf, RealEtcd } from '../grpc/helpers.js';

const QUOTA = 2 * 1024 * 1024;
/** Incompressible, so the stores grow by about this much per put (LevelDB snappy-compresses). */
const VALUE = randomBytes(128 * 1024);
const NO_SPACE = 'Error: etcdserver: mvcc: database space exceeded';

/** The lines of etcdctl's stderr that are its error (not the client's retry log). */
const errorLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('Error:'));

interface EndpointStatus {
  /** As text: etcd's member ids do not fit a JS number. */
  memberId: string;
  revision: number;
  dbSize: number;
  dbSizeInUse: number;
  errors: string[];
}

/** `endpoint status -w json` of one endpoint. */
async function status(ep: string): Promise<EndpointStatus> {
  const r = await etcdctl(ep, ['endpoint', 'status', '-w', 'json']);
  expect(r.code, r.stderr).toBe(0);
  const s = (JSON.parse(r.stdout) as { Status: { header: { revision: number }; dbSize: number; dbSizeInUse: number; errors?: string[] } }[])[0]!.Status;
  const memberId = /"member_id":(\d+)/.exec(r.stdout)![1]!;
  return { memberId, revision: s.header.revision, dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse, errors: s.errors ?? [] };
}

describe('NOSPACE: the quota recipe with etcdctl on qkv and on etcd', () => {
  let cluster: LocalCluster;
  let etcd: RealEtcd;
  let follower: string;

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3, quotaBackendBytes: QUOTA });
    cluster.startAll();
    let leader: string;
    [leader, etcd] = await Promise.all([cluster.waitForLeader(), RealEtcd.start([`--quota-backend-bytes=${QUOTA}`])]);
    follower = cluster.names.find((n) => n !== leader)!;
  });

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.stop();
  });

  test('fill, NOSPACE, reads and deletes go on, compact + defrag + disarm, writes again', async () => {
    /** The recipe through one endpoint; member ids, revisions and URLs in what it returns are made alike. */
    const recipe = async (ep: string): Promise<{ steps: Record<string, unknown>; sizes: { full: EndpointStatus; defragmented: EndpointStatus } }> => {
      const steps: Record<string, unknown> = {};
      const put = await etcdctl(ep, ['put', '/victim', 'v']);
      steps['put before'] = [put.code, put.stdout];
      let puts = 0;
      let refused = { code: 0 as number | null, stderr: '' };
      while (puts < 200) {
        const r = await etcdctl(ep, ['put', 'key'], { input: VALUE });
        if (r.code !== 0) {
          refused = r;
          break;
        }
        puts++;
      }
      steps['fill: refused'] = [refused.code, errorLines(refused.stderr)];
      steps['fill: some puts went in first'] = puts > 5;
      const full = await status(ep);
      const self = (text: string): string => text.replaceAll(`memberID:${full.memberId} `, 'memberID:<self> ');
      steps['status: errors'] = full.errors.map(self);
      steps['status: the quota is passed'] = full.dbSize + 256 + 3 + VALUE.length >= QUOTA;
      steps['status: in use within the size'] = full.dbSizeInUse > 0 && full.dbSizeInUse <= full.dbSize;
      const list = await etcdctl(ep, ['alarm', 'list']);
      steps['alarm list'] = [list.code, self(list.stdout)];
      const get = await etcdctl(ep, ['get', '/victim']);
      steps['get'] = [get.code, get.stdout];
      const del = await etcdctl(ep, ['del', '/victim']);
      steps['del'] = [del.code, del.stdout];
      const small = await etcdctl(ep, ['put', 'small', 'x']);
      steps['put small: refused'] = [small.code, errorLines(small.stderr)];
      const lease = await etcdctl(ep, ['lease', 'grant', '60']);
      steps['lease grant: refused'] = [lease.code, errorLines(lease.stderr)];
      const compact = await etcdctl(ep, ['compact', String(full.revision)]);
      steps['compact'] = [compact.code, compact.stdout.replace(String(full.revision), '<rev>')];
      const defrag = await etcdctl(ep, ['defrag', '--cluster']);
      steps['defrag --cluster'] = [
        defrag.code,
        [
          ...new Set(
            defrag.stdout
              .trim()
              .split('\n')
              .map((l) => l.replace(/\[http:\/\/127\.0\.0\.1:\d+\]$/, '[<url>]')),
          ),
        ],
      ];
      const defragmented = await status(ep);
      steps['defrag: the size fell below half'] = defragmented.dbSize < full.dbSize / 2;
      steps['defrag: the alarm stays'] = defragmented.errors.map(self);
      const still = await etcdctl(ep, ['put', 'small', 'x']);
      steps['put before disarm: refused'] = [still.code, errorLines(still.stderr)];
      const disarm = await etcdctl(ep, ['alarm', 'disarm']);
      steps['alarm disarm'] = [disarm.code, self(disarm.stdout)];
      const after = await etcdctl(ep, ['alarm', 'list']);
      steps['alarm list after'] = [after.code, after.stdout];
      const again = await etcdctl(ep, ['put', 'newkey', '123']);
      steps['put after disarm'] = [again.code, again.stdout];
      const read = await etcdctl(ep, ['get', 'newkey', '--print-value-only']);
      steps['get after disarm'] = [read.code, read.stdout];
      steps['status after: no errors'] = (await status(ep)).errors;
      return { steps, sizes: { full, defragmented } };
    };
    const [q, e] = await Promise.all([recipe(hostOf(cluster.url(follower))), recipe(hostOf(etcd.endpoint))]);
    expect(q.steps).toEqual(e.steps);
    expect(q.steps).toEqual({
      'put before': [0, 'OK\n'],
      'fill: refused': [1, [NO_SPACE]],
      'fill: some puts went in first': true,
      'status: errors': ['memberID:<self> alarm:NOSPACE '],
      'status: the quota is passed': true,
      'status: in use within the size': true,
      'alarm list': [0, 'memberID:<self> alarm:NOSPACE \n'],
      get: [0, '/victim\nv\n'],
      del: [0, '1\n'],
      'put small: refused': [1, [NO_SPACE]],
      'lease grant: refused': [1, ['Error: failed to grant lease (etcdserver: mvcc: database space exceeded)']],
      compact: [0, 'compacted revision <rev>\n'],
      'defrag --cluster': [0, ['Finished defragmenting etcd member[<url>]']],
      'defrag: the size fell below half': true,
      'defrag: the alarm stays': ['memberID:<self> alarm:NOSPACE '],
      'put before disarm: refused': [1, [NO_SPACE]],
      'alarm disarm': [0, 'memberID:<self> alarm:NOSPACE \n'],
      'alarm list after': [0, ''],
      'put after disarm': [0, 'OK\n'],
      'get after disarm': [0, '123\n'],
      'status after: no errors': [],
    });
    // qkv's alarm is the follower's own (it checked the quota), and defrag --cluster shrank every member's store.
    expect(q.sizes.full.memberId).toBe(String(cluster.config.members.find((m) => m.name === follower)!.id));
    for (const name of cluster.names) {
      const s = await status(hostOf(cluster.url(name)));
      expect(s.dbSize, name).toBeLessThan(QUOTA / 2);
    }
  });

  test('the alarm raised through one member is replicated: every qkv member refuses puts until it is disarmed', async () => {
    const ep = hostOf(cluster.url(follower));
    // Fill again, then look at the other members.
    for (let i = 0; i < 200; i++) if ((await etcdctl(ep, ['put', 'key'], { input: VALUE })).code !== 0) break;
    const followerId = cluster.config.members.find((m) => m.name === follower)!.id;
    for (const name of cluster.names) {
      const list = await etcdctl(hostOf(cluster.url(name)), ['alarm', 'list']);
      expect(list.stdout, name).toBe(`memberID:${followerId} alarm:NOSPACE \n`);
    }
    // (A member whose own store is past the quota too raises its own alarm beside it, as in etcd.)
    for (const name of cluster.names) {
      const put = await etcdctl(hostOf(cluster.url(name)), ['put', 'tiny', 'x']);
      expect([put.code, errorLines(put.stderr)], name).toEqual([1, [NO_SPACE]]);
    }
    // Disarming without freeing space: writes go in only until one does not fit, which raises it
    // again, as in etcd. (How close to the quota the store is depends on LevelDB's background
    // compaction: a few more puts may fit first.)
    await etcdctl(ep, ['alarm', 'disarm']);
    let put = await etcdctl(ep, ['put', 'key'], { input: VALUE });
    for (let i = 0; i < 30 && put.code === 0; i++) put = await etcdctl(ep, ['put', 'key'], { input: VALUE });
    expect([put.code, errorLines(put.stderr)]).toEqual([1, [NO_SPACE]]);
    expect((await etcdctl(ep, ['alarm', 'list'])).stdout).toMatch(/alarm:NOSPACE/);
    expect((await etcdctl(ep, ['put', 'tiny', 'x'])).code).toBe(1);
  });
});
