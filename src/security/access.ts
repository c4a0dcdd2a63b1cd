/**
 * One notion of "the layers this caller may read", for every front door (WMS, WFS, WMTS/XYZ/MVT,
 * OGC API Features and Tiles, downloads, landing page, usage statistics).
 *
 * A request's view of the registry (layersFor) lists only the layers its principal may read, and
 * looking up any other layer answers undefined, exactly as for a name that does not exist: a
 * caller without the right learns nothing about a restricted layer, not even that it exists
 * (GeoServer's "hide" catalogue mode). See docs/security.md for the whole access model.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import type { Registry } from '../registry/registry.js';
import type { Layer } from '../registry/types.js';
import { tagRequest } from '../ops/tags.js';
import { ANONYMOUS, canRead, principalOf } from './auth.js';

const VIEW = Symbol('layerView');

type WithView = FastifyRequest & { [VIEW]?: { base: Registry; view: Registry } };

/**
 * The registry as the caller of `req` sees it. Built once per request (and again if the registry
 * object changes). Layers the request names through it are tagged for metrics and usage.
 */
export function layersFor(ctx: AppContext, req: FastifyRequest): Registry {
  const base = ctx.registry.unrestricted;
  const r = req as WithView;
  const held = r[VIEW];
  if (held && held.base === base) return held.view;
  const principal = principalOf(req);
  const view = base.viewFor(
    (l) => canRead(l, principal),
    (l) => tagRequest(req, { layers: [l.name] }),
  );
  r[VIEW] = { base, view };
  return view;
}

/** The layers anyone may read (catalogue records, public listings built without a request). */
export function publicLayers(registry: Registry): Layer[] {
  return registry.list().filter((l) => canRead(l, ANONYMOUS));
}

/**
 * What a response may be cached as, now that its content depends on the caller: it varies with
 * the credentials (Vary: Authorization, X-API-Key), and an authenticated caller's response is
 * `private` unless the front door said otherwise; answers a front door calls `public` (tiles of
 * public layers) are left as they are. An onSend hook.
 */
export function accessCacheHeaders(req: FastifyRequest, reply: FastifyReply): void {
  // a front door that calls its answer public (tiles of public layers) knows it is the same for everyone
  if (/\bpublic\b/i.test(String(reply.getHeader('cache-control') ?? ''))) return;
  const vary = String(reply.getHeader('vary') ?? '');
  const missing = ['Authorization', 'X-API-Key'].filter((h) => !new RegExp(`(^|,)\\s*${h}\\s*(,|$)`, 'i').test(vary));
  if (missing.length && vary.trim() !== '*') reply.header('Vary', [vary, ...missing].filter(Boolean).join(', '));
  if (principalOf(req).authenticated && !reply.hasHeader('cache-control')) reply.header('Cache-Control', 'private');
}
