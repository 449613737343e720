/**
 * The member's side of etcd's auth: simple tokens, password hashes, and the bound on password
 * guessing. The users, roles and permissions themselves are replicated state (src/mvcc/auth.ts).
 *
 * Simple tokens are etcd 3.4's: 16 random letters, a dot and the Raft index of the Authenticate
 * entry. The member that checks the password proposes that entry with the letters; every member
 * applying it learns the token, so a token works on every member (as in etcd 3.4, where the
 * token travels in the InternalAuthenticateRequest). Each member keeps its tokens in memory
 * only, each with a TTL (etcd's --auth-token-ttl, 300 s) renewed by every use; deleting a user
 * or changing its password drops its tokens, disabling auth drops them all.
 *
 * The caller of a request is resolved from its credentials, in etcd 3.4's order
 * (EtcdServer.AuthInfoFromCtx): a token when one comes (a bad one is refused, never replaced by
 * the certificate), else, on a client port with --client-cert-auth, the CN of the client's
 * verified certificate (AuthInfoFromTLS), else the empty user. Only gRPC calls pass a CN: etcd's
 * gateway ignores the certificate (its "grpcgateway-accept" check), and a call a follower
 * forwards to the leader carries its caller as a token (services.ts), never as the follower's
 * own certificate.
 *
 * Passwords are hashed (src/server/password.ts: bcrypt, as etcd) on the member that receives
 * UserAdd or UserChangePassword, before proposing: neither the log nor the store nor a log line
 * ever holds a password.
 *
 * Guessing is bounded: every Authenticate takes one attempt from a bucket of its user name and
 * one from a bucket of its connection (each holding AUTH_ATTEMPTS_BURST, refilled at
 * AUTH_ATTEMPTS_PER_SECOND), before the password is checked; a success gives them back, so only
 * failures (and attempts still being checked) count. An empty bucket is "too many
 * authentication attempts". The buckets are bounded in number, the oldest dropped first.
 */
import { Buffer } from 'node:buffer';
import { constants, randomInt, sign, verify, type KeyObject } from 'node:crypto';
import { findUser, InvalidAuthTokenError } from '../mvcc/index.js';
import type { AuthRecord, AuthRequest, Caller } from '../mvcc/types.js';
import { JwtVerifyOnlyError, TooManyAuthAttemptsError } from './errors.js';
import type { JwtSignMethod } from './config.js';

/** Failed (or in-flight) Authenticate attempts a user name or a connection may have at once. */
const AUTH_ATTEMPTS_BURST = 10;
/** How fast those attempts come back. */
const AUTH_ATTEMPTS_PER_SECOND = 1;
/** Buckets kept (users and connections): beyond, the oldest go. */
const MAX_BUCKETS = 10_000;
/** Tokens a member keeps: beyond, expired ones are dropped, then the oldest. */
const MAX_TOKENS = 100_000;

// ---- guessing bound ----------------------------------------------------------------------

/** Token buckets by key (a user name, a connection). */
class AttemptBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {}

  private bucket(key: string): { tokens: number; at: number } {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    return b;
  }

  /** Takes one attempt from every key's bucket, or none if one is empty. */
  take(keys: readonly string[]): boolean {
    const bs = keys.map((k) => this.bucket(k));
    if (bs.some((b) => b.tokens < 1)) return false;
    for (const b of bs) b.tokens -= 1;
    return true;
  }

  give(keys: readonly string[]): void {
    for (const k of keys) {
      const b = this.buckets.get(k);
      if (b) b.tokens = Math.min(this.burst, b.tokens + 1);
    }
  }
}

// ---- JWT (etcd's --auth-token jwt,...) ---------------------------------------------------

/** A signed token's keys and method: etcd's jwt token provider. */
export interface JwtKeys {
  publicKey: KeyObject;
  /** Absent: this member verifies tokens but cannot issue them (etcd's verify-only). */
  privateKey?: KeyObject;
  signMethod: JwtSignMethod;
  ttlSeconds: number;
}

/** node:crypto's options for a JWS algorithm: the digest, and RSA-PSS padding or ECDSA's r||s form. */
function jwsOptions(
  method: JwtSignMethod,
  key: KeyObject,
): { hash: string; key: { key: KeyObject; padding?: number; saltLength?: number; dsaEncoding?: 'ieee-p1363' } } {
  const hash = `sha${method.slice(2)}`;
  if (method.startsWith('PS')) return { hash, key: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } };
  if (method.startsWith('ES')) return { hash, key: { key, dsaEncoding: 'ieee-p1363' } };
  return { hash, key: { key } };
}

const b64url = (b: Buffer): string => b.toString('base64url');

/** etcd 3.4's JWT: claims username, revision (the auth revision it was issued at) and exp. */
function signJwt(k: JwtKeys, user: string, revision: number, nowSeconds: number): string {
  if (!k.privateKey) throw new JwtVerifyOnlyError();
  const header = b64url(Buffer.from(JSON.stringify({ alg: k.signMethod, typ: 'JWT' })));
  const claims = b64url(Buffer.from(JSON.stringify({ exp: nowSeconds + k.ttlSeconds, revision, username: user })));
  const o = jwsOptions(k.signMethod, k.privateKey);
  return `${header}.${claims}.${b64url(sign(o.hash, Buffer.from(`${header}.${claims}`), o.key))}`;
}

/** The user and revision of a JWT this cluster's key signed and that has not expired; undefined else. */
function verifyJwt(k: JwtKeys, token: string, nowSeconds: number): { user: string; revision: number } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as { alg?: unknown };
    if (header.alg !== k.signMethod) return undefined;
    const o = jwsOptions(k.signMethod, k.publicKey);
    if (!verify(o.hash, Buffer.from(`${parts[0]}.${parts[1]}`), o.key, Buffer.from(parts[2]!, 'base64url'))) return undefined;
    const c = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as { username?: unknown; revision?: unknown; exp?: unknown };
    if (typeof c.username !== 'string' || !Number.isSafeInteger(c.revision) || typeof c.exp !== 'number' || c.exp <= nowSeconds) return undefined;
    return { user: c.username, revision: c.revision as number };
  } catch {
    return undefined;
  }
}

// ---- tokens ------------------------------------------------------------------------------

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

export interface AuthenticatorOptions {
  /** The applied auth state (the member's store). */
  auth: () => AuthRecord | undefined;
  tokenTtlSeconds: number;
  /** Signed tokens instead of simple ones (etcd's --auth-token jwt,...). */
  jwt?: JwtKeys;
  /** Milliseconds, monotonic (tests may drive it). */
  now?: () => number;
}

export class Authenticator {
  private readonly tokens = new Map<string, { user: string; expiresAt: number }>();
  /** Tokens issued by applied Authenticate entries, by their letters, until the proposer takes them. */
  private readonly issued = new Map<string, string>();
  private readonly attempts: AttemptBuckets;
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.ttlMs = opts.tokenTtlSeconds * 1000;
    this.attempts = new AttemptBuckets(AUTH_ATTEMPTS_BURST, AUTH_ATTEMPTS_PER_SECOND, this.now);
  }

  get enabled(): boolean {
    return this.opts.auth()?.enabled ?? false;
  }

  /**
   * The caller a request's credentials name: undefined while auth is disabled (then nothing is
   * checked); the token's user when a token comes (one this member does not hold, or whose user
   * is gone, is "invalid auth token"; each use renews its TTL); else the user `commonName`
   * names (a verified client certificate's CN, given only with --client-cert-auth); else the
   * empty user.
   */
  callerOf(token: string | undefined, commonName?: string): Caller | undefined {
    const a = this.opts.auth();
    if (!a?.enabled) return undefined;
    if (token === undefined || token === '')
      return commonName ? { user: commonName, authRevision: a.revision, certificate: true } : { user: '', authRevision: a.revision };
    if (this.opts.jwt) {
      // The revision it was issued at: checks against a newer auth state are refused as etcd's ("revision of auth store is old").
      const claims = verifyJwt(this.opts.jwt, token, Math.floor(Date.now() / 1000));
      if (!claims || !findUser(a, claims.user)) throw new InvalidAuthTokenError();
      return { user: claims.user, authRevision: claims.revision };
    }
    const t = this.tokens.get(token);
    const now = this.now();
    if (!t || t.expiresAt <= now || !findUser(a, t.user)) {
      if (t) this.tokens.delete(token);
      throw new InvalidAuthTokenError();
    }
    t.expiresAt = now + this.ttlMs;
    return { user: t.user, authRevision: a.revision };
  }

  /** The letters of a new token (the Authenticate entry carries them). */
  newTokenPrefix(): string {
    let s = '';
    for (let i = 0; i < 16; i++) s += LETTERS[randomInt(LETTERS.length)];
    return s;
  }

  /**
   * The token of an applied Authenticate entry, for its proposer: a JWT signed now (at the auth
   * revision `revision`), else the simple token the entry issued with `prefix`, once.
   */
  tokenFor(prefix: string, user: string, revision: number): string | undefined {
    if (this.opts.jwt) return signJwt(this.opts.jwt, user, revision, Math.floor(Date.now() / 1000));
    return this.takeIssued(prefix);
  }

  private takeIssued(prefix: string): string | undefined {
    const t = this.issued.get(prefix);
    this.issued.delete(prefix);
    return t;
  }

  /** Keeps the tokens in step with an applied auth change (every member calls it, for every entry). */
  applied(r: AuthRequest, index: number): void {
    switch (r.op) {
      case 'authenticate': {
        if (this.opts.jwt) return; // signed tokens need no table
        const token = `${r.prefix}.${index}`;
        this.makeRoom();
        this.tokens.set(token, { user: r.name, expiresAt: this.now() + this.ttlMs });
        this.issued.set(r.prefix, token);
        if (this.issued.size > MAX_TOKENS) this.issued.delete(this.issued.keys().next().value!);
        return;
      }
      case 'userDelete':
      case 'userChangePassword':
        for (const [t, v] of this.tokens) if (v.user === r.name) this.tokens.delete(t);
        return;
      case 'disable':
        this.tokens.clear();
        return;
      default:
        return;
    }
  }

  private makeRoom(): void {
    if (this.tokens.size < MAX_TOKENS) return;
    const now = this.now();
    for (const [t, v] of this.tokens) if (v.expiresAt <= now) this.tokens.delete(t);
    while (this.tokens.size >= MAX_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
  }

  /**
   * Runs a password check under the guessing bound: an attempt is taken from the user's and the
   * connection's buckets first ("too many authentication attempts" when one is empty), and given
   * back if the check passes.
   */
  async limited<T>(user: string, connection: string, check: () => Promise<T>): Promise<T> {
    const keys = [`user\0${user}`, `conn\0${connection}`];
    if (!this.attempts.take(keys)) throw new TooManyAuthAttemptsError();
    const r = await check();
    this.attempts.give(keys);
    return r;
  }
}
