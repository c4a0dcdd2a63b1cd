/**
 * The one classifier: anything thrown (a ServiceError, an engine's own error, a PostgreSQL or
 * pg-pool error, Fastify's own) → a ServiceError. Front doors never map errors themselves; they
 * throw, and their renderer calls classify().
 */
import { FilterError } from '../filter/errors.js';
import { ExportError } from '../features/export/files.js';
import { TileOutOfRange } from '../tiles/engine.js';
import { RenderTimeout, StyleNotFound } from '../render/index.js';
import { StyleError } from '../render/style.js';
import { RenderWorkerLost, WorkerRenderTimeout } from '../render/workers.js';
import { ClientGone, ServerBusy } from '../ops/gate.js';
import { AuthError } from '../security/auth.js';
import { XmlInputError } from '../ows/xmldom.js';
import { ExtentError } from '../crs/index.js';
import { ServiceError, type Kind } from './service-error.js';

const DB_DOWN = 'the database is unavailable; retry shortly';

/**
 * What a PostgreSQL (or pg / pg-pool) error means for the client, or null when it is not one.
 * - class 22 (data exception: a value that does not fit its type, a NUL byte, a number out of
 *   range…) and PostGIS's PROJ and geometry-parsing failures come from values the request gave:
 *   400 InvalidParameterValue;
 * - 57014 (statement_timeout) → 503 with Retry-After; a lost, restarting or overloaded database
 *   (class 08, 57P, 53, refused/reset connections, pool connect timeouts) → 503 with Retry-After.
 */
export function classifyDbError(e: unknown): ServiceError | null {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) {
    return new ServiceError('unavailable', DB_DOWN);
  }
  const msg = e instanceof Error ? e.message : '';
  // every pool connection busy for longer than the pool waits: the server is saturated, not broken
  if (/timeout exceeded when trying to connect/i.test(msg)) {
    return new ServiceError('busy', 'all database connections are busy; retry shortly', { retryAfter: 5 });
  }
  if (/Connection terminated|Client has encountered a connection error/.test(msg)) return new ServiceError('unavailable', DB_DOWN);
  // the server is stopping and its grace period ran out while this request was still working
  if (/Cannot use a pool after calling end/.test(msg)) {
    return new ServiceError('unavailable', 'the server is shutting down; retry shortly', { retryAfter: 2 });
  }
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return null;
  const clean = msg.replace(/\s+/g, ' ').slice(0, 200);
  if (code.startsWith('22')) return new ServiceError('invalid', `invalid value in the request: ${clean}`);
  if (code === '57014') return new ServiceError('timeout', 'the request took longer than the server allows and was cancelled');
  if (code.startsWith('08') || code.startsWith('57P') || code.startsWith('53')) {
    return new ServiceError('unavailable', 'the database is unavailable or overloaded; retry shortly');
  }
  if (code === 'XX000' && PROJ_FAILURE.test(msg)) {
    return new ServiceError('invalid', `coordinates or CRS of the request cannot be used: ${clean}`);
  }
  if (code === 'XX000' && GEOMETRY_PARSE.test(msg)) return new ServiceError('invalid', `invalid geometry in the request: ${clean}`);
  return null;
}

/** PostGIS errors raised by PROJ for a point outside a CRS's domain, or an SRID it does not know. */
const PROJ_FAILURE =
  /transform: |latitude or longitude exceeded|tolerance condition|could not form projection|Cannot find SRID|Invalid reserved SRID|Invalid SRID|GetProj4String|lwproj_from_str|proj_create|coordinate transformation|point not within|Invalid coordinate/i;
/** PostGIS's parsers of WKT / GeoJSON / GML given in a request. */
const GEOMETRY_PARSE = /parse error - invalid geometry|unknown GeoJSON type|Invalid GeoJSON|unable to parse|geometry requires more points/i;

/** Engine errors that carry their own meaning. */
function classifyEngineError(e: unknown): ServiceError | null {
  if (e instanceof FilterError) {
    // FeatureQueryError (unknown property, CRS out of range…) is a FilterError too
    return new ServiceError(e.code === 'OperationParsingFailed' ? 'parse' : 'invalid', e.message, { locator: e.locator ?? 'filter' });
  }
  if (e instanceof TileOutOfRange) return new ServiceError('tile-out-of-range', e.message, { locator: e.locator });
  if (e instanceof StyleNotFound) return new ServiceError('invalid', e.message, { locator: 'style', code: 'StyleNotDefined' });
  if (e instanceof RenderTimeout || e instanceof WorkerRenderTimeout) {
    return new ServiceError('timeout', e.message || 'the map took longer to render than the server allows');
  }
  if (e instanceof RenderWorkerLost) return new ServiceError('unavailable', e.message, { retryAfter: 1 });
  if (e instanceof ClientGone) return new ServiceError('client-gone', e.message || 'the client closed the connection');
  if (e instanceof ServerBusy) return new ServiceError('busy', e.message, { retryAfter: e.retryAfter });
  if (e instanceof ExportError) {
    const kind: Kind = e.status === 400 ? 'invalid' : e.status === 413 ? 'too-large' : e.status === 503 ? 'unavailable' : 'internal';
    return new ServiceError(kind, e.message, kind === 'unavailable' ? { retryAfter: 60 } : {});
  }
  if (e instanceof AuthError) return new ServiceError(e.status === 401 ? 'unauthenticated' : 'forbidden', e.message);
  if (e instanceof XmlInputError) return new ServiceError('parse', e.message, { locator: 'request' });
  if (e instanceof ExtentError) return new ServiceError('invalid', e.message, { locator: 'bbox' });
  if (e instanceof StyleError) return new ServiceError('internal', `style configuration error: ${e.message}`, { locator: 'styles' });
  return null;
}

/** Fastify's own errors (body too large, bad JSON, timeouts, rate limit) by status. */
function classifyHttpError(e: unknown, limits?: { maxBodyBytes?: number }): ServiceError | null {
  const status = (e as { statusCode?: unknown })?.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return null;
  const msg = e instanceof Error ? e.message : String(e);
  switch (status) {
    case 408:
      return new ServiceError('request-timeout', 'the request was not received in time');
    case 413:
      return new ServiceError('too-large', `request body larger than ${limits?.maxBodyBytes ?? 'allowed'} bytes`, { locator: 'request' });
    case 414:
      return new ServiceError('uri-too-long', 'the request URL is too long; send the request as a POST', { locator: 'request' });
    case 429:
      return new ServiceError('rate-limited', msg, { retryAfter: 60 });
    case 404:
      return new ServiceError('not-found', msg);
    case 406:
      return new ServiceError('not-acceptable', msg);
    case 415:
      return new ServiceError('invalid', msg, { locator: 'request' });
    default:
      return new ServiceError('invalid', msg, { locator: 'request' });
  }
}

export interface ClassifyOptions {
  /** Locator for errors that do not name one (e.g. a data exception from the filter's values). */
  locator?: string;
  /** Request id: an internal error's message names it so the log line can be found. */
  requestId?: string;
  limits?: { maxBodyBytes?: number };
}

/** Anything thrown → a ServiceError. Unknown errors become 'internal' without their internals. */
export function classify(e: unknown, opts: ClassifyOptions = {}): ServiceError {
  const se = (e instanceof ServiceError ? e : null) ?? classifyEngineError(e) ?? classifyDbError(e) ?? classifyHttpError(e, opts.limits);
  if (se) {
    if (opts.locator && !se.locator && se.status < 500) se.locator = opts.locator;
    return se;
  }
  return internalError(opts.requestId);
}

export function internalError(requestId?: string): ServiceError {
  return new ServiceError('internal', requestId ? `internal error (request id ${requestId})` : 'internal error');
}

/** True when classify() would answer 500: the error is ours and must be logged. */
export function isInternal(e: ServiceError): boolean {
  return e.kind === 'internal';
}
