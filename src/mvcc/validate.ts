/**
 * Checks of requests that need no data, as etcd's v3rpc layer does before proposing (key.go:
 * checkRangeRequest, checkPutRequest, checkDeleteRequest, checkTxnRequest, checkIntervals).
 * The server may call them to reject early; the store calls them again when applying, since a
 * Raft entry is only bytes, and the outcome must be the same on every replica.
 *
 * Runtime shape checks (Buffers where bytes are expected, safe integers, known enum names) turn
 * a malformed request into an InvalidArgumentError response instead of a crash of the apply loop.
 */
import { Buffer } from 'node:buffer';
import { DuplicateKeyError, EmptyKeyError, InvalidArgumentError, KeyNotFoundError, LeaseProvidedError, TooManyOpsError, ValueProvidedError } from './errors.js';
import type { AlarmRequest, Compare, CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../api/kv.js';
import type { LeaseGrantRequest, LeaseRevokeRequest, MvccRequest } from './types.js';
import { PERMISSION_TYPES } from './auth.js';

const SORT_ORDERS = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const CMP_RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const CMP_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];
// Field lists, hoisted: validation runs for every applied entry.
const RANGE_INTS = ['limit', 'revision', 'minModRevision', 'maxModRevision', 'minCreateRevision', 'maxCreateRevision'];
const RANGE_BOOLS = ['serializable', 'keysOnly', 'countOnly'];
const PUT_BOOLS = ['prevKv', 'ignoreValue', 'ignoreLease'];
const CMP_INTS = ['version', 'createRevision', 'modRevision', 'lease'];

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function optBytes(o: Record<string, unknown>, f: string): void {
  const v = o[f];
  if (v !== undefined && !Buffer.isBuffer(v)) throw new InvalidArgumentError(`${f} must be a Buffer`);
}

/** The key: required and non-empty (etcd: "key is not provided"). */
function key(o: Record<string, unknown>): void {
  optBytes(o, 'key');
  const k = o['key'] as Buffer | undefined;
  if (k === undefined || k.length === 0) throw new EmptyKeyError();
}

function optInt(o: Record<string, unknown>, f: string): void {
  const v = o[f];
  if (v !== undefined && !Number.isSafeInteger(v)) throw new InvalidArgumentError(`${f} must be a safe integer`);
}

function optBool(o: Record<string, unknown>, f: string): void {
  const v = o[f];
  if (v !== undefined && typeof v !== 'boolean') throw new InvalidArgumentError(`${f} must be a boolean`);
}

function optEnum(o: Record<string, unknown>, f: string, allowed: readonly string[]): void {
  const v = o[f];
  if (v !== undefined && (typeof v !== 'string' || !allowed.includes(v))) {
    throw new InvalidArgumentError(`${f} must be one of ${allowed.join(', ')}`);
  }
}

export function validateRange(r: RangeRequest): void {
  const o = obj(r, 'range request');
  optBytes(o, 'rangeEnd');
  for (const f of RANGE_INTS) optInt(o, f);
  for (const f of RANGE_BOOLS) optBool(o, f);
  optEnum(o, 'sortOrder', SORT_ORDERS);
  optEnum(o, 'sortTarget', SORT_TARGETS);
  key(o);
}

const zeroOrAbsent = (v: number | undefined): boolean => v === undefined || v === 0;
const boolOrAbsent = (v: boolean | undefined): boolean => v === undefined || typeof v === 'boolean';

/**
 * True for a valid Range of one key at the current revision without min/max filters: what most
 * reads are, and what the store answers with a single lookup (range.ts, pointGet). It implies
 * that validateRange passes, so a request it turns down (invalid ones included) takes the full
 * checks and the general path. Limit and sort fields may have any valid value: they cannot
 * change an answer of at most one key. Named property reads, unlike validateRange's loops over
 * field names, stay cheap next to the lookup itself.
 */
export function isPlainPointGet(r: RangeRequest): boolean {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return false;
  if (!Buffer.isBuffer(r.key) || r.key.length === 0) return false;
  if (r.rangeEnd !== undefined && !(Buffer.isBuffer(r.rangeEnd) && r.rangeEnd.length === 0)) return false;
  if (r.revision !== undefined && !(Number.isSafeInteger(r.revision) && r.revision <= 0)) return false;
  if (r.limit !== undefined && !Number.isSafeInteger(r.limit)) return false;
  if (!zeroOrAbsent(r.minModRevision) || !zeroOrAbsent(r.maxModRevision) || !zeroOrAbsent(r.minCreateRevision) || !zeroOrAbsent(r.maxCreateRevision))
    return false;
  if (!boolOrAbsent(r.serializable) || !boolOrAbsent(r.keysOnly) || !boolOrAbsent(r.countOnly)) return false;
  if (r.sortOrder !== undefined && !SORT_ORDERS.includes(r.sortOrder)) return false;
  return r.sortTarget === undefined || SORT_TARGETS.includes(r.sortTarget);
}

function validatePut(p: PutRequest): void {
  const o = obj(p, 'put request');
  optBytes(o, 'value');
  optInt(o, 'lease');
  if (p.lease !== undefined && p.lease < 0) throw new InvalidArgumentError('lease must not be negative');
  for (const f of PUT_BOOLS) optBool(o, f);
  key(o);
  if (p.ignoreValue === true && p.value !== undefined && p.value.length !== 0) throw new ValueProvidedError();
  if (p.ignoreLease === true && p.lease !== undefined && p.lease !== 0) throw new LeaseProvidedError();
}

function validateDeleteRange(d: DeleteRangeRequest): void {
  const o = obj(d, 'delete range request');
  optBytes(o, 'rangeEnd');
  optBool(o, 'prevKv');
  key(o);
}

function validateCompaction(c: CompactionRequest): void {
  const o = obj(c, 'compaction request');
  if (!Number.isSafeInteger(o['revision'])) throw new InvalidArgumentError('revision must be a safe integer');
  optBool(o, 'physical');
}

function leaseId(o: Record<string, unknown>): void {
  const id = o['id'];
  if (!Number.isSafeInteger(id) || (id as number) <= 0) throw new InvalidArgumentError('lease id must be a positive safe integer');
}

function validateLeaseGrant(g: LeaseGrantRequest): void {
  const o = obj(g, 'lease grant request');
  leaseId(o);
  if (!Number.isSafeInteger(o['ttl']) || (o['ttl'] as number) < 0) throw new InvalidArgumentError('ttl must be a non-negative safe integer');
}

function validateLeaseRevoke(r: LeaseRevokeRequest): void {
  leaseId(obj(r, 'lease revoke request'));
}

const ALARM_ACTIONS = ['GET', 'ACTIVATE', 'DEACTIVATE'];
const ALARM_TYPES = ['NONE', 'NOSPACE', 'CORRUPT'];

function validateAlarm(r: AlarmRequest): void {
  const o = obj(r, 'alarm request');
  optEnum(o, 'action', ALARM_ACTIONS);
  optEnum(o, 'alarm', ALARM_TYPES);
  if (o['action'] === undefined || o['alarm'] === undefined) throw new InvalidArgumentError('alarm request needs an action and an alarm');
  const id = o['memberId'];
  if (typeof id !== 'string' || !/^\d{1,20}$/.test(id) || BigInt(id) > 0xffffffffffffffffn)
    throw new InvalidArgumentError('memberId must be a uint64 in decimal');
}

const MEMBER_CHANGES: readonly string[] = ['add', 'promote', 'remove', 'update'];
const isUrls = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isMemberId = (v: unknown): boolean => typeof v === 'string' && /^[1-9]\d{0,19}$/.test(v) && BigInt(v) <= 0xffffffffffffffffn;

function validateMemberChange(v: unknown): void {
  const o = obj(v, 'member change');
  if (typeof o['change'] !== 'string' || !MEMBER_CHANGES.includes(o['change'])) throw new InvalidArgumentError('member change: unknown change');
  const m = obj(o['member'], 'member change member');
  const raftId = m['raftId'];
  if (
    !isMemberId(m['id']) ||
    typeof raftId !== 'number' ||
    !Number.isSafeInteger(raftId) ||
    raftId <= 0 ||
    typeof m['name'] !== 'string' ||
    !isUrls(m['peerUrls']) ||
    !isUrls(m['clientUrls']) ||
    typeof m['isLearner'] !== 'boolean'
  ) {
    throw new InvalidArgumentError('member change: bad member');
  }
}

function validateMemberAttributes(v: unknown): void {
  const o = obj(v, 'member attributes');
  if (!isMemberId(o['id']) || typeof o['name'] !== 'string' || !isUrls(o['clientUrls'])) throw new InvalidArgumentError('member attributes: bad attributes');
}

function validateCompare(c: Compare): void {
  const o = obj(c, 'compare');
  optEnum(o, 'result', CMP_RESULTS);
  optEnum(o, 'target', CMP_TARGETS);
  if (o['result'] === undefined || o['target'] === undefined) throw new InvalidArgumentError('compare needs a result and a target');
  optBytes(o, 'rangeEnd');
  optBytes(o, 'value');
  for (const f of CMP_INTS) optInt(o, f);
  key(o);
}

function optArray(o: Record<string, unknown>, f: string): unknown[] {
  const v = o[f];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${f} must be an array`);
  return v;
}

function validateRequestOp(op: RequestOp, maxTxnOps: number): void {
  const o = obj(op, 'request op');
  if (o['requestRange'] !== undefined) return validateRange(o['requestRange'] as RangeRequest);
  if (o['requestPut'] !== undefined) return validatePut(o['requestPut'] as PutRequest);
  if (o['requestDeleteRange'] !== undefined) return validateDeleteRange(o['requestDeleteRange'] as DeleteRangeRequest);
  if (o['requestTxn'] !== undefined) return checkTxn(o['requestTxn'] as TxnRequest, maxTxnOps);
  // etcd answers an empty RequestOp with ErrGRPCKeyNotFound.
  throw new KeyNotFoundError();
}

/** etcd's checkTxnRequest: op counts, compare keys, every op (nested txns get the remaining budget). */
function checkTxn(t: TxnRequest, maxTxnOps: number): void {
  const o = obj(t, 'txn request');
  const compare = optArray(o, 'compare');
  const success = optArray(o, 'success');
  const failure = optArray(o, 'failure');
  const opc = Math.max(compare.length, success.length, failure.length);
  if (opc > maxTxnOps) throw new TooManyOpsError();
  for (const c of compare) validateCompare(c as Compare);
  for (const u of success) validateRequestOp(u as RequestOp, maxTxnOps - opc);
  for (const u of failure) validateRequestOp(u as RequestOp, maxTxnOps - opc);
}

/**
 * Static checks of a txn: shapes, then no key written twice by either top-level branch. The
 * check looks at both branches of nested txns (like etcd it cannot know which will be taken).
 */
export function validateTxn(t: TxnRequest, maxTxnOps = Infinity): void {
  checkTxn(t, maxTxnOps);
  branchWrites(t.success ?? []);
  branchWrites(t.failure ?? []);
}

export function validateRequest(req: MvccRequest, maxTxnOps = Infinity): void {
  const o = obj(req, 'request');
  if (o['range'] !== undefined) return validateRange(o['range'] as RangeRequest);
  if (o['put'] !== undefined) return validatePut(o['put'] as PutRequest);
  if (o['deleteRange'] !== undefined) return validateDeleteRange(o['deleteRange'] as DeleteRangeRequest);
  if (o['txn'] !== undefined) return validateTxn(o['txn'] as TxnRequest, maxTxnOps);
  if (o['compaction'] !== undefined) return validateCompaction(o['compaction'] as CompactionRequest);
  if (o['leaseGrant'] !== undefined) return validateLeaseGrant(o['leaseGrant'] as LeaseGrantRequest);
  if (o['leaseRevoke'] !== undefined) return validateLeaseRevoke(o['leaseRevoke'] as LeaseRevokeRequest);
  if (o['alarm'] !== undefined) return validateAlarm(o['alarm'] as AlarmRequest);
  if (o['memberChange'] !== undefined) return validateMemberChange(o['memberChange']);
  if (o['memberAttributes'] !== undefined) return validateMemberAttributes(o['memberAttributes']);
  if (o['auth'] !== undefined) return validateAuth(o['auth']);
  throw new InvalidArgumentError('unknown request kind');
}

/** The fields of each auth change: strings, except a permission's and a revoke's bytes. */
const AUTH_FIELDS: Record<string, readonly string[]> = {
  enable: [],
  disable: [],
  authenticate: ['name', 'prefix'],
  userAdd: ['name', 'password'],
  userDelete: ['name'],
  userChangePassword: ['name', 'password'],
  userGrantRole: ['user', 'role'],
  userRevokeRole: ['name', 'role'],
  roleAdd: ['name'],
  roleDelete: ['role'],
  roleGrantPermission: ['name'],
  roleRevokePermission: ['role'],
};

function validateAuth(r: unknown): void {
  const o = obj(r, 'auth request');
  const fields = typeof o['op'] === 'string' ? AUTH_FIELDS[o['op']] : undefined;
  if (fields === undefined) throw new InvalidArgumentError('auth request has an unknown op');
  for (const f of fields) if (typeof o[f] !== 'string') throw new InvalidArgumentError(`auth request ${f} must be a string`);
  if (o['op'] === 'userAdd') optBool(o, 'noPassword');
  if (o['op'] === 'roleGrantPermission') {
    const p = obj(o['perm'], 'permission');
    optEnum(p, 'permType', PERMISSION_TYPES);
    if (p['permType'] === undefined || !Buffer.isBuffer(p['key']) || !Buffer.isBuffer(p['rangeEnd']))
      throw new InvalidArgumentError('permission needs a type, a key and a range end');
  }
  if (o['op'] === 'roleRevokePermission' && (!Buffer.isBuffer(o['key']) || !Buffer.isBuffer(o['rangeEnd']))) {
    throw new InvalidArgumentError('permission revoke needs a key and a range end');
  }
}

// ---- duplicate keys ----

/** A deleted key span over latin1 strings (whose < is bytewise): [lo, hi), hi null = unbounded. */
interface DelSpan {
  lo: string;
  hi: string | null;
  point: boolean;
}

interface Writes {
  puts: Set<string>;
  dels: DelSpan[];
}

function inSpan(s: DelSpan, k: string): boolean {
  if (s.point) return k === s.lo;
  return k >= s.lo && (s.hi === null || k < s.hi);
}

function delSpan(d: DeleteRangeRequest): DelSpan | undefined {
  const lo = d.key.toString('latin1');
  const end = d.rangeEnd;
  if (end === undefined || end.length === 0) return { lo, hi: null, point: true };
  // Range end "\0" is every key >= key. (etcd 3.4's checkIntervals builds the interval
  // [key, "\0"), which is empty, and so misses such overlaps; we do not.)
  if (end.length === 1 && end[0] === 0) return { lo, hi: null, point: false };
  const hi = end.toString('latin1');
  return hi > lo ? { lo, hi, point: false } : undefined;
}

/**
 * The keys a branch may put and the spans it may delete, rejecting a key put twice or put and
 * deleted. The then/else branches of a nested txn exclude each other, so they may overlap; any
 * other pair of writes may not, whatever their order or nesting. This rejects everything
 * etcd's checkIntervals rejects, plus a put in an earlier nested txn overlapping a delete in a
 * later one (which etcd lets through to write the key twice in one revision).
 */
function branchWrites(ops: readonly RequestOp[]): Writes {
  const acc: Writes = { puts: new Set(), dels: [] };
  for (const op of ops) {
    let child: Writes;
    if ('requestPut' in op) {
      child = { puts: new Set([op.requestPut.key.toString('latin1')]), dels: [] };
    } else if ('requestDeleteRange' in op) {
      const s = delSpan(op.requestDeleteRange);
      child = { puts: new Set(), dels: s === undefined ? [] : [s] };
    } else if ('requestTxn' in op) {
      const t = branchWrites(op.requestTxn.success ?? []);
      const f = branchWrites(op.requestTxn.failure ?? []);
      for (const k of f.puts) t.puts.add(k);
      child = { puts: t.puts, dels: [...t.dels, ...f.dels] };
    } else {
      continue;
    }
    for (const k of child.puts) {
      if (acc.puts.has(k) || acc.dels.some((s) => inSpan(s, k))) throw new DuplicateKeyError();
    }
    for (const s of child.dels) {
      for (const k of acc.puts) if (inSpan(s, k)) throw new DuplicateKeyError();
    }
    for (const k of child.puts) acc.puts.add(k);
    acc.dels.push(...child.dels);
  }
  return acc;
}
