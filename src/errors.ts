/**
 * The one base of qkv's errors: every kind is a class with a stable `code` (what the HTTP layer
 * maps to a status, in src/server/errors.ts) and a message worded as etcd words it.
 */
export class CodedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}
