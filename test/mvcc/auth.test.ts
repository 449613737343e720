// Users, roles and permissions as replicated state (src/mvcc/auth.ts): the permission check's
// interval arithmetic, and the store applying auth changes and checking each entry's caller,
// alike after a reopen and in a store restored from a snapshot (and counted in its Hash).
import { afterAll, describe, expect, it } from 'vitest';
import { isPermitted, type AuthRecord, type Caller } from '../../src/mvcc/auth.js';
import { MvccStore } from '../../src/mvcc/index.js';
import type { ApplyResult, MvccRequest } from '../../src/mvcc/types.js';
import { b, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const perm = (permType: 'READ' | 'WRITE' | 'READWRITE', key: string, rangeEnd = ''): { permType: typeof permType; key: Buffer; rangeEnd: Buffer } => ({
  permType,
  key: b(key),
  rangeEnd: b(rangeEnd),
});

const record: AuthRecord = {
  enabled: true,
  revision: 5,
  users: [
    { name: 'alice', password: '', roles: ['ab', 'bc'], noPassword: true },
    { name: 'bob', password: '', roles: ['from-m', 'point'], noPassword: true },
    { name: 'root', password: '', roles: ['root'], noPassword: true },
  ],
  roles: [
    { name: 'ab', permissions: [perm('READWRITE', 'a', 'b')] },
    { name: 'bc', permissions: [perm('READ', 'b', 'c')] },
    { name: 'from-m', permissions: [perm('WRITE', 'm', '\0')] },
    { name: 'point', permissions: [perm('READ', 'k')] },
    { name: 'root', permissions: [] },
  ],
};

describe('isPermitted: a range must be covered by the union of the permissions of the type', () => {
  const can = (user: string, access: 'READ' | 'WRITE', key: string, rangeEnd?: string): boolean =>
    isPermitted(record, user, access, { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd) });

  it.each([
    ['alice', 'READ', 'a', undefined, true],
    ['alice', 'WRITE', 'azzz', undefined, true],
    ['alice', 'WRITE', 'b', undefined, false], // one byte outside [a, b)
    ['alice', 'READ', 'b', undefined, true], // bc
    ['alice', 'READ', 'a', 'c', true], // [a, b) and [b, c) adjoin
    ['alice', 'READ', 'a', 'c\0', false], // one byte past c
    ['alice', 'WRITE', 'a', 'b', true],
    ['alice', 'WRITE', 'a', 'b\0', false],
    ['alice', 'READ', 'a', '\0', false], // every key from a on
    ['bob', 'WRITE', 'm', '\0', true],
    ['bob', 'WRITE', 'zzzz', undefined, true],
    ['bob', 'WRITE', 'l', 'n', false],
    ['bob', 'READ', 'm', undefined, false], // WRITE only
    ['bob', 'READ', 'k', undefined, true],
    ['bob', 'READ', 'k', 'k\0', true], // the point as a range
    ['bob', 'READ', 'k', 'l', false],
    ['root', 'WRITE', 'anything', '\0', true],
    ['nobody', 'READ', 'a', undefined, false],
  ] as const)('%s %s [%s, %s): %s', (user, access, key, end, want) => {
    expect(can(user, access, key, end)).toBe(want);
  });
});

describe('the store applies auth changes and checks every entry against its caller', () => {
  const alice: Caller = { user: 'alice', authRevision: 0 };
  let index = 0;
  const apply = async (store: MvccStore, request: MvccRequest, caller?: Caller): Promise<ApplyResult> => {
    const [r] = await store.applyBatch([caller ? { index: ++index, request, caller } : { index: ++index, request }]);
    return r!;
  };
  const code = (r: ApplyResult): string => (r.status === 'error' ? r.error.code : r.status);
  /** Alice's caller at the store's current auth revision. */
  const now = (store: MvccStore, c: Caller = alice): Caller => ('user' in c ? { ...c, authRevision: store.auth()!.revision } : c);

  async function setUp(store: MvccStore): Promise<void> {
    const steps: MvccRequest[] = [
      { auth: { op: 'userAdd', name: 'root', password: 'h', noPassword: false } },
      { auth: { op: 'roleAdd', name: 'root' } },
      { auth: { op: 'userGrantRole', user: 'root', role: 'root' } },
      { auth: { op: 'userAdd', name: 'alice', password: 'h', noPassword: false } },
      { auth: { op: 'roleAdd', name: 'ab' } },
      { auth: { op: 'roleGrantPermission', name: 'ab', perm: perm('READWRITE', 'a', 'b') } },
      { auth: { op: 'userGrantRole', user: 'alice', role: 'ab' } },
      { put: { key: b('b'), value: b('outside') } },
      { leaseGrant: { id: 7, ttl: 60 } },
      { put: { key: b('b2'), value: b('leased'), lease: 7 } },
      { auth: { op: 'enable' } },
    ];
    for (const s of steps) expect(code(await apply(store, s))).toBe('ok');
  }

  it('refuses what the caller may not do, at apply, changing nothing', async () => {
    const store = await MvccStore.open(await tempDir());
    try {
      await setUp(store);
      const rev = store.revision;
      const hash = await store.hash();
      const refusals: Array<[MvccRequest, Caller | undefined, string]> = [
        [{ put: { key: b('b'), value: b('x') } }, now(store), 'ERR_PERMISSION_DENIED'],
        [{ put: { key: b('a1'), value: b('x') } }, undefined, 'ERR_AUTH_USER_EMPTY'],
        [{ put: { key: b('a1'), value: b('x') } }, alice, 'ERR_AUTH_OLD_REVISION'],
        [
          {
            txn: {
              compare: [{ key: b('a1'), target: 'VERSION', result: 'EQUAL', version: 0 }],
              success: [{ requestPut: { key: b('a1'), value: b('then') } }],
              failure: [{ requestPut: { key: b('b'), value: b('else') } }],
            },
          },
          now(store),
          'ERR_PERMISSION_DENIED',
        ],
        [{ txn: { success: [{ requestTxn: { success: [{ requestDeleteRange: { key: b('b') } }] } }] } }, now(store), 'ERR_PERMISSION_DENIED'],
        [{ deleteRange: { key: b('a'), rangeEnd: b('b\0') } }, now(store), 'ERR_PERMISSION_DENIED'],
        [{ leaseRevoke: { id: 7 } }, now(store), 'ERR_PERMISSION_DENIED'],
        [{ put: { key: b('a1'), value: b('x'), lease: 7 } }, now(store), 'ERR_PERMISSION_DENIED'],
        [{ auth: { op: 'roleAdd', name: 'mine' } }, now(store), 'ERR_PERMISSION_DENIED'],
        [{ auth: { op: 'userDelete', name: 'root' } }, now(store, { user: 'root', authRevision: 0 }), 'ERR_INVALID_AUTH_MGMT'],
      ];
      for (const [req, caller, want] of refusals) expect(code(await apply(store, req, caller)), JSON.stringify(req)).toBe(want);
      expect(store.revision).toBe(rev);
      expect(await store.hash()).toEqual(hash);
      // Inside her range she may; the member itself may revoke any lease.
      expect(code(await apply(store, { put: { key: b('a1'), value: b('x') } }, now(store)))).toBe('ok');
      expect(code(await apply(store, { leaseRevoke: { id: 7 } }, { member: true }))).toBe('ok');
    } finally {
      await store.close();
    }
  });

  it('keeps the auth state across a reopen and in a restored snapshot, and counts it in the Hash', async () => {
    const dir = await tempDir();
    let store = await MvccStore.open(dir);
    const bare = await store.hash();
    await setUp(store);
    const withAuth = await store.hash();
    expect(withAuth.hash).not.toBe(bare.hash);
    const state = store.auth();
    await store.close();
    store = await MvccStore.open(dir);
    try {
      expect(store.auth()).toEqual(state);
      const chunks: Uint8Array[] = [];
      for await (const c of store.snapshot()) chunks.push(c);
      const restored = await MvccStore.restore(await tempDir(), chunks);
      try {
        expect(restored.auth()).toEqual(state);
        expect(await restored.hash()).toEqual(await store.hash());
        // A change of the auth state alone changes the Hash.
        const [r] = await restored.applyBatch([
          { index: restored.appliedIndex + 1, request: { auth: { op: 'roleAdd', name: 'x' } }, caller: { user: 'root', authRevision: 99 } },
        ]);
        expect(code(r!)).toBe('ok');
        expect((await restored.hash()).hash).not.toBe((await store.hash()).hash);
      } finally {
        await restored.close();
      }
    } finally {
      await store.close();
    }
  });
});
