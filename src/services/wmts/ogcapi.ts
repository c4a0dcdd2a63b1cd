/**
 * OGC API – Tiles (part 1, core + TileMatrixSets): the same cached tiles as WMTS/XYZ.
 *   /tileMatrixSets, /tileMatrixSets/{id}                    (OGC 2D TMS 2.0 JSON)
 *   /collections/{id}/tiles[/{tms}[/{z}/{row}/{col}]]         vector tiles (MVT)
 *   /collections/{id}/map/tiles[/{tms}[/{z}/{row}/{col}]]     map tiles (PNG)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { baseUrlOf } from '../../ows/service.js';
import { tagRequest } from '../../ops/tags.js';
import { layersFor } from '../../security/access.js';
import { ServiceError } from '../../errors/service-error.js';
import { parseTileIndex } from '../../request/params.js';
import type { Layer } from '../../registry/types.js';
import type { TileFormat } from '../../tiles/engine.js';
import { MATRIX_SETS, type TileMatrixSet } from '../../tiles/matrixsets.js';
import { sendTile } from './http.js';

const OGC_URI: Record<string, string> = {
  WebMercatorQuad: 'http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad',
  WorldCRS84Quad: 'http://www.opengis.net/def/tilematrixset/OGC/1.0/WorldCRS84Quad',
};
const CRS_URI: Record<number, string> = {
  3857: 'http://www.opengis.net/def/crs/EPSG/0/3857',
  4326: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84',
  2154: 'http://www.opengis.net/def/crs/EPSG/0/2154',
};

export function tmsJson(set: TileMatrixSet, base: string) {
  return {
    id: set.id,
    title: set.title,
    ...(OGC_URI[set.id] ? { uri: OGC_URI[set.id] } : {}),
    crs: CRS_URI[set.epsg],
    orderedAxes: set.epsg === 4326 ? ['Lon', 'Lat'] : ['E', 'N'],
    ...(set.wellKnownScaleSet ? { wellKnownScaleSet: 'http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible' } : {}),
    tileMatrices: set.matrices.map((m) => ({
      id: m.id,
      scaleDenominator: m.scaleDenominator,
      cellSize: m.resolution,
      cornerOfOrigin: 'topLeft',
      pointOfOrigin: set.origin,
      tileWidth: set.tileSize,
      tileHeight: set.tileSize,
      matrixWidth: m.matrixWidth,
      matrixHeight: m.matrixHeight,
    })),
    links: [{ rel: 'self', type: 'application/json', href: `${base}/tileMatrixSets/${set.id}` }],
  };
}

export function registerOgcApiTiles(app: FastifyInstance, ctx: AppContext): void {
  const setById = (id: string) => MATRIX_SETS.find((s) => s.id === id);

  app.get('/tileMatrixSets', async (req) => {
    tagRequest(req, { service: 'Tiles', operation: 'TileMatrixSets' });
    const base = baseUrlOf(req, ctx);
    return {
      tileMatrixSets: MATRIX_SETS.map((s) => ({
        id: s.id,
        title: s.title,
        ...(OGC_URI[s.id] ? { uri: OGC_URI[s.id] } : {}),
        crs: CRS_URI[s.epsg],
        links: [{ rel: 'self', type: 'application/json', href: `${base}/tileMatrixSets/${s.id}` }],
      })),
    };
  });
  app.get<{ Params: { tms: string } }>('/tileMatrixSets/:tms', async (req) => {
    const set = setById(req.params.tms);
    if (!set) throw new ServiceError('not-found', `no tile matrix set '${req.params.tms}'`);
    return tmsJson(set, baseUrlOf(req, ctx));
  });

  /** The collection, readable by this caller: a layer it may not read is unknown to it (src/security/access.ts). */
  const layerOr = (req: FastifyRequest, id: string): Layer => {
    const layer = layersFor(ctx, req).resolve(id);
    if (!layer) throw new ServiceError('not-found', `no collection '${id}'`);
    return layer;
  };

  for (const kind of ['vector', 'map'] as const) {
    const prefix = kind === 'vector' ? '/collections/:collectionId/tiles' : '/collections/:collectionId/map/tiles';
    const format: TileFormat = kind === 'vector' ? 'mvt' : 'png';
    const mediaType = kind === 'vector' ? 'application/vnd.mapbox-vector-tile' : 'image/png';
    const tileset = (layer: Layer, set: TileMatrixSet, base: string) => {
      const path = `${base}/collections/${encodeURIComponent(layer.name)}${kind === 'vector' ? '' : '/map'}/tiles/${set.id}`;
      return {
        title: `${layer.title} (${set.id})`,
        dataType: kind,
        crs: CRS_URI[set.epsg],
        tileMatrixSetURI: OGC_URI[set.id],
        links: [
          { rel: 'self', type: 'application/json', href: path },
          {
            rel: 'http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme',
            type: 'application/json',
            href: `${base}/tileMatrixSets/${set.id}`,
          },
          { rel: 'item', type: mediaType, templated: true, href: `${path}/{tileMatrix}/{tileRow}/{tileCol}` },
        ],
        ...(kind === 'vector'
          ? {
              layers: [
                {
                  id: layer.name,
                  dataType: 'vector',
                  geometryDimension: /POINT/.test(layer.geometryType) ? 0 : /LINE/.test(layer.geometryType) ? 1 : 2,
                },
              ],
            }
          : {}),
      };
    };
    app.get<{ Params: { collectionId: string } }>(prefix, async (req) => {
      const layer = layerOr(req, req.params.collectionId);
      const base = baseUrlOf(req, ctx);
      return {
        links: [{ rel: 'self', type: 'application/json', href: `${base}${req.url.split('?')[0]}` }],
        tilesets: MATRIX_SETS.map((s) => tileset(layer, s, base)),
      };
    });
    app.get<{ Params: { collectionId: string; tms: string } }>(`${prefix}/:tms`, async (req) => {
      const layer = layerOr(req, req.params.collectionId);
      const set = setById(req.params.tms);
      if (!set) throw new ServiceError('not-found', `no tile matrix set '${req.params.tms}'`);
      return tileset(layer, set, baseUrlOf(req, ctx));
    });
    app.get<{ Params: { collectionId: string; tms: string; z: string; row: string; col: string }; Querystring: { style?: string } }>(
      `${prefix}/:tms/:z/:row/:col`,
      async (req, reply) => {
        const layer = layerOr(req, req.params.collectionId);
        tagRequest(req, { service: 'Tiles', operation: kind === 'vector' ? 'GetVectorTile' : 'GetTile', layers: [layer.name] });
        const set = setById(req.params.tms);
        if (!set) throw new ServiceError('not-found', `no tile matrix set '${req.params.tms}'`);
        const z = parseTileIndex(req.params.z, 'tileMatrix');
        const row = parseTileIndex(req.params.row, 'tileRow');
        const col = parseTileIndex(req.params.col, 'tileCol');
        const engine = ctx.runtime.tiles;
        // OGC API – Tiles: a tile outside the matrix is a 404 (TileOutOfRange on a REST path)
        const r = await engine.getTile(layer, req.query.style, set, z, col, row, format);
        return sendTile(req, reply, layer, engine, r, format);
      },
    );
  }
}
