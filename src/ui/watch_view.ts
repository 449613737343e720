/// <reference lib="dom" />
/**
 * The watch view: tails a key or prefix over /v1/watch's Server-Sent Events. Pause closes the
 * stream; resume (and a reconnect after an error) watches again from the revision after the
 * last one seen, so no change in between is missed (unless compacted, which the server says).
 * At most MAX_ROWS events are kept on the page. The stream is read with fetch, not
 * EventSource, so that it carries the logged-in user's token.
 */
import type { V1WatchEvent } from '../api/v1.js';
import { displayBytes, keyBytes, pathOf, textBytes, valueView } from './bytes.js';
import { byId, errorText, h, isPermissionDenied, send } from './dom.js';

const MAX_ROWS = 500;
const VALUE_PREVIEW = 200;
const RECONNECT_MS = 1000;
/** The stream has no deadline of its own: it ends when closed. */
const STREAM_TIMEOUT_MS = 2 ** 31 - 1;

/** Reads a Server-Sent Events answer, one call per event, until it ends or `signal` aborts. */
async function readEvents(res: Response, signal: AbortSignal, onEvent: (type: string, data: string) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => void reader.cancel());
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (!signal.aborted) onEvent(type, data.join('\n'));
    }
  }
}

export function startWatchView(): void {
  const keyInput = byId<HTMLInputElement>('watch-key');
  const prefixBox = byId<HTMLInputElement>('watch-prefix');
  const startButton = byId<HTMLButtonElement>('watch-start');
  const pauseButton = byId<HTMLButtonElement>('watch-pause');
  const stateEl = byId('watch-state');
  const rows = byId('watch-events');
  let source: AbortController | undefined;
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
    source?.abort();
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
    const stream = new AbortController();
    source = stream;
    const label = `${displayBytes(watched.key)}${watched.prefix ? '*' : ''}`;
    const onEvent = (type: string, data: string): void => {
      if (type === 'created') {
        const { revision } = JSON.parse(data) as { revision: number };
        if (!lastRevision) lastRevision = revision;
        state(`watching ${label} from revision ${lastRevision + 1}`, 'watching');
      } else if (type === 'put' || type === 'delete') {
        const e = JSON.parse(data) as V1WatchEvent;
        addEvent(e);
        lastRevision = Math.max(lastRevision, e.revision);
      } else if (type === 'canceled') {
        const c = JSON.parse(data) as { compact_revision: number; reason: string };
        close();
        state(
          c.compact_revision ? `canceled: revision ${lastRevision + 1} is compacted (oldest kept ${c.compact_revision})` : `canceled: ${c.reason}`,
          'canceled',
        );
      }
    };
    const url = `/v1/watch/${pathOf(watched.key)}${q ? `?${q}` : ''}`;
    send(url, { timeoutMs: STREAM_TIMEOUT_MS })
      .then((res) => readEvents(res, stream.signal, onEvent))
      .then(
        () => {
          if (!stream.signal.aborted) throw new Error('the stream ended');
        },
        (err: unknown) => {
          if (stream.signal.aborted) return;
          if (isPermissionDenied(err)) {
            close();
            state(`not permitted: you may not watch ${label}`, 'denied');
            return;
          }
          throw err;
        },
      )
      .catch((err: unknown) => {
        if (stream.signal.aborted) return;
        close();
        state(`disconnected (${errorText(err)}); reconnecting from revision ${lastRevision + 1}…`, 'reconnecting');
        reconnect = setTimeout(open, RECONNECT_MS);
      });
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
