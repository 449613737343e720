/**
 * v3electionpb.Election over gRPC: etcd's election service on src/server/concurrency.ts (the same
 * recipes as the gateway's /v3/election routes). Campaign waits until elected; Observe is a
 * server stream of the leader's values. Both end when the client cancels (a waiting candidate's
 * key is deleted then, as etcd does) or the server stops ("server stopped", so clients fail over).
 */
import * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import * as C from '../server/concurrency.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import { fromProto, toProto } from './convert.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';
import { whileCallOpen } from './lock.js';

type ObserveCall = grpc.ServerWritableStream<ProtoMessage, ProtoMessage>;

export function electionService(ctx: GrpcContext): Record<string, UnaryHandler | grpc.handleServerStreamingCall<ProtoMessage, ProtoMessage>> {
  const { member } = ctx;
  return {
    Campaign: ctx.unary<C.CampaignRequest>(S.CampaignRequest, S.CampaignResponse, async (req, call) =>
      ctx.withHeader(await whileCallOpen(ctx, call, (signal) => C.campaign(member, req, signal))),
    ),
    Proclaim: ctx.unary<C.ProclaimRequest>(S.ProclaimRequest, S.HeaderOnlyResponse, async (req) => ctx.withHeader(await C.proclaim(member, req))),
    Leader: ctx.unary<C.LeaderRequest>(S.LeaderRequest, S.LeaderResponse, async (req) => ctx.withHeader(await C.leader(member, req))),
    Resign: ctx.unary<C.ResignRequest>(S.ResignRequest, S.HeaderOnlyResponse, async (req) => ctx.withHeader(await C.resign(member, req))),
    Observe: (call: ObserveCall) => void serveObserve(ctx, call),
  };
}

/** Writes each leader response as it comes; waits for the client to drain a full buffer. */
async function serveObserve(ctx: GrpcContext, call: ObserveCall): Promise<void> {
  try {
    const req = fromProto<C.LeaderRequest>(call.request, S.LeaderRequest);
    await whileCallOpen(ctx, call, async (signal) => {
      for await (const resp of C.observe(ctx.member, req, signal)) {
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
