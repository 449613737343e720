/// <reference lib="dom" />
/** The web console's small DOM and HTTP helpers. */

type Child = Node | string | null | undefined | false;

/** An element with attributes (`on<event>` ones as listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | EventListener> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(name.slice(2), v);
    else if (v === true) el.setAttribute(name, '');
    else if (v !== false) el.setAttribute(name, v);
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** How long one request to a member may take before the console counts it as not answering. */
const REQUEST_TIMEOUT_MS = 1500;

/** GET a JSON answer; a non-2xx answer throws its error message. */
export async function getJson<T>(url: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
  const text = await res.text();
  if (!res.ok) {
    let message = text.trim();
    try {
      const body = JSON.parse(text) as { message?: string; error?: string };
      message = body.message ?? body.error ?? message;
    } catch {
      // not JSON: the text itself
    }
    throw new Error(`${res.status}: ${message}`);
  }
  return JSON.parse(text) as T;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
