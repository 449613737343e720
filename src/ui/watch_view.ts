/// <reference lib="dom" />
/**
 * The watch view: tails a key or prefix over /v1/watch's Server-Sent Events. Pause closes the
 * stream; resume (and a reconnect after an error) watches again from the revision after the
 * last one seen, so no change in between is missed (unless compacted, which the server says).
 * At most MAX_ROWS events are kept on the page.
 */
import type { V1WatchEvent } from '../api/v1.js';
import { displayBytes, keyBytes, pathOf, textBytes, valueView } from './bytes.js';
import { byId, h } from './dom.js';

const MAX_ROWS = 500;
const VALUE_PREVIEW = 200;
const RECONNECT_MS = 1000;

export function startWatchView(): void {
  const keyInput = byId<HTMLInputElement>('watch-key');
  const prefixBox = byId<HTMLInputElement>('watch-prefix');
  const startButton = byId<HTMLButtonElement>('watch-start');
  const pauseButton = byId<HTMLButtonElement>('watch-pause');
  const stateEl = byId('watch-state');
  const rows = byId('watch-events');
  let source: EventSource | undefined;
  let watched: { key: Uint8Array; prefix: boolean } | undefined;
  /** The last revision the stream is known to be complete up to. */
  let lastRevision = 0;
  let paused = false;
  let reconnect: ReturnType<typeof setTimeout> | undefined;

  const state = (text: string, name: string): void => {
    stateEl.textContent = text;
    stateEl.dataset['state'] = name;
  };

  const close = (): void => {
    source?.close();
    source = undefined;
    clearTimeout(reconnect);
  };

  const addEvent = (e: V1WatchEvent): void => {
    const v = e.type === 'PUT' ? valueView(e.kv) : undefined;
    const preview = v
      ? v.kind === 'hex'
        ? `(binary, ${v.size} bytes)`
        : v.text.length > VALUE_PREVIEW
          ? `${v.text.slice(0, VALUE_PREVIEW)}… (${v.size} bytes)`
          : v.text
      : '';
    rows.prepend(
      h(
        'tr',
        { 'data-revision': String(e.revision) },
        h('td', {}, String(e.revision)),
        h('td', {}, e.type),
        h('td', {}, displayBytes(keyBytes(e.kv))),
        h('td', {}, preview),
      ),
    );
    while (rows.children.length > MAX_ROWS) rows.lastElementChild?.remove();
  };

  const open = (): void => {
    if (!watched) return;
    close();
    const q = [watched.prefix ? 'prefix' : '', lastRevision ? `start_revision=${lastRevision + 1}` : ''].filter(Boolean).join('&');
    const es = new EventSource(`/v1/watch/${pathOf(watched.key)}${q ? `?${q}` : ''}`);
    source = es;
    const label = `${displayBytes(watched.key)}${watched.prefix ? '*' : ''}`;
    es.addEventListener('created', (m) => {
      const { revision } = JSON.parse((m as MessageEvent<string>).data) as { revision: number };
      if (!lastRevision) lastRevision = revision;
      state(`watching ${label} from revision ${lastRevision + 1}`, 'watching');
    });
    for (const type of ['put', 'delete']) {
      es.addEventListener(type, (m) => {
        const e = JSON.parse((m as MessageEvent<string>).data) as V1WatchEvent;
        addEvent(e);
        lastRevision = Math.max(lastRevision, e.revision);
      });
    }
    es.addEventListener('canceled', (m) => {
      const c = JSON.parse((m as MessageEvent<string>).data) as { compact_revision: number; reason: string };
      close();
      state(
        c.compact_revision ? `canceled: revision ${lastRevision + 1} is compacted (oldest kept ${c.compact_revision})` : `canceled: ${c.reason}`,
        'canceled',
      );
    });
    es.onerror = () => {
      // EventSource would reconnect on its own, without a start revision: do it here instead.
      close();
      state(`disconnected; reconnecting from revision ${lastRevision + 1}…`, 'reconnecting');
      reconnect = setTimeout(open, RECONNECT_MS);
    };
  };

  startButton.addEventListener('click', () => {
    watched = { key: textBytes(keyInput.value), prefix: prefixBox.checked };
    lastRevision = 0;
    paused = false;
    pauseButton.disabled = false;
    pauseButton.textContent = 'Pause';
    rows.replaceChildren();
    state('connecting…', 'connecting');
    open();
  });
  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    if (paused) {
      close();
      state(`paused after revision ${lastRevision}`, 'paused');
    } else {
      state('resuming…', 'connecting');
      open();
    }
  });
  byId('watch-clear').addEventListener('click', () => rows.replaceChildren());
}
