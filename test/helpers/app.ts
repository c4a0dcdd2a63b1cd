/** Build the real application on the test database (no mocks) for inject()-based tests. */
import { expect, inject } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { validateConfig, type Config } from '../../src/config/index.js';
import { createPool, startupTimeout } from '../../src/db/pool.js';
import { Registry } from '../../src/registry/registry.js';
import { buildApp } from '../../src/app.js';
import { createContext, type AppContext } from '../../src/context.js';
import { hashSecret } from '../../src/security/auth.js';

let appCounter = 0;

export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL ?? inject('databaseUrl');
}

export interface TestApp {
  app: FastifyInstance;
  ctx: AppContext;
  close: () => Promise<void>;
}

/** `beforeReady` runs on the new instance before any route is added, so an onRoute hook it adds sees every route. */
export async function makeTestApp(rawConfig: Record<string, unknown> = {}, beforeReady?: (app: FastifyInstance) => void): Promise<TestApp> {
  const config: Config = validateConfig(rawConfig, 'test-config');
  // load shedding reacts to a late event loop, which a test machine running suites in parallel
  // has for reasons of its own: off unless a test asks for it (test/overload.test.ts does)
  if ((rawConfig.limits as Record<string, unknown> | undefined)?.shedEventLoopDelayMs === undefined) config.limits.shedEventLoopDelayMs = 0;
  config.database.url = config.database.url ?? testDatabaseUrl();
  // each test app gets a catalogue of its own: records are derived from the app's config, and
  // apps with other configs running in parallel must not re-derive them under a test's feet
  const ownCatalog = !config.catalog?.schema;
  if (ownCatalog) config.catalog = { ...(config.catalog ?? {}), schema: `cat_t${process.pid}_${++appCounter}` };
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const pool = createPool({ url: config.database.url, max: 5, statementTimeoutMs: startupTimeout(config), log });
  const registry = new Registry(pool, config);
  await registry.reload();
  const ctx = createContext({ config, pool, registry, log });
  const app = await buildApp(ctx, { onCreate: beforeReady });
  await app.ready();
  return {
    app,
    ctx,
    close: async () => {
      await app.close();
      if (ownCatalog) await pool.query(`DROP SCHEMA IF EXISTS "${config.catalog!.schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}

/**
 * Seen from a separate session, the backends that served a stream are idle: no open portal, no
 * transaction left behind.
 */
export async function expectBackendsIdle(pids: Set<number>): Promise<void> {
  const observer = new pg.Client({ connectionString: testDatabaseUrl() });
  await observer.connect();
  try {
    const states = (await observer.query(`SELECT state FROM pg_stat_activity WHERE pid = ANY($1)`, [[...pids]])).rows.map((r) => r.state);
    expect(states.length).toBe(pids.size);
    for (const st of states) expect(st).toBe('idle');
  } finally {
    await observer.end();
  }
}

/** An HTTP Basic Authorization header. */
export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/**
 * The users of the access tests (security.users): `agent` holds the role `agents` of the restricted
 * layers, `root` is an admin, `visitor` is authenticated with no role; each one's password is `pw-<name>`.
 */
export function testUsers() {
  return [
    { name: 'agent', passwordHash: hashSecret('pw-agent'), roles: ['agents'] },
    { name: 'root', passwordHash: hashSecret('pw-root'), roles: ['admin'] },
    { name: 'visitor', passwordHash: hashSecret('pw-visitor'), roles: [] as string[] },
  ];
}
