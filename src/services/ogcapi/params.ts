/** Items query parameters → one FeatureQuery for the shared engine (src/features). */
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config/index.js';
import type { Layer } from '../../registry/types.js';
import { decodeCursor, filterTarget, type Cursor, type FeatureQuery, type QueryBBox, type SortKey } from '../../features/index.js';
import { compileFilter } from '../../filter/sql.js';
import type { FilterNode, TemporalInstant, TemporalValue } from '../../filter/ast.js';
import { checkTemporalString } from '../../filter/ast.js';
import { parseCql2Json, parseCql2Text } from '../../filter/cql2.js';
import { FilterError } from '../../filter/errors.js';
import { CRS84_INFO, badParam, resolveCrs, str, type ApiCrs } from './common.js';

export const ITEMS_PARAMS = [
  'limit',
  'offset',
  'cursor',
  'bbox',
  'bbox-crs',
  'datetime',
  'crs',
  'properties',
  'sortby',
  'filter',
  'filter-lang',
  'filter-crs',
];

/** Properties usable as `?name=value` equality filters and in CQL2 (the layer's simple attributes). */
export function queryableFields(layer: Layer) {
  return layer.fields.filter((f) => f.type !== 'binary' && f.type !== 'json' && f.type !== 'array');
}

export interface ItemsRequest {
  query: FeatureQuery;
  limit: number;
  /** Features before this page: `offset`, or the position a cursor carries. */
  offset: number;
  crs: ApiCrs;
  /** The page position of a `next` link (keyset; see src/features/keyset.ts): query.after is set from it. */
  cursor?: Cursor;
}

function intParam(req: FastifyRequest, name: string, min: number): number | undefined {
  const s = str(req, name);
  if (s === undefined) return undefined;
  if (!/^\s*\d+\s*$/.test(s)) throw badParam(name, `'${s}' is not a non-negative integer`);
  const n = Number(s);
  if (n < min) throw badParam(name, `must be at least ${min}`);
  return n;
}

function parseBbox(req: FastifyRequest, layer: Layer): QueryBBox | undefined {
  const s = str(req, 'bbox');
  const crsParam = str(req, 'bbox-crs');
  const crs = crsParam !== undefined ? resolveCrs(layer, crsParam, 'bbox-crs') : CRS84_INFO;
  if (s === undefined) return undefined;
  const parts = s.split(',').map((x) => x.trim());
  if ((parts.length !== 4 && parts.length !== 6) || parts.some((x) => x === '' || !Number.isFinite(Number(x)))) {
    throw badParam('bbox', `'${s}' must be 4 or 6 comma-separated numbers`);
  }
  const n = parts.map(Number);
  let [x1, y1, x2, y2] = parts.length === 4 ? n : [n[0], n[1], n[3], n[4]];
  if (crs.flip) [x1, y1, x2, y2] = [y1, x1, y2, x2];
  if (x1 > x2 || y1 > y2) throw badParam('bbox', 'the lower corner must be below and left of the upper corner');
  if (crs.uri === CRS84_INFO.uri && (y1 < -90 || y2 > 90)) throw badParam('bbox', 'latitudes must lie within [-90, 90]');
  return { minx: x1, miny: y1, maxx: x2, maxy: y2, epsg: crs.epsg };
}

function instant(s: string): TemporalInstant {
  const c = checkTemporalString(s);
  if (!c) throw badParam('datetime', `'${s}' is not an RFC 3339 date or date-time`);
  return { type: 'instant', value: s, isDate: c.isDate };
}

/** datetime: instant, or interval a/b with '..' or '' for an open end. */
export function parseDatetime(s: string): TemporalValue {
  const t = s.trim();
  if (!t.includes('/')) return instant(t);
  const [a, b, ...rest] = t.split('/');
  if (rest.length) throw badParam('datetime', `'${s}' has more than one '/'`);
  const open = (x: string) => x === '' || x === '..';
  if (open(a) && open(b)) throw badParam('datetime', 'an interval needs at least one bound');
  return { type: 'interval', start: open(a) ? null : instant(a), end: open(b) ? null : instant(b) };
}

function parseFilter(req: FastifyRequest, layer: Layer): FilterNode | undefined {
  const text = str(req, 'filter');
  const lang = (str(req, 'filter-lang') ?? 'cql2-text').toLowerCase();
  const fcrs = str(req, 'filter-crs');
  const crs = fcrs !== undefined ? resolveCrs(layer, fcrs, 'filter-crs') : CRS84_INFO;
  if (lang !== 'cql2-text' && lang !== 'cql2-json') throw badParam('filter-lang', `'${lang}' is not supported (cql2-text, cql2-json)`);
  if (text === undefined) return undefined;
  const ctx = { filterCrs: { epsg: crs.epsg, latLonOrder: crs.flip } };
  try {
    if (lang === 'cql2-json') {
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        throw badParam('filter', `not valid JSON: ${(e as Error).message}`);
      }
      return parseCql2Json(obj, ctx);
    }
    return parseCql2Text(text, ctx);
  } catch (e) {
    if (e instanceof FilterError) throw badParam('filter', e.message);
    throw e;
  }
}

function parseSortBy(s: string): SortKey[] {
  const keys: SortKey[] = [];
  for (const raw of s.split(',')) {
    // a '+' in a query string arrives as a space
    const t = raw.trim();
    if (!t) throw badParam('sortby', 'empty sort key');
    const desc = t.startsWith('-');
    const name = t.replace(/^[+-]/, '').trim();
    if (!/^[^\s]+$/.test(name)) throw badParam('sortby', `'${raw}' is not a property name`);
    keys.push({ property: name, desc });
  }
  return keys;
}

/** Read the items parameters (unknown parameters were rejected before). */
export function readItemsRequest(req: FastifyRequest, layer: Layer, config: Config): ItemsRequest {
  const limits = config.limits;
  const lim = intParam(req, 'limit', 1);
  const limit = Math.min(lim ?? limits.itemsDefaultLimit, limits.itemsMaxLimit);
  let offset = intParam(req, 'offset', 0) ?? 0;
  const cursorText = str(req, 'cursor');
  if (cursorText !== undefined && str(req, 'offset') !== undefined) throw badParam('cursor', "give either 'cursor' or 'offset', not both");
  const crsParam = str(req, 'crs');
  const crs = crsParam !== undefined ? resolveCrs(layer, crsParam, 'crs') : CRS84_INFO;

  const conditions: FilterNode[] = [];
  const f = parseFilter(req, layer);
  if (f) conditions.push(f);

  const dt = str(req, 'datetime');
  // a collection without a temporal property ignores datetime (OGC API – Features Part 1, 7.15.4)
  if (dt !== undefined && layer.temporalField) {
    conditions.push({ kind: 'temporal', op: 'tintersects', property: layer.temporalField, value: parseDatetime(dt) });
  } else if (dt !== undefined) {
    parseDatetime(dt); // still reject a malformed value
  }

  const q = req.query as Record<string, unknown>;
  const fields = queryableFields(layer);
  for (const [k, v] of Object.entries(q)) {
    const field = fields.find((x) => x.name === k);
    if (!field) continue;
    const node: FilterNode = {
      kind: 'compare',
      op: '=',
      left: { kind: 'property', name: field.name },
      right: { kind: 'literal', type: 'string', value: String(v) },
      matchCase: true,
    };
    try {
      compileFilter(node, filterTarget(layer), []); // a value of the wrong type is this parameter's fault
    } catch (e) {
      if (e instanceof FilterError) throw badParam(k, e.message);
      throw e;
    }
    conditions.push(node);
  }

  const props = str(req, 'properties');
  const sort = str(req, 'sortby');
  const query: FeatureQuery = {
    layer,
    bbox: parseBbox(req, layer),
    filter: conditions.length === 0 ? undefined : conditions.length === 1 ? conditions[0] : { kind: 'and', args: conditions },
    properties:
      props === undefined
        ? undefined
        : props
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
    sortBy: sort === undefined ? undefined : parseSortBy(sort),
    limit,
    offset,
    outputEpsg: crs.epsg,
    flipAxes: crs.flip,
  };
  let cursor: Cursor | undefined;
  if (cursorText !== undefined) {
    if (!layer.primaryKey) throw badParam('cursor', `collection '${layer.name}' pages by offset only (no primary key)`);
    try {
      cursor = decodeCursor(cursorText, query);
    } catch (e) {
      if (e instanceof FilterError) throw badParam(e.locator === 'cursor' ? 'cursor' : 'sortby', e.message);
      throw e;
    }
    offset = cursor.offset;
    query.offset = undefined;
  }
  return { query, limit, offset, crs, cursor };
}

/** Names of the parameters that are queryable properties (accepted besides ITEMS_PARAMS). */
export function isQueryableParam(layer: Layer): (k: string) => boolean {
  const names = new Set(queryableFields(layer).map((f) => f.name));
  return (k) => names.has(k);
}
