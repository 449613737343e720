/**
 * Alarms as replicated state, as etcd's alarm store (etcdserver/api/v3alarm) keeps them in its
 * backend: a set of (member id, type), changed only by applied ACTIVATE / DEACTIVATE entries,
 * kept in the meta record (written in the same LevelDB batch as the applied index) and carried
 * by the snapshot stream's header.
 *
 * While alarms are active, applying refuses what etcd's appliers refuse:
 *   NOSPACE (applierV3Capped): Put, a Txn with a put in either branch (etcd's cost of a txn counts
 *           the top-level puts of both branches), LeaseGrant. Reads, deletes, compaction and
 *           lease revokes go on.
 *   CORRUPT (applierV3Corrupt): every KV and lease request that goes through Raft.
 * The refusal follows from the set itself (CORRUPT first, then NOSPACE), as etcd derives its
 * applier when it restarts. (A running etcd 3.4 that disarms CORRUPT while a NOSPACE is still
 * active stops capping until its next restart; qkv keeps capping.)
 */
import { ClusterCorruptError, NoSpaceError, type MvccError } from './errors.js';
import type { AlarmMember, AlarmRequest, AlarmResponse, AlarmType, RequestOp } from '../api/kv.js';
import type { MvccRequest } from './types.js';
import type { Batch } from './write.js';

const ALARM_TYPES: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];

/** The canonical order: by type (etcd's enum order), then by member id as a number. */
function compareAlarms(a: AlarmMember, b: AlarmMember): number {
  const t = ALARM_TYPES.indexOf(a.alarm) - ALARM_TYPES.indexOf(b.alarm);
  if (t !== 0) return t;
  const x = BigInt(a.memberId);
  const y = BigInt(b.memberId);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The alarms of type `type` (every type for NONE), as etcd's AlarmStore.Get. */
export function alarmsOf(alarms: readonly AlarmMember[], type: AlarmType = 'NONE'): AlarmMember[] {
  return alarms.filter((a) => type === 'NONE' || a.alarm === type).map((a) => ({ ...a }));
}

/** Canonical member id: the decimal digits without leading zeros. */
const canonical = (id: string): string => BigInt(id).toString();

/** Applies an alarm request. No revision: alarms are not keys. */
export function applyAlarm(b: Batch, r: AlarmRequest): AlarmResponse {
  const header = { revision: b.meta.rev };
  const alarms = b.meta.alarms;
  if (r.action === 'GET') return { header, alarms: alarmsOf(alarms, r.alarm) };
  const memberId = canonical(r.memberId);
  const at = alarms.findIndex((a) => a.memberId === memberId && a.alarm === r.alarm);
  if (r.action === 'ACTIVATE') {
    // NONE is no alarm (etcd 3.4 stores it, and for member 0 crashes on the empty key it makes).
    if (r.alarm === 'NONE') return { header, alarms: [] };
    // etcd answers the alarm, whether it was raised now or before.
    const m: AlarmMember = { memberId, alarm: r.alarm };
    if (at < 0) b.meta.alarms = [...alarms, m].sort(compareAlarms);
    return { header, alarms: [{ ...m }] };
  }
  if (at < 0) return { header, alarms: [] };
  b.meta.alarms = alarms.filter((_, i) => i !== at);
  return { header, alarms: [{ ...alarms[at]! }] };
}

/** A top-level put in a txn branch: what etcd's quota counts as the txn's cost. */
const hasPut = (ops: readonly RequestOp[] | undefined): boolean => (ops ?? []).some((op) => 'requestPut' in op && op.requestPut !== undefined);

/** The error the active alarms make of applying `req`, if they refuse it. */
export function alarmRefusal(alarms: readonly AlarmMember[], req: MvccRequest): MvccError | undefined {
  // Alarms, membership and auth are the cluster's, not the keyspace's: never refused.
  if ('alarm' in req || 'memberChange' in req || 'memberAttributes' in req || 'auth' in req) return undefined;
  if (alarms.some((a) => a.alarm === 'CORRUPT')) return new ClusterCorruptError();
  if (!alarms.some((a) => a.alarm === 'NOSPACE')) return undefined;
  if ('put' in req || 'leaseGrant' in req) return new NoSpaceError();
  if ('txn' in req && (hasPut(req.txn.success) || hasPut(req.txn.failure))) return new NoSpaceError();
  return undefined;
}
