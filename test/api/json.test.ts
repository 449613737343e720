import { describe, expect, test } from 'vitest';
import { InvalidRequestError } from '../../src/api/codec.js';
import { firstValueLength, parseGatewayJson } from '../../src/api/json.js';

describe("gateway bodies read as etcd's gateway reads them (Go's json.Decoder)", () => {
  // Each text is etcd 3.4.23's answer to POST /v3/kv/range with that body (curl against the real etcd).
  const malformed: [string, string][] = [
    ['{"key":"YQ=="', 'unexpected EOF'],
    ['{"key":"YQ', 'unexpected EOF'],
    ['{"key"', 'unexpected EOF'],
    ['{', 'unexpected EOF'],
    ['[', 'unexpected EOF'],
    ['{"a":"x', 'unexpected EOF'],
    ['{"key":"YQ==",}', "invalid character '}' looking for beginning of object key string"],
    ['{"key":"YQ==" "x"}', `invalid character '"' after object key:value pair`],
    ['{"key":"YQ==":1}', "invalid character ':' after object key:value pair"],
    ['{"a":tru}', "invalid character '}' in literal true (expecting 'e')"],
    ['{"a":"\\q"}', "invalid character 'q' in string escape code"],
    ['{"a":1e}', "invalid character '}' in exponent of numeric literal"],
    ['{"a":-}', "invalid character '}' in numeric literal"],
    ['{"a":01}', "invalid character '1' after object key:value pair"],
    ['nonsense', "invalid character 'o' in literal null (expecting 'u')"],
    ['x', "invalid character 'x' looking for beginning of value"],
  ];
  test.each(malformed)('%s is refused with %s', (body, message) => {
    expect(() => parseGatewayJson(body)).toThrow(InvalidRequestError);
    expect(() => parseGatewayJson(body)).toThrow(new InvalidRequestError(message));
  });

  test('only the first value is read: what follows it is ignored, as etcd ignores it', () => {
    expect(parseGatewayJson('{"key":"YQ=="} x')).toEqual({ key: 'YQ==' });
    expect(firstValueLength(' {"a":[1,{"b":null}]}{"c":2}')).toBe(' {"a":[1,{"b":null}]}'.length);
  });

  test('a body of only white space is an empty request', () => {
    expect(parseGatewayJson('')).toBeUndefined();
    expect(parseGatewayJson(' \n')).toBeUndefined();
  });

  test('well-formed values of every kind parse as JSON.parse does', () => {
    const samples = ['{}', '[]', '{"a":[1,-2.5e3,true,false,null,"\\u00e9\\n"]}', '"s"', '0', '-0.5E+2'];
    for (const s of samples) expect(parseGatewayJson(s)).toEqual(JSON.parse(s));
  });

  test('nesting is bounded (Go refuses past 10,000 levels)', () => {
    expect(() => parseGatewayJson('['.repeat(10_001))).toThrow('exceeded max depth');
  });
});
