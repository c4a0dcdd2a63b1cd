/**
 * Schema set-up that many processes (test workers, cluster processes, several machines) may run
 * at the same moment: `CREATE SCHEMA IF NOT EXISTS` is not safe against itself in PostgreSQL (two
 * sessions can both pass the check and one fails on pg_namespace's unique index), so every
 * set-up statement of the server runs inside one transaction holding one advisory lock.
 */
import type pg from 'pg';

/** Advisory lock key shared by every set-up of the server's own schemas. */
const DDL_LOCK = 'geodata_ddl';

export async function runDdl(pool: pg.Pool, sql: string): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [DDL_LOCK]);
    await c.query(sql);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}
