/**
 * The web console (/ui) in a real headless browser with 100,000 keys under one prefix (written
 * in txns of 128 puts, several at once): the prefix's count is exact, its first page shows,
 * "load more" pages on, and the page stays responsive (a key opens, another folder opens) while
 * the prefix is open; a 1 MiB value and a binary key beside them remain correct.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { LocalCluster } from '../server/cluster_harness.js';
import type { Client } from '../../src/client/client.js';
import { launchChromium, SHOTS, WAIT } from './browser.js';

const KEYS = 100_000;
/** etcd's most operations in one txn (--max-txn-ops' default), which qkv keeps too. */
const PER_TXN = 128;
const IN_FLIGHT = 8;

const keyName = (i: number): string => `big/k${String(i).padStart(6, '0')}`;

describe(`web console with ${KEYS.toLocaleString('en-US')} keys under one prefix`, () => {
  let cluster: LocalCluster;
  let client: Client;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    cluster = await LocalCluster.create({ nodes: 1 });
    cluster.startAll();
    await cluster.waitForLeader();
    client = cluster.client();
    let next = 0;
    const writer = async (): Promise<void> => {
      while (next < KEYS) {
        const from = next;
        next = Math.min(KEYS, next + PER_TXN);
        const success = [];
        for (let i = from; i < next; i++) success.push({ requestPut: { key: Buffer.from(keyName(i)), value: Buffer.from(`v${i}`) } });
        await client.txn({ compare: [], success, failure: [] });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, writer));
    await client.put('other/big', 'y'.repeat(1024 * 1024));
    await client.put(Buffer.from([0x6f, 0x74, 0x68, 0x65, 0x72, 0x2f, 0xc3, 0x28, 0x00]), Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.destroy();
  });

  test('the prefix is counted exactly, its first page shows, paging goes on, and other clicks are handled', async () => {
    expect((await client.get('big/', { prefix: true, countOnly: true })).count).toBe(KEYS);
    await page.goto(`${cluster.url(cluster.names[0]!)}/ui/`);
    await page.getByRole('button', { name: 'Keys' }).click();
    await expect.poll(() => page.locator('#tree > div > .count').textContent(), WAIT).toBe(`${(KEYS + 2).toLocaleString('en-US')} keys`);
    await page.locator('li[data-folder="big/"] > button').click();
    await expect.poll(() => page.locator('li[data-folder="big/"] > .count').textContent(), WAIT).toBe('100,000 keys');
    const listed = page.locator('li[data-folder="big/"] > ul > li > button[data-key]');
    const more = page.locator('li[data-folder="big/"] > ul > li > [data-testid="load-more"]');
    await expect.poll(() => more.count(), WAIT).toBe(1);
    const firstPage = await listed.count();
    expect(firstPage).toBeGreaterThan(0);
    expect(firstPage).toBeLessThan(KEYS);
    expect(await listed.first().getAttribute('data-key')).toBe(keyName(0));
    expect(await listed.last().getAttribute('data-key')).toBe(keyName(firstPage - 1));
    for (let clicks = 1; clicks <= 3; clicks++) {
      await more.click();
      await expect.poll(() => listed.count(), WAIT).toBe(firstPage * (clicks + 1));
    }
    expect(await listed.last().getAttribute('data-key')).toBe(keyName(4 * firstPage - 1));
    // Still responsive with the prefix open: a key opens, another folder opens.
    await page.locator(`button[data-key="${keyName(firstPage + 7)}"]`).click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe(keyName(firstPage + 7));
    expect(await page.getByTestId('value').textContent()).toBe(`v${firstPage + 7}`);
    await page.screenshot({ path: path.join(SHOTS, 'scale-100k.png') });

    await page.locator('li[data-folder="other/"] > button').click();
    await expect.poll(() => page.locator('li[data-folder="other/"] > .count').textContent(), WAIT).toBe('2 keys');
    await page.locator('button[data-key="other/big"]').click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('other/big');
    expect(await page.locator('[data-field="size"]').textContent()).toBe('1.0 MiB (text)');
    expect((await page.getByTestId('value').textContent())!.length).toBe(64 * 1024);
    // Not UTF-8 (0xc3 0x28), with a NUL: escaped in the tree, its value a hex dump.
    await page.locator('button[data-key="other/\\\\xc3(\\\\x00"]').click();
    await expect.poll(() => page.getByTestId('key-name').textContent(), WAIT).toBe('other/\\xc3(\\x00');
    expect(await page.getByTestId('value').textContent()).toBe(`00000000  ${'de ad be ef'.padEnd(47)}  ....`);
    // The big prefix's pages are still there and go on from where they were.
    await more.click();
    await expect.poll(() => listed.count(), WAIT).toBe(5 * firstPage);
    expect(pageErrors).toEqual([]);
  });
});
