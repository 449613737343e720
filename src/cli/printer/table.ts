/**
 * `-w table`, as etcdctl's printer_table.go: the member list, the endpoint and snapshot statuses as a
 * bordered table. Every other response prints as `simple` does.
 */
import type { MemberAddResponse, MemberListResponse } from '../../api/types.js';
import {
  ENDPOINT_STATUS_HEADERS,
  endpointStatusRows,
  MEMBER_LIST_HEADERS,
  memberAddedLine,
  memberListRows,
  SNAPSHOT_STATUS_HEADERS,
  snapshotStatusRow,
  type EndpointStatus,
  type SnapshotStatusFigures,
} from './printer.js';
import { SimplePrinter } from './simple.js';

/** A plain text table with borders, as etcdctl -w table draws it. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const center = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const row = (cells: string[], align: (s: string, w: number) => string): string => `|${cells.map((c, i) => ` ${align(c, widths[i]!)} `).join('|')}|`;
  const right = (s: string, w: number): string => s.padStart(w);
  return [line, row(headers, center), line, ...rows.map((r) => row(r, right)), line].join('\n');
}

export class TablePrinter extends SimplePrinter {
  override memberList(r: MemberListResponse): void {
    this.out(table(MEMBER_LIST_HEADERS, memberListRows(r)));
  }

  override async endpointStatus(statuses: AsyncIterable<EndpointStatus>): Promise<void> {
    this.out(table(ENDPOINT_STATUS_HEADERS, await endpointStatusRows(statuses)));
  }

  /** etcdctl's table form of member add is the simple one's first line only (it prints the ETCD_* lines in the simple form alone). */
  override memberAdd(r: MemberAddResponse): void {
    this.out(memberAddedLine(r));
  }

  override snapshotStatus(s: SnapshotStatusFigures): void {
    this.out(table(SNAPSHOT_STATUS_HEADERS, [snapshotStatusRow(s)]));
  }
}
