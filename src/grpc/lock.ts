/**
 * v3lockpb.Lock over gRPC: etcd's lock service on src/server/concurrency.ts (the same recipes as
 * the gateway's /v3/lock routes). A waiting Lock ends when the client cancels the call (its key
 * is deleted then, as etcd does) or when the server stops (the client sees "server stopped").
 */
import * as grpc from '@grpc/grpc-js';
import * as S from '../api/schemas.js';
import * as C from '../server/concurrency.js';
import { ServerStoppedError } from '../server/errors.js';
import type { GrpcContext, UnaryHandler } from './context.js';
import type { ProtoMessage } from './proto.js';

/**
 * An AbortSignal for a waiting call: aborted when the client cancels it or the server stops;
 * `run` answers "server stopped" in the latter case, whatever the wait ended with.
 */
export async function whileCallOpen<T>(ctx: GrpcContext, call: grpc.ServerUnaryCall<ProtoMessage, ProtoMessage> | grpc.ServerWritableStream<ProtoMessage, ProtoMessage>, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  let stopping = false;
  const untrack = ctx.track({
    abort: () => {
      stopping = true;
      ctl.abort();
    },
  });
  const onCancel = (): void => ctl.abort();
  call.once('cancelled', onCancel);
  if (call.cancelled) ctl.abort();
  try {
    return await run(ctl.signal);
  } catch (err) {
    throw stopping ? new ServerStoppedError() : err;
  } finally {
    untrack();
    call.removeListener('cancelled', onCancel);
  }
}

export function lockService(ctx: GrpcContext): Record<string, UnaryHandler> {
  const { member } = ctx;
  return {
    Lock: ctx.unary<C.LockRequest>(S.LockRequest, S.LockResponse, async (req, call) => ctx.withHeader(await whileCallOpen(ctx, call, (signal) => C.lock(member, req, signal)))),
    Unlock: ctx.unary<C.UnlockRequest>(S.UnlockRequest, S.HeaderOnlyResponse, async (req) => ctx.withHeader(await C.unlock(member, req))),
  };
}
