/**
 * The request vocabulary shared by every front door: bounding boxes (with an optional CRS and its
 * axis order), CRS names in every form, counts and limits, sort keys, datetimes, tile indices and
 * zoom ranges. Pure functions, no database: each returns the value the engines take or throws a
 * ServiceError ('invalid', naming the parameter as locator) that the front door renders in its
 * own form (OWS report or problem+json).
 */
import { isKnownEpsg } from '../crs/index.js';
import { bareName, checkTemporalString, type TemporalInstant, type TemporalValue } from '../filter/ast.js';
import { isGeographicEpsg, parseCrsName, type CrsInfo } from '../filter/crs-names.js';
import { invalidParam } from '../errors/service-error.js';

export type { CrsInfo };

/** CRS84: EPSG:4326 in longitude, latitude order. */
export const CRS84: CrsInfo = Object.freeze({ epsg: 4326, latLonOrder: false });

export interface CrsOptions {
  /** Parameter name for errors. */
  locator: string;
  /** Which EPSG codes this request may use (default: the CRSs the server knows, src/crs). */
  accept?: (epsg: number) => boolean;
  /** Words listing what is offered, for the message. */
  offered?: string;
}

/** A CRS in any of its spellings (EPSG:n, urn:ogc:def:crs:EPSG::n, OGC URIs, CRS84…), known to the server. */
export function parseCrs(raw: string, opts: CrsOptions): CrsInfo {
  const c = parseCrsName(raw.replace(/^\[|\]$/g, ''));
  const accept = opts.accept ?? isKnownEpsg;
  if (!c || !accept(c.epsg)) {
    throw invalidParam(opts.locator, `unsupported CRS '${raw.slice(0, 200)}'${opts.offered ? ` (offered: ${opts.offered})` : ''}`);
  }
  return c;
}

export interface Bbox {
  minx: number;
  miny: number;
  maxx: number;
  maxy: number;
  /** EPSG code of the coordinates, now in x/y (easting/longitude first) order. */
  epsg: number;
}

export interface BboxOptions {
  locator?: string;
  /** CRS of the values when the box names none (e.g. from bbox-crs, else CRS84). */
  crs?: CrsInfo;
  /** OWS KVP: a fifth value may name the CRS (BBOX=minx,miny,maxx,maxy,crs). */
  crsSuffix?: CrsOptions;
  /** OGC API: 6 values (minx,miny,minz,maxx,maxy,maxz) are accepted and the heights ignored. */
  allow3d?: boolean;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * A bounding box 'minx,miny,maxx,maxy[,crs]' (or an array of its parts): exactly four finite
 * numbers (six with allow3d), in the CRS's axis order (swapped to x/y here), lower corner below
 * and left of the upper one, and within ±90° / ±180° in a geographic CRS.
 */
export function parseBbox(raw: string | string[], opts: BboxOptions = {}): Bbox {
  const locator = opts.locator ?? 'bbox';
  const parts = (Array.isArray(raw) ? raw.flatMap((p) => String(p).split(',')) : raw.split(',')).map((p) => p.trim());
  let crs = opts.crs ?? CRS84;
  let crsName: string | undefined;
  if (opts.crsSuffix && parts.length > 0 && !NUMBER.test(parts[parts.length - 1]) && (parts.length === 5 || parts.length === 7)) {
    crsName = parts.pop()!;
    crs = parseCrs(crsName, { ...opts.crsSuffix, locator });
  }
  const shape = opts.allow3d ? '4 or 6' : '4';
  if (!(parts.length === 4 || (opts.allow3d && parts.length === 6)) || parts.some((p) => !NUMBER.test(p))) {
    throw invalidParam(
      locator,
      `${locator} must be ${shape} comma-separated numbers (minx,miny,maxx,maxy${opts.crsSuffix ? '[,crs]' : ''}), got '${clip(parts.join(','))}'`,
    );
  }
  const n = parts.map(Number);
  if (n.some((v) => !Number.isFinite(v))) throw invalidParam(locator, `${locator} values must be finite numbers`);
  let [a, b, c, d] = n.length === 6 ? [n[0], n[1], n[3], n[4]] : n;
  if (crs.latLonOrder) [a, b, c, d] = [b, a, d, c];
  if (a > c || b > d) {
    throw invalidParam(
      locator,
      `${locator}: the lower corner must be below and left of the upper corner${crs.latLonOrder ? ' (this CRS is latitude first)' : ''}`,
    );
  }
  const box = { minx: a, miny: b, maxx: c, maxy: d, epsg: crs.epsg };
  const outside = outOfDomain(box);
  if (outside) throw invalidParam(locator, `${locator} ${outside}${crs.latLonOrder ? ' (this CRS is latitude first)' : ''}`);
  return box;
}

/**
 * Why coordinates cannot be in their CRS, or undefined when they can: latitudes beyond ±90 and
 * longitudes beyond ±180 in a geographic CRS (PROJ refuses them).
 */
export function outOfDomain(b: { minx: number; miny: number; maxx: number; maxy: number; epsg: number }): string | undefined {
  if (!isGeographicEpsg(b.epsg)) return undefined;
  if (b.miny < -90 || b.maxy > 90 || b.minx < -180 || b.maxx > 180) {
    return `is out of range for EPSG:${b.epsg}: latitudes within ±90, longitudes within ±180`;
  }
  return undefined;
}

export interface CountOptions {
  locator: string;
  min?: number;
  /** Values above max: refused (default), or clamped to max (OGC API limit). */
  max?: number;
  clamp?: boolean;
}

/**
 * A count, limit or index: a non-negative integer in decimal. A value too large to be exact
 * (more than 2^53) does not fit and is refused (WFS COUNT must be a non-negative integer the
 * server can honour, and "everything" is never what forty digits mean) unless `clamp` says the
 * maximum applies (OGC API limit).
 */
export function parseCount(raw: string | undefined, opts: CountOptions): number | undefined {
  if (raw === undefined) return undefined;
  const s = String(raw).trim();
  if (s === '') return undefined;
  if (!/^\+?\d+$/.test(s)) throw invalidParam(opts.locator, `${opts.locator} must be a non-negative integer, got '${clip(s)}'`);
  const n = Number(s);
  // OGC API – Features 7.15.3: a limit above the maximum is no error, the maximum applies
  if (!Number.isSafeInteger(n) && opts.clamp && opts.max !== undefined) return opts.max;
  if (!Number.isSafeInteger(n)) throw invalidParam(opts.locator, `${opts.locator} ${clip(s)} is too large`);
  const min = opts.min ?? 0;
  if (n < min) throw invalidParam(opts.locator, `${opts.locator} must be at least ${min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) {
    if (opts.clamp) return opts.max;
    throw invalidParam(opts.locator, `${opts.locator} must be at most ${opts.max}, got ${n}`);
  }
  return n;
}

export interface SortKey {
  property: string;
  desc: boolean;
}

/**
 * Sort keys in either vocabulary: OWS 'name ASC,other DESC' (also A/D, a '+' for the space)
 * and OGC API 'name,-other,+third'.
 */
export function parseSortBy(raw: string, style: 'ows' | 'api', locator = style === 'ows' ? 'sortBy' : 'sortby'): SortKey[] {
  const keys: SortKey[] = [];
  for (const part of raw.split(',')) {
    const p = part.trim();
    if (style === 'ows') {
      if (!p) continue;
      const m = p.match(/^(\S+?)(?:[\s+]+(ASC|DESC|A|D))?$/i);
      if (!m) throw invalidParam(locator, `invalid sort key '${clip(p)}' (expected 'name ASC' or 'name DESC')`);
      keys.push({ property: bareName(m[1]), desc: /^d/i.test(m[2] ?? 'A') });
    } else {
      // a '+' in a query string arrives as a space
      if (!p) throw invalidParam(locator, `parameter '${locator}': empty sort key`);
      const desc = p.startsWith('-');
      const name = p.replace(/^[+-]/, '').trim();
      if (!/^[^\s]+$/.test(name)) throw invalidParam(locator, `parameter '${locator}': '${clip(part)}' is not a property name`);
      keys.push({ property: name, desc });
    }
  }
  return keys;
}

/** An RFC 3339 datetime: an instant, or an interval a/b with '..' or '' for an open end. */
export function parseDatetime(raw: string, locator = 'datetime'): TemporalValue {
  const t = raw.trim();
  const instant = (s: string): TemporalInstant => {
    const c = checkTemporalString(s);
    if (!c) throw invalidParam(locator, `parameter '${locator}': '${clip(s)}' is not an RFC 3339 date or date-time`);
    return { type: 'instant', value: s, isDate: c.isDate };
  };
  if (!t.includes('/')) return instant(t);
  const [a, b, ...rest] = t.split('/');
  if (rest.length) throw invalidParam(locator, `parameter '${locator}': '${clip(raw)}' has more than one '/'`);
  const open = (x: string) => x === '' || x === '..';
  if (open(a) && open(b)) throw invalidParam(locator, `parameter '${locator}': an interval needs at least one bound`);
  const start = open(a) ? null : instant(a);
  const end = open(b) ? null : instant(b);
  if (start && end && Date.parse(start.value) > Date.parse(end.value)) {
    throw invalidParam(locator, `parameter '${locator}': the interval ends before it starts`);
  }
  return { type: 'interval', start, end };
}

/** A tile matrix, row or column index: an integer (its range is the tile matrix set's to check). */
export function parseTileIndex(raw: string, locator: string): number {
  const s = raw.trim();
  if (!/^-?\d{1,15}$/.test(s)) throw invalidParam(locator, `${locator} '${clip(s)}' is not an integer`);
  return Number(s);
}

/** A zoom level or range 'N' or 'N-M' within 0..max. */
export function parseZoomRange(raw: unknown, max: number, locator = 'zoom'): [number, number] | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const m = String(raw).match(/^(\d{1,3})(?:-(\d{1,3}))?$/);
  if (!m) throw invalidParam(locator, `${locator} must be N or N-M, got '${clip(String(raw))}'`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a > b || b > max) throw invalidParam(locator, `${locator} range ${a}-${b} is outside 0-${max}`);
  return [a, b];
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
