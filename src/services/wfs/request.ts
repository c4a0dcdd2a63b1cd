/**
 * GetFeature / GetPropertyValue requests, KVP or POST XML, read into one model. All checks that
 * depend only on the request happen here, so mistakes become OWS exceptions before any SQL runs.
 */
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import type { FilterNode } from '../../filter/ast.js';
import { FilterError } from '../../filter/errors.js';
import { parseFesFilter, parseFesFilterString } from '../../filter/fes.js';
import { OwsException } from '../../ows/exceptions.js';
import { parseIntParam, parseNumberList, type Kvp } from '../../ows/kvp.js';
import { attr, children, xmlLimitsOf, type XmlElement } from '../../ows/xmldom.js';
import type { QueryBBox, SortKey } from '../../features/query.js';
import { isKnownEpsg } from '../../crs/index.js';
import { isOfferedEpsg } from '../../crs/offered.js';
import { parseBbox as parseBoundingBox, parseSortBy as parseSortKeys } from '../../request/params.js';
import { is20, parseInputCrs, parseOutputCrs, parseOutputFormat, resolveType, type OutputCrs, type OutputFormat } from './common.js';

export const GET_FEATURE_BY_ID = 'urn:ogc:def:query:OGC-WFS::GetFeatureById';

export interface WfsQuery {
  layer: Layer;
  filter?: FilterNode;
  bbox?: QueryBBox;
  properties?: string[];
  sortBy?: SortKey[];
  srs: OutputCrs;
}

export interface GetFeatureRequest {
  queries: WfsQuery[];
  count?: number;
  startIndex: number;
  resultType: 'results' | 'hits';
  format: OutputFormat;
  /** GetFeatureById stored query: one feature, not a collection; missing → 404. */
  byId?: string;
  /** GetPropertyValue. */
  valueReference?: string;
  /** True when the request came as KVP (next/previous links can be built from it). */
  kvp: boolean;
}

/** FilterError → OwsException with the same code and locator. */
export function owsFromFilterError(e: unknown): never {
  if (e instanceof FilterError) throw new OwsException(e.code, e.message, e.locator ?? 'filter');
  throw e;
}

/** Split '(a)(b)' into ['a','b']; a string without leading '(' is one item. */
export function splitParenList(v: string): string[] {
  const s = v.trim();
  if (!s.startsWith('(')) return [s];
  const out: string[] = [];
  let depth = 0;
  let start = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') {
      if (depth === 0) start = i + 1;
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth === 0) out.push(s.slice(start, i));
      if (depth < 0) break;
    }
  }
  if (depth !== 0) throw new OwsException('InvalidParameterValue', `unbalanced parentheses in '${v.slice(0, 80)}'`, 'typeNames');
  return out;
}

/** Parse SORTBY: 'a ASC,b DESC', 'a A,b D', 'a' (ascending). */
export function parseSortBy(v: string): SortKey[] {
  return parseSortKeys(v, 'ows');
}

function bare(name: string): string {
  const s = name.trim();
  const slash = s.lastIndexOf('/');
  const t = slash >= 0 ? s.slice(slash + 1) : s;
  const colon = t.lastIndexOf(':');
  return colon >= 0 ? t.slice(colon + 1) : t;
}

/** BBOX=minx,miny,maxx,maxy[,crs]: without a CRS, in the query's srsName, else the type's default CRS. */
function parseBbox(v: string, srs: OutputCrs, layer: Layer): QueryBBox {
  return parseBoundingBox(v, {
    locator: 'bbox',
    crs: { epsg: srs.epsg, latLonOrder: srs.latLon },
    crsSuffix: { locator: 'bbox', accept: (epsg) => isOfferedEpsg(epsg, layer.srid) || isKnownEpsg(epsg) },
  });
}

function filterContext(version: string, srs: OutputCrs) {
  // literals without srsName are in the query's CRS (srsName, else the type's default CRS)
  return { version: (is20(version) ? '2.0' : '1.1') as '2.0' | '1.1', defaultCrs: { epsg: srs.epsg, latLonOrder: srs.latLon } };
}

/** Resource ids 'type.id' grouped by type (types taken from the prefix when no TYPENAMES). */
function idsByType(ctx: AppContext, ids: string[], typed: Layer[] | undefined): Map<Layer, string[]> {
  const out = new Map<Layer, string[]>();
  for (const id of ids) {
    let layers: Layer[];
    if (typed) layers = typed;
    else {
      const dot = id.lastIndexOf('.');
      if (dot <= 0)
        throw new OwsException(
          'InvalidParameterValue',
          `resource id '${id}' does not name its feature type (expected type.id); give TYPENAMES`,
          'resourceId',
        );
      const l = ctx.registry.resolve(id.slice(0, dot));
      if (!l)
        throw new OwsException('InvalidParameterValue', `resource id '${id}': unknown feature type '${id.slice(0, dot)}'`, 'resourceId');
      layers = [l];
    }
    for (const l of layers) {
      const list = out.get(l);
      if (list) list.push(id);
      else out.set(l, [id]);
    }
  }
  return out;
}

export function parseKvpRequest(
  ctx: AppContext,
  kvp: Kvp,
  version: string,
  operation: 'GetFeature' | 'GetPropertyValue',
): GetFeatureRequest {
  const v20 = is20(version);
  const format =
    operation === 'GetPropertyValue' ? parseOutputFormat(ctx, undefined, version) : parseOutputFormat(ctx, kvp.OUTPUTFORMAT, version);
  const count = parseIntParam(
    kvp,
    v20 ? (kvp.COUNT !== undefined ? 'count' : 'maxFeatures') : kvp.MAXFEATURES !== undefined ? 'maxFeatures' : 'count',
    { min: 0 },
  );
  const startIndex = parseIntParam(kvp, 'startIndex', { min: 0 }) ?? 0;
  const rt = (kvp.RESULTTYPE ?? 'results').toLowerCase();
  if (rt !== 'results' && rt !== 'hits')
    throw new OwsException('InvalidParameterValue', `resultType must be 'results' or 'hits', got '${kvp.RESULTTYPE}'`, 'resultType');
  const base = { count, startIndex, resultType: rt as 'results' | 'hits', format, kvp: true };

  const storedId = kvp.STOREDQUERY_ID;
  if (storedId !== undefined) {
    if (storedId !== GET_FEATURE_BY_ID)
      throw new OwsException('InvalidParameterValue', `unknown stored query '${storedId}'`, 'storedQuery_Id');
    const id = kvp.ID;
    if (!id) throw new OwsException('MissingParameterValue', "stored query GetFeatureById needs parameter 'ID'", 'ID');
    const layers = (kvp.TYPENAMES ?? kvp.TYPENAME) ? splitTypes(ctx, kvp.TYPENAMES ?? kvp.TYPENAME) : undefined;
    const m = idsByType(ctx, [id], layers);
    const queries: WfsQuery[] = [...m].map(([layer, ids]) => ({
      layer,
      filter: { kind: 'resourceId', ids },
      srs: parseOutputCrs(kvp.SRSNAME, layer, version),
    }));
    return { ...base, queries, byId: id };
  }

  const rawTypes = kvp.TYPENAMES ?? kvp.TYPENAME;
  const rids = kvp.RESOURCEID ?? kvp.FEATUREID;
  // each identifier becomes a bind parameter (PostgreSQL takes at most 65,535 in one statement)
  if (rids && rids.length > 1000 && rids.split(',').length > MAX_RESOURCE_IDS)
    throw new OwsException(
      'InvalidParameterValue',
      `more than ${MAX_RESOURCE_IDS} resource identifiers in one request`,
      kvp.RESOURCEID !== undefined ? 'resourceId' : 'featureId',
    );
  const exclusive = ['BBOX', 'FILTER', 'RESOURCEID', 'FEATUREID'].filter((k) => kvp[k] !== undefined && kvp[k] !== '');
  if (exclusive.length > 1) {
    throw new OwsException(
      'InvalidParameterValue',
      `parameters ${exclusive.join(', ')} are mutually exclusive`,
      exclusive[1].toLowerCase(),
    );
  }
  let queries: WfsQuery[];
  if (!rawTypes) {
    if (!rids) throw new OwsException('MissingParameterValue', "missing parameter 'typeNames'", v20 ? 'typeNames' : 'typeName');
    const m = idsByType(
      ctx,
      rids
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      undefined,
    );
    queries = [...m].map(([layer, ids]) => ({
      layer,
      filter: { kind: 'resourceId', ids },
      srs: parseOutputCrs(kvp.SRSNAME, layer, version),
    }));
  } else {
    const layers = splitTypes(ctx, rawTypes);
    queries = layers.map((layer) => ({ layer, srs: parseOutputCrs(kvp.SRSNAME, layer, version) }));
    if (rids) {
      const ids = rids
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const q of queries) q.filter = { kind: 'resourceId', ids };
    }
    if (kvp.FILTER) {
      const filters = splitParenList(kvp.FILTER);
      if (filters.length !== 1 && filters.length !== queries.length) {
        throw new OwsException('InvalidParameterValue', `${filters.length} filters for ${queries.length} type names`, 'filter');
      }
      queries.forEach((q, i) => {
        try {
          q.filter = parseFesFilterString(filters[filters.length === 1 ? 0 : i], {
            ...filterContext(version, q.srs),
            xmlLimits: xmlLimitsOf(ctx.config.limits),
          });
        } catch (e) {
          owsFromFilterError(e);
        }
      });
    }
    if (kvp.BBOX) for (const q of queries) q.bbox = parseBbox(kvp.BBOX, q.srs, q.layer);
  }
  if (kvp.PROPERTYNAME) {
    const lists = splitParenList(kvp.PROPERTYNAME);
    if (lists.length !== 1 && lists.length !== queries.length)
      throw new OwsException('InvalidParameterValue', `${lists.length} property lists for ${queries.length} type names`, 'propertyName');
    queries.forEach((q, i) => {
      const l = lists[lists.length === 1 ? 0 : i];
      if (l.trim() !== '*') q.properties = l.split(',').map(bare).filter(Boolean);
    });
  }
  if (kvp.SORTBY) {
    const lists = splitParenList(kvp.SORTBY);
    queries.forEach((q, i) => (q.sortBy = parseSortBy(lists[lists.length === 1 ? 0 : Math.min(i, lists.length - 1)])));
  }
  const req: GetFeatureRequest = { ...base, queries };
  if (operation === 'GetPropertyValue') {
    const vr = kvp.VALUEREFERENCE;
    if (!vr) throw new OwsException('MissingParameterValue', "missing parameter 'valueReference'", 'valueReference');
    req.valueReference = bare(vr);
  }
  return req;
}

function splitTypes(ctx: AppContext, raw: string): Layer[] {
  const names = splitParenList(raw)
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new OwsException('MissingParameterValue', "missing parameter 'typeNames'", 'typeNames');
  checkQueryCount(ctx, names.length, 'typeNames');
  return names.map((n) => resolveType(ctx, n));
}

/** Identifiers one RESOURCEID / FEATUREID list may hold (an XML filter is bounded by limits.maxXmlElements). */
const MAX_RESOURCE_IDS = 10_000;

/** limits.maxQueriesPerRequest, checked before any query is resolved or run. */
function checkQueryCount(ctx: AppContext, n: number, locator: string): void {
  const max = ctx.config.limits.maxQueriesPerRequest;
  if (n > max)
    throw new OwsException(
      'InvalidParameterValue',
      `the request holds ${n} queries; this server answers at most ${max} in one request`,
      locator,
    );
}

// ---------------------------------------------------------------------------------------------
// POST XML

export function parseXmlRequest(
  ctx: AppContext,
  root: XmlElement,
  version: string,
  operation: 'GetFeature' | 'GetPropertyValue',
): GetFeatureRequest {
  const v20 = is20(version);
  const kv = (name: string): Kvp => {
    const v = attr(root, name);
    return v === undefined ? {} : { [name.toUpperCase()]: v };
  };
  const format =
    operation === 'GetPropertyValue'
      ? parseOutputFormat(ctx, undefined, version)
      : parseOutputFormat(ctx, attr(root, 'outputFormat'), version);
  const count = parseIntParam(
    kv(attr(root, 'count') !== undefined ? 'count' : 'maxFeatures'),
    attr(root, 'count') !== undefined ? 'count' : 'maxFeatures',
    { min: 0 },
  );
  const startIndex = parseIntParam(kv('startIndex'), 'startIndex', { min: 0 }) ?? 0;
  const rt = (attr(root, 'resultType') ?? 'results').toLowerCase();
  if (rt !== 'results' && rt !== 'hits')
    throw new OwsException('InvalidParameterValue', `resultType must be 'results' or 'hits'`, 'resultType');
  const base = { count, startIndex, resultType: rt as 'results' | 'hits', format, kvp: false };

  const stored = children(root, 'StoredQuery');
  if (stored.length) {
    const sq = stored[0];
    const id = attr(sq, 'id');
    if (id !== GET_FEATURE_BY_ID) throw new OwsException('InvalidParameterValue', `unknown stored query '${id ?? ''}'`, 'storedQuery_Id');
    const p = children(sq, 'Parameter').find((c) => (attr(c, 'name') ?? '').toUpperCase() === 'ID');
    if (!p || !p.text) throw new OwsException('MissingParameterValue', "stored query GetFeatureById needs parameter 'ID'", 'ID');
    const m = idsByType(ctx, [p.text], undefined);
    const queries: WfsQuery[] = [...m].map(([layer, ids]) => ({
      layer,
      filter: { kind: 'resourceId', ids },
      srs: parseOutputCrs(undefined, layer, version),
    }));
    return { ...base, queries, byId: p.text };
  }
  const qs = children(root, 'Query');
  if (qs.length === 0) throw new OwsException('MissingParameterValue', `${root.name} without a Query element`, 'Query');
  checkQueryCount(ctx, qs.length, 'Query');
  // a Query naming several types is one query per type
  const typeLists = qs.map((q) => (attr(q, 'typeNames') ?? attr(q, 'typeName') ?? '').split(/[\s,]+/).filter(Boolean));
  checkQueryCount(
    ctx,
    typeLists.reduce((n, l) => n + l.length, 0),
    'Query',
  );
  const queries: WfsQuery[] = [];
  for (const [qi, q] of qs.entries()) {
    if (!typeLists[qi].length)
      throw new OwsException('MissingParameterValue', `Query without ${v20 ? 'typeNames' : 'typeName'}`, v20 ? 'typeNames' : 'typeName');
    const layers = typeLists[qi].map((n) => resolveType(ctx, n));
    for (const layer of layers) {
      const srs = parseOutputCrs(attr(q, 'srsName'), layer, version);
      const wq: WfsQuery = { layer, srs };
      const f = q.children.find((c) => c.name === 'Filter');
      if (f) {
        try {
          wq.filter = parseFesFilter(f, filterContext(version, srs));
        } catch (e) {
          owsFromFilterError(e);
        }
      }
      const props = q.children
        .filter((c) => c.name === 'PropertyName')
        .map((c) => bare(c.text))
        .filter(Boolean);
      if (props.length) wq.properties = props;
      const sb = q.children.find((c) => c.name === 'SortBy');
      if (sb) {
        wq.sortBy = children(sb, 'SortProperty').map((sp) => {
          const ref = sp.children.find((c) => c.name === 'ValueReference' || c.name === 'PropertyName');
          if (!ref || !ref.text) throw new OwsException('OperationParsingFailed', 'SortProperty without ValueReference', 'sortBy');
          const order = sp.children.find((c) => c.name === 'SortOrder')?.text.toUpperCase() ?? 'ASC';
          if (order !== 'ASC' && order !== 'DESC')
            throw new OwsException('InvalidParameterValue', `SortOrder must be ASC or DESC, got '${order}'`, 'sortBy');
          return { property: bare(ref.text), desc: order === 'DESC' };
        });
      }
      queries.push(wq);
    }
  }
  const req: GetFeatureRequest = { ...base, queries };
  if (operation === 'GetPropertyValue') {
    const vr = attr(root, 'valueReference');
    if (!vr) throw new OwsException('MissingParameterValue', "missing attribute 'valueReference'", 'valueReference');
    req.valueReference = bare(vr);
  }
  return req;
}
