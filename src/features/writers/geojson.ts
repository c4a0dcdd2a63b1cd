/** GeoJSON FeatureCollection writer; features arrive as JSON text built by PostGIS. */
import type { FeatureRow } from '../query.js';
import type { CollectionInfo, FeatureWriter } from './types.js';

export interface GeoJsonWriterOptions {
  contentType?: string;
  /** Add the (pre-RFC 7946) "crs" member when the output CRS is not CRS84/EPSG:4326. Default true. */
  crsMember?: boolean;
}

export function geojsonLinks(info: CollectionInfo): Array<{ href: string; rel: string; type?: string; title?: string }> {
  const links: Array<{ href: string; rel: string; type?: string; title?: string }> = [];
  const type = 'application/geo+json';
  if (info.links.self) links.push({ href: info.links.self, rel: 'self', type });
  if (info.links.next) links.push({ href: info.links.next, rel: 'next', type });
  if (info.links.previous) links.push({ href: info.links.previous, rel: 'prev', type });
  for (const l of info.links.extra ?? []) links.push(l);
  return links;
}

export class GeoJsonWriter implements FeatureWriter {
  readonly format = 'geojson' as const;
  readonly contentType: string;
  constructor(private readonly opts: GeoJsonWriterOptions = {}) {
    this.contentType = opts.contentType ?? 'application/geo+json';
  }
  header(info: CollectionInfo): string {
    let s = '{"type":"FeatureCollection"';
    if (this.opts.crsMember !== false && info.outputEpsg !== 4326) {
      s += `,"crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::${info.outputEpsg}"}}`;
    }
    return s + ',"features":[\n';
  }
  feature(row: FeatureRow, _q: unknown, index: number): string {
    return (index === 0 ? '' : ',\n') + row.f;
  }
  footer(info: CollectionInfo, returned: number): string {
    const tail: Record<string, unknown> = {};
    tail.numberMatched = info.numberMatched === 'unknown' ? undefined : info.numberMatched;
    tail.numberReturned = returned;
    tail.timeStamp = info.timeStamp;
    const links = geojsonLinks(info);
    if (links.length) tail.links = links;
    const body = JSON.stringify(tail);
    return '\n]' + (body.length > 2 ? ',' + body.slice(1) : '}') + '\n';
  }
}
