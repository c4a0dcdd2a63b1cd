/** HTTP caching for tiles: ETag, Last-Modified, Cache-Control (max-age per layer), 304, X-Cache. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Layer } from '../../registry/types.js';
import type { TileEngine, TileResult } from '../../tiles/engine.js';

export const TILE_TYPES: Record<string, string> = { png: 'image/png', mvt: 'application/vnd.mapbox-vector-tile' };

export function maxAgeOf(layer: Layer, engine: TileEngine): number {
  const c = (layer.extra?.cache ?? {}) as Record<string, unknown>;
  const v = c.maxAge ?? c['max-age'];
  return typeof v === 'number' && v >= 0 ? Math.floor(v) : engine.opts.maxAge;
}

export function sendTile(
  req: FastifyRequest,
  reply: FastifyReply,
  layer: Layer,
  engine: TileEngine,
  r: TileResult,
  format: 'png' | 'mvt',
): FastifyReply {
  const e = r.entry;
  const maxAge = maxAgeOf(layer, engine);
  reply.header('ETag', e.etag);
  reply.header('Last-Modified', new Date(Math.floor(e.created / 1000) * 1000).toUTCString());
  reply.header('Cache-Control', `${layer.access.public ? 'public' : 'private'}, max-age=${maxAge}`);
  reply.header('X-Cache', r.hit ? 'HIT' : 'MISS');
  reply.header('X-Cache-Tier', r.source);
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === e.etag || t.trim() === '*')) return reply.code(304).send();
  const ims = req.headers['if-modified-since'];
  if (!inm && ims) {
    const t = Date.parse(ims);
    if (Number.isFinite(t) && Math.floor(e.created / 1000) * 1000 <= t) return reply.code(304).send();
  }
  return reply.code(200).type(TILE_TYPES[format]).send(e.data);
}
