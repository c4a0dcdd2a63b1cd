/**
 * One error model, written in each protocol's own form:
 * - OWS 1.1 ExceptionReport (WFS 2.0, WMTS 1.0), OWS 1.0 ExceptionReport (WFS 1.1, CSW 2.0.2)
 * - ServiceExceptionReport for WMS 1.3.0 and 1.1.1 (and WFS 1.0.0)
 */
import { XmlWriter } from './xml.js';

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

/** Default HTTP status per code (OWS Common 1.1 table 28, WFS 2.0 table D.2, WMTS 07-057r7 table 27). */
export const STATUS: Record<OwsCode, number> = {
  MissingParameterValue: 400,
  InvalidParameterValue: 400,
  VersionNegotiationFailed: 400,
  InvalidUpdateSequence: 400,
  OptionNotSupported: 400,
  OperationNotSupported: 400,
  OperationParsingFailed: 400,
  OperationProcessingFailed: 500,
  NoApplicableCode: 500,
  NotFound: 404,
  ResponseCacheExpired: 410,
  ServerBusy: 503,
  Unauthorized: 401,
  Forbidden: 403,
  InvalidFormat: 400,
  InvalidCRS: 400,
  InvalidSRS: 400,
  LayerNotDefined: 400,
  StyleNotDefined: 400,
  LayerNotQueryable: 400,
  InvalidPoint: 400,
  CurrentUpdateSequence: 400,
  MissingDimensionValue: 400,
  InvalidDimensionValue: 400,
  TileOutOfRange: 400,
};

export class OwsException extends Error {
  readonly status: number;
  headers: Record<string, string> = {};
  constructor(
    readonly code: OwsCode,
    message: string,
    readonly locator?: string,
    status?: number,
  ) {
    super(message);
    this.name = 'OwsException';
    this.status = status ?? STATUS[code] ?? 400;
  }
}

/** Which exception format a service/version pair uses. */
export type ExceptionFlavour = 'ows11' | 'ows10' | 'wms130' | 'wms111' | 'wfs100';

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

export interface RenderedException {
  status: number;
  contentType: string;
  body: string;
}

/** Write an exception report. `version` is the service version the client asked for. */
export function renderException(err: OwsException, flavour: ExceptionFlavour, version?: string): RenderedException {
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
      return { status: err.status, contentType: 'text/xml; charset=UTF-8', body: w.toString() };
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
      return { status: err.status, contentType: 'application/vnd.ogc.se_xml; charset=UTF-8', body };
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
      return { status: err.status, contentType: 'text/xml; charset=UTF-8', body: w.toString() };
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
      return { status: err.status, contentType: 'application/xml; charset=UTF-8', body: w.toString() };
    case 'ows11':
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
      return { status: err.status, contentType: 'application/xml; charset=UTF-8', body: w.toString() };
  }
}

/** WMS has its own code list; map the generic OWS codes onto it. */
function wmsCode(code: OwsCode, version: string): string {
  if (code === 'InvalidCRS' && version === '1.1.1') return 'InvalidSRS';
  if (code === 'InvalidSRS' && version === '1.3.0') return 'InvalidCRS';
  if (code === 'NotFound' || code === 'Unauthorized' || code === 'Forbidden' || code === 'ServerBusy') return code;
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
