/**
 * The client's transport: JSON over HTTP to a list of endpoints, failing over to the next one
 * when an endpoint cannot be reached or has no leader. A request that changes the store fails
 * over only when it cannot have taken effect (never sent, or refused with "no leader"); any other
 * failure of it is an OutcomeUnknownError. Uses Node's global fetch (undici) for http://
 * endpoints and node:https with the given certificate and CA for https:// ones (src/tls.ts);
 * both keep connections alive.
 */
import { neverSent } from '../api/fetch_errors.js';
import { fetchOver, TlsCredentials, type TlsFiles } from '../tls.js';
import { NoEndpointError, OutcomeUnknownError, QkvServerError } from './errors.js';

export interface HttpOptions {
  endpoints: string[];
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
  /**
   * For https:// endpoints, as etcdctl's --cacert, --cert and --key: the CA that verifies the
   * members (default Node's root CAs) and the client certificate shown to them (with
   * --client-cert-auth). The files are re-read when they change.
   */
  tls?: TlsFiles;
  /** The Authorization header of each request (an auth token), if any. */
  authorization?: (path: string) => Promise<string | undefined>;
}

/** Server errors that mean "try another member": no leader, the member is stopping, or it is a learner. */
const RETRY_ELSEWHERE = [/no leader/, /server stopped/, /leader changed/, /timed out/, /rpc not supported for learner/];
/** Of those, the ones after which a write cannot have been proposed ("no leader", a learner's refusal). */
const NOT_PROPOSED = [/no leader/, /rpc not supported for learner/];

function isRetryableElsewhere(err: QkvServerError, idempotent: boolean): boolean {
  return err.httpStatus >= 500 && (idempotent ? RETRY_ELSEWHERE : NOT_PROPOSED).some((re) => re.test(err.message));
}

export class HttpTransport {
  readonly endpoints: string[];
  private preferred = 0;
  private readonly timeoutMs: number;
  /** The https:// endpoints' credentials (the CA alone when no client certificate is given). */
  private readonly credentials: TlsCredentials;
  private readonly authorization: NonNullable<HttpOptions['authorization']>;

  constructor(opts: HttpOptions) {
    this.authorization = opts.authorization ?? (async () => undefined);
    if (opts.endpoints.length === 0) throw new Error('at least one endpoint is required');
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.credentials = new TlsCredentials(opts.tls ?? {});
  }

  /** A transport to one of the endpoints, with the same timeout, TLS and credentials (auth token). */
  single(endpoint: string): HttpTransport {
    return new HttpTransport({ endpoints: [endpoint], timeoutMs: this.timeoutMs, tls: this.credentials.files, authorization: this.authorization });
  }

  /**
   * POSTs JSON to `path` on the preferred endpoint, failing over in order. `idempotent`: the
   * request may be sent again whatever happened to it (a read, a keep-alive).
   */
  async post<T>(path: string, body: unknown, idempotent = false): Promise<T> {
    const causes: Error[] = [];
    // Outside the failover: a refused login is the caller's, not an endpoint's.
    const auth = await this.authorization(path);
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[at]!;
      try {
        const res = await fetchOver(
          endpoint + path,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(auth !== undefined ? { authorization: auth } : {}) },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(this.timeoutMs),
          },
          this.credentials,
        );
        const text = await res.text();
        const json = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
        if (!res.ok) {
          const err = new QkvServerError(String(json['message'] ?? json['error'] ?? res.statusText), Number(json['code'] ?? 2), res.status, endpoint);
          if (isRetryableElsewhere(err, idempotent)) {
            causes.push(err);
            continue;
          }
          throw err;
        }
        this.preferred = at;
        return json as T;
      } catch (err) {
        if (err instanceof QkvServerError) throw err;
        if (!idempotent && !neverSent(err)) throw new OutcomeUnknownError(endpoint, err as Error);
        causes.push(err as Error);
      }
    }
    throw new NoEndpointError(this.endpoints, causes);
  }

  /**
   * POSTs JSON and yields each newline-delimited JSON object of the streamed response (the etcd
   * gateway's streaming shape, `{"result": ...}` per line). Ends when the server or `signal` ends it.
   */
  async *stream<T>(path: string, body: unknown, signal: AbortSignal): AsyncGenerator<T> {
    const causes: Error[] = [];
    const auth = await this.authorization(path);
    let res: Response | undefined;
    let endpoint = '';
    for (let i = 0; i < this.endpoints.length && !res; i++) {
      const at = (this.preferred + i) % this.endpoints.length;
      endpoint = this.endpoints[at]!;
      try {
        const r = await fetchOver(
          endpoint + path,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(auth !== undefined ? { authorization: auth } : {}) },
            body: JSON.stringify(body),
            signal,
          },
          this.credentials,
        );
        if (!r.ok) {
          const json = (await r.json()) as Record<string, unknown>;
          throw new QkvServerError(String(json['message'] ?? r.statusText), Number(json['code'] ?? 2), r.status, endpoint);
        }
        res = r;
        this.preferred = at;
      } catch (err) {
        if (err instanceof QkvServerError || signal.aborted) throw err;
        causes.push(err as Error);
      }
    }
    if (!res?.body) throw new NoEndpointError(this.endpoints, causes);
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line.length === 0) continue;
          const obj = JSON.parse(line) as { result?: T; error?: { message?: string; grpc_code?: number; http_code?: number } };
          if (obj.error) throw new QkvServerError(obj.error.message ?? 'stream error', obj.error.grpc_code ?? 2, obj.error.http_code ?? 500, endpoint);
          if (obj.result !== undefined) yield obj.result;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }
}
