/**
 * etcdserverpb.Maintenance and etcdserverpb.Cluster over gRPC: status, Hash and HashKV,
 * snapshot, alarms (replicated: raised, listed and disarmed through Raft), defragment (a no-op:
 * LevelDB compacts itself), leader moves, and the member list. Membership changes are not
 * supported (qkv's membership is its config file).
 */
import * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import type { Schema } from '../api/codec.js';
import type { AlarmRequest } from '../api/kv.js';
import { snapshotBlobs } from '../server/snapshot_client.js';
import { BadLeaderTransfereeError, UnsupportedError, LeaderTransferTimeoutError } from '../server/errors.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import { forwardUnary, LEADS_HERE } from './forward.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';

const EMPTY: Schema = { type: 'etcdserverpb.Empty', fields: [] };
const MOVE_LEADER_REQUEST: Schema = { type: 'etcdserverpb.MoveLeaderRequest', fields: [{ name: 'targetID', json: 'targetID', kind: 'uint64' }] };

type Handler = UnaryHandler | grpc.handleServerStreamingCall<ProtoMessage, ProtoMessage>;

const notSupported =
  (what: string): UnaryHandler =>
  (_call, callback) =>
    callback(toServiceError(new UnsupportedError(what)));

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
    Hash: ctx.unary(EMPTY, S.HashResponse, async () => {
      const h = await member.hash();
      return { header: member.header(h.revision), hash: h.hash };
    }),
    Alarm: ctx.unary<AlarmRequest>(S.AlarmRequest, S.AlarmResponse, async (req) => ctx.withHeader(await member.alarm(req))),
    // LevelDB compacts its files in the background; there is nothing to defragment.
    Defragment: ctx.unary(EMPTY, S.HeaderOnlyResponse, async () => ({ header: member.header() })),
    MoveLeader: ctx.unary<{ targetID: string }>(MOVE_LEADER_REQUEST, S.HeaderOnlyResponse, async (req) => {
      const target = Number(req.targetID);
      if (!member.members().some((m) => m.id === req.targetID)) throw new BadLeaderTransfereeError();
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
    if (Date.now() > deadline) throw new LeaderTransferTimeoutError();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The store snapshot's blobs (see snapshotBlobs), each with this member's header. */
async function serveSnapshot(ctx: GrpcContext, call: grpc.ServerWritableStream<ProtoMessage, ProtoMessage>): Promise<void> {
  let aborted = false;
  const untrack = ctx.track({
    abort: (err) => {
      aborted = true;
      call.emit('error', toServiceError(err));
    },
  });
  try {
    for await (const { remainingBytes, blob } of snapshotBlobs(ctx.member.store)) {
      if (aborted || call.cancelled) return;
      if (!call.write({ header: toHeader(ctx), remaining_bytes: String(remainingBytes), blob })) await writable(call);
    }
    call.end();
  } catch (err) {
    if (!aborted && !call.cancelled) call.emit('error', toServiceError(err));
  } finally {
    untrack();
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
