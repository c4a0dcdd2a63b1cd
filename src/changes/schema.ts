/**
 * The change log in the database: statement-level triggers on the published tables write each
 * change into geodata_tiles.changes (with the old and new boxes of the changed rows, up to
 * `bulkRows` rows; none for bulk statements and TRUNCATE, which bump the table's data version in
 * geodata_tiles.versions) and pg_notify('geodata_tiles', id). The schema keeps its historical
 * name: existing databases keep their log and their triggers.
 */
import type pg from 'pg';
import type { Layer } from '../registry/types.js';

/** The NOTIFY channel the triggers signal on (payload: the change id). */
export const CHANNEL = 'geodata_tiles';

/** Operations the triggers log (the other rows of the log are data-version bumps, not edits). */
export const EDIT_OPS = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

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

const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;

/** Create the log, the version table and the trigger functions when missing (callers hold the setup lock). */
export async function ensureChangeLog(client: pg.PoolClient): Promise<void> {
  const have = await client.query(
    `SELECT to_regprocedure('geodata_tiles.on_change()') IS NOT NULL AS f, to_regprocedure('geodata_tiles.bump(text,bigint,text)') IS NOT NULL AS b`,
  );
  if (!have.rows[0].f || !have.rows[0].b) await client.query(SETUP_SQL);
}

/** Whether the relation is a table (views and foreign tables cannot carry the triggers). */
export async function isTable(client: pg.PoolClient, layer: Layer): Promise<boolean> {
  const r = await client.query(
    `SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [layer.schema, layer.table],
  );
  return Boolean(r.rows[0] && ['r', 'p'].includes(r.rows[0].relkind));
}

/** The four statement triggers on a layer's table (those already there are kept), and its version row. */
export async function installTriggers(client: pg.PoolClient, layer: Layer, bulkRows: number): Promise<void> {
  const t = `${quote(layer.schema)}.${quote(layer.table)}`;
  const have = await client.query(
    `SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'geodata_tiles_%' AND NOT tgisinternal`,
    [t],
  );
  const names = new Set(have.rows.map((r) => r.tgname as string));
  const g = layer.geometryColumn.replace(/'/g, "''");
  const n = String(Math.max(0, Math.floor(bulkRows)));
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
  await client.query('INSERT INTO geodata_tiles.versions (table_name) VALUES ($1) ON CONFLICT DO NOTHING', [
    `${layer.schema}.${layer.table}`,
  ]);
}

/** Whether the four change triggers are on a layer's table. */
export async function hasTriggers(pool: pg.Pool, schema: string, table: string): Promise<boolean> {
  const r = await pool.query(
    `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'geodata_tiles_%' AND NOT tgisinternal`,
    [`${quote(schema)}.${quote(table)}`],
  );
  return r.rows[0].n >= 4;
}
