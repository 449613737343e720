/**
 * What every gRPC service handler shares: the member, request limits, the open streams (ended
 * on shutdown), each service's unary handlers built from the one table (src/server/services.ts),
 * and sending leader-only calls to the leader.
 */
import type { Buffer } from 'node:buffer';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../server/member.js';
import type { Caller } from '../mvcc/types.js';
import { callCommonName } from '../tls.js';
import { ServerStoppedError, UnsupportedError } from '../server/errors.js';
import {
  callContext,
  checkLearner,
  checkRequest,
  unaryMethodsOf,
  UNSUPPORTED_METHODS,
  withHeader,
  type CallContext,
  type CallCredentials,
  type ServiceName,
  type UnaryMethod,
} from '../server/services.js';
import { wireCodec, type WireCodec } from './wire.js';
import { methodMessageTypes } from './proto.js';
import type { ProtoMessage } from './proto.js';
import { toServiceError } from './status.js';
import { forwardUnary, LEADS_HERE, type ForwardTarget } from './forward.js';

/** A unary method's grpc-js handler: the request's message bytes in, the response's out. */
export type UnaryHandler = grpc.handleUnaryCall<Buffer, Buffer>;

const codecs = new WeakMap<UnaryMethod, { request: WireCodec<object>; response: WireCodec<object> }>();

/** A method's request and response codecs, compiled once, with its own proto messages' field numbers (several methods share a schema). */
function codecsOf(method: UnaryMethod): { request: WireCodec<object>; response: WireCodec<object> } {
  let c = codecs.get(method);
  if (c === undefined) {
    const types = methodMessageTypes(method.service, method.method);
    c = { request: wireCodec<object>(method.request, types.request), response: wireCodec<object>(method.response, types.response) };
    codecs.set(method, c);
  }
  return c;
}

/** What a unary call shows of itself to its handler, whichever server took it. */
export interface UnaryCallInfo {
  credentials: CallCredentials;
  /** The client's address, `host:port`. */
  peer: string;
}

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
    return withHeader(this.member, r);
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

  /**
   * The grpc-js handlers of `service`'s unary methods, from the one table (src/server/services.ts):
   * the proto request decoded with the entry's request schema, the answer encoded with its
   * response schema. A leader-only entry runs here on the leader, else goes to the leader's
   * gateway at the entry's path (forward.ts), its answer with this member's header (or the
   * entry's own `grpc.after`); a waiting one is aborted when the call is cancelled or the server
   * stops. The methods qkv does not implement answer "not supported".
   */
  unaryHandlers(service: ServiceName): Record<string, UnaryHandler> {
    const handlers: Record<string, UnaryHandler> = {};
    for (const method of unaryMethodsOf(service)) handlers[method.method] = this.unaryHandler(method);
    for (const u of UNSUPPORTED_METHODS.filter((x) => x.service === service)) {
      handlers[u.method] = (_call, callback) => {
        try {
          checkLearner(this.member, u);
          callback(toServiceError(new UnsupportedError(u.what)));
        } catch (err) {
          callback(toServiceError(err));
        }
      };
    }
    return handlers;
  }

  /**
   * A unary call's request, from its message bytes to the internal shape (wire.ts), checked as
   * both servers check it (the direct one, direct_unary.ts, and grpc-js): etcd's learner rule,
   * the write's size, and the entry's gRPC-only check.
   */
  decodeRequest(method: UnaryMethod, bytes: Uint8Array): object {
    const req = codecsOf(method).request.decode(bytes);
    checkLearner(this.member, method, req as { serializable?: boolean });
    checkRequest(method, req, this.maxRequestBytes);
    method.grpc?.check?.(this.member, req);
    return req;
  }

  /** A unary call's answer (internal shape) as its response message's bytes. */
  encodeResponse(method: UnaryMethod, resp: object): Buffer {
    return codecsOf(method).response.encode(resp);
  }

  /**
   * The answer to a decoded request of a method that does not wait (`waits`), in the internal
   * shape. A leader-only entry runs here on the leader, else goes to the leader's gateway at the
   * entry's path, its answer with this member's header (or the entry's own `grpc.after`).
   */
  async answer(method: UnaryMethod, req: object, call: UnaryCallInfo): Promise<object> {
    const { member } = this;
    const context = (): Promise<CallContext> => callContext(member, call.credentials, call.peer, NEVER_ABORTED);
    if (!method.leaderOnly) return method.handler(member, req, await context());
    const { idempotent } = method.leaderOnly;
    await method.beforeLeader?.(member, req);
    // Resolved once: a forward that finds this member leading meanwhile runs here with the same caller.
    let resolved: Promise<CallContext> | undefined;
    const once = (): Promise<CallContext> => (resolved ??= context());
    const r = await this.onLeader(
      async () => method.handler(member, req, await once()),
      async (t) => {
        // The caller goes to the leader as a token: the leader sees this member's certificate, not the client's.
        const token = await (await once()).forwardToken();
        return forwardUnary<object, { header: { revision: number } }>({ ...t, token }, method.path, req, method.request, method.response, { idempotent });
      },
    );
    return method.grpc?.after ? method.grpc.after(member, req) : this.withHeader(r as { header: { revision: number } });
  }

  /** The grpc-js handler of a unary method (a waiting one is aborted when the call is cancelled or the server stops). */
  private unaryHandler(method: UnaryMethod): UnaryHandler {
    const { member } = this;
    const run = async (req: object, call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<object> => {
      const credentials = credentialsOf(member, call);
      if (!method.waits) return this.answer(method, req, { credentials, peer: call.getPeer() });
      return whileCallOpen(this, call, async (signal) => method.handler(member, req, await callContext(member, credentials, call.getPeer(), signal)));
    };
    return (call, callback) => {
      // The request comes as its bytes (server.ts gives grpc-js no decoder for these methods); the answer goes as bytes (proto.ts's passEncoded).
      void (async () => this.encodeResponse(method, await run(this.decodeRequest(method, call.request), call)))().then(
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

const NEVER_ABORTED = new AbortController().signal;

/** What a gRPC call (unary or streaming) shows of itself: its metadata and its connection's TLS. */
type CallWithCertificate = { metadata: grpc.Metadata } & Parameters<typeof callCommonName>[0];

/**
 * What a call says of its caller: its token (`metadata(key)`: a metadata key's first value), and
 * the CN of its verified client certificate when the client port requires one (etcd reads the
 * CN only with --client-cert-auth). grpc-js's calls and the direct server's (direct_unary.ts) alike.
 */
export function callCredentials(
  member: Member,
  metadata: (key: string) => string | undefined,
  connection: Parameters<typeof callCommonName>[0],
): CallCredentials {
  return { token: tokenFrom(metadata), commonName: member.clientCertAuth ? callCommonName(connection) : undefined };
}

function credentialsOf(member: Member, call: CallWithCertificate): CallCredentials {
  return callCredentials(member, metadataOf(call.metadata), call);
}

/** The caller of a streaming call (the unary ones resolve it through their CallContext). */
export function callerOfCall(member: Member, call: CallWithCertificate): Caller | undefined {
  const c = credentialsOf(member, call);
  return member.authn.callerOf(c.token, c.commonName);
}

/** The auth token a call carries: etcd's gRPC metadata `token` (clientv3, etcdctl), or `authorization` (as etcd also reads). */
function tokenFrom(metadata: (key: string) => string | undefined): string | undefined {
  return metadata('token') ?? metadata('authorization');
}

/** A grpc-js Metadata's first value of a key. */
const metadataOf =
  (md: grpc.Metadata) =>
  (key: string): string | undefined => {
    const v = md.get(key)[0];
    return v === undefined ? undefined : String(v);
  };

/** The auth token of a grpc-js call's metadata. */
export function tokenOf(md: grpc.Metadata): string | undefined {
  return tokenFrom(metadataOf(md));
}

/**
 * An AbortSignal for a waiting call: aborted when the client cancels it or the server stops;
 * `run` answers "server stopped" in the latter case, whatever the wait ended with.
 */
export async function whileCallOpen<T>(
  ctx: GrpcContext,
  call: grpc.ServerUnaryCall<Buffer, Buffer> | grpc.ServerWritableStream<ProtoMessage, ProtoMessage>,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
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
