/**
 * Tile front doors: WMTS 1.0.0 (KVP on /wmts and /ows, RESTful under /wmts/1.0.0/), XYZ and
 * vector tiles under /tiles/, and the admin endpoints to purge and seed (src/tiles does the work).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import { parseIntParam, required } from '../../ows/kvp.js';
import { registerOwsService, baseUrlOf, type OwsRequest } from '../../ows/service.js';
import { ServiceError, invalidParam } from '../../errors/service-error.js';
import { sendOws, sendProblem } from '../../errors/render.js';
import { tagRequest } from '../../ops/tags.js';
import { layersFor } from '../../security/access.js';
import { getFeatureInfo } from '../wms/featureinfo.js';
import type { Layer } from '../../registry/types.js';
import type { TileFormat } from '../../tiles/engine.js';
import { findMatrixSet, tileExtent, WEB_MERCATOR_QUAD, type TileMatrixSet } from '../../tiles/matrixsets.js';
import { transformExtent } from '../../crs/index.js';
import { parseBbox, parseTileIndex, parseZoomRange } from '../../request/params.js';
import type { Extent } from '../../registry/types.js';
import { seed } from '../../tiles/seed.js';
import { wmtsCapabilities, INFO_FORMATS } from './capabilities.js';
import { sendTile } from './http.js';
import { registerOgcApiTiles } from './ogcapi.js';

/** A layer the caller may read; any other name is not defined (src/security/access.ts). */
function findLayer(ctx: AppContext, http: FastifyRequest, name: string, locator = 'layer'): Layer {
  const l = layersFor(ctx, http).resolve(name);
  if (!l) throw new OwsException('InvalidParameterValue', `layer '${name}' is not defined`, locator);
  return l;
}

function findSet(id: string): TileMatrixSet {
  const s = findMatrixSet(id);
  if (!s)
    throw new OwsException(
      'InvalidParameterValue',
      `TileMatrixSet '${id}' is not defined (WebMercatorQuad, WorldCRS84Quad, LAMB93)`,
      'TileMatrixSet',
    );
  return s;
}

interface TileParams {
  layer: string;
  style?: string;
  set: string;
  matrix: string;
  row: string;
  col: string;
  format: string;
}

async function serveWmtsTile(ctx: AppContext, http: FastifyRequest, reply: FastifyReply, p: TileParams): Promise<FastifyReply> {
  const layer = findLayer(ctx, http, p.layer);
  tagRequest(http, { service: 'WMTS', operation: 'GetTile', layers: [layer.name] });
  const fmt = p.format.toLowerCase();
  const format: TileFormat | undefined =
    fmt === 'image/png' || fmt === 'png'
      ? 'png'
      : fmt === 'application/vnd.mapbox-vector-tile' || fmt === 'mvt' || fmt === 'pbf'
        ? 'mvt'
        : undefined;
  if (!format)
    throw new OwsException(
      'InvalidParameterValue',
      `format '${p.format}' is not offered (image/png, application/vnd.mapbox-vector-tile)`,
      'format',
    );
  const set = findSet(p.set);
  const z = parseTileIndex(p.matrix, 'TileMatrix');
  const row = parseTileIndex(p.row, 'TileRow');
  const col = parseTileIndex(p.col, 'TileCol');
  const engine = ctx.runtime.tiles;
  const style = p.style && p.style.toLowerCase() !== 'default' ? p.style : p.style?.toLowerCase() === 'default' ? 'default' : undefined;
  const r = await engine.getTile(layer, style, set, z, col, row, format);
  return sendTile(http, reply, layer, engine, r, format);
}

async function wmtsGetTile(req: OwsRequest): Promise<unknown> {
  const k = req.kvp;
  return serveWmtsTile(req.ctx, req.http, req.reply, {
    layer: required(k, 'LAYER'),
    style: k.STYLE ?? '',
    set: required(k, 'TILEMATRIXSET'),
    matrix: required(k, 'TILEMATRIX'),
    row: required(k, 'TILEROW'),
    col: required(k, 'TILECOL'),
    format: required(k, 'FORMAT'),
  });
}

async function wmtsGetFeatureInfo(req: OwsRequest): Promise<unknown> {
  const { ctx, kvp: k } = req;
  const layer = findLayer(ctx, req.http, required(k, 'LAYER'));
  if (!layer.queryable) throw new OwsException('OperationNotSupported', `layer '${layer.name}' is not queryable`, 'layer');
  const set = findSet(required(k, 'TILEMATRIXSET'));
  const z = parseTileIndex(required(k, 'TILEMATRIX'), 'TileMatrix');
  const row = parseTileIndex(required(k, 'TILEROW'), 'TileRow');
  const col = parseTileIndex(required(k, 'TILECOL'), 'TileCol');
  ctx.runtime.tiles.checkTile(set, z, col, row);
  const i = parseIntParam(k, 'I', { min: 0, max: set.tileSize - 1 });
  const j = parseIntParam(k, 'J', { min: 0, max: set.tileSize - 1 });
  if (i === undefined) throw new OwsException('MissingParameterValue', "missing parameter 'I'", 'I');
  if (j === undefined) throw new OwsException('MissingParameterValue', "missing parameter 'J'", 'J');
  const info = required(k, 'INFOFORMAT');
  if (!INFO_FORMATS.includes(info.toLowerCase()))
    throw new OwsException('InvalidParameterValue', `InfoFormat '${info}' is not offered (${INFO_FORMATS.join(', ')})`, 'InfoFormat');
  const e = tileExtent(set, z, col, row);
  // the WMS GetFeatureInfo engine, on the tile as a 256×256 map (CRS:84 keeps lon/lat order)
  const wmsKvp = {
    LAYERS: layer.name,
    QUERY_LAYERS: layer.name,
    STYLES: k.STYLE && k.STYLE.toLowerCase() !== 'default' ? k.STYLE : '',
    CRS: set.epsg === 4326 ? 'CRS:84' : `EPSG:${set.epsg}`,
    BBOX: `${e.minx},${e.miny},${e.maxx},${e.maxy}`,
    WIDTH: String(set.tileSize),
    HEIGHT: String(set.tileSize),
    I: String(i),
    J: String(j),
    INFO_FORMAT: info,
    FEATURE_COUNT: k.FEATURE_COUNT ?? '10',
    FORMAT: 'image/png',
  };
  const r = await getFeatureInfo(ctx, wmsKvp, '1.3.0');
  return req.reply.code(200).type(r.contentType).send(r.body);
}

/** Admin bbox: minlon,minlat,maxlon,maxlat in EPSG:4326 (CRS84 order), as a string or an array. */
function adminBbox(v: unknown): Extent | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return parseBbox(Array.isArray(v) ? v.map(String) : String(v), { locator: 'bbox' });
}

export function registerWmts(app: FastifyInstance, ctx: AppContext): void {
  registerOwsService({
    name: 'WMTS',
    versions: ['1.0.0'],
    negotiation: 'ows',
    operations: {
      GetCapabilities: async (req) =>
        req.reply
          .code(200)
          .type('application/xml; charset=UTF-8')
          .send(wmtsCapabilities(req.ctx, req.ctx.registry.list(), req.baseUrl)),
      GetTile: wmtsGetTile,
      GetFeatureInfo: wmtsGetFeatureInfo,
    },
  });

  registerOgcApiTiles(app, ctx);

  app.get('/wmts/1.0.0/WMTSCapabilities.xml', async (req, reply) => {
    tagRequest(req, { service: 'WMTS', operation: 'GetCapabilities' });
    return reply
      .code(200)
      .type('application/xml; charset=UTF-8')
      .send(wmtsCapabilities(ctx, layersFor(ctx, req).list(), baseUrlOf(req, ctx)));
  });

  app.get<{ Params: { layer: string; style: string; set: string; z: string; row: string; col: string } }>(
    '/wmts/1.0.0/:layer/:style/:set/:z/:row/:col',
    async (req, reply) => {
      const m = req.params.col.match(/^(-?\d+)\.(png|mvt|pbf)$/);
      try {
        if (!m) throw new OwsException('InvalidParameterValue', `'${req.params.col}' is not {TileCol}.png`, 'TileCol');
        return await serveWmtsTile(ctx, req, reply, {
          layer: req.params.layer,
          style: req.params.style,
          set: req.params.set,
          matrix: req.params.z,
          row: req.params.row,
          col: m[1],
          format: m[2],
        });
      } catch (e) {
        // RESTful WMTS (07-057r7 §10.2): a tile outside the matrix limits is 404
        return sendOws(reply, req, e, 'WMTS', '1.0.0', { binding: 'rest' });
      }
    },
  );

  // XYZ (WebMercatorQuad): /tiles/{layer}/{z}/{x}/{y}.png and .mvt
  app.get<{ Params: { layer: string; z: string; x: string; y: string }; Querystring: { style?: string } }>(
    '/tiles/:layer/:z/:x/:y',
    async (req, reply) => {
      try {
        const m = req.params.y.match(/^(\d+)\.(png|mvt|pbf)$/);
        if (!m) throw new ServiceError('not-found', `'${req.params.y}' is not {y}.png or {y}.mvt`);
        // a layer the caller may not read is unknown to it (src/security/access.ts)
        const layer = layersFor(ctx, req).resolve(req.params.layer);
        if (!layer) throw new ServiceError('not-found', `layer '${req.params.layer}' is not defined`);
        tagRequest(req, { service: 'Tiles', operation: m[2] === 'png' ? 'GetTile' : 'GetVectorTile', layers: [layer.name] });
        if (!/^\d+$/.test(req.params.z) || !/^\d+$/.test(req.params.x))
          throw new ServiceError('invalid', 'z and x must be non-negative integers', { locator: /^\d+$/.test(req.params.z) ? 'x' : 'z' });
        const format: TileFormat = m[2] === 'png' ? 'png' : 'mvt';
        const engine = ctx.runtime.tiles;
        const r = await engine.getTile(
          layer,
          req.query.style,
          WEB_MERCATOR_QUAD,
          Number(req.params.z),
          Number(req.params.x),
          Number(m[1]),
          format,
        );
        return sendTile(req, reply, layer, engine, r, format);
      } catch (e) {
        // the same answers as WMTS RESTful and OGC API – Tiles: a tile outside the matrix is 404
        return sendProblem(reply, req, e);
      }
    },
  );

  // Admin: purge a layer's tiles (all, or over a bbox in EPSG:4326 and a zoom range)
  app.post<{ Body: Record<string, unknown> | undefined; Querystring: Record<string, string> }>('/admin/tiles/purge', async (req) => {
    const b = { ...(req.query ?? {}), ...(typeof req.body === 'object' && req.body ? req.body : {}) } as Record<string, unknown>;
    const layer = typeof b.layer === 'string' ? ctx.registry.resolve(b.layer) : undefined;
    if (!layer) throw invalidParam('layer', `give an existing 'layer' to purge`);
    const bbox = adminBbox(b.bbox);
    const zooms = parseZoomRange(b.zoom, 20);
    const engine = ctx.runtime.tiles;
    await engine.ready();
    if (!bbox) {
      await engine.purgeLayer(layer);
      return { layer: layer.name, purged: 'all' };
    }
    const box = layer.srid === 4326 ? bbox : transformExtent(bbox, 4326, layer.srid);
    const n = await engine.invalidateBoxes(layer, [box], zooms);
    return { layer: layer.name, purged: n };
  });

  // Admin: seed (bounded: at most 5000 metatiles per request; the CLI has no such bound)
  app.post<{ Body: Record<string, unknown> | undefined; Querystring: Record<string, string> }>('/admin/tiles/seed', async (req) => {
    const b = { ...(req.query ?? {}), ...(typeof req.body === 'object' && req.body ? req.body : {}) } as Record<string, unknown>;
    const layer = typeof b.layer === 'string' ? ctx.registry.resolve(b.layer) : undefined;
    if (!layer) throw invalidParam('layer', `give an existing 'layer' to seed`);
    const set = findMatrixSet(String(b.matrixset ?? 'WebMercatorQuad'));
    if (!set) throw invalidParam('matrixset', `unknown matrixset '${b.matrixset}'`);
    const zooms = parseZoomRange(b.zoom, set.matrices.length - 1);
    if (!zooms) throw invalidParam('zoom', `give 'zoom' (N or N-M)`);
    const engine = ctx.runtime.tiles;
    const { planSeed } = await import('../../tiles/seed.js');
    const opts = {
      layer,
      set,
      zooms,
      bbox: adminBbox(b.bbox),
      style: typeof b.style === 'string' ? b.style : undefined,
      concurrency: Math.min(4, Number(b.concurrency) || 2),
      format: (b.format === 'mvt' ? 'mvt' : 'png') as TileFormat,
    };
    const plan = await planSeed(engine, opts);
    if (plan.length > 5000) throw invalidParam('zoom', `${plan.length} metatiles is more than one request seeds (5000); use the seed CLI`);
    const p = await seed(engine, opts);
    return {
      layer: layer.name,
      matrixset: set.id,
      zoom: zooms,
      metatiles: p.total,
      tiles: p.tiles,
      seconds: Number((p.total / Math.max(p.rate, 1e-9)).toFixed(2)),
    };
  });
}
