/**
 * What a request was about, for metrics and usage statistics: the service, the operation and
 * the layers it touched, plus how many features it returned. Front doors fill it in; the
 * onResponse hook reads it.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export interface RequestTags {
  service: string;
  operation: string;
  layers: string[];
  features: number;
}

type Tagged = FastifyRequest & { geodataTags?: RequestTags };

export function tagsOf(req: FastifyRequest): RequestTags {
  const r = req as Tagged;
  if (!r.geodataTags) r.geodataTags = { service: 'other', operation: 'other', layers: [], features: 0 };
  return r.geodataTags;
}

export function tagRequest(req: FastifyRequest, t: Partial<Pick<RequestTags, 'service' | 'operation'>> & { layers?: string[] }): void {
  const tags = tagsOf(req);
  if (t.service) tags.service = t.service;
  if (t.operation) tags.operation = t.operation;
  if (t.layers) for (const l of t.layers) if (!tags.layers.includes(l)) tags.layers.push(l);
}

/** Count features served by this request (called by the feature writers as they stream). */
export function addFeatures(req: FastifyRequest, n: number): void {
  tagsOf(req).features += n;
}

/** A request's id: the client's X-Request-Id when it is a plain token of at most 64 characters, a new UUID otherwise. */
export function requestIdOf(req: IncomingMessage): string {
  return requestIdFrom(req.headers);
}

/** The same from a request's headers (the tile fast path's connection front has no IncomingMessage). */
export function requestIdFrom(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}
