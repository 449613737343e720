import { describe, expect, it } from 'vitest';
import { BCRYPT_COST, hashPassword, scryptHash, verifyPassword } from '../../src/server/password.js';

describe('password hashes', () => {
  it('hashes with bcrypt as etcd does ($2a$, cost 10), salted, and verifies only the same password', async () => {
    const a = await hashPassword('s3cret');
    const b = await hashPassword('s3cret');
    expect(a).toMatch(/^\$2a\$10\$[./A-Za-z0-9]{53}$/);
    expect(BCRYPT_COST).toBe(10);
    expect(a).not.toBe(b);
    expect(await verifyPassword('s3cret', a)).toBe(true);
    expect(await verifyPassword('s3cret', b)).toBe(true);
    expect(await verifyPassword('s3cret!', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });

  it("verifies a hash made by Go's bcrypt (etcd 3.4's store) and its 2b/2y spellings", async () => {
    // golang.org/x/crypto/bcrypt.GenerateFromPassword([]byte("etcd-pass"), 4), as an etcd snapshot's authUsers bucket holds it.
    const go = '$2a$04$ifjy9GUXU1X.L2QQzwDtvuxoty/kApklGPV66tHd69XHkhHl2vW1O';
    expect(await verifyPassword('etcd-pass', go)).toBe(true);
    expect(await verifyPassword('etcd-pass', go.replace('$2a$', '$2b$'))).toBe(true);
    expect(await verifyPassword('etcd-pasS', go)).toBe(false);
  });

  it("still verifies qkv's earlier scrypt hashes", async () => {
    const old = await scryptHash('before');
    expect(old.startsWith('scrypt$')).toBe(true);
    expect(await verifyPassword('before', old)).toBe(true);
    expect(await verifyPassword('after', old)).toBe(false);
  });

  it('never matches a stored value of another form, nor a malformed hash', async () => {
    for (const stored of [
      '',
      'plain',
      '$2a$10$short',
      '$2a$99$ABJlHE.5yfydCPq9.mzO0eQSYiC8eGfnxZyjJtjH57BlpRmvcv7Wq',
      'scrypt$0$8$1$x$y',
      'scrypt$16384$8$1$AAAA$AAAA',
    ]) {
      expect(await verifyPassword('plain', stored)).toBe(false);
    }
  });

  it('answers many checks at once, each with its own result', async () => {
    const h = await hashPassword('x');
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => verifyPassword(i % 2 === 0 ? 'x' : 'y', h)));
    expect(results).toEqual([true, false, true, false, true, false, true, false]);
  });
});
