/**
 * The one error every front door throws and every renderer writes. A ServiceError says what
 * went wrong (its kind), in words a client can act on (message), where (locator: the parameter,
 * element or property at fault) and, when the server is only busy, when to come back
 * (retryAfter). The HTTP status, the OWS exceptionCode and the RFC 7807 title all follow from
 * the kind (table KINDS); a protocol-specific code (WMS LayerNotDefined, WMTS TileOutOfRange…)
 * may refine the exceptionCode, never the status.
 *
 * Engines (features, filter, render, tiles) throw their own errors and know nothing of HTTP;
 * classify() (./classify.ts) turns anything thrown into a ServiceError.
 */

export type Kind =
  /** A required parameter is absent. */
  | 'missing'
  /** A parameter has a value the server cannot use (bad number, unknown CRS, unknown layer…). */
  | 'invalid'
  /** The request document or expression cannot be parsed (XML, FES, CQL2). */
  | 'parse'
  /** The operation is not one of the service's (the client's mistake: 400). */
  | 'unsupported-operation'
  /** A valid option the server does not offer. */
  | 'unsupported-option'
  /** AcceptVersions names no version the server speaks. */
  | 'version'
  /** The standard defines it, this server does not implement it (501). */
  | 'not-implemented'
  /** No such resource (a collection, a record, a feature by id). */
  | 'not-found'
  /** A tile address outside the tile matrix limits (400 TileOutOfRange in KVP, 404 on REST paths). */
  | 'tile-out-of-range'
  /** No credentials, or wrong ones: 401 with a WWW-Authenticate challenge. */
  | 'unauthenticated'
  /** Authenticated, but not allowed. */
  | 'forbidden'
  /** No representation matches Accept. */
  | 'not-acceptable'
  /** The request (its body) did not arrive in time. */
  | 'request-timeout'
  /** The request body is larger than allowed. */
  | 'too-large'
  /** The request line is longer than allowed. */
  | 'uri-too-long'
  /** Too many requests from this caller. */
  | 'rate-limited'
  /** No slot free now (export gate, render queue): retry soon. */
  | 'busy'
  /** The statement ran past its time limit and was cancelled. */
  | 'timeout'
  /** The database cannot be reached, restarts or is overloaded. */
  | 'unavailable'
  /** The client left before its answer (nginx's 499): not the server's error, not logged. */
  | 'client-gone'
  /** The server's own fault: logged, answered without internals. */
  | 'internal';

/** OWS exception codes (OWS Common 1.1 table 25, WMS 1.3.0 annex E, WMTS 1.0 table 27, WFS 2.0 table 3). */
export type OwsCode =
  | 'MissingParameterValue'
  | 'InvalidParameterValue'
  | 'VersionNegotiationFailed'
  | 'InvalidUpdateSequence'
  | 'OptionNotSupported'
  | 'OperationNotSupported'
  | 'OperationParsingFailed'
  | 'OperationProcessingFailed'
  | 'NoApplicableCode'
  | 'NotFound'
  | 'ResponseCacheExpired'
  | 'ServerBusy'
  | 'Unauthorized'
  | 'Forbidden'
  // WMS codes
  | 'InvalidFormat'
  | 'InvalidCRS'
  | 'InvalidSRS'
  | 'LayerNotDefined'
  | 'StyleNotDefined'
  | 'LayerNotQueryable'
  | 'InvalidPoint'
  | 'CurrentUpdateSequence'
  | 'MissingDimensionValue'
  | 'InvalidDimensionValue'
  // WMTS
  | 'TileOutOfRange';

interface KindInfo {
  status: number;
  /** Status on REST paths (XYZ, WMTS RESTful, OGC API) when it differs. */
  restStatus?: number;
  code: OwsCode;
  title: string;
}

/** Everything a kind implies. */
export const KINDS: Record<Kind, KindInfo> = {
  missing: { status: 400, code: 'MissingParameterValue', title: 'Bad Request' },
  invalid: { status: 400, code: 'InvalidParameterValue', title: 'Bad Request' },
  parse: { status: 400, code: 'OperationParsingFailed', title: 'Bad Request' },
  'unsupported-operation': { status: 400, code: 'OperationNotSupported', title: 'Bad Request' },
  'unsupported-option': { status: 400, code: 'OptionNotSupported', title: 'Bad Request' },
  version: { status: 400, code: 'VersionNegotiationFailed', title: 'Bad Request' },
  'not-implemented': { status: 501, code: 'OperationNotSupported', title: 'Not Implemented' },
  'not-found': { status: 404, code: 'NotFound', title: 'Not Found' },
  // WMTS 1.0 table 27: TileOutOfRange is 400 in KVP; WMTS RESTful (§10.2) and OGC API – Tiles say 404
  'tile-out-of-range': { status: 400, restStatus: 404, code: 'TileOutOfRange', title: 'Not Found' },
  unauthenticated: { status: 401, code: 'Unauthorized', title: 'Unauthorized' },
  forbidden: { status: 403, code: 'Forbidden', title: 'Forbidden' },
  'not-acceptable': { status: 406, code: 'InvalidParameterValue', title: 'Not Acceptable' },
  'request-timeout': { status: 408, code: 'NoApplicableCode', title: 'Request Timeout' },
  'too-large': { status: 413, code: 'InvalidParameterValue', title: 'Payload Too Large' },
  'uri-too-long': { status: 414, code: 'InvalidParameterValue', title: 'URI Too Long' },
  'rate-limited': { status: 429, code: 'ServerBusy', title: 'Too Many Requests' },
  busy: { status: 503, code: 'ServerBusy', title: 'Service Unavailable' },
  timeout: { status: 503, code: 'NoApplicableCode', title: 'Service Unavailable' },
  unavailable: { status: 503, code: 'NoApplicableCode', title: 'Service Unavailable' },
  'client-gone': { status: 499, code: 'NoApplicableCode', title: 'Client Closed Request' },
  internal: { status: 500, code: 'NoApplicableCode', title: 'Internal Server Error' },
};

/** The kind an OWS code stands for (the OwsException constructor's way in). */
const KIND_OF_CODE: Record<OwsCode, Kind> = {
  MissingParameterValue: 'missing',
  MissingDimensionValue: 'missing',
  InvalidParameterValue: 'invalid',
  InvalidFormat: 'invalid',
  InvalidCRS: 'invalid',
  InvalidSRS: 'invalid',
  LayerNotDefined: 'invalid',
  StyleNotDefined: 'invalid',
  LayerNotQueryable: 'invalid',
  InvalidPoint: 'invalid',
  InvalidDimensionValue: 'invalid',
  InvalidUpdateSequence: 'invalid',
  CurrentUpdateSequence: 'invalid',
  VersionNegotiationFailed: 'version',
  OptionNotSupported: 'unsupported-option',
  OperationNotSupported: 'unsupported-operation',
  OperationParsingFailed: 'parse',
  OperationProcessingFailed: 'internal',
  NoApplicableCode: 'internal',
  NotFound: 'not-found',
  ResponseCacheExpired: 'not-found',
  ServerBusy: 'busy',
  Unauthorized: 'unauthenticated',
  Forbidden: 'forbidden',
  TileOutOfRange: 'tile-out-of-range',
};

export interface ServiceErrorOptions {
  locator?: string;
  /** Seconds (Retry-After) for busy / timeout / unavailable / rate-limited. */
  retryAfter?: number;
  /** A protocol-specific exceptionCode refining the kind's (e.g. LayerNotDefined). */
  code?: OwsCode;
  /** Override of the kind's status, for the few cases a standard sets apart. */
  status?: number;
  /** Extra response headers (WWW-Authenticate…). */
  headers?: Record<string, string>;
}

export class ServiceError extends Error {
  readonly kind: Kind;
  locator?: string;
  retryAfter?: number;
  /** The OWS exceptionCode (the kind's, or the refinement given). */
  readonly code: OwsCode;
  private readonly statusOverride?: number;
  readonly headers: Record<string, string>;

  constructor(kind: Kind, message: string, opts: ServiceErrorOptions = {}) {
    super(message);
    this.name = 'ServiceError';
    this.kind = kind;
    this.locator = opts.locator;
    this.code = opts.code ?? KINDS[kind].code;
    this.statusOverride = opts.status;
    this.headers = { ...(opts.headers ?? {}) };
    const retry = opts.retryAfter ?? (kind === 'busy' || kind === 'timeout' || kind === 'unavailable' ? defaultRetry(kind) : undefined);
    if (retry !== undefined) {
      this.retryAfter = retry;
      this.headers['Retry-After'] = String(retry);
    }
  }

  /** HTTP status in a KVP/XML (OWS) binding. */
  get status(): number {
    return this.statusOverride ?? KINDS[this.kind].status;
  }

  /** HTTP status on a REST path (XYZ, WMTS RESTful, OGC API, downloads, catalogue). */
  get restStatus(): number {
    return this.statusOverride ?? KINDS[this.kind].restStatus ?? KINDS[this.kind].status;
  }
}

function defaultRetry(kind: Kind): number {
  return kind === 'busy' ? 2 : 5;
}

/**
 * The OWS-code way to build a ServiceError (`new OwsException('InvalidParameterValue', msg, 'bbox')`):
 * the kind follows from the code. Same class for every consumer: `instanceof ServiceError` holds.
 */
export class OwsException extends ServiceError {
  constructor(code: OwsCode, message: string, locator?: string, status?: number) {
    const kind = status === 501 ? 'not-implemented' : KIND_OF_CODE[code];
    super(kind, message, { locator, code, status: status !== undefined && status !== KINDS[kind].status ? status : undefined });
    this.name = 'OwsException';
  }
}

/** 400 InvalidParameterValue naming the parameter. */
export function invalidParam(locator: string, message: string): ServiceError {
  return new ServiceError('invalid', message, { locator });
}

/** 400 MissingParameterValue naming the parameter. */
export function missingParam(locator: string, message = `missing parameter '${locator}'`): ServiceError {
  return new ServiceError('missing', message, { locator });
}
