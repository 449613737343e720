/**
 * v3electionpb.Election over gRPC: etcd's election service on src/server/concurrency.ts (the same
 * recipes as the gateway's /v3/election routes; the unary calls come from src/server/services.ts). Campaign waits until elected; Observe is a
 * server stream of the leader's values. Both end when the client cancels (a waiting candidate's
 * key is deleted then, as etcd does) or the server stops ("server stopped", so clients fail over).
 */
import type * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import * as C from '../server/concurrency.js';
import { callerOfCall, whileCallOpen, type GrpcContext, type UnaryHandler } from './context.js';
import { asCaller } from '../server/services.js';
import { fromProto, toProto } from './convert.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';

type ObserveCall = grpc.ServerWritableStream<ProtoMessage, ProtoMessage>;

/** The unary calls from the table (src/server/services.ts), and the Observe stream. */
export function electionService(ctx: GrpcContext): Record<string, UnaryHandler | grpc.handleServerStreamingCall<ProtoMessage, ProtoMessage>> {
  return {
    ...ctx.unaryHandlers('Election'),
    Observe: (call: ObserveCall) => void serveObserve(ctx, call),
  };
}

/** Writes each leader response as it comes; waits for the client to drain a full buffer. */
async function serveObserve(ctx: GrpcContext, call: ObserveCall): Promise<void> {
  try {
    const req = fromProto<C.LeaderRequest>(call.request, S.LeaderRequest);
    await whileCallOpen(ctx, call, async (signal) => {
      for await (const resp of C.observe(asCaller(ctx.member, callerOfCall(ctx.member, call)), req, signal)) {
        if (!call.write(toProto(ctx.withHeader(resp), S.LeaderResponse))) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              signal.removeEventListener('abort', done);
              resolve();
            };
            call.once('drain', done);
            signal.addEventListener('abort', done, { once: true });
          });
        }
      }
    });
    call.end();
  } catch (err) {
    if (call.cancelled) return;
    call.emit('error', toServiceError(err));
  }
}
