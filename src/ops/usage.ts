/**
 * Usage statistics per dataset: daily counts of requests, features and bytes per layer, service
 * and caller class (anonymous / authenticated). Aggregated in memory, flushed to PostGIS
 * periodically in one statement (no write per request); a failed flush keeps the counts for the
 * next one, and close() flushes what is left.
 */
import { runDdl } from '../db/ddl.js';
import type pg from 'pg';
import type { Logger } from 'pino';

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
);`;

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

  record(r: { layers: string[]; service: string; authenticated: boolean; features: number; bytes: number; at?: Date }): void {
    const day = (r.at ?? new Date()).toISOString().slice(0, 10);
    const caller = r.authenticated ? 'authenticated' : 'anonymous';
    const layers = r.layers.length ? r.layers : [''];
    const share = layers.length;
    layers.forEach((layer, i) => {
      const key = `${day}\u0000${layer}\u0000${r.service}\u0000${caller}`;
      let row = this.pending.get(key);
      if (!row) {
        row = { day, layer, service: r.service, caller, requests: 0, features: 0, bytes: 0 };
        this.pending.set(key, row);
      }
      row.requests += 1;
      // features and bytes of a multi-layer request are shared out; remainders go to the first layer
      row.features += Math.floor(r.features / share) + (i === 0 ? r.features % share : 0);
      row.bytes += Math.floor(r.bytes / share) + (i === 0 ? r.bytes % share : 0);
    });
  }

  /** Counts not yet written to the database. */
  unflushed(): UsageRow[] {
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
    await this.start();
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const rows = [...batch.values()];
    try {
      await this.pool.query(
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
      const k = `${row.day}\u0000${row.layer}\u0000${row.service}\u0000${row.caller}`;
      const cur = merged.get(k);
      if (cur) {
        cur.requests += row.requests;
        cur.features += row.features;
        cur.bytes += row.bytes;
      } else merged.set(k, { ...row });
    };
    for (const row of r.rows) add({ ...row, requests: Number(row.requests), features: Number(row.features), bytes: Number(row.bytes) });
    for (const row of this.pending.values()) {
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
