/**
 * The built-in web console: GET /ui serves its page, /ui/<file> the browser modules compiled
 * from src/ui/ (dist/ui/*.js beside this module's folder). The files are listed once, at
 * start; a request is answered only when its path, as sent and undecoded, is one of those
 * names, so no path (`..`, encoded slashes, absolute paths) can reach any other file.
 * The console talks to the /v1 API (and /v3/auth/authenticate to log in). /ui/config.json says
 * whether this member offers put and delete in it (--ui-writable; read-only by default) and
 * whether auth is on; the API itself takes what it always takes from any client.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CONSOLE_HTML } from '../ui/page.js';
import type { V1ConsoleConfig } from '../api/v1.js';
import type { Member } from './member.js';

/** The compiled console modules' folder: dist/ui, beside dist/server. */
const UI_DIR = path.join(import.meta.dirname, '..', 'ui');

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * The page's own sources only; fetch() may reach any member (the cluster view polls each
 * member's /v1/status), nothing else is loaded from anywhere.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' http: https:; base-uri 'none'; form-action 'none'";

interface StaticFile {
  body: Buffer;
  contentType: string;
}

/** The console's files by name (dist/ui/*.js and their source maps), read once. */
function loadFiles(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let names: string[];
  try {
    names = readdirSync(UI_DIR);
  } catch {
    return files; // run from a tree without the console built: /ui answers its page, scripts 404
  }
  for (const name of names) {
    const contentType = CONTENT_TYPES[path.extname(name)];
    if (contentType) files.set(name, { body: readFileSync(path.join(UI_DIR, name)), contentType });
  }
  return files;
}

function secured(reply: FastifyReply): FastifyReply {
  return reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache');
}

export interface UiOptions {
  /** The member's --ui-writable: the console offers put and delete. */
  writable: boolean;
}

export function registerUi(app: FastifyInstance, member: Member, opts: UiOptions): void {
  const files = loadFiles();
  app.get('/ui/config.json', async (_request, reply): Promise<V1ConsoleConfig> => {
    secured(reply);
    return { writable: opts.writable, auth_enabled: member.authn.enabled };
  });
  app.get('/ui', async (_request, reply) => reply.redirect('/ui/'));
  app.get('/ui/', async (_request, reply) => secured(reply).type('text/html; charset=utf-8').send(CONSOLE_HTML));
  app.get('/ui/*', async (request, reply) => {
    const raw = request.url.slice('/ui/'.length).split('?')[0]!;
    const file = files.get(raw);
    if (!file) return reply.status(404).type('text/plain').send(`404 page not found: ${request.method} ${request.url}\n`);
    return secured(reply).type(file.contentType).send(file.body);
  });
}
