/**
 * Periodic jobs that must run once per cluster, not once per process (scheduled harvests): each
 * process keeps its own timer, and a run starts only where it claims the job in PostgreSQL. The
 * claim is one statement (an upsert that succeeds only when the job's last start is older than
 * `minGapMs`), so it holds across processes and machines with or without Redis, and a process
 * that died mid-run does not hold anything: the next period's claim succeeds elsewhere.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import { runDdl } from '../db/ddl.js';

const DDL = `
CREATE SCHEMA IF NOT EXISTS geodata_ops;
CREATE TABLE IF NOT EXISTS geodata_ops.jobs (name text PRIMARY KEY, started timestamptz NOT NULL, pid int, host text);`;

/**
 * Claim the job `name` for a run now. True when no process started it within the last minGapMs
 * (take half the period: timers of processes started at other moments then skip, and a timer that
 * fires a little early still claims the next period).
 */
export async function claimRun(pool: pg.Pool, name: string, minGapMs: number): Promise<boolean> {
  await runDdl(pool, DDL);
  const r = await pool.query(
    `INSERT INTO geodata_ops.jobs AS j (name, started, pid, host) VALUES ($1, clock_timestamp(), $3, $4)
     ON CONFLICT (name) DO UPDATE SET started = EXCLUDED.started, pid = EXCLUDED.pid, host = EXCLUDED.host
       WHERE j.started <= clock_timestamp() - make_interval(secs => $2::float8 / 1000)
     RETURNING 1`,
    [name, minGapMs, process.pid, hostname()],
  );
  return r.rowCount === 1;
}
