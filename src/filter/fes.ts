/**
 * FES 2.0 (OGC 09-026r2) and OGC Filter Encoding 1.1 (OGC 04-095) → filter AST.
 *
 * Both namespaces (http://www.opengis.net/fes/2.0, http://www.opengis.net/ogc) are accepted
 * whatever the version flag: operators are recognised by local name. Geometry literals may be
 * GML 2, 3.1.1 or 3.2; they are converted to GeoJSON in x/y order according to the axis order the
 * srsName mandates (see crs-names.ts).
 */
import { parseXml, XmlInputError, attr, type XmlElement, type XmlLimits } from '../ows/xmldom.js';
import {
  bareName,
  checkTemporalString,
  envelopePolygon,
  type ComparisonOp,
  type FilterNode,
  type GeoJsonGeometry,
  type GeometryLiteral,
  type Operand,
  type SpatialNode,
  type SpatialOp,
  type TemporalInstant,
  type TemporalOp,
  type TemporalValue,
} from './ast.js';
import { literalCrs, type CrsInfo } from './crs-names.js';
import { FilterError, parseError } from './errors.js';

export interface FesContext {
  version: '2.0' | '1.1';
  /**
   * CRS of geometry literals without srsName: a CRS name (parsed with parseCrsName) or an
   * already-parsed CrsInfo. Default: CRS84 (EPSG 4326, lon/lat).
   */
  defaultCrs?: string | CrsInfo;
  /** Bounds on the filter's XML (FILTER in KVP); DEFAULT_XML_LIMITS when absent. */
  xmlLimits?: XmlLimits;
}

export const FES_20_NS = 'http://www.opengis.net/fes/2.0';
export const OGC_FILTER_NS = 'http://www.opengis.net/ogc';

const COMPARISONS: Record<string, ComparisonOp> = {
  PropertyIsEqualTo: '=',
  PropertyIsNotEqualTo: '<>',
  PropertyIsLessThan: '<',
  PropertyIsLessThanOrEqualTo: '<=',
  PropertyIsGreaterThan: '>',
  PropertyIsGreaterThanOrEqualTo: '>=',
};

const SPATIAL: Record<string, SpatialOp> = {
  BBOX: 'bbox',
  Equals: 'equals',
  Disjoint: 'disjoint',
  Touches: 'touches',
  Within: 'within',
  Overlaps: 'overlaps',
  Crosses: 'crosses',
  Intersects: 'intersects',
  Contains: 'contains',
  DWithin: 'dwithin',
  Beyond: 'beyond',
};

const TEMPORAL: Record<string, TemporalOp> = {
  After: 'after',
  Before: 'before',
  During: 'during',
  TEquals: 'tequals',
  AnyInteracts: 'tintersects',
  Begins: 'tstarts',
  BegunBy: 'tstartedby',
  TContains: 'tcontains',
  Ends: 'tfinishes',
  EndedBy: 'tfinishedby',
  Meets: 'tmeets',
  MetBy: 'tmetby',
  TOverlaps: 'toverlaps',
  OverlappedBy: 'toverlappedby',
};

const ARITH: Record<string, '+' | '-' | '*' | '/'> = { Add: '+', Sub: '-', Mul: '*', Div: '/' };

const ID_ELEMENTS = new Set(['ResourceId', 'FeatureId', 'GmlObjectId']);
const EXPRESSION_ELEMENTS = new Set(['ValueReference', 'PropertyName', 'Literal', 'Function', 'Add', 'Sub', 'Mul', 'Div']);

/** Parse an XML string holding a fes:Filter / ogc:Filter element. */
export function parseFesFilterString(xml: string, ctx: FesContext): FilterNode {
  let el: XmlElement;
  try {
    el = parseXml(xml, ctx.xmlLimits);
  } catch (e) {
    if (e instanceof XmlInputError) throw parseError(`Filter: ${e.message}`);
    throw e;
  }
  return parseFesFilter(el, ctx);
}

/** Parse a fes:Filter / ogc:Filter element (or directly one of its operator elements). */
export function parseFesFilter(el: XmlElement, ctx: FesContext): FilterNode {
  const p = new FesParser(ctx);
  if (el.name === 'Filter') {
    if (el.children.length === 0) throw parseError('Filter element is empty');
    if (el.children.every((c) => ID_ELEMENTS.has(c.name))) {
      return { kind: 'resourceId', ids: el.children.map((c) => p.resourceId(c)) };
    }
    if (el.children.length !== 1) {
      throw parseError(`Filter must contain exactly one operator, found ${el.children.length} elements`);
    }
    return p.operator(el.children[0]);
  }
  return p.operator(el);
}

class FesParser {
  private readonly defaultCrs: CrsInfo;

  constructor(private readonly ctx: FesContext) {
    this.defaultCrs = literalCrs(ctx.defaultCrs, 'srsName');
  }

  operator(el: XmlElement): FilterNode {
    const n = el.name;
    if (n === 'And' || n === 'Or') {
      if (el.children.length < 1) throw parseError(`${n} requires operands`);
      const args = el.children.map((c) => this.operator(c));
      if (args.length === 1) return args[0];
      return { kind: n === 'And' ? 'and' : 'or', args };
    }
    if (n === 'Not') {
      if (el.children.length !== 1) throw parseError('Not requires exactly one operand');
      return { kind: 'not', arg: this.operator(el.children[0]) };
    }
    if (n in COMPARISONS) {
      const exprs = this.expressions(el, 2, n);
      return {
        kind: 'compare',
        op: COMPARISONS[n],
        left: exprs[0],
        right: exprs[1],
        matchCase: matchCase(el),
      };
    }
    if (n === 'PropertyIsLike') return this.like(el);
    if (n === 'PropertyIsNull' || n === 'PropertyIsNil') {
      const exprs = this.expressions(el, 1, n);
      return { kind: 'isNull', operand: exprs[0] };
    }
    if (n === 'PropertyIsBetween') return this.between(el);
    if (n in SPATIAL) return this.spatial(el, SPATIAL[n]);
    if (n in TEMPORAL) return this.temporal(el, TEMPORAL[n]);
    if (ID_ELEMENTS.has(n)) return { kind: 'resourceId', ids: [this.resourceId(el)] };
    if (n === 'Filter') return parseFesFilter(el, this.ctx);
    throw parseError(`Unsupported filter operator '${el.qname}'`);
  }

  resourceId(el: XmlElement): string {
    const id = el.name === 'ResourceId' ? attr(el, 'rid') : el.name === 'FeatureId' ? (attr(el, 'fid') ?? attr(el, 'rid')) : attr(el, 'id');
    if (id === undefined || id.trim() === '') throw parseError(`${el.name} without identifier attribute`);
    return id.trim();
  }

  private expressions(el: XmlElement, count: number, op: string): Operand[] {
    const exprs = el.children.filter((c) => EXPRESSION_ELEMENTS.has(c.name));
    if (exprs.length !== count || el.children.length !== count) {
      throw parseError(`${op} requires ${count} expression${count > 1 ? 's' : ''}, found ${el.children.length} elements`);
    }
    return exprs.map((c) => this.expression(c));
  }

  expression(el: XmlElement): Operand {
    switch (el.name) {
      case 'ValueReference':
      case 'PropertyName': {
        const name = bareName(el.text);
        if (!name) throw parseError(`Empty ${el.name}`);
        return { kind: 'property', name };
      }
      case 'Literal':
        if (el.children.length > 0) throw parseError(`Literal with element content (${el.children[0].qname}) is not a scalar value`);
        return { kind: 'literal', type: 'string', value: el.text };
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        if (el.children.length !== 2) throw parseError(`${el.name} requires two expressions`);
        return {
          kind: 'arith',
          op: ARITH[el.name],
          left: this.expression(el.children[0]),
          right: this.expression(el.children[1]),
        };
      }
      case 'Function':
        throw new FilterError(`Function '${attr(el, 'name') ?? ''}' is not supported`, 'InvalidParameterValue', 'filter');
      default:
        throw parseError(`Expected an expression, found '${el.qname}'`);
    }
  }

  private like(el: XmlElement): FilterNode {
    const exprs = this.expressions(el, 2, 'PropertyIsLike');
    const lit = exprs[1];
    if (lit.kind !== 'literal') throw parseError('PropertyIsLike pattern must be a Literal');
    const wild = attr(el, 'wildCard');
    const single = attr(el, 'singleChar');
    const esc = attr(el, 'escapeChar') ?? attr(el, 'escape');
    if (wild === undefined || single === undefined || esc === undefined) {
      throw parseError('PropertyIsLike requires wildCard, singleChar and escape attributes');
    }
    return {
      kind: 'like',
      operand: exprs[0],
      pattern: normaliseLikePattern(String(lit.value), wild, single, esc),
      matchCase: matchCase(el),
    };
  }

  private between(el: XmlElement): FilterNode {
    const lowerEl = el.children.find((c) => c.name === 'LowerBoundary');
    const upperEl = el.children.find((c) => c.name === 'UpperBoundary');
    const exprEl = el.children.find((c) => EXPRESSION_ELEMENTS.has(c.name));
    if (!lowerEl || !upperEl || !exprEl || el.children.length !== 3) {
      throw parseError('PropertyIsBetween requires an expression, LowerBoundary and UpperBoundary');
    }
    const bound = (b: XmlElement): Operand => {
      if (b.children.length !== 1) throw parseError(`${b.name} requires one expression`);
      return this.expression(b.children[0]);
    };
    return { kind: 'between', operand: this.expression(exprEl), lower: bound(lowerEl), upper: bound(upperEl) };
  }

  private spatial(el: XmlElement, op: SpatialOp): FilterNode {
    let property: string | null = null;
    let geomEl: XmlElement | undefined;
    let distance: { value: number; units: string } | undefined;
    for (const c of el.children) {
      if (c.name === 'ValueReference' || c.name === 'PropertyName') {
        if (property !== null) throw parseError(`${el.name}: more than one property reference`);
        property = bareName(c.text);
        if (!property) throw parseError(`Empty ${c.name}`);
      } else if (c.name === 'Distance') {
        const v = Number(c.text);
        if (c.text === '' || !Number.isFinite(v)) throw parseError(`${el.name}: invalid Distance '${c.text}'`);
        const units = attr(c, 'uom') ?? attr(c, 'units');
        if (!units) throw parseError(`${el.name}: Distance requires a units/uom attribute`);
        distance = { value: v, units };
      } else if (c.name === 'Literal') {
        if (c.children.length !== 1) throw parseError(`${el.name}: Literal must hold one geometry`);
        if (geomEl) throw parseError(`${el.name}: more than one geometry`);
        geomEl = c.children[0];
      } else {
        if (geomEl) throw parseError(`${el.name}: more than one geometry`);
        geomEl = c;
      }
    }
    if (!geomEl) throw parseError(`${el.name} requires a geometry`);
    if ((op === 'dwithin' || op === 'beyond') && !distance) throw parseError(`${el.name} requires a Distance`);
    const geometry = this.geometryLiteral(geomEl);
    // FES 2.0 allows any geometry in BBOX (its envelope is meant); the compiler's && + ST_Intersects
    // on the geometry itself is equivalent for boxes, and stricter otherwise.
    const node: SpatialNode = { kind: 'spatial', op, property, geometry };
    if (distance) node.distance = distance;
    return node;
  }

  private temporal(el: XmlElement, op: TemporalOp): FilterNode {
    let property: string | null = null;
    let value: TemporalValue | null = null;
    for (const c of el.children) {
      if (c.name === 'ValueReference' || c.name === 'PropertyName') {
        property = bareName(c.text);
      } else if (c.name === 'Literal') {
        value = c.children.length === 1 ? timeObject(c.children[0]) : instant(c.text);
      } else {
        value = timeObject(c);
      }
    }
    if (!property) throw parseError(`${el.name} requires a ValueReference`);
    if (!value) throw parseError(`${el.name} requires a time instant or period`);
    return { kind: 'temporal', op, property, value };
  }

  geometryLiteral(el: XmlElement): GeometryLiteral {
    const crs = this.crsOf(el, this.defaultCrs);
    const geometry = gmlGeometry(el, crs.latLonOrder, (e, inherited) => this.crsOf(e, inherited), crs);
    return { geometry, epsg: crs.epsg };
  }

  private crsOf(el: XmlElement, inherited: CrsInfo): CrsInfo {
    const s = attr(el, 'srsName');
    return s === undefined || s === '' ? inherited : literalCrs(s, 'srsName');
  }
}

function matchCase(el: XmlElement): boolean {
  const v = attr(el, 'matchCase');
  return !(v !== undefined && v.trim().toLowerCase() === 'false');
}

/** Convert a FES LIKE pattern (custom wildcard/single/escape characters) to the internal form. */
export function normaliseLikePattern(pattern: string, wildCard: string, singleChar: string, escapeChar: string): string {
  if (!wildCard || !singleChar) throw parseError('PropertyIsLike wildCard and singleChar must not be empty');
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    if (escapeChar && pattern.startsWith(escapeChar, i) && i + escapeChar.length < pattern.length) {
      i += escapeChar.length;
      const ch = pattern[i];
      out += ch === '%' || ch === '_' || ch === '\\' ? '\\' + ch : ch;
      i += 1;
      continue;
    }
    if (pattern.startsWith(wildCard, i)) {
      out += '%';
      i += wildCard.length;
      continue;
    }
    if (pattern.startsWith(singleChar, i)) {
      out += '_';
      i += singleChar.length;
      continue;
    }
    const ch = pattern[i];
    out += ch === '%' || ch === '_' || ch === '\\' ? '\\' + ch : ch;
    i += 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GML time objects

function instant(text: string): TemporalInstant {
  const t = text.trim();
  const c = checkTemporalString(t);
  if (!c) throw parseError(`Invalid time value '${text}'`);
  return { type: 'instant', value: t, isDate: c.isDate };
}

function timePositionOf(el: XmlElement | undefined): TemporalInstant | null {
  if (!el) return null;
  // <gml:beginPosition indeterminatePosition="unknown"/> or empty → open end
  if (el.name === 'begin' || el.name === 'end') {
    const ti = el.children.find((c) => c.name === 'TimeInstant');
    if (!ti) return null;
    return timePositionOf(ti.children.find((c) => c.name === 'timePosition'));
  }
  if (el.text === '' || el.text === '..') return null;
  return instant(el.text);
}

function timeObject(el: XmlElement): TemporalValue {
  if (el.name === 'TimeInstant') {
    const tp = el.children.find((c) => c.name === 'timePosition');
    const v = timePositionOf(tp);
    if (!v) throw parseError('TimeInstant requires a timePosition');
    return v;
  }
  if (el.name === 'TimePeriod') {
    const b = el.children.find((c) => c.name === 'beginPosition' || c.name === 'begin');
    const e = el.children.find((c) => c.name === 'endPosition' || c.name === 'end');
    if (!b || !e) throw parseError('TimePeriod requires begin and end');
    return { type: 'interval', start: timePositionOf(b), end: timePositionOf(e) };
  }
  throw parseError(`Expected gml:TimeInstant or gml:TimePeriod, found '${el.qname}'`);
}

// ---------------------------------------------------------------------------------------------
// GML geometry → GeoJSON

type CrsResolver = (el: XmlElement, inherited: CrsInfo) => CrsInfo;

function findChild(el: XmlElement, ...names: string[]): XmlElement | undefined {
  return el.children.find((c) => names.includes(c.name));
}

function dimensionOf(el: XmlElement, fallback: number): number {
  const d = attr(el, 'srsDimension') ?? attr(el, 'dimension');
  if (d === undefined) return fallback;
  const n = Number(d);
  if (!Number.isInteger(n) || n < 2 || n > 4) throw parseError(`Invalid srsDimension '${d}'`);
  return n;
}

function numbers(text: string, what: string): number[] {
  const parts = text
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '');
  return parts.map((s) => {
    const v = Number(s);
    if (!Number.isFinite(v)) throw parseError(`Invalid number '${s}' in ${what}`);
    return v;
  });
}

function orient(p: number[], swap: boolean): number[] {
  return swap ? [p[1], p[0], ...p.slice(2)] : p;
}

/** Positions of a coordinate-bearing element (posList, pos*, coordinates, coord*). */
function positions(el: XmlElement, swap: boolean, dim: number): number[][] {
  dim = dimensionOf(el, dim);
  const posList = findChild(el, 'posList');
  if (posList) {
    const d = dimensionOf(posList, dim);
    const nums = numbers(posList.text, 'posList');
    if (nums.length % d !== 0) throw parseError(`posList length ${nums.length} is not a multiple of dimension ${d}`);
    const out: number[][] = [];
    for (let i = 0; i < nums.length; i += d) out.push(orient(nums.slice(i, i + d), swap));
    return out;
  }
  const coords = findChild(el, 'coordinates');
  if (coords) {
    const cs = attr(coords, 'cs') ?? ',';
    const ts = attr(coords, 'ts') ?? ' ';
    const dec = attr(coords, 'decimal') ?? '.';
    const tuples = /^\s+$/.test(ts) ? coords.text.trim().split(/\s+/) : coords.text.split(ts);
    return tuples
      .map((t) => t.trim())
      .filter((t) => t !== '')
      .map((t) =>
        orient(
          t.split(cs).map((s) => {
            const v = Number(dec === '.' ? s.trim() : s.trim().split(dec).join('.'));
            if (s.trim() === '' || !Number.isFinite(v)) throw parseError(`Invalid number '${s}' in coordinates`);
            return v;
          }),
          swap,
        ),
      );
  }
  const out: number[][] = [];
  for (const c of el.children) {
    if (c.name === 'pos') out.push(orient(numbers(c.text, 'pos'), swap));
    else if (c.name === 'coord') {
      const p: number[] = [];
      for (const axis of ['X', 'Y', 'Z']) {
        const a = findChild(c, axis);
        if (a) p.push(...numbers(a.text, 'coord'));
      }
      out.push(orient(p, swap));
    } else if (c.name === 'pointProperty' || c.name === 'pointRep') {
      const pt = findChild(c, 'Point');
      if (pt) out.push(...positions(pt, swap, dim));
    }
  }
  return out;
}

function checkPositions(ps: number[][], min: number, what: string): void {
  if (ps.length < min) throw parseError(`${what} requires at least ${min} position${min > 1 ? 's' : ''}`);
  for (const p of ps) if (p.length < 2) throw parseError(`${what}: position with fewer than 2 ordinates`);
}

function ring(el: XmlElement, swap: boolean, dim: number): number[][] {
  const lr = findChild(el, 'LinearRing');
  if (!lr) throw parseError(`${el.name} requires a LinearRing`);
  const ps = positions(lr, swap, dim);
  checkPositions(ps, 4, 'LinearRing');
  const a = ps[0];
  const b = ps[ps.length - 1];
  if (a[0] !== b[0] || a[1] !== b[1]) throw parseError('LinearRing is not closed');
  return ps;
}

function members(el: XmlElement, single: string[], plural: string[], geomNames: string[]): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (single.includes(c.name)) {
      const g = c.children.find((x) => geomNames.includes(x.name));
      if (!g) throw parseError(`${c.name} requires a ${geomNames[0]}`);
      out.push(g);
    } else if (plural.includes(c.name)) {
      for (const g of c.children) {
        if (!geomNames.includes(g.name)) throw parseError(`Unexpected ${g.qname} in ${c.name}`);
        out.push(g);
      }
    }
  }
  if (out.length === 0) throw parseError(`${el.name} has no members`);
  return out;
}

function gmlGeometry(el: XmlElement, swap: boolean, crsOf: CrsResolver, crs: CrsInfo): GeoJsonGeometry {
  const dim = dimensionOf(el, 2);
  const sub = (g: XmlElement): GeoJsonGeometry => {
    const c = crsOf(g, crs);
    if (c.epsg !== crs.epsg) throw parseError(`Member geometry in a different CRS (${c.epsg}) than its parent (${crs.epsg})`);
    return gmlGeometry(g, c.latLonOrder, crsOf, c);
  };
  switch (el.name) {
    case 'Point': {
      const ps = positions(el, swap, dim);
      if (ps.length !== 1) throw parseError('Point requires exactly one position');
      checkPositions(ps, 1, 'Point');
      return { type: 'Point', coordinates: ps[0] };
    }
    case 'LineString':
    case 'LineStringSegment': {
      const ps = positions(el, swap, dim);
      checkPositions(ps, 2, 'LineString');
      return { type: 'LineString', coordinates: ps };
    }
    case 'Curve': {
      const segs = findChild(el, 'segments');
      const lines = (segs?.children ?? []).filter((s) => s.name === 'LineStringSegment');
      if (!segs || lines.length === 0 || lines.length !== segs.children.length) {
        throw parseError('Only Curve with LineStringSegment segments is supported');
      }
      const coords: number[][] = [];
      for (const s of lines) {
        const ps = positions(s, swap, dim);
        coords.push(...(coords.length ? ps.slice(1) : ps));
      }
      checkPositions(coords, 2, 'Curve');
      return { type: 'LineString', coordinates: coords };
    }
    case 'Polygon':
    case 'PolygonPatch': {
      const ext = findChild(el, 'exterior', 'outerBoundaryIs');
      if (!ext) throw parseError('Polygon requires an exterior ring');
      const rings = [ring(ext, swap, dim)];
      for (const c of el.children) if (c.name === 'interior' || c.name === 'innerBoundaryIs') rings.push(ring(c, swap, dim));
      return { type: 'Polygon', coordinates: rings };
    }
    case 'Surface': {
      const patches = findChild(el, 'patches', 'polygonPatches');
      const pp = (patches?.children ?? []).filter((p) => p.name === 'PolygonPatch');
      if (pp.length === 1) return gmlGeometry(pp[0], swap, crsOf, crs);
      if (pp.length > 1) {
        return {
          type: 'MultiPolygon',
          coordinates: pp.map((p) => (gmlGeometry(p, swap, crsOf, crs) as { coordinates: number[][][] }).coordinates),
        };
      }
      throw parseError('Only Surface with PolygonPatch patches is supported');
    }
    case 'Envelope':
    case 'Box': {
      let corners: number[][];
      const lc = findChild(el, 'lowerCorner');
      const uc = findChild(el, 'upperCorner');
      if (lc && uc) corners = [orient(numbers(lc.text, 'lowerCorner'), swap), orient(numbers(uc.text, 'upperCorner'), swap)];
      else corners = positions(el, swap, dim);
      if (corners.length !== 2 || corners[0].length < 2 || corners[1].length < 2) {
        throw parseError(`${el.name} requires two corners`);
      }
      return envelopePolygon(corners[0][0], corners[0][1], corners[1][0], corners[1][1]);
    }
    case 'MultiPoint': {
      const pts = members(el, ['pointMember'], ['pointMembers'], ['Point']).map(sub);
      return { type: 'MultiPoint', coordinates: pts.map((p) => (p as { coordinates: number[] }).coordinates) };
    }
    case 'MultiCurve':
    case 'MultiLineString': {
      const ls = members(el, ['curveMember', 'lineStringMember'], ['curveMembers'], ['LineString', 'Curve']).map(sub);
      return { type: 'MultiLineString', coordinates: ls.map((l) => (l as { coordinates: number[][] }).coordinates) };
    }
    case 'MultiSurface':
    case 'MultiPolygon': {
      const polys = members(el, ['surfaceMember', 'polygonMember'], ['surfaceMembers'], ['Polygon', 'Surface']).map(sub);
      const coords: number[][][][] = [];
      for (const p of polys) {
        if (p.type === 'Polygon') coords.push(p.coordinates);
        else if (p.type === 'MultiPolygon') coords.push(...p.coordinates);
      }
      return { type: 'MultiPolygon', coordinates: coords };
    }
    case 'MultiGeometry': {
      const gs = members(
        el,
        ['geometryMember'],
        ['geometryMembers'],
        [
          'Point',
          'LineString',
          'Polygon',
          'MultiPoint',
          'MultiCurve',
          'MultiLineString',
          'MultiSurface',
          'MultiPolygon',
          'Curve',
          'Surface',
        ],
      ).map(sub);
      return { type: 'GeometryCollection', geometries: gs };
    }
    default:
      throw parseError(`Unsupported geometry '${el.qname}'`);
  }
}
