/**
 * The watch stream writes an event response pre-encoded (src/grpc/watch.ts): its header, its
 * watch_id and each event encoded apart (an event once for all its watchers) and concatenated.
 * That must be, byte for byte, what encoding the whole message gives, whatever the ids, the
 * revisions and the events.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as S from '../../src/api/schemas.js';
import type { Event, KeyValue } from '../../src/api/kv.js';
import type { WatchResponseMessage } from '../../src/api/types.js';
import { toProto } from '../../src/grpc/convert.js';
import { encodeEventResponse, encodeWatchFields } from '../../src/grpc/watch.js';

const int = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const keyValue: fc.Arbitrary<KeyValue> = fc.record({ key: bytes, createRevision: int, modRevision: int, version: int, value: bytes, lease: int });
const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ type: fc.constant('PUT' as const), kv: keyValue }),
  fc.record({ type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: keyValue, prevKv: keyValue }),
);
const response: fc.Arbitrary<WatchResponseMessage> = fc.record({
  header: fc.record({
    clusterId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
    memberId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
    revision: int,
    raftTerm: int,
  }),
  watchId: fc.integer({ min: 0, max: 1_000_000 }),
  events: fc.array(event, { minLength: 1, maxLength: 5 }),
});

describe('watch event responses, pre-encoded', () => {
  it('are the bytes of the whole message encoded at once', () => {
    fc.assert(
      fc.property(response, (msg) => {
        const parts = encodeEventResponse(
          encodeWatchFields({ header: toProto(msg.header, S.ResponseHeader) }),
          encodeWatchFields({ watch_id: msg.watchId }),
          msg.events,
        );
        expect(parts.equals(encodeWatchFields(toProto(msg, S.WatchResponse)))).toBe(true);
      }),
    );
  });
});
