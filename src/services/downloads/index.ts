/**
 * Plain download URLs: GET /downloads/{layer}.{ext} — a whole dataset (or the part selected by
 * filter, bbox, clip, properties) in GeoJSON, CSV, KML, Shapefile (ZIP), GeoPackage or XLSX, in
 * any advertised CRS. Everything goes through the feature engine (src/features).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { baseUrlOf } from '../../ows/service.js';
import { OwsException } from '../../ows/exceptions.js';
import { layersFor } from '../../security/access.js';
import { tagRequest } from '../../ops/tags.js';
import { parseCrsName } from '../../filter/crs-names.js';
import { parseCql2Text } from '../../filter/cql2.js';
import { FilterError } from '../../filter/errors.js';
import { qualifiedTable, quoteIdent } from '../../db/pool.js';
import {
  checkQuery,
  ExportError,
  FeatureQueryError,
  type ClipArea,
  type CsvWriterOptions,
  type FeatureQuery,
} from '../../features/index.js';
import { exportFileName, sendExport, type ExportFormat } from './export.js';
import { OTHER_EPSG } from '../wfs/common.js';

export interface DownloadFormat {
  /** URL extension. */
  ext: string;
  /** Display name. */
  name: string;
  mediaType: string;
  /** EU Publications Office file-type authority URI (DCAT dct:format). */
  fileType: string;
  /** Extension of the file sent (shp → zip). */
  fileExt: string;
}

const FT = 'http://publications.europa.eu/resource/authority/file-type/';

export const DOWNLOAD_FORMATS: DownloadFormat[] = [
  { ext: 'geojson', name: 'GeoJSON', mediaType: 'application/geo+json', fileType: `${FT}GEOJSON`, fileExt: 'geojson' },
  { ext: 'csv', name: 'CSV', mediaType: 'text/csv', fileType: `${FT}CSV`, fileExt: 'csv' },
  { ext: 'kml', name: 'KML', mediaType: 'application/vnd.google-earth.kml+xml', fileType: `${FT}KML`, fileExt: 'kml' },
  { ext: 'shp', name: 'ESRI Shapefile (ZIP)', mediaType: 'application/zip', fileType: `${FT}SHP`, fileExt: 'zip' },
  { ext: 'gpkg', name: 'GeoPackage', mediaType: 'application/geopackage+sqlite3', fileType: `${FT}GPKG`, fileExt: 'gpkg' },
  {
    ext: 'xlsx',
    name: 'Excel (XLSX)',
    mediaType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    fileType: `${FT}XLSX`,
    fileExt: 'xlsx',
  },
];

/** Accepted URL extensions besides the canonical ones. */
const EXT_ALIASES: Record<string, string> = { json: 'geojson', zip: 'shp', 'shp.zip': 'shp', ndjson: 'ndjson', geojsonl: 'ndjson' };

export interface DownloadLink {
  href: string;
  format: string;
  mediaType: string;
  fileType: string;
}

/** The download URLs of a layer, for landing pages and catalogues (DCAT distributions, ISO online resources). */
export function downloadLinks(baseUrl: string, layer: Pick<Layer, 'name'>): DownloadLink[] {
  const base = baseUrl.replace(/\/+$/, '');
  return DOWNLOAD_FORMATS.map((f) => ({
    href: `${base}/downloads/${encodeURIComponent(layer.name)}.${f.ext}`,
    format: f.name,
    mediaType: f.mediaType,
    fileType: f.fileType,
  }));
}

export { DEFAULT_DOWNLOAD_TEMP_BYTES } from './export.js';

class ProblemError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function problem(reply: FastifyReply, status: number, detail: string): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail });
}

type Query = Record<string, string | undefined>;

function params(req: FastifyRequest): Query {
  const out: Query = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    out[k.toLowerCase()] = Array.isArray(v) ? String(v[v.length - 1]) : v === undefined ? undefined : String(v);
  }
  return out;
}

function splitFile(file: string): { name: string; ext: string } | undefined {
  const exts = [...DOWNLOAD_FORMATS.map((f) => f.ext), ...Object.keys(EXT_ALIASES)].sort((a, b) => b.length - a.length);
  for (const e of exts) {
    if (file.toLowerCase().endsWith('.' + e)) {
      return { name: file.slice(0, -(e.length + 1)), ext: EXT_ALIASES[e] ?? e };
    }
  }
  return undefined;
}

function bool(v: string | undefined, name: string): boolean {
  if (v === undefined || v === '') return false;
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new ProblemError(400, `${name} must be true or false`);
}

function outputCrs(raw: string | undefined, layer: Layer): number {
  if (!raw) return layer.srid;
  const c = parseCrsName(raw);
  if (!c) throw new ProblemError(400, `unsupported CRS '${raw}'`);
  if (c.epsg !== layer.srid && !OTHER_EPSG.includes(c.epsg)) {
    throw new ProblemError(
      400,
      `CRS '${raw}' is not offered for ${layer.name} (offered: EPSG:${layer.srid}, ${OTHER_EPSG.map((e) => `EPSG:${e}`).join(', ')}, CRS84)`,
    );
  }
  return c.epsg;
}

function parseBbox(raw: string | undefined, crsRaw: string | undefined): FeatureQuery['bbox'] {
  if (!raw) return undefined;
  const n = raw.split(',').map((s) => Number(s.trim()));
  if ((n.length !== 4 && n.length !== 6) || n.some((v) => !Number.isFinite(v)))
    throw new ProblemError(400, 'bbox must be minx,miny,maxx,maxy');
  const [a, b, c, d] = n.length === 6 ? [n[0], n[1], n[3], n[4]] : n;
  const crs = crsRaw ? parseCrsName(crsRaw) : { epsg: 4326, latLonOrder: false };
  if (!crs) throw new ProblemError(400, `unsupported bbox-crs '${crsRaw}'`);
  return crs.latLonOrder ? { minx: b, miny: a, maxx: d, maxy: c, epsg: crs.epsg } : { minx: a, miny: b, maxx: c, maxy: d, epsg: crs.epsg };
}

/** The column a boundary layer is referenced by in clip=layer:code — metadata.clipKey, else the primary key. */
export function clipKeyOf(layer: Layer): string | undefined {
  const k = (layer.extra?.metadata as Record<string, unknown> | undefined)?.clipKey;
  if (typeof k === 'string' && layer.fields.some((f) => f.name === k)) return k;
  return layer.primaryKey ?? undefined;
}

const WKT_START =
  /^\s*(SRID=\d+;\s*)?(POLYGON|MULTIPOLYGON|GEOMETRYCOLLECTION|POINT|LINESTRING|MULTIPOINT|MULTILINESTRING|CURVEPOLYGON|MULTISURFACE)\b/i;

interface ClipInfo {
  area: ClipArea;
  /** For the file name: 'communes-67482' or 'area'. */
  label: string;
}

async function parseClip(ctx: AppContext, req: FastifyRequest, p: Query): Promise<ClipInfo | undefined> {
  const raw = p.clip?.trim();
  const modeRaw = (p.clipmode ?? 'intersects').toLowerCase();
  if (modeRaw !== 'intersects' && modeRaw !== 'cut') throw new ProblemError(400, `clipmode must be intersects or cut, not '${p.clipmode}'`);
  const mode = modeRaw as ClipArea['mode'];
  if (!raw) {
    if (p.clipmode) throw new ProblemError(400, 'clipmode needs clip');
    return undefined;
  }
  if (raw.startsWith('{') || WKT_START.test(raw)) {
    const crs = p['clip-crs'] ? parseCrsName(p['clip-crs']) : { epsg: 4326, latLonOrder: false };
    if (!crs) throw new ProblemError(400, `unsupported clip-crs '${p['clip-crs']}'`);
    const encoding = raw.startsWith('{') ? 'geojson' : 'wkt';
    const text = encoding === 'wkt' ? raw.replace(/^\s*SRID=\d+;\s*/i, '') : raw;
    // check the area once, alone: parse errors and non-areal geometries are the client's mistake
    let type: string | undefined;
    try {
      const parsed = encoding === 'wkt' ? 'ST_GeomFromText($1::text)' : 'ST_GeomFromGeoJSON($1::text)';
      const r = await ctx.pool.query<{ d: number; t: string }>(
        `SELECT ST_Dimension(g) AS d, GeometryType(g) AS t FROM (SELECT ${parsed} AS g) s`,
        [text],
      );
      type = r.rows[0]?.d === 2 ? r.rows[0].t : undefined;
      if (!type) throw new ProblemError(400, `clip must be a polygon or multipolygon, not ${r.rows[0]?.t ?? 'empty'}`);
    } catch (e) {
      if (e instanceof ProblemError) throw e;
      throw new ProblemError(400, `clip is not a valid ${encoding === 'wkt' ? 'WKT' : 'GeoJSON'} geometry: ${(e as Error).message}`);
    }
    if (crs.latLonOrder) {
      throw new ProblemError(
        400,
        `clip-crs '${p['clip-crs']}' has latitude first; give the clip in CRS84 (longitude, latitude) or a projected CRS`,
      );
    }
    return { area: { mode, geometry: { text, encoding, epsg: crs.epsg } }, label: 'area' };
  }
  const i = raw.lastIndexOf(':');
  if (i <= 0 || i === raw.length - 1) {
    throw new ProblemError(400, 'clip must be a WKT or GeoJSON polygon, or a reference layer:code (e.g. communes:67482)');
  }
  const lname = raw.slice(0, i);
  const value = raw.slice(i + 1);
  const blayer = layersFor(ctx, req).resolve(lname);
  if (!blayer) throw new ProblemError(400, `clip refers to an unknown layer '${lname}'`);
  const key = clipKeyOf(blayer);
  if (!key)
    throw new ProblemError(400, `layer '${blayer.name}' has neither a primary key nor a configured clipKey; it cannot be used to clip`);
  const r = await ctx.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${qualifiedTable(blayer.schema, blayer.table)} b WHERE (b.${quoteIdent(key)})::text = $1::text`,
    [value],
  );
  if (Number(r.rows[0].n) === 0) throw new ProblemError(400, `no feature of '${blayer.name}' has ${key} = '${value}'`);
  return { area: { mode, ref: { layer: blayer, key, value } }, label: `${blayer.name}-${value}` };
}

function geometryColumnsOption(p: Query): 'wkt' | 'xy' | 'both' | 'none' {
  const g = (p.geometry ?? 'wkt').toLowerCase();
  if (g === 'wkt' || g === 'xy' || g === 'both' || g === 'none') return g;
  throw new ProblemError(400, `geometry must be wkt, xy, both or none, not '${p.geometry}'`);
}

/** A request-caused engine or database error → ProblemError; anything else is rethrown. */
function mapError(e: unknown): never {
  if (e instanceof ProblemError) throw e;
  if (e instanceof FeatureQueryError || e instanceof FilterError)
    throw new ProblemError(400, `${e.locator ? e.locator + ': ' : ''}${e.message}`);
  if (e instanceof ExportError) throw new ProblemError(e.status, e.message);
  const code = (e as { code?: string })?.code;
  if (typeof code === 'string' && code.startsWith('22'))
    throw new ProblemError(400, `the request cannot be evaluated: ${(e as Error).message}`);
  throw e;
}

async function handle(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const file = (req.params as { file: string }).file;
  const split = splitFile(file);
  if (!split) {
    return problem(reply, 404, `unknown download format in '${file}' (offered: ${DOWNLOAD_FORMATS.map((f) => f.ext).join(', ')})`);
  }
  // a dataset the caller may not read is unknown to it (src/security/access.ts)
  const layer = layersFor(ctx, req).resolve(split.name);
  if (!layer) return problem(reply, 404, `unknown dataset '${split.name}'`);
  tagRequest(req, { service: 'DOWNLOAD', operation: split.ext, layers: [layer.name] });
  const p = params(req);
  const ext = split.ext;
  const epsg = ext === 'kml' ? 4326 : outputCrs(p.crs ?? p.srsname, layer);
  // KML is WGS 84 by definition: a crs parameter is checked but does not change it
  if (ext === 'kml') outputCrs(p.crs ?? p.srsname, layer);
  let filter;
  if (p.filter) {
    const lang = (p['filter-lang'] ?? 'cql2-text').toLowerCase();
    if (lang !== 'cql2-text') throw new ProblemError(400, `filter-lang '${p['filter-lang']}' is not supported here (use cql2-text)`);
    try {
      filter = parseCql2Text(p.filter);
    } catch (e) {
      mapError(e);
    }
  }
  const clip = await parseClip(ctx, req, p);
  const q: FeatureQuery = {
    layer,
    filter,
    bbox: parseBbox(p.bbox, p['bbox-crs']),
    properties:
      p.properties !== undefined
        ? p.properties
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : undefined,
    outputEpsg: epsg,
    clip: clip?.area,
  };
  try {
    checkQuery(q);
  } catch (e) {
    mapError(e);
  }
  const filename = exportFileName([layer.name], epsg, ext as ExportFormat, clip?.label);
  const geometry = geometryColumnsOption(p);
  let csv: CsvWriterOptions = { geometry };
  if (ext === 'csv') {
    const sepRaw = (p.sep ?? 'comma').toLowerCase();
    const sep = sepRaw === 'semicolon' || sepRaw === ';' ? ';' : sepRaw === 'comma' || sepRaw === ',' ? ',' : undefined;
    if (!sep) throw new ProblemError(400, `sep must be comma or semicolon, not '${p.sep}'`);
    csv = { separator: sep, bom: bool(p.bom, 'bom'), geometry };
  }
  try {
    return await sendExport(ctx, req, reply, { format: ext as ExportFormat, queries: [q], filename, csv });
  } catch (e) {
    mapError(e);
  }
}

export function registerDownloads(app: FastifyInstance, ctx: AppContext): void {
  app.get('/downloads', async (req, reply) => {
    const base = baseUrlOf(req, ctx);
    const layers = layersFor(ctx, req).list();
    return reply.type('application/json; charset=utf-8').send({
      datasets: layers.map((l) => ({ name: l.name, title: l.title, downloads: downloadLinks(base, l) })),
      parameters: ['filter (CQL2 text)', 'bbox', 'bbox-crs', 'crs', 'properties', 'clip', 'clip-crs', 'clipmode', 'sep', 'bom', 'geometry'],
    });
  });
  app.get('/downloads/:file', async (req, reply) => {
    try {
      return await handle(ctx, req, reply);
    } catch (e) {
      if (e instanceof ProblemError) return problem(reply, e.status, e.message);
      try {
        mapError(e);
      } catch (m) {
        if (m instanceof ProblemError) return problem(reply, m.status, m.message);
      }
      throw e;
    }
  });
}
