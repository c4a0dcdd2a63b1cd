/**
 * The OWS Common parts of capabilities documents (OWS 1.0 for WFS 1.1 and CSW 2.0.2, OWS 1.1 for
 * WFS 2.0 and WMTS), written once: ServiceIdentification, ServiceProvider, an operation's DCP,
 * OWS 1.0 parameters, and the Filter Encoding 1.1 Filter_Capabilities that WFS 1.1 and CSW 2.0.2
 * both carry. The caller names the `ows:` prefix's namespace on its root element.
 */
import type { Config } from '../config/index.js';
import type { XmlWriter } from './xml.js';

export interface ServiceIdentificationOptions {
  /** ows:ServiceType ('WFS', 'CSW', 'OGC WMTS'). */
  type: string;
  /** codeSpace of ows:ServiceType, when the service names one ('OGC' for WFS). */
  codeSpace?: string;
  versions: readonly string[];
  /** Keywords added after the configured ones. */
  keywords?: readonly string[];
}

export function writeServiceIdentification(w: XmlWriter, service: Config['service'], o: ServiceIdentificationOptions): void {
  w.start('ows:ServiceIdentification');
  w.el('ows:Title', service.title);
  w.el('ows:Abstract', service.abstract);
  const keywords = [...service.keywords, ...(o.keywords ?? [])];
  if (keywords.length) {
    w.start('ows:Keywords');
    for (const k of keywords) w.el('ows:Keyword', k);
    w.end();
  }
  w.el('ows:ServiceType', o.codeSpace ? { codeSpace: o.codeSpace } : {}, o.type);
  for (const v of o.versions) w.el('ows:ServiceTypeVersion', v);
  w.el('ows:Fees', service.fees);
  w.el('ows:AccessConstraints', service.accessConstraints);
  w.end();
}

export function writeServiceProvider(w: XmlWriter, service: Config['service'], baseUrl: string): void {
  const c = service.contact;
  w.start('ows:ServiceProvider');
  w.el('ows:ProviderName', c.organisation || service.title);
  w.el('ows:ProviderSite', { 'xlink:href': c.url || `${baseUrl}/` });
  w.start('ows:ServiceContact');
  w.opt('ows:IndividualName', c.person);
  w.opt('ows:PositionName', c.position);
  w.start('ows:ContactInfo');
  if (c.phone) w.start('ows:Phone').el('ows:Voice', c.phone).end();
  w.start('ows:Address');
  w.opt('ows:DeliveryPoint', c.address);
  w.opt('ows:City', c.city);
  w.opt('ows:PostalCode', c.postcode);
  w.opt('ows:Country', c.country);
  w.opt('ows:ElectronicMailAddress', c.email);
  w.end();
  w.end();
  w.el('ows:Role', 'pointOfContact');
  w.end();
  w.end();
}

/** An operation's ows:DCP: KVP GET at `url?`, and XML POST at `url` unless `post` is false. */
export function writeDcp(w: XmlWriter, url: string, post = true): void {
  w.start('ows:DCP').start('ows:HTTP');
  w.el('ows:Get', { 'xlink:href': `${url}?` });
  if (post) w.el('ows:Post', { 'xlink:href': url });
  w.end().end();
}

/** OWS 1.0 ows:Parameter (or ows:Constraint): its values directly inside it. */
export function writeValues10(w: XmlWriter, name: string, values: readonly (string | number)[], el = 'ows:Parameter'): void {
  w.start(el, { name });
  for (const v of values) w.el('ows:Value', v);
  w.end();
}

export interface FilterCapabilities11Options {
  spatialOperators: readonly string[];
  /** Arithmetic (Add, Sub, Mul, Div) is understood. */
  arithmetic: boolean;
  /** Declare the gml prefix on each geometry operand (for a root element that does not). */
  gmlNamespace?: string;
}

// Filter 1.1 lets only these four geometry operands be named (the parser also reads the multi-geometries)
const GEOMETRY_OPERANDS_11 = ['Envelope', 'Point', 'LineString', 'Polygon'];
const COMPARISON_OPERATORS_11 = [
  'EqualTo',
  'NotEqualTo',
  'LessThan',
  'GreaterThan',
  'LessThanEqualTo',
  'GreaterThanEqualTo',
  'Like',
  'Between',
  'NullCheck',
];

/** ogc:Filter_Capabilities of Filter Encoding 1.1 (WFS 1.1, CSW 2.0.2): what src/filter parses. */
export function writeFilterCapabilities11(w: XmlWriter, o: FilterCapabilities11Options): void {
  w.start('ogc:Filter_Capabilities');
  w.start('ogc:Spatial_Capabilities');
  w.start('ogc:GeometryOperands');
  const gml = o.gmlNamespace ? { 'xmlns:gml': o.gmlNamespace } : {};
  for (const g of GEOMETRY_OPERANDS_11) w.el('ogc:GeometryOperand', gml, `gml:${g}`);
  w.end();
  w.start('ogc:SpatialOperators');
  for (const s of o.spatialOperators) w.el('ogc:SpatialOperator', { name: s });
  w.end();
  w.end();
  w.start('ogc:Scalar_Capabilities');
  w.el('ogc:LogicalOperators');
  w.start('ogc:ComparisonOperators');
  for (const c of COMPARISON_OPERATORS_11) w.el('ogc:ComparisonOperator', c);
  w.end();
  if (o.arithmetic) w.start('ogc:ArithmeticOperators').el('ogc:SimpleArithmetic').end();
  w.end();
  w.start('ogc:Id_Capabilities').el('ogc:EID').el('ogc:FID').end();
  w.end();
}
