/**
 * etcd 3.4's learner interceptors on every gRPC service: a learner refuses each call but Status
 * and a serializable Range (src/server/services.ts' checkLearner), streams at their start,
 * before any handler runs, as etcd's unary and stream interceptors do.
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
    if (!m.requestStream && !m.responseStream) {
      const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
      gated[name] = ((c, callback) => {
        try {
          checkLearner(member, call, c.request as { serializable?: boolean });
        } catch (err) {
          callback(toServiceError(err));
          return;
        }
        unary(c, callback);
      }) satisfies grpc.handleUnaryCall<unknown, unknown>;
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
