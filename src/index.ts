/**
 * The package's main entry (`import { Client, startLocalCluster } from 'qkv'`): the client
 * library (also alone as `qkv/client`, which loads no server code) and qkv inside a Node
 * program: a member or a throwaway local cluster started from code.
 */
export * from './client/index.js';
export { startLocalCluster, startMember } from './embed.js';
export type { EmbeddedMember, LocalCluster, LocalClusterOptions, LocalMemberInfo, StartMemberOptions } from './embed.js';
