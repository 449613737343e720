/** Public surface of the MVCC store. */
export { MvccStore, type MvccStoreOptions } from './store.js';
export { StoreSnapshot } from './snapshot.js';
export { encodeRequest, decodeRequest } from './codec.js';
export { validateRequest, validateRange, validatePut, validateDeleteRange, validateTxn, validateCompaction } from './validate.js';
export { isTxnReadonly, type LeaseCheck } from './txn.js';
export * from './errors.js';
export type * from './types.js';
