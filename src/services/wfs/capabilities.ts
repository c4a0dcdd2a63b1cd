/** WFS GetCapabilities 2.0.0 and 1.1.0. */
import {
  writeDcp as dcp,
  writeFilterCapabilities11,
  writeServiceIdentification,
  writeServiceProvider,
  writeValues10,
} from '../../ows/capabilities.js';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { XmlWriter } from '../../ows/xml.js';
import { offeredEpsg } from '../../crs/offered.js';
import { NS_PREFIX, crsUrn, is20, namespaceUri, outputFormatNames, publishedLayers } from './common.js';

export const OPERATIONS_20 = [
  'GetCapabilities',
  'DescribeFeatureType',
  'GetFeature',
  'GetPropertyValue',
  'ListStoredQueries',
  'DescribeStoredQueries',
];

const COMPARISON_20 = [
  'PropertyIsEqualTo',
  'PropertyIsNotEqualTo',
  'PropertyIsLessThan',
  'PropertyIsGreaterThan',
  'PropertyIsLessThanOrEqualTo',
  'PropertyIsGreaterThanOrEqualTo',
  'PropertyIsLike',
  'PropertyIsNull',
  'PropertyIsNil',
  'PropertyIsBetween',
];
const SPATIAL = ['BBOX', 'Equals', 'Disjoint', 'Intersects', 'Touches', 'Crosses', 'Within', 'Contains', 'Overlaps', 'DWithin', 'Beyond'];
// AnyInteracts is parsed too, but the FES 2.0 schema's operator name list does not include it
const TEMPORAL = [
  'After',
  'Before',
  'During',
  'TEquals',
  'Begins',
  'BegunBy',
  'TContains',
  'Ends',
  'EndedBy',
  'Meets',
  'MetBy',
  'TOverlaps',
  'OverlappedBy',
];
const GEOM_OPERANDS = [
  'Envelope',
  'Point',
  'LineString',
  'Polygon',
  'MultiPoint',
  'MultiCurve',
  'MultiSurface',
  'MultiLineString',
  'MultiPolygon',
  'Curve',
  'Surface',
];

function serviceIdentification(w: XmlWriter, ctx: AppContext, versions: string[]): void {
  writeServiceIdentification(w, ctx.config.service, { type: 'WFS', codeSpace: 'OGC', versions });
}

function allowed(w: XmlWriter, name: string, values: string[], isParam = true): void {
  w.start(isParam ? 'ows:Parameter' : 'ows:Constraint', { name });
  w.start('ows:AllowedValues');
  for (const v of values) w.el('ows:Value', v);
  w.end().end();
}

function constraint(w: XmlWriter, name: string, value: string, el = 'ows:Constraint'): void {
  w.start(el, { name }).el('ows:NoValues').el('ows:DefaultValue', value).end();
}

function bbox84(w: XmlWriter, l: Layer, el = 'ows:WGS84BoundingBox'): void {
  const e = l.wgs84Extent ?? { minx: -180, miny: -90, maxx: 180, maxy: 90 };
  w.start(el);
  w.el('ows:LowerCorner', `${round(e.minx)} ${round(e.miny)}`);
  w.el('ows:UpperCorner', `${round(e.maxx)} ${round(e.maxy)}`);
  w.end();
}

function round(n: number): string {
  return String(Math.round(n * 1e7) / 1e7);
}

export function capabilities(ctx: AppContext, version: string, base: string): string {
  return is20(version) ? capabilities20(ctx, base) : capabilities11(ctx, base);
}

/**
 * INSPIRE download service extended capabilities (scenario 1: a link to the service metadata),
 * written when `service.inspire.metadataUrl` is configured; one SpatialDataSetIdentifier per type.
 */
function inspireExtendedCapabilities(w: XmlWriter, ctx: AppContext): void {
  const ins = ctx.config.service.inspire;
  if (!ins?.metadataUrl) return;
  const lang = ins.language ?? ctx.config.service.language ?? 'fre';
  w.start('ows:ExtendedCapabilities');
  w.start('inspire_dls:ExtendedCapabilities', {
    'xmlns:inspire_dls': 'http://inspire.ec.europa.eu/schemas/inspire_dls/1.0',
    'xmlns:inspire_common': 'http://inspire.ec.europa.eu/schemas/common/1.0',
  });
  w.start('inspire_common:MetadataUrl');
  w.el('inspire_common:URL', ins.metadataUrl);
  w.el('inspire_common:MediaType', 'application/vnd.iso.19139+xml');
  w.end();
  w.start('inspire_common:SupportedLanguages').start('inspire_common:DefaultLanguage').el('inspire_common:Language', lang).end().end();
  w.start('inspire_common:ResponseLanguage').el('inspire_common:Language', lang).end();
  for (const l of publishedLayers(ctx)) {
    w.start('inspire_dls:SpatialDataSetIdentifier');
    w.el('inspire_common:Code', l.name);
    w.opt('inspire_common:Namespace', ins.spatialDatasetIdentifierNamespace);
    w.end();
  }
  w.end().end();
}

function capabilities20(ctx: AppContext, base: string): string {
  const url = `${base}/wfs`;
  const ns = namespaceUri(ctx);
  const w = new XmlWriter();
  w.start('wfs:WFS_Capabilities', {
    version: '2.0.0',
    xmlns: 'http://www.opengis.net/wfs/2.0',
    'xmlns:wfs': 'http://www.opengis.net/wfs/2.0',
    'xmlns:ows': 'http://www.opengis.net/ows/1.1',
    'xmlns:fes': 'http://www.opengis.net/fes/2.0',
    'xmlns:gml': 'http://www.opengis.net/gml/3.2',
    'xmlns:xlink': 'http://www.w3.org/1999/xlink',
    'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
    [`xmlns:${NS_PREFIX}`]: ns,
    'xsi:schemaLocation': 'http://www.opengis.net/wfs/2.0 http://schemas.opengis.net/wfs/2.0/wfs.xsd',
  });
  serviceIdentification(w, ctx, ['2.0.0', '1.1.0']);
  writeServiceProvider(w, ctx.config.service, base);

  w.start('ows:OperationsMetadata');
  for (const op of OPERATIONS_20) {
    w.start('ows:Operation', { name: op });
    dcp(w, url);
    if (op === 'GetCapabilities') {
      allowed(w, 'AcceptVersions', ['2.0.0', '1.1.0']);
      allowed(w, 'AcceptFormats', ['text/xml']);
    }
    if (op === 'DescribeFeatureType') allowed(w, 'outputFormat', ['application/gml+xml; version=3.2', 'text/xml; subtype=gml/3.2']);
    if (op === 'GetFeature' || op === 'GetPropertyValue') {
      allowed(w, 'outputFormat', op === 'GetFeature' ? outputFormatNames(ctx, '2.0.0') : ['application/gml+xml; version=3.2']);
      allowed(w, 'resultType', ['results', 'hits']);
    }
    w.end();
  }
  allowed(w, 'version', ['2.0.0', '1.1.0']);
  const counts = ctx.config.limits;
  constraint(w, 'ImplementsBasicWFS', 'TRUE');
  constraint(w, 'ImplementsTransactionalWFS', 'FALSE');
  constraint(w, 'ImplementsLockingWFS', 'FALSE');
  constraint(w, 'KVPEncoding', 'TRUE');
  constraint(w, 'XMLEncoding', 'TRUE');
  constraint(w, 'SOAPEncoding', 'FALSE');
  constraint(w, 'ImplementsInheritance', 'FALSE');
  constraint(w, 'ImplementsRemoteResolve', 'FALSE');
  constraint(w, 'ImplementsResultPaging', 'TRUE');
  constraint(w, 'ImplementsStandardJoins', 'FALSE');
  constraint(w, 'ImplementsSpatialJoins', 'FALSE');
  constraint(w, 'ImplementsTemporalJoins', 'FALSE');
  constraint(w, 'ImplementsFeatureVersioning', 'FALSE');
  constraint(w, 'ManageStoredQueries', 'FALSE');
  constraint(w, 'CountDefault', String(Math.min(counts.defaultCount, counts.maxFeatures)));
  allowed(w, 'QueryExpressions', ['wfs:Query', 'wfs:StoredQuery'], false);
  inspireExtendedCapabilities(w, ctx);
  w.end();

  w.start('wfs:FeatureTypeList');
  for (const l of publishedLayers(ctx)) {
    featureTypeHeader(w, l);
    w.el('wfs:DefaultCRS', crsUrn(l.srid));
    for (const e of offeredEpsg(l.srid).slice(1)) w.el('wfs:OtherCRS', crsUrn(e));
    w.el('wfs:OtherCRS', 'urn:ogc:def:crs:OGC:1.3:CRS84');
    w.start('wfs:OutputFormats');
    for (const f of outputFormatNames(ctx, '2.0.0')) w.el('wfs:Format', f);
    w.end();
    bbox84(w, l);
    w.end();
  }
  w.end();

  // FES 2.0 filter capabilities: exactly what src/filter parses and compiles
  w.start('fes:Filter_Capabilities');
  w.start('fes:Conformance');
  const conf: Array<[string, string]> = [
    ['ImplementsQuery', 'TRUE'],
    ['ImplementsAdHocQuery', 'TRUE'],
    ['ImplementsFunctions', 'FALSE'],
    ['ImplementsResourceId', 'TRUE'],
    ['ImplementsMinStandardFilter', 'TRUE'],
    ['ImplementsStandardFilter', 'TRUE'],
    ['ImplementsMinSpatialFilter', 'TRUE'],
    ['ImplementsSpatialFilter', 'TRUE'],
    ['ImplementsMinTemporalFilter', 'TRUE'],
    ['ImplementsTemporalFilter', 'TRUE'],
    ['ImplementsVersionNav', 'FALSE'],
    ['ImplementsSorting', 'TRUE'],
    ['ImplementsExtendedOperators', 'FALSE'],
    ['ImplementsMinimumXPath', 'TRUE'],
    ['ImplementsSchemaElementFunc', 'FALSE'],
  ];
  for (const [n, v] of conf) constraint(w, n, v, 'fes:Constraint');
  w.end();
  w.start('fes:Id_Capabilities').el('fes:ResourceIdentifier', { name: 'fes:ResourceId' }).end();
  w.start('fes:Scalar_Capabilities');
  w.el('fes:LogicalOperators');
  w.start('fes:ComparisonOperators');
  for (const c of COMPARISON_20) w.el('fes:ComparisonOperator', { name: c });
  w.end();
  w.end();
  w.start('fes:Spatial_Capabilities');
  w.start('fes:GeometryOperands');
  for (const g of GEOM_OPERANDS) w.el('fes:GeometryOperand', { name: `gml:${g}` });
  w.end();
  w.start('fes:SpatialOperators');
  for (const s of SPATIAL) w.el('fes:SpatialOperator', { name: s });
  w.end();
  w.end();
  w.start('fes:Temporal_Capabilities');
  w.start('fes:TemporalOperands');
  w.el('fes:TemporalOperand', { name: 'gml:TimeInstant' });
  w.el('fes:TemporalOperand', { name: 'gml:TimePeriod' });
  w.end();
  w.start('fes:TemporalOperators');
  for (const t of TEMPORAL) w.el('fes:TemporalOperator', { name: t });
  w.end();
  w.end();
  w.end();
  return w.toString();
}

function capabilities11(ctx: AppContext, base: string): string {
  const url = `${base}/wfs`;
  const ns = namespaceUri(ctx);
  const w = new XmlWriter();
  w.start('wfs:WFS_Capabilities', {
    version: '1.1.0',
    xmlns: 'http://www.opengis.net/wfs',
    'xmlns:wfs': 'http://www.opengis.net/wfs',
    'xmlns:ows': 'http://www.opengis.net/ows',
    'xmlns:ogc': 'http://www.opengis.net/ogc',
    'xmlns:gml': 'http://www.opengis.net/gml',
    'xmlns:xlink': 'http://www.w3.org/1999/xlink',
    'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
    [`xmlns:${NS_PREFIX}`]: ns,
    'xsi:schemaLocation': 'http://www.opengis.net/wfs http://schemas.opengis.net/wfs/1.1.0/wfs.xsd',
  });
  serviceIdentification(w, ctx, ['1.1.0']);
  writeServiceProvider(w, ctx.config.service, base);
  w.start('ows:OperationsMetadata');
  for (const op of ['GetCapabilities', 'DescribeFeatureType', 'GetFeature']) {
    w.start('ows:Operation', { name: op });
    dcp(w, url);
    if (op === 'GetCapabilities') {
      writeValues10(w, 'AcceptVersions', ['1.1.0', '2.0.0']);
      writeValues10(w, 'AcceptFormats', ['text/xml']);
    }
    if (op === 'DescribeFeatureType') writeValues10(w, 'outputFormat', ['text/xml; subtype=gml/3.1.1']);
    if (op === 'GetFeature') {
      writeValues10(w, 'resultType', ['results', 'hits']);
      writeValues10(w, 'outputFormat', outputFormatNames(ctx, '1.1.0'));
    }
    w.end();
  }
  w.start('ows:Constraint', { name: 'DefaultMaxFeatures' })
    .start('ows:Value')
    .text(String(Math.min(ctx.config.limits.defaultCount, ctx.config.limits.maxFeatures)))
    .end()
    .end();
  w.end();
  w.start('wfs:FeatureTypeList');
  w.start('wfs:Operations').el('wfs:Operation', 'Query').end();
  for (const l of publishedLayers(ctx)) {
    featureTypeHeader(w, l);
    w.el('wfs:DefaultSRS', crsUrn(l.srid, '1.1.0'));
    for (const e of offeredEpsg(l.srid).slice(1)) w.el('wfs:OtherSRS', crsUrn(e, '1.1.0'));
    w.start('wfs:OutputFormats');
    for (const f of outputFormatNames(ctx, '1.1.0')) w.el('wfs:Format', f);
    w.end();
    bbox84(w, l);
    w.end();
  }
  w.end();
  writeFilterCapabilities11(w, { spatialOperators: SPATIAL, arithmetic: true });
  return w.toString();
}

/** Name, title, abstract and keywords of a feature type (the same in WFS 2.0 and 1.1). */
function featureTypeHeader(w: XmlWriter, l: Layer): void {
  w.start('wfs:FeatureType');
  w.el('wfs:Name', `${NS_PREFIX}:${l.name}`);
  w.el('wfs:Title', l.title || l.name);
  w.opt('wfs:Abstract', l.abstract);
  if (l.keywords.length) {
    w.start('ows:Keywords');
    for (const k of l.keywords) w.el('ows:Keyword', k);
    w.end();
  }
}
