/**
 * The one filter AST shared by FES 2.0, OGC Filter 1.1 and CQL2 (text and JSON).
 *
 * Invariants every parser guarantees:
 *  - property names are bare (namespace prefix and XPath steps stripped);
 *  - LIKE patterns are in the internal form: `%` = any run, `_` = one character, `\` escapes the
 *    next character (i.e. PostgreSQL LIKE syntax with its default escape);
 *  - geometry literals are GeoJSON geometries whose coordinates are x/y (lon/lat for geographic
 *    CRSs), together with the EPSG code of their CRS;
 *  - spatial and temporal predicates are always "property OP literal" (parsers swap arguments and
 *    invert the operator when the literal comes first).
 */

export type LiteralType = 'string' | 'number' | 'boolean' | 'date' | 'timestamp';

export interface PropertyRef {
  kind: 'property';
  name: string;
}

export interface Literal {
  kind: 'literal';
  type: LiteralType;
  /** string for string/date/timestamp, number for number, boolean for boolean. */
  value: string | number | boolean;
}

export type ArithOp = '+' | '-' | '*' | '/';

export interface Arithmetic {
  kind: 'arith';
  op: ArithOp;
  left: Operand;
  right: Operand;
}

export type Operand = PropertyRef | Literal | Arithmetic;

export type ComparisonOp = '=' | '<>' | '<' | '<=' | '>' | '>=';

export interface ComparisonNode {
  kind: 'compare';
  op: ComparisonOp;
  left: Operand;
  right: Operand;
  /** false → case-insensitive comparison of strings. */
  matchCase: boolean;
}

export interface LikeNode {
  kind: 'like';
  operand: Operand;
  /** Internal pattern form: % any, _ one, \ escape. */
  pattern: string;
  matchCase: boolean;
}

export interface BetweenNode {
  kind: 'between';
  operand: Operand;
  lower: Operand;
  upper: Operand;
}

export interface InNode {
  kind: 'in';
  operand: Operand;
  values: Operand[];
}

/** IS NULL (also FES PropertyIsNil). */
export interface IsNullNode {
  kind: 'isNull';
  operand: Operand;
}

export interface AndNode {
  kind: 'and';
  args: FilterNode[];
}

export interface OrNode {
  kind: 'or';
  args: FilterNode[];
}

export interface NotNode {
  kind: 'not';
  arg: FilterNode;
}

export interface GeoJsonPoint {
  type: 'Point';
  coordinates: number[];
}
export interface GeoJsonLineString {
  type: 'LineString';
  coordinates: number[][];
}
export interface GeoJsonPolygon {
  type: 'Polygon';
  coordinates: number[][][];
}
export interface GeoJsonMultiPoint {
  type: 'MultiPoint';
  coordinates: number[][];
}
export interface GeoJsonMultiLineString {
  type: 'MultiLineString';
  coordinates: number[][][];
}
export interface GeoJsonMultiPolygon {
  type: 'MultiPolygon';
  coordinates: number[][][][];
}
export interface GeoJsonGeometryCollection {
  type: 'GeometryCollection';
  geometries: GeoJsonGeometry[];
}
export type GeoJsonGeometry =
  | GeoJsonPoint
  | GeoJsonLineString
  | GeoJsonPolygon
  | GeoJsonMultiPoint
  | GeoJsonMultiLineString
  | GeoJsonMultiPolygon
  | GeoJsonGeometryCollection;

/** A geometry literal: coordinates already in x/y order, in CRS `epsg`. */
export interface GeometryLiteral {
  geometry: GeoJsonGeometry;
  epsg: number;
}

export type SpatialOp =
  | 'intersects'
  | 'within'
  | 'contains'
  | 'disjoint'
  | 'equals'
  | 'touches'
  | 'crosses'
  | 'overlaps'
  | 'bbox'
  | 'dwithin'
  | 'beyond';

export interface Distance {
  value: number;
  /** Units as written (m, meters, km, urn:ogc:def:uom:EPSG::9001, deg, ...); normalised by the compiler. */
  units: string;
}

export interface SpatialNode {
  kind: 'spatial';
  op: SpatialOp;
  /** Geometry property name; null = the layer's default geometry. */
  property: string | null;
  geometry: GeometryLiteral;
  /** For dwithin / beyond. */
  distance?: Distance;
}

export type TemporalOp =
  | 'after'
  | 'before'
  | 'during'
  | 'tequals'
  | 'tintersects'
  | 'tdisjoint'
  | 'tcontains'
  | 'tstarts'
  | 'tstartedby'
  | 'tfinishes'
  | 'tfinishedby'
  | 'tmeets'
  | 'tmetby'
  | 'toverlaps'
  | 'toverlappedby';

export interface TemporalInstant {
  type: 'instant';
  /** ISO 8601 date (YYYY-MM-DD) or timestamp. */
  value: string;
  isDate: boolean;
}

export interface TemporalInterval {
  type: 'interval';
  /** null = open ('..'). */
  start: TemporalInstant | null;
  end: TemporalInstant | null;
}

export type TemporalValue = TemporalInstant | TemporalInterval;

export interface TemporalNode {
  kind: 'temporal';
  op: TemporalOp;
  property: string;
  value: TemporalValue;
}

export interface ResourceIdNode {
  kind: 'resourceId';
  ids: string[];
}

export interface IncludeNode {
  kind: 'include';
}
export interface ExcludeNode {
  kind: 'exclude';
}

export type FilterNode =
  | ComparisonNode
  | LikeNode
  | BetweenNode
  | InNode
  | IsNullNode
  | AndNode
  | OrNode
  | NotNode
  | SpatialNode
  | TemporalNode
  | ResourceIdNode
  | IncludeNode
  | ExcludeNode;

// ---------------------------------------------------------------------------------------------
// Guards and helpers

export function isPropertyRef(o: unknown): o is PropertyRef {
  return typeof o === 'object' && o !== null && (o as PropertyRef).kind === 'property';
}

export function isLiteral(o: unknown): o is Literal {
  return typeof o === 'object' && o !== null && (o as Literal).kind === 'literal';
}

export function isSpatialNode(n: FilterNode): n is SpatialNode {
  return n.kind === 'spatial';
}

export function isTemporalNode(n: FilterNode): n is TemporalNode {
  return n.kind === 'temporal';
}

export function isLogicalNode(n: FilterNode): n is AndNode | OrNode | NotNode {
  return n.kind === 'and' || n.kind === 'or' || n.kind === 'not';
}

/** Strip XPath steps, predicates, '@' and namespace prefix from a property reference. */
export function bareName(raw: string): string {
  let s = raw.trim();
  const slash = s.lastIndexOf('/');
  if (slash >= 0) s = s.slice(slash + 1);
  s = s.replace(/\[[^\]]*\]$/, '');
  if (s.startsWith('@')) s = s.slice(1);
  const colon = s.lastIndexOf(':');
  if (colon >= 0) s = s.slice(colon + 1);
  return s;
}

/** Axis-aligned envelope as a closed polygon (ring order fixed so every parser yields the same). */
export function envelopePolygon(minx: number, miny: number, maxx: number, maxy: number): GeoJsonPolygon {
  return {
    type: 'Polygon',
    coordinates: [
      [
        [minx, miny],
        [maxx, miny],
        [maxx, maxy],
        [minx, maxy],
        [minx, miny],
      ],
    ],
  };
}

/** Swap the first two ordinates of every position (lat/lon → lon/lat). Returns a new geometry. */
export function swapAxes(g: GeoJsonGeometry): GeoJsonGeometry {
  const sw = (p: number[]): number[] => (p.length >= 2 ? [p[1], p[0], ...p.slice(2)] : p.slice());
  switch (g.type) {
    case 'Point':
      return { type: 'Point', coordinates: sw(g.coordinates) };
    case 'LineString':
    case 'MultiPoint':
      return { type: g.type, coordinates: g.coordinates.map(sw) } as GeoJsonGeometry;
    case 'Polygon':
    case 'MultiLineString':
      return { type: g.type, coordinates: g.coordinates.map((r) => r.map(sw)) } as GeoJsonGeometry;
    case 'MultiPolygon':
      return { type: 'MultiPolygon', coordinates: g.coordinates.map((p) => p.map((r) => r.map(sw))) };
    case 'GeometryCollection':
      return { type: 'GeometryCollection', geometries: g.geometries.map(swapAxes) };
  }
}

/** Inverse of a temporal relation (A op B ⇔ B inv(op) A). */
export function inverseTemporalOp(op: TemporalOp): TemporalOp {
  const inv: Record<TemporalOp, TemporalOp> = {
    after: 'before',
    before: 'after',
    during: 'tcontains',
    tcontains: 'during',
    tequals: 'tequals',
    tintersects: 'tintersects',
    tdisjoint: 'tdisjoint',
    tstarts: 'tstartedby',
    tstartedby: 'tstarts',
    tfinishes: 'tfinishedby',
    tfinishedby: 'tfinishes',
    tmeets: 'tmetby',
    tmetby: 'tmeets',
    toverlaps: 'toverlappedby',
    toverlappedby: 'toverlaps',
  };
  return inv[op];
}

/** Inverse of a spatial relation when the literal comes first. */
export function inverseSpatialOp(op: SpatialOp): SpatialOp {
  if (op === 'within') return 'contains';
  if (op === 'contains') return 'within';
  return op;
}

/** Inverse of a comparison when the literal comes first (5 < x ⇔ x > 5). */
export function inverseComparisonOp(op: ComparisonOp): ComparisonOp {
  switch (op) {
    case '<':
      return '>';
    case '>':
      return '<';
    case '<=':
      return '>=';
    case '>=':
      return '<=';
    default:
      return op;
  }
}

/** All property names referenced by a filter (for queryables checks, column selection, ...). */
export function collectProperties(node: FilterNode, out = new Set<string>()): Set<string> {
  const op = (o: Operand): void => {
    if (o.kind === 'property') out.add(o.name);
    else if (o.kind === 'arith') {
      op(o.left);
      op(o.right);
    }
  };
  switch (node.kind) {
    case 'compare':
      op(node.left);
      op(node.right);
      break;
    case 'like':
    case 'isNull':
      op(node.operand);
      break;
    case 'between':
      op(node.operand);
      op(node.lower);
      op(node.upper);
      break;
    case 'in':
      op(node.operand);
      node.values.forEach(op);
      break;
    case 'and':
    case 'or':
      node.args.forEach((a) => collectProperties(a, out));
      break;
    case 'not':
      collectProperties(node.arg, out);
      break;
    case 'spatial':
      if (node.property !== null) out.add(node.property);
      break;
    case 'temporal':
      out.add(node.property);
      break;
    default:
      break;
  }
  return out;
}

/** Validate an ISO date or timestamp string; returns whether it is a plain date, or null if invalid. */
export function checkTemporalString(s: string): { isDate: boolean } | null {
  const m = s.match(/^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1) return null;
  const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d > dim) return null;
  if (m[4] !== undefined) {
    if (Number(m[4]) > 24 || Number(m[5]) > 59 || (m[6] !== undefined && Number(m[6]) > 60)) return null;
    return { isDate: false };
  }
  return { isDate: true };
}
