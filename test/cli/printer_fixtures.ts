/**
 * Responses for the CLI's printers, in the shape the client decodes them from the gateway
 * (`wire` encodes one as the gateway sends it; `decoded` gives it back as the client returns it).
 * Shared by the printer unit test and the script that captured the CLI's output for them.
 */
import { Buffer } from 'node:buffer';
import { decodeMessage, encodeMessage, type Schema } from '../../src/api/codec.js';
import * as S from '../../src/api/schemas.js';

const header = { clusterId: '14841639068965178418', memberId: '10276657743932975437', revision: 7, raftTerm: 2 };
const kv = (key: string, value: string, over: Record<string, unknown> = {}) => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: 2,
  modRevision: 5,
  version: 3,
  lease: 0,
  ...over,
});

const fixtures = {
  put: { schema: S.PutResponse, value: { header } },
  putPrev: { schema: S.PutResponse, value: { header, prevKv: kv('foo', 'old') } },
  get: { schema: S.RangeResponse, value: { header, kvs: [kv('foo', 'bar'), kv('foo2', 'b\u00e9z', { lease: 1234567890123 })], more: false, count: 2 } },
  getEmpty: { schema: S.RangeResponse, value: { header, kvs: [], more: false, count: 0 } },
  del: { schema: S.DeleteRangeResponse, value: { header, deleted: 2, prevKvs: [] } },
  delPrev: { schema: S.DeleteRangeResponse, value: { header, deleted: 1, prevKvs: [kv('foo', 'bar')] } },
  txn: {
    schema: S.TxnResponse,
    value: {
      header,
      succeeded: true,
      responses: [
        { responsePut: { header } },
        { responseRange: { header, kvs: [kv('k1', 'v1')], more: false, count: 1 } },
        { responseDeleteRange: { header, deleted: 3, prevKvs: [] } },
        { responseTxn: { header, succeeded: false, responses: [{ responsePut: { header } }] } },
      ],
    },
  },
  txnFailed: { schema: S.TxnResponse, value: { header, succeeded: false, responses: [] } },
  headerOnly: { schema: S.HeaderOnlyResponse, value: { header } },
  watchEvents: {
    schema: S.WatchResponse,
    value: {
      header,
      watchId: 0,
      events: [
        { type: 'PUT', kv: kv('foo', 'bar'), prevKv: kv('foo', 'old') },
        { type: 'DELETE', kv: kv('foo2', '', { version: 0 }) },
      ],
    },
  },
  watchCreated: { schema: S.WatchResponse, value: { header, watchId: 0, created: true, events: [] } },
  watchCanceled: { schema: S.WatchResponse, value: { header, watchId: 0, canceled: true, compactRevision: 4, events: [] } },
  watchCanceledReason: { schema: S.WatchResponse, value: { header, watchId: 0, canceled: true, cancelReason: 'permission denied', events: [] } },
  leaseGrant: { schema: S.LeaseGrantResponse, value: { header, id: 1234567890123, ttl: 10 } },
  leaseTtl: { schema: S.LeaseTimeToLiveResponse, value: { header, id: 1234567890123, ttl: 8, grantedTtl: 10, keys: [Buffer.from('foo'), Buffer.from('bar')] } },
  leaseExpired: { schema: S.LeaseTimeToLiveResponse, value: { header, id: 31, ttl: -1, grantedTtl: 0, keys: [] } },
  leases: { schema: S.LeaseLeasesResponse, value: { header, leases: [{ id: 31 }, { id: 1234567890123 }] } },
  keepAlive: { schema: S.LeaseKeepAliveResponse, value: { header, id: 31, ttl: 3 } },
  keepAliveGone: { schema: S.LeaseKeepAliveResponse, value: { header, id: 31, ttl: 0 } },
  members: {
    schema: S.MemberListResponse,
    value: {
      header,
      members: [
        { id: '10276657743932975437', name: 'n1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: ['http://127.0.0.1:2379'] },
        { id: '12', name: 'n2', peerUrls: ['http://127.0.0.1:22380'], clientUrls: ['http://127.0.0.1:22379', 'http://10.0.0.2:22379'], isLearner: true },
      ],
    },
  },
  status: {
    schema: S.StatusResponse,
    value: {
      header,
      version: '3.4.0',
      dbSize: 24576,
      leader: '10276657743932975437',
      raftIndex: 9,
      raftTerm: 2,
      raftAppliedIndex: 9,
      errors: [],
      dbSizeInUse: 20480,
    },
  },
  statusFollower: {
    schema: S.StatusResponse,
    value: {
      header: { ...header, memberId: '12' },
      version: '3.4.0',
      dbSize: 512,
      leader: '10276657743932975437',
      raftIndex: 9,
      raftTerm: 2,
      raftAppliedIndex: 8,
      errors: ['a', 'b'],
      dbSizeInUse: 512,
      isLearner: true,
    },
  },
  hash: { schema: S.HashKVResponse, value: { header, hash: 3892639484, compactRevision: 4 } },
} satisfies Record<string, { schema: Schema; value: object }>;

export type FixtureName = keyof typeof fixtures;

/** The fixture as the gateway sends it. */
function wire(name: FixtureName): unknown {
  const f = fixtures[name];
  return encodeMessage(f.value, f.schema);
}

/** The fixture as the client returns it. */
export function decoded<T>(name: FixtureName): T {
  return decodeMessage<T>(wire(name) as Record<string, never>, fixtures[name].schema);
}
