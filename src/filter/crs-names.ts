/**
 * CRS identifiers as found in srsName attributes, filter-crs parameters, etc., and the axis
 * order each form mandates.
 *
 * Rules (GeoServer-compatible):
 *  - `EPSG:n` (short form) and `http://www.opengis.net/gml/srs/epsg.xml#n`: always x/y (lon/lat).
 *  - `urn:ogc:def:crs:EPSG::n`, `urn:ogc:def:crs:EPSG:6.x:n`, `urn:x-ogc:def:crs:EPSG:n`,
 *    `http://www.opengis.net/def/crs/EPSG/0/n`: the EPSG authority axis order, i.e. lat/lon for the
 *    geographic CRSs listed in LAT_LON_EPSG, northing/easting for NORTHING_FIRST_EPSG (3035),
 *    x/y (easting/northing) otherwise.
 *  - CRS84 in all its spellings: EPSG 4326 in lon/lat order.
 */
import { FilterError } from './errors.js';

export interface CrsInfo {
  epsg: number;
  /** True when coordinates written in this CRS are (lat, lon) or (northing, easting), i.e. must be swapped to get x/y. */
  latLonOrder: boolean;
}

/**
 * Geographic 2D/3D CRSs whose EPSG axis order is latitude first. Not exhaustive: the common
 * datums (WGS84, ETRS89, RGF93, ED50, NTF, NAD83/27, GDA94, SIRGAS, JGD2000, ...).
 */
const LAT_LON_EPSG = new Set<number>([
  4326, 4258, 4171, 4230, 4807, 4275, 4269, 4267, 4283, 4167, 4612, 4617, 4619, 4674, 4148, 4152, 4170, 4189, 4190, 4202, 4203, 4204, 4214,
  4231, 4236, 4237, 4240, 4242, 4244, 4248, 4255, 4265, 4274, 4277, 4284, 4289, 4301, 4312, 4313, 4314, 4322, 4324, 4490, 4686, 4746, 4755,
  4760, 4765, 4937, 4979, 7844, 4806, 4804, 4805,
]);

/**
 * Projected CRSs whose EPSG axis order is northing first (ETRS89 LCC and LAEA Europe): written and
 * read northing/easting under their URN and http://www.opengis.net/def/crs/EPSG/0/n names.
 */
const NORTHING_FIRST_EPSG = new Set<number>([3034, 3035]);

/** Aliases of Web Mercator. */
const MERCATOR_ALIASES = new Set<number>([900913, 3785, 102100, 102113, 3857]);

export function isLatLonEpsg(epsg: number): boolean {
  return LAT_LON_EPSG.has(epsg);
}

/** True when the EPSG code is a geographic CRS in degrees (from the small built-in table). */
export function isGeographicEpsg(epsg: number): boolean {
  return LAT_LON_EPSG.has(epsg);
}

function code(s: string): number | null {
  if (!/^\d{1,9}$/.test(s)) return null;
  const n = Number(s);
  if (n <= 0) return null;
  return MERCATOR_ALIASES.has(n) ? 3857 : n;
}

function authority(n: number | null): CrsInfo | null {
  return n === null ? null : { epsg: n, latLonOrder: LAT_LON_EPSG.has(n) || NORTHING_FIRST_EPSG.has(n) };
}

function xy(n: number | null): CrsInfo | null {
  return n === null ? null : { epsg: n, latLonOrder: false };
}

/** Parse a CRS identifier; null when the form is not recognised. */
export function parseCrsName(input: string): CrsInfo | null {
  if (typeof input !== 'string') return null;
  const s = input.trim();
  if (!s) return null;
  const l = s.toLowerCase();

  if (
    l === 'crs:84' ||
    l === 'crs84' ||
    l === 'ogc:crs84' ||
    l === 'urn:ogc:def:crs:ogc:1.3:crs84' ||
    l === 'urn:ogc:def:crs:ogc::crs84' ||
    l === 'urn:ogc:def:crs:ogc:2:84' ||
    l === 'http://www.opengis.net/def/crs/ogc/1.3/crs84' ||
    l === 'https://www.opengis.net/def/crs/ogc/1.3/crs84' ||
    l === 'http://www.opengis.net/def/crs/ogc/0/crs84'
  ) {
    return { epsg: 4326, latLonOrder: false };
  }

  let m: RegExpMatchArray | null;
  // EPSG:4326 (short form, x/y as in GeoServer)
  if ((m = l.match(/^epsg:(\d+)$/))) return xy(code(m[1]));
  // urn:ogc:def:crs:EPSG::4326, urn:ogc:def:crs:EPSG:6.11:4326, urn:x-ogc:def:crs:EPSG:4326
  if ((m = l.match(/^urn:(?:x-)?ogc:def:crs:epsg:(?:[\d.]*:)?(\d+)$/))) return authority(code(m[1]));
  // http://www.opengis.net/def/crs/EPSG/0/4326
  if ((m = l.match(/^https?:\/\/www\.opengis\.net\/def\/crs\/epsg\/[^/]+\/(\d+)$/))) return authority(code(m[1]));
  // http://www.opengis.net/gml/srs/epsg.xml#4326 (x/y)
  if ((m = l.match(/^https?:\/\/www\.opengis\.net\/gml\/srs\/epsg\.xml#(\d+)$/))) return xy(code(m[1]));
  return null;
}

/** Canonical URI for an EPSG code (OGC API style). */
export function crsUri(epsg: number): string {
  return `http://www.opengis.net/def/crs/EPSG/0/${epsg}`;
}

/** CRS84: EPSG 4326 in lon/lat order, the CRS of a filter's geometry literals when none is named. */
const CRS84: CrsInfo = Object.freeze({ epsg: 4326, latLonOrder: false });

/**
 * The CRS of geometry literals (CQL2 filter-crs, FES srsName and default CRS): CRS84 when none is
 * named, a CrsInfo as given, a name parsed; an unknown name is an InvalidParameterValue on `param`.
 */
export function literalCrs(c: string | CrsInfo | undefined, param: string): CrsInfo {
  if (c === undefined) return CRS84;
  if (typeof c !== 'string') return c;
  const r = parseCrsName(c);
  if (!r) throw new FilterError(`Unsupported ${param} '${c}'`, 'InvalidParameterValue', param);
  return r;
}
