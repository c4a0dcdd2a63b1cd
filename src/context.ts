/**
 * What every front door and engine receives: config, database pool, registry, logger, and the
 * runtime (src/runtime.ts: everything long-lived, built once at start). An OWS request gets a copy
 * whose registry is the caller's view (src/ows/service.ts); the runtime is the same object.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import type { Registry } from './registry/registry.js';
import { Runtime, type RuntimeBase, type RuntimeOptions } from './runtime.js';

export interface AppContext {
  readonly config: Config;
  readonly pool: pg.Pool;
  readonly registry: Registry;
  readonly log: Logger;
  readonly runtime: Runtime;
}

/** The application context: the base and the runtime built from it (main.ts, the seed command, tests). */
export function createContext(base: RuntimeBase, opts?: RuntimeOptions): AppContext {
  return { ...base, runtime: new Runtime(base, opts) };
}
