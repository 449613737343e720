/**
 * The web console tests' browser: Debian's chromium (installed by install-chromium.sh when
 * missing), headless, driven by playwright-core; screenshots go to .qkv-tmp/ui/ (git-ignored).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';

export const SHOTS = path.resolve('.qkv-tmp/ui');

/** How long a test waits for the page to show something, polling. */
export const WAIT = { timeout: 20_000, interval: 100 };

/** Launches the browser; `args` are chromium's own flags beyond the quiet headless ones. */
export async function launchChromium(args: string[] = []): Promise<Browser> {
  execFileSync('bash', [path.resolve('test/ui/install-chromium.sh')], { stdio: 'inherit' });
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
}
