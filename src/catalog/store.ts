/**
 * PostGIS storage of the catalogue: schema migration, upserts, reads and searches.
 *
 * Full-text search uses the text search configuration `geodata_catalog.french_unaccent`: the
 * `french` snowball stemmer after the `unaccent` dictionary, so `reseau routier` matches
 * « Réseau routier » and `routes` matches « route ». Spatial search uses a GiST index on the
 * CRS84 extent.
 */
import { runDdl } from '../db/ddl.js';
import type pg from 'pg';
import type { CatalogRecord } from './model.js';
import { indexFromRecord } from './queryables.js';

export const CATALOG_SCHEMA = 'geodata_catalog';
export const TS_CONFIG = `${CATALOG_SCHEMA}.french_unaccent`;

/** The catalogue schema of an application (config `catalog.schema`, default geodata_catalog). */
export function schemaOf(ctx: { config: { catalog?: { schema?: string } } }): string {
  return ctx.config.catalog?.schema ?? CATALOG_SCHEMA;
}
const LOCK_KEY = 7_202_611; // advisory lock for migration and sync

const migrationSql = (S: string) => `
-- the version trigger (below) fires at once in here: no event left pending for the DDL that follows
SET CONSTRAINTS ALL IMMEDIATE;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE SCHEMA IF NOT EXISTS ${S};
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
                  WHERE n.nspname = '${S}' AND c.cfgname = 'french_unaccent') THEN
    CREATE TEXT SEARCH CONFIGURATION ${S}.french_unaccent (COPY = pg_catalog.french);
    ALTER TEXT SEARCH CONFIGURATION ${S}.french_unaccent
      ALTER MAPPING FOR hword, hword_part, word, asciiword, asciihword, hword_asciipart WITH unaccent, french_stem;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS ${S}.records (
  identifier      text PRIMARY KEY,
  code_space      text,
  type            text NOT NULL,
  title           text NOT NULL,
  abstract        text NOT NULL DEFAULT '',
  keywords        text[] NOT NULL DEFAULT '{}',
  themes          jsonb NOT NULL DEFAULT '[]',
  licence         jsonb,
  access_rights   text,
  rights          text,
  contact         jsonb,
  publisher       jsonb,
  organisation    text,
  created         text,
  issued          text,
  modified        text,
  temporal_start  text,
  temporal_end    text,
  frequency       text,
  language        text NOT NULL DEFAULT 'fre',
  lineage         text,
  extent          geometry(Polygon, 4326),
  crs             integer[] NOT NULL DEFAULT '{}',
  feature_count   bigint,
  links           jsonb NOT NULL DEFAULT '[]',
  landing_page    text,
  layer_name      text,
  service_type    text,
  operates_on     text[] NOT NULL DEFAULT '{}',
  source          text NOT NULL DEFAULT 'local',
  source_id       text,
  harvested_at    timestamptz,
  metadata_modified timestamptz NOT NULL DEFAULT now(),
  tsv             tsvector
);
-- the lossless store (docs/catalogue-store.md): source document, its schema, the queryable index
ALTER TABLE ${S}.records ADD COLUMN IF NOT EXISTS record_schema text NOT NULL DEFAULT 'local';
ALTER TABLE ${S}.records ADD COLUMN IF NOT EXISTS source_doc text;
ALTER TABLE ${S}.records ADD COLUMN IF NOT EXISTS q jsonb NOT NULL DEFAULT '{}';
-- declared conformity (ISO DQ_ConformanceResult) and the metadata quality report (inspire.ts, docs/catalogue-store.md)
ALTER TABLE ${S}.records ADD COLUMN IF NOT EXISTS conformity jsonb NOT NULL DEFAULT '[]';
ALTER TABLE ${S}.records ADD COLUMN IF NOT EXISTS quality jsonb;
-- CSW-T and imports refuse an identifier differing only in case from an existing one (looked up here)
CREATE INDEX IF NOT EXISTS records_identifier_lower_idx ON ${S}.records (lower(identifier));
-- derived records deleted through CSW-T stay deleted until the setting or the layer changes
CREATE TABLE IF NOT EXISTS ${S}.suppressed (identifier text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
-- CSW Harvest requests with a HarvestInterval: re-run when due (schedule.ts)
CREATE TABLE IF NOT EXISTS ${S}.harvest_schedule (
  name text PRIMARY KEY,
  source jsonb NOT NULL,
  every_seconds integer NOT NULL CHECK (every_seconds > 0),
  next_run timestamptz NOT NULL,
  last_run timestamptz,
  last_status text
);
CREATE INDEX IF NOT EXISTS records_extent_gix ON ${S}.records USING gist (extent);
CREATE INDEX IF NOT EXISTS records_tsv_gin ON ${S}.records USING gin (tsv);
-- AnyText: a full-text predicate must be a bare 'tsv @@ query' to use records_tsv_gin (a
-- coalesce() around it hides it from the planner), so tsv is never NULL
UPDATE ${S}.records SET tsv = ''::tsvector WHERE tsv IS NULL;
ALTER TABLE ${S}.records ALTER COLUMN tsv SET DEFAULT ''::tsvector, ALTER COLUMN tsv SET NOT NULL;
-- AnyText LIKE '%fragment%': accent- and case-insensitive substring match of the record's text,
-- folded once when stored (anytext_fold: lower-cased, unaccented; fold() = unaccent with its
-- dictionary named, hence immutable) and found through a trigram index — a match never unaccents a document at query time
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DROP INDEX IF EXISTS ${S}.records_anytext_trgm;
DO $$
DECLARE ua text; tg text;
BEGIN
  SELECT n.nspname INTO ua FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent';
  SELECT n.nspname INTO tg FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
  EXECUTE format('CREATE OR REPLACE FUNCTION ${S}.fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS %L',
    format('SELECT %I.unaccent(%L::regdictionary, $1)', ua, quote_ident(ua) || '.unaccent'));
  -- lower-cased too: LIKE on it is much cheaper than ILIKE, which lower-cases every row again
  ALTER TABLE ${S}.records ADD COLUMN IF NOT EXISTS anytext_fold text
    GENERATED ALWAYS AS (lower(${S}.fold(coalesce(q->'anytext'->>0, '')))) STORED;
  EXECUTE format('CREATE INDEX IF NOT EXISTS records_anytext_fold_trgm ON ${S}.records USING gin (anytext_fold %I.gin_trgm_ops)', tg);
END $$;
-- AnyText LIKE checks each candidate's folded text (some 11 kB, 4–5 kB compressed): kept in the
-- row rather than out of line (the default above 2 kB), it is read without four or five TOAST
-- look-ups — five times faster at 10,000 records (docs/performance.md). Records written before
-- are rewritten once, when the setting is first applied.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = '${S}.records'::regclass AND 'toast_tuple_target=8160' = ANY(coalesce(reloptions, '{}'))) THEN
    ALTER TABLE ${S}.records SET (toast_tuple_target = 8160);
    UPDATE ${S}.records SET q = q;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS records_source_idx ON ${S}.records (source);
CREATE INDEX IF NOT EXISTS records_type_idx ON ${S}.records (type);
-- the catalogue's version: one more in every transaction that changes a record (CSW-T, import,
-- harvest, derivation, whatever the process), visible exactly when its changes are (the same
-- commit). Keys the search cache (catalogcache.ts). The trigger is deferred to the commit and
-- counts once per transaction, so the version row is locked only for the instant of the commit.
CREATE TABLE IF NOT EXISTS ${S}.catalog_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), v bigint NOT NULL);
INSERT INTO ${S}.catalog_version (one, v) VALUES (true, 1) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION ${S}.bump_version() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF coalesce(current_setting('geodata.version_bumped_${S}', true), '') <> txid_current()::text THEN
    PERFORM set_config('geodata.version_bumped_${S}', txid_current()::text, true);
    UPDATE ${S}.catalog_version SET v = v + 1;
  END IF;
  RETURN NULL;
END $f$;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '${S}.records'::regclass AND tgname = 'records_version') THEN
    CREATE CONSTRAINT TRIGGER records_version AFTER INSERT OR UPDATE OR DELETE ON ${S}.records
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${S}.bump_version();
  END IF;
END $$;
`;

/**
 * The catalogue's version: catalog_version (bumped by every committed change of a record) with the
 * table's identity (a catalogue dropped and created again starts a new series).
 */
export async function catalogVersion(pool: pg.Pool, schema = CATALOG_SCHEMA): Promise<string> {
  const r = await pool.query<{ v: string }>(
    `SELECT '${schema}.catalog_version'::regclass::oid || '.' || v AS v FROM ${schema}.catalog_version`,
  );
  return r.rows[0]?.v ?? '0';
}

/** Create the catalogue schema, text search configuration and table; safe to run any number of times. */
/** `schema` is for tests that need a catalogue of their own. */
export async function migrateCatalog(pool: pg.Pool, schema = CATALOG_SCHEMA): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  await runDdl(pool, migrationSql(schema));
}

const upsertSql = (S: string) => `
INSERT INTO ${S}.records AS r (identifier, code_space, type, title, abstract, keywords, themes, licence, access_rights, rights,
  contact, publisher, organisation, created, issued, modified, temporal_start, temporal_end, frequency, language, lineage, extent, crs,
  feature_count, links, landing_page, layer_name, service_type, operates_on, source, source_id, harvested_at, metadata_modified, tsv,
  record_schema, source_doc, q, conformity, quality)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
  CASE WHEN $22::float8[] IS NULL THEN NULL
       WHEN $38::int = 4326 THEN ST_MakeEnvelope(($22::float8[])[1], ($22::float8[])[2], ($22::float8[])[3], ($22::float8[])[4], 4326)
       ELSE ST_Envelope(ST_Transform(ST_MakeEnvelope(($22::float8[])[1], ($22::float8[])[2], ($22::float8[])[3], ($22::float8[])[4], $38::int), 4326)) END,
  $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, coalesce($33::timestamptz, now()),
  setweight(to_tsvector('${S}.french_unaccent', coalesce($4, '')), 'A') ||
  setweight(to_tsvector('${S}.french_unaccent', array_to_string($6::text[], ' ') || ' ' || coalesce($34, '')), 'B') ||
  setweight(to_tsvector('${S}.french_unaccent', coalesce($5, '') || ' ' || coalesce($21, '') || ' ' || coalesce($13, '')), 'C') ||
  setweight(to_tsvector('${S}.french_unaccent', coalesce($37::jsonb->'anytext'->>0, '')), 'D'),
  $35, $36, $37, $39, $40)
ON CONFLICT (identifier) DO UPDATE SET code_space = EXCLUDED.code_space, type = EXCLUDED.type, title = EXCLUDED.title,
  abstract = EXCLUDED.abstract, keywords = EXCLUDED.keywords, themes = EXCLUDED.themes, licence = EXCLUDED.licence,
  access_rights = EXCLUDED.access_rights, rights = EXCLUDED.rights, contact = EXCLUDED.contact, publisher = EXCLUDED.publisher,
  organisation = EXCLUDED.organisation, created = EXCLUDED.created, issued = EXCLUDED.issued, modified = EXCLUDED.modified,
  temporal_start = EXCLUDED.temporal_start, temporal_end = EXCLUDED.temporal_end, frequency = EXCLUDED.frequency,
  language = EXCLUDED.language, lineage = EXCLUDED.lineage, extent = EXCLUDED.extent, crs = EXCLUDED.crs,
  feature_count = EXCLUDED.feature_count, links = EXCLUDED.links, landing_page = EXCLUDED.landing_page,
  layer_name = EXCLUDED.layer_name, service_type = EXCLUDED.service_type, operates_on = EXCLUDED.operates_on,
  source = EXCLUDED.source, source_id = EXCLUDED.source_id, harvested_at = EXCLUDED.harvested_at,
  metadata_modified = CASE WHEN (r.title, r.abstract, r.keywords, r.themes, r.licence, r.modified, r.links, r.feature_count, r.source_doc)
      IS NOT DISTINCT FROM (EXCLUDED.title, EXCLUDED.abstract, EXCLUDED.keywords, EXCLUDED.themes, EXCLUDED.licence, EXCLUDED.modified, EXCLUDED.links, EXCLUDED.feature_count, EXCLUDED.source_doc)
    THEN r.metadata_modified ELSE EXCLUDED.metadata_modified END,
  tsv = EXCLUDED.tsv, record_schema = EXCLUDED.record_schema, source_doc = EXCLUDED.source_doc, q = EXCLUDED.q,
  conformity = EXCLUDED.conformity, quality = EXCLUDED.quality
  WHERE r.source = EXCLUDED.source`;

function upsertParams(r: CatalogRecord): unknown[] {
  return [
    r.identifier,
    r.codeSpace ?? null,
    r.type,
    r.title,
    r.abstract,
    r.keywords,
    JSON.stringify(r.themes),
    r.licence ? JSON.stringify(r.licence) : null,
    r.accessRights ?? null,
    r.rights ?? null,
    r.contact ? JSON.stringify(r.contact) : null,
    r.publisher ? JSON.stringify(r.publisher) : null,
    r.publisher?.organisation ?? r.publisher?.name ?? r.contact?.organisation ?? null,
    r.created ?? null,
    r.issued ?? null,
    r.modified ?? null,
    r.temporalStart ?? null,
    r.temporalEnd ?? null,
    r.frequency ?? null,
    r.language,
    r.lineage ?? null,
    r.bbox,
    r.crs,
    r.featureCount ?? null,
    JSON.stringify(r.links),
    r.landingPage ?? null,
    r.layerName ?? null,
    r.serviceType ?? null,
    r.operatesOn,
    r.source,
    r.sourceId ?? null,
    r.harvestedAt ?? null,
    // the source document's own metadata date (ISO dateStamp); else the time of the change
    r.recordSchema === 'iso19139' ? r.metadataModified : null,
    r.themes.map((t) => t.label).join(' '),
    r.recordSchema ?? 'local',
    r.sourceDoc ?? null,
    JSON.stringify(r.index ?? indexFromRecord(r)),
    r.bboxEpsg ?? 4326,
    JSON.stringify(r.conformity ?? []),
    r.quality ? JSON.stringify(r.quality) : null,
  ];
}

/**
 * Replace the records of one source by `records` in one transaction: upsert each, delete the
 * source's records that are not in the list. Either everything is applied or nothing is.
 */
export async function replaceSource(
  pool: pg.Pool,
  source: string,
  records: CatalogRecord[],
  schema = CATALOG_SCHEMA,
): Promise<{ upserted: number; deleted: number }> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY + 1]);
    const upsert = upsertSql(schema);
    for (const r of records) await c.query(upsert, upsertParams({ ...r, source }));
    const del = await c.query(`DELETE FROM ${schema}.records WHERE source = $1 AND NOT (identifier = ANY($2::text[]))`, [
      source,
      records.map((r) => r.identifier),
    ]);
    await c.query('COMMIT');
    return { upserted: records.length, deleted: del.rowCount ?? 0 };
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** Columns read back into a CatalogRecord. */
export const SELECT_COLUMNS = `identifier, code_space, type, title, abstract, keywords, themes, licence, access_rights, rights, contact, publisher,
  created, issued, modified, temporal_start, temporal_end, frequency, language, lineage,
  CASE WHEN extent IS NULL THEN NULL ELSE ARRAY[ST_XMin(extent), ST_YMin(extent), ST_XMax(extent), ST_YMax(extent)] END AS bbox,
  crs, feature_count, links, landing_page, layer_name, service_type, operates_on, source, source_id, harvested_at, metadata_modified,
  record_schema, source_doc, q - 'anytext' AS q, conformity, quality`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function rowToRecord(row: any): CatalogRecord {
  return {
    identifier: row.identifier,
    codeSpace: row.code_space,
    type: row.type,
    title: row.title,
    abstract: row.abstract,
    keywords: row.keywords ?? [],
    themes: row.themes ?? [],
    licence: row.licence,
    accessRights: row.access_rights,
    rights: row.rights,
    contact: row.contact,
    publisher: row.publisher,
    created: row.created,
    issued: row.issued,
    modified: row.modified,
    temporalStart: row.temporal_start,
    temporalEnd: row.temporal_end,
    frequency: row.frequency,
    language: row.language,
    lineage: row.lineage,
    bbox: row.bbox ? (row.bbox.map(Number) as [number, number, number, number]) : null,
    crs: row.crs ?? [],
    featureCount: row.feature_count === null || row.feature_count === undefined ? null : Number(row.feature_count),
    links: row.links ?? [],
    landingPage: row.landing_page,
    layerName: row.layer_name,
    serviceType: row.service_type,
    operatesOn: row.operates_on ?? [],
    source: row.source,
    sourceId: row.source_id,
    harvestedAt: row.harvested_at ? new Date(row.harvested_at).toISOString() : null,
    metadataModified: new Date(row.metadata_modified).toISOString(),
    recordSchema: row.record_schema ?? 'local',
    sourceDoc: row.source_doc ?? null,
    index: row.q ?? undefined,
    conformity: row.conformity ?? [],
    quality: row.quality ?? null,
  };
}

/**
 * Run `fn` in one transaction on one connection (CSW-T: every action of a Transaction request
 * applies, or none).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY + 1]);
    const r = await fn(c);
    await c.query('COMMIT');
    return r;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** Upsert one record of `source`; returns false when the identifier belongs to another source. */
export async function upsertRecord(c: pg.PoolClient, r: CatalogRecord, schema = CATALOG_SCHEMA): Promise<boolean> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  const res = await c.query(upsertSql(schema), upsertParams(r));
  return (res.rowCount ?? 0) > 0;
}
