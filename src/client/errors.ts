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
