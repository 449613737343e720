/**
 * The web console (/ui) in a real headless browser (Debian's chromium, driven by
 * playwright-core) on a real 3-member cluster: the page is served by a follower and polls
 * every member's own /v1/status across origins; it shows the leader, browses the key tree
 * down to keys written here (JSON, binary, 1 MiB), pages a prefix of a few thousand keys (not
 * 100,000: npm test stays quick; the paging is the same), tails a watch live across a pause,
 * lists leases, draws fsync/apply latency sparklines from each member's /metrics, marks a
 * stopped and a killed member down, and shows the leader change that follows. Screenshots go to .qkv-tmp/ui/ (git-ignored).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, SHOTS, WAIT } from './browser.js';
import { LocalCluster } from '../server/cluster_harness.js';
import type { Client } from '../../src/client/client.js';

const MANY = 3000;

/** A GET with the path sent exactly as given (fetch would normalize `..` away). */
function rawGet(base: string, rawPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web console on a 3-member cluster', () => {
  let cluster: LocalCluster;
  let client: Client;
  let leader: string;
  let serving: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 3 });
    cluster.startAll();
    leader = await cluster.waitForLeader();
    // Served by a follower: the leader's status comes from another origin.
    serving = cluster.names.find((n) => n !== leader)!;
    client = cluster.client();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.destroy();
  });

  test('serves the page and its modules, nothing else, and status and metrics across origins', async () => {
    const base = cluster.url(serving);
    const redirect = await rawGet(base, '/ui');
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('/ui/');
    const index = await rawGet(base, '/ui/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toContain("script-src 'self'");
    expect(index.body).toContain('<script type="module" src="/ui/app.js">');
    const app = await rawGet(base, '/ui/app.js');
    expect(app.status).toBe(200);
    expect(app.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(app.body).toContain("from './cluster_view.js'");
    for (const p of [
      '/ui/../package.json',
      '/ui/../../package.json',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/..%2f..%2fpackage.json',
      '/ui/%2Fetc%2Fpasswd',
      '/ui//etc/passwd',
      '/ui/./app.js',
      '/ui/app.d.ts',
      '/ui/../server/http_ui.js',
      '/ui/%2e%2e%2fserver%2fhttp_ui.js',
      '/ui/__proto__',
    ]) {
      const r = await rawGet(base, p);
      expect(r.status, p).toBe(404);
      expect(r.body, p).not.toContain('"name": "qkv"');
      expect(r.body, p).not.toContain('root:');
    }
    // Read-only by default, auth off: what the page is told.
    expect(await (await fetch(`${base}/ui/config.json`)).json()).toEqual({ writable: false, auth_enabled: false });
    for (const p of ['/v1/status', '/metrics']) {
      const res = await fetch(cluster.url(leader) + p, { headers: { origin: base } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
    }
    // Only those two: the key API stays same-origin.
    const kv = await fetch(`${cluster.url(leader)}/v1/kv/x`, { headers: { origin: base } });
    expect(kv.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('qkv ui --no-open prints the console URL of each endpoint', async () => {
    const out = execFileSync(
      process.execPath,
      [path.resolve('bin/qkv.mjs'), '--endpoints', `${cluster.url(serving)}/,${cluster.url(leader)}`, 'ui', '--no-open'],
      {
        encoding: 'utf8',
      },
    );
    expect(out).toBe(`${cluster.url(serving)}/ui/\n${cluster.url(leader)}/ui/\n`);
    for (const url of out.trim().split('\n')) expect((await fetch(url)).status).toBe(200);
  });

  test('the cluster view shows every member up, the leader and its term', async () => {
    await page.goto(`${cluster.url(serving)}/ui`);
    await expect.poll(() => page.locator('#members tr[data-state="up"]').count(), WAIT).toBe(3);
    await expect.poll(() => page.locator('#members tr[data-role="leader"]').getAttribute('data-member'), WAIT).toBe(leader);
    const term = (await cluster.status(leader))!.term;
    await expect.poll(() => page.getByTestId('summary').textContent(), WAIT).toContain(`leader ${leader} · term ${term}`);
    await expect.poll(() => page.locator('#leader-changes li').first().textContent(), WAIT).toContain(`term ${term} · leader ${leader}`);
    for (const name of cluster.names) {
      const row = page.locator(`#members tr[data-member="${name}"]`);
      await expect.poll(() => row.textContent(), WAIT).toContain(cluster.url(name));
    }
    await page.screenshot({ path: path.join(SHOTS, 'cluster.png') });
  });

  test('keys: the tree leads to a written key; JSON is pretty-printed, binary is hex, 1 MiB is truncated', async () => {
    const config = { replicas: 3, tags: ['a', 'b'] };
    const first = await client.put('app/config', JSON.stringify({ replicas: 1 }));
    await client.put(Buffer.from('app/bin\xff', 'latin1'), Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x41]));
    const big = 'x'.repeat(1024 * 1024);
    const wrote = await client.put('app/big', big);
    const second = await client.put('app/config', JSON.stringify(config)); // version 2

    await page.getByRole('button', { name: 'Keys' }).click();
    await page.locator('li[data-folder="app/"] > button').click();
    await expect.poll(() => page.locator('li[data-folder="app/"] > .count').textContent(), WAIT).toBe('3 keys');

    await page.locator('button[data-key="app/config"]').click();
    const value = page.getByTestId('value');
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('app/config');
    expect(await value.getAttribute('data-kind')).toBe('json');
    expect(await value.textContent()).toBe(JSON.stringify(config, null, 2));
    expect(await page.locator('[data-field="version"]').textContent()).toBe('2');
    expect(await page.locator('[data-field="lease"]').textContent()).toBe('none');
    // A read-only console: no put or delete anywhere.
    expect(await page.getByTestId('write-controls').count()).toBe(0);
    expect(await page.getByTestId('new-key-button').count()).toBe(0);
    // Its history: both versions, newest first.
    await page.getByTestId('show-history').click();
    const history = page.locator('[data-testid="history"] tbody tr');
    await expect.poll(() => history.count(), WAIT).toBe(2);
    expect(await history.evaluateAll((rows) => rows.map((r) => r.textContent))).toEqual([
      `${second.header.revision}2${JSON.stringify(config, null, 2)}`,
      `${first.header.revision}1${JSON.stringify({ replicas: 1 }, null, 2)}`,
    ]);
    await page.screenshot({ path: path.join(SHOTS, 'keys-json.png') });

    await page.locator('button[data-key="app/bin\\\\xff"]').click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('app/bin\\xff');
    expect(await value.getAttribute('data-kind')).toBe('hex');
    expect(await value.textContent()).toBe(`00000000  ${'00 01 fe ff 41'.padEnd(47)}  ....A`);
    await page.screenshot({ path: path.join(SHOTS, 'keys-binary.png') });

    await page.locator('button[data-key="app/big"]').click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('app/big');
    expect(await page.getByTestId('value-note').textContent()).toBe('truncated: showing the first 65,536 characters of 1,048,576 bytes');
    expect((await value.textContent())!.length).toBe(64 * 1024);
    expect(await page.locator('[data-field="mod revision"]').textContent()).toBe(String(wrote.header.revision));
    // Still responsive: another key opens after the large one.
    await page.locator('button[data-key="app/config"]').click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('app/config');
  });

  test(`keys: a prefix of ${MANY} keys is counted and listed page by page, sub-folders skipped past`, async () => {
    const keys = Array.from({ length: MANY }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 100) {
      await client.txn({
        compare: [],
        success: keys.slice(i, i + 100).map((k) => ({ requestPut: { key: Buffer.from(k), value: Buffer.from('v') } })),
        failure: [],
      });
    }
    // A sub-folder sorting first, with more keys than a page: listed once, then the rest follows.
    for (let i = 0; i < 300; i += 100) {
      await client.txn({
        compare: [],
        success: Array.from({ length: 100 }, (_, j) => ({ requestPut: { key: Buffer.from(`many/a/${i + j}`), value: Buffer.from('v') } })),
        failure: [],
      });
    }
    await page.getByRole('button', { name: 'reload' }).click();
    await page.locator('li[data-folder="many/"] > button').click();
    await expect.poll(() => page.locator('li[data-folder="many/"] > .count').textContent(), WAIT).toBe(`${(MANY + 300).toLocaleString('en-US')} keys`);
    await expect.poll(() => page.locator('li[data-folder="many/a/"] > .count').textContent(), WAIT).toBe('300 keys');
    const listed = page.locator('li[data-folder="many/"] > ul > li > button[data-key]');
    await expect.poll(() => listed.count(), WAIT).toBeGreaterThan(0);
    const firstPage = await listed.count();
    expect(firstPage).toBeLessThan(MANY);
    let clicks = 0;
    const more = page.locator('li[data-folder="many/"] > ul > li > [data-testid="load-more"]');
    while ((await listed.count()) < MANY) {
      const before = await listed.count();
      await more.click();
      await expect.poll(() => listed.count(), WAIT).toBeGreaterThan(before);
      clicks++;
      expect(clicks).toBeLessThan(MANY / 100);
    }
    expect(await listed.count()).toBe(MANY);
    expect(await page.locator('li[data-folder="many/"] > ul > li[data-folder]').count()).toBe(1);
    expect(await listed.last().getAttribute('data-key')).toBe(keys.at(-1));
    await expect.poll(() => more.count(), WAIT).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'keys-many.png') });
  });

  test('watch: a put shows up live; changes made while paused show up on resume', async () => {
    await page.getByRole('button', { name: 'Watch' }).click();
    await page.fill('#watch-key', 'app/');
    await page.click('#watch-start');
    await expect.poll(() => page.getByTestId('watch-state').getAttribute('data-state'), WAIT).toBe('watching');
    const live = await client.put('app/live', 'first');
    const row = (rev: number) => page.locator(`#watch-events tr[data-revision="${rev}"]`);
    await expect.poll(() => row(live.header.revision).textContent(), WAIT).toBe(`${live.header.revision}PUTapp/livefirst`);

    await page.click('#watch-pause');
    await expect.poll(() => page.getByTestId('watch-state').textContent(), WAIT).toBe(`paused after revision ${live.header.revision}`);
    const during = await client.put('app/live', 'while paused');
    const gone = await client.delete('app/live');
    await page.click('#watch-pause'); // resume
    await expect.poll(() => row(during.header.revision).textContent(), WAIT).toBe(`${during.header.revision}PUTapp/livewhile paused`);
    await expect.poll(() => row(gone.header.revision).textContent(), WAIT).toBe(`${gone.header.revision}DELETEapp/live`);
    expect(await page.locator('#watch-events tr').count()).toBe(3);
    await page.screenshot({ path: path.join(SHOTS, 'watch.png') });
  });

  test('leases: listed with their TTL and keys', async () => {
    const lease = await client.leaseGrant(600);
    await client.put('app/leased', 'v', { lease: lease.id });
    await page.getByRole('button', { name: 'Leases' }).click();
    const row = page.locator(`#lease-rows tr[data-lease="${lease.id.toString(16)}"]`);
    await expect.poll(() => row.count(), WAIT).toBe(1);
    const ttl = Number(await row.locator('[data-field="ttl"]').textContent());
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);
    expect(await row.locator('td').nth(2).textContent()).toBe('600');
    expect(await row.locator('td').nth(3).textContent()).toBe('1');
    await page.screenshot({ path: path.join(SHOTS, 'leases.png') });
  });

  test('latency sparklines fill; a stopped member is marked down and up again; a killed leader is down and its successor shown', async () => {
    await page.getByRole('button', { name: 'Cluster' }).click();
    const leaderRow = page.locator(`#members tr[data-member="${leader}"]`);
    // Writes between two scrapes give an interval a mean fsync and apply latency.
    for (const spark of ['fsync', 'apply']) {
      await expect
        .poll(async () => {
          await client.put('tick', String(Date.now()));
          return Number(await leaderRow.locator(`[data-spark="${spark}"]`).getAttribute('data-points'));
        }, WAIT)
        .toBeGreaterThan(0);
    }
    const victim = cluster.names.find((n) => n !== serving && n !== leader)!;
    const state = (name: string) => page.locator(`#members tr[data-member="${name}"]`).getAttribute('data-state');
    // Stopped (SIGSTOP): its connections are accepted but never answered, until the console's timeout.
    cluster.pause(victim);
    await expect.poll(() => state(victim), WAIT).toBe('down');
    cluster.resume(victim);
    await expect.poll(() => state(victim), WAIT).toBe('up');
    // Killed: refused at once. The two others elect a new leader, which the page shows.
    const oldTerm = (await cluster.status(leader))!.term;
    await cluster.kill(leader);
    await expect.poll(() => state(leader), WAIT).toBe('down');
    const successor = await cluster.waitForLeader([serving, victim]);
    const newTerm = (await cluster.status(successor))!.term;
    expect(newTerm).toBeGreaterThan(oldTerm);
    await expect.poll(() => page.locator('#members tr[data-role="leader"]').getAttribute('data-member'), WAIT).toBe(successor);
    await expect.poll(() => page.locator('#members tr[data-state="up"]').count(), WAIT).toBe(2);
    await expect.poll(() => page.getByTestId('summary').textContent(), WAIT).toContain(`leader ${successor} · term ${newTerm} · 2/3 members up`);
    await expect.poll(() => page.locator('#leader-changes li').first().textContent(), WAIT).toContain(`term ${newTerm} · leader ${successor}`);
    expect(await page.locator('#leader-changes li').last().textContent()).toContain(`term ${oldTerm} · leader ${leader}`);
    // Only the chosen tab's view is shown.
    expect(await page.locator('#cluster').isVisible()).toBe(true);
    for (const other of ['#keys', '#watch', '#leases']) expect(await page.locator(other).isVisible(), other).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, 'member-down.png') });
    expect(pageErrors).toEqual([]);
  });
});
