/**
 * The two renderers of a ServiceError:
 * - renderOws: the OWS exception report in each protocol's own form — OWS 1.1 ExceptionReport
 *   (WFS 2.0, WMTS 1.0), OWS 1.0 ExceptionReport (WFS 1.1, CSW 2.0.2), ServiceExceptionReport
 *   for WMS 1.3.0 and 1.1.1 (and WFS 1.0.0);
 * - renderProblem: RFC 7807 application/problem+json for the REST APIs (OGC API, tiles,
 *   downloads, catalogue, admin), with `parameter` naming the offending query parameter.
 * send*() classify whatever was thrown, log what is ours (5xx), set the headers (Retry-After,
 * WWW-Authenticate) and write the response.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { XmlWriter } from '../ows/xml.js';
import { classify, type ClassifyOptions } from './classify.js';
import { KINDS, ServiceError, type OwsCode } from './service-error.js';

/** Which exception format a service/version pair uses. */
export type ExceptionFlavour = 'ows11' | 'ows10' | 'wms130' | 'wms111' | 'wfs100';

/** KVP/XML requests answer the kind's status; REST paths (WMTS RESTful) the REST one (404 for a tile out of range). */
export type Binding = 'kvp' | 'rest';

export function flavourFor(service: string | undefined, version: string | undefined): ExceptionFlavour {
  const s = (service ?? '').toUpperCase();
  if (s === 'WMS') return version === '1.1.1' || version === '1.1.0' || version === '1.0.0' ? 'wms111' : 'wms130';
  if (s === 'WFS') {
    if (version?.startsWith('1.1')) return 'ows10';
    if (version?.startsWith('1.0')) return 'wfs100';
    return 'ows11';
  }
  if (s === 'CSW') return 'ows10';
  return 'ows11';
}

export interface RenderedError {
  status: number;
  contentType: string;
  body: string;
}

/** Write an OWS exception report. `version` is the service version the client asked for. */
export function renderOws(err: ServiceError, flavour: ExceptionFlavour, version?: string, binding: Binding = 'kvp'): RenderedError {
  const status = binding === 'rest' ? err.restStatus : err.status;
  const w = new XmlWriter();
  switch (flavour) {
    case 'wms130':
      w.start('ServiceExceptionReport', {
        version: '1.3.0',
        xmlns: 'http://www.opengis.net/ogc',
        'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
        'xsi:schemaLocation': 'http://www.opengis.net/ogc http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd',
      });
      w.el('ServiceException', { code: wmsCode(err.code, '1.3.0'), locator: err.locator }, err.message);
      w.end();
      return { status, contentType: 'text/xml; charset=UTF-8', body: w.toString() };
    case 'wms111': {
      const body =
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">\n' +
        new XmlWriter({ declaration: false })
          .start('ServiceExceptionReport', { version: '1.1.1' })
          // the WMS 1.1.1 DTD has no locator attribute: the locator goes into the text
          .el(
            'ServiceException',
            { code: wmsCode(err.code, '1.1.1') },
            err.locator ? `${err.message} (locator: ${err.locator})` : err.message,
          )
          .toString();
      return { status, contentType: 'application/vnd.ogc.se_xml; charset=UTF-8', body };
    }
    case 'wfs100':
      w.start('ServiceExceptionReport', {
        version: '1.2.0',
        xmlns: 'http://www.opengis.net/ogc',
        'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
        'xsi:schemaLocation': 'http://www.opengis.net/ogc http://schemas.opengis.net/wfs/1.0.0/OGC-exception.xsd',
      });
      w.el('ServiceException', { code: err.code, locator: err.locator }, err.message);
      w.end();
      return { status, contentType: 'text/xml; charset=UTF-8', body: w.toString() };
    case 'ows10':
      w.start('ows:ExceptionReport', {
        'xmlns:ows': 'http://www.opengis.net/ows',
        'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
        'xsi:schemaLocation': 'http://www.opengis.net/ows http://schemas.opengis.net/ows/1.0.0/owsExceptionReport.xsd',
        version: version && /^\d+\.\d+\.\d+$/.test(version) ? version : '1.0.0',
        language: 'en',
      });
      w.start('ows:Exception', { exceptionCode: owsCode(err.code), locator: err.locator });
      w.el('ows:ExceptionText', err.message);
      w.end().end();
      return { status, contentType: 'application/xml; charset=UTF-8', body: w.toString() };
    default:
      w.start('ows:ExceptionReport', {
        'xmlns:ows': 'http://www.opengis.net/ows/1.1',
        'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
        'xsi:schemaLocation': 'http://www.opengis.net/ows/1.1 http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd',
        version: version && /^\d+\.\d+\.\d+$/.test(version) ? version : '2.0.0',
        'xml:lang': 'en',
      });
      w.start('ows:Exception', { exceptionCode: owsCode(err.code), locator: err.locator });
      w.el('ows:ExceptionText', err.message);
      w.end().end();
      return { status, contentType: 'application/xml; charset=UTF-8', body: w.toString() };
  }
}

/** WMS has its own code list: InvalidSRS (1.1.1) / InvalidCRS (1.3.0). */
function wmsCode(code: OwsCode, version: string): string {
  if (code === 'InvalidCRS' && version === '1.1.1') return 'InvalidSRS';
  if (code === 'InvalidSRS' && version === '1.3.0') return 'InvalidCRS';
  return code;
}

/** OWS reports carry the generic codes; WMS-only codes become InvalidParameterValue. */
function owsCode(code: OwsCode): string {
  switch (code) {
    case 'InvalidFormat':
    case 'InvalidCRS':
    case 'InvalidSRS':
    case 'LayerNotDefined':
    case 'StyleNotDefined':
    case 'LayerNotQueryable':
    case 'InvalidPoint':
    case 'InvalidDimensionValue':
      return 'InvalidParameterValue';
    case 'MissingDimensionValue':
      return 'MissingParameterValue';
    default:
      return code;
  }
}

/** The RFC 7807 body. `parameter` (the locator) names the query parameter at fault; `code` is the OWS exceptionCode. */
export function renderProblem(err: ServiceError, instance?: string): RenderedError {
  const status = err.restStatus;
  const body: Record<string, unknown> = {
    type: 'about:blank',
    title: KINDS[err.kind].title,
    status,
    detail: err.message,
  };
  if (instance) body.instance = instance;
  if (err.locator && status < 500) body.parameter = err.locator;
  if (status < 500) body.code = err.code;
  return { status, contentType: 'application/problem+json; charset=utf-8', body: JSON.stringify(body) };
}

function prepare(reply: FastifyReply, req: FastifyRequest, e: unknown, opts: ClassifyOptions): ServiceError {
  const err = classify(e, { requestId: req.id, ...opts });
  // what is ours is logged once, with the original error (a ServiceError passed on was logged where it was classified)
  if (err.kind === 'internal' && !(e instanceof ServiceError)) req.log.error({ err: e }, 'request failed');
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return err;
}

/** Answer with an OWS exception report (classifying what was thrown). */
export function sendOws(
  reply: FastifyReply,
  req: FastifyRequest,
  e: unknown,
  service: string | undefined,
  version: string | undefined,
  opts: ClassifyOptions & { binding?: Binding } = {},
): FastifyReply {
  const err = prepare(reply, req, e, opts);
  const r = renderOws(err, flavourFor(service, version), version, opts.binding);
  return reply.code(r.status).type(r.contentType).send(r.body);
}

/** Answer with an RFC 7807 problem (classifying what was thrown). */
export function sendProblem(reply: FastifyReply, req: FastifyRequest, e: unknown, opts: ClassifyOptions = {}): FastifyReply {
  const err = prepare(reply, req, e, opts);
  const r = renderProblem(err, req.url.split('?')[0]);
  return reply.code(r.status).type(r.contentType).send(r.body);
}
