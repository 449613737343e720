/// <reference lib="dom" />
/**
 * The keys view: a tree of the keys by their `/` segments, loaded lazily folder by folder and
 * page by page (keys_only ranges of PAGE keys from where the last page ended, skipping past a
 * sub-folder once it is seen), each folder with its key count (count_only); and a key's value
 * and revisions. On a member started with --ui-writable: put (a new key or a new value) and
 * delete, each shown first and done only once confirmed; otherwise no such controls. With auth
 * on, a user who may not read every key sees the ranges it may read (session.ts) as the tree's
 * roots; an answer of permission denied is said as such where it happens.
 */
import type { V1KeyValue, V1RangeResponse } from '../api/v1.js';
import { childOf, displayBytes, equalBytes, formatBytes, keyAfter, keyBytes, pathOf, prefixEnd, startsWith, textBytes, utf8Text, valueView } from './bytes.js';
import { byId, errorText, getJson, h, isPermissionDenied, send } from './dom.js';
import { type ReadableRange, readableRanges, type Session } from './session.js';

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
let session: Session = { writable: false };

/** A failed request as the page says it: permission denied plainly, anything else with the server's words. */
function failure(what: string, err: unknown): string {
  return isPermissionDenied(err) ? `${what}: not permitted for user ${session.user ?? ''}` : `${what} failed: ${errorText(err)}`;
}

/**
 * A page of the folder's keys from `start`: bounded by the folder's end (a user granted only
 * the folder may read no further), given as /v1's range_end, which is text; an end that is not
 * UTF-8 (a prefix ending in a byte of a multi-byte character) reads on from `start` instead.
 */
function rangeUrl(prefix: Uint8Array, start: Uint8Array): string {
  const end = prefixEnd(prefix);
  const text = end && utf8Text(end);
  return `/v1/kv/${pathOf(start)}?${text ? `range_end=${encodeURIComponent(text)}` : 'from_key'}&keys_only&limit=${PAGE}`;
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
    (err: unknown) => (countEl.textContent = failure('count', err)),
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
      const r = await getJson<V1RangeResponse>(rangeUrl(f.prefix, f.next));
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
    f.more.replaceChildren(h('span', { class: 'error', 'data-testid': 'listing-error' }, failure('listing', err)), ' ', retryButton(f));
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
    detail.replaceChildren(h('p', { class: 'error', 'data-testid': 'key-error' }, failure('reading the key', err)));
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
    session.writable ? writeControls(key, kv) : '',
    historyPanel(key, kv),
  );
}

/** A confirmation step: `question` with a confirm and a cancel button, in place of `controls` until answered. */
function confirmStep(controls: HTMLElement, question: string, confirmLabel: string, confirmed: () => Promise<string>): void {
  const box = h('div', { class: 'confirm', 'data-testid': 'confirm' }, h('p', {}, question));
  const result = h('p', { 'data-testid': 'write-result' });
  const back = (): void => box.replaceWith(controls);
  box.append(
    h(
      'button',
      {
        class: 'danger',
        'data-testid': 'confirm-yes',
        onclick: () =>
          void confirmed().then(
            (text) => result.replaceChildren(text),
            (err: unknown) => {
              result.className = 'error';
              result.replaceChildren(failure(confirmLabel.toLowerCase(), err));
            },
          ),
      },
      confirmLabel,
    ),
    ' ',
    h('button', { 'data-testid': 'confirm-cancel', onclick: back }, 'Cancel'),
    result,
  );
  controls.replaceWith(box);
}

/** Put a new value (text) to `key`, or delete it: each asks first. */
function writeControls(key: Uint8Array, kv: V1KeyValue): HTMLElement {
  const controls = h('div', { class: 'write', 'data-testid': 'write-controls' });
  const value = h('textarea', { 'data-testid': 'put-value', 'aria-label': 'new value' });
  controls.append(
    h('h4', {}, 'Change'),
    value,
    h('button', { 'data-testid': 'put', onclick: () => confirmPut(controls, key, value.value, kv) }, 'Put…'),
    ' ',
    h('button', { class: 'danger', 'data-testid': 'delete', onclick: () => confirmDelete(controls, key, kv) }, 'Delete…'),
  );
  return controls;
}

function confirmPut(controls: HTMLElement, key: Uint8Array, value: string, kv: V1KeyValue | undefined): void {
  const size = formatBytes(textBytes(value).length);
  const question = kv
    ? `Put ${size} to ${displayBytes(key)}, replacing version ${kv.version} (mod revision ${kv.mod_revision})?`
    : `Put ${size} to ${displayBytes(key)} (a new key)?`;
  confirmStep(controls, question, 'Put', async () => {
    const res = await send(`/v1/kv/${pathOf(key)}`, { method: 'PUT', body: value, timeoutMs: 10_000 });
    const { revision } = (await res.json()) as { revision: number };
    setTimeout(() => void showKey(key), 0);
    return `put at revision ${revision}`;
  });
}

function confirmDelete(controls: HTMLElement, key: Uint8Array, kv: V1KeyValue): void {
  confirmStep(controls, `Delete ${displayBytes(key)} (version ${kv.version}, mod revision ${kv.mod_revision})?`, 'Delete', async () => {
    const res = await send(`/v1/kv/${pathOf(key)}`, { method: 'DELETE', timeoutMs: 10_000 });
    const { revision, deleted } = (await res.json()) as { revision: number; deleted: number };
    return deleted ? `deleted at revision ${revision}` : `not deleted: already gone (revision ${revision})`;
  });
}

/** The form for a new key: its name and value, then the put's confirmation. */
function newKeyForm(): void {
  const detail = byId('key-detail');
  const name = h('input', { type: 'text', 'data-testid': 'new-key', 'aria-label': 'new key', placeholder: 'key' });
  const value = h('textarea', { 'data-testid': 'put-value', 'aria-label': 'value' });
  const controls = h('div', { class: 'write', 'data-testid': 'write-controls' });
  controls.append(
    name,
    value,
    h('button', { 'data-testid': 'put', onclick: () => confirmPut(controls, textBytes(name.value), value.value, undefined) }, 'Put…'),
  );
  detail.replaceChildren(h('h3', {}, 'New key'), controls);
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

export function startKeysView(s: Session): void {
  session = s;
  const root = newFolder(new Uint8Array(0));
  const total = h('span', { class: 'count' });
  const reload = h('button', { onclick: () => startKeysView(session) }, 'reload');
  const add = session.writable ? h('button', { 'data-testid': 'new-key-button', onclick: newKeyForm }, 'new key…') : '';
  const tree = byId('tree');
  tree.replaceChildren(h('div', {}, h('strong', {}, 'all keys'), total, ' ', reload, ' ', add), root.list);
  countOf(root.prefix).then(
    (n) => {
      total.textContent = `${n.toLocaleString('en-US')} keys`;
      void loadMore(root);
    },
    (err: unknown) => {
      if (isPermissionDenied(err) && session.user) void showPermitted(tree, root.list, session.user);
      else total.textContent = failure('count', err);
    },
  );
}

/**
 * The tree of a user who may not read every key: its readable ranges as roots (a prefix as a
 * folder, a single key as a key); any other range is named, listed as the keys it holds.
 */
async function showPermitted(tree: HTMLElement, list: HTMLUListElement, user: string): Promise<void> {
  const heading = tree.querySelector('strong')!;
  heading.textContent = `keys user ${user} may read`;
  tree.querySelector('.count')!.textContent = '';
  let ranges: ReadableRange[];
  try {
    ranges = await readableRanges(user);
  } catch (err) {
    list.replaceChildren(h('li', { class: 'error' }, failure("reading the user's permissions", err)));
    return;
  }
  const empty = new Uint8Array(0);
  const nodes = ranges.map((r) => {
    if (r.end !== null && r.end.length === 0) return keyNode(empty, r.key);
    const end = prefixEnd(r.key);
    if (r.key.length > 0 && (r.end === null ? end === null : end !== null && equalBytes(end, r.end))) return folderNode(empty, r.key);
    return h('li', { class: 'muted' }, `range [${displayBytes(r.key)}, ${r.end ? displayBytes(r.end) : 'end'}): readable, not shown as a tree`);
  });
  list.replaceChildren(...(nodes.length ? nodes : [h('li', { class: 'muted' }, `user ${user} may read no keys`)]));
}
