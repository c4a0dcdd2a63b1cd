/**
 * Reads on hot-standby replicas (database.replicas), writes and everything else on the primary.
 *
 * The read router hands out connections for reads of given tables: from a replica that is up and
 * has replayed the last edit of those tables, else from the primary. What "the last edit" is comes
 * from the change feed (src/changes/): the router subscribes to it (before the tile cache does, so
 * the requirement is in place before the tiles are dropped) and records, per table, the primary's
 * WAL insert position read after the edit committed (`Change.lsn`, or read here when a change
 * arrives without one). A replica whose replay position (`pg_last_wal_replay_lsn()`) has not
 * passed it cannot serve a render of that table, so a tile invalidated by an edit is never
 * rendered again from older data and cached.
 *
 * Each replica's replay position and lag are read every `replicaCheckMs`; when a read needs a
 * newer position than the one last seen, the replica is asked again on the spot (at most once per
 * check period). A replica that cannot be reached (or is not in recovery) is taken out and retried
 * with a backoff doubling from the check period up to 30 s; a read that fails on a replica because
 * of the replica (connection lost, recovery conflict, a relation it has not replayed yet) is run
 * again on the primary.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import client from 'prom-client';
import { createPool } from './pool.js';
import { redactUrl } from './resolve.js';

/** A WAL position ('16/B374D848') as a number. */
export function lsnValue(lsn: string | null | undefined): bigint | null {
  if (!lsn) return null;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : null;
}

/** Errors after which a read is run again on the primary; `down`: the replica itself is unusable. */
export function replicaFailure(e: unknown): { retry: boolean; down: boolean } {
  const code = (e as { code?: unknown })?.code;
  const msg = e instanceof Error ? e.message : '';
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code))
    return { retry: true, down: true };
  if (/Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect/.test(msg))
    return { retry: true, down: true };
  if (typeof code !== 'string') return { retry: false, down: false };
  // lost or shutting down (57P01-03), too many connections (53300)
  if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return { retry: true, down: true };
  // cancelled by a conflict with recovery (40001), a table not replayed yet (42P01), read-only (25006)
  if (code === '40001' || code === '40P01' || code === '42P01' || code === '25006') return { retry: true, down: false };
  return { retry: false, down: false };
}

export type ReadSource = 'primary' | 'replica';

interface Replica {
  name: string;
  url: string;
  pool: pg.Pool;
  up: boolean;
  /** Why it is out, when it is. */
  reason?: string;
  /** Replay position last read (a lower bound: replay only moves forward). */
  replayed: bigint;
  lagBytes: number;
  lagSeconds: number;
  retryAt: number;
  backoffMs: number;
  /** Last on-the-spot position check (ms). */
  askedAt: number;
}

export interface ReadRouterOptions {
  replicas: string[];
  poolSize: number;
  statementTimeoutMs: number;
  checkMs: number;
  /** Replica pools: no statement_timeout startup parameter (transaction pooling). */
  noStartupTimeout?: boolean;
  log: Logger;
  registry?: client.Registry;
}

const MAX_BACKOFF_MS = 30_000;

export class ReadRouter {
  readonly replicas: Replica[];
  /** table ('schema.table') → WAL position a replica must have replayed to serve it */
  private readonly needs = new Map<string, bigint>();
  /** tables whose position is being read from the primary: primary only meanwhile */
  private readonly pending = new Map<string, number>();
  /** every table: after a feed reconnection (edits may have been missed) */
  private floor = 0n;
  private timer?: NodeJS.Timeout;
  /** Replicas serve only once started (a tool that never starts the router reads the primary). */
  private started = false;
  private next = 0;
  private closed = false;
  readonly stats = { primary: 0, replica: 0, retried: 0 };
  private readonly reads?: client.Counter<'pool' | 'replica'>;
  private readonly fallbacks?: client.Counter<'reason'>;

  constructor(
    readonly primary: pg.Pool,
    readonly opts: ReadRouterOptions,
  ) {
    this.replicas = opts.replicas.map((url, i) => {
      const name = replicaName(url, i);
      const pool = createPool({
        url,
        max: opts.poolSize,
        statementTimeoutMs: opts.noStartupTimeout ? undefined : opts.statementTimeoutMs,
        applicationName: 'geodata-server-replica',
        // an unreachable replica costs a read this long before it goes to the primary (once: it is then taken out)
        connectTimeoutMs: 3000,
        log: opts.log,
      });
      // a replica losing its connections is checked at once rather than at the next period
      pool.on('error', () => this.suspect(r));
      const r: Replica = {
        name,
        url,
        pool,
        up: true,
        replayed: 0n,
        lagBytes: 0,
        lagSeconds: 0,
        retryAt: 0,
        backoffMs: opts.checkMs,
        askedAt: 0,
      };
      return r;
    });
    const reg = opts.registry;
    if (reg) {
      this.reads = new client.Counter({
        name: 'geodata_db_reads_total',
        help: 'Reads (renders, tiles, feature pages and exports) by the database that served them: primary or replica',
        labelNames: ['pool', 'replica'],
        registers: [reg],
      });
      this.fallbacks = new client.Counter({
        name: 'geodata_db_replica_fallbacks_total',
        help: 'Reads sent to the primary although replicas are configured, by reason: lag (not replayed the last edit), down, error (failed on a replica, run again)',
        labelNames: ['reason'],
        registers: [reg],
      });
      const replicas = this.replicas;
      new client.Gauge({
        name: 'geodata_db_replica_up',
        help: '1 when the replica serves reads, 0 when it is taken out',
        labelNames: ['replica'],
        registers: [reg],
        collect() {
          for (const r of replicas) this.set({ replica: r.name }, r.up ? 1 : 0);
        },
      });
      new client.Gauge({
        name: 'geodata_db_replica_lag_bytes',
        help: "WAL bytes between the primary's position and the replica's replay position (last check)",
        labelNames: ['replica'],
        registers: [reg],
        collect() {
          for (const r of replicas) this.set({ replica: r.name }, r.lagBytes);
        },
      });
      new client.Gauge({
        name: 'geodata_db_replica_lag_seconds',
        help: 'Age of the last transaction the replica replayed while it is behind the primary, 0 when it has replayed everything (last check)',
        labelNames: ['replica'],
        registers: [reg],
        collect() {
          for (const r of replicas) this.set({ replica: r.name }, r.lagSeconds);
        },
      });
      new client.Gauge({
        name: 'geodata_db_replica_pool_connections',
        help: 'Replica pool connections by replica and state',
        labelNames: ['replica', 'state'],
        registers: [reg],
        collect() {
          for (const r of replicas) {
            this.set({ replica: r.name, state: 'total' }, r.pool.totalCount);
            this.set({ replica: r.name, state: 'in_use' }, r.pool.totalCount - r.pool.idleCount);
            this.set({ replica: r.name, state: 'waiting' }, r.pool.waitingCount);
          }
        },
      });
    }
  }

  get enabled(): boolean {
    return this.replicas.length > 0;
  }

  /** Start the periodic checks (the first one at once). */
  start(): void {
    if (!this.enabled || this.timer || this.closed) return;
    this.started = true;
    // what this process knows of edits starts now: replicas serve once they have replayed this far
    void this.resumed();
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.opts.checkMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.replicas.map((r) => r.pool.end().catch(() => undefined)));
  }

  /** The change feed: a logged change of a table (subscriber). */
  async change(c: { table: string; lsn?: string }): Promise<void> {
    if (!this.enabled) return;
    const lsn = lsnValue(c.lsn) ?? (await this.primaryLsn(c.table));
    if (lsn !== null && lsn > (this.needs.get(c.table) ?? 0n)) this.needs.set(c.table, lsn);
  }

  /** The change feed is back after a loss: edits may have been missed, every table needs the primary's position now. */
  async resumed(): Promise<void> {
    if (!this.enabled) return;
    const lsn = await this.primaryLsn('*');
    if (lsn !== null && lsn > this.floor) this.floor = lsn;
  }

  /** A write of a table made by this server outside the change feed (an overview build): replicas must replay it first. */
  written(table: string): void {
    if (!this.enabled) return;
    void this.change({ table });
  }

  /** The primary's WAL insert position, the table held on the primary while it is read. */
  private async primaryLsn(table: string): Promise<bigint | null> {
    this.pending.set(table, (this.pending.get(table) ?? 0) + 1);
    try {
      const r = await this.primary.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
      return lsnValue(r.rows[0]?.l);
    } catch (e) {
      // without the position, hold the table on the primary until the next change or reconnection
      this.opts.log.warn({ err: (e as Error).message }, 'replicas: cannot read the primary WAL position');
      this.needs.set(table, 2n ** 64n);
      return null;
    } finally {
      const n = (this.pending.get(table) ?? 1) - 1;
      if (n > 0) this.pending.set(table, n);
      else this.pending.delete(table);
    }
  }

  /** The position a replica must have replayed to serve reads of these tables. */
  private need(tables: string[]): bigint | null {
    let n = this.floor;
    for (const t of tables) {
      if (this.pending.has(t) || this.pending.has('*')) return null;
      const v = this.needs.get(t);
      if (v !== undefined && v > n) n = v;
    }
    return n;
  }

  /**
   * A connection for a read of these tables ('schema.table'): from a replica that may serve it,
   * else from the primary. Release it with `client.release()` (an error as argument discards it).
   */
  async connect(tables: string[]): Promise<{ client: pg.PoolClient; source: ReadSource; replica?: string }> {
    const r = await this.choose(tables);
    if (r) {
      try {
        const c = await r.replica.pool.connect();
        if (r.ask) {
          const ok = await this.replayedOn(r.replica, c, r.need).catch((e) => {
            c.release(e as Error);
            throw e;
          });
          if (!ok) {
            c.release();
            return this.onPrimary('lag');
          }
        }
        this.stats.replica++;
        this.reads?.inc({ pool: 'replica', replica: r.replica.name });
        return { client: c, source: 'replica', replica: r.replica.name };
      } catch (e) {
        const f = replicaFailure(e);
        if (!f.retry) throw e;
        if (f.down) this.takeOut(r.replica, (e as Error).message);
        return this.onPrimary('error');
      }
    }
    return this.onPrimary(this.enabled && this.started ? (this.replicas.some((x) => x.up) ? 'lag' : 'down') : undefined);
  }

  private async onPrimary(reason?: 'lag' | 'down' | 'error'): Promise<{ client: pg.PoolClient; source: ReadSource }> {
    const c = await this.primary.connect();
    this.stats.primary++;
    this.reads?.inc({ pool: 'primary', replica: '' });
    if (reason) this.fallbacks?.inc({ reason });
    return { client: c, source: 'primary' };
  }

  /**
   * Run a read on a connection of connect(tables); when it fails on a replica because of the
   * replica, run it again on the primary (reads are idempotent). Releases the connection.
   */
  async run<T>(tables: string[], fn: (c: pg.PoolClient, source: ReadSource) => Promise<T>): Promise<T> {
    const got = await this.connect(tables);
    try {
      const out = await fn(got.client, got.source);
      got.client.release();
      return out;
    } catch (e) {
      // a connection that was lost is discarded; one that only ran a failing statement is reused
      const lost = replicaFailure(e).down;
      got.client.release(lost ? (e as Error) : undefined);
      const f = got.source === 'replica' ? replicaFailure(e) : { retry: false, down: false };
      if (!f.retry) throw e;
      const r = this.replicas.find((x) => x.name === got.replica);
      if (f.down && r) this.takeOut(r, (e as Error).message);
      this.stats.retried++;
      const p = await this.onPrimary('error');
      try {
        const out = await fn(p.client, 'primary');
        p.client.release();
        return out;
      } catch (e2) {
        p.client.release(replicaFailure(e2).down ? (e2 as Error) : undefined);
        throw e2;
      }
    }
  }

  /** A one-statement read of these tables (see run). */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    tables: string[],
    sql: string,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.run(tables, (c) => c.query<R>(sql, params));
  }

  /** The replica to use, whether its position must be asked first; undefined: the primary. */
  private async choose(tables: string[]): Promise<{ replica: Replica; ask: boolean; need: bigint } | undefined> {
    if (!this.enabled || !this.started || this.closed) return undefined;
    const need = this.need(tables);
    if (need === null) return undefined;
    const now = Date.now();
    const n = this.replicas.length;
    let stale: Replica | undefined;
    for (let k = 0; k < n; k++) {
      const r = this.replicas[(this.next + k) % n];
      if (!r.up) continue;
      if (r.replayed >= need) {
        this.next = (this.next + k + 1) % n;
        return { replica: r, ask: false, need };
      }
      if (!stale && now - r.askedAt >= this.opts.checkMs / 4) stale = r;
    }
    if (stale) {
      stale.askedAt = now;
      return { replica: stale, ask: true, need };
    }
    return undefined;
  }

  /** Ask a replica's replay position on a connection of it; whether it has passed `need`. */
  private async replayedOn(r: Replica, c: pg.PoolClient, need: bigint): Promise<boolean> {
    const q = await c.query<{ l: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS l');
    const v = lsnValue(q.rows[0]?.l);
    if (v !== null && v > r.replayed) r.replayed = v;
    return r.replayed >= need;
  }

  private suspect(r: Replica): void {
    if (!this.closed && r.up) void this.check(r);
  }

  private takeOut(r: Replica, reason: string): void {
    if (!r.up) return;
    r.up = false;
    r.reason = reason;
    r.retryAt = Date.now() + r.backoffMs;
    this.opts.log.warn({ replica: r.name, err: reason, retryInMs: r.backoffMs }, 'replica taken out: reads go to the primary');
  }

  private checking = false;

  private async checkAll(): Promise<void> {
    // a check still waiting on a slow replica is not doubled by the next period's
    if (this.checking) return;
    this.checking = true;
    try {
      await this.checkAllNow();
    } finally {
      this.checking = false;
    }
  }

  private async checkAllNow(): Promise<void> {
    const now = Date.now();
    let primary: bigint | null = null;
    try {
      primary = lsnValue((await this.primary.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]?.l);
    } catch {
      /* the primary's own troubles are the requests' business; lag stays as last seen */
    }
    await Promise.all(this.replicas.filter((r) => r.up || now >= r.retryAt).map((r) => this.check(r, primary)));
  }

  /** Read a replica's state; take it out when it cannot answer, bring it back when it does. */
  async check(r: Replica, primary: bigint | null = null): Promise<void> {
    try {
      const q = await r.pool.query<{ rec: boolean; l: string | null; age: number | null }>(
        'SELECT pg_is_in_recovery() AS rec, pg_last_wal_replay_lsn()::text AS l, extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age',
      );
      const row = q.rows[0];
      if (!row?.rec) throw new Error('not a hot standby (pg_is_in_recovery() is false): its data may not follow the primary');
      const v = lsnValue(row.l) ?? 0n;
      if (v > r.replayed) r.replayed = v;
      if (primary !== null) {
        const behind = primary > r.replayed ? primary - r.replayed : 0n;
        r.lagBytes = Number(behind);
        r.lagSeconds = behind > 0n ? Math.max(0, Number(row.age ?? 0)) : 0;
      }
      if (!r.up) {
        r.up = true;
        r.reason = undefined;
        this.opts.log.info({ replica: r.name }, 'replica back: it serves reads again');
      }
      r.backoffMs = this.opts.checkMs;
    } catch (e) {
      if (r.up) this.takeOut(r, (e as Error).message);
      else {
        r.backoffMs = Math.min(MAX_BACKOFF_MS, r.backoffMs * 2);
        r.retryAt = Date.now() + r.backoffMs;
      }
    }
  }

  /** For /readyz and tests. */
  status(): { name: string; up: boolean; reason?: string; lagBytes: number; lagSeconds: number; replayed: string }[] {
    return this.replicas.map((r) => ({
      name: r.name,
      up: r.up,
      ...(r.reason ? { reason: r.reason } : {}),
      lagBytes: r.lagBytes,
      lagSeconds: r.lagSeconds,
      replayed: `${(r.replayed >> 32n).toString(16).toUpperCase()}/${(r.replayed & 0xffffffffn).toString(16).toUpperCase()}`,
    }));
  }
}

/** host:port of a replica URL (its label in metrics and logs), or replica<i>. */
function replicaName(url: string, i: number): string {
  try {
    const u = new URL(url);
    return u.host || `replica${i}`;
  } catch {
    return redactUrl(url) || `replica${i}`;
  }
}
