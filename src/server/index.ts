/**
 * `qkv/server`: a member in a process of one's own (`serve` resolves a member of a cluster
 * config, starts it and returns a handle to close it), and the cluster config. The process
 * itself (src/member_process.ts) lives above src/server and src/grpc: this entry only re-exports it.
 */
export * from '../member_process.js';
export * from './config.js';
export { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION, QKV_VERSION } from '../version.js';
