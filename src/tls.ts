/**
 * TLS, the one way for every side of qkv (client port, peer port, a member dialling a peer or
 * the leader, the client library and the CLI): a certificate, its key and a trusted CA read from
 * files and read again when one of them changes on disk (etcd re-reads them on every handshake),
 * a server side that terminates TLS on sockets accepted elsewhere (the client port's
 * multiplexer, the peer transport), and `fetchOver`, Node's fetch when the URL is http:// and an
 * https request with these credentials when it is https:// (the global fetch takes no CA or
 * client certificate).
 */
import { Buffer } from 'node:buffer';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import https from 'node:https';
import type net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { CodedError } from './errors.js';

/** The files of one TLS identity, as etcd's flags name them; each optional on a client. */
export interface TlsFiles {
  /** PEM certificate chain (etcd's --cert-file / etcdctl's --cert). */
  certFile?: string;
  /** Its PEM private key (--key-file / --key). */
  keyFile?: string;
  /**
   * PEM CA bundle that verifies the other side (--trusted-ca-file / --cacert): the client's
   * certificate on a server with client-cert-auth, the server's on a client. Without it Node's
   * root CAs verify, as Go's system pool does for etcd.
   */
  trustedCaFile?: string;
}

/** A server port's TLS: its certificate and key, and whether clients must show a certificate the CA signed (etcd's --client-cert-auth). */
export interface ServerTlsFiles extends TlsFiles {
  certFile: string;
  keyFile: string;
  clientCertAuth: boolean;
}

/** A TLS file that cannot be read or does not load (bad PEM, key not matching the certificate). */
export class TlsFileError extends CodedError {
  constructor(message: string) {
    super('ERR_TLS_FILE', message);
  }
}

/** What identifies a file's version: its inode, size and modification time. */
function stampOf(statOf: () => Stats): string {
  try {
    const s = statOf();
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** The file paths of `files`, in a fixed order. */
function pathsOf(files: TlsFiles): string[] {
  return [files.certFile, files.keyFile, files.trustedCaFile].filter((f): f is string => f !== undefined);
}

function readAll(files: TlsFiles): tls.SecureContextOptions {
  const read = (file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      // etcd's words: "open /x.pem: no such file or directory".
      const e = err as NodeJS.ErrnoException;
      throw new TlsFileError(e.code === 'ENOENT' ? `open ${file}: no such file or directory` : `open ${file}: ${e.message}`);
    }
  };
  const cert = read(files.certFile);
  const key = read(files.keyFile);
  const ca = read(files.trustedCaFile);
  const options: tls.SecureContextOptions = {
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(ca ? { ca } : {}),
  };
  try {
    // Loading checks the PEM and that the key is the certificate's.
    tls.createSecureContext(options);
  } catch (err) {
    throw new TlsFileError(`tls: failed to load ${pathsOf(files).join(', ')}: ${(err as Error).message}`);
  }
  return options;
}

/**
 * The credentials of `files`, loaded at once (a file that does not load throws TlsFileError),
 * then re-read by `refresh` whenever a file's size, modification time or inode changed: a
 * certificate renewed on disk is used from the next connection on, without a restart. New files
 * that do not load (half-written) leave the previous credentials in use until they do.
 */
export class TlsCredentials {
  private loaded: tls.SecureContextOptions;
  private context: tls.SecureContext;
  private stamp: string;
  private agentCache: https.Agent | undefined;
  /** Counts the loads, so that a server knows when to take the new context. */
  generation = 0;

  constructor(
    readonly files: TlsFiles,
    private readonly onReloadError: (err: Error) => void = () => {},
  ) {
    // Stamped before reading: a file changed in between is read again at the next refresh.
    this.stamp = pathsOf(files)
      .map((f) => stampOf(() => statSync(f)))
      .join('|');
    this.loaded = readAll(files);
    this.context = tls.createSecureContext(this.loaded);
  }

  private async stampNow(): Promise<string> {
    const parts = await Promise.all(
      pathsOf(this.files).map((f) =>
        stat(f).then(
          (s) => stampOf(() => s),
          () => 'missing',
        ),
      ),
    );
    return parts.join('|');
  }

  /** Re-reads the files if they changed since they were last read. */
  async refresh(): Promise<void> {
    const now = await this.stampNow();
    if (now === this.stamp) return;
    try {
      this.loaded = readAll(this.files);
    } catch (err) {
      this.onReloadError(err as Error);
      return;
    }
    this.stamp = now;
    this.context = tls.createSecureContext(this.loaded);
    this.agentCache?.destroy();
    this.agentCache = undefined;
    this.generation++;
  }

  /** The certificate, key and CA as loaded (what tls.Server#setSecureContext takes). */
  get options(): tls.SecureContextOptions {
    return this.loaded;
  }

  get secureContext(): tls.SecureContext {
    return this.context;
  }

  /** A keep-alive https agent with the current credentials (a new one after a reload). */
  agent(): https.Agent {
    this.agentCache ??= new https.Agent({ keepAlive: true, secureContext: this.context });
    return this.agentCache;
  }

  /** Closes the agent's idle connections. */
  close(): void {
    this.agentCache?.destroy();
    this.agentCache = undefined;
  }
}

/** A port's TLS: its credentials, and whether clients must show a certificate the trusted CA signed. */
export interface PortTls {
  credentials: TlsCredentials;
  clientCertAuth: boolean;
}

/**
 * The seam for etcd's certificate-based authentication (with --client-cert-auth, etcd takes a
 * verified client certificate's CN as the user): the CN of the certificate the client of an
 * HTTP request showed (`peerCommonName(request.raw.socket)`, both HTTP APIs), if the socket is
 * TLS and the certificate verified.
 */
export function peerCommonName(socket: net.Socket | tls.TLSSocket | undefined): string | undefined {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return undefined;
  return commonNameOf(socket.getPeerCertificate());
}

/**
 * The same for a gRPC call (grpc-js's `call.getAuthContext()`, which reads the TLS socket of the
 * connection): the verified client certificate's CN. A connection served through
 * h2_authority's rewriting stream (a client that sends URLs as authorities; etcdctl over TLS
 * does not) has none.
 */
export function callCommonName(call: { getAuthContext(): { sslPeerCertificate?: tls.PeerCertificate } | null }): string | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  return cert ? commonNameOf(cert) : undefined;
}

function commonNameOf(cert: tls.PeerCertificate): string | undefined {
  const cn: unknown = cert.subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : undefined;
}

export interface TlsTerminatorOptions {
  /** ALPN: picks the protocol among those the client offers (undefined: none fits, the handshake fails). */
  alpn?: (offered: readonly string[]) => string | undefined;
  /** A handshake that failed (etcd logs "rejected connection from ..."), with the client's address when the socket still knows it. */
  onRejected?: (err: Error, remote: string | undefined) => void;
}

/** How long a connection may take to finish its TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The server side of TLS on sockets that another server accepted: each connection is handed to
 * `accept` and comes out decrypted, its handshake done, to `onSecure`. The credentials are
 * refreshed from disk before each handshake. With clientCertAuth a client without a
 * certificate that the trusted CA signed fails the handshake: nothing it sends is ever read.
 */
export class TlsTerminator {
  private readonly server: tls.Server;
  private generation: number;

  constructor(
    private readonly credentials: TlsCredentials,
    clientCertAuth: boolean,
    onSecure: (socket: tls.TLSSocket) => void,
    opts: TlsTerminatorOptions = {},
  ) {
    this.generation = credentials.generation;
    const alpn = opts.alpn;
    this.server = tls.createServer(
      {
        ...credentials.options,
        requestCert: clientCertAuth,
        rejectUnauthorized: clientCertAuth,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        ...(alpn ? { ALPNCallback: ({ protocols }: { protocols: string[] }) => alpn(protocols) } : {}),
      },
      onSecure,
    );
    this.server.on('tlsClientError', (err, socket) => {
      opts.onRejected?.(err, socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`);
      socket.destroy();
    });
  }

  /** Starts the handshake on `socket` (plain TCP, nothing read from it yet). */
  async accept(socket: net.Socket): Promise<void> {
    await this.credentials.refresh();
    if (socket.destroyed) return;
    if (this.credentials.generation !== this.generation) {
      this.generation = this.credentials.generation;
      this.server.setSecureContext(this.credentials.options);
    }
    this.server.emit('connection', socket);
  }
}

/** What `fetchOver` sends: the subset of fetch's RequestInit qkv uses. */
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  signal?: AbortSignal;
}

/**
 * `fetch(url, init)`, with `credentials` for an https:// URL: the same Response, the same
 * failures (a TypeError "fetch failed" whose cause is the socket's error, or the signal's reason).
 */
export async function fetchOver(url: string, init: FetchInit, credentials: TlsCredentials | undefined): Promise<Response> {
  if (!url.startsWith('https:') || !credentials) {
    const { body, ...rest } = init;
    const sent = typeof body === 'string' || body === undefined ? body : (new Uint8Array(body) as Uint8Array<ArrayBuffer>);
    return fetch(url, { ...rest, ...(sent !== undefined ? { body: sent } : {}) });
  }
  await credentials.refresh();
  const signal = init.signal;
  return new Promise<Response>((resolve, reject) => {
    const req = https.request(
      url,
      { method: init.method ?? 'GET', headers: init.headers ?? {}, agent: credentials.agent(), ...(signal ? { signal } : {}) },
      (res) => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        }
        const status = res.statusCode ?? 500;
        const empty = status === 204 || status === 304 || init.method === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers }));
      },
    );
    req.on('error', (err) => reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err })));
    req.end(init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(init.body));
  });
}
