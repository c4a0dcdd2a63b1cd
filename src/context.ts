/** What every front door and engine receives: config, database pool, registry, logger. */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import type { Registry } from './registry/registry.js';

export interface AppContext {
  config: Config;
  pool: pg.Pool;
  registry: Registry;
  log: Logger;
}
