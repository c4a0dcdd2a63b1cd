/**
 * GML feature collection writer: WFS 2.0 FeatureCollection with GML 3.2 geometries, or WFS 1.1
 * FeatureCollection with GML 3.1.1. Geometries are ST_AsGML text and attributes xmlforest text,
 * both produced by PostgreSQL; Node only concatenates.
 */
import { escapeAttr } from '../../ows/xml.js';
import type { FeatureQuery, FeatureRow } from '../query.js';
import { xmlName } from '../query.js';
import type { CollectionInfo, FeatureWriter } from './types.js';

export const GML32_NS = 'http://www.opengis.net/gml/3.2';
export const GML311_NS = 'http://www.opengis.net/gml';
export const WFS20_NS = 'http://www.opengis.net/wfs/2.0';
export const WFS11_NS = 'http://www.opengis.net/wfs';

export interface GmlWriterOptions {
  version: '3.2' | '3.1.1';
  /** Application namespace of the feature types and its prefix. */
  namespaceUri: string;
  prefix: string;
  /** Location of the application schema (a DescribeFeatureType URL); omitted when absent. */
  schemaLocation?: string;
  contentType?: string;
}

/** A string made into an NCName (for gml:id). */
export function ncName(s: string): string {
  let out = s.replace(/[^\w.\-\u00B7\u00C0-\uFFEF]/g, '_');
  if (!/^[A-Za-z_\u00C0-\uFFEF]/.test(out)) out = '_' + out;
  return out;
}

export class GmlWriter implements FeatureWriter {
  readonly format: 'gml32' | 'gml311';
  readonly contentType: string;
  readonly selectOptions;
  constructor(private readonly o: GmlWriterOptions) {
    this.format = o.version === '3.2' ? 'gml32' : 'gml311';
    this.contentType = o.contentType ?? (o.version === '3.2' ? 'application/gml+xml; version=3.2' : 'text/xml; subtype=gml/3.1.1');
    this.selectOptions = { gml: { prefix: o.prefix, longCrs: true } };
  }

  header(info: CollectionInfo): string {
    const o = this.o;
    const v32 = o.version === '3.2';
    if (info.numberReturned === undefined) throw new Error('GML collections need numberReturned in advance');
    const wfsNs = v32 ? WFS20_NS : WFS11_NS;
    const wfsXsd = v32 ? 'http://schemas.opengis.net/wfs/2.0/wfs.xsd' : 'http://schemas.opengis.net/wfs/1.1.0/wfs.xsd';
    let loc = `${wfsNs} ${wfsXsd}`;
    if (v32) loc += ` ${GML32_NS} http://schemas.opengis.net/gml/3.2.1/gml.xsd`;
    if (o.schemaLocation) loc += ` ${o.namespaceUri} ${o.schemaLocation}`;
    const a: string[] = [
      `xmlns:wfs="${wfsNs}"`,
      `xmlns:gml="${v32 ? GML32_NS : GML311_NS}"`,
      `xmlns:${o.prefix}="${escapeAttr(o.namespaceUri)}"`,
      `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`,
      `xsi:schemaLocation="${escapeAttr(loc)}"`,
      `timeStamp="${info.timeStamp}"`,
    ];
    if (v32) {
      a.push(`numberMatched="${info.numberMatched}"`, `numberReturned="${info.numberReturned}"`);
      if (info.links.next) a.push(`next="${escapeAttr(info.links.next)}"`);
      if (info.links.previous) a.push(`previous="${escapeAttr(info.links.previous)}"`);
    } else {
      a.push(`numberOfFeatures="${info.numberReturned}"`);
    }
    return `<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection ${a.join(' ')}>\n`;
  }

  feature(row: FeatureRow, q: FeatureQuery): string {
    const p = this.o.prefix;
    const type = `${p}:${xmlName(q.layer.name)}`;
    const fid = ncName(`${q.layer.name}.${row.fid ?? ''}`);
    let g = row.g;
    // the name of the CRS as the front door chose it (it declares the axis order of the coordinates)
    if (g && q.gmlSrsName) g = g.replace(/srsName="[^"]*"/, `srsName="${escapeAttr(q.gmlSrsName)}"`);
    if (g && this.o.version === '3.2') {
      // ST_AsGML repeats the one id on every member geometry; gml:id values must be unique
      let n = 0;
      g = g.replace(/gml:id="[^"]*"/g, () => `gml:id="${fid}.g${n++ === 0 ? '' : n - 1}"`);
    }
    const geomProp = g ? `<${p}:${xmlName(q.layer.geometryColumn)}>${g}</${p}:${xmlName(q.layer.geometryColumn)}>` : '';
    const body = `<${type} gml:id="${fid}">${row.a ?? ''}${geomProp}</${type}>`;
    return this.o.version === '3.2' ? `<wfs:member>${body}</wfs:member>\n` : `<gml:featureMember>${body}</gml:featureMember>\n`;
  }

  footer(): string {
    return '</wfs:FeatureCollection>\n';
  }
}
