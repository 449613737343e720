import net from 'node:net';

/**
 * Loopback ports for test clusters. Not the kernel's ephemeral ports (listen on 0): those come
 * from the range the kernel also gives outgoing connections (32768-60999 on Linux), so a port
 * noted and closed here could be taken by any client socket, or handed to a test file running
 * in parallel, before the member that was to listen on it starts (seen: EADDRINUSE, and a
 * member receiving another test's HTTP on its peer port). Instead each vitest worker draws from
 * its own slice of 10000-29999, below that range, never handing out a port twice per process,
 * and checks each one is free by binding it.
 */
const BASE = 10_000;
const SLICE = 1_000;
const SLICES = 20;

/**
 * This process's slice: the vitest worker's pool id, else (a bench or chaos run) from the pid.
 * QKV_TEST_PORT_SLICE shifts it, so that test runs of two checkouts at once draw apart.
 */
const slice = (Number(process.env['VITEST_POOL_ID'] ?? process.pid) + Number(process.env['QKV_TEST_PORT_SLICE'] ?? 0)) % SLICES;
/** Where in the slice to look next; a random start so that successive test files of one worker differ. */
let cursor = Math.floor(Math.random() * SLICE);

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `n` distinct free loopback ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tried = 0; ports.length < n; tried++) {
    if (tried >= SLICE) throw new Error(`no ${n} free loopback ports in ${BASE + slice * SLICE}..${BASE + (slice + 1) * SLICE - 1}`);
    const port = BASE + slice * SLICE + (cursor++ % SLICE);
    if (await bindable(port)) ports.push(port);
  }
  return ports;
}
