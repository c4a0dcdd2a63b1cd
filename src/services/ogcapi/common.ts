/** OGC API – Features: problems (RFC 7807), format negotiation, CRS list, parameter checks, ETags. */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { invalidParam } from '../../errors/service-error.js';
import type { Layer } from '../../registry/types.js';
import { crsUri, isLatLonEpsg, parseCrsName } from '../../filter/crs-names.js';
import { offeredEpsg } from '../../crs/offered.js';
import { formatByName, normaliseFormatName, type FormatDef } from '../../features/formats.js';

export const CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84';

export const CONFORMANCE = [
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
  'http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs',
  'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables',
  'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters',
  'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter',
  'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter',
  'http://www.opengis.net/spec/cql2/1.0/conf/cql2-text',
  'http://www.opengis.net/spec/cql2/1.0/conf/cql2-json',
  'http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2',
  'http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators',
  'http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison',
  'http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions',
  'http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus',
  'http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions',
  'http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions',
  'http://www.opengis.net/spec/cql2/1.0/conf/arithmetic',
];

/** 400 naming the query parameter (rendered as problem+json with `parameter`). */
export const badParam = (name: string, detail: string) => invalidParam(name, `parameter '${name}': ${detail}`);

/** A representation: the API's own JSON and HTML, or a file format of the format table (`f={download ext}`). */
export type Format = 'json' | 'html' | FormatDef;

const F_OWN: Record<string, 'json' | 'html'> = {
  json: 'json',
  geojson: 'json',
  'application/json': 'json',
  'application/geo+json': 'json',
  html: 'html',
  'text/html': 'html',
};

/** The `f` value a representation is linked with. */
export function fValue(f: Format): string {
  return typeof f === 'string' ? f : f.download!.ext;
}

/** The file format among `files` an f= value or media type names (its ext, id, media type or an alias). */
function fileFormatOf(value: string, files: readonly FormatDef[]): FormatDef | undefined {
  const v = normaliseFormatName(value);
  return files.find((d) => d.download?.ext === v || d.download?.extAliases?.includes(v)) ?? formatByName(v, files)?.def;
}

/**
 * f= wins; else Accept (text/html before any JSON → html; a file format's media type without JSON →
 * that format); default JSON. `files` are the file formats this resource offers (ogcApiFileFormats of
 * the formats this server offers), `own` the API's own representations it allows.
 */
export function negotiate(req: FastifyRequest, own: Array<'json' | 'html'>, files: readonly FormatDef[] = []): Format {
  const q = req.query as Record<string, unknown>;
  const f = typeof q.f === 'string' ? q.f.toLowerCase() : undefined;
  const allowedNames = () => [...own, ...files.map((d) => d.download!.ext)].join(', ');
  if (f !== undefined) {
    // '+' in a media type arrives as a space when the client did not encode it
    const value = f.trim().replace(/ (xml|json|sqlite3)$/, '+$1');
    const mine = F_OWN[value];
    if (mine) {
      if (!own.includes(mine)) throw badParam('f', `unsupported format '${f}' (one of ${allowedNames()})`);
      return mine;
    }
    const file = fileFormatOf(value, files);
    if (!file) throw badParam('f', `unsupported format '${f}' (one of ${allowedNames()})`);
    return file;
  }
  const accept = String(req.headers.accept ?? '').toLowerCase();
  if (!accept) return 'json';
  const iHtml = accept.indexOf('text/html');
  const iJson = accept.search(/json/);
  if (iHtml >= 0 && (iJson < 0 || iHtml < iJson)) return own.includes('html') ? 'html' : 'json';
  if (iJson < 0) {
    // the first file media type the client names that this resource offers
    let best: FormatDef | undefined;
    let at = Infinity;
    for (const d of files) {
      for (const t of [d.mediaType, ...d.aliases.filter((a) => a.includes('/'))]) {
        const i = accept.indexOf(t.toLowerCase());
        if (i >= 0 && i < at) {
          best = d;
          at = i;
        }
      }
    }
    if (best) return best;
  }
  return 'json';
}

/** Query parameters every OGC API resource accepts (f, and the API key of src/security). */
const ALWAYS = ['f', 'apikey'];

/** 400 for any query parameter not in `known` (the conformance suites expect it). */
export function rejectUnknown(req: FastifyRequest, known: string[] = [], also: (k: string) => boolean = () => false): void {
  const q = req.query as Record<string, unknown>;
  for (const [k, v] of Object.entries(q)) {
    if (ALWAYS.includes(k) || known.includes(k) || also(k)) {
      if (Array.isArray(v)) throw badParam(k, 'given more than once');
      continue;
    }
    throw badParam(k, 'unknown query parameter');
  }
}

/** One string value or undefined. */
export function str(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[name];
  if (v === undefined) return undefined;
  return String(v);
}

// ---- CRS -------------------------------------------------------------------------------------

export interface ApiCrs {
  uri: string;
  epsg: number;
  /** Coordinates in this CRS are written/read northing first (EPSG axis order). */
  flip: boolean;
}

/** Projected CRSs whose EPSG axis order is northing, easting. */
const NORTHING_FIRST = new Set<number>([3035]);

export function crsOf(epsg: number): ApiCrs {
  return { uri: crsUri(epsg), epsg, flip: isLatLonEpsg(epsg) || NORTHING_FIRST.has(epsg) };
}

export const CRS84_INFO: ApiCrs = { uri: CRS84, epsg: 4326, flip: false };

/** CRS84 (default), then the storage CRS and the others this server offers (src/crs/offered.ts). */
export function supportedCrs(layer: Layer): ApiCrs[] {
  return [CRS84_INFO, ...offeredEpsg(layer.srid).map(crsOf)];
}

/** Resolve a crs / bbox-crs / filter-crs value against the layer's list; 400 otherwise. */
export function resolveCrs(layer: Layer, value: string, param: string): ApiCrs {
  const list = supportedCrs(layer);
  const direct = list.find((c) => c.uri.toLowerCase() === value.trim().toLowerCase());
  if (direct) return direct;
  // tolerate the other usual spellings, with the axis order the URI form implies
  const p = parseCrsName(value.replace(/^\[|\]$/g, '').replace(/^\s*<|>\s*$/g, ''));
  if (p) {
    const c = list.find((x) => x.epsg === p.epsg && (p.epsg !== 4326 || x.flip === p.latLonOrder));
    if (c) return c;
  }
  throw badParam(param, `unsupported CRS '${value}' for collection '${layer.name}' (supported: ${list.map((c) => c.uri).join(', ')})`);
}

// ---- ETag ------------------------------------------------------------------------------------

export function etagOf(body: string | Buffer): string {
  return `W/"${createHash('sha1').update(body).digest('base64url')}"`;
}

/** Send an in-memory body with an ETag; 304 when If-None-Match matches. */
export function sendWithEtag(req: FastifyRequest, reply: FastifyReply, type: string, body: string): FastifyReply {
  // the response's own timeStamp is not part of what it says: two answers a second apart with
  // the same features are the same representation (weak validator)
  const tag = etagOf(body.replace(/"timeStamp":"[^"]*"/, ''));
  reply.header('ETag', tag);
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === tag || t.trim() === '*' || t.trim() === tag.slice(2))) {
    return reply.code(304).send();
  }
  return reply.type(type).send(body);
}

// ---- links -----------------------------------------------------------------------------------

export interface ApiLink {
  href: string;
  rel: string;
  type?: string;
  title?: string;
}

/** RFC 8288 Link header value. */
export function linkHeader(links: ApiLink[]): string {
  return links
    .map(
      (l) => `<${l.href}>; rel="${l.rel}"${l.type ? `; type="${l.type}"` : ''}${l.title ? `; title="${l.title.replace(/"/g, "'")}"` : ''}`,
    )
    .join(', ');
}

/** The request URL's query with some keys replaced (undefined removes). */
export function withQuery(base: string, path: string, query: Record<string, unknown>, changes: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (k in changes) continue;
    if (Array.isArray(v)) v.forEach((x) => params.append(k, String(x)));
    else if (v !== undefined) params.append(k, String(v));
  }
  for (const [k, v] of Object.entries(changes)) if (v !== undefined) params.set(k, v);
  const qs = params.toString();
  return `${base}${path}${qs ? '?' + qs : ''}`;
}
