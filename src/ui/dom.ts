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

/** The logged-in user's token (auth enabled), sent with every request to this member. */
let token: string | undefined;

export function setToken(t: string | undefined): void {
  token = t;
}

/**
 * Logs the user in again when this member refuses the token (it expired unused, or the user's
 * password changed): set by the session once logged in; resolves when a fresh token is set.
 */
let relogin: (() => Promise<void>) | undefined;
/** The login under way: every request refused meanwhile waits for the same one. */
let reloggingIn: Promise<void> | undefined;

export function onTokenRefused(f: () => Promise<void>): void {
  relogin = f;
}

/** An answer that is not 2xx: its HTTP status and the server's message. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(`${status}: ${message}`);
  }
}

/** The request's headers: the token, for this member's own API only (other members' /v1/status needs none). */
function headersFor(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return token && url.startsWith('/') ? { ...extra, authorization: token } : extra;
}

/** A request to the API; a non-2xx answer throws an ApiError with the server's message. */
export async function send(url: string, init: { method?: string; body?: string; json?: unknown; timeoutMs?: number } = {}): Promise<Response> {
  const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
  const request = (): Promise<Response> =>
    fetch(url, {
      method: init.method ?? 'GET',
      headers: headersFor(url, init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(init.timeoutMs ?? REQUEST_TIMEOUT_MS),
      cache: 'no-store',
    });
  let res = await request();
  // 401 is etcd's "invalid auth token": log in again, then send the request once more.
  if (res.status === 401 && token && relogin && url.startsWith('/')) {
    await (reloggingIn ??= relogin().finally(() => (reloggingIn = undefined)));
    res = await request();
  }
  if (res.ok) return res;
  const text = await res.text();
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: string; error?: string };
    message = parsed.message ?? parsed.error ?? message;
  } catch {
    // not JSON: the text itself
  }
  throw new ApiError(res.status, message);
}

/** GET a JSON answer; a non-2xx answer throws its error message. */
export async function getJson<T>(url: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
  return (await (await send(url, { timeoutMs })).json()) as T;
}

/** The server refused the request for the logged-in user's permissions. */
export function isPermissionDenied(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
