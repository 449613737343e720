/**
 * src/tls.ts on real sockets in this process, with certificates from test/tls/make-certs.sh:
 * the client port's multiplexer over TLS (ALPN: HTTP/1.1 for an HTTP client, h2 for a gRPC
 * client), the verified client certificate's CN on both (the seam for certificate-based
 * authentication), credentials re-read when their files change (and kept when new files do not
 * load), and fetchOver's answers and failures.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ClientPortMux } from '../src/grpc/mux.js';
import { callCommonName, fetchOver, peerCommonName, TlsCredentials, TlsFileError } from '../src/tls.js';
import { makeTestCerts } from './server/cluster_harness.js';
import { freePorts } from './server/ports.js';

const WHO = '/qkv.test.Identity/Who';
const raw = (b: Buffer): Buffer => b;

describe('TLS on the client port (ClientPortMux) and the CN seam', () => {
  let certs: string;
  let mux: ClientPortMux;
  let grpcServer: grpc.Server;
  let httpServer: http.Server;
  let url: string;
  let port: number;
  const f = (name: string): string => path.join(certs, name);

  beforeAll(async () => {
    certs = await makeTestCerts();
    httpServer = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ cn: peerCommonName(req.socket) ?? null, httpVersion: req.httpVersion }));
    });
    grpcServer = new grpc.Server();
    grpcServer.addService(
      {
        Who: {
          path: WHO,
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
          originalName: 'Who',
        },
      },
      { Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(callCommonName(call) ?? '-')) },
    );
    const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const credentials = new TlsCredentials({ certFile: f('member.pem'), keyFile: f('member-key.pem'), trustedCaFile: f('ca.pem') });
    mux = new ClientPortMux({ grpc: (s) => injector.injectConnection(s), http: httpServer }, { credentials, clientCertAuth: true });
    [port] = (await freePorts(1)) as [number];
    await mux.listen('127.0.0.1', port);
    url = `https://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    const closed = mux?.close();
    mux?.destroyConnections();
    await closed;
    grpcServer?.forceShutdown();
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  const clientCreds = (cert?: string): TlsCredentials =>
    new TlsCredentials({ trustedCaFile: f('ca.pem'), ...(cert ? { certFile: f(`${cert}.pem`), keyFile: f(`${cert}-key.pem`) } : {}) });

  test("an HTTP client is served HTTP/1.1 over TLS, with the CN of its verified certificate; without one, or with another CA's, it is refused", async () => {
    const withCert = await (await fetchOver(`${url}/`, {}, clientCreds('client'))).json();
    expect(withCert).toEqual({ cn: 'root', httpVersion: '1.1' });
    for (const cert of [undefined, 'other-client']) {
      const failed = await fetchOver(`${url}/`, {}, clientCreds(cert)).then(
        (res) => `HTTP ${res.status}`,
        (err: Error) => err.message,
      );
      expect(failed).toBe('fetch failed');
    }
  });

  test('a gRPC client negotiates h2 and reaches the gRPC server, which sees the CN', async () => {
    const who = (cert?: string): Promise<string> => {
      const creds = grpc.credentials.createSsl(
        readFileSync(f('ca.pem')),
        cert ? readFileSync(f(`${cert}-key.pem`)) : null,
        cert ? readFileSync(f(`${cert}.pem`)) : null,
      );
      const client = new grpc.Client(`127.0.0.1:${port}`, creds);
      return new Promise<string>((resolve, reject) => {
        client.makeUnaryRequest(WHO, raw, raw, Buffer.alloc(0), (err, res) => {
          client.close();
          if (err) reject(err);
          else resolve(res!.toString());
        });
      });
    };
    expect(await who('client')).toBe('root');
    await expect(who()).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  test('without --client-cert-auth a client without a certificate is served (as nobody)', async () => {
    const open = new ClientPortMux(
      { grpc: (s) => s.destroy(), http: httpServer },
      { credentials: new TlsCredentials({ certFile: f('member.pem'), keyFile: f('member-key.pem') }), clientCertAuth: false },
    );
    const [p] = (await freePorts(1)) as [number];
    await open.listen('127.0.0.1', p);
    try {
      expect(await (await fetchOver(`https://127.0.0.1:${p}/`, {}, clientCreds())).json()).toEqual({ cn: null, httpVersion: '1.1' });
    } finally {
      const closed = open.close();
      open.destroyConnections();
      await closed;
    }
  });

  test('a plaintext client on the TLS port gets no answer', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/`).then(
      (res) => `HTTP ${res.status}`,
      (err: Error) => err.message,
    );
    expect(r).toBe('fetch failed');
  });
});

describe("h2_authority's rewrite over TLS", () => {
  test('a URL authority (as clientv3 may send) reaches the HTTP/2 server as host:port over TLS', async () => {
    const certs = await makeTestCerts();
    const f = (name: string): string => path.join(certs, name);
    const seen: string[] = [];
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      seen.push(String(headers[':authority']));
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const mux = new ClientPortMux(
      { grpc: (socket) => h2.emit('connection', socket), http: http.createServer() },
      { credentials: new TlsCredentials({ certFile: f('member.pem'), keyFile: f('member-key.pem'), trustedCaFile: f('ca.pem') }), clientCertAuth: true },
    );
    const [port] = (await freePorts(1)) as [number];
    await mux.listen('127.0.0.1', port);
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ca: readFileSync(f('ca.pem')),
      cert: readFileSync(f('client.pem')),
      key: readFileSync(f('client-key.pem')),
    });
    try {
      const get = (authority: string): Promise<string> =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': '/x', ':authority': authority });
          let body = '';
          req.on('data', (d: Buffer) => (body += d.toString()));
          req.on('end', () => resolve(body));
          req.on('error', reject);
          req.end();
        });
      expect(await get(`https://127.0.0.1:${port}`)).toBe('ok');
      expect(await get(`https://127.0.0.1:${port}`)).toBe('ok');
      expect(seen).toEqual([`127.0.0.1:${port}`, `127.0.0.1:${port}`]);
    } finally {
      session.close();
      const closed = mux.close();
      mux.destroyConnections();
      await closed;
      await rm(certs, { recursive: true, force: true });
    }
  });
});

describe('TlsCredentials: loaded once, re-read when the files change', () => {
  let certs: string;
  beforeAll(async () => {
    certs = await makeTestCerts();
  });
  afterAll(async () => {
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  test("a file that is missing or does not load is refused at once, with etcd's words", () => {
    expect(() => new TlsCredentials({ certFile: path.join(certs, 'nope.pem'), keyFile: path.join(certs, 'member-key.pem') })).toThrow(
      new TlsFileError(`open ${path.join(certs, 'nope.pem')}: no such file or directory`),
    );
    // A key that is not the certificate's.
    expect(() => new TlsCredentials({ certFile: path.join(certs, 'member.pem'), keyFile: path.join(certs, 'client-key.pem') })).toThrow(TlsFileError);
  });

  test('a renewed certificate is taken at the next refresh; a half-written one leaves the previous in use', async () => {
    const errors: Error[] = [];
    const creds = new TlsCredentials({ certFile: path.join(certs, 'member.pem'), keyFile: path.join(certs, 'member-key.pem') }, (e) => errors.push(e));
    const serial = (): string => new X509Certificate(creds.options.cert as Buffer).serialNumber;
    const first = serial();
    await creds.refresh();
    expect([creds.generation, serial()]).toEqual([0, first]);
    execFileSync('bash', [path.resolve('test/tls/make-certs.sh'), certs, 'renew']);
    await creds.refresh();
    const renewed = serial();
    expect(creds.generation).toBe(1);
    expect(renewed).not.toBe(first);
    // Half-written: the key cut short. The renewed pair stays in use, and the failure is reported.
    const key = readFileSync(path.join(certs, 'member-key.pem'));
    writeFileSync(path.join(certs, 'member-key.pem'), key.subarray(0, 40));
    await creds.refresh();
    expect([creds.generation, serial()]).toEqual([1, renewed]);
    expect(errors.map((e) => e.constructor)).toEqual([TlsFileError]);
    // Whole again: loaded.
    writeFileSync(path.join(certs, 'member-key.pem'), key);
    await creds.refresh();
    expect([creds.generation, serial()]).toEqual([2, renewed]);
  });
});
