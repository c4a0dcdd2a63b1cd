/** HTTP caching for tiles: ETag, Last-Modified, Cache-Control (max-age per layer), 304, X-Cache. */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Layer } from '../../registry/types.js';
import type { TileEngine, TileResult } from '../../tiles/engine.js';
import type { TileEntry } from '../../tiles/cache.js';

export const TILE_TYPES: Record<string, string> = { png: 'image/png', mvt: 'application/vnd.mapbox-vector-tile' };

export function maxAgeOf(layer: Layer, engine: TileEngine): number {
  const c = (layer.extra?.cache ?? {}) as Record<string, unknown>;
  const v = c.maxAge ?? c['max-age'];
  return typeof v === 'number' && v >= 0 ? Math.floor(v) : engine.opts.maxAge;
}

/** The Cache-Control of a layer's tiles: public for public layers, private otherwise. */
export function cacheControlOf(layer: Layer, engine: TileEngine): string {
  return `${layer.access.public ? 'public' : 'private'}, max-age=${maxAgeOf(layer, engine)}`;
}

const lastModified = new WeakMap<TileEntry, string>();

/** The Last-Modified of a tile (its creation, to the second), kept with the entry. */
export function lastModifiedOf(e: TileEntry): string {
  let v = lastModified.get(e);
  if (v === undefined) {
    v = new Date(Math.floor(e.created / 1000) * 1000).toUTCString();
    lastModified.set(e, v);
  }
  return v;
}

/** Whether the client's copy is current: If-None-Match (weak comparison, `*`), else If-Modified-Since. */
export function notModified(headers: IncomingHttpHeaders, e: TileEntry): boolean {
  const inm = headers['if-none-match'];
  if (inm) return inm.split(',').some((t) => t.trim().replace(/^W\//, '') === e.etag || t.trim() === '*');
  const ims = headers['if-modified-since'];
  if (!ims) return false;
  const t = Date.parse(ims);
  return Number.isFinite(t) && Math.floor(e.created / 1000) * 1000 <= t;
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
  reply.header('ETag', e.etag);
  reply.header('Last-Modified', lastModifiedOf(e));
  reply.header('Cache-Control', cacheControlOf(layer, engine));
  reply.header('X-Cache', r.hit ? 'HIT' : 'MISS');
  reply.header('X-Cache-Tier', r.source);
  if (notModified(req.headers, e)) return reply.code(304).send();
  return reply.code(200).type(TILE_TYPES[format]).send(e.data);
}
