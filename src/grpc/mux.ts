/**
 * One client port for gRPC and HTTP, as etcd serves both on its client URL: each connection's
 * first bytes decide. The HTTP/2 connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", which
 * gRPC clients send first, in cleartext) goes to the gRPC server; anything else to the HTTP/1
 * server. The peeked bytes are put back into the socket before it is handed over. An HTTP/2
 * connection is first read up to its first request (h2_authority.ts: etcd's Go client may send
 * a URL as the authority, which Node's HTTP/2 refuses).
 *
 * With TLS (an https:// client URL) every connection is TLS: its handshake comes first
 * (src/tls.ts: a client without a certificate the CA signed fails it when --client-cert-auth
 * is on), then the decrypted stream is dispatched the same way. ALPN gives http/1.1 to a client
 * that offers it (curl, Go's and Node's HTTP clients) and h2 to one that offers only h2 (gRPC
 * clients): HTTP/2 on this port is gRPC's, as in plaintext.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { H2_PREFACE, inspectH2Connection } from './h2_authority.js';
import { TlsTerminator, type PortTls } from '../tls.js';

/** A connection that has not said what it is within this time is dropped. */
const PEEK_TIMEOUT_MS = 30_000;

export interface ClientPortTargets {
  grpc: (socket: Duplex) => void;
  /** A plaintext HTTP/2 connection, served through the gRPC front (h2_front.ts); `seen`: its bytes from the preface on. */
  grpcFront?: (socket: net.Socket, seen: Buffer) => void;
  http: HttpServer;
}

export class ClientPortMux {
  private readonly server: net.Server;
  /** Connections still being peeked at (shutdown destroys them). */
  private readonly pending = new Set<net.Socket>();
  /** TLS connections whose handshake is not done, by remote address (shutdown destroys them). */
  private readonly handshaking = new Map<string, net.Socket>();
  /**
   * Connections handed over. Node's HTTP server tracks connections (closeAllConnections) only
   * when it listens itself, which it does not here: shutdown closes them from this set.
   */
  private readonly handed = new Set<net.Socket>();

  private readonly tls: TlsTerminator | undefined;

  constructor(
    private readonly targets: ClientPortTargets,
    tlsConfig?: PortTls & { onRejected?: (err: Error, remote: string | undefined) => void },
  ) {
    this.tls = tlsConfig
      ? new TlsTerminator(tlsConfig.credentials, tlsConfig.clientCertAuth, (socket) => this.secured(socket), {
          alpn: (offered) => (offered.includes('http/1.1') ? 'http/1.1' : offered.includes('h2') ? 'h2' : undefined),
          ...(tlsConfig.onRejected ? { onRejected: tlsConfig.onRejected } : {}),
        })
      : undefined;
    // No Nagle: a gRPC answer is several small writes (HEADERS, DATA, trailers), and a client's
    // delayed ACK would hold the later ones back (as etcd's Go server, whose sockets are TCP_NODELAY).
    this.server = net.createServer({ noDelay: true }, (socket) => (this.tls ? this.handshake(this.tls, socket) : this.classify(socket)));
  }

  /** A TLS connection: its handshake first (bounded by the terminator), then its decrypted stream is classified. */
  private handshake(terminator: TlsTerminator, socket: net.Socket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    this.handshaking.set(key, socket);
    socket.once('close', () => this.handshaking.delete(key));
    socket.on('error', () => socket.destroy());
    terminator.accept(socket).catch(() => socket.destroy());
  }

  private secured(socket: tls.TLSSocket): void {
    this.handshaking.delete(`${socket.remoteAddress}:${socket.remotePort}`);
    this.classify(socket);
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  private classify(socket: net.Socket): void {
    this.pending.add(socket);
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), PEEK_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      this.pending.delete(socket);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', cleanup);
    };
    const onError = (): void => {
      cleanup();
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const h2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      // A prefix of the preface so far: wait for the rest before deciding.
      if (h2 && seen.length < H2_PREFACE.length) return;
      cleanup();
      this.handed.add(socket);
      socket.once('close', () => this.handed.delete(socket));
      const front = this.targets.grpcFront;
      if (h2 && front !== undefined && this.tls === undefined) {
        front(socket, seen);
      } else if (h2) {
        inspectH2Connection(socket, seen, {
          native: (bytes) => {
            socket.pause();
            socket.unshift(bytes);
            this.targets.grpc(socket);
          },
          rewrite: (stream) => this.targets.grpc(stream),
        });
      } else {
        socket.pause();
        socket.unshift(seen);
        this.targets.http.emit('connection', socket);
        // Node's HTTP server reads the socket's handle directly; the bytes put back above are
        // only seen once the stream flows again.
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', cleanup);
  }

  /**
   * Stops accepting connections and drops those not yet handed over; resolves once every
   * connection is closed (see destroyConnections).
   */
  close(): Promise<void> {
    for (const s of this.pending) s.destroy();
    this.pending.clear();
    for (const s of this.handshaking.values()) s.destroy();
    this.handshaking.clear();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Closes every connection still open (idle HTTP keep-alives, anything the servers left). */
  destroyConnections(): void {
    for (const s of this.handed) s.destroy();
    this.handed.clear();
  }
}
