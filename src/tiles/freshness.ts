/**
 * Freshness: statement-level triggers on the source tables write each change into
 * geodata_tiles.changes and pg_notify('geodata_tiles', id). Small edits carry the old and new
 * extents of the changed rows (transition tables) and invalidate the tiles over them; bulk edits
 * (more than `bulkRows` rows, TRUNCATE) bump the table's data version, which is part of every
 * cache key. A dedicated LISTEN connection applies them; after a connection loss it bumps the
 * versions (events may have been missed). At start, changes logged since the last one applied
 * (kept in the disk cache folder) are replayed so the disk tier is not stale after a restart.
 */
import { readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Extent, Layer } from '../registry/types.js';
import type { TileEngine } from './engine.js';

export const CHANNEL = 'geodata_tiles';

const SETUP_SQL = `
CREATE SCHEMA IF NOT EXISTS geodata_tiles;
CREATE TABLE IF NOT EXISTS geodata_tiles.versions (
  table_name text PRIMARY KEY,
  version bigint NOT NULL DEFAULT 1,
  changed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS geodata_tiles.changes (
  id bigserial PRIMARY KEY,
  table_name text NOT NULL,
  op text NOT NULL,
  n_rows bigint,
  boxes jsonb,
  version bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT now());
CREATE OR REPLACE FUNCTION geodata_tiles.bump(tname text, expected bigint, why text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE v bigint; cid bigint;
BEGIN
  UPDATE geodata_tiles.versions SET version = version + 1, changed_at = now()
   WHERE table_name = tname AND (expected IS NULL OR version = expected) RETURNING version INTO v;
  IF v IS NULL THEN RETURN NULL; END IF;
  INSERT INTO geodata_tiles.changes (table_name, op, n_rows, boxes, version) VALUES (tname, why, NULL, NULL, v) RETURNING id INTO cid;
  PERFORM pg_notify('${CHANNEL}', cid::text);
  RETURN v;
END $f$;
CREATE OR REPLACE FUNCTION geodata_tiles.on_change() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  geom text := TG_ARGV[0];
  maxrows int := TG_ARGV[1]::int;
  tname text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
  src text;
  n bigint := 0;
  bx jsonb;
  v bigint;
  cid bigint;
BEGIN
  IF TG_OP <> 'TRUNCATE' THEN
    IF TG_OP = 'INSERT' THEN src := format('SELECT %I AS g FROM gd_new', geom);
    ELSIF TG_OP = 'DELETE' THEN src := format('SELECT %I AS g FROM gd_old', geom);
    ELSE src := format('SELECT %I AS g FROM gd_old UNION ALL SELECT %I FROM gd_new', geom, geom);
    END IF;
    EXECUTE format('SELECT count(*), jsonb_agg(jsonb_build_array(ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b))) FILTER (WHERE b IS NOT NULL)
                      FROM (SELECT g::box2d AS b FROM (%s) u LIMIT %s) s', src, maxrows + 1) INTO n, bx;
    IF n = 0 THEN RETURN NULL; END IF;
  END IF;
  IF TG_OP = 'TRUNCATE' OR n > maxrows THEN
    INSERT INTO geodata_tiles.versions AS x (table_name, version) VALUES (tname, 2)
      ON CONFLICT (table_name) DO UPDATE SET version = x.version + 1, changed_at = now() RETURNING version INTO v;
    bx := NULL;
  ELSE
    SELECT version INTO v FROM geodata_tiles.versions WHERE table_name = tname;
    IF v IS NULL THEN v := 1; END IF;
    bx := coalesce(bx, '[]'::jsonb);
  END IF;
  INSERT INTO geodata_tiles.changes (table_name, op, n_rows, boxes, version) VALUES (tname, TG_OP, CASE WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE n END, bx, v) RETURNING id INTO cid;
  PERFORM pg_notify('${CHANNEL}', cid::text);
  RETURN NULL;
END $f$;
`;

interface ChangeRow {
  id: string;
  table_name: string;
  op: string;
  boxes: number[][] | null;
  version: string;
}

export class Freshness {
  private client?: pg.Client;
  private stopped = false;
  private tracked = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private lastId = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private stateTimer?: NodeJS.Timeout;
  connected = false;

  constructor(private readonly engine: TileEngine) {}

  private get ctx() {
    return this.engine.ctx;
  }

  private stateFile(): string | null {
    return this.engine.opts.diskDir ? path.join(this.engine.opts.diskDir, '.freshness.json') : null;
  }

  /** Tables (schema.table) of published layers that are real tables (triggers need one). */
  private async layerTables(client: pg.PoolClient): Promise<{ table: string; layer: Layer }[]> {
    const layers = this.ctx.registry.list();
    const out: { table: string; layer: Layer }[] = [];
    for (const layer of layers) {
      const r = await client.query(
        `SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
        [layer.schema, layer.table],
      );
      if (r.rows[0] && ['r', 'p'].includes(r.rows[0].relkind)) out.push({ table: `${layer.schema}.${layer.table}`, layer });
      else
        this.ctx.log.info(
          { layer: layer.name },
          'tile freshness: not a table (view?), no change triggers; purge its tiles through the admin endpoint after edits',
        );
    }
    return out;
  }

  async start(): Promise<void> {
    const client = await this.ctx.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', ['geodata_tiles_setup']);
      try {
        const have = await client.query(
          `SELECT to_regprocedure('geodata_tiles.on_change()') IS NOT NULL AS f, to_regprocedure('geodata_tiles.bump(text,bigint,text)') IS NOT NULL AS b`,
        );
        if (!have.rows[0].f || !have.rows[0].b) await client.query(SETUP_SQL);
        const tables = await this.layerTables(client);
        for (const { table, layer } of tables) {
          try {
            await this.installTriggers(client, layer);
            await client.query('INSERT INTO geodata_tiles.versions (table_name) VALUES ($1) ON CONFLICT DO NOTHING', [table]);
            this.tracked.add(table);
          } catch (e) {
            this.ctx.log.warn(
              { layer: layer.name, err: (e as Error).message },
              'tile freshness: cannot install change triggers (role lacks the right?); tiles of this layer are not invalidated automatically',
            );
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['geodata_tiles_setup']).catch(() => undefined);
      }
      await this.loadVersions(client);
      await this.replay(client);
    } finally {
      client.release();
    }
    await this.listen(false);
  }

  private async installTriggers(client: pg.PoolClient, layer: Layer): Promise<void> {
    const t = `${quote(layer.schema)}.${quote(layer.table)}`;
    const have = await client.query(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'geodata_tiles_%' AND NOT tgisinternal`,
      [t],
    );
    const names = new Set(have.rows.map((r) => r.tgname as string));
    const g = layer.geometryColumn.replace(/'/g, "''");
    const n = String(this.engine.opts.bulkRows);
    const defs: [string, string][] = [
      ['geodata_tiles_ins', `AFTER INSERT ON ${t} REFERENCING NEW TABLE AS gd_new FOR EACH STATEMENT`],
      ['geodata_tiles_upd', `AFTER UPDATE ON ${t} REFERENCING OLD TABLE AS gd_old NEW TABLE AS gd_new FOR EACH STATEMENT`],
      ['geodata_tiles_del', `AFTER DELETE ON ${t} REFERENCING OLD TABLE AS gd_old FOR EACH STATEMENT`],
      ['geodata_tiles_trunc', `AFTER TRUNCATE ON ${t} FOR EACH STATEMENT`],
    ];
    for (const [name, when] of defs) {
      if (names.has(name)) continue;
      await client.query(`CREATE TRIGGER ${name} ${when} EXECUTE FUNCTION geodata_tiles.on_change('${g}', '${n}')`);
    }
  }

  private async loadVersions(client: pg.PoolClient | pg.Client): Promise<void> {
    const r = await client.query('SELECT table_name, version FROM geodata_tiles.versions');
    for (const row of r.rows) this.setVersion(row.table_name, Number(row.version));
  }

  private setVersion(table: string, v: number): void {
    const old = this.engine.versions.get(table);
    if (old === v) {
      this.engine.bypass.delete(table);
      return;
    }
    this.engine.versions.set(table, v);
    this.engine.bypass.delete(table);
    if (old !== undefined) {
      this.engine.stats.bumps++;
      for (const layer of this.layersOf(table)) {
        this.engine.bumpEpoch(layer.name);
        // old versions are unreachable; free their space in the background
        void this.engine.cache.deletePrefix(this.engine.layerPrefix(layer, old)).catch(() => undefined);
      }
    }
  }

  private layersOf(table: string): Layer[] {
    return this.ctx.registry.list().filter((l) => `${l.schema}.${l.table}` === table);
  }

  /** Replay logged changes newer than the last one applied (from a previous run). */
  private async replay(client: pg.PoolClient): Promise<void> {
    const f = this.stateFile();
    const maxId = Number((await client.query('SELECT coalesce(max(id), 0) AS m FROM geodata_tiles.changes')).rows[0].m);
    let last = maxId;
    let known = false;
    if (f) {
      try {
        last = Number(JSON.parse(readFileSync(f, 'utf8')).lastChangeId) || 0;
        known = true;
      } catch {
        last = maxId; // a fresh cache folder holds nothing stale
      }
    }
    this.lastId = last;
    if (last >= maxId) {
      // record the starting point at once, so that a crash before the first change cannot hide later ones
      if (!known) this.saveState();
      return;
    }
    const r = await client.query(
      'SELECT id, table_name, op, boxes, version FROM geodata_tiles.changes WHERE id > $1 ORDER BY id LIMIT 10001',
      [last],
    );
    if (r.rows.length > 10000) {
      for (const t of this.tracked) for (const layer of this.layersOf(t)) await this.engine.purgeLayer(layer);
    } else {
      for (const row of r.rows as ChangeRow[]) await this.apply(row, true);
    }
    this.lastId = maxId;
    this.saveState();
  }

  private async listen(reconnect: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      ...(this.ctx.pool as unknown as { options: pg.ClientConfig }).options,
      application_name: 'geodata-tiles-listen',
    } as pg.ClientConfig);
    client.on('error', (e) => {
      this.ctx.log.warn({ err: e.message }, 'tile freshness: LISTEN connection lost');
    });
    client.on('end', () => {
      this.connected = false;
      if (this.stopped || this.client !== client) return;
      this.client = undefined;
      this.scheduleReconnect();
    });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      const id = Number(msg.payload);
      this.enqueue(() => this.fetchAndApply(id));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (e) {
      this.ctx.log.warn({ err: (e as Error).message }, 'tile freshness: cannot LISTEN; retrying');
      await client.end().catch(() => undefined);
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.connected = true;
    if (reconnect) this.enqueue(() => this.bumpAll('reconnect'));
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    // while disconnected nothing is known about changes: serve no cached tile of tracked tables
    for (const t of this.tracked) this.engine.bypass.add(t);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.listen(true);
    }, 1000);
    this.reconnectTimer.unref();
  }

  /** After a connection loss: bump every tracked table's version (events may have been missed). */
  async bumpAll(why: string): Promise<void> {
    for (const t of this.tracked) {
      try {
        await this.ctx.pool.query('SELECT geodata_tiles.bump($1, NULL, $2)', [t, why]);
      } catch (e) {
        this.ctx.log.warn({ table: t, err: (e as Error).message }, 'tile freshness: version bump failed');
      }
    }
    await this.loadVersions(this.ctx.pool as unknown as pg.Client);
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain
      .then(fn)
      .catch((e) => this.ctx.log.warn({ err: (e as Error).message }, 'tile freshness: applying a change failed'));
  }

  /** Resolves when every notification received so far has been applied. */
  idle(): Promise<void> {
    return this.chain;
  }

  private async fetchAndApply(id: number): Promise<void> {
    const r = await this.ctx.pool.query('SELECT id, table_name, op, boxes, version FROM geodata_tiles.changes WHERE id = $1', [id]);
    if (r.rows[0]) await this.apply(r.rows[0] as ChangeRow, false);
  }

  private async apply(row: ChangeRow, replaying: boolean): Promise<void> {
    const id = Number(row.id);
    const table = row.table_name;
    const version = Number(row.version);
    this.engine.stats.changes++;
    if (!row.boxes) {
      this.setVersion(table, Math.max(version, this.engine.versions.get(table) ?? 0));
    } else {
      const boxes: Extent[] = row.boxes.map((b) => ({ minx: b[0], miny: b[1], maxx: b[2], maxy: b[3] }));
      for (const layer of this.layersOf(table)) {
        if (this.engine.countTilesOver(layer, boxes, this.engine.opts.maxInvalidateTiles) > this.engine.opts.maxInvalidateTiles) {
          // too many tiles to delete one by one: bump the version (once across processes)
          this.engine.bypass.add(table);
          this.engine.bumpEpoch(layer.name);
          await this.ctx.pool.query('SELECT geodata_tiles.bump($1, $2, $3)', [
            table,
            this.engine.versions.get(table) ?? version,
            'large-edit',
          ]);
          if (replaying) await this.loadVersions(this.ctx.pool as unknown as pg.Client);
        } else {
          await this.engine.invalidateBoxes(layer, boxes);
        }
      }
    }
    if (id > this.lastId) this.lastId = id;
    this.saveStateSoon();
  }

  private saveStateSoon(): void {
    if (this.stateTimer) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      this.saveState();
    }, 500);
    this.stateTimer.unref();
  }

  private saveState(): void {
    const f = this.stateFile();
    if (!f) return;
    try {
      mkdirSync(path.dirname(f), { recursive: true });
      const tmp = `${f}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ lastChangeId: this.lastId }));
      renameSync(tmp, f);
    } catch (e) {
      this.ctx.log.warn({ err: (e as Error).message }, 'tile freshness: cannot save state');
    }
  }

  /** For tests: drop the LISTEN connection as a network failure would. */
  simulateConnectionLoss(): void {
    const c = this.client as unknown as { connection?: { stream?: { destroy(): void } } } | undefined;
    c?.connection?.stream?.destroy();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.stateTimer) {
      clearTimeout(this.stateTimer);
      this.stateTimer = undefined;
    }
    await this.chain.catch(() => undefined);
    if (this.lastId) this.saveState();
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}

function quote(id: string): string {
  return `"${id.replace(/"/g, '""')}"`;
}
