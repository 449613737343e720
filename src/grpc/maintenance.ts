/**
 * etcdserverpb.Maintenance and etcdserverpb.Cluster over gRPC: status, HashKV, snapshot,
 * alarms (qkv raises none), defragment (a no-op: LevelDB compacts itself), leader moves, and the
 * member list. Membership changes are not supported (qkv's membership is its config file).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import type { Schema } from '../api/codec.js';
import { snapshotFrames } from '../server/snapshot_client.js';
import { badLeaderTransferee, unsupported, leaderTransferTimeout } from '../server/errors.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import { forwardUnary, LEADS_HERE } from './forward.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';

/** etcd sends its snapshot in blobs of 32 KiB. */
const SNAPSHOT_CHUNK = 32 * 1024;

const EMPTY: Schema = { type: 'etcdserverpb.Empty', fields: [] };
const ALARM_REQUEST: Schema = { type: 'etcdserverpb.AlarmRequest', fields: [{ name: 'action', json: 'action', kind: { enum: ['GET', 'ACTIVATE', 'DEACTIVATE'] } }] };
const ALARM_RESPONSE: Schema = { type: 'etcdserverpb.AlarmResponse', fields: [S.HeaderOnlyResponse.fields[0]!] };
const MOVE_LEADER_REQUEST: Schema = { type: 'etcdserverpb.MoveLeaderRequest', fields: [{ name: 'targetID', json: 'targetID', kind: 'uint64' }] };

type Handler = UnaryHandler | grpc.handleServerStreamingCall<ProtoMessage, ProtoMessage>;

const notSupported =
  (what: string): UnaryHandler =>
  (_call, callback) =>
    callback(toServiceError(unsupported(what)));

export function clusterService(ctx: GrpcContext): Record<string, Handler> {
  const { member } = ctx;
  return {
    MemberList: ctx.unary(EMPTY, S.MemberListResponse, async () => ({ header: member.header(), members: member.members() })),
    MemberAdd: notSupported('MemberAdd (membership comes from cluster.config.json)'),
    MemberRemove: notSupported('MemberRemove (membership comes from cluster.config.json)'),
    MemberUpdate: notSupported('MemberUpdate (membership comes from cluster.config.json)'),
    MemberPromote: notSupported('MemberPromote (qkv has no learners)'),
  };
}

export function maintenanceService(ctx: GrpcContext): Record<string, Handler> {
  const { member } = ctx;
  return {
    Status: ctx.unary(EMPTY, S.StatusResponse, () => member.status()),
    HashKV: ctx.unary<{ revision: number }>(S.HashKVRequest, S.HashKVResponse, async (req) => {
      const h = await member.hashKV(req.revision);
      return { header: member.header(h.header.revision), hash: h.hash, compactRevision: h.compactRevision };
    }),
    Hash: notSupported('Hash (use HashKV)'),
    // No alarm is ever raised in qkv: list and disarm answer an empty list.
    Alarm: ctx.unary<{ action: string }>(ALARM_REQUEST, ALARM_RESPONSE, async (req) => {
      if (req.action === 'ACTIVATE') throw unsupported('raising alarms');
      return { header: member.header() };
    }),
    // LevelDB compacts its files in the background; there is nothing to defragment.
    Defragment: ctx.unary(EMPTY, S.HeaderOnlyResponse, async () => ({ header: member.header() })),
    MoveLeader: ctx.unary<{ targetID: string }>(MOVE_LEADER_REQUEST, S.HeaderOnlyResponse, async (req) => {
      const target = Number(req.targetID);
      if (!member.members().some((m) => m.id === req.targetID)) throw badLeaderTransferee();
      await ctx.onLeader(
        async () => member.transferLeadership(target),
        async (t) => {
          const r = await forwardUnary(t, '/v3/maintenance/transfer-leadership', req, MOVE_LEADER_REQUEST, S.HeaderOnlyResponse, { idempotent: true });
          return r === LEADS_HERE ? r : undefined;
        },
      );
      await waitForLeader(ctx, target);
      return { header: member.header() };
    }),
    Snapshot: (call: grpc.ServerWritableStream<ProtoMessage, ProtoMessage>) => void serveSnapshot(ctx, call),
  };
}

/** etcd's MoveLeader returns once the target leads (or times out after an election's worth of tries). */
async function waitForLeader(ctx: GrpcContext, target: number): Promise<void> {
  const cfg = ctx.member.opts.cluster;
  const deadline = Date.now() + Math.max(5_000, 3 * cfg.tickMs * cfg.electionTicks);
  while (ctx.member.raft.leader !== target) {
    if (Date.now() > deadline) throw leaderTransferTimeout();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The store snapshot in qkv's own format (the length-prefixed frames members exchange, an empty
 * frame, zero padding to a multiple of 512 bytes), spooled to a temporary file first so that
 * every message carries the exact remaining_bytes, as etcd's does; the last message is the
 * SHA-256 of everything before it, as etcd appends to its snapshot. `etcdctl snapshot save`
 * stores it; `etcdctl snapshot restore` cannot read it (it expects a bolt database).
 */
async function serveSnapshot(ctx: GrpcContext, call: grpc.ServerWritableStream<ProtoMessage, ProtoMessage>): Promise<void> {
  let aborted = false;
  const untrack = ctx.track({
    abort: (err) => {
      aborted = true;
      call.emit('error', toServiceError(err));
    },
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-snapshot-'));
  try {
    const file = path.join(dir, 'snapshot');
    const hash = createHash('sha256');
    let size = 0;
    const out = createWriteStream(file);
    for await (const frame of snapshotFrames(ctx.member.store)) {
      hash.update(frame);
      size += frame.length;
      if (!out.write(frame)) await once(out, 'drain');
    }
    // etcdctl accepts a snapshot only if its size is a multiple of 512 (etcd's bolt pages)
    // plus the 32-byte digest: an empty frame ends qkv's frames, zeros pad up to the boundary.
    const pad = Buffer.alloc(4 + ((512 - ((size + 4) % 512)) % 512));
    hash.update(pad);
    size += pad.length;
    out.end(pad);
    await once(out, 'finish');
    // As etcd: remaining_bytes counts the snapshot still to come after this blob; the digest
    // follows the last blob (remaining 0) in a message of its own, also remaining 0.
    let remaining = size;
    const send = async (blob: Buffer): Promise<void> => {
      remaining = Math.max(0, remaining - blob.length);
      if (!call.write({ header: toHeader(ctx), remaining_bytes: String(remaining), blob })) await writable(call);
    };
    for await (const chunk of createReadStream(file, { highWaterMark: SNAPSHOT_CHUNK })) {
      if (aborted || call.cancelled) return;
      await send(chunk as Buffer);
    }
    await send(hash.digest());
    call.end();
  } catch (err) {
    if (!aborted && !call.cancelled) call.emit('error', toServiceError(err));
  } finally {
    untrack();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Resolves when the call can take more writes, or will never need to. */
function writable(call: grpc.ServerWritableStream<ProtoMessage, ProtoMessage>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
    call.on('cancelled', done);
  });
}

function toHeader(ctx: GrpcContext): ProtoMessage {
  const h = ctx.member.header();
  return { cluster_id: h.clusterId, member_id: h.memberId, revision: h.revision, raft_term: h.raftTerm };
}
