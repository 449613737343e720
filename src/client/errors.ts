/** Errors the client raises: the server's etcd-style error, or no endpoint reachable. */
export class QkvServerError extends Error {
  constructor(
    message: string,
    /** gRPC-style code from the response body (etcd gateway's `code`). */
    readonly grpcCode: number,
    readonly httpStatus: number,
    readonly endpoint: string,
  ) {
    super(message);
    this.name = 'QkvServerError';
  }
}

/**
 * A request that changes the store reached an endpoint (or may have), and its answer was lost
 * (timeout, broken connection, a leader change): it may or may not have taken effect, so the
 * client does not send it again elsewhere (as etcd's clientv3 retries a mutation only when it
 * was never sent). Read the key to find out.
 */
export class OutcomeUnknownError extends Error {
  readonly code = 'ERR_OUTCOME_UNKNOWN';
  constructor(
    readonly endpoint: string,
    cause: Error,
  ) {
    super(`the request to ${endpoint} may or may not have taken effect: ${cause.message}`, { cause });
    this.name = 'OutcomeUnknownError';
  }
}

export class NoEndpointError extends Error {
  readonly code = 'ERR_NO_ENDPOINT';
  constructor(
    readonly endpoints: string[],
    readonly causes: Error[],
  ) {
    super(`no endpoint answered (${endpoints.join(', ')}): ${causes.map((c) => c.message).join('; ')}`);
    this.name = 'NoEndpointError';
  }
}

/** The client's user could not authenticate (a wrong password, auth refused): no call was made. */
export class LoginError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
    this.name = 'LoginError';
  }
}
