/** Public surface of the MVCC store. */
export { MvccStore, type MvccStoreOptions } from './store.js';
export { STORE_FILE_NAME } from './checkpoint.js';
export { encodeRequest, decodeRequest, decodeEntryRequest } from './codec.js';
export { checkAccess, checkAdmin, copyRoleRecord, findRole, findUser, PERMISSION_TYPES, txnNeeds } from './auth.js';
export { validateTxn } from './validate.js';
export { isTxnReadonly } from './txn.js';
export * from './errors.js';
export type * from './types.js';
