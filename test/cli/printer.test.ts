/**
 * The CLI's printers, each output format for each kind of response, against what `qkv` printed
 * for the same responses before the printers were split out of src/cli/main.ts (CAPTURED: the
 * compiled CLI run against a fake gateway serving printer_fixtures.ts; health's took normalized
 * to X, the fake gateways' ports to PORTA and PORTB).
 */
import { describe, expect, test } from 'vitest';
import type { LeaseKeepAliveResponse, WatchResponseMessage } from '../../src/api/types.js';
import { newPrinter, type OutputFormat, type Printer } from '../../src/cli/printer/index.js';
import type { EndpointStatus } from '../../src/cli/printer/printer.js';
import { decoded, type FixtureName } from './printer_fixtures.js';

const CAPTURED: Record<string, { out: string; err?: string }> = {
  'put simple': { out: 'OK\n' },
  'put json': { out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2}}\n' },
  'put table': { out: 'OK\n' },
  'put prev simple': { out: 'OK\nfoo\nold\n' },
  'put prev json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"prev_kv":{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"b2xk"}}\n',
  },
  'get simple': { out: 'foo\nbar\nfoo2\nbéz\n' },
  'get json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"YmFy"},{"key":"Zm9vMg==","create_revision":2,"mod_revision":5,"version":3,"value":"YsOpeg==","lease":1234567890123}],"count":2}\n',
  },
  'get table': { out: 'foo\nbar\nfoo2\nbéz\n' },
  'get keys-only simple': { out: 'foo\n\nfoo2\n\n' },
  'get value-only simple': { out: 'bar\nbéz\n' },
  'get count-only simple': { out: '2\n' },
  'get count-only json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"YmFy"},{"key":"Zm9vMg==","create_revision":2,"mod_revision":5,"version":3,"value":"YsOpeg==","lease":1234567890123}],"count":2}\n',
  },
  'get hex simple': { out: '666f6f\n626172\n666f6f32\n62c3a97a\n' },
  'del prev simple': { out: '1\nfoo\nbar\n' },
  'del prev json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"deleted":1,"prev_kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"YmFy"}]}\n',
  },
  'txn simple': { out: 'SUCCESS\n\nOK\n\nk1\nv1\n\n3\n\nFAILURE\n\nOK\n' },
  'txn json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"succeeded":true,"responses":[{"response_put":{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2}}},{"response_range":{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"kvs":[{"key":"azE=","create_revision":2,"mod_revision":5,"version":3,"value":"djE="}],"count":1}},{"response_delete_range":{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"deleted":3}},{"response_txn":{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"responses":[{"response_put":{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2}}}]}}]}\n',
  },
  'txn table': { out: 'SUCCESS\n\nOK\n\nk1\nv1\n\n3\n\nFAILURE\n\nOK\n' },
  'compaction simple': { out: 'compacted revision 5\n' },
  'compaction json': { out: 'compacted revision 5\n' },
  'watch simple': { out: 'PUT\nfoo\nold\nfoo\nbar\nDELETE\nfoo2\n\n' },
  'watch json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"created":true}\n{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"events":[{"kv":{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"YmFy"},"prev_kv":{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"b2xk"}},{"type":"DELETE","kv":{"key":"Zm9vMg==","create_revision":2,"mod_revision":5}}]}\n',
  },
  'watch table': { out: 'PUT\nfoo\nold\nfoo\nbar\nDELETE\nfoo2\n\n' },
  'watch hex simple': { out: 'PUT\n666f6f\n6f6c64\n666f6f\n626172\nDELETE\n666f6f32\n\n' },
  'watch canceled simple': { out: '', err: 'watch was canceled (compacted at 4)\n' },
  'watch canceled json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"created":true}\n{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"canceled":true,"compact_revision":4}\n{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"events":[{"kv":{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"YmFy"},"prev_kv":{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"b2xk"}},{"type":"DELETE","kv":{"key":"Zm9vMg==","create_revision":2,"mod_revision":5}}]}\n',
  },
  'lease grant simple': { out: 'lease 11f71fb04cb granted with TTL(10s)\n' },
  'lease grant json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"ID":1234567890123,"TTL":10}\n',
  },
  'lease revoke json': { out: 'lease 11f71fb04cb revoked\n' },
  'lease ttl keys simple': { out: 'lease 11f71fb04cb granted with TTL(10s), remaining(8s), attached keys([foo bar])\n' },
  'lease ttl keys hex simple': { out: 'lease 11f71fb04cb granted with TTL(10s), remaining(8s), attached keys([666f6f 626172])\n' },
  'lease ttl keys json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"ID":1234567890123,"TTL":8,"grantedTTL":10,"keys":["Zm9v","YmFy"]}\n',
  },
  'lease ttl expired simple': { out: 'lease 1f already expired\n' },
  'lease list simple': { out: 'found 2 leases\n1f\n11f71fb04cb\n' },
  'lease list json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"leases":[{"ID":31},{"ID":1234567890123}]}\n',
  },
  'keep-alive loop simple': { out: 'lease 1f keepalived with TTL(3)\nlease 1f expired or revoked.\n' },
  'keep-alive loop json': { out: 'lease 1f keepalived with TTL(3)\nlease 1f expired or revoked.\n' },
  'member list simple': {
    out: '8e9e05c52164694d, started, n1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\nc, started, n2, http://127.0.0.1:22380, http://127.0.0.1:22379,http://10.0.0.2:22379, true\n',
  },
  'member list json': {
    out: '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},"members":[{"ID":10276657743932975437,"name":"n1","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379"]},{"ID":12,"name":"n2","peerURLs":["http://127.0.0.1:22380"],"clientURLs":["http://127.0.0.1:22379","http://10.0.0.2:22379"],"isLearner":true}]}\n',
  },
  'member list table': {
    out: '+------------------+---------+------+------------------------+----------------------------------------------+------------+\n|        ID        | STATUS  | NAME |       PEER ADDRS       |                 CLIENT ADDRS                 | IS LEARNER |\n+------------------+---------+------+------------------------+----------------------------------------------+------------+\n| 8e9e05c52164694d | started |   n1 |  http://127.0.0.1:2380 |                        http://127.0.0.1:2379 |      false |\n|                c | started |   n2 | http://127.0.0.1:22380 | http://127.0.0.1:22379,http://10.0.0.2:22379 |       true |\n+------------------+---------+------+------------------------+----------------------------------------------+------------+\n',
  },
  'endpoint status simple': {
    out: '127.0.0.1:PORTA, 8e9e05c52164694d, 3.4.0, 25 kB, true, false, 2, 9, 9, \n127.0.0.1:PORTB, c, 3.4.0, 512 B, false, true, 2, 9, 8, a, b\n',
  },
  'endpoint status json': {
    out: '{"Endpoint":"127.0.0.1:PORTA","Status":{"header":{"cluster_id":14841639068965180000,"member_id":10276657743932975000,"revision":7,"raft_term":2},"version":"3.4.0","dbSize":24576,"leader":10276657743932975000,"raftIndex":9,"raftTerm":2,"raftAppliedIndex":9,"dbSizeInUse":20480}}\n{"Endpoint":"127.0.0.1:PORTB","Status":{"header":{"cluster_id":14841639068965180000,"member_id":12,"revision":7,"raft_term":2},"version":"3.4.0","dbSize":512,"leader":10276657743932975000,"raftIndex":9,"raftTerm":2,"raftAppliedIndex":8,"errors":["a","b"],"dbSizeInUse":512,"isLearner":true}}\n',
  },
  'endpoint status table': {
    out: '+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+\n|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |\n+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+\n| 127.0.0.1:PORTA | 8e9e05c52164694d |   3.4.0 |   25 kB |      true |      false |         2 |          9 |                  9 |        |\n| 127.0.0.1:PORTB |                c |   3.4.0 |   512 B |     false |       true |         2 |          9 |                  8 |   a, b |\n+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+\n',
  },
  'endpoint hashkv simple': { out: '127.0.0.1:PORTA, 3892639484\n127.0.0.1:PORTB, 3892639484\n' },
  'endpoint hashkv json': {
    out: '{"Endpoint":"127.0.0.1:PORTA","HashKV":{"header":{"cluster_id":14841639068965180000,"member_id":10276657743932975000,"revision":7,"raft_term":2},"hash":3892639484,"compact_revision":4}}\n{"Endpoint":"127.0.0.1:PORTB","HashKV":{"header":{"cluster_id":14841639068965180000,"member_id":10276657743932975000,"revision":7,"raft_term":2},"hash":3892639484,"compact_revision":4}}\n',
  },
  'endpoint hashkv table': { out: '127.0.0.1:PORTA, 3892639484\n127.0.0.1:PORTB, 3892639484\n' },
  'endpoint health simple': {
    out: '127.0.0.1:PORTA is healthy: successfully committed proposal: took = Xms\n127.0.0.1:PORTB is unhealthy: NOSPACE\n127.0.0.1:1 is unhealthy: failed to connect: fetch failed\n',
  },
  'endpoint health json': {
    out: '127.0.0.1:PORTA is healthy: successfully committed proposal: took = Xms\n127.0.0.1:PORTB is unhealthy: NOSPACE\n127.0.0.1:1 is unhealthy: failed to connect: fetch failed\n',
  },
};

const A = 'http://127.0.0.1:PORTA';
const B = 'http://127.0.0.1:PORTB';

async function* statuses(): AsyncGenerator<EndpointStatus> {
  yield { endpoint: A, status: decoded('status') };
  yield { endpoint: B, status: decoded('statusFollower') };
}

const watchResponses = (...names: FixtureName[]): WatchResponseMessage[] => names.map((n) => decoded<WatchResponseMessage>(n));

/** The printer calls for what each captured command printed (the watch calls return what each watch() returned). */
const CALLS: Record<string, (p: Printer) => unknown> = {
  put: (p) => p.put(decoded('put')),
  'put prev': (p) => p.put(decoded('putPrev')),
  get: (p) => p.get(decoded('get'), {}),
  'get keys-only': (p) => p.get(decoded('get'), { keysOnly: true }),
  'get value-only': (p) => p.get(decoded('get'), { printValueOnly: true }),
  'get count-only': (p) => p.get(decoded('get'), { countOnly: true }),
  'get hex': (p) => p.get(decoded('get'), {}),
  'del prev': (p) => p.del(decoded('delPrev')),
  txn: (p) => p.txn(decoded('txn')),
  compaction: (p) => p.compaction(5),
  watch: (p) => watchResponses('watchCreated', 'watchEvents').map((r) => p.watch(r)),
  'watch hex': (p) => watchResponses('watchCreated', 'watchEvents').map((r) => p.watch(r)),
  'watch canceled': (p) => {
    const returned: boolean[] = [];
    for (const r of watchResponses('watchCreated', 'watchCanceled', 'watchEvents')) {
      returned.push(p.watch(r));
      if (!returned.at(-1)) break;
    }
    return returned;
  },
  'lease grant': (p) => p.leaseGrant(decoded('leaseGrant')),
  'lease revoke': (p) => p.leaseRevoke(0x11f71fb04cb),
  'lease ttl keys': (p) => p.leaseTimeToLive(decoded('leaseTtl'), true),
  'lease ttl keys hex': (p) => p.leaseTimeToLive(decoded('leaseTtl'), true),
  'lease ttl expired': (p) => p.leaseTimeToLive(decoded('leaseExpired'), false),
  'lease list': (p) => p.leaseList(decoded('leases')),
  'keep-alive loop': (p) => {
    p.leaseKeepAlive(31, decoded<LeaseKeepAliveResponse>('keepAlive'));
    p.leaseKeepAlive(31, decoded<LeaseKeepAliveResponse>('keepAliveGone'));
  },
  'member list': (p) => p.memberList(decoded('members')),
  'endpoint status': (p) => p.endpointStatus(statuses()),
  'endpoint hashkv': (p) => {
    p.endpointHashKV(A, decoded('hash'));
    p.endpointHashKV(B, decoded('hash'));
  },
  'endpoint health': (p) => {
    p.endpointHealth({ endpoint: A, health: true, took: 'X' });
    p.endpointHealth({ endpoint: B, health: false, error: 'NOSPACE' });
    p.endpointHealth({ endpoint: 'http://127.0.0.1:1', health: false, error: 'failed to connect: fetch failed' });
  },
};

async function print(format: OutputFormat, hex: boolean, calls: (p: Printer) => unknown): Promise<{ out: string; err?: string; returned: unknown }> {
  let out = '';
  let err = '';
  const printer = newPrinter(format, { out: (line) => (out += `${line}\n`), err: (line) => (err += `${line}\n`) }, hex);
  const returned = await calls(printer);
  return { out, ...(err ? { err } : {}), returned };
}

describe('CLI printers', () => {
  test.each(Object.keys(CAPTURED))('%s', async (name) => {
    const format = name.split(' ').at(-1) as OutputFormat;
    const kind = name.slice(0, -format.length - 1);
    const { returned, ...printed } = await print(format, kind.endsWith(' hex'), CALLS[kind]!);
    expect(printed).toEqual(CAPTURED[name]);
    if (kind.startsWith('watch'))
      expect(returned).toEqual(
        kind === 'watch canceled' && format === 'simple' ? [true, false] : kind === 'watch canceled' ? [true, true, true] : [true, true],
      );
  });
});
