/** WFS shared bits: application namespace, CRS list, output formats, type name resolution. */
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { OwsException } from '../../ows/exceptions.js';
import { parseCrsName, type CrsInfo } from '../../filter/crs-names.js';
import { isDownloadFormat, type DownloadFormat } from '../downloads/export.js';

export const WFS_VERSIONS = ['2.0.0', '1.1.0'];
export const NS_PREFIX = 'geodata';

/** Application namespace URI of the feature types: stable, from the configured public URL. */
export function namespaceUri(ctx: AppContext): string {
  const base = ctx.config.service.onlineResource?.replace(/\/+$/, '');
  return `${base ?? 'https://geodata-server.example'}/geodata`;
}

export function is20(version: string): boolean {
  return version.startsWith('2.');
}

/** The feature types this service publishes (to this caller: ctx.registry is a per-request view). */
export function publishedLayers(ctx: AppContext): Layer[] {
  return ctx.registry.list();
}

/** Resolve a type name (geodata:parcels, parcels, {ns}parcels); unknown → InvalidParameterValue. */
export function resolveType(ctx: AppContext, raw: string, locator = 'typeNames'): Layer {
  let name = raw.trim();
  const m = name.match(/^\{[^}]*\}(.+)$/);
  if (m) name = m[1];
  // a layer the caller may not read is unknown to it (ctx.registry is the request's view)
  const layer = name ? ctx.registry.resolve(name) : undefined;
  if (!layer) {
    throw new OwsException('InvalidParameterValue', `unknown feature type '${raw}'`, locator);
  }
  return layer;
}

/** CRSs offered besides each type's native one (EPSG codes; CRS84 is 4326 in lon/lat). */
export const OTHER_EPSG = [3857, 4326, 4258, 3035];

export function crsUrn(epsg: number): string {
  return `urn:ogc:def:crs:EPSG::${epsg}`;
}

export interface OutputCrs {
  epsg: number;
  /** Coordinates written lat/lon in GML. */
  latLon: boolean;
  /** GML srsName style: long URN (true) or EPSG:n (false, x/y). */
  longName: boolean;
}

/** Parse SRSNAME; only the advertised CRSs are accepted. */
export function parseOutputCrs(raw: string | undefined, layer: Layer, locator = 'srsName'): OutputCrs {
  if (raw === undefined || raw.trim() === '') return { epsg: layer.srid, latLon: false, longName: true };
  const c = parseCrsName(raw);
  if (!c) throw new OwsException('InvalidParameterValue', `unsupported CRS '${raw}'`, locator);
  if (c.epsg !== layer.srid && !OTHER_EPSG.includes(c.epsg)) {
    throw new OwsException(
      'InvalidParameterValue',
      `CRS '${raw}' is not offered for ${layer.name} (offered: EPSG:${layer.srid}, ${OTHER_EPSG.map((e) => `EPSG:${e}`).join(', ')}, CRS84)`,
      locator,
    );
  }
  const urnLike = /^urn:|^https?:\/\/www\.opengis\.net\/def\/crs\/epsg/i.test(raw.trim());
  return { epsg: c.epsg, latLon: c.latLonOrder, longName: urnLike && (c.latLonOrder || !isCrs84(raw)) };
}

function isCrs84(raw: string): boolean {
  return /crs:?84$/i.test(raw.trim());
}

/** Parse a CRS given with a BBOX or a filter; unknown → InvalidParameterValue. */
export function parseInputCrs(raw: string, locator: string): CrsInfo {
  const c = parseCrsName(raw);
  if (!c) throw new OwsException('InvalidParameterValue', `unsupported CRS '${raw}'`, locator);
  return c;
}

export type OutputKind = 'gml32' | 'gml311' | 'geojson' | 'csv' | 'ndjson' | 'geojsonseq' | 'kml' | 'shp' | 'gpkg' | 'xlsx';

/** Download formats written by the shared export (src/services/downloads/export.ts). */
export function isFileKind(k: OutputKind): k is DownloadFormat {
  return isDownloadFormat(k);
}

/** File formats advertised in both versions: the MIME type and the short name GeoServer/GDAL use. */
const FILE_FORMATS = [
  'application/vnd.google-earth.kml+xml',
  'KML',
  'SHAPE-ZIP',
  'application/geopackage+sqlite3',
  'GPKG',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'excel2007',
];

export interface OutputFormat {
  kind: OutputKind;
  contentType: string;
}

/** Output formats as advertised (first = canonical name). */
export const OUTPUT_FORMATS_20 = [
  'application/gml+xml; version=3.2',
  'text/xml; subtype=gml/3.1.1',
  'application/json',
  'application/geo+json',
  'text/csv',
  'application/x-ndjson',
  'application/geo+json-seq',
  ...FILE_FORMATS,
];
export const OUTPUT_FORMATS_11 = [
  'text/xml; subtype=gml/3.1.1',
  'application/gml+xml; version=3.2',
  'application/json',
  'text/csv',
  'application/x-ndjson',
  ...FILE_FORMATS,
];

function normaliseFormat(s: string): string {
  return s
    .toLowerCase()
    .replace(/(gml|geo|kml|geopackage)\s+(xml|json|sqlite3)/g, '$1+$2') // '+' decoded to a space by form decoding
    .replace(/\s+/g, '')
    .replace(/"/g, '');
}

const ALIASES: Record<string, OutputFormat> = {};
function alias(kind: OutputKind, contentType: string, names: string[]): void {
  for (const n of names) ALIASES[normaliseFormat(n)] = { kind, contentType };
}
alias('gml32', 'application/gml+xml; version=3.2', [
  'application/gml+xml; version=3.2',
  'application/gml+xml;version=3.2.1',
  'application/gml+xml',
  'text/xml; subtype=gml/3.2',
  'text/xml; subtype=gml/3.2.1',
  'gml32',
  'gml3.2',
]);
alias('gml311', 'text/xml; subtype=gml/3.1.1', [
  'text/xml; subtype=gml/3.1.1',
  'application/gml+xml; version=3.1',
  'gml3',
  'gml311',
  'gml3.1.1',
]);
alias('geojson', 'application/json; charset=UTF-8', ['application/json', 'json', 'application/json; subtype=geojson', 'text/javascript']);
alias('geojson', 'application/geo+json', ['geojson', 'application/geo+json', 'application/vnd.geo+json']);
alias('csv', 'text/csv; charset=UTF-8', ['text/csv', 'csv']);
alias('ndjson', 'application/x-ndjson', ['application/x-ndjson', 'ndjson', 'application/ndjson', 'application/geojson-seq']);
alias('geojsonseq', 'application/geo+json-seq', ['application/geo+json-seq']);
alias('kml', 'application/vnd.google-earth.kml+xml', ['application/vnd.google-earth.kml+xml', 'application/vnd.google-earth.kml', 'kml']);
alias('shp', 'application/zip', ['SHAPE-ZIP', 'shape-zip', 'application/zip', 'application/x-zipped-shp', 'shp', 'ESRI Shapefile']);
alias('gpkg', 'application/geopackage+sqlite3', ['application/geopackage+sqlite3', 'application/x-gpkg', 'GPKG', 'geopackage', 'geopkg']);
alias('xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', [
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'excel2007',
  'xlsx',
]);

export function parseOutputFormat(raw: string | undefined, version: string): OutputFormat {
  if (raw === undefined || raw.trim() === '') {
    return is20(version) ? ALIASES[normaliseFormat('gml32')] : ALIASES[normaliseFormat('gml311')];
  }
  const n = normaliseFormat(raw);
  // 'text/xml' alone: the version's default GML
  if (n === 'text/xml' || n === 'application/xml') return parseOutputFormat(undefined, version);
  const f = ALIASES[n];
  if (!f)
    throw new OwsException(
      'InvalidParameterValue',
      `unsupported output format '${raw}' (offered: ${(is20(version) ? OUTPUT_FORMATS_20 : OUTPUT_FORMATS_11).join(', ')})`,
      'outputFormat',
    );
  return f;
}

export function isGml(k: OutputKind): k is 'gml32' | 'gml311' {
  return k === 'gml32' || k === 'gml311';
}
