/**
 * A bare gRPC client of the etcd API built from qkv's own proto files (grpc-js): unary calls and
 * streams with plain proto objects, for tests that look at the protocol itself (watch ids,
 * progress responses, status codes and messages) on qkv and on a real etcd alike.
 */
import * as grpc from '@grpc/grpc-js';
import { etcdServices, type ProtoMessage, type ServiceName } from '../../src/grpc/proto.js';
import { sleep } from './helpers.js';

export interface CallError {
  code: number;
  details: string;
}

export class RawClient {
  private readonly client: grpc.Client;

  constructor(readonly endpoint: string) {
    this.client = new grpc.Client(endpoint.replace(/^http:\/\//, ''), grpc.credentials.createInsecure());
  }

  private method(service: ServiceName, name: string): grpc.MethodDefinition<ProtoMessage, ProtoMessage> {
    const m = etcdServices()[service][name];
    if (!m) throw new Error(`no method ${service}.${name}`);
    return m as grpc.MethodDefinition<ProtoMessage, ProtoMessage>;
  }

  call(service: ServiceName, name: string, req: ProtoMessage = {}): Promise<ProtoMessage> {
    const m = this.method(service, name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, { deadline: Date.now() + 15_000 }, (err, resp) => {
        if (err) reject(Object.assign(new Error(err.details), { code: err.code, details: err.details }));
        else resolve(resp!);
      });
    });
  }

  /** A unary call the caller may cancel: `done` gets its error (undefined on success). */
  callCancellable(
    service: ServiceName,
    name: string,
    req: ProtoMessage,
    done: (err: CallError | undefined, resp?: ProtoMessage) => void,
  ): grpc.ClientUnaryCall {
    const m = this.method(service, name);
    return this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, { deadline: Date.now() + 15_000 }, (err, resp) => {
      done(err ? { code: err.code, details: err.details } : undefined, resp);
    });
  }

  /** The gRPC status of a failing call (fails the test if it succeeds). */
  async error(service: ServiceName, name: string, req: ProtoMessage = {}): Promise<CallError> {
    try {
      await this.call(service, name, req);
    } catch (err) {
      const e = err as CallError;
      return { code: e.code, details: e.details };
    }
    throw new Error(`${service}.${name} succeeded`);
  }

  /** A bidi stream; `metadata` sent with it (e.g. an auth `token`). */
  stream(service: ServiceName, name: string, metadata: grpc.Metadata = new grpc.Metadata()): Stream {
    const m = this.method(service, name);
    return new Stream(this.client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, metadata));
  }

  serverStream(service: ServiceName, name: string, req: ProtoMessage = {}): Stream {
    const m = this.method(service, name);
    return new Stream(this.client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, req));
  }

  close(): void {
    this.client.close();
  }
}

/** A stream's responses as they come, and its final status. */
export class Stream {
  readonly received: ProtoMessage[] = [];
  status: CallError | undefined;
  ended = false;

  constructor(private readonly call: grpc.ClientDuplexStream<ProtoMessage, ProtoMessage> | grpc.ClientReadableStream<ProtoMessage>) {
    call.on('data', (m: ProtoMessage) => this.received.push(m));
    call.on('error', (e: grpc.ServiceError) => {
      this.status = { code: e.code, details: e.details };
    });
    call.on('status', (s: grpc.StatusObject) => {
      this.status ??= { code: s.code, details: s.details };
    });
    call.on('end', () => {
      this.ended = true;
    });
  }

  /** The responses in short (large values would swamp a failure message). */
  summary(): string {
    return JSON.stringify(
      this.received.map((m) => {
        const short: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(m)) {
          if (k === 'events' && Array.isArray(v)) short[k] = v.length;
          else if (Buffer.isBuffer(v)) short[k] = `<${v.length} bytes>`;
          else if (v && typeof v === 'object' && !Array.isArray(v) && k === 'header') short['revision'] = (v as ProtoMessage)['revision'];
          else if (v !== '' && v !== false && v !== '0') short[k] = v;
        }
        return short;
      }),
    );
  }

  send(msg: ProtoMessage): void {
    (this.call as grpc.ClientDuplexStream<ProtoMessage, ProtoMessage>).write(msg);
  }

  /** Waits until `n` responses have arrived in all. */
  async count(n: number, limitMs = 10_000): Promise<ProtoMessage[]> {
    const deadline = Date.now() + limitMs;
    while (this.received.length < n) {
      if (Date.now() > deadline) throw new Error(`stream: ${this.received.length} of ${n} responses: ${this.summary()} status=${JSON.stringify(this.status)}`);
      await sleep(10);
    }
    return this.received.slice(0, n);
  }

  async until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`stream: timed out waiting for ${what}; got ${this.summary()} status=${JSON.stringify(this.status)}`);
      await sleep(10);
    }
  }

  cancel(): void {
    this.call.cancel();
  }
}
