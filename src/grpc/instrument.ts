/**
 * gRPC server metrics as go-grpc-prometheus records them (etcd registers its interceptors):
 * per method, calls started, calls handled by status code, messages received and sent, and the
 * handling time; plus etcd's byte counters of the encoded messages. Each method's counters are
 * made once, when the service is added, and the wrappers below bump plain numbers: a unary call
 * costs a closure, two clock reads and a few increments.
 *
 * Messages are counted where grpc-js decodes and encodes them (the method definition's
 * deserialize/serialize, which this wraps in a per-server copy), so a unary call that fails
 * sends nothing, as in go-grpc-prometheus; the status code is the one the handler answered
 * (a unary callback's error, a stream's 'error'; a stream the client cancelled is Canceled).
 */
import * as grpc from '@grpc/grpc-js';
import type { GrpcMethodStats, GrpcServerMetrics, GrpcType } from '../server/metrics.js';

const OK = grpc.status.OK;
const CANCELLED = grpc.status.CANCELLED;
const UNKNOWN = grpc.status.UNKNOWN;

function codeOf(err: unknown): number {
  if (err === null || err === undefined) return OK;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16 ? code : UNKNOWN;
}

function typeOf(m: grpc.MethodDefinition<unknown, unknown>): GrpcType {
  if (m.requestStream) return m.responseStream ? 'bidi_stream' : 'client_stream';
  return m.responseStream ? 'server_stream' : 'unary';
}

/** A method's counters, labelled as go-grpc-prometheus labels them: its type, the proto service in full, the method. */
export function methodStats(metrics: GrpcServerMetrics, m: grpc.MethodDefinition<unknown, unknown>): GrpcMethodStats {
  const [service = 'unknown', method = 'unknown'] = m.path.replace(/^\//, '').split('/');
  return metrics.method(typeOf(m), service, method);
}

type AnyHandler = grpc.UntypedHandleCall;
type StreamCall = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

function unary(handler: grpc.handleUnaryCall<unknown, unknown>, stats: GrpcMethodStats): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    stats.started.value++;
    const started = performance.now();
    handler(call, (err, value, trailer, flags) => {
      stats.handled[codeOf(err)]!.value++;
      stats.seconds.observe((performance.now() - started) / 1000);
      callback(err, value, trailer, flags);
    });
  };
}

/** A server-streaming or bidi call: handled once it ends with a status, or the client cancels it. */
function stream(handler: (call: StreamCall) => void, stats: GrpcMethodStats): (call: StreamCall) => void {
  return (call) => {
    stats.started.value++;
    const started = performance.now();
    let code: number | undefined;
    let done = false;
    const handled = (c: number): void => {
      if (done) return;
      done = true;
      stats.handled[c]!.value++;
      stats.seconds.observe((performance.now() - started) / 1000);
    };
    // grpc-js ends the call with the status of an emitted error (its own listener ends it).
    call.on('error', (err: unknown) => {
      code ??= codeOf(err);
    });
    call.on('finish', () => handled(code ?? OK));
    call.on('cancelled', () => handled(CANCELLED));
    call.on('close', () => handled(code ?? CANCELLED));
    handler(call);
  };
}

/**
 * The service's definition and implementation, instrumented: a copy of the definition whose
 * (de)serializers count messages and bytes, and handlers that count calls.
 */
export function instrumentService(
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  metrics: GrpcServerMetrics,
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const impl: grpc.UntypedServiceImplementation = {};
  const { sentBytes, receivedBytes } = metrics;
  for (const [name, m] of Object.entries(definition as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    const type = typeOf(m);
    const stats = methodStats(metrics, m);
    const deserialize = m.requestDeserialize;
    const serialize = m.responseSerialize;
    def[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        receivedBytes.value += bytes.length;
        stats.received.value++;
        return deserialize(bytes);
      },
      responseSerialize: (value: unknown) => {
        const bytes = serialize(value);
        sentBytes.value += bytes.length;
        stats.sent.value++;
        return bytes;
      },
    };
    const handler = (implementation[name] ?? (m.originalName !== undefined ? implementation[m.originalName] : undefined)) as AnyHandler | undefined;
    if (handler === undefined) continue;
    impl[name] =
      type === 'unary'
        ? unary(handler as grpc.handleUnaryCall<unknown, unknown>, stats)
        : type === 'client_stream'
          ? handler
          : (stream(handler as (call: StreamCall) => void, stats) as AnyHandler);
  }
  return { definition: def as grpc.ServiceDefinition, implementation: impl };
}
