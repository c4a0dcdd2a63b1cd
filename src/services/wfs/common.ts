/** WFS shared bits: application namespace, CRS list, output formats, type name resolution. */
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { OwsException } from '../../ows/exceptions.js';
import { parseCrsName, type CrsInfo } from '../../filter/crs-names.js';
import {
  formatById,
  formatByName,
  normaliseFormatName,
  wfsOutputFormatNames,
  type FormatDef,
  type FormatId,
} from '../../features/formats.js';
import { serverFormats } from '../../features/formats.js';

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
  // resolve() refuses a restricted layer with 401/403 for a caller who may not read it
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
  /** No SRSNAME was given: the output format's default CRS applies (formats.ts outputCrsOf). */
  defaulted?: boolean;
}

/** Parse SRSNAME; only the advertised CRSs are accepted. */
export function parseOutputCrs(raw: string | undefined, layer: Layer, locator = 'srsName'): OutputCrs {
  if (raw === undefined || raw.trim() === '') return { epsg: layer.srid, latLon: false, longName: true, defaulted: true };
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

export type OutputKind = FormatId;

/** An OUTPUTFORMAT resolved against the format table: its entry and the Content-Type to answer with. */
export interface OutputFormat {
  kind: FormatId;
  contentType: string;
  def: FormatDef;
}

/** Formats WFS hands to the shared export (sent as a file: CSV, KML, Shapefile, GeoPackage, FlatGeobuf, XLSX). */
export function isFileKind(f: OutputFormat): boolean {
  return f.def.attachment;
}

/** Output format names advertised by GetCapabilities for a version: the format table, as offered on this machine. */
export function outputFormatNames(ctx: AppContext, version: string): string[] {
  return wfsOutputFormatNames(version, serverFormats(ctx.config));
}

/** Resolve OUTPUTFORMAT (any alias of an offered format, any case); absent or text/xml: the version's GML. */
export function parseOutputFormat(ctx: AppContext, raw: string | undefined, version: string): OutputFormat {
  const offered = serverFormats(ctx.config);
  const n = raw === undefined ? '' : normaliseFormatName(raw);
  if (n === '' || n === 'text/xml' || n === 'application/xml') {
    const def = formatById(is20(version) ? 'gml32' : 'gml311');
    return { kind: def.id, contentType: def.contentType, def };
  }
  const hit = formatByName(raw!, offered);
  if (!hit) {
    const known = formatByName(raw!);
    const why = known?.def.requires.length
      ? `: ${known.def.title} is not offered by this server (it needs ${known.def.requires.map((t) => (t === 'ogr2ogr' ? "GDAL's ogr2ogr" : t)).join(', ')})`
      : '';
    throw new OwsException(
      'InvalidParameterValue',
      `unsupported output format '${raw}'${why} (offered: ${wfsOutputFormatNames(version, offered).join(', ')})`,
      'outputFormat',
    );
  }
  return { kind: hit.def.id, contentType: hit.contentType, def: hit.def };
}

export function isGml(k: OutputKind): k is 'gml32' | 'gml311' {
  return k === 'gml32' || k === 'gml311';
}
