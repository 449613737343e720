/**
 * Reading a gateway request body as etcd's gateway reads it: Go's json.Decoder takes the first
 * JSON value of the body (anything after it is never read) and reports a malformed one in the
 * words of Go's encoding/json scanner ("unexpected EOF", "invalid character '}' looking for
 * beginning of object key string", ...). Clients and their tests see these texts, so qkv checks
 * the syntax with a scanner of the same states before JSON.parse reads the value it delimited.
 */
import { CodedError, GrpcCode } from '../errors.js';

/**
 * A request that does not decode: malformed JSON (this scanner's errors) or a value the schema
 * refuses (codec.ts, which exports it too). Defined here, below the codec, so that the two
 * modules do not import each other.
 */
export class InvalidRequestError extends CodedError {
  static override readonly grpcCode = GrpcCode.InvalidArgument;
  constructor(message: string) {
    super('ERR_INVALID_REQUEST', message);
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Go's maxNestingDepth: deeper input is refused instead of exhausting the stack. */
const MAX_DEPTH = 10_000;

enum Ctx {
  ObjectKey,
  ObjectValue,
  Array,
}

/** Go's quoteChar: a byte as the scanner's error messages print it. */
function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 92: '\\\\' };
  const s = named[c] ?? (c < 0x20 || c === 0x7f ? `\\x${c.toString(16).padStart(2, '0')}` : String.fromCharCode(c));
  return `'${s}'`;
}

function syntaxError(c: number, context: string): InvalidRequestError {
  return new InvalidRequestError(`invalid character ${quoteChar(c)} ${context}`);
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);

/**
 * The length of the first JSON value in `text` (leading white space included), as Go's
 * scanner finds it; throws Go's error for malformed input, and "unexpected EOF" when the text
 * ends inside the value.
 */
export function firstValueLength(text: string): number {
  const stack: Ctx[] = [];
  let i = 0;
  const n = text.length;
  const eof = (): InvalidRequestError => new InvalidRequestError('unexpected EOF');
  const at = (k: number): number => (k < n ? text.charCodeAt(k) : -1);

  /** After a complete value: where it stands decides what may follow. */
  const endValue = (): boolean => {
    for (;;) {
      if (stack.length === 0) return true;
      while (isSpace(at(i))) i++;
      if (i >= n) throw eof();
      const c = at(i);
      const top = stack[stack.length - 1]!;
      if (top === Ctx.ObjectKey) {
        if (c !== 0x3a) throw syntaxError(c, 'after object key');
        stack[stack.length - 1] = Ctx.ObjectValue;
        i++;
        return false;
      }
      if (top === Ctx.ObjectValue) {
        if (c === 0x2c) {
          stack[stack.length - 1] = Ctx.ObjectKey;
          i++;
          beginKey();
          continue;
        }
        if (c === 0x7d) {
          stack.pop();
          i++;
          continue;
        }
        throw syntaxError(c, 'after object key:value pair');
      }
      if (c === 0x2c) {
        i++;
        return false;
      }
      if (c === 0x5d) {
        stack.pop();
        i++;
        continue;
      }
      throw syntaxError(c, 'after array element');
    }
  };

  const string = (): void => {
    // at the opening quote
    i++;
    for (;;) {
      if (i >= n) throw eof();
      const c = at(i++);
      if (c === 0x22) return;
      if (c === 0x5c) {
        if (i >= n) throw eof();
        const e = at(i++);
        if (e === 0x75) {
          for (let k = 0; k < 4; k++) {
            if (i >= n) throw eof();
            const h = at(i++);
            if (!isHex(h)) throw syntaxError(h, 'in \\u hexadecimal character escape');
          }
        } else if (!'bfnrt\\/"'.includes(String.fromCharCode(e))) {
          throw syntaxError(e, 'in string escape code');
        }
      } else if (c < 0x20) {
        throw syntaxError(c, 'in string literal');
      }
    }
  };

  const beginKey = (): void => {
    while (isSpace(at(i))) i++;
    if (i >= n) throw eof();
    const c = at(i);
    if (c !== 0x22) throw syntaxError(c, 'looking for beginning of object key string');
    string();
  };

  const digits = (): void => {
    while (isDigit(at(i))) i++;
  };

  const number = (): void => {
    if (at(i) === 0x2d) {
      i++;
      if (i >= n) throw eof();
      if (!isDigit(at(i))) throw syntaxError(at(i), 'in numeric literal');
    }
    if (at(i) === 0x30) i++;
    else digits();
    if (at(i) === 0x2e) {
      i++;
      if (i >= n) throw eof();
      if (!isDigit(at(i))) throw syntaxError(at(i), 'after decimal point in numeric literal');
      digits();
    }
    if (at(i) === 0x65 || at(i) === 0x45) {
      i++;
      if (at(i) === 0x2b || at(i) === 0x2d) i++;
      if (i >= n) throw eof();
      if (!isDigit(at(i))) throw syntaxError(at(i), 'in exponent of numeric literal');
      digits();
    }
  };

  const literal = (word: string): void => {
    for (let k = 1; k < word.length; k++) {
      const c = at(i + k);
      if (c === -1) throw eof();
      if (c !== word.charCodeAt(k)) throw syntaxError(c, `in literal ${word} (expecting ${quoteChar(word.charCodeAt(k))})`);
    }
    i += word.length;
  };

  for (;;) {
    // beginning of a value
    while (isSpace(at(i))) i++;
    if (i >= n) throw eof();
    const c = at(i);
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= MAX_DEPTH) throw new InvalidRequestError('exceeded max depth');
      i++;
      while (isSpace(at(i))) i++;
      if (i >= n) throw eof();
      if (c === 0x7b) {
        if (at(i) === 0x7d) {
          i++;
        } else {
          stack.push(Ctx.ObjectKey);
          beginKey();
        }
      } else if (at(i) === 0x5d) {
        i++;
      } else {
        stack.push(Ctx.Array);
        continue;
      }
    } else if (c === 0x22) {
      string();
    } else if (c === 0x2d || isDigit(c)) {
      number();
    } else if (c === 0x74) {
      literal('true');
    } else if (c === 0x66) {
      literal('false');
    } else if (c === 0x6e) {
      literal('null');
    } else {
      throw syntaxError(c, 'looking for beginning of value');
    }
    if (endValue()) return i;
  }
}

/**
 * The first JSON value of a body, as etcd's gateway decodes it; undefined for a body of only
 * white space (etcd reads that as an empty request).
 */
export function parseGatewayJson(text: string): Json | undefined {
  if (text.trim().length === 0) return undefined;
  const end = firstValueLength(text);
  return JSON.parse(text.slice(0, end)) as Json;
}
