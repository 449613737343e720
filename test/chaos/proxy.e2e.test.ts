import { afterEach, describe, expect, test } from 'vitest';
import net from 'node:net';
import { FaultProxy } from './proxy.js';
import { freePorts } from '../server/ports.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function echoServer(port: number): Promise<{ received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = net.createServer((s) => s.on('data', (c: Buffer) => received.push(c)));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  return { received };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('FaultProxy', () => {
  test('forwards, cuts, delays and heals a link', async () => {
    const [targetPort, proxyPort] = await freePorts(2);
    const sink = await echoServer(targetPort!);
    const proxy = new FaultProxy(proxyPort!, { host: '127.0.0.1', port: targetPort! });
    await proxy.start();
    cleanup.push(() => proxy.stop());

    const c1 = net.connect(proxyPort!, '127.0.0.1');
    await new Promise((r) => c1.once('connect', r));
    c1.write('hello');
    await until(() => Buffer.concat(sink.received).toString() === 'hello');

    proxy.cut();
    await new Promise((r) => c1.once('close', r));
    const c2 = net.connect(proxyPort!, '127.0.0.1');
    await new Promise((r) => c2.once('close', r));
    expect(Buffer.concat(sink.received).toString()).toBe('hello');

    proxy.delay(200);
    const c3 = net.connect(proxyPort!, '127.0.0.1');
    await new Promise((r) => c3.once('connect', r));
    c3.write('later');
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(sink.received).toString()).toBe('hello');
    await until(() => Buffer.concat(sink.received).toString() === 'hellolater');

    proxy.heal();
    c3.write('!');
    await until(() => Buffer.concat(sink.received).toString() === 'hellolater!');
    c3.destroy();
  });
});
