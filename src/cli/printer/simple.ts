/**
 * `-w simple` (the default), as etcdctl's printer_simple.go: keys and values one a line, and a
 * sentence for each other response.
 */
import type { Buffer } from 'node:buffer';
import { leaseHex } from '../../client/concurrency.js';
import type * as api from '../../api/types.js';
import type * as kv from '../../api/kv.js';
import {
  endpointStatusRows,
  hostOf,
  memberAddedLine,
  memberListRows,
  paddedHexId,
  snapshotStatusRow,
  type RestoredDataDir,
  type SnapshotStatusFigures,
  roleLines,
  type AuthPermission,
  type MemberChange,
  type EndpointHealth,
  type EndpointStatus,
  type GetPrintOptions,
  type Output,
  type Printer,
} from './printer.js';

export class SimplePrinter implements Printer {
  /** `hex`: print keys and values as hexadecimal (--hex). */
  constructor(
    protected readonly output: Output,
    private readonly hex = false,
  ) {}

  protected out(line: string): void {
    this.output.out(line);
  }

  private bytes(b: Buffer): string {
    return this.hex ? b.toString('hex') : b.toString();
  }

  private kvs(kvs: kv.KeyValue[], opts: GetPrintOptions = {}): void {
    for (const kv of kvs) {
      if (!opts.printValueOnly) this.out(this.bytes(kv.key));
      if (opts.keysOnly) {
        this.out('');
        continue;
      }
      this.out(this.bytes(kv.value));
    }
  }

  private responseOp(r: kv.ResponseOp): void {
    if ('responsePut' in r) this.out('OK');
    else if ('responseRange' in r) this.kvs(r.responseRange.kvs);
    else if ('responseDeleteRange' in r) this.out(String(r.responseDeleteRange.deleted));
    else this.txn(r.responseTxn);
  }

  put(r: kv.PutResponse): void {
    this.out('OK');
    if (r.prevKv) this.kvs([r.prevKv]);
  }

  get(r: kv.RangeResponse, opts: GetPrintOptions): void {
    if (opts.countOnly) return this.out(String(r.count));
    this.kvs(r.kvs, opts);
  }

  del(r: kv.DeleteRangeResponse): void {
    this.out(String(r.deleted));
    this.kvs(r.prevKvs);
  }

  txn(r: kv.TxnResponse): void {
    this.out(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of r.responses) {
      this.out('');
      this.responseOp(op);
    }
  }

  compaction(revision: number): void {
    this.out(`compacted revision ${revision}`);
  }

  watch(r: api.WatchResponseMessage): boolean {
    if (r.canceled) {
      this.output.err(`watch was canceled (${r.cancelReason || `compacted at ${r.compactRevision}`})`);
      return false;
    }
    for (const e of r.events) {
      this.out(e.type);
      if (e.prevKv) this.kvs([e.prevKv]);
      this.kvs([e.kv]);
    }
    return true;
  }

  leaseGrant(r: api.LeaseGrantResponse): void {
    this.out(`lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)`);
  }

  leaseRevoke(id: number): void {
    this.out(`lease ${leaseHex(id)} revoked`);
  }

  leaseTimeToLive(r: api.LeaseTimeToLiveResponse, withKeys: boolean): void {
    if (r.ttl === -1) return this.out(`lease ${leaseHex(r.id)} already expired`);
    let line = `lease ${leaseHex(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`;
    if (withKeys) line += `, attached keys([${r.keys.map((k) => this.bytes(k)).join(' ')}])`;
    this.out(line);
  }

  leaseList(r: api.LeaseLeasesResponse): void {
    this.out(`found ${r.leases.length} leases`);
    for (const l of r.leases) this.out(leaseHex(l.id));
  }

  leaseKeepAlive(id: number, r: api.LeaseKeepAliveResponse): void {
    if (r.ttl <= 0) this.out(`lease ${leaseHex(id)} expired or revoked.`);
    else this.out(`lease ${leaseHex(id)} keepalived with TTL(${r.ttl})`);
  }

  lock(key: Buffer): void {
    this.out(key.toString());
  }

  electionLeader(leader: { key: Buffer; value: Buffer }): void {
    this.out(`${leader.key.toString()}\n${leader.value.toString()}`);
  }

  memberList(r: api.MemberListResponse): void {
    for (const row of memberListRows(r)) this.out(row.join(', '));
  }

  memberAdd(r: api.MemberAddResponse, name: string, list: api.MemberListResponse): void {
    this.out(memberAddedLine(r));
    // etcdctl's ETCD_* lines: the cluster to start the new member with.
    const conf = list.members.flatMap((m) => m.peerUrls.map((u) => `${m.id === r.member.id ? name : m.name}=${u}`));
    this.out('');
    this.out(`ETCD_NAME=${JSON.stringify(name)}`);
    this.out(`ETCD_INITIAL_CLUSTER=${JSON.stringify(conf.join(','))}`);
    this.out(`ETCD_INITIAL_ADVERTISE_PEER_URLS=${JSON.stringify(r.member.peerUrls.join(','))}`);
    this.out('ETCD_INITIAL_CLUSTER_STATE="existing"');
  }

  memberChanged(change: MemberChange, id: string, r: api.MemberListResponse): void {
    this.out(`Member ${paddedHexId(id)} ${change} cluster ${paddedHexId(r.header.clusterId)}`);
  }

  async endpointStatus(statuses: AsyncIterable<EndpointStatus>): Promise<void> {
    for (const row of await endpointStatusRows(statuses)) this.out(row.join(', '));
  }

  endpointHealth(h: EndpointHealth): void {
    if (h.health) this.out(`${hostOf(h.endpoint)} is healthy: successfully committed proposal: took = ${h.took}ms`);
    else this.out(`${hostOf(h.endpoint)} is unhealthy: ${h.error}`);
  }

  endpointHashKV(endpoint: string, r: api.HashKVResponse): void {
    this.out(`${hostOf(endpoint)}, ${r.hash}`);
  }

  snapshotSaved(path: string): void {
    this.out(`Snapshot saved at ${path}`);
  }

  snapshotStatus(s: SnapshotStatusFigures): void {
    this.out(snapshotStatusRow(s).join(', '));
  }

  snapshotRestored(r: RestoredDataDir): void {
    const hex = (id: string): string => BigInt(id).toString(16);
    this.out(
      `Restored member ${r.name} (${hex(r.memberId)}) of cluster ${hex(r.clusterId)} into ${r.dataDir}: revision ${r.revision}, compacted at ${r.compactRevision}, ${r.leases} leases`,
    );
    for (const l of r.remappedLeases) this.out(`lease ${hex(l.from)} restored as ${hex(l.to)} (beyond 2^53)`);
  }

  authChanged(sentence: string): void {
    this.out(sentence);
  }

  userGet(name: string, roles: string[], detail?: Array<{ role: string; perm: AuthPermission[] }>): void {
    this.out(`User: ${name}`);
    if (!detail) {
      this.out(`Roles:${roles.map((r) => ` ${r}`).join('')}`);
      return;
    }
    for (const d of detail) {
      this.out('');
      for (const line of roleLines(d.role, d.perm)) this.out(line);
    }
  }

  names(names: string[]): void {
    for (const n of names) this.out(n);
  }

  roleGet(role: string, perm: AuthPermission[]): void {
    for (const line of roleLines(role, perm)) this.out(line);
  }
}
