/** DescribeFeatureType: one XML Schema for the requested types, derived from the column types. */
import type { AppContext } from '../../context.js';
import type { FieldType, GeometryType, Layer } from '../../registry/types.js';
import { XmlWriter } from '../../ows/xml.js';
import { xmlName } from '../../features/query.js';
import { NS_PREFIX, namespaceUri } from './common.js';

const XSD_TYPES: Record<FieldType, string> = {
  string: 'xsd:string',
  integer: 'xsd:int',
  long: 'xsd:long',
  number: 'xsd:double',
  boolean: 'xsd:boolean',
  date: 'xsd:date',
  datetime: 'xsd:dateTime',
  time: 'xsd:string',
  json: 'xsd:string',
  uuid: 'xsd:string',
  binary: 'xsd:base64Binary',
  array: 'xsd:string',
};

/** The GML property type for a geometry type (same names in GML 3.1.1 and 3.2). */
export function gmlPropertyType(t: GeometryType): string {
  switch (t) {
    case 'POINT':
      return 'gml:PointPropertyType';
    case 'LINESTRING':
      return 'gml:CurvePropertyType';
    case 'POLYGON':
      return 'gml:SurfacePropertyType';
    case 'MULTIPOINT':
      return 'gml:MultiPointPropertyType';
    case 'MULTILINESTRING':
      return 'gml:MultiCurvePropertyType';
    case 'MULTIPOLYGON':
      return 'gml:MultiSurfacePropertyType';
    default:
      return 'gml:GeometryPropertyType';
  }
}

function xsdType(f: { type: FieldType; pgType: string }): string {
  if (f.type === 'number' && /^numeric/.test(f.pgType)) return 'xsd:decimal';
  if (f.type === 'datetime' || f.type === 'date') return XSD_TYPES[f.type];
  return XSD_TYPES[f.type];
}

export function describeFeatureTypes(ctx: AppContext, layers: Layer[], gml: '3.2' | '3.1.1'): string {
  const ns = namespaceUri(ctx);
  const v32 = gml === '3.2';
  const w = new XmlWriter();
  w.start('xsd:schema', {
    'xmlns:xsd': 'http://www.w3.org/2001/XMLSchema',
    'xmlns:gml': v32 ? 'http://www.opengis.net/gml/3.2' : 'http://www.opengis.net/gml',
    [`xmlns:${NS_PREFIX}`]: ns,
    targetNamespace: ns,
    elementFormDefault: 'qualified',
    version: '1.0',
  });
  w.el('xsd:import', {
    namespace: v32 ? 'http://www.opengis.net/gml/3.2' : 'http://www.opengis.net/gml',
    schemaLocation: v32 ? 'http://schemas.opengis.net/gml/3.2.1/gml.xsd' : 'http://schemas.opengis.net/gml/3.1.1/base/gml.xsd',
  });
  for (const l of layers) {
    const type = xmlName(l.name);
    w.start('xsd:complexType', { name: `${type}Type` });
    w.start('xsd:complexContent');
    w.start('xsd:extension', { base: 'gml:AbstractFeatureType' });
    w.start('xsd:sequence');
    // every property minOccurs=0: NULLs are omitted and PROPERTYNAME subsets stay valid
    for (const f of l.fields) w.el('xsd:element', { name: xmlName(f.name), type: xsdType(f), minOccurs: 0, maxOccurs: 1 });
    w.el('xsd:element', { name: xmlName(l.geometryColumn), type: gmlPropertyType(l.geometryType), minOccurs: 0, maxOccurs: 1 });
    w.end().end().end().end();
    w.el('xsd:element', { name: type, type: `${NS_PREFIX}:${type}Type`, substitutionGroup: v32 ? 'gml:AbstractFeature' : 'gml:_Feature' });
  }
  return w.toString();
}
