/** WFS shared bits: application namespace, CRS list, output formats, type name resolution. */
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { OwsException } from '../../ows/exceptions.js';
import { isLatLonEpsg, parseCrsName, type CrsInfo } from '../../filter/crs-names.js';
import { isOfferedEpsg, offeredNames } from '../../crs/offered.js';
import {
  formatById,
  formatByName,
  neededToolsText,
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
  // a layer the caller may not read is unknown to it (ctx.registry is the request's view)
  const layer = name ? ctx.registry.resolve(name) : undefined;
  if (!layer) {
    throw new OwsException('InvalidParameterValue', `unknown feature type '${raw}'`, locator);
  }
  return layer;
}

/**
 * The CRS URN this version writes (capabilities, default srsName): WFS 2.0 uses the OGC URN
 * `urn:ogc:def:crs:EPSG::n`, WFS 1.1 the experimental form `urn:x-ogc:def:crs:EPSG:n` of its time
 * (as GeoServer does). Both declare the EPSG axis order (latitude first for geographic CRSs).
 */
export function crsUrn(epsg: number, version = '2.0.0'): string {
  return is20(version) ? `urn:ogc:def:crs:EPSG::${epsg}` : `urn:x-ogc:def:crs:EPSG:${epsg}`;
}

/** The legacy name written for x/y (longitude first) output: the one GeoServer and GDAL read as x/y. */
export function crsLegacyUrl(epsg: number): string {
  return `http://www.opengis.net/gml/srs/epsg.xml#${epsg}`;
}

export const CRS84_URN = 'urn:ogc:def:crs:OGC:1.3:CRS84';

export interface OutputCrs {
  epsg: number;
  /** Coordinates written lat/lon (northing/easting) in GML. */
  latLon: boolean;
  /** The srsName written on GML geometries: a name that declares the axis order actually written. */
  srsName: string;
  /** No SRSNAME was given: the output format's default CRS applies (formats.ts outputCrsOf). */
  defaulted?: boolean;
}

/**
 * Parse SRSNAME; only the advertised CRSs are accepted. The name written back declares the order
 * of the coordinates written (see docs/crs.md):
 *  - none: the format's default CRS (formats.ts); for GML the layer's, EPSG axis order, named by the version's URN;
 *  - `EPSG:n`, `http://www.opengis.net/gml/srs/epsg.xml#n`: x/y (longitude first), named by the
 *    epsg.xml# URL (GeoServer's answer to both legacy forms);
 *  - `urn:ogc:def:crs:EPSG::n`, `urn:x-ogc:def:crs:EPSG:n`, `http://www.opengis.net/def/crs/EPSG/0/n`:
 *    EPSG axis order (latitude first for geographic CRSs), named by the version's URN;
 *  - CRS84 (any spelling): longitude first, named `urn:ogc:def:crs:OGC:1.3:CRS84`.
 */
export function parseOutputCrs(raw: string | undefined, layer: Layer, version = '2.0.0', locator = 'srsName'): OutputCrs {
  if (raw === undefined || raw.trim() === '') {
    return { epsg: layer.srid, latLon: isLatLonEpsg(layer.srid), srsName: crsUrn(layer.srid, version), defaulted: true };
  }
  const c = parseCrsName(raw);
  if (!c) throw new OwsException('InvalidParameterValue', `unsupported CRS '${raw}'`, locator);
  if (!isOfferedEpsg(c.epsg, layer.srid)) {
    throw new OwsException(
      'InvalidParameterValue',
      `CRS '${raw}' is not offered for ${layer.name} (offered: ${offeredNames(layer.srid)})`,
      locator,
    );
  }
  const t = raw.trim();
  if (isCrs84(t)) return { epsg: 4326, latLon: false, srsName: CRS84_URN };
  const authorityForm = /^urn:|^https?:\/\/www\.opengis\.net\/def\/crs\//i.test(t);
  if (!authorityForm) return { epsg: c.epsg, latLon: false, srsName: crsLegacyUrl(c.epsg) };
  return { epsg: c.epsg, latLon: c.latLonOrder, srsName: crsUrn(c.epsg, version) };
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
  return wfsOutputFormatNames(version, serverFormats(ctx));
}

/** Resolve OUTPUTFORMAT (any alias of an offered format, any case); absent or text/xml: the version's GML. */
export function parseOutputFormat(ctx: AppContext, raw: string | undefined, version: string): OutputFormat {
  const offered = serverFormats(ctx);
  const n = raw === undefined ? '' : normaliseFormatName(raw);
  if (n === '' || n === 'text/xml' || n === 'application/xml') {
    const def = formatById(is20(version) ? 'gml32' : 'gml311');
    return { kind: def.id, contentType: def.contentType, def };
  }
  const hit = formatByName(raw!, offered);
  if (!hit) {
    const known = formatByName(raw!);
    const why = known?.def.requires.length
      ? `: ${known.def.title} is not offered by this server (it needs ${neededToolsText(known.def)})`
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
