/**
 * `qkv/api`: etcd v3's message types (the KV ones as the store and the client use them), the
 * JSON gateway codec with its schemas (`schemas.RangeRequest`...) and the key-range helpers.
 */
export * from './types.js';
export type {
  ResponseHeader,
  SortOrder,
  SortTarget,
  RangeRequest,
  RangeResponse,
  PutRequest,
  PutResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  CompareResult,
  CompareTarget,
  Compare,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
  CompactionRequest,
  CompactionResponse,
  EventType,
} from '../mvcc/types.js';
export * from './codec.js';
export * from './keys.js';
export * as schemas from './schemas.js';
