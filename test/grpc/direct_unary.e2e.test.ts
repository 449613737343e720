/**
 * The unary calls qkv answers on node:http2 directly (src/grpc/direct_unary.ts) answer what
 * grpc-js answered before: each protocol case is sent as raw HTTP/2 to a qkv member and to a
 * grpc-js server in this process with the same definitions and message limit, and the statuses,
 * messages, response headers and trailers are compared. Bytes that are not the request message
 * are compared with a real etcd (both paths decode with src/grpc/wire.ts, which answers as
 * etcd). Calls the direct path leaves to grpc-js (another content type, a compressed request)
 * still work.
 */
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { etcdServices, type ProtoMessage } from '../../src/grpc/proto.js';
import { GRPC_OVERHEAD_BYTES } from '../../src/server/requests.js';
import { LocalCluster } from '../server/cluster_harness.js';
import { RealEtcd } from './helpers.js';

const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
const KV = etcdServices().KV;
const WATCH = etcdServices().Watch.Watch!;

/** The gRPC messages in `bytes` (whole ones), and what is left of a message still coming. */
function messagesIn(bytes: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let at = 0;
  while (bytes.length - at >= 5 && bytes.length - at >= 5 + bytes.readUInt32BE(at + 1)) {
    const len = bytes.readUInt32BE(at + 1);
    messages.push(bytes.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return { messages, rest: bytes.subarray(at) };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  trailers: Record<string, string>;
  /** grpc-status and grpc-message, from the trailers or a trailers-only answer. */
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
}

/** The headers that say something (date differs per answer; pseudo-headers but :status dropped). */
function plain(h: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (k !== 'date' && v !== undefined) out[k] = String(v);
  return out;
}

function frame(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** One HTTP/2 request with `body` as its DATA; resolves once the stream closes. */
function rawCall(url: string, path: string, body: Buffer, extraHeaders: http2.OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders });
    let headers: Record<string, string> = {};
    let status = 0;
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
      headers = plain(h);
    });
    req.on('trailers', (t) => {
      trailers = plain(t);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      session.close();
      const from = trailers['grpc-status'] !== undefined ? trailers : headers;
      resolve({
        status,
        headers,
        body: Buffer.concat(chunks),
        trailers,
        grpcStatus: from['grpc-status'],
        grpcMessage: from['grpc-message'] === undefined ? undefined : decodeURI(from['grpc-message']),
      });
    });
    req.end(body);
  });
}

/** The status part of an answer, with the path of the reference server's method names made the same. */
function statusOf(a: RawAnswer): { status: number; grpcStatus: string | undefined; grpcMessage: string | undefined } {
  return { status: a.status, grpcStatus: a.grpcStatus, grpcMessage: a.grpcMessage };
}

describe('unary calls on node:http2 directly answer as grpc-js does', () => {
  let cluster: LocalCluster;
  let leaderUrl: string;
  let reference: grpc.Server;
  let referenceUrl: string;
  let etcd: RealEtcd;

  beforeAll(async () => {
    etcd = await RealEtcd.start();
    cluster = await LocalCluster.create({ nodes: 3, maxRequestBytes: MAX_REQUEST_BYTES });
    cluster.startAll();
    leaderUrl = cluster.url(await cluster.waitForLeader());
    // grpc-js as qkv configured it: the same definitions and receive limit. Range answers at
    // once, every other method never (for the deadline).
    reference = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES });
    const never = (): void => {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(KV)) impl[name] = never;
    impl['Range'] = ((_call, callback) => callback(null, { header: {}, kvs: [], count: '0' })) satisfies grpc.handleUnaryCall<ProtoMessage, ProtoMessage>;
    reference.addService(KV, impl);
    const port = await new Promise<number>((resolve, reject) =>
      reference.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    referenceUrl = `http://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    reference?.forceShutdown();
    await cluster?.destroy();
    await etcd?.stop();
  });

  const rangeRequest = (key: string): Buffer => KV.Range!.requestSerialize({ key: Buffer.from(key), serializable: true });

  test('a call that succeeds: the same response headers and trailers, the answer in one message', async () => {
    const put = await rawCall(leaderUrl, KV.Put!.path, frame(KV.Put!.requestSerialize({ key: Buffer.from('direct/a'), value: Buffer.from('1') })));
    expect(put.grpcStatus).toBe('0');
    const q = await rawCall(leaderUrl, KV.Range!.path, frame(rangeRequest('direct/a')));
    const r = await rawCall(referenceUrl, KV.Range!.path, frame(rangeRequest('direct/a')));
    expect(q.headers).toEqual(r.headers);
    expect(q.trailers).toEqual(r.trailers);
    expect(q.body.readUInt32BE(1)).toBe(q.body.length - 5);
    const answer = KV.Range!.responseDeserialize(q.body.subarray(5)) as { kvs: { key: Buffer; value: Buffer }[]; count: string };
    expect(answer.kvs.map((kv) => [kv.key.toString(), kv.value.toString()])).toEqual([['direct/a', '1']]);
    expect(answer.count).toBe('1');
  });

  const faults: [string, Buffer, http2.OutgoingHttpHeaders][] = [
    ['no request message', Buffer.alloc(0), {}],
    ['a prefix without its message', Buffer.from([0, 0, 0, 0, 9, 1, 2]), {}],
    ['a second request message', Buffer.concat([frame(rangeRequest('a')), frame(rangeRequest('b'))]), {}],
    ['a message over the limit', Buffer.concat([Buffer.from([0]), Buffer.from([0, 0x20, 0, 0])]), {}],
    ['a grpc-timeout that does not parse', frame(rangeRequest('a')), { 'grpc-timeout': 'soon' }],
    ['another content type (grpc-js answers)', frame(rangeRequest('a')), { 'content-type': 'text/plain' }],
  ];
  test.each(faults)('%s: the same status and message', async (_name, body, headers) => {
    const q = await rawCall(leaderUrl, KV.Range!.path, body, headers);
    const r = await rawCall(referenceUrl, KV.Range!.path, body, headers);
    expect(statusOf(q)).toEqual(statusOf(r));
    expect(q.headers).toEqual(r.headers);
  });

  const malformed: [string, string, Buffer][] = [
    ['a length past the end', KV.Range!.path, Buffer.from([0x0a, 0x05, 0x61])],
    ['a truncated varint', KV.Put!.path, Buffer.from([0x18, 0xff])],
    ['a wrong wire type for a known field', KV.Range!.path, Buffer.from([0x08, 0x01])],
    ['wire type 7', KV.Range!.path, Buffer.from([0x0f])],
  ];
  test.each(malformed)('bytes that are not the message (%s): the status and message of etcd', async (_name, path, message) => {
    const q = await rawCall(leaderUrl, path, frame(message));
    const e = await rawCall(etcd.endpoint, path, frame(message));
    expect(q.grpcStatus).toBe(String(grpc.status.INTERNAL));
    expect(statusOf(q)).toEqual(statusOf(e));
  });

  test('grpc-timeout: a call still waiting at its deadline ends with DEADLINE_EXCEEDED', async () => {
    const followers = cluster.names.filter((n) => cluster.url(n) !== leaderUrl);
    // No quorum: the put waits for its commit past the deadline.
    for (const f of followers) cluster.pause(f);
    try {
      const body = frame(KV.Put!.requestSerialize({ key: Buffer.from('direct/late'), value: Buffer.from('x') }));
      const q = await rawCall(leaderUrl, KV.Put!.path, body, { 'grpc-timeout': '300m' });
      const r = await rawCall(referenceUrl, KV.Put!.path, body, { 'grpc-timeout': '300m' });
      expect(statusOf(q)).toEqual(statusOf(r));
      expect(q.grpcStatus).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    } finally {
      for (const f of followers) cluster.resume(f);
    }
  });

  test('the watch stream: 50 requests in one DATA frame, each watcher created and given the event of its key once', async () => {
    const session = http2.connect(leaderUrl);
    try {
      const req = session.request({ ':method': 'POST', ':path': WATCH.path, 'content-type': 'application/grpc', te: 'trailers' });
      const got: { watch_id: string; created: boolean; events: { kv: { key: Buffer } }[] }[] = [];
      let pending = Buffer.alloc(0);
      const waiters: (() => void)[] = [];
      req.on('data', (c: Buffer) => {
        const { messages, rest } = messagesIn(Buffer.concat([pending, c]));
        pending = Buffer.from(rest);
        for (const m of messages) got.push(WATCH.responseDeserialize(m) as (typeof got)[number]);
        for (const w of waiters.splice(0)) w();
      });
      const until = async (done: () => boolean): Promise<void> => {
        while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
      };
      const WATCHERS = 50;
      const create = (i: number): Buffer =>
        frame(WATCH.requestSerialize({ create_request: { key: Buffer.from(`direct/w${i % 2}`), watch_id: String(i + 1) } }));
      // All the create requests in one write: one DATA frame carrying 50 messages.
      req.write(Buffer.concat(Array.from({ length: WATCHERS }, (_, i) => create(i))));
      await until(() => got.filter((r) => r.created).length === WATCHERS);
      expect(new Set(got.map((r) => r.watch_id))).toEqual(new Set(Array.from({ length: WATCHERS }, (_, i) => String(i + 1))));
      for (const key of ['direct/w0', 'direct/w1']) {
        const put = await rawCall(leaderUrl, KV.Put!.path, frame(KV.Put!.requestSerialize({ key: Buffer.from(key), value: Buffer.from('v') })));
        expect(put.grpcStatus).toBe('0');
      }
      await until(() => got.filter((r) => r.events.length > 0).length === WATCHERS);
      const events = got.filter((r) => r.events.length > 0);
      // Each watcher got the event of its own key, once.
      for (const r of events) expect(r.events.map((e) => e.kv.key.toString())).toEqual([`direct/w${(Number(r.watch_id) - 1) % 2}`]);
      expect(new Set(events.map((r) => r.watch_id)).size).toBe(WATCHERS);
      req.close();
    } finally {
      session.close();
    }
  });

  test('a compressed request goes to grpc-js, which decompresses it', async () => {
    const message = KV.Put!.requestSerialize({ key: Buffer.from('direct/gz'), value: Buffer.from('zipped') });
    const q = await rawCall(leaderUrl, KV.Put!.path, frame(gzipSync(message), true), { 'grpc-encoding': 'gzip' });
    expect(q.grpcStatus).toBe('0');
    const r = await rawCall(leaderUrl, KV.Range!.path, frame(rangeRequest('direct/gz')));
    const answer = KV.Range!.responseDeserialize(r.body.subarray(5)) as { kvs: { value: Buffer }[] };
    expect(answer.kvs.map((kv) => kv.value.toString())).toEqual(['zipped']);
  });
});
