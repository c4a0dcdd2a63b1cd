/** The PostgreSQL connection pool, with per-connection settings and error handling. */
import pg from 'pg';
import type { Logger } from 'pino';

// int8 (count(*), bigint ids) as JS numbers when safe, strings otherwise; numeric stays string.
pg.types.setTypeParser(20, (v: string) => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
});
// dates as ISO strings, not JS Date objects shifted to the local zone
pg.types.setTypeParser(1082, (v: string) => v);

export interface PoolOptions {
  url: string;
  max?: number;
  statementTimeoutMs?: number;
  applicationName?: string;
  /** How long a new connection may take (default 10 s). */
  connectTimeoutMs?: number;
  log?: Logger;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    application_name: opts.applicationName ?? 'geodata-server',
    statement_timeout: opts.statementTimeoutMs || undefined,
    // notice a peer that vanished without closing the connection
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', (err) => {
    opts.log?.warn({ err: err.message }, 'idle database connection lost');
  });
  // A checked-out client whose server goes away (restart, failover) emits 'error' outside any
  // query; without a listener that would be an uncaught exception. The query in flight, if any,
  // fails on its own and the pool discards the broken client when it is released.
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.log?.warn({ err: err.message }, 'database connection lost'));
  });
  return pool;
}

/**
 * The statement_timeout sent when a connection starts: none behind a pooler in transaction mode
 * (PgBouncer refuses unknown startup parameters, and the server connection is shared: set it on the
 * role, and the server sets it in the transactions it opens).
 */
export function startupTimeout(config: { database: { statementTimeoutMs: number; transactionPooling: boolean } }): number | undefined {
  return config.database.transactionPooling ? undefined : config.database.statementTimeoutMs;
}

/** Quote a SQL identifier. Identifiers only ever come from the registry, never from requests. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualifiedTable(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
