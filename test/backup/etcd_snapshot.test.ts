/**
 * The etcd snapshot reader on crafted files (the test bbolt writer, a hand-encoded protobuf, the
 * trailing sha256): what it decodes, exactness of 64-bit ids, and every refusal of the hash, the
 * revision keys and the messages. The real etcd's files are etcd_snapshot.e2e.test.ts's.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readEtcdSnapshot } from '../../src/backup/etcd_snapshot.js';
import { decodeMessage, int64Field, safeIntField } from '../../src/backup/protobuf.js';
import { type Tree, writeBbolt } from './bbolt_writer.js';

/** A protobuf varint of a 64-bit value (negative ones as two's complement, 10 bytes). */
function varint(v: bigint): Buffer {
  let u = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    const b = Number(u & 0x7fn);
    u >>= 7n;
    out.push(u === 0n ? b : b | 0x80);
  } while (u !== 0n);
  return Buffer.from(out);
}
type Field = readonly [number, bigint | number | string | Buffer];
/** A message of varint (bigint, number) and bytes (string, Buffer) fields. */
function message(fields: Field[]): Buffer {
  return Buffer.concat(
    fields.map(([n, v]) =>
      typeof v === 'bigint' || typeof v === 'number'
        ? Buffer.concat([varint(BigInt(n << 3)), varint(BigInt(v))])
        : Buffer.concat([varint(BigInt((n << 3) | 2)), varint(BigInt(Buffer.from(v).length)), Buffer.from(v)]),
    ),
  );
}

function revKey(main: number, sub: number, tombstone = false): Buffer {
  const k = Buffer.alloc(tombstone ? 18 : 17);
  k.writeBigInt64BE(BigInt(main), 0);
  k[8] = 0x5f;
  k.writeBigInt64BE(BigInt(sub), 9);
  if (tombstone) k[17] = 0x74;
  return k;
}
const u64be = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const leaseKey = (id: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(id);
  return b;
};

/** A lease id past 2^53, as etcd's are. */
const BIG_LEASE = 7587869577563014403n;

const KEYS: Tree = [
  [
    revKey(2, 0),
    message([
      [1, 'a'],
      [2, 2],
      [3, 2],
      [4, 1],
      [5, 'one'],
    ]),
  ],
  [
    revKey(3, 0),
    message([
      [1, 'a'],
      [2, 2],
      [3, 3],
      [4, 2],
      [5, 'two'],
      [6, BIG_LEASE],
    ]),
  ],
  [
    revKey(3, 1),
    message([
      [1, 'b'],
      [2, 3],
      [3, 3],
      [4, 1],
    ]),
  ],
  [revKey(4, 0, true), message([[1, 'b']])],
];

function snapshotOf(buckets: {
  auth?: Tree;
  authRoles?: Tree;
  authUsers?: Tree;
  key?: Tree;
  meta?: Tree;
  lease?: Tree;
  members?: Tree;
  members_removed?: Tree;
}): Buffer {
  const tree: Tree = Object.entries(buckets).map(([name, b]) => [name, { bucket: b, inline: b.length < 3 }] as const);
  const db = writeBbolt(tree).data;
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}
const META: Tree = [
  ['consistent_index', u64be(42n)],
  ['finishedCompactRev', revKey(2, 0)],
  ['scheduledCompactRev', revKey(2, 0)],
];
const good = (over: Parameters<typeof snapshotOf>[0] = {}): Buffer =>
  snapshotOf({
    key: KEYS,
    meta: META,
    lease: [
      [
        leaseKey(BIG_LEASE),
        message([
          [1, BIG_LEASE],
          [2, 60],
        ]),
      ],
    ],
    members: [['8e9e05c52164694d', '{"id":10276657743932975437,"peerURLs":["http://127.0.0.1:2380"],"name":"e1","clientURLs":["http://127.0.0.1:2379"]}']],
    members_removed: [['2a', 'removed']],
    ...over,
  });

const refusal = (file: Buffer): { code: string; message: string } => {
  try {
    readEtcdSnapshot(file);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('accepted');
};

describe('reading a crafted etcd snapshot', () => {
  it('decodes revisions, tombstones, the meta, leases (exact 64-bit ids) and members', () => {
    const s = readEtcdSnapshot(good());
    expect([...s.revisions()]).toEqual([
      {
        revision: { main: 2, sub: 0 },
        tombstone: false,
        kv: { key: Buffer.from('a'), createRevision: 2, modRevision: 2, version: 1, value: Buffer.from('one'), lease: 0n },
      },
      {
        revision: { main: 3, sub: 0 },
        tombstone: false,
        kv: { key: Buffer.from('a'), createRevision: 2, modRevision: 3, version: 2, value: Buffer.from('two'), lease: BIG_LEASE },
      },
      {
        revision: { main: 3, sub: 1 },
        tombstone: false,
        kv: { key: Buffer.from('b'), createRevision: 3, modRevision: 3, version: 1, value: Buffer.alloc(0), lease: 0n },
      },
      { revision: { main: 4, sub: 0 }, tombstone: true, key: Buffer.from('b') },
    ]);
    expect(s).toMatchObject({ currentRevision: 4, compactRevision: 2, scheduledCompactRevision: 2, consistentIndex: 42, term: undefined });
    expect(s.leases).toEqual([{ id: BIG_LEASE, ttl: 60, remainingTtl: 0 }]);
    expect(s.members).toEqual([
      { id: 0x8e9e05c52164694dn, name: 'e1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: ['http://127.0.0.1:2379'], isLearner: false },
    ]);
    expect(s.removedMemberIds).toEqual([0x2an]);
  });

  it('an empty store is at revision 1; a compaction past the last key sets the revision', () => {
    expect(readEtcdSnapshot(good({ key: [], meta: [] })).currentRevision).toBe(1);
    expect(readEtcdSnapshot(good({ meta: [['finishedCompactRev', revKey(9, 0)]] })).currentRevision).toBe(9);
    const noLeases = readEtcdSnapshot(snapshotOf({ key: KEYS, meta: META }));
    expect(noLeases.leases).toEqual([]);
    expect(noLeases.members).toEqual([]);
  });

  it('refuses a file without its hash, with a wrong one, or with a database longer than its pages', () => {
    const f = good();
    expect(refusal(f.subarray(0, f.length - 32))).toMatchObject({ code: 'ERR_SNAPSHOT_INTEGRITY', message: expect.stringContaining('has no hash') });
    const wrong = Buffer.from(f);
    wrong[wrong.length - 1]! ^= 1;
    expect(refusal(wrong)).toMatchObject({ code: 'ERR_SNAPSHOT_INTEGRITY', message: expect.stringContaining('sha256 mismatch') });
    const db = Buffer.concat([f.subarray(0, f.length - 32), Buffer.alloc(4096)]);
    expect(refusal(Buffer.concat([db, createHash('sha256').update(db).digest()]))).toMatchObject({
      code: 'ERR_SNAPSHOT_INTEGRITY',
      message: expect.stringContaining('but its meta says'),
    });
  });

  it('refuses a database that is not etcd’s, or whose keys and messages are not', () => {
    const cases: [Parameters<typeof snapshotOf>[0], RegExp][] = [
      [{ key: undefined }, /no key bucket/],
      [{ meta: undefined }, /no meta bucket/],
      [{ key: [[Buffer.from('short'), message([[1, 'a']])]] }, /key bucket: 73686f7274 is not a revision key/],
      [{ key: [[Buffer.concat([revKey(2, 0), Buffer.from('x')]), message([[1, 'a']])]] }, /is not a revision key/],
      // Revisions read as two 32-bit halves: one just past 2^53 - 1, and a negative one, are refused.
      [{ key: [[revKey(2 ** 53, 0), message([[1, 'a']])]] }, /revision 9007199254740992_0 is not a pair of non-negative safe integers/],
      [{ key: [[revKey(2, -1), message([[1, 'a']])]] }, /revision 2_-1 is not a pair of non-negative safe integers/],
      [
        {
          key: [
            [
              revKey(2, 0),
              message([
                [1, 'a'],
                [2, 2],
                [3, 5],
                [4, 1],
              ]),
            ],
          ],
        },
        /revision 2_0: mod_revision is 5/,
      ],
      [
        {
          key: [
            [
              revKey(2, 0),
              message([
                [1, 'a'],
                [2, 0],
                [3, 2],
                [4, 1],
              ]),
            ],
          ],
        },
        /create_revision 0 and version 1 do not fit/,
      ],
      [
        {
          key: [
            [
              revKey(2, 0),
              message([
                [2, 2],
                [3, 2],
                [4, 1],
              ]),
            ],
          ],
        },
        /revision 2_0: empty key/,
      ],
      [
        {
          key: [
            [
              revKey(2, 0),
              message([
                [1, 'a'],
                [2, -1n],
                [3, 2],
                [4, 1],
              ]),
            ],
          ],
        },
        /field 2 is -1, not a non-negative safe integer/,
      ],
      [{ key: [[revKey(2, 0), Buffer.from([0x0a, 0x05, 0x61])]] }, /field 1 of 5 bytes runs past the end of the message/],
      [{ key: [[revKey(2, 0), Buffer.from([0x10, 0x80])]] }, /truncated varint/],
      [{ key: [[revKey(2, 0), Buffer.from([0x0b])]] }, /unsupported wire type 3/],
      [{ key: [[revKey(2, 0), message([[1, 7n]])]] }, /field 1 is a varint, expected bytes/],
      [{ meta: [['consistent_index', Buffer.from([1, 2])]] }, /consistent_index is 2 bytes, not 8/],
      [{ meta: [['finishedCompactRev', revKey(2, 0, true)]] }, /finishedCompactRev is a tombstone key/],
      [{ lease: [[Buffer.from([1]), message([[1, 1n]])]] }, /lease bucket: key 01 is not an 8-byte lease id/],
      [
        {
          lease: [
            [
              leaseKey(5n),
              message([
                [1, 6n],
                [2, 10],
              ]),
            ],
          ],
        },
        /lease 5: the lease says it is 6/,
      ],
      [{ members: [['zz', '{}']] }, /members bucket: key "zz" is not a member id/],
      [{ members: [['2a', '{']] }, /member 2a: not JSON/],
      [{ members: [['2a', '{"name":3}']] }, /of the wrong type/],
      [{ auth: [['authEnabled', Buffer.from([2])]] }, /auth bucket: authEnabled is 02, not 00 or 01/],
      [{ auth: [['authRevision', Buffer.from([1])]] }, /auth bucket: authRevision is 1 bytes, not 8/],
      [{ auth: [], authUsers: [['alice', message([[1, 'bob']])]] }, /user "alice": the user says it is another/],
      [{ auth: [], authUsers: [[Buffer.from([0xff]), message([[1, Buffer.from([0xff])]])]] }, /authUsers bucket: name ff is not UTF-8/],
      [
        {
          auth: [],
          authUsers: [
            [
              'alice',
              message([
                [1, 'alice'],
                [3, 7n],
              ]),
            ],
          ],
        },
        /user "alice": field 3 is a varint, expected bytes/,
      ],
      [
        {
          auth: [],
          authRoles: [
            [
              'r',
              message([
                [1, 'r'],
                [2, message([[1, 3n]])],
              ]),
            ],
          ],
        },
        /role "r": permission type 3 is not READ, WRITE or READWRITE/,
      ],
    ];
    for (const [over, text] of cases) {
      const buckets = { key: KEYS, meta: META, ...over };
      const defined = Object.fromEntries(Object.entries(buckets).filter(([, v]) => v !== undefined));
      expect(refusal(snapshotOf(defined)), String(text)).toMatchObject({ code: 'ERR_SNAPSHOT_CONTENT', message: expect.stringMatching(text) });
    }
  });
});

describe('reading the auth buckets', () => {
  it('reads users (roles repeated, no_password) and roles (permissions repeated, READ as the absent zero), in bucket order', () => {
    const snap = readEtcdSnapshot(
      good({
        auth: [
          ['authEnabled', Buffer.from([1])],
          ['authRevision', u64be(9n)],
        ],
        authRoles: [
          [
            'r',
            message([
              [1, 'r'],
              [
                2,
                message([
                  [2, 'a'],
                  [3, 'b'],
                ]),
              ],
              [
                2,
                message([
                  [1, 2n],
                  [2, 'k'],
                ]),
              ],
            ]),
          ],
        ],
        authUsers: [
          [
            'alice',
            message([
              [1, 'alice'],
              [2, '$2a$10$hash'],
              [3, 'r'],
              [3, 'root'],
            ]),
          ],
          [
            'carl',
            message([
              [1, 'carl'],
              [4, message([[1, 1n]])],
            ]),
          ],
        ],
      }),
    );
    expect(snap.auth).toEqual({
      enabled: true,
      revision: 9,
      users: [
        { name: 'alice', password: '$2a$10$hash', roles: ['r', 'root'], noPassword: false },
        { name: 'carl', password: '', roles: [], noPassword: true },
      ],
      roles: [
        {
          name: 'r',
          permissions: [
            { permType: 0, key: Buffer.from('a'), rangeEnd: Buffer.from('b') },
            { permType: 2, key: Buffer.from('k'), rangeEnd: Buffer.alloc(0) },
          ],
        },
      ],
    });
    expect(readEtcdSnapshot(good()).auth).toBeUndefined();
  });
});

describe('the protobuf reader', () => {
  it('reads int64 exactly over 64 bits, negatives as two’s complement, the last of a repeated field', () => {
    const m = decodeMessage(
      message([
        [1, -5n],
        [2, 2n ** 63n - 1n],
        [3, 1],
        [3, 9],
        [4, 2n ** 53n],
      ]),
      'm',
    );
    expect(int64Field(m, 1, 'm')).toBe(-5n);
    expect(int64Field(m, 2, 'm')).toBe(2n ** 63n - 1n);
    expect(int64Field(m, 7, 'm')).toBe(0n);
    expect(safeIntField(m, 3, 'm')).toBe(9);
    expect(() => safeIntField(m, 4, 'm')).toThrow(/not a non-negative safe integer/);
    // Fixed-width fields are skipped; a varint of 11 bytes is refused.
    expect(decodeMessage(Buffer.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4]), 'f').size).toBe(0);
    expect(() => decodeMessage(Buffer.from([0x08, ...Array(10).fill(0x80), 0x01]), 'v')).toThrow(/varint longer than 10 bytes/);
    expect(() => decodeMessage(Buffer.from([0x09, 1, 2]), 'f')).toThrow(/field 1 runs past the end/);
    expect(() => decodeMessage(Buffer.from([0x02, 0x00]), 'z')).toThrow(/field number 0/);
  });
});
