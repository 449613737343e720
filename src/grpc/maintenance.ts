/**
 * etcdserverpb.Maintenance over gRPC: its unary calls (status, Hash and HashKV, alarms,
 * defragment, leader moves) come from the table (src/server/services.ts, as Cluster's do);
 * here the Snapshot stream.
 */
import type * as grpc from '@grpc/grpc-js';
import { snapshotBlobs } from '../server/snapshot_client.js';
import { callerOfCall } from './context.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';

type Handler = UnaryHandler | grpc.handleServerStreamingCall<ProtoMessage, ProtoMessage>;

/** The unary calls from the table (src/server/services.ts), and the Snapshot stream. */
export function maintenanceService(ctx: GrpcContext): Record<string, Handler> {
  return {
    ...ctx.unaryHandlers('Maintenance'),
    Snapshot: (call: grpc.ServerWritableStream<ProtoMessage, ProtoMessage>) => void serveSnapshot(ctx, call),
  };
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
    ctx.member.checkMaintenanceAdmin(callerOfCall(ctx.member, call));
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
