/**
 * The web console (/ui) in a real headless browser, the parts beyond reading: a member started
 * with --ui-writable offers put and delete, each done only once confirmed (cancel changes
 * nothing), checked with the real etcdctl; with auth enabled the console logs in and shows only
 * the prefix the user was granted, the server's permission denied answers are said plainly, and a
 * token refused later (the password changed) brings the login back and the request through after;
 * `qkv ui` opens the URL with xdg-open (a stand-in on the PATH that records it); and the console
 * over https on a TLS member, with chromium trusting the test CA's key (no certificate errors
 * ignored wholesale).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { LocalCluster, makeTestCerts } from '../server/cluster_harness.js';
import { etcdctl } from '../grpc/helpers.js';
import type { Client } from '../../src/client/client.js';
import { launchChromium, SHOTS, WAIT } from './browser.js';

describe('web console: writable, and logged in under auth', () => {
  let cluster: LocalCluster;
  let client: Client;
  let name: string;
  let endpoint: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const ctl = async (args: string[]): Promise<string> => {
    const r = await etcdctl(endpoint, args);
    expect(r.code, `etcdctl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 1 });
    name = cluster.names[0]!;
    cluster.extraArgs.set(name, ['--ui-writable']);
    cluster.startAll();
    await cluster.waitForLeader();
    endpoint = cluster.url(name);
    client = cluster.client();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.destroy();
  });

  const openKey = async (key: string): Promise<void> => {
    await page.locator(`button[data-key="${key.replaceAll('\\', '\\\\')}"]`).click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe(key);
  };

  test('put a new key and a new value, each after its confirmation; etcdctl reads them', async () => {
    expect(await (await fetch(`${endpoint}/ui/config.json`)).json()).toEqual({ writable: true, auth_enabled: false });
    await client.put('app/a', 'one');
    await page.goto(`${endpoint}/ui/`);
    await page.getByRole('button', { name: 'Keys' }).click();
    await page.getByTestId('new-key-button').click();
    await page.getByTestId('new-key').fill('app/new');
    await page.getByTestId('put-value').fill('{"made":"in the console"}');
    await page.getByTestId('put').click();
    await expect.poll(() => page.getByTestId('confirm').textContent(), WAIT).toContain('Put 25 B to app/new (a new key)?');
    // Not written before it is confirmed.
    expect(await ctl(['get', 'app/new'])).toBe('');
    await page.screenshot({ path: path.join(SHOTS, 'write-confirm-put.png') });
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('app/new');
    expect(await ctl(['get', 'app/new', '--print-value-only'])).toBe('{"made":"in the console"}\n');
    expect(await page.getByTestId('value').getAttribute('data-kind')).toBe('json');

    // A new value for an existing key: its version shown in the question; cancel keeps the old one.
    await page.locator('li[data-folder="app/"] > button').click();
    await openKey('app/a');
    await page.getByTestId('put-value').fill('two');
    await page.getByTestId('put').click();
    await expect.poll(() => page.getByTestId('confirm').textContent(), WAIT).toContain('Put 3 B to app/a, replacing version 1');
    await page.getByTestId('confirm-cancel').click();
    await expect.poll(() => page.getByTestId('confirm').count(), WAIT).toBe(0);
    expect(await ctl(['get', 'app/a', '--print-value-only'])).toBe('one\n');
    await page.getByTestId('put').click();
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.locator('[data-field="version"]').textContent(), WAIT).toBe('2');
    expect(await page.getByTestId('value').textContent()).toBe('two');
    expect(await ctl(['get', 'app/a', '--print-value-only'])).toBe('two\n');
  });

  test('delete: cancel leaves the key; confirmed, it is gone, a binary key too', async () => {
    await client.put(Buffer.from('app/bin\xff\x00', 'latin1'), Buffer.from([1, 2, 3]));
    await page.getByRole('button', { name: 'reload' }).click();
    await page.locator('li[data-folder="app/"] > button').click();
    await openKey('app/a');
    await page.getByTestId('delete').click();
    await expect.poll(() => page.getByTestId('confirm').textContent(), WAIT).toContain('Delete app/a (version 2');
    await page.screenshot({ path: path.join(SHOTS, 'write-confirm-delete.png') });
    await page.getByTestId('confirm-cancel').click();
    expect(await ctl(['get', 'app/a', '--print-value-only'])).toBe('two\n');
    await page.getByTestId('delete').click();
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('write-result').textContent(), WAIT).toMatch(/^deleted at revision \d+$/);
    expect(await ctl(['get', 'app/a'])).toBe('');

    await openKey('app/bin\\xff\\x00');
    await page.getByTestId('delete').click();
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('write-result').textContent(), WAIT).toMatch(/^deleted at revision \d+$/);
    expect((await client.get(Buffer.from('app/bin\xff\x00', 'latin1'))).kvs).toEqual([]);
    expect((await client.get('app/new')).kvs).toHaveLength(1); // the others stay
  });

  test('auth on: a login form; a user granted app/ sees app/ only, and denied answers are said plainly', async () => {
    await client.put('secret/k', 'hidden');
    await ctl(['user', 'add', 'root:rootpw']);
    await ctl(['user', 'add', 'alice:alicepw']);
    await ctl(['role', 'add', 'app-rw']);
    await ctl(['role', 'grant-permission', 'app-rw', 'readwrite', 'app/', '--prefix=true']);
    await ctl(['user', 'grant-role', 'alice', 'app-rw']);
    await ctl(['auth', 'enable']);
    expect(await (await fetch(`${endpoint}/ui/config.json`)).json()).toEqual({ writable: true, auth_enabled: true });

    await page.goto(`${endpoint}/ui/`);
    await expect.poll(() => page.getByTestId('login').isVisible(), WAIT).toBe(true);
    await page.fill('#login-name', 'alice');
    await page.fill('#login-password', 'wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect
      .poll(() => page.getByTestId('login-error').textContent(), WAIT)
      .toBe('login failed: 400: etcdserver: authentication failed, invalid user ID or password');
    await page.fill('#login-password', 'alicepw');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByTestId('user').textContent(), WAIT).toBe('user alice');
    expect(await page.getByTestId('login').isVisible()).toBe(false);

    await page.getByRole('button', { name: 'Keys' }).click();
    await expect.poll(() => page.getByTestId('tree').locator('strong').textContent(), WAIT).toBe('keys user alice may read');
    await expect.poll(() => page.locator('li[data-folder="app/"] > .count').textContent(), WAIT).toBe('1 keys');
    // Only the granted prefix: no other root, nothing of secret/.
    expect(await page.locator('#tree > ul > li').count()).toBe(1);
    expect(await page.getByTestId('tree').textContent()).not.toContain('secret');
    await page.locator('li[data-folder="app/"] > button').click();
    await openKey('app/new');
    expect(await page.getByTestId('value').textContent()).toBe(JSON.stringify({ made: 'in the console' }, null, 2));
    // Writes as alice: within app/ allowed.
    await page.getByTestId('put-value').fill('by alice');
    await page.getByTestId('put').click();
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('value').textContent(), WAIT).toBe('by alice');
    expect(await ctl(['--user', 'root:rootpw', 'get', 'app/new', '--print-value-only'])).toBe('by alice\n');
    // Outside app/: the server's permission denied, said as such, and the page goes on.
    await page.getByTestId('new-key-button').click();
    await page.getByTestId('new-key').fill('secret/k');
    await page.getByTestId('put-value').fill('overwritten');
    await page.getByTestId('put').click();
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('write-result').textContent(), WAIT).toBe('put: not permitted for user alice');
    expect(await ctl(['--user', 'root:rootpw', 'get', 'secret/k', '--print-value-only'])).toBe('hidden\n');
    await page.screenshot({ path: path.join(SHOTS, 'auth-denied.png') });

    await page.getByRole('button', { name: 'Watch' }).click();
    await page.fill('#watch-key', 'secret/');
    await page.click('#watch-start');
    await expect.poll(() => page.getByTestId('watch-state').textContent(), WAIT).toBe('not permitted: you may not watch secret/*');
    // The stream carries the token: a watch alice may make shows changes live.
    await page.fill('#watch-key', 'app/');
    await page.click('#watch-start');
    await expect.poll(() => page.getByTestId('watch-state').getAttribute('data-state'), WAIT).toBe('watching');
    const r = await ctl(['--user', 'root:rootpw', 'put', 'app/live', 'seen', '-w', 'json']);
    const revision = (JSON.parse(r) as { header: { revision: number } }).header.revision;
    await expect.poll(() => page.locator(`#watch-events tr[data-revision="${revision}"]`).textContent(), WAIT).toBe(`${revision}PUTapp/liveseen`);
    await page.screenshot({ path: path.join(SHOTS, 'auth-watch.png') });

    // alice's password changes under the open page: her token is refused (401), the login form
    // asks her again (her name fixed), and the put she was making goes through once she has.
    await page.getByRole('button', { name: 'Keys' }).click();
    await openKey('app/new');
    const rootToken = (
      (await (await fetch(`${endpoint}/v3/auth/authenticate`, { method: 'POST', body: JSON.stringify({ name: 'root', password: 'rootpw' }) })).json()) as {
        token: string;
      }
    ).token;
    const changed = await fetch(`${endpoint}/v3/auth/user/changepw`, {
      method: 'POST',
      headers: { authorization: rootToken },
      body: JSON.stringify({ name: 'alice', password: 'alicepw2' }),
    });
    expect(changed.status).toBe(200);
    await page.getByTestId('put-value').fill('after the new password');
    await page.getByTestId('put').click();
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('login').isVisible(), WAIT).toBe(true);
    expect(await page.getByTestId('login-error').textContent()).toBe('the session expired (or the password changed): log in again');
    expect(await page.inputValue('#login-name')).toBe('alice');
    await page.fill('#login-password', 'alicepw');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByTestId('login-error').textContent(), WAIT).toMatch(/^login failed: 400: etcdserver: authentication failed/);
    await page.fill('#login-password', 'alicepw2');
    await page.getByRole('button', { name: 'Log in' }).click();
    // (A put done shows the key again, its new value.)
    await expect.poll(() => page.getByTestId('value').textContent(), WAIT).toBe('after the new password');
    expect(await page.getByTestId('login').isVisible()).toBe(false);
    expect(await ctl(['--user', 'root:rootpw', 'get', 'app/new', '--print-value-only'])).toBe('after the new password\n');
    expect(pageErrors).toEqual([]);
  });
});

test('qkv ui opens the first URL with xdg-open from the PATH, and prints every URL', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-ui-open-'));
  try {
    const record = path.join(dir, 'opened');
    writeFileSync(path.join(dir, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${record}'\n`);
    chmodSync(path.join(dir, 'xdg-open'), 0o755);
    const out = execFileSync(process.execPath, [path.resolve('bin/qkv.mjs'), '--endpoints', 'http://127.0.0.1:1/,http://127.0.0.1:2', 'ui'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dir}${path.delimiter}${process.env['PATH'] ?? ''}` },
    });
    expect(out).toBe('http://127.0.0.1:1/ui/\nhttp://127.0.0.1:2/ui/\n');
    await expect.poll(() => readFileSync(record, 'utf8'), WAIT).toBe('http://127.0.0.1:1/ui/');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('web console over https on a TLS member', () => {
  let cluster: LocalCluster;
  let certs: string;
  let browser: Browser;

  beforeAll(async () => {
    certs = await makeTestCerts();
    cluster = await LocalCluster.create({ nodes: 1, tls: { dir: certs } });
    cluster.startAll();
    await cluster.waitForLeader();
    // Chromium trusts the test CA's key (and nothing else it would not trust anyway).
    const ca = new X509Certificate(readFileSync(path.join(certs, 'ca.pem')));
    const spki = createHash('sha256')
      .update(ca.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64');
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]);
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.destroy();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  test('the page loads over https, shows the member up and its keys', async () => {
    const name = cluster.names[0]!;
    const url = cluster.url(name);
    expect(url.startsWith('https://')).toBe(true);
    await cluster.client().put('tls/k', 'over https');
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${url}/ui/`);
    await expect.poll(() => page.locator('#members tr[data-state="up"]').count(), WAIT).toBe(1);
    await page.getByRole('button', { name: 'Keys' }).click();
    await page.locator('li[data-folder="tls/"] > button').click();
    await page.locator('button[data-key="tls/k"]').click();
    await expect.poll(() => page.getByTestId('value').textContent(), WAIT).toBe('over https');
    await page.screenshot({ path: path.join(SHOTS, 'tls.png') });
    expect(errors).toEqual([]);
    // Without the CA's key trusted, the same browser refuses the member's certificate.
    const untrusting = await launchChromium();
    try {
      const other = await untrusting.newPage();
      await expect(other.goto(`${url}/ui/`)).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await untrusting.close();
    }
  });
});
