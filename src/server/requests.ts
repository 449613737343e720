/**
 * Requests as every client API of a member sees them, whatever transport brought them (the
 * gateway and the /v1 API in http.ts and http_v1.ts, etcd's gRPC services in src/grpc): their
 * size as etcd's limits count it, and a JSON body read as etcd's gateway reads it.
 */
import { Buffer } from 'node:buffer';
import { protoSize, type Schema } from '../api/codec.js';
import { firstValueLength, parseGatewayJson, type Json } from '../api/json.js';
import { MessageTooLargeError } from './errors.js';

/** Parses a request body as etcd's gateway does: its first JSON value, Go's errors (the content type is ignored). */
export function parseJsonBody(body: unknown): Json {
  return parseGatewayJson(bodyText(body)) ?? {};
}

function bodyText(body: unknown): string {
  return Buffer.isBuffer(body) ? body.toString() : typeof body === 'string' ? body : '';
}

/** Several JSON values in one body (a client-streaming RPC through the gateway), read one after another as Go's decoder does. */
export function parseJsonStream(body: unknown): Json[] {
  let text = bodyText(body);
  const out: Json[] = [];
  while (text.trim().length > 0) {
    const end = firstValueLength(text);
    out.push(JSON.parse(text.slice(0, end)) as Json);
    text = text.slice(end);
  }
  return out;
}

/** Sum of key and value bytes of a write: the part etcd's request size limit is about. */
export function requestBytes(req: unknown): number {
  if (Buffer.isBuffer(req)) return req.length;
  if (Array.isArray(req)) return req.reduce((n: number, x) => n + requestBytes(x), 0);
  if (typeof req === 'object' && req !== null) {
    let n = 0;
    for (const v of Object.values(req)) n += requestBytes(v);
    return n;
  }
  return 0;
}

/** etcd lets a gRPC message exceed the request limit by this much (its grpcOverheadBytes). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/**
 * etcd's gateway passes each request on to its gRPC server, which refuses a message over
 * --max-request-bytes plus grpcOverheadBytes with ResourceExhausted. A message is never larger
 * in protobuf than in the gateway's JSON, so only a large body is measured.
 */
export function checkMessageSize(req: object, schema: Schema, body: unknown, maxRequestBytes: number): void {
  const limit = maxRequestBytes + GRPC_OVERHEAD_BYTES;
  if (!Buffer.isBuffer(body) || body.length <= limit) return;
  const size = protoSize(req, schema);
  if (size > limit) throw new MessageTooLargeError(size, limit);
}
