/**
 * What a data dir records of its member and the membership a new cluster starts from: shared by
 * the member (its first start) and a restore (src/server/backup.ts), which builds a data dir a
 * member then starts from as if it had started there before.
 */
import { open as openFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClusterRecord, MemberRecord } from '../mvcc/index.js';
import type { ClusterConfig } from './config.js';
import { clusterIdOf } from './member_id.js';

/** What the data dir records of its member: its id and cluster, fixed at its first start (etcd keeps them in the WAL's metadata). */
export interface MemberIdentity {
  /** etcd's member id, decimal (a number: an older qkv's 53-bit id, refused). */
  id: string;
  clusterId: string;
}

/** The identity file in a data dir: there once the member started (and its membership was seeded). */
export const IDENTITY_FILE = 'member.json';

/**
 * Writes a data dir's identity file (once: it fails if there is one), synced. Written once the
 * membership it belongs with is seeded: a data dir with this file has its membership.
 */
export async function writeIdentityFile(dataDir: string, identity: MemberIdentity): Promise<void> {
  const fh = await openFile(path.join(dataDir, IDENTITY_FILE), 'wx');
  try {
    await fh.writeFile(JSON.stringify(identity satisfies MemberIdentity));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The membership a new cluster starts from: the initial members, voters all, unstarted (no name or client URLs until they publish). */
export function bootstrapCluster(cfg: ClusterConfig): ClusterRecord {
  // Raft ids 1..n in member id order: every initial member derives the same (src/mvcc/membership.ts).
  const members: MemberRecord[] = [...cfg.members]
    .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0))
    .map((m, i) => ({ id: m.id, raftId: i + 1, name: '', peerUrls: [m.peerUrl], clientUrls: [], isLearner: false }));
  return {
    id: clusterIdOf(cfg.members.map((m) => m.id)),
    token: cfg.name,
    bootstrap: members,
    members: structuredClone(members),
    removed: [],
    nextRaftId: members.length + 1,
  };
}
