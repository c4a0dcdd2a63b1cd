/**
 * Tiled WMS: a GetMap that is exactly one grid tile (256×256, aligned bbox, the CRS of a tile
 * matrix set, one layer, its default style, transparent PNG) is answered from the tile cache.
 * Called by the WMS GetMap handler before rendering; returns null when the request is not a tile.
 */
import type { OwsRequest } from '../../ows/service.js';
import type { MapParams } from '../wms/params.js';
import { matchTile } from '../../tiles/matrixsets.js';
import { layerStyles } from '../../render/style.js';
import { sendTile } from './http.js';

const EXTRA = ['SLD', 'SLD_BODY', 'CQL_FILTER', 'FILTER', 'TIME', 'ELEVATION', 'DIM_', 'BGCOLOR'];

export async function tiledGetMap(req: OwsRequest, mp: MapParams): Promise<unknown | null> {
  if (mp.layers.length !== 1 || mp.format !== 'image/png' || !mp.transparent) return null;
  if (Object.keys(req.kvp).some((k) => EXTRA.some((x) => k.startsWith(x)))) return null;
  const { layer, style } = mp.layers[0];
  if (style && style !== layerStyles(layer).defaultName) return null;
  const t = matchTile(mp.crs.epsg, mp.bbox, mp.width, mp.height);
  if (!t) return null;
  const engine = req.ctx.runtime.tiles;
  const r = await engine.getTile(layer, undefined, t.set, t.z, t.col, t.row, 'png');
  return sendTile(req.http, req.reply, layer, engine, r, 'png');
}
