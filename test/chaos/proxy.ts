/**
 * A fault proxy for one directed peer link: member A dials B through it (serve --peer-dial), so
 * the harness can cut the link (everything sent is dropped, connections are closed), delay it,
 * and heal it, independently of the reverse direction.
 */
import net from 'node:net';

export type LinkState = { kind: 'open' } | { kind: 'cut' } | { kind: 'delay'; ms: number };

export class FaultProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private state: LinkState = { kind: 'open' };
  /** Bytes forwarded, for checks that traffic flows. */
  forwarded = 0;

  constructor(
    readonly listenPort: number,
    readonly target: { host: string; port: number },
  ) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => resolve());
    });
  }

  get current(): LinkState {
    return this.state;
  }

  /** Drops everything: open connections are closed, new ones are closed at once. */
  cut(): void {
    this.state = { kind: 'cut' };
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Every chunk waits `ms` before it is forwarded (order kept). */
  delay(ms: number): void {
    this.state = { kind: 'delay', ms };
  }

  heal(): void {
    this.state = { kind: 'open' };
  }

  private accept(client: net.Socket): void {
    if (this.state.kind === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.on('data', (chunk: Buffer) => this.forward(chunk, upstream));
    // Peers answer nothing on a Raft link, but relay it anyway to stay a faithful TCP hop.
    upstream.on('data', (chunk: Buffer) => {
      if (this.state.kind !== 'cut') client.write(chunk);
    });
  }

  private forward(chunk: Buffer, to: net.Socket): void {
    const s = this.state;
    if (s.kind === 'cut') return;
    if (s.kind === 'delay') {
      setTimeout(() => {
        if (this.state.kind !== 'cut' && !to.destroyed) {
          to.write(chunk);
          this.forwarded += chunk.length;
        }
      }, s.ms);
      return;
    }
    to.write(chunk);
    this.forwarded += chunk.length;
  }

  async stop(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
