/**
 * Catalogue queries: the OGC core and APISO queryables mapped onto the records table, a filter
 * AST (from OGC Filter 1.1 or CQL text) compiled to SQL over those columns, and the paged search
 * shared by CSW GetRecords and the JSON search API.
 */
import type pg from 'pg';
import type { FilterNode, Operand, TemporalNode, TemporalOp } from '../filter/ast.js';
import { FilterError, invalidValue } from '../filter/errors.js';
import { CATALOG_SCHEMA, SELECT_COLUMNS, rowToRecord } from './store.js';
import type { CatalogRecord } from './model.js';

import { APISO_QUERYABLES, CORE_QUERYABLES, QUERYABLE_DEFS, type QueryableDef } from './queryables.js';

export { APISO_QUERYABLES, CORE_QUERYABLES };

export type Queryable = QueryableDef;

/** Values of a queryable, as a set-returning SQL expression over the records row. */
export function valuesSql(q: QueryableDef): string {
  return `jsonb_array_elements_text(coalesce(q->'${q.key}', '[]'))`;
}

export function queryableFor(name: string, locator = 'constraint'): QueryableDef {
  const bare = name
    .replace(/^.*[/]/, '')
    .replace(/^[^:]*:/, '')
    .toLowerCase();
  const q = QUERYABLE_DEFS[bare];
  if (!q)
    throw invalidValue(`'${name}' is not a queryable of this catalogue (e.g. ${CORE_QUERYABLES.slice(0, 6).join(', ')}, apiso:*)`, locator);
  return q;
}

function literalValue(o: Operand): string | number | boolean {
  if (o.kind === 'literal') return o.value;
  throw invalidValue('only comparisons between a queryable and a literal are supported');
}

function propAndValue(left: Operand, right: Operand): { prop: string; value: string | number | boolean; swapped: boolean } {
  if (left.kind === 'property' && right.kind === 'literal') return { prop: left.name, value: right.value, swapped: false };
  if (right.kind === 'property' && left.kind === 'literal') return { prop: right.name, value: left.value, swapped: true };
  throw invalidValue('a comparison needs one queryable and one literal');
}

const SWAP: Record<string, string> = { '=': '=', '<>': '<>', '<': '>', '>': '<', '<=': '>=', '>=': '<=' };

function likeToText(pattern: string): string {
  return pattern.replace(/\\(.)/g, '$1').replace(/[%_]/g, ' ').trim();
}

/** A date literal compared with stored ISO 8601 strings: '2004-01-01T00:00:00Z' and '2004-01-01' order alike. */
function dateKey(v: string): string {
  return v.trim().replace(/T00:00:00(\.0+)?(Z|[+-]00:?00)?$/, '');
}

/** Text standing for an open start / end: ISO 8601 strings of years 0001-9998 sort between them. */
const MIN_TIME = '0000';
const MAX_TIME = '9999-99';

/**
 * Allen's relations (as CQL2 and FES 2.0 define them) between a property's interval [b, e] and a
 * literal interval [s, f], each an SQL expression over ISO 8601 text (open ends as MIN_TIME /
 * MAX_TIME). An instant is the interval [t, t].
 */
function allen(op: TemporalOp, b: string, e: string, s: string, f: string): string {
  switch (op) {
    case 'before':
      return `${e} < ${s}`;
    case 'after':
      return `${b} > ${f}`;
    case 'tmeets':
      return `${e} = ${s}`;
    case 'tmetby':
      return `${b} = ${f}`;
    case 'toverlaps':
      return `(${b} < ${s} AND ${e} > ${s} AND ${e} < ${f})`;
    case 'toverlappedby':
      return `(${b} > ${s} AND ${b} < ${f} AND ${e} > ${f})`;
    case 'tstarts':
      return `(${b} = ${s} AND ${e} < ${f})`;
    case 'tstartedby':
      return `(${b} = ${s} AND ${e} > ${f})`;
    case 'during':
      return `(${b} > ${s} AND ${e} < ${f})`;
    case 'tcontains':
      return `(${b} < ${s} AND ${e} > ${f})`;
    case 'tfinishes':
      return `(${e} = ${f} AND ${b} > ${s})`;
    case 'tfinishedby':
      return `(${e} = ${f} AND ${b} < ${s})`;
    case 'tequals':
      return `(${b} = ${s} AND ${e} = ${f})`;
    case 'tintersects':
      return `(${b} <= ${f} AND ${e} >= ${s})`;
    case 'tdisjoint':
      return `(${e} < ${s} OR ${b} > ${f})`;
  }
}

/**
 * A temporal operator over the index: on a date queryable (dct:modified, apiso:RevisionDate…) each
 * value is an instant and one satisfying value is enough; on the temporal extent (apiso:TempExtent,
 * `time`) the record's interval from TempExtent_begin to TempExtent_end, a missing end being open
 * (an ongoing extent). A record with no value satisfies no temporal operator (two-valued logic).
 */
function temporalSql(node: TemporalNode, q: QueryableDef, p: (v: unknown) => string): string {
  const v = node.value;
  const s = v.type === 'instant' ? dateKey(v.value) : v.start ? dateKey(v.start.value) : MIN_TIME;
  const f = v.type === 'instant' ? s : v.end ? dateKey(v.end.value) : MAX_TIME;
  const ls = `${p(s)}::text`;
  const lf = s === f ? ls : `${p(f)}::text`;
  if (q.kind === 'date') return `EXISTS (SELECT 1 FROM ${valuesSql(q)} k WHERE ${allen(node.op, 'k', 'k', ls, lf)})`;
  if (q.kind === 'interval') {
    const b = `(q->'tempextent_begin'->>0)`;
    const e = `(q->'tempextent_end'->>0)`;
    return `((${b} IS NOT NULL OR ${e} IS NOT NULL) AND ${allen(node.op, `coalesce(${b}, '${MIN_TIME}')`, `coalesce(${e}, '${MAX_TIME}')`, ls, lf)})`;
  }
  throw invalidValue(
    `'${node.property}' is not a date: temporal operators apply to dct:modified, dc:date, apiso:CreationDate, apiso:PublicationDate, apiso:RevisionDate, apiso:TempExtent_begin, apiso:TempExtent_end and apiso:TempExtent`,
  );
}

/**
 * Compile a filter AST over the records table. Values are bind parameters.
 *
 * Two-valued logic (OGC 07-006r1 and Filter 1.1 have no unknown): every predicate is true or
 * false — a record without a value for a property, or without an envelope, makes a comparison or
 * a spatial test false, so ogc:Not of it is true. A multi-valued property (dc:subject…) satisfies
 * a comparison when one of its values does.
 */
export function compileCatalogFilter(node: FilterNode, params: unknown[], schema = CATALOG_SCHEMA): string {
  const tsConfig = `${schema}.french_unaccent`;
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const any = (q: QueryableDef, cond: string) => `EXISTS (SELECT 1 FROM ${valuesSql(q)} k WHERE ${cond})`;
  switch (node.kind) {
    case 'and':
      return `(${node.args.map((a) => compileCatalogFilter(a, params, schema)).join(' AND ')})`;
    case 'or':
      return `(${node.args.map((a) => compileCatalogFilter(a, params, schema)).join(' OR ')})`;
    case 'not':
      return `(NOT ${compileCatalogFilter(node.arg, params, schema)})`;
    case 'include':
      return 'TRUE';
    case 'exclude':
      return 'FALSE';
    case 'resourceId':
      return `identifier = ANY(${p(node.ids)}::text[])`;
    case 'compare': {
      const { prop, value, swapped } = propAndValue(node.left, node.right);
      const q = queryableFor(prop);
      const op = swapped ? SWAP[node.op] : node.op;
      const v = String(value);
      if (q.kind === 'fulltext') {
        // tsv is never NULL (store.ts): bare predicates, which the GIN index serves
        if (op === '=') return `(tsv @@ plainto_tsquery('${tsConfig}', ${p(v)}))`;
        if (op === '<>') return `NOT (tsv @@ plainto_tsquery('${tsConfig}', ${p(v)}))`;
        throw invalidValue(`AnyText supports =, <> and LIKE only`);
      }
      if (q.kind === 'geometry') throw invalidValue(`'${prop}' is a geometry: use a spatial operator (BBOX, Intersects…)`);
      if (q.kind === 'interval') throw invalidValue(`'${prop}' is an interval: use a temporal operator (T_INTERSECTS, During…)`);
      if (q.kind === 'date') {
        // ISO 8601 strings order as dates; a date-time at midnight UTC equals its date
        const lit = p(dateKey(v));
        if (op === '<>') return `NOT ${any(q, `k = ${lit}`)}`;
        return any(q, `k ${op} ${lit}`);
      }
      const cmp = (o: string) => (!node.matchCase ? `lower(k) ${o} lower(${p(v)})` : `k ${o} ${p(v)}`);
      if (op === '<>') return `NOT ${any(q, cmp('='))}`;
      return any(q, cmp(op));
    }
    case 'like': {
      if (node.operand.kind !== 'property') throw invalidValue('LIKE needs a queryable on the left');
      const q = queryableFor(node.operand.name);
      const op = node.matchCase ? 'LIKE' : 'ILIKE';
      if (q.kind === 'fulltext') {
        // words: stemmed full-text match; anything else (fragments): accent-insensitive substring
        const words = likeToText(node.pattern);
        // (neither side can be NULL; each is served by its index: records_tsv_gin, records_anytext_fold_trgm)
        return `(tsv @@ plainto_tsquery('${tsConfig}', ${p(words)}) OR anytext_fold LIKE lower(${schema}.fold(${p(node.pattern)})))`;
      }
      if (q.kind === 'geometry' || q.kind === 'interval') throw invalidValue(`'${node.operand.name}' is a geometry or an interval`);
      return any(q, `unaccent(k) ${op} unaccent(${p(node.pattern)})`);
    }
    case 'between': {
      if (node.operand.kind !== 'property') throw invalidValue('BETWEEN needs a queryable');
      const q = queryableFor(node.operand.name);
      if (q.kind === 'geometry' || q.kind === 'fulltext' || q.kind === 'interval')
        throw invalidValue(`'${node.operand.name}' cannot be compared with BETWEEN`);
      const lo = String(literalValue(node.lower));
      const hi = String(literalValue(node.upper));
      return q.kind === 'date' ? any(q, `k BETWEEN ${p(dateKey(lo))} AND ${p(dateKey(hi))}`) : any(q, `k BETWEEN ${p(lo)} AND ${p(hi)}`);
    }
    case 'in': {
      if (node.operand.kind !== 'property') throw invalidValue('IN needs a queryable');
      const q = queryableFor(node.operand.name);
      if (q.kind === 'geometry' || q.kind === 'fulltext' || q.kind === 'interval')
        throw invalidValue(`'${node.operand.name}' cannot be used with IN`);
      const vals = node.values.map((v) => String(literalValue(v)));
      return any(q, `k = ANY(${p(vals)}::text[])`);
    }
    case 'isNull': {
      if (node.operand.kind !== 'property') throw invalidValue('IS NULL needs a queryable');
      const q = queryableFor(node.operand.name);
      if (q.kind === 'geometry') return 'extent IS NULL';
      if (q.kind === 'interval') return `(q->'tempextent_begin' IS NULL AND q->'tempextent_end' IS NULL)`;
      return `NOT ${any(q, 'TRUE')}`;
    }
    case 'spatial': {
      if (node.property) {
        const q = queryableFor(node.property);
        if (q.kind !== 'geometry') throw invalidValue(`'${node.property}' is not a geometry queryable (use ows:BoundingBox)`);
      }
      const g = `ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(${p(JSON.stringify(node.geometry.geometry))}), ${Number(node.geometry.epsg)}), 4326)`;
      const t = (e: string) => `coalesce(${e}, false)`;
      switch (node.op) {
        case 'bbox':
        case 'intersects':
          return t(`(extent && ${g} AND ST_Intersects(extent, ${g}))`);
        case 'within':
          return t(`ST_Within(extent, ${g})`);
        case 'contains':
          return t(`ST_Contains(extent, ${g})`);
        case 'disjoint':
          return `NOT ${t(`ST_Intersects(extent, ${g})`)}`;
        case 'equals':
          return t(`ST_Equals(extent, ${g})`);
        case 'touches':
          return t(`ST_Touches(extent, ${g})`);
        case 'crosses':
          return t(`ST_Crosses(extent, ${g})`);
        case 'overlaps':
          return t(`ST_Overlaps(extent, ${g})`);
        default:
          throw invalidValue(`spatial operator '${node.op}' is not supported by the catalogue`);
      }
    }
    case 'temporal':
      return temporalSql(node, queryableFor(node.property), p);
    default:
      throw new FilterError('unsupported filter');
  }
}

export interface SortKey {
  sql: string;
  desc: boolean;
}

export function sortKeyFor(name: string, desc: boolean, locator = 'sortby'): SortKey {
  const q = queryableFor(name, locator);
  if (q.kind === 'geometry' || q.kind === 'fulltext') throw invalidValue(`cannot sort by '${name}'`, locator);
  // the first value (an interval: its begin); records without one come last whatever the direction
  return { sql: `(q->'${q.kind === 'interval' ? 'tempextent_begin' : q.key}'->>0)`, desc };
}

export interface SearchOptions {
  where: string[];
  params: unknown[];
  sort: SortKey[];
  /** 0-based offset. */
  offset: number;
  limit: number;
  /** Text ranked first when set (JSON API q=). */
  rankQuery?: string;
}

export interface SearchResult {
  matched: number;
  records: CatalogRecord[];
}

/**
 * The statement of a search: one row with the exact number of matching records (`n`) and the
 * identifiers of the page, in order (`ids`). The filter is evaluated once (the matches, with their
 * sort keys only, are materialised, then counted and sorted); the page's rows are read afterwards by
 * identifier (getRecords), so no wide row (source document, index) is carried through a sort or an
 * OFFSET. Without a filter and without a sort key, both come from the primary key index.
 */
export function searchSql(o: SearchOptions, schema = CATALOG_SCHEMA): { sql: string; params: unknown[] } {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  const where = o.where.length ? `WHERE ${o.where.join(' AND ')}` : '';
  const params = [...o.params];
  const keys = o.sort.map((s, i) => ({ expr: s.sql, col: `s${i}`, dir: `${s.desc ? 'DESC' : 'ASC'} NULLS LAST` }));
  if (o.rankQuery) {
    params.push(o.rankQuery);
    keys.unshift({ expr: `ts_rank(tsv, websearch_to_tsquery('${schema}.french_unaccent', $${params.length}))`, col: 'r', dir: 'DESC' });
  }
  params.push(o.limit, o.offset);
  const lim = `LIMIT $${params.length - 1} OFFSET $${params.length}`;
  // identifier last: a stable order across pages
  const order = [...keys.map((k) => `${k.col} ${k.dir}`), 'identifier ASC'].join(', ');
  if (!where && !keys.length)
    return {
      sql: `SELECT (SELECT count(*) FROM ${schema}.records)::text AS n,
        ARRAY(SELECT identifier FROM ${schema}.records ORDER BY identifier ASC ${lim}) AS ids`,
      params,
    };
  const cols = ['identifier', ...keys.map((k) => `${k.expr} AS ${k.col}`)].join(', ');
  return {
    sql: `WITH m AS MATERIALIZED (SELECT ${cols} FROM ${schema}.records ${where})
      SELECT (SELECT count(*) FROM m)::text AS n, ARRAY(SELECT identifier FROM m ORDER BY ${order} ${lim}) AS ids`,
    params,
  };
}

export async function searchRecords(pool: pg.Pool, o: SearchOptions, schema = CATALOG_SCHEMA): Promise<SearchResult> {
  const { sql, params } = searchSql(o, schema);
  const r = await pool.query<{ n: string; ids: string[] }>(sql, params);
  const matched = Number(r.rows[0].n);
  const ids = r.rows[0].ids;
  return { matched, records: ids.length ? await getRecords(pool, ids, schema) : [] };
}

export async function getRecords(pool: pg.Pool, ids: string[], schema = CATALOG_SCHEMA): Promise<CatalogRecord[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  const r = await pool.query(`SELECT ${SELECT_COLUMNS} FROM ${schema}.records WHERE identifier = ANY($1::text[])`, [ids]);
  const byId = new Map(r.rows.map((row) => [row.identifier as string, rowToRecord(row)]));
  return ids.map((i) => byId.get(i)).filter((x): x is CatalogRecord => Boolean(x));
}
