/// <reference lib="dom" />
/** The web console's entry (loaded by the page at /ui/): the session (login with auth on), the tabs and their views. */
import { startClusterView } from './cluster_view.js';
import { startKeysView } from './keys_view.js';
import { startLeasesView } from './leases_view.js';
import { startSession } from './session.js';
import { startWatchView } from './watch_view.js';

const tabs = [...document.querySelectorAll<HTMLButtonElement>('nav button[data-tab]')];
let current = 'cluster';
let keysStarted = false;

const session = await startSession();

function show(tab: string): void {
  current = tab;
  for (const b of tabs) {
    const name = b.dataset['tab']!;
    b.setAttribute('aria-selected', String(name === tab));
    document.getElementById(name)!.hidden = name !== tab;
  }
  if (tab === 'keys' && !keysStarted) {
    keysStarted = true;
    startKeysView(session);
  }
}

for (const b of tabs) b.addEventListener('click', () => show(b.dataset['tab']!));
show(current);
startClusterView();
startWatchView();
startLeasesView(() => current === 'leases');
