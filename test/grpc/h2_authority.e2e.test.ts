/**
 * The client port's HTTP/2 path (src/grpc/h2_authority.ts) with Node's own HTTP/2 server behind
 * it: connections whose requests name a URL as their authority (as clientv3's per-endpoint dial
 * does) are served with host:port instead of being reset, over many requests on one connection
 * (HPACK's dynamic table on both sides of the rewrite); ordinary connections are untouched.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hostOfAuthority } from '../../src/grpc/h2_authority.js';
import { ClientPortMux } from '../../src/grpc/mux.js';
import { freePorts } from '../server/ports.js';

describe('HTTP/2 authorities on the client port', () => {
  let mux: ClientPortMux;
  let h2: http2.Http2Server;
  let url: string;
  const seen: string[] = [];

  beforeAll(async () => {
    h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      seen.push(String(headers[':authority']));
      stream.respond({ ':status': 200 });
      stream.end(`${headers[':path']} ${headers['x-big'] ? String(headers['x-big']).length : 0}`);
    });
    mux = new ClientPortMux({ grpc: (socket) => h2.emit('connection', socket), http: http.createServer() });
    const [port] = await freePorts(1);
    await mux.listen('127.0.0.1', port!);
    url = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    mux.destroyConnections();
    await mux.close();
  });

  /** `n` requests on one connection with the given authority; their answers. */
  async function requests(authority: string | undefined, paths: string[], extra: Record<string, string> = {}): Promise<string[]> {
    const session = http2.connect(url);
    try {
      return await Promise.all(
        paths.map(
          (p) =>
            new Promise<string>((resolve, reject) => {
              const req = session.request({ ':path': p, ...(authority ? { ':authority': authority } : {}), ...extra });
              let body = '';
              req.on('data', (d: Buffer) => (body += d.toString()));
              req.on('end', () => resolve(body));
              req.on('error', reject);
              req.end();
            }),
        ),
      );
    } finally {
      session.close();
    }
  }

  test('a URL authority is served as host:port, request after request on one connection', async () => {
    seen.length = 0;
    const paths = Array.from({ length: 20 }, (_, i) => `/r${i}`);
    expect(await requests(url, paths)).toEqual(paths.map((p) => `${p} 0`));
    expect(new Set(seen)).toEqual(new Set([url.replace('http://', '')]));
    // Later requests, encoded against the client's dynamic table, still decode right.
    expect(await requests(`${url}/some/path`, ['/a', '/b', '/c'])).toEqual(['/a 0', '/b 0', '/c 0']);
  });

  test('a header block larger than one frame is split into CONTINUATION frames on the way through', async () => {
    const big = 'x'.repeat(40_000);
    expect(await requests(url, ['/big'], { 'x-big': big })).toEqual(['/big 40000']);
  });

  test('an ordinary authority is passed through as it is', async () => {
    seen.length = 0;
    expect(await requests(undefined, ['/plain', '/plain2'])).toEqual(['/plain 0', '/plain2 0']);
    expect(new Set(seen)).toEqual(new Set([url.replace('http://', '')]));
  });

  test('hostOfAuthority keeps valid authorities and cuts URLs back to host:port', () => {
    expect(hostOfAuthority('127.0.0.1:2379')).toBe('127.0.0.1:2379');
    expect(hostOfAuthority('[::1]:2379')).toBe('[::1]:2379');
    expect(hostOfAuthority('http://127.0.0.1:2379')).toBe('127.0.0.1:2379');
    expect(hostOfAuthority('https://example.com:2379/x/y')).toBe('example.com:2379');
  });
});
