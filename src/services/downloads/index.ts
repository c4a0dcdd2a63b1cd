/**
 * Plain download URLs: GET /downloads/{layer}.{ext} — a whole dataset (or the part selected by
 * filter, bbox, clip, properties) in every download format of the format table this server
 * offers (src/features/formats.ts: GeoJSON, CSV, KML, Shapefile ZIP, GeoPackage, FlatGeobuf,
 * XLSX, NDJSON), in any advertised CRS. Everything goes through the feature engine (src/features).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { baseUrlOf } from '../../ows/service.js';
import { ServiceError, invalidParam } from '../../errors/service-error.js';
import { sendProblem } from '../../errors/render.js';
import { CRS84, outOfDomain, parseBbox, parseCrs } from '../../request/params.js';
import { layersFor } from '../../security/access.js';
import { tagRequest } from '../../ops/tags.js';
import { parseCql2Text } from '../../filter/cql2.js';
import { qualifiedTable, quoteIdent } from '../../db/pool.js';
import {
  checkQuery,
  euFileTypeUri,
  ExportError,
  FeatureQueryError,
  FORMATS,
  listedDownloads,
  neededToolsText,
  outputCrsOf,
  serverFormats,
  splitDownloadFile,
  type ClipArea,
  type CsvWriterOptions,
  type FeatureQuery,
  type FormatDef,
} from '../../features/index.js';
import { pageQuery, planCollection } from '../../features/plan.js';
import { exportFileName, sendExport } from './export.js';
import { isOfferedEpsg, offeredNames } from '../../crs/offered.js';

export interface DownloadLink {
  href: string;
  /** Display name of the format. */
  format: string;
  mediaType: string;
  /** EU Publications Office file-type code (DCAT dct:format), when the table has one. */
  euFileType?: string;
  /** The same as a URI. */
  fileType?: string;
}

/**
 * The download URLs of a layer, for landing pages and catalogues (DCAT distributions, ISO online
 * resources): one per listed download format among `formats` (what this server offers: serverFormats).
 */
export function downloadLinks(baseUrl: string, layer: Pick<Layer, 'name'>, formats: readonly FormatDef[]): DownloadLink[] {
  const base = baseUrl.replace(/\/+$/, '');
  return listedDownloads(formats).map((f) => ({
    href: `${base}/downloads/${encodeURIComponent(layer.name)}.${f.download!.ext}`,
    format: f.title,
    mediaType: f.mediaType,
    ...(f.euFileType ? { euFileType: f.euFileType, fileType: euFileTypeUri(f.euFileType) } : {}),
  }));
}

export { DEFAULT_DOWNLOAD_TEMP_BYTES } from './export.js';

type Query = Record<string, string | undefined>;

function params(req: FastifyRequest): Query {
  const out: Query = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    out[k.toLowerCase()] = Array.isArray(v) ? String(v[v.length - 1]) : v === undefined ? undefined : String(v);
  }
  return out;
}

function bool(v: string | undefined, name: string): boolean {
  if (v === undefined || v === '') return false;
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw invalidParam(name, `${name} must be true or false`);
}

function outputCrs(raw: string | undefined, layer: Layer): number {
  if (!raw) return layer.srid;
  return parseCrs(raw, {
    locator: 'crs',
    accept: (epsg) => isOfferedEpsg(epsg, layer.srid),
    offered: offeredNames(layer.srid),
  }).epsg;
}

function bboxOf(raw: string | undefined, crsRaw: string | undefined): FeatureQuery['bbox'] {
  if (!raw) return undefined;
  const crs = crsRaw ? parseCrs(crsRaw, { locator: 'bbox-crs' }) : CRS84;
  return parseBbox(raw, { crs, allow3d: true });
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
  if (modeRaw !== 'intersects' && modeRaw !== 'cut')
    throw invalidParam('clipmode', `clipmode must be intersects or cut, not '${p.clipmode}'`);
  const mode = modeRaw as ClipArea['mode'];
  if (!raw) {
    if (p.clipmode) throw invalidParam('clipmode', 'clipmode needs clip');
    return undefined;
  }
  if (raw.startsWith('{') || WKT_START.test(raw)) {
    const crs = p['clip-crs'] ? parseCrs(p['clip-crs'], { locator: 'clip-crs' }) : CRS84;
    const encoding = raw.startsWith('{') ? 'geojson' : 'wkt';
    const text = encoding === 'wkt' ? raw.replace(/^\s*SRID=\d+;\s*/i, '') : raw;
    // check the area once, alone: parse errors and non-areal geometries are the client's mistake
    let type: string | undefined;
    try {
      const parsed = encoding === 'wkt' ? 'ST_GeomFromText($1::text)' : 'ST_GeomFromGeoJSON($1::text)';
      const r = await ctx.pool.query<{ d: number; t: string; minx: number; miny: number; maxx: number; maxy: number }>(
        `SELECT ST_Dimension(g) AS d, GeometryType(g) AS t, ST_XMin(g) AS minx, ST_YMin(g) AS miny, ST_XMax(g) AS maxx, ST_YMax(g) AS maxy
         FROM (SELECT ${parsed} AS g) s`,
        [text],
      );
      const row = r.rows[0];
      type = row?.d === 2 ? row.t : undefined;
      if (!type) throw invalidParam('clip', `clip must be a polygon or multipolygon, not ${row?.t ?? 'empty'}`);
      // coordinates PROJ cannot take (latitude beyond ±90…) are the client's mistake, not a 500
      const outside = outOfDomain({ minx: row.minx, miny: row.miny, maxx: row.maxx, maxy: row.maxy, epsg: crs.epsg });
      if (outside) throw invalidParam('clip', `clip ${outside}`);
    } catch (e) {
      if (e instanceof ServiceError) throw e;
      throw invalidParam('clip', `clip is not a valid ${encoding === 'wkt' ? 'WKT' : 'GeoJSON'} geometry: ${(e as Error).message}`);
    }
    if (crs.latLonOrder) {
      throw invalidParam(
        'clip-crs',
        `clip-crs '${p['clip-crs']}' has latitude first; give the clip in CRS84 (longitude, latitude) or a projected CRS`,
      );
    }
    return { area: { mode, geometry: { text, encoding, epsg: crs.epsg } }, label: 'area' };
  }
  const i = raw.lastIndexOf(':');
  if (i <= 0 || i === raw.length - 1) {
    throw invalidParam('clip', 'clip must be a WKT or GeoJSON polygon, or a reference layer:code (e.g. communes:67482)');
  }
  const lname = raw.slice(0, i);
  const value = raw.slice(i + 1);
  const blayer = layersFor(ctx, req).resolve(lname);
  if (!blayer) throw invalidParam('clip', `clip refers to an unknown layer '${lname}'`);
  const key = clipKeyOf(blayer);
  if (!key)
    throw invalidParam('clip', `layer '${blayer.name}' has neither a primary key nor a configured clipKey; it cannot be used to clip`);
  const r = await ctx.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${qualifiedTable(blayer.schema, blayer.table)} b WHERE (b.${quoteIdent(key)})::text = $1::text`,
    [value],
  );
  if (Number(r.rows[0].n) === 0) throw invalidParam('clip', `no feature of '${blayer.name}' has ${key} = '${value}'`);
  return { area: { mode, ref: { layer: blayer, key, value } }, label: `${blayer.name}-${value}` };
}

function geometryColumnsOption(p: Query): 'wkt' | 'xy' | 'both' | 'none' {
  const g = (p.geometry ?? 'wkt').toLowerCase();
  if (g === 'wkt' || g === 'xy' || g === 'both' || g === 'none') return g;
  throw invalidParam('geometry', `geometry must be wkt, xy, both or none, not '${p.geometry}'`);
}

async function handle(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const file = (req.params as { file: string }).file;
  const offered = serverFormats(ctx);
  const exts = offered.flatMap((f) => (f.download ? [f.download.ext] : [])).join(', ');
  const split = splitDownloadFile(file, FORMATS);
  if (!split) throw new ServiceError('not-found', `unknown download format in '${file}' (offered: ${exts})`);
  const def = split.def;
  if (!offered.includes(def)) {
    const why = def.requires.length ? ` (it needs ${neededToolsText(def)})` : '';
    throw new ServiceError('not-found', `${def.title} downloads are not offered by this server${why}; offered: ${exts}`);
  }
  // a dataset the caller may not read is unknown to it (src/security/access.ts)
  const layer = layersFor(ctx, req).resolve(split.name);
  if (!layer) throw new ServiceError('not-found', `unknown dataset '${split.name}'`);
  tagRequest(req, { service: 'DOWNLOAD', operation: def.download!.ext, layers: [layer.name] });
  const p = params(req);
  // a crs parameter is always checked; the format's table entry then decides (KML: always WGS 84;
  // GeoJSON: WGS 84 unless a CRS is asked; others: the layer's own CRS unless one is asked)
  const rawCrs = p.crs ?? p.srsname;
  const asked = rawCrs ? outputCrs(rawCrs, layer) : undefined;
  const epsg = outputCrsOf(def, asked, layer.srid);
  let filter;
  if (p.filter) {
    const lang = (p['filter-lang'] ?? 'cql2-text').toLowerCase();
    if (lang !== 'cql2-text') throw invalidParam('filter-lang', `filter-lang '${p['filter-lang']}' is not supported here (use cql2-text)`);
    filter = parseCql2Text(p.filter);
  }
  const clip = await parseClip(ctx, req, p);
  const q: FeatureQuery = {
    layer,
    filter,
    bbox: bboxOf(p.bbox, p['bbox-crs']),
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
  checkQuery(q);
  const filename = exportFileName([layer.name], epsg, def, clip?.label);
  const geometry = geometryColumnsOption(p);
  let csv: CsvWriterOptions = { geometry };
  if (def.id === 'csv') {
    const sepRaw = (p.sep ?? 'comma').toLowerCase();
    const sep = sepRaw === 'semicolon' || sepRaw === ';' ? ';' : sepRaw === 'comma' || sepRaw === ',' ? ',' : undefined;
    if (!sep) throw invalidParam('sep', `sep must be comma or semicolon, not '${p.sep}'`);
    csv = { separator: sep, bom: bool(p.bom, 'bom'), geometry };
  }
  // a whole dataset (or the part selected), no totals: exported as it streams (src/features/plan.ts)
  const plan = planCollection({ queries: [q], output: 'file', totals: 'none' });
  return await sendExport(ctx, req, reply, { format: def, queries: [pageQuery(plan, q)], filename, csv });
}

export function registerDownloads(app: FastifyInstance, ctx: AppContext): void {
  app.get('/downloads', async (req, reply) => {
    const base = baseUrlOf(req, ctx);
    const offered = serverFormats(ctx);
    const layers = layersFor(ctx, req).list();
    return reply.type('application/json; charset=utf-8').send({
      datasets: layers.map((l) => ({ name: l.name, title: l.title, downloads: downloadLinks(base, l, offered) })),
      parameters: ['filter (CQL2 text)', 'bbox', 'bbox-crs', 'crs', 'properties', 'clip', 'clip-crs', 'clipmode', 'sep', 'bom', 'geometry'],
    });
  });
  app.get('/downloads/:file', async (req, reply) => {
    try {
      return await handle(ctx, req, reply);
    } catch (e) {
      // engine and database errors from the request's values name no parameter: 'filter' or 'clip'
      return sendProblem(reply, req, e, { locator: (req.query as Record<string, unknown>)?.filter ? 'filter' : 'clip' });
    }
  });
}
