/**
 * The error registry: every exported CodedError class under src, constructed from a sample,
 * against its row in docs/errors.md (code, gRPC code, HTTP status, wire message), through the
 * one mapping both APIs use (src/server/errors.ts). The classes are found by scanning the
 * sources and importing them, so a new class cannot be forgotten: it fails here until it has a
 * sample and a row.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CodedError, GrpcCode } from '../src/errors.js';
import { httpStatusOf, toGrpcStatus, toHttpError } from '../src/server/errors.js';

const ROOT = path.join(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');
const DOC = path.join(ROOT, 'docs', 'errors.md');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/**
 * Sample constructor arguments of every error class, by class name. Abstract family bases
 * (RaftError, MvccError, LeaseError, LogStoreError, PeerWireError, BackupError, CodedError) are never thrown
 * themselves and have no row.
 */
const SAMPLES: Record<string, unknown[]> = {
  // src/errors.ts
  InternalError: ['etcdserver: entry applied twice'],
  // src/raft
  ProposalDroppedError: ['not leader'],
  LogCompactedError: [5],
  SnapshotOutOfDateError: [3, 7],
  RaftConfigError: ['id must not be 0'],
  ReadIndexDroppedError: ['no leader'],
  // src/wal
  LogGapError: ['entries not contiguous at 7'],
  LogCorruptError: ['bad snapshot file'],
  LogCompactError: [9, 5],
  LogUnsupportedError: ['/var/lib/qkv'],
  // src/mvcc
  CompactedError: [],
  FutureRevisionError: [],
  EmptyKeyError: [],
  KeyNotFoundError: [],
  ValueProvidedError: [],
  LeaseProvidedError: [],
  DuplicateKeyError: [],
  TooManyOpsError: [],
  NoSpaceError: [],
  AuthUserEmptyError: [],
  AuthFailedError: [],
  NoPasswordUserError: [],
  PermissionDeniedError: [],
  AdminPermissionDeniedError: [],
  AdminUserEmptyError: [],
  InvalidAuthTokenError: [],
  AuthOldRevisionError: [],
  RootUserNotExistError: [],
  RootRoleNotExistError: [],
  UserAlreadyExistError: [],
  UserNotFoundError: [],
  RoleAlreadyExistError: [],
  RoleNotFoundError: [],
  RoleEmptyError: [],
  RoleNotGrantedError: [],
  PermissionNotGrantedError: [],
  InvalidAuthManagementError: [],
  ClusterCorruptError: [],
  InvalidArgumentError: ['revision must be a safe integer'],
  StoreClosedError: [],
  StoreFailedError: [new Error('disk full')],
  CorruptError: ['bad record'],
  StoreFileCorruptError: ['/var/lib/qkv/kv/000012.ldb', 41498, 'block checksum mismatch'],
  // src/lease
  LeaseNotFoundError: [],
  LeaseExistsError: [],
  LeaseTTLTooLargeError: [],
  LeaseNotPrimaryError: [],
  // src/backup
  BboltCorruptError: ['page 9 out of range (pages 2 to 8)'],
  SnapshotIntegrityError: ['sha256 mismatch'],
  SnapshotContentError: ['key bucket: 73686f7274 is not a revision key'],
  RestoreTargetExistsError: ['/var/lib/qkv/m1'],
  // src/watch, src/api
  WatchLimitError: [],
  InvalidRequestError: ['unexpected EOF'],
  // src/grpc
  ProtoDecodeError: ['unexpected EOF'],
  // src/server
  ConfigError: ['cluster.config.json: expected a JSON object'],
  // src/tls.ts
  TlsFileError: ['open /etc/qkv/member.pem: no such file or directory'],
  PeerFrameError: ['truncated body'],
  PeerMessageError: ['term is not a safe integer'],
  PeerFrameTooLargeError: [300, 256],
  PeerHelloError: [],
  ProposalLostError: [],
  TooManyRequestsError: [],
  ReadTimeoutError: [],
  ProposalTimeoutError: [],
  NodeStoppedError: [],
  NoLeaderError: [],
  RequestTooLargeError: [],
  MessageTooLargeError: [3000000, 2097152],
  RequestTimedOutError: [],
  LeaderChangedError: [],
  TimeoutDueToLeaderFailError: [],
  BadRequestError: ['order must be ascend or descend'],
  BadLeaderTransfereeError: [],
  LeaderTransferTimeoutError: [],
  MemberNotFoundError: [],
  PeerUrlExistsError: [],
  MemberBadUrlsError: [],
  NotEnoughStartedMembersError: [],
  UnhealthyClusterError: [],
  MemberNotLearnerError: [],
  LearnerNotReadyError: [],
  TooManyLearnersError: [],
  LearnerNotSupportedError: [],
  MemberRemovedError: [],
  ClusterMismatchError: ['{why}'],
  AuthNotEnabledError: [],
  TooManyAuthAttemptsError: [],
  JwtVerifyOnlyError: [],
  UnsupportedError: ['authentication'],
  ServerStoppedError: [],
  ForwardedError: [GrpcCode.Unavailable, 'etcdserver: no leader'],
  ElectionNoLeaderError: [],
  ElectionNotLeaderError: [],
  MissingLeaderKeyError: [],
  SessionExpiredError: [],
  CanceledError: [],
  ConcurrencyError: ['etcdserver: request timed out'],
};

/** An exported error class and the module (relative to the repository) that declares it. */
interface ErrorClass {
  name: string;
  module: string;
  ctor: new (...args: never[]) => CodedError;
}

/** Every `export class X extends …` under src whose value is a CodedError subclass. */
async function findErrorClasses(): Promise<ErrorClass[]> {
  const found: ErrorClass[] = [];
  for (const file of sourceFiles(SRC)) {
    const names = [...readFileSync(file, 'utf8').matchAll(/^export class (\w+)\s+extends\s/gm)].map((m) => m[1]!);
    if (names.length === 0) continue;
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const name of names) {
      const value = mod[name];
      if (typeof value === 'function' && value.prototype instanceof CodedError) {
        found.push({ name, module: path.relative(ROOT, file).split(path.sep).join('/'), ctor: value as ErrorClass['ctor'] });
      }
    }
  }
  return found;
}

/** A row of docs/errors.md's table. */
interface DocRow {
  name: string;
  module: string;
  code: string;
  grpc: string;
  http: string;
  message: string;
}

/** The table rows of the doc: lines `| \`Class\` | module | code | gRPC | HTTP | message |`. */
function parseDoc(text: string): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of text.split('\n')) {
    if (!/^\|\s*`\w+`\s*\|/.test(line)) continue;
    const cells = line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim().replace(/^`(.*)`$/, '$1'));
    const [name = '', module = '', code = '', grpc = '', http = '', message = ''] = cells;
    rows.push({ name, module, code, grpc, http, message });
  }
  return rows;
}

/** What a class's sample gives, in the doc's words. */
function describeSample(c: ErrorClass, args: unknown[]): Omit<DocRow, 'name'> {
  const err = new c.ctor(...(args as never[]));
  const status = toGrpcStatus(err);
  return {
    module: c.module,
    code: err.code,
    grpc: `${GrpcCode[status.code]} (${status.code})`,
    http: String(toHttpError(err).status),
    message: status.message,
  };
}

/** A doc cell as a pattern: `{anything}` stands for a parameter (one or more characters). */
function cellMatches(cell: string, actual: string): boolean {
  const parts = cell.split(/\{[^}]+\}/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+')}$`, 's').test(actual);
}

/** Every difference between the classes (with their samples) and the doc's rows. */
function problems(classes: ErrorClass[], samples: Record<string, unknown[]>, rows: DocRow[]): string[] {
  const out: string[] = [];
  const byName = new Map<string, DocRow>();
  for (const r of rows) {
    if (byName.has(r.name)) out.push(`${r.name}: two rows in docs/errors.md`);
    byName.set(r.name, r);
  }
  const names = new Set(classes.map((c) => c.name));
  for (const r of rows) if (!names.has(r.name)) out.push(`${r.name}: a row in docs/errors.md, but no such error class in src`);
  for (const s of Object.keys(samples)) if (!names.has(s)) out.push(`${s}: a sample, but no such error class in src`);
  for (const c of classes) {
    const args = samples[c.name];
    if (!args) {
      out.push(`${c.name} (${c.module}): no sample constructor arguments in test/errors.test.ts`);
      continue;
    }
    const row = byName.get(c.name);
    if (!row) {
      out.push(`${c.name} (${c.module}): no row in docs/errors.md`);
      continue;
    }
    const actual = describeSample(c, args);
    for (const k of ['module', 'code', 'grpc', 'http', 'message'] as const) {
      if (!cellMatches(row[k], actual[k])) out.push(`${c.name}: ${k} is ${JSON.stringify(actual[k])}, docs/errors.md says ${JSON.stringify(row[k])}`);
    }
  }
  return out;
}

describe('the error registry', async () => {
  const classes = await findErrorClasses();
  const rows = parseDoc(readFileSync(DOC, 'utf8'));

  it('finds the error classes of every layer', () => {
    const names = classes.map((c) => c.name);
    for (const n of [
      'InternalError',
      'ProposalDroppedError',
      'LogGapError',
      'CompactedError',
      'LeaseNotFoundError',
      'WatchLimitError',
      'InvalidRequestError',
      'NoLeaderError',
      'ForwardedError',
      'CanceledError',
    ]) {
      expect(names).toContain(n);
    }
    expect(new Set(names).size).toBe(names.length);
  });

  it('every class has a sample, a row in docs/errors.md, and answers what the row says', () => {
    expect(problems(classes, SAMPLES, rows)).toEqual([]);
  });

  it('each sample is an instance named after its class, and its HTTP status is the gRPC code’s', () => {
    for (const c of classes) {
      const err = new c.ctor(...((SAMPLES[c.name] ?? []) as never[]));
      expect(err).toBeInstanceOf(c.ctor);
      expect(err.name).toBe(c.name);
      expect(toHttpError(err).status).toBe(httpStatusOf(err.grpcCode));
    }
  });

  it('a forwarded error keeps the code it was forwarded with', async () => {
    const { ForwardedError } = await import('../src/server/errors.js');
    expect(toGrpcStatus(new ForwardedError(GrpcCode.NotFound, 'etcdserver: requested lease not found'))).toEqual({
      code: GrpcCode.NotFound,
      message: 'etcdserver: requested lease not found',
    });
  });

  it('anything else is Unknown with its message', () => {
    expect(toHttpError(new Error('boom'))).toEqual({ status: 500, body: { error: 'boom', message: 'boom', code: GrpcCode.Unknown } });
  });

  it('reports a planted wrong row, an undocumented class, a class without a sample and a row naming no class', () => {
    const c = classes.find((x) => x.name === 'NoLeaderError')!;
    const good: DocRow = {
      name: 'NoLeaderError',
      module: 'src/server/errors.ts',
      code: 'ERR_NO_LEADER',
      grpc: 'Unavailable (14)',
      http: '503',
      message: 'etcdserver: no leader',
    };
    expect(problems([c], { NoLeaderError: [] }, [good])).toEqual([]);
    expect(problems([c], { NoLeaderError: [] }, [{ ...good, grpc: 'Unknown (2)', http: '500' }])).toEqual([
      'NoLeaderError: grpc is "Unavailable (14)", docs/errors.md says "Unknown (2)"',
      'NoLeaderError: http is "503", docs/errors.md says "500"',
    ]);
    expect(problems([c], { NoLeaderError: [] }, [])).toEqual(['NoLeaderError (src/server/errors.ts): no row in docs/errors.md']);
    expect(problems([c], {}, [good])).toEqual(['NoLeaderError (src/server/errors.ts): no sample constructor arguments in test/errors.test.ts']);
    expect(problems([c], { NoLeaderError: [] }, [good, { ...good, name: 'GoneError' }])).toEqual([
      'GoneError: a row in docs/errors.md, but no such error class in src',
    ]);
  });

  it('a doc cell matches a parameterised message only where it has a {parameter}', () => {
    expect(cellMatches('raft log store: {detail}', 'raft log store: bad snapshot file')).toBe(true);
    expect(cellMatches('raft log store: {detail}', 'raft log store: ')).toBe(false);
    expect(cellMatches('etcdserver: no leader', 'etcdserver: no leader!')).toBe(false);
    expect(cellMatches('a.b', 'axb')).toBe(false);
  });
});
