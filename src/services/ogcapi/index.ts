/**
 * OGC API – Features Parts 1 (Core, HTML, GeoJSON, OpenAPI 3.0), 2 (CRS by reference) and 3
 * (Queryables, CQL2 text/JSON filters), mounted at the server root next to the landing page.
 * Every query goes through the shared feature engine (src/features) — the same path as WFS.
 *
 * One scope (CORS, compression, errors as problems) holding the route modules:
 *   core.ts         /conformance, /api (the OpenAPI document)
 *   collections.ts  /collections, /collections/{id}
 *   queryables.ts   /collections/{id}/queryables
 *   items.ts        /collections/{id}/items, /collections/{id}/items/{featureId}
 * with what they share in respond.ts (sending, errors, formats), common.ts (negotiation, CRSs,
 * links, ETags) and params.ts (the items parameters). OGC API – Tiles lives with the tiles
 * (src/services/wmts/ogcapi.ts).
 */
import type { FastifyInstance } from 'fastify';
import compress from '@fastify/compress';
import type { AppContext } from '../../context.js';
import { sendProblem } from '../../errors/render.js';
import { registerCollectionRoutes } from './collections.js';
import { registerCoreRoutes } from './core.js';
import { registerItemsRoutes } from './items.js';
import { registerQueryablesRoutes } from './queryables.js';
import { apiError, type OgcApiRoutes } from './respond.js';

export { openApiDocument } from './core.js';

const ROUTES: OgcApiRoutes[] = [registerCoreRoutes, registerCollectionRoutes, registerQueryablesRoutes, registerItemsRoutes];

export async function registerOgcApi(app: FastifyInstance, ctx: AppContext): Promise<void> {
  await app.register(async (api) => {
    // CORS: for every front door, in src/app.ts
    await api.register(compress, { encodings: ['br', 'gzip', 'deflate'], threshold: 1024 });
    api.setErrorHandler((error, req, reply) => sendProblem(reply, req, apiError(error, req)));
    for (const routes of ROUTES) routes(api, ctx);
  });
}
