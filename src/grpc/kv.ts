/**
 * etcdserverpb.KV over gRPC: the same Member calls as the JSON gateway's /v3/kv routes. Every
 * member serves every call: a follower's write is proposed through Raft (which hands it to the
 * leader), a linearizable read waits for the ReadIndex barrier, as on HTTP.
 */
import * as S from '../api/schemas.js';
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from '../api/kv.js';
import type { GrpcContext, UnaryHandler } from './context.js';

export function kvService(ctx: GrpcContext): Record<string, UnaryHandler> {
  const { member } = ctx;
  return {
    Range: ctx.unary<RangeRequest>(S.RangeRequest, S.RangeResponse, async (req) => ctx.withHeader(await member.range(req))),
    Put: ctx.unary<PutRequest>(S.PutRequest, S.PutResponse, async (req) => ctx.withHeader(await member.put(req)), { checkSize: true }),
    DeleteRange: ctx.unary<DeleteRangeRequest>(S.DeleteRangeRequest, S.DeleteRangeResponse, async (req) => ctx.withHeader(await member.deleteRange(req))),
    // A read-only txn is a read (no proposal), as in etcd: Member.txn decides.
    Txn: ctx.unary<TxnRequest>(S.TxnRequest, S.TxnResponse, async (req) => ctx.withHeader(await member.txn(req)), { checkSize: true }),
    Compact: ctx.unary<CompactionRequest>(S.CompactionRequest, S.HeaderOnlyResponse, async (req) => ({ header: member.header((await member.compact(req)).revision) })),
  };
}
