/**
 * etcdserverpb.Lease over gRPC. Grant and revoke go through Raft on the leader; keep-alive and
 * time-to-live are the leader's alone (it holds the expiry clock); a follower forwards all of
 * them to the leader's gateway, as the HTTP API does. LeaseLeases is answered locally.
 */
import type * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import type { LeaseKeepAliveResponse } from '../api/types.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import { int64, toProto } from './convert.js';
import { forwardKeepAlive } from './forward.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';

type KeepAliveCall = grpc.ServerDuplexStream<ProtoMessage, ProtoMessage>;

export function leaseService(ctx: GrpcContext): Record<string, UnaryHandler | grpc.handleBidiStreamingCall<ProtoMessage, ProtoMessage>> {
  return {
    // Grant, revoke, time-to-live and the list: the table (src/server/services.ts).
    ...ctx.unaryHandlers('Lease'),
    LeaseKeepAlive: (call: KeepAliveCall) => serveKeepAlive(ctx, call),
  };
}

/**
 * The keep-alive stream: one response per request, in order. etcd answers TTL 0 for a lease
 * that is gone; any other failure ends the stream with its status (the client opens a new one).
 */
function serveKeepAlive(ctx: GrpcContext, call: KeepAliveCall): void {
  const { member } = ctx;
  let chain = Promise.resolve();
  let ended = false;
  const untrack = ctx.track({ abort: (err) => fail(err) });
  const finish = (): void => {
    if (ended) return;
    ended = true;
    untrack();
  };
  const fail = (err: unknown): void => {
    if (ended) return;
    finish();
    call.emit('error', toServiceError(err));
  };
  const renew = async (id: number): Promise<LeaseKeepAliveResponse> =>
    ctx.onLeader(
      async () => member.leaseKeepAlive(id),
      (t) => forwardKeepAlive<LeaseKeepAliveResponse>(t, id, S.LeaseKeepAliveResponse),
    );
  call.on('data', (msg: ProtoMessage) => {
    const id = int64(msg['ID'], 'ID');
    chain = chain.then(async () => {
      if (ended) return;
      try {
        const r = await renew(id);
        if (ended || call.cancelled) return;
        const resp = toProto({ ...r, header: member.header(r.header.revision) }, S.LeaseKeepAliveResponse);
        // Echo the id exactly as asked (an id beyond 2^53 was clamped for the lookup).
        resp['ID'] = msg['ID'] ?? '0';
        call.write(resp);
      } catch (err) {
        fail(err);
      }
    });
  });
  // The client closed its side: answer what is pending, then close ours (etcd returns on EOF).
  call.on('end', () => {
    void chain.then(() => {
      if (ended) return;
      finish();
      call.end();
    });
  });
  call.on('cancelled', finish);
  call.on('error', finish);
}
