/** What every front door and engine receives: config, database pool, registry, logger. */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import type { Registry } from './registry/registry.js';
import type { Metrics } from './ops/metrics.js';
import type { UsageStats } from './ops/usage.js';
import type { Authenticator } from './security/auth.js';

export interface AppContext {
  config: Config;
  pool: pg.Pool;
  registry: Registry;
  log: Logger;
  /** Set by buildApp() when not given. */
  metrics?: Metrics;
  usage?: UsageStats;
  auth?: Authenticator;
  /**
   * Set on the per-request context an OWS request receives (whose registry is the caller's view):
   * the application's own context, for state that must be shared by all requests (caches, gates).
   */
  root?: AppContext;
}
