/**
 * What a failed fetch (undici) says about its request, for the two places that send requests
 * on: a member forwarding to the leader (src/server/leader.ts) and the client failing over to
 * another endpoint (src/client/http.ts). A request that was never sent may go elsewhere; one
 * that may have been sent must not be sent again unless it is idempotent: a write applied once
 * and answered after its connection broke would be applied twice (a compare-and-set retried
 * elsewhere then fails against its own first effect).
 */

/** Connection errors (undici's `cause.code`) that mean the request was never sent. */
const NOT_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** Whether a fetch failed before its request left this process. */
export function neverSent(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' && NOT_SENT.has(cause.code);
}
