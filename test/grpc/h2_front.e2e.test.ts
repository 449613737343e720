/**
 * The HTTP/2 front of plaintext gRPC connections (src/grpc/h2_front.ts): a unary call answered
 * on the socket goes out in one write (headers, message and trailers together); the client's
 * flow-control windows hold for our answers and nghttp2's alike when both share a connection;
 * the header tables stay in step when calls served here and calls passed to nghttp2 alternate
 * on one connection with headers that change from call to call; the watch stream, served here
 * too, keeps to its stream window and waits for it (back-pressure) without losing an event.
 */
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeLiteralHeaders } from '../../src/grpc/h2_front.js';
import { etcdServices } from '../../src/grpc/proto.js';
import { LocalCluster } from '../server/cluster_harness.js';

const KV = etcdServices().KV;
const WATCH = etcdServices().Watch.Watch!;

function grpcFrame(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

/** A Range call's request headers, for the raw clients. */
const RANGE_HEADERS = {
  ':method': 'POST',
  ':scheme': 'http',
  ':path': KV.Range!.path,
  ':authority': 'localhost',
  'content-type': 'application/grpc',
  te: 'trailers',
} as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  length: number;
  payload: Buffer;
}

/** The whole frames in `bytes`. */
function framesIn(bytes: Buffer): ReceivedFrame[] {
  const out: ReceivedFrame[] = [];
  for (let at = 0; at + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    out.push({ type: bytes[at + 3]!, flags: bytes[at + 4]!, streamId: bytes.readUInt32BE(at + 5), length, payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return out;
}

/** A raw client connection to `url`, and everything it has received so far. */
async function rawConnection(url: string): Promise<{ socket: net.Socket; received: () => Buffer }> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
  });
  return { socket, received: () => received };
}

/** A SETTINGS frame's payload of one setting. */
function setting(id: number, value: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id, 0);
  b.writeUInt32BE(value, 2);
  return b;
}

function windowUpdate(streamId: number, increment: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(increment, 0);
  return h2Frame(0x8, 0, streamId, b);
}

interface Answer {
  body: Buffer;
  grpcStatus: string | undefined;
}

/**
 * One call on `session`; resolves with the message bytes and the status once the stream closes.
 * `holdMs`: the answer is not read for that long (the client's windows are not given back meanwhile).
 */
function call(session: http2.ClientHttp2Session, path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}, holdMs = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({ body: Buffer.concat(chunks), grpcStatus }));
    if (holdMs > 0) {
      req.pause();
      setTimeout(() => req.resume(), holdMs);
    }
    req.end(body);
  });
}

const rangeOf = (key: string, rangeEnd?: string): Buffer =>
  grpcFrame(KV.Range!.requestSerialize({ key: Buffer.from(key), ...(rangeEnd ? { range_end: Buffer.from(rangeEnd) } : {}), serializable: true }));

function valuesOf(a: Answer): string[] {
  expect(a.grpcStatus).toBe('0');
  expect(a.body.readUInt32BE(1)).toBe(a.body.length - 5);
  const r = KV.Range!.responseDeserialize(a.body.subarray(5)) as { kvs: { value: Buffer }[] };
  return r.kvs.map((kv) => kv.value.toString());
}

describe('the HTTP/2 front of plaintext gRPC connections', () => {
  let cluster: LocalCluster;
  let url: string;
  const big = ['a', 'b', 'c'].map((c) => c.repeat(100_000));

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 1 });
    cluster.startAll();
    url = cluster.url(await cluster.waitForLeader());
    const session = http2.connect(url);
    for (const [i, value] of big.entries()) {
      const put = await call(session, KV.Put!.path, grpcFrame(KV.Put!.requestSerialize({ key: Buffer.from(`big/${i}`), value: Buffer.from(value) })));
      expect(put.grpcStatus).toBe('0');
    }
    session.close();
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  test("a unary call's headers, message and trailers come in one write", async () => {
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const reads: Buffer[] = [];
    const answered = new Promise<void>((resolve) => {
      let all = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        reads.push(chunk);
        all = Buffer.concat([all, chunk]);
        // Done once a frame of stream 1 carries END_STREAM.
        if (framesIn(all).some((f) => f.streamId === 1 && f.flags & 0x1)) resolve();
      });
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const headers = encodeLiteralHeaders(RANGE_HEADERS);
    socket.write(Buffer.concat([PREFACE, h2Frame(0x4, 0, 0, Buffer.alloc(0)), h2Frame(0x1, 0x4, 1, headers), h2Frame(0x0, 0x1, 1, rangeOf('small'))]));
    await answered;
    socket.destroy();
    // The read holding the answer's HEADERS also holds its DATA and its trailers (HEADERS with END_STREAM).
    // (Each read is taken as it came: the server's writes are small enough not to be split.)
    const framesOfStream1 = reads.map((chunk) =>
      framesIn(chunk)
        .filter((f) => f.streamId === 1)
        .map((f) => `${f.type === 0 ? 'DATA' : f.type === 1 ? 'HEADERS' : 'other'}${f.flags & 0x1 ? '+END' : ''}`),
    );
    const withAnswer = framesOfStream1.filter((kinds) => kinds.length > 0);
    expect(withAnswer).toHaveLength(1);
    expect(withAnswer[0]![0]).toBe('HEADERS');
    expect(withAnswer[0]).toContain('DATA');
    expect(withAnswer[0]!.at(-1)).toBe('HEADERS+END');
  });

  // A 1 KiB stream window: each answer waits for its stream's WINDOW_UPDATEs. 4 MiB stream windows
  // and the connection's default 64 KiB: answers of 300 KB on eight streams wait for the connection's.
  test.each([1024, 4 * 1024 * 1024])(
    "answers larger than the client's windows (streams' %i bytes), ours and nghttp2's at once on one connection, arrive whole",
    async (initialWindowSize) => {
      const session = http2.connect(url, { settings: { initialWindowSize } });
      try {
        const calls: Promise<string[]>[] = [];
        for (let i = 0; i < 4; i++) {
          // Served on the front.
          calls.push(call(session, KV.Range!.path, rangeOf('big/', 'big0'), {}, 300).then(valuesOf));
          // A compressed request: passed to nghttp2 and grpc-js.
          const gz = grpcFrame(gzipSync(KV.Range!.requestSerialize({ key: Buffer.from('big/'), range_end: Buffer.from('big0'), serializable: true })), true);
          calls.push(call(session, KV.Range!.path, gz, { 'grpc-encoding': 'gzip' }, 300).then(valuesOf));
        }
        for (const values of await Promise.all(calls)) expect(values).toEqual(big);
      } finally {
        session.close();
      }
    },
  );

  test("the connection window holds for our answers and nghttp2's together: no more DATA than the client allowed", async () => {
    // A raw client: 4 MiB stream windows, the connection's 64 KiB never given back until the end.
    const { socket, received } = await rawConnection(url);
    const frames = (): ReceivedFrame[] => framesIn(received());
    const requests: Buffer[] = [PREFACE, h2Frame(0x4, 0, 0, setting(0x4, 4 * 1024 * 1024))];
    const gz = grpcFrame(gzipSync(KV.Range!.requestSerialize({ key: Buffer.from('big/'), range_end: Buffer.from('big0'), serializable: true })), true);
    for (const [i, passed] of [false, true, false, true].entries()) {
      const headers = RANGE_HEADERS;
      const id = 2 * i + 1;
      requests.push(h2Frame(0x1, 0x4, id, encodeLiteralHeaders(passed ? { ...headers, 'grpc-encoding': 'gzip' } : headers)));
      requests.push(h2Frame(0x0, 0x1, id, passed ? gz : rangeOf('big/', 'big0')));
    }
    socket.write(Buffer.concat(requests));
    const dataBytes = (): number => frames().reduce((n, f) => n + (f.type === 0 ? f.length : 0), 0);
    const ended = (): number =>
      new Set(
        frames()
          .filter((f) => f.streamId !== 0 && f.flags & 0x1 && (f.type === 0 || f.type === 1))
          .map((f) => f.streamId),
      ).size;
    // Wait (bounded) until the window is used up, then a little more for anything that should not come.
    for (let i = 0; i < 100 && dataBytes() <= 65_535 - 16_384; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    // Whole frames of up to 16 KiB: the window used but for less than one frame, and never exceeded.
    expect(dataBytes()).toBeLessThanOrEqual(65_535);
    expect(dataBytes()).toBeGreaterThan(65_535 - 16_384);
    expect(ended()).toBe(0);
    // The window given back: every answer comes whole (four answers of 300 KB and more).
    socket.write(windowUpdate(0, 64 * 1024 * 1024));
    for (let i = 0; i < 250 && ended() < 4; i++) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    expect(ended()).toBe(4);
    expect(dataBytes()).toBeGreaterThan(4 * 300_000);
  });

  test('header tables stay in step: calls served here and passed on alternate, with headers that change each call', async () => {
    const session = http2.connect(url);
    try {
      for (let i = 0; i < 40; i++) {
        const key = `tables/${i}`;
        const headers = { 'x-call': `call-${i}`, 'x-same': 'the same value every time' };
        const value = `v${i}`.repeat(i + 1);
        if (i % 2 === 0) {
          const put = await call(session, KV.Put!.path, grpcFrame(KV.Put!.requestSerialize({ key: Buffer.from(key), value: Buffer.from(value) })), headers);
          expect(put.grpcStatus).toBe('0');
        } else {
          const message = gzipSync(KV.Put!.requestSerialize({ key: Buffer.from(key), value: Buffer.from(value) }));
          const put = await call(session, KV.Put!.path, grpcFrame(message, true), { ...headers, 'grpc-encoding': 'gzip' });
          expect(put.grpcStatus).toBe('0');
        }
        expect(valuesOf(await call(session, KV.Range!.path, rangeOf(key), headers))).toEqual([value]);
      }
    } finally {
      session.close();
    }
  });

  test('the watch stream keeps to its stream window, waits while it is shut, and then delivers every event in order', async () => {
    // A raw client: a 4 KiB stream window never given back until the events have piled up, a connection window that is no limit.
    const { socket, received } = await rawConnection(url);
    const watchFrames = (): ReceivedFrame[] => framesIn(received()).filter((f) => f.streamId === 1);
    const dataBytes = (): number => watchFrames().reduce((n, f) => n + (f.type === 0 ? f.length : 0), 0);
    const headers = { ...RANGE_HEADERS, ':path': WATCH.path };
    const create = grpcFrame(WATCH.requestSerialize({ create_request: { key: Buffer.from('watched/'), range_end: Buffer.from('watched0') } }));
    socket.write(
      Buffer.concat([
        PREFACE,
        h2Frame(0x4, 0, 0, setting(0x4, 4096)),
        windowUpdate(0, 64 * 1024 * 1024),
        h2Frame(0x1, 0x4, 1, encodeLiteralHeaders(headers)),
        h2Frame(0x0, 0, 1, create),
      ]),
    );
    // The created response first, then 200 puts of 1000 bytes each: 200 KB of events for a 4 KiB window.
    for (let i = 0; i < 100 && dataBytes() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(dataBytes()).toBeGreaterThan(0);
    const session = http2.connect(url);
    const count = 200;
    try {
      for (let i = 0; i < count; i++) {
        const put = grpcFrame(KV.Put!.requestSerialize({ key: Buffer.from(`watched/${String(i).padStart(3, '0')}`), value: Buffer.alloc(1000, 'w') }));
        expect((await call(session, KV.Put!.path, put)).grpcStatus).toBe('0');
      }
    } finally {
      session.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(dataBytes()).toBeLessThanOrEqual(4096);
    // The window given back, a little at a time as a reader would: every event arrives, in order.
    const events = (): string[] => {
      const body = Buffer.concat(
        watchFrames()
          .filter((f) => f.type === 0)
          .map((f) => f.payload),
      );
      const keys: string[] = [];
      for (let at = 0; at + 5 <= body.length; ) {
        const length = body.readUInt32BE(at + 1);
        if (at + 5 + length > body.length) break;
        const resp = WATCH.responseDeserialize(body.subarray(at + 5, at + 5 + length)) as { events: { kv: { key: Buffer } }[] };
        for (const e of resp.events) keys.push(e.kv.key.toString());
        at += 5 + length;
      }
      return keys;
    };
    let credited = 4096;
    for (let i = 0; i < 500 && events().length < count; i++) {
      if (dataBytes() + 4096 > credited) {
        socket.write(windowUpdate(1, 64 * 1024));
        credited += 64 * 1024;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    socket.destroy();
    expect(events()).toEqual(Array.from({ length: count }, (_, i) => `watched/${String(i).padStart(3, '0')}`));
    expect(dataBytes()).toBeLessThanOrEqual(credited);
  });

  test("the client's PINGs are answered with their payload, an ACK it sends is not answered, and calls go on", async () => {
    const { socket, received } = await rawConnection(url);
    const pings = (): ReceivedFrame[] => framesIn(received()).filter((f) => f.type === 0x6);
    socket.write(
      Buffer.concat([
        PREFACE,
        h2Frame(0x4, 0, 0, Buffer.alloc(0)),
        h2Frame(0x6, 0, 0, Buffer.from('qkvping1')),
        h2Frame(0x6, 0x1, 0, Buffer.from('unasked!')),
        h2Frame(0x6, 0, 0, Buffer.from('qkvping2')),
        h2Frame(0x1, 0x4, 1, encodeLiteralHeaders(RANGE_HEADERS)),
        h2Frame(0x0, 0x1, 1, rangeOf('small')),
      ]),
    );
    const answered = (): boolean => framesIn(received()).some((f) => f.streamId === 1 && f.type === 0x1 && f.flags & 0x1);
    for (let i = 0; i < 100 && !(answered() && pings().length >= 2); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    expect(pings().map((f) => `${f.flags}:${f.payload.toString()}`)).toEqual(['1:qkvping1', '1:qkvping2']);
    expect(answered()).toBe(true);
  });
});
