/// <reference lib="dom" />
/**
 * The keys view: a tree of the keys by their `/` segments, loaded lazily folder by folder and
 * page by page (keys_only ranges of PAGE keys from where the last page ended, skipping past a
 * sub-folder once it is seen), each folder with its key count (count_only); and a key's value
 * and revisions. Read-only.
 */
import type { V1KeyValue, V1RangeResponse } from '../api/v1.js';
import { childOf, displayBytes, equalBytes, formatBytes, keyAfter, keyBytes, pathOf, prefixEnd, startsWith, valueView } from './bytes.js';
import { byId, errorText, getJson, h } from './dom.js';

/** Keys per range request. */
const PAGE = 200;
/** Children shown per "load more" at most, and range requests made for them at most. */
const CHILDREN_PER_LOAD = 100;
const REQUESTS_PER_LOAD = 20;
/** Earlier versions of a key shown at most. */
const HISTORY = 10;
/** Characters of each version's value shown in the history. */
const HISTORY_PREVIEW = 120;
/** Reading a large value may take longer than a status poll. */
const VALUE_TIMEOUT_MS = 15_000;

interface Folder {
  prefix: Uint8Array;
  /** Where the next page starts; null once every child is listed. */
  next: Uint8Array | null;
  list: HTMLUListElement;
  more: HTMLLIElement;
}

let selected: HTMLButtonElement | undefined;

function rangeUrl(start: Uint8Array): string {
  return `/v1/kv/${pathOf(start)}?from_key&keys_only&limit=${PAGE}`;
}

async function countOf(prefix: Uint8Array): Promise<number> {
  return (await getJson<V1RangeResponse>(`/v1/kv/${pathOf(prefix)}?prefix&count_only`)).count;
}

function folderNode(parent: Uint8Array, prefix: Uint8Array): HTMLLIElement {
  const countEl = h('span', { class: 'count' });
  const li = h('li', { 'data-folder': displayBytes(prefix) });
  let open: Folder | undefined;
  const toggle = h('button', { 'aria-expanded': 'false' }, `▸ ${displayBytes(prefix.subarray(parent.length))}`);
  toggle.addEventListener('click', () => {
    if (open) {
      open.list.remove();
      open = undefined;
      toggle.setAttribute('aria-expanded', 'false');
      toggle.textContent = `▸ ${displayBytes(prefix.subarray(parent.length))}`;
      return;
    }
    open = newFolder(prefix);
    li.append(open.list);
    toggle.setAttribute('aria-expanded', 'true');
    toggle.textContent = `▾ ${displayBytes(prefix.subarray(parent.length))}`;
    void loadMore(open);
  });
  li.append(toggle, countEl);
  countOf(prefix).then(
    (n) => (countEl.textContent = `${n.toLocaleString('en-US')} keys`),
    (err: unknown) => (countEl.textContent = `count failed: ${errorText(err)}`),
  );
  return li;
}

function keyNode(parent: Uint8Array, key: Uint8Array): HTMLLIElement {
  const rest = key.subarray(parent.length);
  const button = h('button', { 'data-key': displayBytes(key) }, rest.length ? displayBytes(rest) : '(this key itself)');
  button.addEventListener('click', () => {
    selected?.classList.remove('selected');
    selected = button;
    button.classList.add('selected');
    void showKey(key);
  });
  return h('li', {}, button);
}

function newFolder(prefix: Uint8Array): Folder {
  const list = h('ul', { class: 'tree' });
  const more = h('li');
  list.append(more);
  return { prefix, next: prefix, list, more };
}

/** Lists the folder's next children: up to CHILDREN_PER_LOAD, in up to REQUESTS_PER_LOAD pages. */
async function loadMore(f: Folder): Promise<void> {
  f.more.replaceChildren(h('span', { class: 'muted' }, 'loading…'));
  let added = 0;
  let lastFolder: Uint8Array | undefined;
  try {
    for (let requests = 0; f.next && added < CHILDREN_PER_LOAD && requests < REQUESTS_PER_LOAD; requests++) {
      const r = await getJson<V1RangeResponse>(rangeUrl(f.next));
      let next: Uint8Array | null = null;
      let left = false;
      let stoppedEarly = false;
      for (const kv of r.kvs) {
        const key = keyBytes(kv);
        if (!startsWith(key, f.prefix)) {
          left = true; // past the folder: its last child is listed
          break;
        }
        const c = childOf(f.prefix, key);
        if (c.folder) {
          if (lastFolder && equalBytes(lastFolder, c.bytes)) continue;
          lastFolder = c.bytes;
          f.more.before(folderNode(f.prefix, c.bytes));
          next = prefixEnd(c.bytes);
        } else {
          f.more.before(keyNode(f.prefix, key));
          next = keyAfter(key);
        }
        added++;
        // A sub-folder may hold many more keys of this page: go on after it.
        if (c.folder && added >= CHILDREN_PER_LOAD) {
          stoppedEarly = true;
          break;
        }
      }
      f.next = left ? null : stoppedEarly ? next : !r.more || r.kvs.length === 0 ? null : next;
      if (lastFolder && f.next && startsWith(f.next, lastFolder)) f.next = prefixEnd(lastFolder);
    }
  } catch (err) {
    f.more.replaceChildren(h('span', { class: 'error' }, `listing failed: ${errorText(err)}`), ' ', retryButton(f));
    return;
  }
  if (f.next) f.more.replaceChildren(h('button', { 'data-testid': 'load-more', onclick: () => void loadMore(f) }, 'load more…'));
  else f.more.replaceChildren(f.list.children.length === 1 ? h('span', { class: 'muted' }, '(no keys)') : '');
}

function retryButton(f: Folder): HTMLButtonElement {
  return h('button', { onclick: () => void loadMore(f) }, 'retry');
}

async function showKey(key: Uint8Array): Promise<void> {
  const detail = byId('key-detail');
  detail.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
  let kv: V1KeyValue | undefined;
  try {
    kv = (await getJson<V1RangeResponse>(`/v1/kv/${pathOf(key)}`, VALUE_TIMEOUT_MS)).kvs[0];
  } catch (err) {
    detail.replaceChildren(h('p', { class: 'error' }, `reading the key failed: ${errorText(err)}`));
    return;
  }
  if (!kv) {
    detail.replaceChildren(h('p', { class: 'muted' }, `${displayBytes(key)}: not found (deleted since listed)`));
    return;
  }
  const v = valueView(kv);
  const field = (name: string, value: string): Node[] => [h('dt', {}, name), h('dd', { 'data-field': name }, value)];
  detail.replaceChildren(
    h('h3', { 'data-testid': 'key-name' }, displayBytes(key)),
    h(
      'dl',
      {},
      ...field('create revision', String(kv.create_revision)),
      ...field('mod revision', String(kv.mod_revision)),
      ...field('version', String(kv.version)),
      ...field('lease', kv.lease_hex ? `0x${kv.lease_hex}` : 'none'),
      ...field('size', `${formatBytes(v.size)} (${v.kind})`),
    ),
    v.note ? h('p', { class: 'note', 'data-testid': 'value-note' }, v.note) : '',
    h('pre', { 'data-testid': 'value', 'data-kind': v.kind }, v.text),
    historyPanel(key, kv),
  );
}

/**
 * The key's versions since it was (last) created, newest first: each read at the revision
 * before the previous one's mod revision (a version > 1 means the key held a value then), at
 * most HISTORY, until the history is compacted.
 */
function historyPanel(key: Uint8Array, current: V1KeyValue): HTMLElement {
  const panel = h('div', { 'data-testid': 'history' });
  const rows = h('tbody');
  const load = async (): Promise<void> => {
    panel.replaceChildren(
      h('h4', {}, 'History'),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'mod revision'), h('th', {}, 'version'), h('th', {}, 'value'))), rows),
    );
    const row = (kv: V1KeyValue): void => {
      const v = valueView(kv);
      const text =
        v.kind === 'hex' ? `(binary, ${v.size} bytes)` : v.text.length > HISTORY_PREVIEW ? `${v.text.slice(0, HISTORY_PREVIEW)}… (${v.size} bytes)` : v.text;
      rows.append(
        h('tr', { 'data-revision': String(kv.mod_revision) }, h('td', {}, String(kv.mod_revision)), h('td', {}, String(kv.version)), h('td', {}, text)),
      );
    };
    row(current);
    let last = current;
    try {
      for (let shown = 1; shown < HISTORY && last.version > 1; shown++) {
        const prev = (await getJson<V1RangeResponse>(`/v1/kv/${pathOf(key)}?rev=${last.mod_revision - 1}`, VALUE_TIMEOUT_MS)).kvs[0];
        if (!prev) break;
        row(prev);
        last = prev;
      }
      if (last.version > 1) panel.append(h('p', { class: 'muted' }, `${last.version - 1} earlier versions not shown`));
    } catch (err) {
      panel.append(h('p', { class: 'note' }, `earlier versions: ${errorText(err)}`));
    }
  };
  panel.append(
    h(
      'button',
      { 'data-testid': 'show-history', onclick: () => void load() },
      `history (${current.version} version${current.version === 1 ? '' : 's'} since created)`,
    ),
  );
  return panel;
}

export function startKeysView(): void {
  const root = newFolder(new Uint8Array(0));
  const total = h('span', { class: 'count' });
  const reload = h('button', { onclick: () => startKeysView() }, 'reload');
  byId('tree').replaceChildren(h('div', {}, h('strong', {}, 'all keys'), total, ' ', reload), root.list);
  countOf(root.prefix).then(
    (n) => (total.textContent = `${n.toLocaleString('en-US')} keys`),
    (err: unknown) => (total.textContent = `count failed: ${errorText(err)}`),
  );
  void loadMore(root);
}
