/**
 * Usage statistics per dataset: daily counts of requests, features and bytes per layer, service
 * and caller class (anonymous / authenticated). Aggregated in memory, flushed to PostGIS
 * periodically in one statement (no write per request); a failed flush keeps the counts for the
 * next one, and close() flushes what is left.
 *
 * With Redis (src/ops/shared.ts), the processes of a cluster count into one Redis hash as each
 * request ends (HINCRBY, pipelined), so a process that dies loses nothing it counted. A flush (any
 * process) renames the hash to a batch key, writes the batch to PostgreSQL in a transaction that
 * also records the batch id, then deletes the key: a batch left behind by a process killed between
 * the two is found by the next flush, and the recorded id keeps it from being added twice. A
 * Redis failure falls back to the process's own counts.
 */
import { randomBytes } from 'node:crypto';
import { runDdl } from '../db/ddl.js';
import type pg from 'pg';
import type { Logger } from 'pino';
import { KEY_PREFIX, type SharedState } from './shared.js';

export interface UsageRow {
  day: string;
  layer: string;
  service: string;
  caller: 'anonymous' | 'authenticated';
  requests: number;
  features: number;
  bytes: number;
}

const DDL = `
CREATE SCHEMA IF NOT EXISTS geodata_ops;
CREATE TABLE IF NOT EXISTS geodata_ops.usage_daily (
  day date NOT NULL,
  layer text NOT NULL,
  service text NOT NULL,
  caller text NOT NULL,
  requests bigint NOT NULL DEFAULT 0,
  features bigint NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (day, layer, service, caller)
);
CREATE TABLE IF NOT EXISTS geodata_ops.usage_batches (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());`;

const PENDING = `${KEY_PREFIX}usage:pending`;
const BATCH = `${KEY_PREFIX}usage:batch:`;
const SEP = '\u0000';
const METRICS = { r: 'requests', f: 'features', b: 'bytes' } as const;

const rowKey = (r: Pick<UsageRow, 'day' | 'layer' | 'service' | 'caller'>) => `${r.day}${SEP}${r.layer}${SEP}${r.service}${SEP}${r.caller}`;

/** The rows of a Redis usage hash (fields day, layer, service, caller, metric joined by NUL). */
function rowsOfHash(h: Record<string, string>): UsageRow[] {
  const rows = new Map<string, UsageRow>();
  for (const [field, v] of Object.entries(h)) {
    const parts = field.split(SEP);
    const metric = METRICS[parts[4] as keyof typeof METRICS];
    if (parts.length !== 5 || !metric) continue;
    const [day, layer, service, caller] = parts;
    const k = rowKey({ day, layer, service, caller: caller as UsageRow['caller'] });
    let row = rows.get(k);
    if (!row) {
      row = { day, layer, service, caller: caller as UsageRow['caller'], requests: 0, features: 0, bytes: 0 };
      rows.set(k, row);
    }
    row[metric] += Number(v) || 0;
  }
  return [...rows.values()];
}

export class UsageStats {
  private pending = new Map<string, UsageRow>();
  private timer: NodeJS.Timeout | undefined;
  private ready: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  flushes = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly flushSeconds = 60,
    private readonly shared?: SharedState,
  ) {}

  /** Create the table (idempotent) and start the periodic flush. */
  start(): Promise<void> {
    this.ready ??= runDdl(this.pool, DDL);
    if (!this.timer) {
      this.timer = setInterval(() => void this.flush().catch(() => {}), this.flushSeconds * 1000);
      this.timer.unref();
    }
    return this.ready;
  }

  /** Called before each flush: sources that count in batches (the tile hit fast path) hand their counts over. */
  private readonly beforeFlush: (() => void)[] = [];
  onBeforeFlush(fn: () => void): void {
    this.beforeFlush.push(fn);
  }
  private takeBatches(): void {
    for (const fn of this.beforeFlush) fn();
  }

  /** Count a request (or `requests` requests at once, from a batch: features and bytes are their totals). */
  record(r: {
    layers: string[];
    service: string;
    authenticated: boolean;
    features: number;
    bytes: number;
    requests?: number;
    at?: Date;
  }): void {
    const day = (r.at ?? new Date()).toISOString().slice(0, 10);
    const caller = r.authenticated ? 'authenticated' : 'anonymous';
    const layers = r.layers.length ? r.layers : [''];
    const share = layers.length;
    // features and bytes of a multi-layer request are shared out; remainders go to the first layer
    const rows = layers.map((layer, i) => ({
      day,
      layer,
      service: r.service,
      caller,
      requests: r.requests ?? 1,
      features: Math.floor(r.features / share) + (i === 0 ? r.features % share : 0),
      bytes: Math.floor(r.bytes / share) + (i === 0 ? r.bytes % share : 0),
    })) satisfies UsageRow[];
    const redis = this.shared?.redis;
    if (!redis) {
      this.addLocal(rows);
      return;
    }
    const m = redis.multi();
    for (const row of rows) {
      const k = rowKey(row);
      m.hincrby(PENDING, `${k}${SEP}r`, row.requests);
      if (row.features) m.hincrby(PENDING, `${k}${SEP}f`, row.features);
      if (row.bytes) m.hincrby(PENDING, `${k}${SEP}b`, row.bytes);
    }
    m.exec()
      .then((res) => {
        if (!res || res.some(([e]) => e)) throw new Error('usage count refused by Redis');
      })
      .catch((e) => {
        // not counted in Redis (MULTI is all or nothing): counted here instead
        this.shared?.warn(e);
        this.addLocal(rows);
      });
  }

  private addLocal(rows: UsageRow[]): void {
    for (const r of rows) {
      const key = rowKey(r);
      const row = this.pending.get(key);
      if (!row) this.pending.set(key, { ...r });
      else {
        row.requests += r.requests;
        row.features += r.features;
        row.bytes += r.bytes;
      }
    }
  }

  /** Counts not yet written to the database. */
  unflushed(): UsageRow[] {
    this.takeBatches();
    return [...this.pending.values()].map((r) => ({ ...r }));
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    this.takeBatches();
    await this.start();
    await this.flushLocal();
    if (this.shared?.redis) await this.flushRedis();
  }

  /** Add rows to the daily table (one statement). */
  private async upsert(db: pg.Pool | pg.PoolClient, rows: UsageRow[]): Promise<void> {
    if (!rows.length) return;
    await db.query(
      `INSERT INTO geodata_ops.usage_daily AS u (day, layer, service, caller, requests, features, bytes)
       SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
       ON CONFLICT (day, layer, service, caller) DO UPDATE
         SET requests = u.requests + EXCLUDED.requests, features = u.features + EXCLUDED.features, bytes = u.bytes + EXCLUDED.bytes`,
      [
        rows.map((r) => r.day),
        rows.map((r) => r.layer),
        rows.map((r) => r.service),
        rows.map((r) => r.caller),
        rows.map((r) => r.requests),
        rows.map((r) => r.features),
        rows.map((r) => r.bytes),
      ],
    );
  }

  /** The batch keys in Redis (this flush's and any a killed process left). */
  private async batchKeys(): Promise<string[]> {
    const redis = this.shared!.redis!;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${BATCH}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    return keys;
  }

  /** Move the cluster's counts from Redis to PostgreSQL, each batch exactly once. */
  private async flushRedis(): Promise<void> {
    const redis = this.shared!.redis!;
    try {
      await redis.rename(PENDING, `${BATCH}${Date.now()}-${randomBytes(6).toString('hex')}`);
    } catch (e) {
      if (!/no such key/i.test((e as Error).message)) {
        this.shared!.warn(e);
        return;
      }
    }
    for (const key of await this.batchKeys()) {
      const rows = rowsOfHash(await redis.hgetall(key));
      const c = await this.pool.connect();
      try {
        await c.query('BEGIN');
        const fresh = await c.query('INSERT INTO geodata_ops.usage_batches (id) VALUES ($1) ON CONFLICT DO NOTHING', [
          key.slice(BATCH.length),
        ]);
        if (fresh.rowCount === 1) await this.upsert(c, rows);
        await c.query(`DELETE FROM geodata_ops.usage_batches WHERE at < now() - interval '7 days'`);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        this.log.warn({ err: (e as Error).message, batch: key }, 'usage flush failed; the batch stays in Redis for the next flush');
        throw e;
      } finally {
        c.release();
      }
      await redis.del(key);
      this.flushes++;
    }
  }

  /** Counts in Redis not yet written to PostgreSQL (the pending hash, and batches not yet applied). */
  private async unflushedShared(): Promise<UsageRow[]> {
    const redis = this.shared?.redis;
    if (!redis) return [];
    try {
      const out = rowsOfHash(await redis.hgetall(PENDING));
      const keys = await this.batchKeys();
      if (keys.length) {
        const applied = new Set(
          (
            await this.pool.query<{ id: string }>('SELECT id FROM geodata_ops.usage_batches WHERE id = ANY($1::text[])', [
              keys.map((k) => k.slice(BATCH.length)),
            ])
          ).rows.map((r) => r.id),
        );
        for (const k of keys) if (!applied.has(k.slice(BATCH.length))) out.push(...rowsOfHash(await redis.hgetall(k)));
      }
      return out;
    } catch (e) {
      this.shared?.warn(e);
      return [];
    }
  }

  private async flushLocal(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const rows = [...batch.values()];
    try {
      await this.upsert(this.pool, rows);
      this.flushes++;
    } catch (e) {
      // keep the counts: merge them back for the next attempt
      for (const [k, r] of batch) {
        const cur = this.pending.get(k);
        if (cur) {
          cur.requests += r.requests;
          cur.features += r.features;
          cur.bytes += r.bytes;
        } else this.pending.set(k, r);
      }
      this.log.warn({ err: (e as Error).message, rows: rows.length }, 'usage flush failed; counts kept for the next flush');
      throw e;
    }
  }

  /** Persisted plus unflushed counts, summed, for a date range. */
  async query(opts: { from?: string; to?: string; layer?: string }): Promise<UsageRow[]> {
    this.takeBatches();
    await this.start();
    const params: unknown[] = [opts.from ?? '1970-01-01', opts.to ?? '9999-12-31'];
    let where = 'day BETWEEN $1::date AND $2::date';
    if (opts.layer !== undefined) {
      params.push(opts.layer);
      where += ` AND layer = $${params.length}`;
    }
    const r = await this.pool.query<{
      day: string;
      layer: string;
      service: string;
      caller: 'anonymous' | 'authenticated';
      requests: string;
      features: string;
      bytes: string;
    }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, layer, service, caller, requests, features, bytes FROM geodata_ops.usage_daily WHERE ${where}`,
      params,
    );
    const merged = new Map<string, UsageRow>();
    const add = (row: UsageRow) => {
      const k = rowKey(row);
      const cur = merged.get(k);
      if (cur) {
        cur.requests += row.requests;
        cur.features += row.features;
        cur.bytes += row.bytes;
      } else merged.set(k, { ...row });
    };
    for (const row of r.rows) add({ ...row, requests: Number(row.requests), features: Number(row.features), bytes: Number(row.bytes) });
    for (const row of [...this.pending.values(), ...(await this.unflushedShared())]) {
      if (row.day < (opts.from ?? '') || row.day > (opts.to ?? '9999-12-31')) continue;
      if (opts.layer !== undefined && row.layer !== opts.layer) continue;
      add(row);
    }
    return [...merged.values()].sort(
      (a, b) =>
        a.day.localeCompare(b.day) ||
        a.layer.localeCompare(b.layer) ||
        a.service.localeCompare(b.service) ||
        a.caller.localeCompare(b.caller),
    );
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    try {
      await this.flush();
    } catch {
      this.log.error({ rows: this.pending.size }, 'usage counts could not be written at shutdown');
    }
  }
}
