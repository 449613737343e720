/**
 * The curl-friendly API under /v1, over the same Member operations as the etcd gateway.
 * Keys are in the path (percent-encoded bytes; a key may start with '/'), values are raw
 * request bodies, answers are JSON with keys and values as text (or base64 when they are not
 * UTF-8), and watches are Server-Sent Events, so `curl -N` shows changes live.
 *
 *   curl -X PUT localhost:2379/v1/kv/greeting -d hello
 *   curl localhost:2379/v1/kv/greeting?raw
 *   curl 'localhost:2379/v1/kv/app/?prefix'
 *   curl -N 'localhost:2379/v1/watch/app/?prefix'
 *
 * With auth enabled, the caller is `Authorization: <token>` (or `Bearer <token>`), a token from
 * /v3/auth/authenticate, as the gateway takes it; or, as a convenience, basic auth
 * (`curl -u alice:secret`), which each request exchanges for a token (a password check, under
 * the guessing bound, and an Authenticate through Raft: slow, for humans, not for programs).
 */
import { Buffer } from 'node:buffer';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { keyRange } from '../api/keys.js';
import type { Compare, KeyValue, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest } from '../api/kv.js';
import { WatchFilter } from '../watch/types.js';
import type { Member } from './member.js';
import { BadRequestError, RequestTooLargeError } from './errors.js';
import { LeaseNotFoundError } from '../lease/errors.js';
import { connectionOf, relayToLeader } from './http_shared.js';
import { authenticate } from './auth_service.js';
import type { Caller } from '../mvcc/types.js';
import { parseJsonBody } from './requests.js';
import { checkLearner } from './services.js';
import type { V1MembersResponse, V1StatusResponse } from '../api/v1.js';

/** Decodes a percent-encoded path segment into bytes (not UTF-8 text: keys may be any bytes). */
function percentDecodeBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new BadRequestError(`invalid percent-encoding in key: ${JSON.stringify(s.slice(i, i + 3))}`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      for (const b of Buffer.from(s[i]!)) out.push(b);
    }
  }
  return Buffer.from(out);
}

/** The key: everything in the original URL path after `prefix`, before the query string. */
function keyOf(request: FastifyRequest, prefix: string): Buffer {
  const url = request.originalUrl;
  const q = url.indexOf('?');
  const pathPart = q >= 0 ? url.slice(0, q) : url;
  return percentDecodeBytes(pathPart.slice(prefix.length));
}

type Query = Record<string, string | undefined>;

/**
 * The caller of a /v1 request (undefined while auth is disabled, whatever it sends): its token
 * (`Authorization: <token>` or `Bearer <token>`), or basic auth's user and password exchanged
 * for a token.
 */
async function callerOf(member: Member, request: FastifyRequest): Promise<Caller | undefined> {
  if (!member.authn.enabled) return undefined;
  const h = request.headers.authorization;
  const basic = h === undefined ? null : /^Basic\s+(\S+)$/i.exec(h);
  if (basic) {
    const text = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    const name = colon < 0 ? text : text.slice(0, colon);
    const password = colon < 0 ? '' : text.slice(colon + 1);
    return member.authn.callerOf((await authenticate(member, { name, password }, connectionOf(request))).token);
  }
  const bearer = h === undefined ? null : /^Bearer\s+(\S+)$/i.exec(h);
  const token = bearer ? bearer[1] : h;
  await member.tokenApplied(token);
  return member.authn.callerOf(token);
}

function flag(q: Query, name: string): boolean {
  const v = q[name];
  return v !== undefined && v !== 'false' && v !== '0';
}

function intParam(q: Query, name: string): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new BadRequestError(`query parameter ${name} must be an integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new BadRequestError(`query parameter ${name} is out of range`);
  return n;
}

/** Lease ids: decimal, or hexadecimal with a 0x prefix (as etcdctl prints them, hex). */
function leaseParam(v: string | undefined, name = 'lease'): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^0x[0-9a-fA-F]+$/.test(v) ? parseInt(v.slice(2), 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new BadRequestError(`${name} must be a decimal id or 0x-prefixed hex id, got ${JSON.stringify(v)}`);
  return n;
}

/** Bytes as text when they are valid UTF-8, else base64 under `<name>_base64`. */
function bytesField(name: string, b: Buffer): Record<string, string> {
  const text = b.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(b)) return { [name]: text };
  return { [`${name}_base64`]: b.toString('base64') };
}

function kvJson(kv: KeyValue): Record<string, unknown> {
  return {
    ...bytesField('key', kv.key),
    ...bytesField('value', kv.value),
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    ...(kv.lease ? { lease: kv.lease, lease_hex: kv.lease.toString(16) } : {}),
  };
}

function rangeOf(key: Buffer, q: Query): { key: Buffer; rangeEnd?: Buffer } {
  return keyRange(key, {
    prefix: flag(q, 'prefix'),
    fromKey: flag(q, 'from_key'),
    ...(q['range_end'] !== undefined ? { rangeEnd: Buffer.from(q['range_end']) } : {}),
  });
}

const SORT_TARGETS: Record<string, SortTarget> = { key: 'KEY', version: 'VERSION', create: 'CREATE', mod: 'MOD', modify: 'MOD', value: 'VALUE' };

/** JSON body of /v1/txn: text keys and values, readable compares. */
interface V1Txn {
  compare?: { key: string; target?: string; result?: string; value?: string | number }[];
  success?: V1Op[];
  failure?: V1Op[];
}
type V1Op = { put?: { key: string; value: string; lease?: number } } & { get?: { key: string; prefix?: boolean } } & {
  delete?: { key: string; prefix?: boolean };
};

const TARGETS: Record<string, Compare['target']> = { value: 'VALUE', version: 'VERSION', create: 'CREATE', mod: 'MOD', lease: 'LEASE' };
const RESULTS: Record<string, Compare['result']> = { '=': 'EQUAL', '==': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' };

function v1Compare(c: NonNullable<V1Txn['compare']>[number], i: number): Compare {
  if (typeof c !== 'object' || c === null || typeof c.key !== 'string') throw new BadRequestError(`compare[${i}].key must be a string`);
  const target = TARGETS[c.target ?? 'value'];
  if (!target) throw new BadRequestError(`compare[${i}].target must be one of value, version, create, mod, lease`);
  const result = RESULTS[c.result ?? '='];
  if (!result) throw new BadRequestError(`compare[${i}].result must be one of =, !=, <, >`);
  const key = Buffer.from(c.key);
  if (target === 'VALUE') return { key, target, result, value: Buffer.from(String(c.value ?? '')) };
  const n = Number(c.value ?? 0);
  if (!Number.isSafeInteger(n)) throw new BadRequestError(`compare[${i}].value must be an integer for target ${c.target}`);
  const field = { VERSION: 'version', CREATE: 'createRevision', MOD: 'modRevision', LEASE: 'lease' }[target];
  return { key, target, result, [field]: n };
}

function v1Op(o: V1Op, where: string): RequestOp {
  if (typeof o !== 'object' || o === null) throw new BadRequestError(`${where} must be an object`);
  if (o.put) {
    if (typeof o.put.key !== 'string' || typeof o.put.value !== 'string') throw new BadRequestError(`${where}.put needs string key and value`);
    return { requestPut: { key: Buffer.from(o.put.key), value: Buffer.from(o.put.value), ...(o.put.lease ? { lease: o.put.lease } : {}) } };
  }
  if (o.get) {
    if (typeof o.get.key !== 'string') throw new BadRequestError(`${where}.get needs a string key`);
    return { requestRange: keyRange(Buffer.from(o.get.key), { prefix: !!o.get.prefix }) };
  }
  if (o.delete) {
    if (typeof o.delete.key !== 'string') throw new BadRequestError(`${where}.delete needs a string key`);
    return { requestDeleteRange: keyRange(Buffer.from(o.delete.key), { prefix: !!o.delete.prefix }) };
  }
  throw new BadRequestError(`${where} must have one of put, get, delete`);
}

function v1TxnRequest(body: unknown): TxnRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('txn body must be a JSON object');
  const t = body as V1Txn;
  for (const k of ['compare', 'success', 'failure'] as const) {
    if (t[k] !== undefined && !Array.isArray(t[k])) throw new BadRequestError(`${k} must be an array`);
  }
  return {
    compare: (t.compare ?? []).map(v1Compare),
    success: (t.success ?? []).map((o, i) => v1Op(o, `success[${i}]`)),
    failure: (t.failure ?? []).map((o, i) => v1Op(o, `failure[${i}]`)),
  };
}

function responseOpJson(r: ResponseOp): Record<string, unknown> {
  if ('responsePut' in r) return { put: { revision: r.responsePut.header.revision } };
  if ('responseRange' in r) return { get: { count: r.responseRange.count, kvs: r.responseRange.kvs.map(kvJson) } };
  if ('responseDeleteRange' in r) return { delete: { deleted: r.responseDeleteRange.deleted } };
  return { txn: { succeeded: r.responseTxn.succeeded, responses: r.responseTxn.responses.map(responseOpJson) } };
}

export function registerV1(app: FastifyInstance, member: Member, maxRequestBytes: number): void {
  /**
   * Lease calls go to the leader, whose clock expires leases (writes reach it through Raft);
   * true once the leader's answer is sent. Grant and revoke are writes: not `idempotent`.
   */
  const atLeader = (request: FastifyRequest, reply: FastifyReply, idempotent = true): Promise<boolean> => relayToLeader(member, request, reply, { idempotent });

  // A learner answers /v1 as etcd's learner answers the gRPC calls behind it (services.ts'
  // checkLearner): a serializable GET of keys and the status, nothing else (503, "rpc not
  // supported for learner").
  app.addHook('preHandler', async (request) => {
    const url = request.url.split('?')[0]!;
    if (!url.startsWith('/v1/')) return;
    const serializable = flag(request.query as Query, 'serializable');
    if (request.method === 'GET' && url.startsWith('/v1/kv/')) checkLearner(member, { service: 'KV', method: 'Range' }, { serializable });
    else if (request.method === 'GET' && url === '/v1/status') checkLearner(member, { service: 'Maintenance', method: 'Status' });
    else checkLearner(member, { service: 'KV', method: request.method === 'GET' ? 'Range' : 'Txn' });
  });

  app.put('/v1/kv/*', async (request) => {
    const key = keyOf(request, '/v1/kv/');
    const value = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (key.length + value.length > maxRequestBytes) throw new RequestTooLargeError();
    const q = request.query as Query;
    const lease = leaseParam(q['lease']);
    const r = await member.put({ key, value, ...(lease ? { lease } : {}), ...(flag(q, 'prev_kv') ? { prevKv: true } : {}) }, await callerOf(member, request));
    return { revision: r.header.revision, ...(r.prevKv ? { prev_kv: kvJson(r.prevKv) } : {}) };
  });

  app.get('/v1/kv/*', async (request, reply) => {
    const q = request.query as Query;
    const sortBy = q['sort_by'];
    if (sortBy !== undefined && !SORT_TARGETS[sortBy]) throw new BadRequestError('sort_by must be one of key, version, create, mod, value');
    const order = q['order']?.toUpperCase();
    if (order !== undefined && order !== 'ASCEND' && order !== 'DESCEND') throw new BadRequestError('order must be ascend or descend');
    const rev = intParam(q, 'rev');
    const limit = intParam(q, 'limit');
    const caller = await callerOf(member, request);
    const r = await member.range(
      {
        ...rangeOf(keyOf(request, '/v1/kv/'), q),
        ...(rev ? { revision: rev } : {}),
        ...(limit ? { limit } : {}),
        ...(flag(q, 'keys_only') ? { keysOnly: true } : {}),
        ...(flag(q, 'count_only') ? { countOnly: true } : {}),
        ...(flag(q, 'serializable') ? { serializable: true } : {}),
        ...(sortBy ? { sortTarget: SORT_TARGETS[sortBy]!, sortOrder: (order ?? 'ASCEND') as SortOrder } : order ? { sortOrder: order as SortOrder } : {}),
      },
      caller,
    );
    if (flag(q, 'raw')) {
      const kv = r.kvs[0];
      if (!kv) return reply.status(404).type('text/plain').send('key not found\n');
      return reply.type('application/octet-stream').send(kv.value);
    }
    return { revision: r.header.revision, count: r.count, more: r.more, kvs: r.kvs.map(kvJson) };
  });

  app.delete('/v1/kv/*', async (request) => {
    const q = request.query as Query;
    const range = rangeOf(keyOf(request, '/v1/kv/'), q);
    const r = await member.deleteRange({ ...range, ...(flag(q, 'prev_kv') ? { prevKv: true } : {}) }, await callerOf(member, request));
    return { revision: r.header.revision, deleted: r.deleted, ...(r.prevKvs.length ? { prev_kvs: r.prevKvs.map(kvJson) } : {}) };
  });

  app.post('/v1/txn', async (request) => {
    const req = v1TxnRequest(parseJsonBody(request.body));
    const r = await member.txn(req, await callerOf(member, request));
    return { revision: r.header.revision, succeeded: r.succeeded, responses: r.responses.map(responseOpJson) };
  });

  app.post('/v1/lease/grant', async (request, reply) => {
    const q = request.query as Query;
    const body = parseJsonBody(request.body) as { ttl?: unknown; id?: unknown };
    const ttl = intParam(q, 'ttl') ?? (typeof body.ttl === 'number' ? body.ttl : undefined);
    if (ttl === undefined || !Number.isSafeInteger(ttl) || ttl <= 0) throw new BadRequestError('ttl (seconds) is required: ?ttl=10 or {"ttl": 10}');
    const id = leaseParam(q['id'], 'id') ?? (typeof body.id === 'number' ? body.id : 0);
    if (await atLeader(request, reply, false)) return reply;
    const r = await member.leaseGrant(ttl, id);
    return { id: r.id, id_hex: r.id.toString(16), ttl: r.ttl, revision: r.header.revision };
  });

  app.post('/v1/lease/:id/keepalive', async (request, reply) => {
    const id = leaseParam((request.params as { id: string }).id, 'id')!;
    if (await atLeader(request, reply)) return reply;
    const r = member.leaseKeepAlive(id);
    if (r.ttl <= 0) throw new LeaseNotFoundError();
    return { id, id_hex: id.toString(16), ttl: r.ttl };
  });

  app.delete('/v1/lease/:id', async (request, reply) => {
    const id = leaseParam((request.params as { id: string }).id, 'id')!;
    if (await atLeader(request, reply, false)) return reply;
    const r = await member.leaseRevoke(id, await callerOf(member, request));
    return { revision: r.revision };
  });

  app.get('/v1/lease/:id', async (request, reply) => {
    const id = leaseParam((request.params as { id: string }).id, 'id')!;
    if (await atLeader(request, reply)) return reply;
    const r = await member.leaseTimeToLive(id, flag(request.query as Query, 'keys'));
    if (r.ttl === -1) throw new LeaseNotFoundError();
    return { id, id_hex: id.toString(16), ttl: r.ttl, granted_ttl: r.grantedTtl, keys: r.keys.map((k) => bytesField('key', k)['key'] ?? k.toString('base64')) };
  });

  app.get('/v1/leases', async () => ({ leases: member.leaseLeases().map((l) => ({ id: l.id, id_hex: l.id.toString(16) })) }));

  app.get(
    '/v1/members',
    async (): Promise<V1MembersResponse> => ({
      members: member.members().map((m) => ({ id: m.id, name: m.name, peer_urls: m.peerUrls, client_urls: m.clientUrls, is_learner: m.isLearner === true })),
    }),
  );

  app.get('/v1/status', async (_request, reply): Promise<V1StatusResponse> => {
    // Readable cross-origin (GET only, no credentials): the web console served by one member
    // polls every member's own status, so that a member that stops answering shows as down.
    reply.header('access-control-allow-origin', '*');
    const s = await member.status();
    const leader = member.members().find((m) => m.id === s.leader);
    return {
      member: { id: String(member.id), name: member.opts.self.name },
      leader: leader ? { id: leader.id, name: leader.name } : null,
      term: s.raftTerm,
      raft_index: s.raftIndex,
      raft_applied_index: s.raftAppliedIndex,
      revision: s.header.revision,
      compact_revision: member.store.compactRevision,
      db_size: s.dbSize,
    };
  });

  // Server-Sent Events: one `event: put|delete` per change, `data:` the change as JSON.
  app.get('/v1/watch/*', async (request, reply) => {
    const q = request.query as Query;
    const start = intParam(q, 'start_revision');
    const filters: WatchFilter[] = [];
    if (flag(q, 'no_put')) filters.push(WatchFilter.NoPut);
    if (flag(q, 'no_delete')) filters.push(WatchFilter.NoDelete);
    const range = rangeOf(keyOf(request, '/v1/watch/'), q);
    member.checkRead(await callerOf(member, request), [{ access: 'READ', range }]);
    const watcher = member.hub.watch({
      ...range,
      ...(start ? { startRevision: start } : {}),
      ...(flag(q, 'prev_kv') ? { prevKv: true } : {}),
      filters,
      progressNotify: true,
    });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const close = (): void => watcher.cancel();
    res.on('close', close);
    for await (const resp of watcher) {
      let chunk = '';
      if (resp.created) chunk += `event: created\ndata: ${JSON.stringify({ revision: resp.revision })}\n\n`;
      if (resp.canceled) {
        chunk += `event: canceled\ndata: ${JSON.stringify({ revision: resp.revision, compact_revision: resp.compactRevision ?? 0, reason: resp.cancelReason ?? '' })}\n\n`;
      }
      for (const e of resp.events) {
        const data = { type: e.type, revision: e.kv.modRevision, kv: kvJson(e.kv), ...(e.prevKv ? { prev_kv: kvJson(e.prevKv) } : {}) };
        chunk += `event: ${e.type.toLowerCase()}\nid: ${e.kv.modRevision}\ndata: ${JSON.stringify(data)}\n\n`;
      }
      if (!resp.created && !resp.canceled && resp.events.length === 0) chunk += `event: progress\ndata: ${JSON.stringify({ revision: resp.revision })}\n\n`;
      if (chunk && !res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', () => resolve()).once('close', () => resolve()));
      if (resp.canceled) break;
    }
    if (!res.writableEnded) res.end();
    return reply;
  });
}
