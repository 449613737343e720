/**
 * What every gRPC service handler shares: the member, request limits, the open streams (ended
 * on shutdown), and the helpers that turn an internal handler into a grpc-js unary handler and
 * send leader-only calls to the leader.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Schema } from '../api/codec.js';
import type { Member } from '../server/member.js';
import { requestBytes } from '../server/requests.js';
import { RequestTooLargeError } from '../server/errors.js';
import { fromProto, toProto } from './convert.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';
import { LEADS_HERE, type ForwardTarget } from './forward.js';


export type UnaryHandler = grpc.handleUnaryCall<ProtoMessage, ProtoMessage>;

/** A long-lived call (watch, keep-alive, snapshot) that shutdown must end. */
export interface OpenStream {
  /** Ends the call with an error status the client can fail over on. */
  abort(err: unknown): void;
}

export class GrpcContext {
  readonly streams = new Set<OpenStream>();

  constructor(
    readonly member: Member,
    readonly log: Logger,
    /** etcd's --max-request-bytes: the largest write (keys and values) accepted. */
    readonly maxRequestBytes: number,
  ) {}

  /** The response header of this member at `revision` (etcd's cluster_id, member_id, revision, raft_term). */
  withHeader<T extends { header: { revision: number } }>(r: T): T & { header: ReturnType<Member['header']> } {
    return { ...r, header: this.member.header(r.header.revision) };
  }

  /**
   * Runs `local` on the leader; elsewhere `remote` (forward.ts), which waits for a leader within
   * etcd's request timeout, or answers LEADS_HERE if this member became the leader meanwhile.
   */
  async onLeader<T>(local: () => Promise<T>, remote: (target: ForwardTarget) => Promise<T | typeof LEADS_HERE>): Promise<T> {
    if (this.member.raft.isLeader) return local();
    const r = await remote({ member: this.member, deadline: this.member.requestDeadline() });
    return r === LEADS_HERE ? local() : r;
  }

  /** A unary handler: the proto request decoded with `reqSchema`, the answer encoded with `respSchema`. */
  unary<Req>(reqSchema: Schema, respSchema: Schema, handler: (req: Req, call: grpc.ServerUnaryCall<ProtoMessage, ProtoMessage>) => Promise<object>, opts: { checkSize?: boolean } = {}): UnaryHandler {
    return (call, callback) => {
      void (async () => {
        const req = fromProto<Req>(call.request, reqSchema);
        if (opts.checkSize && requestBytes(req) > this.maxRequestBytes) throw new RequestTooLargeError();
        return toProto(await handler(req, call), respSchema);
      })().then(
        (resp) => callback(null, resp),
        (err: unknown) => {
          this.log.debug({ err: (err as Error).message, path: call.getPath() }, 'grpc call failed');
          callback(toServiceError(err));
        },
      );
    };
  }

  track(stream: OpenStream): () => void {
    this.streams.add(stream);
    return () => this.streams.delete(stream);
  }
}
