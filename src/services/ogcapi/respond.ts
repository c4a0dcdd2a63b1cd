/**
 * What the OGC API route modules share: the media types, the request's tag, the caller's
 * collection, sending JSON or HTML with an ETag, engine errors as problems naming an OGC API
 * parameter, and the file formats of items.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { ServiceError } from '../../errors/service-error.js';
import { classify } from '../../errors/classify.js';
import { layersFor } from '../../security/access.js';
import { tagRequest } from '../../ops/tags.js';
import { ogcApiFileFormats, serverFormats, type FormatDef } from '../../features/formats.js';
import { sendWithEtag, type Format } from './common.js';

export const GEOJSON = 'application/geo+json';
export const JSON_T = 'application/json';
export const HTML_T = 'text/html';
export const OAS_T = 'application/vnd.oai.openapi+json;version=3.0';
export const REL_QUERYABLES = 'http://www.opengis.net/def/rel/ogc/1.0/queryables';

/** A route module: registers its routes in the OGC API scope (CORS, compression, problems: index.ts). */
export type OgcApiRoutes = (api: FastifyInstance, ctx: AppContext) => void;

/** Tag the request for metrics and usage statistics (service OGCAPI, the operation, its collections). */
export function svc(req: FastifyRequest, operation: string, layers?: string[]): void {
  tagRequest(req, { service: 'OGCAPI', operation, layers });
}

/** The collection `id` as the caller sees it; 404 when unknown or not readable by the caller. */
export function collectionOf(ctx: AppContext, req: FastifyRequest, id: string): Layer {
  // a collection the caller may not read is unknown to it (src/security/access.ts)
  const layer = layersFor(ctx, req).get(id);
  if (!layer) throw new ServiceError('not-found', `no collection '${id}'`);
  return layer;
}

/** A document as JSON (its media type) or as the HTML page `html()` builds, with a weak ETag (304 on If-None-Match). */
export function send(
  req: FastifyRequest,
  reply: FastifyReply,
  fmt: 'json' | 'html',
  doc: unknown,
  html: () => string,
  jsonType = JSON_T,
): FastifyReply {
  if (fmt === 'html') return sendWithEtag(req, reply, 'text/html; charset=utf-8', html());
  return sendWithEtag(req, reply, jsonType, JSON.stringify(doc));
}

/** The engine's locators in OGC API's parameter names. */
const PARAM_OF: Record<string, string> = { propertyName: 'properties', sortBy: 'sortby', bbox: 'bbox', cursor: 'cursor' };

/**
 * Anything thrown while answering → a ServiceError whose locator is an OGC API parameter:
 * request mistakes found by the engine or the filter compiler (and data exceptions from the
 * values they bound) name `properties`, `sortby`, `bbox` or else `filter`.
 */
export function apiError(e: unknown, req: FastifyRequest): ServiceError {
  const err = classify(e, { requestId: req.id });
  if (err.kind === 'internal' && !(e instanceof ServiceError)) req.log.error({ err: e }, 'OGC API request failed');
  if (err.status === 400 && !(e instanceof ServiceError)) {
    const param = PARAM_OF[err.locator ?? ''] ?? 'filter';
    err.locator = param;
    if (!err.message.startsWith('parameter ')) err.message = `parameter '${param}': ${err.message}`;
  }
  return err;
}

/** Throw what the engine threw as a problem naming the OGC API parameter at fault (apiError). */
export function engineProblem(e: unknown, req: FastifyRequest): never {
  throw apiError(e, req);
}

/** File formats of items and of one item besides GeoJSON and HTML: those of the format table this server offers. */
export function fileFormats(ctx: AppContext): FormatDef[] {
  return ogcApiFileFormats(serverFormats(ctx));
}

/** Media type of a representation, for links. */
export function mediaTypeOf(f: Format): string {
  return f === 'json' ? GEOJSON : f === 'html' ? HTML_T : f.mediaType;
}

/** Title of a representation, for links. */
export function titleOf(f: Format): string {
  return f === 'json' ? 'GeoJSON' : f === 'html' ? 'HTML' : f.title;
}
