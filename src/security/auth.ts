/**
 * Authentication and authorisation: HTTP Basic (what QGIS sends) and API keys (X-API-Key header
 * or `apikey` parameter), checked against hashed secrets from config; roles decide which
 * restricted layers a caller may read, and the `admin` role opens the admin endpoints.
 */
import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import type { Layer } from '../registry/types.js';
import { ServiceError } from '../errors/service-error.js';

export interface Principal {
  /** 'anonymous' when no credentials were given. */
  name: string;
  roles: string[];
  authenticated: boolean;
  /** How the caller authenticated. */
  via: 'anonymous' | 'basic' | 'apikey';
}

export const ANONYMOUS: Principal = Object.freeze({
  name: 'anonymous',
  roles: [],
  authenticated: false,
  via: 'anonymous' as const,
}) as Principal;

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

/** Hash a password or API key: scrypt$N$r$p$salt$hash (base64url). */
export function hashSecret(secret: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(secret, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export function verifySecret(secret: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltB64, hashB64] = parts;
  const expected = Buffer.from(hashB64, 'base64url');
  let got: Buffer;
  try {
    got = scryptSync(secret, Buffer.from(saltB64, 'base64url'), expected.length, {
      N: Number(n),
      r: Number(r),
      p: Number(p),
      maxmem: 64 * 1024 * 1024,
    });
  } catch {
    return false;
  }
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Resolves credentials to a principal. scrypt is deliberately slow, so successful checks are
 * remembered (by the secret's own hash, never the secret) for a few minutes.
 */
export class Authenticator {
  private cache = new Map<string, { principal: Principal; until: number }>();

  constructor(private readonly config: Config) {}

  get realm(): string {
    return this.config.security.realm;
  }

  get enabled(): boolean {
    return this.config.security.users.length > 0 || this.config.security.apiKeys.length > 0;
  }

  private cached(key: string, compute: () => Principal | null): Principal | null {
    const hit = this.cache.get(key);
    const now = Date.now();
    if (hit && hit.until > now) return hit.principal;
    const p = compute();
    if (p) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { principal: p, until: now + 5 * 60_000 });
    }
    return p;
  }

  /** Principal for a request; throws AuthError(401) on wrong credentials (never silently anonymous). */
  authenticate(req: FastifyRequest): Principal {
    const header = req.headers.authorization;
    const q = req.query as Record<string, unknown> | undefined;
    const keyParam = q ? Object.entries(q).find(([k]) => k.toLowerCase() === 'apikey')?.[1] : undefined;
    const apiKey = (req.headers['x-api-key'] as string | undefined) ?? (typeof keyParam === 'string' ? keyParam : undefined);
    if (apiKey) {
      const fp = 'k:' + scryptFingerprint(apiKey);
      const p = this.cached(fp, () => {
        const k = this.config.security.apiKeys.find((x) => verifySecret(apiKey, x.keyHash));
        return k ? { name: k.name, roles: k.roles, authenticated: true, via: 'apikey' } : null;
      });
      if (!p) throw new AuthError(401, 'invalid API key');
      return p;
    }
    if (header?.toLowerCase().startsWith('basic ')) {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) throw new AuthError(401, 'malformed Basic credentials');
      const user = decoded.slice(0, i);
      const pass = decoded.slice(i + 1);
      const fp = 'b:' + scryptFingerprint(`${user}\u0000${pass}`);
      const p = this.cached(fp, () => {
        const u = this.config.security.users.find((x) => x.name === user);
        return u && verifySecret(pass, u.passwordHash) ? { name: u.name, roles: u.roles, authenticated: true, via: 'basic' } : null;
      });
      if (!p) throw new AuthError(401, 'invalid user name or password');
      return p;
    }
    return ANONYMOUS;
  }
}

const CACHE_KEY = randomBytes(32);
/** A fast, non-reversible fingerprint for the cache key (the secret itself is never stored). */
function scryptFingerprint(s: string): string {
  return createHmac('sha256', CACHE_KEY).update(s).digest('base64url');
}

export function canRead(layer: Layer, principal: Principal): boolean {
  if (layer.access.public) return true;
  if (principal.roles.includes('admin')) return true;
  return layer.access.roles.some((r) => principal.roles.includes(r));
}

export function isAdmin(principal: Principal): boolean {
  return principal.roles.includes('admin');
}

/** The operator's token (GEODATA_ADMIN_TOKEN) given as 'Authorization: Bearer <token>'. */
export function hasAdminToken(header: string | undefined): boolean {
  const token = process.env.GEODATA_ADMIN_TOKEN;
  if (!token || !header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Admin endpoints (reload, purge, seed, harvest, CSW-T): a caller with the admin role, or the token. */
export function isAdminRequest(req: FastifyRequest): boolean {
  return isAdmin(principalOf(req)) || hasAdminToken(req.headers.authorization);
}

/** The principal attached to the request by the auth hook (anonymous when none). */
export function principalOf(req: FastifyRequest): Principal {
  return (req as FastifyRequest & { principal?: Principal }).principal ?? ANONYMOUS;
}
