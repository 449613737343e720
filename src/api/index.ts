/**
 * `qkv/api`: etcd v3's message types (kv.ts: the KV and alarm ones, as the store and the client
 * use them; types.ts: the rest), the JSON gateway codec with its schemas (`schemas.RangeRequest`...)
 * and the key-range helpers.
 */
export * from './types.js';
export type * from './kv.js';
export * from './codec.js';
export * from './keys.js';
export * as schemas from './schemas.js';
