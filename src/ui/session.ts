/// <reference lib="dom" />
/**
 * The console's session on this member: what /ui/config.json says it offers (writes, auth),
 * and with auth on the login (/v3/auth/authenticate, the token then sent with every request)
 * and the key ranges the user may read, from its own user and roles (etcd lets a user read
 * those): the keys view shows those ranges only, not the keys outside them.
 */
import type { V1ConsoleConfig } from '../api/v1.js';
import { byId, errorText, getJson, onTokenRefused, send, setToken } from './dom.js';

export interface Session {
  writable: boolean;
  /** The logged-in user; undefined while auth is off. */
  user?: string;
}

/** A range the user may read: [key, end), end null for "every key from key on" (etcd's range_end "\0"). */
export interface ReadableRange {
  key: Uint8Array;
  end: Uint8Array | null;
}

const b64 = (s: string | undefined): Uint8Array => Uint8Array.from(atob(s ?? ''), (c) => c.charCodeAt(0));

/** The console's config, then (auth on) the login form until a login succeeds. */
export async function startSession(): Promise<Session> {
  let config: V1ConsoleConfig;
  for (;;) {
    try {
      config = await getJson<V1ConsoleConfig>('/ui/config.json');
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 1000)); // the member is not answering: ask again
    }
  }
  if (!config.auth_enabled) return { writable: config.writable };
  const user = await login();
  // The same user again: the views were built for its permissions (another user: reload the page).
  onTokenRefused(async () => {
    await login({ user, why: 'the session expired (or the password changed): log in again' });
  });
  return { writable: config.writable, user };
}

/** Shows the login form until a login succeeds; `again` fixes the user of a session that expired. */
function login(again?: { user: string; why: string }): Promise<string> {
  const section = byId('login');
  const form = byId<HTMLFormElement>('login-form');
  const error = byId('login-error');
  const nameInput = byId<HTMLInputElement>('login-name');
  const passwordInput = byId<HTMLInputElement>('login-password');
  if (again) {
    nameInput.value = again.user;
    nameInput.readOnly = true;
    passwordInput.value = '';
  }
  error.textContent = again?.why ?? '';
  section.hidden = false;
  return new Promise((resolve) => {
    const onSubmit = (e: SubmitEvent): void => {
      e.preventDefault();
      const name = nameInput.value;
      error.textContent = '';
      // The old token must not go with the login (a refused token would refuse it too).
      setToken(undefined);
      send('/v3/auth/authenticate', { method: 'POST', json: { name, password: passwordInput.value }, timeoutMs: 10_000 })
        .then(async (res) => {
          const { token } = (await res.json()) as { token: string };
          setToken(token);
          form.removeEventListener('submit', onSubmit);
          section.hidden = true;
          byId('user').textContent = `user ${name}`;
          resolve(name);
        })
        .catch((err: unknown) => (error.textContent = `login failed: ${errorText(err)}`));
    };
    form.addEventListener('submit', onSubmit);
  });
}

/** The ranges `user` may read, by its roles' READ and READWRITE permissions. */
export async function readableRanges(user: string): Promise<ReadableRange[]> {
  const post = async <T>(url: string, json: unknown): Promise<T> => (await (await send(url, { method: 'POST', json })).json()) as T;
  const { roles = [] } = await post<{ roles?: string[] }>('/v3/auth/user/get', { name: user });
  const out: ReadableRange[] = [];
  for (const role of roles) {
    const { perm = [] } = await post<{ perm?: { permType?: string; key?: string; range_end?: string }[] }>('/v3/auth/role/get', { role });
    for (const p of perm) {
      // READ is the enum's zero, which the gateway's JSON leaves out.
      if ((p.permType ?? 'READ') === 'WRITE') continue;
      const end = b64(p.range_end);
      out.push({ key: b64(p.key), end: end.length === 1 && end[0] === 0 ? null : end });
    }
  }
  return out;
}
