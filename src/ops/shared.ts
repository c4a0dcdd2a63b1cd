/**
 * What the processes of a cluster share beyond PostgreSQL: one Redis connection per process
 * (config `redis.url`), used for short locks (one render of a cold metatile across processes),
 * the rate-limit counters and the usage counts. Without Redis every method degrades to "this
 * process alone": a lock is always granted, and the callers fall back to their own state.
 *
 * Locks are `SET key token NX PX ttl` released by a compare-and-delete script, so a lock that
 * outlived its holder (a killed process) expires by itself and nobody releases another's lock.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export const KEY_PREFIX = 'geodata:';

export class SharedState {
  /** The Redis connection, or null when the cluster shares through PostgreSQL only. */
  readonly redis: Redis | null;
  private lastError = 0;

  constructor(
    url: string | null | undefined,
    private readonly log: Logger,
  ) {
    if (!url) {
      this.redis = null;
      return;
    }
    // ioredis is loaded only when Redis is configured (as the tile tier does)
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.redis = new RedisClient(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: 2000,
      commandTimeout: 1000,
      enableAutoPipelining: true,
    });
    this.redis.on('error', (e) => this.warn(e));
  }

  /** A Redis failure, logged at most every 10 s (a dead Redis must not flood the log). */
  warn(e: unknown): void {
    const now = Date.now();
    if (now - this.lastError < 10_000) return;
    this.lastError = now;
    this.log.warn({ err: (e as Error).message }, 'redis (shared state) unavailable: this process works on its own state meanwhile');
  }

  /**
   * Take the lock `name` for at most ttlMs. Resolves to a release function when taken, null when
   * another process holds it. Without Redis (or when Redis fails) the lock is this process's alone:
   * always granted.
   */
  async tryLock(name: string, ttlMs: number): Promise<(() => Promise<void>) | null> {
    const r = this.redis;
    if (!r) return async () => undefined;
    const key = `${KEY_PREFIX}lock:${name}`;
    const token = randomBytes(9).toString('base64url');
    try {
      const ok = await r.set(key, token, 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
      if (ok !== 'OK') return null;
    } catch (e) {
      this.warn(e);
      return async () => undefined;
    }
    return async () => {
      await r.eval(RELEASE, 1, key, token).catch((e) => this.warn(e));
    };
  }

  /** Whether the lock `name` is held by some process (false without Redis or when it fails). */
  async locked(name: string): Promise<boolean> {
    if (!this.redis) return false;
    try {
      return (await this.redis.exists(`${KEY_PREFIX}lock:${name}`)) === 1;
    } catch (e) {
      this.warn(e);
      return false;
    }
  }

  async close(): Promise<void> {
    if (!this.redis) return;
    await this.redis.quit().catch(() => this.redis?.disconnect());
  }
}
