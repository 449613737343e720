/**
 * Applying one Raft entry's request to the batch under construction. Deterministic: the result
 * depends only on the request and the store's state, never on time or chance.
 *
 * A rejected request (MvccError, or a LeaseError of the lease table) becomes an error result and changes nothing. Anything else
 * thrown (LevelDB failure, corrupt data) aborts the whole batch: nothing of it is written.
 */
import { copyMember, withMemberAttributes, withMemberChange, type ClusterRecord, type MembershipResponse } from './membership.js';
import { alarmRefusal, applyAlarm } from './alarm.js';
import { LeaseError } from '../lease/errors.js';
import { CompactedError, CorruptError, FutureRevisionError, MvccError } from './errors.js';
import { applyLeaseGrant, applyLeaseRevoke, leaseKeys } from './lease.js';
import { checkAccess, checkAdmin, EMPTY_AUTH, txnNeeds, withAuthChange, type Caller, type Need } from './auth.js';
import { range } from './range.js';
import { checkPath, checkPut, compareToPath, doDeleteRange, doPut, execTxn, fillTxnHeaders, isTxnReadonly, type LeaseCheck } from './txn.js';
import type { CompactionRequest, PutRequest, PutResponse, TxnRequest, TxnResponse } from '../api/kv.js';
import type { ApplyResult, MvccRequest, MvccResponse } from './types.js';
import { validateRequest } from './validate.js';
import { RevisionWriter, type Batch } from './write.js';

/**
 * A put, what most entries are, is applied synchronously; anything else may read ranges, which
 * is async. (Two async calls and their awaits per entry were about a fifth of applying a put.)
 */
export function applyRequest(b: Batch, req: MvccRequest | undefined, caller?: Caller): ApplyResult | Promise<ApplyResult> {
  if (req === undefined) return { status: 'ok', response: { noop: { header: { revision: b.meta.rev } } } };
  const writesBefore = b.overlay.writes;
  try {
    validateRequest(req); // shapes, etcd's static checks, duplicate keys
    // etcd's capped / corrupt appliers: an active alarm refuses before anything is read or written.
    if (b.meta.alarms.length > 0) {
      const refused = alarmRefusal(b.meta.alarms, req);
      if (refused) throw refused;
    }
    const checked = b.meta.auth?.enabled ? checkCaller(b, req, caller) : undefined;
    if (checked === undefined && !('range' in req) && 'put' in req) return { status: 'ok', response: { put: applyPut(b, req.put) } };
    return (checked ?? Promise.resolve())
      .then(() => dispatch(b, req))
      .then(
        (response) => ({ status: 'ok', response }),
        (err: unknown) => rejected(b, err, writesBefore),
      );
  } catch (err) {
    return rejected(b, err, writesBefore);
  }
}

/**
 * With auth enabled, refuses a caller that may not make `req` (etcd's authApplierV3): auth
 * management needs the root role, keys the caller's permissions on every range the request
 * touches (a lease revoke, or a put attaching a lease, every key of the lease). Compaction, lease
 * grants, alarms and membership are not checked, as in etcd 3.4.
 */
async function checkCaller(b: Batch, req: MvccRequest, caller: Caller | undefined): Promise<void> {
  const a = b.meta.auth;
  if ('auth' in req) {
    if (req.auth.op !== 'authenticate') checkAdmin(a, caller);
    return;
  }
  const needs: Need[] = [];
  const leaseKeysOf = async (lease: number | undefined): Promise<void> => {
    if (lease === undefined || lease === 0 || (caller !== undefined && 'member' in caller)) return;
    for (const key of await leaseKeys(b.src, lease)) needs.push({ access: 'WRITE', range: { key } });
  };
  if ('range' in req) needs.push({ access: 'READ', range: req.range });
  else if ('put' in req) {
    needs.push({ access: 'WRITE', range: { key: req.put.key } });
    if (req.put.prevKv) needs.push({ access: 'READ', range: { key: req.put.key } });
    await leaseKeysOf(req.put.lease);
  } else if ('deleteRange' in req) {
    needs.push({ access: 'WRITE', range: req.deleteRange });
    if (req.deleteRange.prevKv) needs.push({ access: 'READ', range: req.deleteRange });
  } else if ('txn' in req) needs.push(...txnNeeds(req.txn));
  else if ('leaseRevoke' in req) await leaseKeysOf(req.leaseRevoke.id);
  checkAccess(a, caller, needs);
}

/** The result of a request that threw; rethrows what must abort the batch. */
function rejected(b: Batch, err: unknown, writesBefore: number): ApplyResult {
  // Requests are checked before they write, so a rejection never leaves half a change behind;
  // if one did, or the data is corrupt, the batch must not be written.
  if ((err instanceof MvccError || err instanceof LeaseError) && !(err instanceof CorruptError) && b.overlay.writes === writesBefore) {
    return { status: 'error', error: err };
  }
  throw err;
}

function applyPut(b: Batch, p: PutRequest): PutResponse {
  checkPut(b.readCtx(), p, b.leaseCheck, true);
  const w = new RevisionWriter(b);
  const resp = doPut(w, p);
  w.commit();
  return resp;
}

/** A validated request; applyRequest handles puts itself. */
async function dispatch(b: Batch, req: MvccRequest): Promise<MvccResponse> {
  const lease = b.leaseCheck;
  if ('range' in req) {
    return { range: await range(b.readCtx(), req.range) };
  }
  if ('put' in req) return { put: applyPut(b, req.put) };
  if ('deleteRange' in req) {
    const w = new RevisionWriter(b);
    const resp = await doDeleteRange(w, req.deleteRange);
    w.commit();
    return { deleteRange: resp };
  }
  if ('txn' in req) return { txn: await applyTxn(b, req.txn, lease) };
  if ('leaseGrant' in req) return { leaseGrant: applyLeaseGrant(b, req.leaseGrant) };
  if ('leaseRevoke' in req) return { leaseRevoke: await applyLeaseRevoke(b, req.leaseRevoke) };
  if ('alarm' in req) return { alarm: applyAlarm(b, req.alarm) };
  if ('memberChange' in req) return { membership: applyMembership(b, (c) => withMemberChange(c, req.memberChange)) };
  if ('memberAttributes' in req) return { membership: applyMembership(b, (c) => withMemberAttributes(c, req.memberAttributes)) };
  if ('auth' in req) {
    // Replaced only when it changed (a store that never had auth keeps no record).
    const before = b.meta.auth ?? EMPTY_AUTH;
    const after = withAuthChange(before, req.auth);
    if (after !== before) b.meta.auth = after;
    return { auth: { header: { revision: b.meta.rev } } };
  }
  return { compaction: compact(b, req.compaction) };
}

/** A membership change: the meta's cluster record replaced (never mutated). No revision: members are not keys. */
function applyMembership(b: Batch, change: (c: ClusterRecord) => ClusterRecord): MembershipResponse {
  if (!b.meta.cluster) throw new CorruptError('mvcc: a membership change before the cluster was seeded');
  b.meta.cluster = change(b.meta.cluster);
  return { header: { revision: b.meta.rev }, members: b.meta.cluster.members.map(copyMember) };
}

async function applyTxn(b: Batch, t: TxnRequest, lease: LeaseCheck): Promise<TxnResponse> {
  const before = b.readCtx();
  const path = await compareToPath(before, t);
  const write = !isTxnReadonly(t);
  checkPath(before, t, path, write, lease);
  if (!write) {
    const resp = await execTxn(undefined, () => before, t, path);
    fillTxnHeaders(resp, before.rev);
    return resp;
  }
  const w = new RevisionWriter(b);
  const resp = await execTxn(w, () => w.readCtx(), t, path);
  w.commit();
  fillTxnHeaders(resp, b.meta.rev);
  return resp;
}

/**
 * Logical compaction: from now on revisions below `revision` cannot be read. The history is
 * deleted afterwards, in the background (compaction.ts); until then nothing observable depends
 * on whether it is.
 */
function compact(b: Batch, c: CompactionRequest): { header: { revision: number } } {
  if (c.revision <= b.meta.compactRev) throw new CompactedError();
  if (c.revision > b.meta.rev) throw new FutureRevisionError();
  b.meta.compactRev = c.revision;
  return { header: { revision: b.meta.rev } };
}
