/**
 * Every front door registers here: OWS services through registerOwsService() (dispatched by
 * src/ows/service.ts on /ows, /wms, /wfs, /wmts, /csw), REST routes on the Fastify instance.
 * One line per service keeps parallel work from colliding.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { registerWfs } from './wfs/index.js';
import { registerWms } from './wms/index.js';
import { registerWmts } from './wmts/index.js';
import { registerOgcApi } from './ogcapi/index.js';
import { registerDownloads } from './downloads/index.js';
import { registerCatalogue } from './csw/index.js';

export async function registerServices(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // services register below, one line each
  registerWfs(app, ctx);
  registerWms(app, ctx);
  registerWmts(app, ctx);
  await registerOgcApi(app, ctx);
  registerDownloads(app, ctx);
  await registerCatalogue(app, ctx);
}
