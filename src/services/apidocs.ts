/**
 * The API's documentation for people: Swagger UI (@fastify/swagger-ui, its assets served from the
 * package, no CDN) at /api.html over openapi.yaml, registered through @fastify/swagger in static
 * mode. The document is the same one /api and /openapi.yaml serve, with this server's URL and
 * configured limits filled in per request.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { baseUrlOf } from '../ows/service.js';
import { openApiDocument } from './ogcapi/index.js';

export const API_DOCS_PREFIX = '/api.html';

export async function registerApiDocs(app: FastifyInstance, ctx: AppContext): Promise<void> {
  await app.register(swagger, { mode: 'static', specification: { document: openApiDocument(ctx, '') as never } });
  await app.register(swaggerUi, {
    routePrefix: API_DOCS_PREFIX,
    // the limits and the server URL are those of this request's server
    transformSpecification: (_spec, req) => openApiDocument(ctx, baseUrlOf(req, ctx)),
    transformSpecificationClone: false,
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: true },
  });
}
