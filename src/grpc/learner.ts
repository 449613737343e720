/**
 * etcd 3.4's learner interceptors on every gRPC service: a learner refuses each call but Status
 * and a serializable Range (src/server/services.ts' checkLearner). Streams are refused here at
 * their start, before any handler runs, as etcd's stream interceptor does; unary calls once their
 * request is decoded (GrpcContext.decodeRequest, on both the direct and the grpc-js path), as
 * etcd's unary interceptor sees the decoded request.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Member } from '../server/member.js';
import { checkLearner, type ServiceName } from '../server/services.js';
import { toServiceError } from './status.js';

type StreamCall = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

/** `implementation` with each of `definition`'s methods refused on a learner where etcd refuses it. */
export function learnerGate(
  service: ServiceName,
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  member: Member,
): grpc.UntypedServiceImplementation {
  const gated: grpc.UntypedServiceImplementation = {};
  for (const [name, m] of Object.entries(definition as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    const handler = implementation[name] ?? (m.originalName !== undefined ? implementation[m.originalName] : undefined);
    if (handler === undefined) continue;
    const call = { service, method: m.path.slice(m.path.lastIndexOf('/') + 1) };
    // A unary call is checked once decoded (GrpcContext.decodeRequest: a serializable Range is let through).
    if (!m.requestStream && !m.responseStream) {
      gated[name] = handler;
    } else {
      const stream = handler as (c: StreamCall) => void;
      gated[name] = ((c: StreamCall) => {
        try {
          checkLearner(member, call);
        } catch (err) {
          // grpc-js ends the call with an emitted error's status.
          c.emit('error', toServiceError(err));
          return;
        }
        stream(c);
      }) as grpc.UntypedHandleCall;
    }
  }
  return gated;
}
