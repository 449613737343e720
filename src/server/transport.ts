/**
 * Peer transport: Raft messages between members over persistent TCP connections.
 *
 * Each member dials every peer once and keeps the connection; the messages of one send (a
 * Ready's) to a peer go out together as one length-prefixed frame (batching), its body in the
 * format of peer_codec.ts. A broken connection is redialled with backoff. Raft tolerates loss,
 * so a full queue drops messages instead of growing: memory stays bounded whatever a peer does.
 *
 * A connection opens with one hello line, `QKV-PEER 2 <cluster id> <member id> <raft id> <peer URL>\n`
 * (etcd's 64-bit member id, and the raft id the membership gave it, which frames name it by):
 * the receiver admits the sender (same cluster, not removed, the pair as its table has it) or answers
 * `QKV-REJECT <reason>\n` and closes, as etcd's peer handler answers a removed member 410 and
 * another cluster's 412; an admitted sender it has no link to yet (a member added since) is
 * dialled back at the URL it gave. A connection that starts with `GET ` is HTTP instead
 * (etcd serves /members on its peer port too): it goes to `httpHandler`.
 *
 * Peers come and go at runtime (setPeer, removePeer) as membership changes are applied.
 *
 * With TLS (https:// peer URLs) every connection, both ways, is TLS with the member's peer
 * certificate: the handshake comes before the hello, and with peer client-cert-auth a dialler
 * whose certificate the trusted CA did not sign fails it, so nothing it sends is read. The
 * credentials are re-read from disk when they change (src/tls.ts).
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import http from 'node:http';
import tls from 'node:tls';
import { TlsTerminator, type PortTls } from '../tls.js';
import { MessageType, type Message, type NodeId } from '../raft/types.js';
import { decodeMessages, encodedSize, PeerWireError, writeMessages } from './peer_codec.js';
import { FRAME_HEADER_BYTES, LengthPrefixedFrames } from './frames.js';

interface PeerAddress {
  host: string;
  port: number;
}

/** What a connection's hello says of its sender: its cluster, etcd's 64-bit member id (decimal), its raft id, its peer URL. */
export interface PeerHello {
  clusterId: string;
  memberId: string;
  from: NodeId;
  peerUrl: string;
}

export interface TransportOptions {
  id: NodeId;
  listen: PeerAddress;
  peers: Map<NodeId, PeerAddress>;
  onMessage: (m: Message) => void;
  /** What this member's hello says: its cluster, its member id and the peer URL it is dialled back at. */
  hello: { clusterId: string; memberId: string; peerUrl: string };
  /** Why a sender is refused (another cluster, removed), or undefined to admit it. */
  admit?: (hello: PeerHello) => string | undefined;
  /** A peer refused this member with `reason`. */
  onRejected?: (peer: NodeId, reason: string) => void;
  /** Where a dialled-back sender's URL goes (e.g. to a fault proxy's address); default its host and port. */
  addressOf?: (peer: NodeId, peerUrl: string) => PeerAddress;
  /** Serves the peer port's HTTP requests (GET /members). */
  httpHandler?: http.RequestListener;
  /** Largest frame accepted from a peer; a larger one closes the connection. */
  maxFrameBytes?: number;
  /** Messages queued for one peer while it is unreachable; beyond this, new ones are dropped. */
  maxQueuedMessages?: number;
  onError?: (err: Error, peer: NodeId | undefined) => void;
  /** Receives the per-peer figures (etcd's rafthttp metrics). */
  stats?: PeerStats;
  /** Mutual TLS on every connection (https:// peer URLs). */
  tls?: PeerTls;
}

interface PeerTls extends PortTls {
  /** A connection refused in its handshake (no certificate, or one the CA did not sign). */
  onRejected?: (err: Error, remote: string | undefined) => void;
}

/**
 * What the transport reports per peer. Bytes are whole frames (header included) as written to
 * or read from the socket. A send failure is a message dropped from a full queue, a failed dial
 * or an error on an open connection (etcd counts the messages its streams could not send; qkv
 * queues them while a peer is unreachable, so a refused dial is what shows a peer is down). The
 * round trip is a heartbeat's to its response, timed on the leader (the one that sends them).
 */
export interface PeerStats {
  sent(peer: NodeId, bytes: number): void;
  received(peer: NodeId, bytes: number): void;
  sendFailed(peer: NodeId): void;
  roundTrip(peer: NodeId, seconds: number): void;
  connection(peer: NodeId, up: boolean): void;
}

const NO_STATS: PeerStats = { sent() {}, received() {}, sendFailed() {}, roundTrip() {}, connection() {} };

const DEFAULT_MAX_FRAME = 256 * 1024 * 1024;
const HELLO = 'QKV-PEER 2';
const REJECT = 'QKV-REJECT ';
/** Longest hello or rejection line read before giving up on a connection. */
const MAX_LINE_BYTES = 1024;
const MIN_BACKOFF_MS = 20;
const MAX_BACKOFF_MS = 1000;

/** A frame announcing more bytes than the receiver accepts; the connection is dropped. */
export class PeerFrameTooLargeError extends PeerWireError {
  constructor(len: number, limit: number) {
    super('ERR_PEER_FRAME_TOO_LARGE', `peer frame of ${len} bytes exceeds the limit of ${limit}`);
  }
}

/** A peer connection whose first line is not a hello; it is closed. @public (a kind of error: test/errors.test.ts walks every exported one) */
export class PeerHelloError extends PeerWireError {
  constructor() {
    super('ERR_PEER_HELLO', 'peer connection: no valid hello line');
  }
}

/** Frames a batch of messages: uint32 big-endian length, then the body (peer_codec.ts), written in place. */
export function encodeFrame(msgs: Message[]): Buffer {
  const len = encodedSize(msgs);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + len);
  frame.writeUInt32BE(len, 0);
  writeMessages(msgs, frame, FRAME_HEADER_BYTES);
  return frame;
}

/** Accumulates bytes from a socket and yields the complete frames' message batches. */
export class FrameDecoder {
  private readonly frames: LengthPrefixedFrames;

  constructor(maxFrameBytes: number) {
    this.frames = new LengthPrefixedFrames(maxFrameBytes, (len, limit) => new PeerFrameTooLargeError(len, limit));
  }

  push(chunk: Buffer): Message[][] {
    return this.frames.push(chunk).map(decodeMessages);
  }
}

/** The outgoing side towards one peer. */
class PeerLink {
  private socket: net.Socket | undefined;
  private connected = false;
  private queue: Message[] = [];
  private backoffMs = MIN_BACKOFF_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  dropped = 0;
  /** When the oldest heartbeat not answered yet was sent (performance.now()). */
  heartbeatSentAt: number | undefined;

  constructor(
    readonly peer: NodeId,
    readonly address: PeerAddress,
    private readonly hello: string,
    private readonly maxQueued: number,
    private readonly onError: (err: Error) => void,
    private readonly onRejected: (reason: string) => void,
    private readonly stats: PeerStats,
    private readonly tls: PeerTls | undefined,
  ) {
    this.dial();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Queues `m`; it goes out with the next flush (or when the connection is up). */
  enqueue(m: Message): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueued) {
      this.dropped++;
      this.stats.sendFailed(this.peer);
      return;
    }
    this.queue.push(m);
  }

  /** Writes everything queued as one frame, if connected. */
  flush(): void {
    if (!this.connected || !this.socket || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    let frame: Buffer;
    try {
      frame = encodeFrame(batch);
    } catch (err) {
      // A message the format cannot carry (PeerMessageError) is a bug of ours; Raft survives the
      // lost batch, and this may run in a socket's 'connect' handler, where a throw would end the process.
      this.onError(err as Error);
      return;
    }
    this.socket.write(frame);
    this.stats.sent(this.peer, frame.length);
  }

  private dial(): void {
    if (this.closed) return;
    if (!this.tls) {
      this.connect(net.connect({ host: this.address.host, port: this.address.port }), 'connect');
      return;
    }
    // The certificate as it is on disk now; the peer's is verified against the trusted CA and its address.
    const credentials = this.tls.credentials;
    void credentials.refresh().then(() => {
      if (this.closed) return;
      this.connect(tls.connect({ host: this.address.host, port: this.address.port, secureContext: credentials.secureContext }), 'secureConnect');
    });
  }

  private connect(socket: net.Socket, ready: 'connect' | 'secureConnect'): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    this.socket = socket;
    socket.on(ready, () => {
      this.connected = true;
      this.backoffMs = MIN_BACKOFF_MS;
      this.stats.connection(this.peer, true);
      socket.write(this.hello);
      this.flush();
    });
    // A peer sends on our outgoing connection only to refuse us, in one line.
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      if (answer.length > MAX_LINE_BYTES) return;
      answer += chunk.toString('latin1');
      const nl = answer.indexOf('\n');
      if (nl >= 0 && answer.startsWith(REJECT)) {
        this.close();
        this.onRejected(answer.slice(REJECT.length, nl));
      }
    });
    socket.on('error', (err) => {
      this.stats.sendFailed(this.peer);
      // A refused TLS handshake (the peer's certificate, or ours) says more than a refused dial.
      if (this.connected || this.tls) this.onError(err);
    });
    socket.on('close', () => {
      if (this.connected) this.stats.connection(this.peer, false);
      this.connected = false;
      // A heartbeat in flight on the lost connection is never answered.
      this.heartbeatSentAt = undefined;
      this.socket = undefined;
      // Keep the (bounded) queue: it goes out when the link is back; Raft ignores what is stale.
      this.scheduleRedial();
    });
  }

  private scheduleRedial(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.dial();
    }, this.backoffMs);
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    this.queue = [];
  }
}

function parseHello(line: string): PeerHello | undefined {
  const m = /^QKV-PEER 2 (\d{1,20}) ([1-9]\d{0,19}) (\d+) (\S+)$/.exec(line);
  if (!m || BigInt(m[2]!) > 0xffffffffffffffffn) return undefined;
  const from = Number(m[3]);
  if (!Number.isSafeInteger(from) || from <= 0) return undefined;
  return { clusterId: m[1]!, memberId: m[2]!, from, peerUrl: m[4]! };
}

function urlAddress(url: string): PeerAddress | undefined {
  try {
    const u = new URL(url);
    return u.port ? { host: u.hostname, port: Number(u.port) } : undefined;
  } catch {
    return undefined;
  }
}

export class PeerTransport {
  private server: net.Server | undefined;
  private httpServer: http.Server | undefined;
  private stopped = false;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<net.Socket>();
  private readonly maxFrameBytes: number;
  private readonly stats: PeerStats;

  constructor(private readonly opts: TransportOptions) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    this.stats = opts.stats ?? NO_STATS;
  }

  async start(): Promise<void> {
    const peerTls = this.opts.tls;
    const terminator = peerTls
      ? new TlsTerminator(peerTls.credentials, peerTls.clientCertAuth, (socket) => this.accept(socket), {
          ...(peerTls.onRejected ? { onRejected: peerTls.onRejected } : {}),
        })
      : undefined;
    const server = net.createServer((socket) => {
      if (!terminator) {
        this.accept(socket);
        return;
      }
      // Closed at stop even while its handshake runs (bounded by the terminator's timeout).
      this.inbound.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => this.inbound.delete(socket));
      terminator.accept(socket).catch(() => socket.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    for (const [id, address] of this.opts.peers) this.setPeer(id, address);
  }

  /** Dials `peer` at `address` from now on (a new member, or one whose peer URL changed). */
  setPeer(peer: NodeId, address: PeerAddress): void {
    if (peer === this.opts.id || this.stopped) return;
    const link = this.links.get(peer);
    if (link && link.address.host === address.host && link.address.port === address.port) return;
    link?.close();
    const hello = `${HELLO} ${this.opts.hello.clusterId} ${this.opts.hello.memberId} ${this.opts.id} ${this.opts.hello.peerUrl}\n`;
    this.links.set(
      peer,
      new PeerLink(
        peer,
        address,
        hello,
        this.opts.maxQueuedMessages ?? 10_000,
        (err) => this.opts.onError?.(err, peer),
        (reason) => this.opts.onRejected?.(peer, reason),
        this.stats,
        this.opts.tls,
      ),
    );
  }

  /** Stops talking to `peer` (removed from the cluster). */
  removePeer(peer: NodeId): void {
    this.links.get(peer)?.close();
    this.links.delete(peer);
  }

  /** The peers dialled, by id. */
  peerIds(): NodeId[] {
    return [...this.links.keys()];
  }

  /** The port actually listened on (useful with port 0). */
  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : this.opts.listen.port;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.inbound.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.inbound.delete(socket));
    // The hello line first (or an HTTP request), then frames.
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'GET ') {
        socket.off('data', onHead);
        this.serveHttp(socket, head);
        return;
      }
      const nl = head.indexOf(0x0a);
      if (nl < 0) {
        if (head.length > MAX_LINE_BYTES) socket.destroy();
        return;
      }
      socket.off('data', onHead);
      const hello = parseHello(head.subarray(0, nl).toString('latin1'));
      if (!hello) {
        this.opts.onError?.(new PeerHelloError(), undefined);
        socket.destroy();
        return;
      }
      const refused = this.opts.admit?.(hello);
      if (refused !== undefined) {
        socket.end(`${REJECT}${refused}\n`);
        return;
      }
      if (!this.links.has(hello.from)) {
        const address = this.opts.addressOf?.(hello.from, hello.peerUrl) ?? urlAddress(hello.peerUrl);
        if (address) this.setPeer(hello.from, address);
      }
      this.readFrames(socket, hello.from, head.subarray(nl + 1));
    };
    socket.on('data', onHead);
  }

  private serveHttp(socket: net.Socket, head: Buffer): void {
    const handler = this.opts.httpHandler;
    if (!handler) {
      socket.destroy();
      return;
    }
    this.httpServer ??= http.createServer(handler);
    socket.pause();
    socket.unshift(head);
    this.httpServer.emit('connection', socket);
    socket.resume();
  }

  private readFrames(socket: net.Socket, from: NodeId, rest: Buffer): void {
    const decoder = new FrameDecoder(this.maxFrameBytes);
    const onData = (chunk: Buffer): void => {
      this.stats.received(from, chunk.length);
      let batches: Message[][];
      try {
        batches = decoder.push(chunk);
      } catch (err) {
        this.opts.onError?.(err as Error, from);
        socket.destroy();
        return;
      }
      for (const batch of batches) {
        for (const m of batch) {
          // Every message on the connection is from the sender its hello named.
          if (m.from !== from) continue;
          if (m.type === MessageType.HeartbeatResp) this.heartbeatAnswered(m.from);
          this.opts.onMessage(m);
        }
      }
    };
    socket.on('data', onData);
    if (rest.length > 0) onData(rest);
  }

  /**
   * Sends a Ready's messages: one frame per peer, written now rather than on a later turn of the
   * event loop, since a follower's acknowledgement or a leader's append is on the write's path.
   */
  send(msgs: Message[]): void {
    const touched = new Set<PeerLink>();
    for (const m of msgs) {
      const link = this.links.get(m.to);
      if (!link) continue;
      // The round trip is timed from the oldest heartbeat still unanswered on a live connection.
      if (m.type === MessageType.Heartbeat && link.heartbeatSentAt === undefined && link.isConnected) link.heartbeatSentAt = performance.now();
      link.enqueue(m);
      touched.add(link);
    }
    for (const link of touched) link.flush();
  }

  private heartbeatAnswered(peer: NodeId): void {
    const link = this.links.get(peer);
    if (link?.heartbeatSentAt === undefined) return;
    this.stats.roundTrip(peer, (performance.now() - link.heartbeatSentAt) / 1000);
    link.heartbeatSentAt = undefined;
  }

  droppedMessages(): number {
    let n = 0;
    for (const l of this.links.values()) n += l.dropped;
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const l of this.links.values()) l.close();
    this.links.clear();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
