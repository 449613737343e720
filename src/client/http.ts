/**
 * The client's transport: JSON over HTTP to a list of endpoints, failing over to the next one
 * when an endpoint cannot be reached or has no leader. Uses Node's global fetch (undici), which
 * keeps connections alive.
 */
import { NoEndpointError, QkvServerError } from './errors.js';

export interface HttpOptions {
  endpoints: string[];
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
  /** The Authorization header of each request (an auth token), if any. */
  authorization?: (path: string) => Promise<string | undefined>;
}

/** Server errors that mean "try another member": no leader, or the member is stopping. */
const RETRY_ELSEWHERE = [/no leader/, /server stopped/, /leader changed/, /timed out/];

function isRetryableElsewhere(err: QkvServerError): boolean {
  return err.httpStatus >= 500 && RETRY_ELSEWHERE.some((re) => re.test(err.message));
}

export class HttpTransport {
  readonly endpoints: string[];
  private preferred = 0;
  private readonly timeoutMs: number;
  private readonly authorization: NonNullable<HttpOptions['authorization']>;

  constructor(opts: HttpOptions) {
    this.authorization = opts.authorization ?? (async () => undefined);
    if (opts.endpoints.length === 0) throw new Error('at least one endpoint is required');
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** POSTs JSON to `path` on the preferred endpoint, failing over in order. */
  async post<T>(path: string, body: unknown): Promise<T> {
    const causes: Error[] = [];
    // Outside the failover: a refused login is the caller's, not an endpoint's.
    const auth = await this.authorization(path);
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[at]!;
      try {
        const res = await fetch(endpoint + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth !== undefined ? { authorization: auth } : {}) },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await res.text();
        const json = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
        if (!res.ok) {
          const err = new QkvServerError(String(json['message'] ?? json['error'] ?? res.statusText), Number(json['code'] ?? 2), res.status, endpoint);
          if (isRetryableElsewhere(err)) {
            causes.push(err);
            continue;
          }
          throw err;
        }
        this.preferred = at;
        return json as T;
      } catch (err) {
        if (err instanceof QkvServerError) throw err;
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
        const r = await fetch(endpoint + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth !== undefined ? { authorization: auth } : {}) },
          body: JSON.stringify(body),
          signal,
        });
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
