/**
 * GML feature collection writer: WFS 2.0 FeatureCollection with GML 3.2 geometries, or WFS 1.1
 * FeatureCollection with GML 3.1.1. Attributes are xmlforest text produced by PostgreSQL;
 * geometries are written from PostGIS's WKT (gml-geometry.ts) or, for layers that may hold curves
 * and surfaces, are ST_AsGML text.
 */
import { escapeAttr } from '../../ows/xml.js';
import type { FeatureQuery, FeatureRow } from '../query.js';
import { xmlName } from '../query.js';
import { wktToGml } from './gml-geometry.js';
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

const DIGITS = /^\d+$/;

interface FeatureParts {
  /** `<prefix:type gml:id="`, to be followed by the id */
  open: string;
  close: string;
  geomOpen: string;
  geomClose: string;
  /** ncName(`${layer}.`): the id of a feature whose key is digits is this and the key */
  idPrefix: string;
  /** The srsName the front door chose (escaped), written instead of ST_AsGML's */
  srsName: string | undefined;
}

/** The geometry's first srsName="…" (ST_AsGML writes it on the outer element only) given the value `srsName` (escaped). */
function replaceSrsName(g: string, srsName: string): string {
  const at = g.indexOf('srsName="');
  if (at < 0) return g;
  const end = g.indexOf('"', at + 9);
  // most often the name PostGIS wrote already (urn:ogc:def:crs:EPSG::n): nothing to copy
  if (end < 0 || (end - at - 9 === srsName.length && g.startsWith(srsName, at + 9))) return g;
  return `${g.slice(0, at + 9)}${srsName}${g.slice(end)}`;
}

/** Every gml:id="…" of a geometry made unique: `fid.g`, then `fid.g1`, `fid.g2`… */
function renumberIds(g: string, fid: string): string {
  let at = g.indexOf('gml:id="');
  if (at < 0) return g;
  let out = '';
  let from = 0;
  let n = 0;
  while (at >= 0) {
    const end = g.indexOf('"', at + 8);
    if (end < 0) break;
    out += `${g.slice(from, at + 8)}${fid}.g${n === 0 ? '' : n}`;
    n++;
    from = end;
    at = g.indexOf('gml:id="', end);
  }
  return out + g.slice(from);
}

export class GmlWriter implements FeatureWriter {
  readonly format: 'gml32' | 'gml311';
  readonly contentType: string;
  readonly selectOptions;
  private readonly cache = new WeakMap<FeatureQuery, FeatureParts>();
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
    const t = this.parts(q);
    const fidText = row.fid ?? '';
    // the id of a feature: an NCName (a digit key keeps its characters: no replacement to look for)
    const fid = DIGITS.test(fidText) ? t.idPrefix + fidText : ncName(`${q.layer.name}.${fidText}`);
    let g = row.g;
    if (g && g.charCodeAt(0) !== 60 && t.srsName !== undefined) {
      // WKT (gmlFromWkt): written here, with the front door's srsName and unique ids
      g = wktToGml(g, t.srsName, this.o.version === '3.2' ? fid : undefined) ?? null;
    } else {
      // the name of the CRS as the front door chose it (it declares the axis order of the coordinates)
      if (g && t.srsName !== undefined) g = replaceSrsName(g, t.srsName);
      // ST_AsGML repeats the one id on every member geometry; gml:id values must be unique
      if (g && this.o.version === '3.2') g = renumberIds(g, fid);
    }
    const body = `${t.open}${fid}">${row.a ?? ''}${g ? t.geomOpen + g + t.geomClose : ''}${t.close}`;
    return this.o.version === '3.2' ? `<wfs:member>${body}</wfs:member>\n` : `<gml:featureMember>${body}</gml:featureMember>\n`;
  }

  /** The constant parts of a query's features (names mapped and escaped once per query, not per row). */
  private parts(q: FeatureQuery): FeatureParts {
    let t = this.cache.get(q);
    if (!t) {
      const p = this.o.prefix;
      const type = `${p}:${xmlName(q.layer.name)}`;
      const geom = `${p}:${xmlName(q.layer.geometryColumn)}`;
      t = {
        open: `<${type} gml:id="`,
        close: `</${type}>`,
        geomOpen: `<${geom}>`,
        geomClose: `</${geom}>`,
        idPrefix: ncName(`${q.layer.name}.`),
        srsName: q.gmlSrsName ? escapeAttr(q.gmlSrsName) : undefined,
      };
      this.cache.set(q, t);
    }
    return t;
  }

  footer(): string {
    return '</wfs:FeatureCollection>\n';
  }
}
