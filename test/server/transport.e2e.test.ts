import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { FrameDecoder, PeerFrameTooLargeError, PeerTransport, encodeFrame } from '../../src/server/transport.js';
import { PeerFrameError } from '../../src/server/peer_codec.js';
import { message } from '../../src/raft/raft.js';
import { EntryType, MessageType, type Message } from '../../src/raft/types.js';
import { freePorts } from './ports.js';

const started: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.stop()));
});

async function pair(): Promise<{ a: PeerTransport; b: PeerTransport; gotA: Message[]; gotB: Message[]; ports: number[] }> {
  const ports = await freePorts(2);
  const peers = new Map([
    [1, { host: '127.0.0.1', port: ports[0]! }],
    [2, { host: '127.0.0.1', port: ports[1]! }],
  ]);
  const gotA: Message[] = [];
  const gotB: Message[] = [];
  const a = new PeerTransport({
    id: 1,
    hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
    listen: peers.get(1)!,
    peers,
    onMessage: (m) => gotA.push(m),
  });
  const b = new PeerTransport({
    id: 2,
    hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
    listen: peers.get(2)!,
    peers,
    onMessage: (m) => gotB.push(m),
  });
  started.push(a, b);
  await a.start();
  await b.start();
  return { a, b, gotA, gotB, ports };
}

async function until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function app(i: number): Message {
  return message({
    type: MessageType.App,
    from: 1,
    to: 2,
    term: 3,
    index: i,
    entries: [{ term: 3, index: i + 1, type: EntryType.Normal, data: new Uint8Array([i & 0xff, 0, 255]) }],
  });
}

describe('FrameDecoder', () => {
  test('reassembles frames split at every byte boundary', () => {
    const frame = Buffer.concat([encodeFrame([app(1)]), encodeFrame([app(2), app(3)])]);
    const dec = new FrameDecoder(1 << 20);
    const out: Message[][] = [];
    for (const byte of frame) out.push(...dec.push(Buffer.from([byte])));
    expect(out.map((b) => b.map((m) => m.index))).toEqual([[1], [2, 3]]);
    expect(Buffer.from(out[1]![1]!.entries[0]!.data)).toEqual(Buffer.from([3, 0, 255]));
  });

  test('refuses a frame over the size limit', () => {
    const dec = new FrameDecoder(10);
    expect(() => dec.push(encodeFrame([app(1)]))).toThrow(/exceeds the limit/);
  });

  test('the size-limit error is typed', () => {
    expect(() => new FrameDecoder(10).push(encodeFrame([app(1)]))).toThrow(PeerFrameTooLargeError);
  });
});

describe('PeerTransport', () => {
  test('delivers messages in order with bytes intact', async () => {
    const { a, gotB } = await pair();
    for (let i = 0; i < 1000; i++) a.send([app(i)]);
    await until(() => gotB.length === 1000, '1000 messages');
    expect(gotB.map((m) => m.index)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(gotB[999]!.entries[0]!.data).toEqual(Buffer.from([999 & 0xff, 0, 255]));
  });

  test('reconnects by itself after the peer restarts', async () => {
    const { a, b, ports } = await pair();
    await b.stop();
    const gotB2: Message[] = [];
    const peers = new Map([
      [1, { host: '127.0.0.1', port: ports[0]! }],
      [2, { host: '127.0.0.1', port: ports[1]! }],
    ]);
    const b2 = new PeerTransport({
      id: 2,
      hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
      listen: peers.get(2)!,
      peers,
      onMessage: (m) => gotB2.push(m),
    });
    started.push(b2);
    await b2.start();
    // Messages sent while the link is down may be lost (Raft resends); keep sending until one arrives.
    for (let i = 0; i < 500 && gotB2.length === 0; i++) {
      a.send([app(i)]);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(gotB2.length).toBeGreaterThan(0);
  });

  test('a malformed frame closes the connection it came on, reported as a PeerFrameError', async () => {
    const [port] = await freePorts(1);
    const errors: Error[] = [];
    const got: Message[] = [];
    const listen = { host: '127.0.0.1', port: port! };
    const t = new PeerTransport({
      id: 1,
      hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
      listen,
      peers: new Map([[1, listen]]),
      onMessage: (m) => got.push(m),
      onError: (err) => errors.push(err),
    });
    started.push(t);
    await t.start();
    const socket = net.connect(listen);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    const good = encodeFrame([app(1)]);
    const bad = Buffer.from(good);
    bad[4] = 0xee; // the body's format version
    socket.write(`QKV-PEER 2 7 18446744073709551557 ${app(1).from} http://127.0.0.1:9\n`);
    socket.write(good);
    await until(() => got.length === 1, 'the good frame');
    socket.write(bad);
    await closed;
    expect(got.map((m) => m.index)).toEqual([1]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(PeerFrameError);
    expect((errors[0] as PeerFrameError).code).toBe('ERR_PEER_FRAME');
  });

  test('the queue for an unreachable peer is bounded', async () => {
    const ports = await freePorts(2);
    const peers = new Map([
      [1, { host: '127.0.0.1', port: ports[0]! }],
      [2, { host: '127.0.0.1', port: ports[1]! }],
    ]);
    const a = new PeerTransport({
      id: 1,
      hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
      listen: peers.get(1)!,
      peers,
      onMessage: () => {},
      maxQueuedMessages: 50,
    });
    started.push(a);
    await a.start();
    for (let i = 0; i < 200; i++) a.send([app(i)]);
    expect(a.droppedMessages()).toBe(150);
  });
});

describe('PeerTransport stats', () => {
  test('counts frame bytes each way, connections, and times a heartbeat to its response', async () => {
    const ports = await freePorts(2);
    const peers = new Map([
      [1, { host: '127.0.0.1', port: ports[0]! }],
      [2, { host: '127.0.0.1', port: ports[1]! }],
    ]);
    const record = () => {
      const s = { sent: new Map<number, number>(), received: new Map<number, number>(), rtt: [] as number[], up: [] as string[], failed: 0 };
      const stats = {
        sent: (p: number, n: number) => void s.sent.set(p, (s.sent.get(p) ?? 0) + n),
        received: (p: number, n: number) => void s.received.set(p, (s.received.get(p) ?? 0) + n),
        sendFailed: () => void s.failed++,
        roundTrip: (p: number, sec: number) => void s.rtt.push(p, sec),
        connection: (p: number, up: boolean) => void s.up.push(`${p}:${up}`),
      };
      return { s, stats };
    };
    const ra = record();
    const rb = record();
    let b: PeerTransport;
    const a = new PeerTransport({
      id: 1,
      hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
      listen: peers.get(1)!,
      peers,
      onMessage: () => {},
      stats: ra.stats,
    });
    b = new PeerTransport({
      id: 2,
      hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: 'http://127.0.0.1:1' },
      listen: peers.get(2)!,
      peers,
      // The follower answers the heartbeat, as Raft does.
      onMessage: (m) => m.type === MessageType.Heartbeat && b.send([message({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: m.term })]),
      stats: rb.stats,
    });
    started.push(a, b);
    await a.start();
    await b.start();
    await until(() => ra.s.up.includes('2:true') && rb.s.up.includes('1:true'), 'both links up');
    // a dialled b before b listened: refused dials count as send failures.
    const failedAtStart = ra.s.failed;
    a.send([app(1), app(2)]);
    a.send([message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3 })]);
    await until(() => ra.s.rtt.length === 2, 'the round trip');
    expect(ra.s.rtt[0]).toBe(2);
    expect(ra.s.rtt[1]).toBeGreaterThan(0);
    expect(ra.s.rtt[1]).toBeLessThan(5);
    await until(() => rb.s.received.get(1) === ra.s.sent.get(2), "b's count of a's bytes");
    expect(ra.s.sent.get(2)).toBe(
      encodeFrame([app(1), app(2)]).length + encodeFrame([message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3 })]).length,
    );
    await until(() => ra.s.received.get(2) === rb.s.sent.get(1), "a's count of b's bytes");
    expect(ra.s.failed).toBe(failedAtStart);
    // The peer goes away: the link is down, and redials fail.
    await b.stop();
    await until(() => ra.s.up.includes('2:false') && ra.s.failed > failedAtStart, 'the lost link and a failed dial');
  });

  test('a hello from another cluster or a removed member is refused with its reason; an unknown member of the cluster is dialled back', async () => {
    const ports = await freePorts(3);
    const addr = (i: number) => ({ host: '127.0.0.1', port: ports[i]! });
    const refusedOf = new Map<number, string[]>();
    const got: Message[] = [];
    const make = (id: number, clusterId: string, peers: Map<number, { host: string; port: number }>, onMessage: (m: Message) => void = () => {}) => {
      const t = new PeerTransport({
        id,
        hello: { clusterId, memberId: String(1000n + BigInt(id)), peerUrl: `http://127.0.0.1:${ports[id - 1]}` },
        listen: addr(id - 1),
        peers,
        onMessage,
        admit: (h) => (h.clusterId !== '7' ? `cluster ID mismatch: ${h.clusterId}` : h.from === 2 ? 'removed' : undefined),
        onRejected: (_peer, reason) => refusedOf.set(id, [...(refusedOf.get(id) ?? []), reason]),
      });
      started.push(t);
      return t;
    };
    const a = make(1, '7', new Map(), (m) => got.push(m));
    await a.start();
    // b is removed, c is of another cluster: both are told why, and a hears nothing from them.
    const b = make(2, '7', new Map([[1, addr(0)]]));
    const c = make(3, '8', new Map([[1, addr(0)]]));
    await b.start();
    await c.start();
    await until(() => refusedOf.has(2) && refusedOf.has(3), 'both refusals');
    expect(refusedOf.get(2)).toEqual(['removed']);
    expect(refusedOf.get(3)).toEqual(['cluster ID mismatch: 8']);
    b.send([message({ type: MessageType.App, from: 2, to: 1, term: 1 })]);
    expect(got).toEqual([]);
    await b.stop();
    await c.stop();
    // d (id 3 again, now of the cluster) is not one of a's peers: a learns where it is from its hello.
    const gotD: Message[] = [];
    const d = make(3, '7', new Map([[1, addr(0)]]), (m) => gotD.push(m));
    await d.start();
    d.send([message({ type: MessageType.App, from: 3, to: 1, term: 1 })]);
    await until(() => got.length > 0, "d's message");
    expect(a.peerIds()).toEqual([3]);
    a.send([message({ type: MessageType.AppResp, from: 1, to: 3, term: 1 })]);
    await until(() => gotD.length > 0, "a's answer to d");
  });

  test('the peer port answers HTTP too: GET /members goes to the handler', async () => {
    const [port] = await freePorts(1);
    const listen = { host: '127.0.0.1', port: port! };
    const t = new PeerTransport({
      id: 1,
      hello: { clusterId: '7', memberId: '18446744073709551557', peerUrl: `http://127.0.0.1:${port}` },
      listen,
      peers: new Map(),
      onMessage: () => {},
      httpHandler: (req, res) => res.end(`you asked ${req.url}`),
    });
    started.push(t);
    await t.start();
    const res = await fetch(`http://127.0.0.1:${port}/members`);
    expect(await res.text()).toBe('you asked /members');
  });
});
