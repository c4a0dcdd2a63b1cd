/**
 * Catalogue queries: the OGC core and APISO queryables mapped onto the records table, a filter
 * AST (from OGC Filter 1.1 or CQL text) compiled to SQL over those columns, and the paged search
 * shared by CSW GetRecords and the JSON search API.
 */
import type pg from 'pg';
import type { FilterNode, Operand } from '../filter/ast.js';
import { FilterError, invalidValue } from '../filter/errors.js';
import { CATALOG_SCHEMA, SELECT_COLUMNS, rowToRecord } from './store.js';
import type { CatalogRecord } from './model.js';

type Kind = 'text' | 'array' | 'fulltext' | 'geometry' | 'number' | 'date';

interface Queryable {
  kind: Kind;
  /** SQL expression over the records table (alias-free). */
  sql: string;
}

const ANYTEXT_SQL = `concat_ws(' ', title, abstract, array_to_string(keywords, ' '), organisation, identifier)`;
const SUBJECT_SQL = `(keywords || ARRAY(SELECT t->>'label' FROM jsonb_array_elements(themes) t) || ARRAY(SELECT t->>'uri' FROM jsonb_array_elements(themes) t))`;

/** Queryables by lower-cased bare name (namespace prefix stripped: dc:title, apiso:Title, csw:AnyText …). */
export const QUERYABLES: Record<string, Queryable> = {
  anytext: { kind: 'fulltext', sql: ANYTEXT_SQL },
  title: { kind: 'text', sql: 'title' },
  alternatetitle: { kind: 'text', sql: 'title' },
  abstract: { kind: 'text', sql: 'abstract' },
  description: { kind: 'text', sql: 'abstract' },
  subject: { kind: 'array', sql: SUBJECT_SQL },
  keyword: { kind: 'array', sql: SUBJECT_SQL },
  topiccategory: { kind: 'array', sql: SUBJECT_SQL },
  type: { kind: 'text', sql: 'type' },
  identifier: { kind: 'text', sql: 'identifier' },
  resourceidentifier: { kind: 'text', sql: 'identifier' },
  fileidentifier: { kind: 'text', sql: 'identifier' },
  modified: { kind: 'date', sql: 'modified' },
  date: { kind: 'date', sql: 'modified' },
  revisiondate: { kind: 'date', sql: 'modified' },
  creationdate: { kind: 'date', sql: 'created' },
  publicationdate: { kind: 'date', sql: 'issued' },
  tempextent_begin: { kind: 'date', sql: 'temporal_start' },
  tempextent_end: { kind: 'date', sql: 'temporal_end' },
  format: { kind: 'array', sql: `ARRAY(SELECT l->>'format' FROM jsonb_array_elements(links) l WHERE l ? 'format')` },
  language: { kind: 'text', sql: 'language' },
  resourcelanguage: { kind: 'text', sql: 'language' },
  organisationname: { kind: 'text', sql: `coalesce(organisation, '')` },
  publisher: { kind: 'text', sql: `coalesce(organisation, '')` },
  creator: { kind: 'text', sql: `coalesce(organisation, '')` },
  rights: { kind: 'text', sql: `coalesce(licence->>'url', rights, '')` },
  servicetype: { kind: 'text', sql: `coalesce(service_type, '')` },
  operateson: { kind: 'array', sql: 'operates_on' },
  crs: { kind: 'array', sql: `ARRAY(SELECT 'EPSG:' || c FROM unnest(crs) c)` },
  source: { kind: 'text', sql: 'source' },
  boundingbox: { kind: 'geometry', sql: 'extent' },
  bbox: { kind: 'geometry', sql: 'extent' },
  envelope: { kind: 'geometry', sql: 'extent' },
  geometry: { kind: 'geometry', sql: 'extent' },
};

/** Names advertised in GetCapabilities / GetDomain. */
export const CORE_QUERYABLES = [
  'csw:AnyText',
  'dc:title',
  'dc:subject',
  'dct:abstract',
  'dc:type',
  'dc:identifier',
  'dct:modified',
  'dc:format',
  'dc:language',
  'dc:publisher',
  'dc:rights',
  'ows:BoundingBox',
];
export const APISO_QUERYABLES = [
  'apiso:Subject',
  'apiso:Title',
  'apiso:Abstract',
  'apiso:AnyText',
  'apiso:Format',
  'apiso:Identifier',
  'apiso:Modified',
  'apiso:Type',
  'apiso:BoundingBox',
  'apiso:CRS',
  'apiso:AlternateTitle',
  'apiso:RevisionDate',
  'apiso:CreationDate',
  'apiso:PublicationDate',
  'apiso:OrganisationName',
  'apiso:ResourceLanguage',
  'apiso:ServiceType',
  'apiso:OperatesOn',
  'apiso:TempExtent_begin',
  'apiso:TempExtent_end',
  'apiso:Language',
  'apiso:KeywordType',
  'apiso:TopicCategory',
];

export function queryableFor(name: string, locator = 'constraint'): Queryable {
  const bare = name
    .replace(/^.*[/]/, '')
    .replace(/^[^:]*:/, '')
    .toLowerCase();
  const q = QUERYABLES[bare];
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

/** Compile a filter AST over the records table. Values are bind parameters. */
export function compileCatalogFilter(node: FilterNode, params: unknown[], schema = CATALOG_SCHEMA): string {
  const tsConfig = `${schema}.french_unaccent`;
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
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
        if (op === '=') return `tsv @@ plainto_tsquery('${tsConfig}', ${p(v)})`;
        if (op === '<>') return `NOT (tsv @@ plainto_tsquery('${tsConfig}', ${p(v)}))`;
        throw invalidValue(`AnyText supports =, <> and LIKE only`);
      }
      if (q.kind === 'geometry') throw invalidValue(`'${prop}' is a geometry: use a spatial operator (BBOX, Intersects…)`);
      if (q.kind === 'array') {
        const cmp = node.matchCase ? `k ${op} ${p(v)}` : `lower(k) ${op} lower(${p(v)})`;
        return op === '<>'
          ? `NOT EXISTS (SELECT 1 FROM unnest(${q.sql}) k WHERE ${cmp.replace('<>', '=')})`
          : `EXISTS (SELECT 1 FROM unnest(${q.sql}) k WHERE ${cmp})`;
      }
      if (!node.matchCase && q.kind === 'text') return `lower(${q.sql}) ${op} lower(${p(v)})`;
      return `${q.sql} ${op} ${p(v)}`;
    }
    case 'like': {
      if (node.operand.kind !== 'property') throw invalidValue('LIKE needs a queryable on the left');
      const q = queryableFor(node.operand.name);
      const op = node.matchCase ? 'LIKE' : 'ILIKE';
      if (q.kind === 'fulltext') {
        // words: stemmed full-text match; anything else (fragments): accent-insensitive substring
        const words = likeToText(node.pattern);
        return `(tsv @@ plainto_tsquery('${tsConfig}', ${p(words)}) OR unaccent(${q.sql}) ILIKE unaccent(${p(node.pattern)}))`;
      }
      if (q.kind === 'array') return `EXISTS (SELECT 1 FROM unnest(${q.sql}) k WHERE unaccent(k) ${op} unaccent(${p(node.pattern)}))`;
      if (q.kind === 'geometry') throw invalidValue(`'${node.operand.name}' is a geometry`);
      return `unaccent(${q.sql}) ${op} unaccent(${p(node.pattern)})`;
    }
    case 'between': {
      if (node.operand.kind !== 'property') throw invalidValue('BETWEEN needs a queryable');
      const q = queryableFor(node.operand.name);
      return `${q.sql} BETWEEN ${p(String(literalValue(node.lower)))} AND ${p(String(literalValue(node.upper)))}`;
    }
    case 'in': {
      if (node.operand.kind !== 'property') throw invalidValue('IN needs a queryable');
      const q = queryableFor(node.operand.name);
      const vals = node.values.map((v) => String(literalValue(v)));
      if (q.kind === 'array') return `${q.sql} && ${p(vals)}::text[]`;
      return `${q.sql} = ANY(${p(vals)}::text[])`;
    }
    case 'isNull': {
      if (node.operand.kind !== 'property') throw invalidValue('IS NULL needs a queryable');
      const q = queryableFor(node.operand.name);
      if (q.kind === 'array') return `cardinality(${q.sql}) = 0`;
      return `(${q.sql} IS NULL OR ${q.sql}::text = '')`;
    }
    case 'spatial': {
      if (node.property) {
        const q = queryableFor(node.property);
        if (q.kind !== 'geometry') throw invalidValue(`'${node.property}' is not a geometry queryable (use ows:BoundingBox)`);
      }
      const g = `ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(${p(JSON.stringify(node.geometry.geometry))}), ${Number(node.geometry.epsg)}), 4326)`;
      switch (node.op) {
        case 'bbox':
        case 'intersects':
          return `(extent && ${g} AND ST_Intersects(extent, ${g}))`;
        case 'within':
          return `ST_Within(extent, ${g})`;
        case 'contains':
          return `ST_Contains(extent, ${g})`;
        case 'disjoint':
          return `(extent IS NULL OR NOT ST_Intersects(extent, ${g}))`;
        case 'equals':
          return `ST_Equals(extent, ${g})`;
        case 'touches':
          return `ST_Touches(extent, ${g})`;
        case 'crosses':
          return `ST_Crosses(extent, ${g})`;
        case 'overlaps':
          return `ST_Overlaps(extent, ${g})`;
        default:
          throw invalidValue(`spatial operator '${node.op}' is not supported by the catalogue`);
      }
    }
    case 'temporal':
      throw invalidValue(
        'temporal operators are not supported by the catalogue: compare dct:modified / apiso:TempExtent_* with dates instead',
      );
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
  return { sql: q.kind === 'array' ? `(${q.sql})[1]` : q.sql, desc };
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

export async function searchRecords(pool: pg.Pool, o: SearchOptions, schema = CATALOG_SCHEMA): Promise<SearchResult> {
  const where = o.where.length ? `WHERE ${o.where.join(' AND ')}` : '';
  const count = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.records ${where}`, o.params);
  const matched = Number(count.rows[0].n);
  if (o.limit <= 0 || o.offset >= matched) return { matched, records: [] };
  const params = [...o.params];
  const order = [...o.sort.map((s) => `${s.sql} ${s.desc ? 'DESC' : 'ASC'} NULLS LAST`)];
  if (o.rankQuery) {
    params.push(o.rankQuery);
    order.unshift(`ts_rank(tsv, websearch_to_tsquery('${schema}.french_unaccent', $${params.length})) DESC`);
  }
  order.push('identifier ASC'); // stable order across pages
  params.push(o.limit, o.offset);
  const r = await pool.query(
    `SELECT ${SELECT_COLUMNS} FROM ${schema}.records ${where} ORDER BY ${order.join(', ')} LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return { matched, records: r.rows.map(rowToRecord) };
}

export async function getRecords(pool: pg.Pool, ids: string[], schema = CATALOG_SCHEMA): Promise<CatalogRecord[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  const r = await pool.query(`SELECT ${SELECT_COLUMNS} FROM ${schema}.records WHERE identifier = ANY($1::text[])`, [ids]);
  const byId = new Map(r.rows.map((row) => [row.identifier as string, rowToRecord(row)]));
  return ids.map((i) => byId.get(i)).filter((x): x is CatalogRecord => Boolean(x));
}
