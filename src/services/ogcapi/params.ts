/** Items query parameters → one FeatureQuery for the shared engine (src/features). */
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config/index.js';
import type { Layer } from '../../registry/types.js';
import { decodeCursor, filterTarget, type Cursor, type FeatureQuery, type QueryBBox, type SortKey } from '../../features/index.js';
import { compileFilter } from '../../filter/sql.js';
import type { FilterNode, TemporalValue } from '../../filter/ast.js';
import { parseBbox, parseCount, parseDatetime as parseDatetimeParam, parseSortBy } from '../../request/params.js';
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

function parseBboxParam(req: FastifyRequest, layer: Layer): QueryBBox | undefined {
  const s = str(req, 'bbox');
  const crsParam = str(req, 'bbox-crs');
  const crs = crsParam !== undefined ? resolveCrs(layer, crsParam, 'bbox-crs') : CRS84_INFO;
  if (s === undefined) return undefined;
  return parseBbox(s, { locator: 'bbox', crs: { epsg: crs.epsg, latLonOrder: crs.flip }, allow3d: true });
}

/** datetime: instant, or interval a/b with '..' or '' for an open end. */
export function parseDatetime(s: string): TemporalValue {
  return parseDatetimeParam(s, 'datetime');
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

/** Read the items parameters (unknown parameters were rejected before). */
export function readItemsRequest(req: FastifyRequest, layer: Layer, config: Config): ItemsRequest {
  const limits = config.limits;
  const limit =
    parseCount(str(req, 'limit'), { locator: 'limit', min: 1, max: limits.itemsMaxLimit, clamp: true }) ??
    Math.min(limits.itemsDefaultLimit, limits.itemsMaxLimit);
  let offset = parseCount(str(req, 'offset'), { locator: 'offset' }) ?? 0;
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
    bbox: parseBboxParam(req, layer),
    filter: conditions.length === 0 ? undefined : conditions.length === 1 ? conditions[0] : { kind: 'and', args: conditions },
    properties:
      props === undefined
        ? undefined
        : props
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
    sortBy: sort === undefined ? undefined : parseSortBy(sort, 'api'),
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
