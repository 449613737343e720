/**
 * A change of leader, end to end on real member processes: a follower holds every request it
 * must forward to the leader (or that needs one) until a new leader exists, then answers;
 * when none comes within the request timeout it fails with etcd's retryable error (code 14
 * Unavailable, HTTP 503). Never "fetch failed", code 2 or HTTP 500 (issue 16: Patroni treats
 * code 2 as fatal).
 */
import { afterEach, describe, expect, test } from 'vitest';
import { LocalCluster } from './cluster_harness.js';
import { RawClient, type Stream } from '../grpc/raw_client.js';

interface Answer {
  what: string;
  /** ms since the leader was killed (negative: before) when the request was sent. */
  sentAt: number;
  status: number;
  body: string;
}

async function post(url: string, body: unknown, timeoutMs = 20_000): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: `client: ${(err as Error).message}` };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The first JSON line of a gateway answer. */
function firstJson(body: string): Record<string, unknown> {
  const line = body.split('\n').find((l) => l.trim().length > 0) ?? '{}';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Answers that are not the etcd-shaped error of a leader change: anything but 200 or a 503 with code 14. */
function badAnswers(answers: Answer[]): Answer[] {
  return answers.filter((a) => !(a.status === 200 || (a.status === 503 && firstJson(a.body)['code'] === 14)));
}

describe('a change of leader, seen from a follower', () => {
  let cluster: LocalCluster | undefined;
  const clients: RawClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await cluster?.destroy();
    cluster = undefined;
  });

  test('lease keep-alive, time-to-live and grant on a follower answer 200 through a SIGKILL of the leader (HTTP and gRPC)', async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const follower = cluster.names.find((n) => n !== leader)!;
    const url = cluster.url(follower);
    const granted = await post(`${url}/v3/lease/grant`, { TTL: 60 });
    expect(granted.status, granted.body).toBe(200);
    const id = String(firstJson(granted.body)['ID']);

    const grpc = new RawClient(url);
    clients.push(grpc);
    const stream: Stream = grpc.stream('Lease', 'LeaseKeepAlive');
    let streamSent = 0;

    const answers: Answer[] = [];
    const pending: Promise<void>[] = [];
    const grpcErrors: { what: string; sentAt: number; code: number; details: string }[] = [];
    const killAt = Date.now() + 600;
    let killed = false;
    const record = (what: string, p: Promise<{ status: number; body: string }>): void => {
      const sentAt = Date.now() - killAt;
      pending.push(p.then((r) => void answers.push({ what, sentAt, ...r })));
    };
    // Every 100 ms, from before the kill until 4 s after it (bounded: ~46 rounds).
    while (Date.now() < killAt + 4_000) {
      if (!killed && Date.now() >= killAt) {
        killed = true;
        void cluster.kill(leader, 'SIGKILL');
      }
      record('keepalive', post(`${url}/v3/lease/keepalive`, { ID: id }));
      record('timetolive', post(`${url}/v3/lease/timetolive`, { ID: id }));
      record('grant', post(`${url}/v3/lease/grant`, { TTL: 60 }));
      record('v1 keepalive', post(`${url}/v1/lease/${id}/keepalive`, ''));
      stream.send({ ID: id });
      streamSent++;
      const sentAt = Date.now() - killAt;
      pending.push(
        grpc.call('Lease', 'LeaseTimeToLive', { ID: id }).then(
          (r) => {
            if (!(Number(r['TTL']) > 0)) grpcErrors.push({ what: 'grpc timetolive ttl', sentAt, code: 0, details: JSON.stringify(r) });
          },
          (e: { code: number; details: string }) => void grpcErrors.push({ what: 'grpc timetolive', sentAt, code: e.code, details: e.details }),
        ),
      );
      await sleep(100);
    }
    await Promise.all(pending);
    await stream.until(() => stream.received.length >= streamSent || stream.status !== undefined, 'every gRPC keep-alive answered', 20_000);

    const summary = (xs: unknown[]): string => JSON.stringify(xs, null, 1).slice(0, 4_000);
    // Nothing at all is code 2, HTTP 500, or a failed request.
    expect(badAnswers(answers), summary(badAnswers(answers))).toEqual([]);
    expect(answers.filter((a) => a.body.includes('fetch failed'))).toEqual([]);
    // Keep-alive and time-to-live are idempotent: each one is answered 200 with the lease alive.
    const notOk = answers.filter((a) => a.what !== 'grant' && a.status !== 200);
    expect(notOk, summary(notOk)).toEqual([]);
    for (const a of answers.filter((x) => x.what === 'keepalive')) {
      expect(Number((firstJson(a.body)['result'] as { TTL?: string } | undefined)?.TTL), a.body).toBeGreaterThan(0);
    }
    for (const a of answers.filter((x) => x.what === 'timetolive')) expect(Number(firstJson(a.body)['TTL']), a.body).toBeGreaterThan(0);
    for (const a of answers.filter((x) => x.what === 'v1 keepalive')) expect(Number(firstJson(a.body)['ttl']), a.body).toBeGreaterThan(0);
    // A grant is a write: one in flight at the very moment the leader died may fail, retryably
    // (code 14, as etcd's "request timed out, possibly due to previous leader failure"); the rest succeed.
    const failedGrants = answers.filter((a) => a.what === 'grant' && a.status !== 200);
    expect(failedGrants.length, summary(failedGrants)).toBeLessThanOrEqual(1);
    // gRPC: the keep-alive stream stays open and answers every request; every TimeToLive succeeds.
    expect(grpcErrors, summary(grpcErrors)).toEqual([]);
    expect(stream.status, stream.summary()).toBeUndefined();
    expect(stream.received.length).toBe(streamSent);
    for (const r of stream.received) expect(Number(r['TTL'])).toBeGreaterThan(0);
    // And the survivors did elect a new leader meanwhile.
    const next = await cluster.waitForLeader(cluster.names.filter((n) => n !== leader));
    expect(next).not.toBe(leader);
  }, 90_000);

  test("with no leader to be had (2 of 3 members killed), a follower answers code 14 / HTTP 503 with etcd's message, not 500", async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const [survivor, other] = cluster.names.filter((n) => n !== leader) as [string, string];
    const url = cluster.url(survivor);
    const granted = await post(`${url}/v3/lease/grant`, { TTL: 60 });
    expect(granted.status, granted.body).toBe(200);
    const id = String(firstJson(granted.body)['ID']);
    const grpc = new RawClient(url);
    clients.push(grpc);
    // A stream opened (and used) while there is a leader.
    const stream = grpc.stream('Lease', 'LeaseKeepAlive');
    stream.send({ ID: id });
    await stream.count(1);

    await Promise.all([cluster.kill(leader, 'SIGKILL'), cluster.kill(other, 'SIGKILL')]);
    // Asked at once: the survivor still believes in the dead leader for up to an election timeout.
    const started = Date.now();
    stream.send({ ID: id });
    const [keepalive, ttl, grant, put, v1] = await Promise.all([
      post(`${url}/v3/lease/keepalive`, { ID: id }),
      post(`${url}/v3/lease/timetolive`, { ID: id }),
      post(`${url}/v3/lease/grant`, { TTL: 60 }),
      post(`${url}/v3/kv/put`, { key: Buffer.from('k').toString('base64'), value: Buffer.from('v').toString('base64') }),
      post(`${url}/v1/lease/${id}/keepalive`, ''),
    ]);
    const grpcTtl = await grpc.error('Lease', 'LeaseTimeToLive', { ID: id });
    await stream.until(() => stream.status !== undefined, 'the keep-alive stream to fail', 20_000);
    const elapsed = Date.now() - started;

    for (const [what, r] of Object.entries({ keepalive, ttl, grant, put, v1 })) {
      expect(r.status, `${what}: ${r.body}`).toBe(503);
      const body = firstJson(r.body);
      expect(body['code'], `${what}: ${r.body}`).toBe(14);
      // A put proposed while the survivor still followed the dead leader went to it, and was
      // never answered: etcd's proposal deadline, "request timed out". Everything else waited
      // for a leader that never came: etcd's waitLeader, "no leader".
      const expected = what === 'put' ? ['etcdserver: request timed out', 'etcdserver: no leader'] : ['etcdserver: no leader'];
      expect(expected, `${what}: ${r.body}`).toContain(body['error']);
    }
    expect(grpcTtl).toEqual({ code: 14, details: 'etcdserver: no leader' });
    expect(stream.status).toEqual({ code: 14, details: 'etcdserver: no leader' });
    // They waited for a leader (etcd's request timeout: 5 s + 2 election timeouts), bounded.
    expect(elapsed).toBeGreaterThan(4_000);
    expect(elapsed).toBeLessThan(20_000);
  }, 90_000);
});
