/**
 * `-w json`, as etcdctl's printer_json.go: the response as JSON, bytes base64 and integers as
 * bare JSON numbers. Responses etcdctl has no JSON form for print as `simple` does.
 */
import { encodeMessage, type Schema } from '../../api/codec.js';
import * as S from '../../api/schemas.js';
import type * as api from '../../api/types.js';
import type * as kv from '../../api/kv.js';
import { hostOf, type EndpointStatus, type MemberChange, type RestoredDataDir, type SnapshotStatusFigures } from './printer.js';
import { SimplePrinter } from './simple.js';

/** JSON with every all-digit string of an integer field printed as a bare number (exact, even past 2^53). */
function etcdctlJson(obj: object, schema: Schema): string {
  return stringifyNumbers(encodeMessage(obj, schema), schema);
}

const INTEGER_FIELDS =
  /^(cluster_id|member_id|revision|raft_term|create_revision|mod_revision|version|lease|count|deleted|ID|TTL|grantedTTL|compact_revision|watch_id|dbSize|leader|raftIndex|raftTerm|raftAppliedIndex|dbSizeInUse|hash)$/;

function stringifyNumbers(v: unknown, schema: Schema, key?: string): string {
  if (Array.isArray(v)) return `[${v.map((x) => stringifyNumbers(x, schema, key)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}:${stringifyNumbers(x, schema, k)}`);
    return `{${parts.join(',')}}`;
  }
  if (typeof v === 'string' && key && INTEGER_FIELDS.test(key) && /^-?\d+$/.test(v)) return v;
  return JSON.stringify(v);
}

export class JsonPrinter extends SimplePrinter {
  private json(obj: object, schema: Schema): void {
    this.out(etcdctlJson(obj, schema));
  }

  /** One endpoint's answer: `{"Endpoint": ..., <field>: <response>}`. */
  private perEndpoint(endpoint: string, field: string, obj: object, schema: Schema): void {
    this.out(JSON.stringify({ Endpoint: hostOf(endpoint), [field]: JSON.parse(etcdctlJson(obj, schema)) }));
  }

  // One line a response, as etcdctl's printer_json.go (printJSON).
  override put(r: kv.PutResponse): void {
    this.json(r, S.PutResponse);
  }
  override get(r: kv.RangeResponse): void {
    this.json(r, S.RangeResponse);
  }
  override del(r: kv.DeleteRangeResponse): void {
    this.json(r, S.DeleteRangeResponse);
  }
  override txn(r: kv.TxnResponse): void {
    this.json(r, S.TxnResponse);
  }
  override leaseGrant(r: api.LeaseGrantResponse): void {
    this.json(r, S.LeaseGrantResponse);
  }
  override leaseTimeToLive(r: api.LeaseTimeToLiveResponse): void {
    this.json(r, S.LeaseTimeToLiveResponse);
  }
  override leaseList(r: api.LeaseLeasesResponse): void {
    this.json(r, S.LeaseLeasesResponse);
  }
  override memberList(r: api.MemberListResponse): void {
    this.json(r, S.MemberListResponse);
  }
  override memberAdd(r: api.MemberAddResponse): void {
    this.json(r, S.MemberAddResponse);
  }
  /** etcdctl's printJSON of snapshot.Status: its fields in its order. */
  override snapshotStatus(s: SnapshotStatusFigures): void {
    this.out(JSON.stringify({ hash: s.hash, revision: s.revision, totalKey: s.totalKey, totalSize: s.totalSize }));
  }
  /** qkv's own: ids as decimal strings (uint64s), as the member list's JSON would need them exact. */
  override snapshotRestored(r: RestoredDataDir): void {
    this.out(JSON.stringify(r));
  }
  override memberChanged(_change: MemberChange, _id: string, r: api.MemberListResponse): void {
    this.json(r, S.MemberListResponse);
  }
  override endpointHashKV(endpoint: string, r: api.HashKVResponse): void {
    this.perEndpoint(endpoint, 'HashKV', r, S.HashKVResponse);
  }

  /** Every watch response, a canceled one too: the watch goes on until the stream ends (the simple form stops at a cancel). */
  override watch(r: api.WatchResponseMessage): boolean {
    this.json(r, S.WatchResponse);
    return true;
  }

  override async endpointStatus(statuses: AsyncIterable<EndpointStatus>): Promise<void> {
    for await (const { endpoint, status } of statuses) this.perEndpoint(endpoint, 'Status', status, S.StatusResponse);
  }
}
