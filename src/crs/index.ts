/**
 * Coordinate reference systems the map services advertise: proj4 definitions, WMS axis-order
 * rules per version, and densified extent transformation (so that the curved edges of a
 * reprojected rectangle are covered).
 */
import proj4 from 'proj4';
import { isLatLonEpsg, parseCrsName } from '../filter/crs-names.js';
import type { Extent } from '../registry/types.js';

const LAMBERT_CC = (zone: number): string =>
  `+proj=lcc +lat_0=${zone} +lon_0=3 +lat_1=${zone - 0.75} +lat_2=${zone + 0.75} +x_0=1700000 +y_0=${(zone - 41) * 1000000 + 200000} +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs`;

/** proj4 definitions of the CRSs this server knows (EPSG code → proj4 string). */
export const PROJ_DEFS: Record<number, string> = {
  4326: '+proj=longlat +datum=WGS84 +no_defs',
  4258: '+proj=longlat +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +no_defs',
  3857: '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs',
  2154: '+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs',
  3035: '+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs',
};
for (let z = 42; z <= 50; z++) PROJ_DEFS[3900 + z] = LAMBERT_CC(z);
for (const [code, def] of Object.entries(PROJ_DEFS)) proj4.defs(`EPSG:${code}`, def);

/** Web Mercator aliases accepted in requests (mapped to 3857). */
export const MERCATOR_ALIASES = [900913, 3785, 102100, 102113];

export function isKnownEpsg(epsg: number): boolean {
  return epsg in PROJ_DEFS;
}

export function isGeographic(epsg: number): boolean {
  return epsg === 4326 || epsg === 4258;
}

/** A CRS as given in a WMS request, resolved. */
export interface MapCrs {
  epsg: number;
  /** The identifier as written in capabilities (EPSG:n or CRS:84). */
  code: string;
  /** True when BBOX values come as (lat, lon) / (miny, minx, maxy, maxx) and must be swapped. */
  swapAxes: boolean;
}

/**
 * Resolve a WMS CRS/SRS parameter. WMS 1.3.0: EPSG:4326 and 4258 (geographic, EPSG axis order)
 * are lat/lon; CRS:84 is lon/lat. WMS 1.1.1: always x/y (lon/lat). Returns null for unknown CRSs.
 */
export function resolveWmsCrs(name: string, version: string): MapCrs | null {
  const s = name.trim();
  const l = s.toLowerCase();
  if (l === 'crs:84' || l === 'crs84') return { epsg: 4326, code: 'CRS:84', swapAxes: false };
  const m = l.match(/^epsg:(\d+)$/);
  let epsg: number | null = null;
  let swap = false;
  if (m) {
    epsg = Number(m[1]);
    if (MERCATOR_ALIASES.includes(epsg)) epsg = 3857;
    swap = version === '1.3.0' && isLatLonEpsg(epsg);
  } else {
    const info = parseCrsName(s);
    if (!info) return null;
    epsg = info.epsg;
    swap = version === '1.3.0' ? info.latLonOrder : false;
  }
  if (!isKnownEpsg(epsg)) return null;
  return { epsg, code: `EPSG:${epsg}`, swapAxes: swap };
}

/** Transform one point (x/y order, lon/lat for geographic CRSs). */
export function transformPoint(x: number, y: number, from: number, to: number): [number, number] {
  if (from === to) return [x, y];
  const p = proj4(`EPSG:${from}`, `EPSG:${to}`, [x, y]);
  return [p[0], p[1]];
}

export class ExtentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExtentError';
  }
}

/**
 * Transform an extent, sampling `steps` points along each edge (and the interior grid for
 * projections whose extremes may lie inside, e.g. near a pole), and return the enclosing extent.
 */
export function transformExtent(e: Extent, from: number, to: number, steps = 16): Extent {
  if (from === to) return { ...e };
  const fwd = proj4(`EPSG:${from}`, `EPSG:${to}`);
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  for (let i = 0; i <= steps; i++) {
    for (let j = 0; j <= steps; j++) {
      if (i !== 0 && i !== steps && j !== 0 && j !== steps && steps > 4 && (i % 4 || j % 4)) continue;
      const x = e.minx + ((e.maxx - e.minx) * i) / steps;
      const y = e.miny + ((e.maxy - e.miny) * j) / steps;
      let p: number[];
      try {
        p = fwd.forward([x, y]);
      } catch {
        continue;
      }
      if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) continue;
      if (p[0] < minx) minx = p[0];
      if (p[0] > maxx) maxx = p[0];
      if (p[1] < miny) miny = p[1];
      if (p[1] > maxy) maxy = p[1];
    }
  }
  if (!Number.isFinite(minx)) throw new ExtentError(`extent cannot be transformed from EPSG:${from} to EPSG:${to}`);
  return { minx, miny, maxx, maxy };
}

/** Metres per CRS unit (degrees at the equator for geographic CRSs). */
export function metersPerUnit(epsg: number): number {
  return isGeographic(epsg) ? (2 * Math.PI * 6378137) / 360 : 1;
}

/** OGC standardised rendering pixel size (0.28 mm), used for scale denominators. */
export const OGC_PIXEL_SIZE = 0.00028;

/** Scale denominator of a map (OGC/SLD definition). */
export function scaleDenominator(bbox: Extent, width: number, epsg: number): number {
  return (((bbox.maxx - bbox.minx) / width) * metersPerUnit(epsg)) / OGC_PIXEL_SIZE;
}
