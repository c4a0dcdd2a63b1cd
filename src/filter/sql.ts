/**
 * Filter AST → parameterised PostgreSQL/PostGIS boolean expression.
 *
 * Identifiers come only from the target description (double-quoted); every value is a bind
 * parameter ($n), cast to the type of the column it is compared with. Values that cannot be
 * converted to the column type raise FilterError before any SQL is run.
 */
import type { FieldInfo, FieldType } from '../registry/types.js';
import type {
  FilterNode,
  GeoJsonGeometry,
  GeometryLiteral,
  Literal,
  LikeNode,
  Operand,
  SpatialNode,
  TemporalInstant,
  TemporalNode,
} from './ast.js';
import { checkTemporalString } from './ast.js';
import { isGeographicEpsg } from './crs-names.js';
import { FilterError, invalidValue } from './errors.js';

export interface FilterTarget {
  fields: FieldInfo[];
  /** Geometry column name in the table. */
  geometryColumn: string;
  /** SRID of the geometry column. */
  srid: number;
  primaryKey: string | null;
  /** Public name clients use for the geometry property (e.g. 'geom', 'the_geom'). */
  geometryName?: string;
  /** Public layer name, used to strip 'layer.' prefixes from resource ids. */
  layerName?: string;
}

/** Double-quote an identifier. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

type ColType = FieldType | 'unknown' | 'geometry';

interface ColInfo {
  type: ColType;
  pgType: string;
}

interface Compiled {
  sql: string;
  col: ColInfo | null;
}

const NUMBER: ColInfo = { type: 'number', pgType: 'double precision' };

/**
 * Literals compared with each other must be of one kind: PostgreSQL has no text = number
 * operator, and CQL2 calls such a comparison invalid. (Literals compared with a property take
 * the property's type instead, so only all-literal sides are checked here.)
 */
function sameLiteralFamily(ops: Operand[]): void {
  const lits = ops.filter((o): o is Literal => o.kind === 'literal');
  if (lits.length < 2 || lits.length !== ops.length) return;
  const fam = (l: Literal) => (l.type === 'date' || l.type === 'timestamp' ? 'temporal' : l.type);
  const kinds = new Set(lits.map(fam));
  if (kinds.size > 1) throw invalidValue(`Cannot compare literals of different types (${[...kinds].join(', ')})`);
}

const INT_RE = /^[+-]?\d+$/;
const NUM_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIME_RE = /^\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?$/;
const UUID_RE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

function family(t: ColType): string {
  switch (t) {
    case 'integer':
    case 'long':
    case 'number':
      return 'number';
    case 'date':
    case 'datetime':
      return 'temporal';
    default:
      return t;
  }
}

/** Compile `node` to a SQL boolean expression, appending bind values to `params`. */
export function compileFilter(node: FilterNode, target: FilterTarget, params: unknown[]): string {
  return new Compiler(target, params).node(node);
}

class Compiler {
  constructor(
    private readonly t: FilterTarget,
    private readonly params: unknown[],
  ) {}

  private bind(value: unknown, cast: string | null): string {
    this.params.push(value);
    return `$${this.params.length}${cast ? '::' + cast : ''}`;
  }

  node(n: FilterNode): string {
    switch (n.kind) {
      case 'include':
        return 'TRUE';
      case 'exclude':
        return 'FALSE';
      case 'and':
      case 'or':
        if (n.args.length === 0) return n.kind === 'and' ? 'TRUE' : 'FALSE';
        if (n.args.length === 1) return this.node(n.args[0]);
        return '(' + n.args.map((a) => this.node(a)).join(n.kind === 'and' ? ' AND ' : ' OR ') + ')';
      case 'not':
        return `(NOT (${this.node(n.arg)}))`;
      case 'compare': {
        sameLiteralFamily([n.left, n.right]);
        const lt = this.typeOf(n.left);
        const rt = this.typeOf(n.right);
        if (lt && rt && family(lt.type) !== family(rt.type) && lt.type !== 'unknown' && rt.type !== 'unknown') {
          throw invalidValue(`Cannot compare properties of types ${lt.type} and ${rt.type}`);
        }
        const l = this.operand(n.left, rt);
        const r = this.operand(n.right, lt ?? l.col);
        const isString = (l.col?.type ?? r.col?.type) === 'string';
        if (!n.matchCase && isString) return `lower(${l.sql}) ${n.op} lower(${r.sql})`;
        return `${l.sql} ${n.op} ${r.sql}`;
      }
      case 'like':
        return this.like(n);
      case 'between': {
        sameLiteralFamily([n.operand, n.lower, n.upper]);
        const ot = this.typeOf(n.operand);
        const o = this.operand(n.operand, this.typeOf(n.lower) ?? this.typeOf(n.upper));
        const hint = ot ?? o.col;
        const lo = this.operand(n.lower, hint);
        const hi = this.operand(n.upper, hint);
        return `(${o.sql} BETWEEN ${lo.sql} AND ${hi.sql})`;
      }
      case 'in': {
        sameLiteralFamily([n.operand, ...n.values]);
        const ot = this.typeOf(n.operand);
        const o = this.operand(n.operand, null);
        if (n.values.length === 0) return 'FALSE';
        const vals = n.values.map((v) => this.operand(v, ot ?? o.col).sql);
        return `${o.sql} IN (${vals.join(', ')})`;
      }
      case 'isNull': {
        const o = this.operand(n.operand, null, true);
        return `${o.sql} IS NULL`;
      }
      case 'spatial':
        return this.spatial(n);
      case 'temporal':
        return this.temporal(n);
      case 'resourceId':
        return this.resourceId(n.ids);
      default: {
        const never: never = n;
        throw invalidValue(`Unsupported filter node ${(never as { kind: string }).kind}`);
      }
    }
  }

  // ---- properties -------------------------------------------------------------------------

  private resolve(name: string): { column: string; col: ColInfo } {
    const t = this.t;
    const f = t.fields.find((x) => x.name === name);
    if (f) return { column: f.name, col: { type: f.type, pgType: f.pgType } };
    if (name === (t.geometryName ?? t.geometryColumn) || name === t.geometryColumn) {
      return { column: t.geometryColumn, col: { type: 'geometry', pgType: 'geometry' } };
    }
    if (t.primaryKey && name === t.primaryKey) return { column: t.primaryKey, col: { type: 'unknown', pgType: '' } };
    const lower = name.toLowerCase();
    const ci = t.fields.filter((x) => x.name.toLowerCase() === lower);
    if (ci.length === 1) return { column: ci[0].name, col: { type: ci[0].type, pgType: ci[0].pgType } };
    if (lower === (t.geometryName ?? t.geometryColumn).toLowerCase() || lower === t.geometryColumn.toLowerCase()) {
      return { column: t.geometryColumn, col: { type: 'geometry', pgType: 'geometry' } };
    }
    // 'geometry': what generic OGC API – Features Part 3 clients call the primary geometry
    // (S_INTERSECTS(geometry, …)) whatever the column's name; a field of that name wins
    if (lower === 'geometry') return { column: t.geometryColumn, col: { type: 'geometry', pgType: 'geometry' } };
    throw new FilterError(`Unknown property '${name}'`, 'InvalidParameterValue', 'filter');
  }

  private typeOf(o: Operand): ColInfo | null {
    if (o.kind === 'property') return this.resolve(o.name).col;
    if (o.kind === 'arith') return NUMBER;
    return null;
  }

  private operand(o: Operand, hint: ColInfo | null, allowAny = false): Compiled {
    switch (o.kind) {
      case 'property': {
        const r = this.resolve(o.name);
        if (!allowAny && (r.col.type === 'geometry' || r.col.type === 'binary')) {
          throw invalidValue(`Property '${o.name}' of type ${r.col.type} cannot be used in this comparison`);
        }
        return { sql: quoteIdent(r.column), col: r.col };
      }
      case 'literal':
        return { sql: this.literal(o, hint), col: hint };
      case 'arith': {
        const side = (x: Operand): string => {
          const c = this.operand(x, NUMBER);
          if (c.col && family(c.col.type) !== 'number' && c.col.type !== 'unknown') {
            throw invalidValue(`Arithmetic on non-numeric value (${c.col.type})`);
          }
          return c.sql;
        };
        return { sql: `(${side(o.left)} ${o.op} ${side(o.right)})`, col: NUMBER };
      }
    }
  }

  // ---- literals ---------------------------------------------------------------------------

  private literal(lit: Literal, hint: ColInfo | null): string {
    if (!hint) {
      switch (lit.type) {
        case 'string':
          return this.bind(String(lit.value), 'text');
        case 'number':
          return this.bind(lit.value, 'double precision');
        case 'boolean':
          return this.bind(lit.value, 'boolean');
        case 'date':
          return this.bind(lit.value, 'date');
        case 'timestamp':
          return this.bind(lit.value, 'timestamptz');
      }
    }
    const v = lit.value;
    const bad = (what: string): never => {
      throw invalidValue(`Value '${String(v)}' is not a valid ${what}`);
    };
    switch (hint.type) {
      case 'string':
        return this.bind(String(v), 'text');
      case 'unknown':
        return this.bind(String(v), null);
      case 'integer':
      case 'long': {
        if (typeof v === 'boolean' || lit.type === 'date' || lit.type === 'timestamp') return bad('integer');
        const s = typeof v === 'number' ? (Number.isInteger(v) ? BigInt(v).toString() : String(v)) : String(v).trim();
        if (INT_RE.test(s)) {
          const big = BigInt(s);
          if (hint.type === 'integer' && big >= -2147483648n && big <= 2147483647n) return this.bind(Number(big), 'integer');
          return this.bind(big.toString(), 'bigint');
        }
        if (NUM_RE.test(s)) return this.bind(Number(s), 'numeric');
        return bad('number');
      }
      case 'number': {
        if (typeof v === 'boolean' || lit.type === 'date' || lit.type === 'timestamp') return bad('number');
        const s = String(v).trim();
        if (typeof v !== 'number' && !NUM_RE.test(s)) return bad('number');
        const n = Number(s);
        if (!Number.isFinite(n)) return bad('number');
        const pg = hint.pgType.toLowerCase();
        const cast = pg === 'real' ? 'real' : pg.startsWith('numeric') || pg.startsWith('decimal') ? 'numeric' : 'double precision';
        return this.bind(n, cast);
      }
      case 'boolean': {
        if (typeof v === 'boolean') return this.bind(v, 'boolean');
        const s = String(v).trim().toLowerCase();
        if (['true', 't', '1', 'yes', 'y', 'on'].includes(s)) return this.bind(true, 'boolean');
        if (['false', 'f', '0', 'no', 'n', 'off'].includes(s)) return this.bind(false, 'boolean');
        return bad('boolean');
      }
      case 'date':
      case 'datetime': {
        if (typeof v !== 'string') return bad(hint.type === 'date' ? 'date' : 'date-time');
        const s = v.trim();
        const c = checkTemporalString(s);
        if (!c) return bad(hint.type === 'date' ? 'date' : 'date-time');
        return this.bind(s, this.temporalCast(hint, c.isDate));
      }
      case 'time': {
        const s = String(v).trim();
        if (!TIME_RE.test(s)) return bad('time');
        return this.bind(s, 'time');
      }
      case 'uuid': {
        const s = String(v).trim();
        if (!UUID_RE.test(s)) return bad('UUID');
        return this.bind(s.toLowerCase(), 'uuid');
      }
      default:
        throw invalidValue(`Properties of type ${hint.type} cannot be compared with a literal`);
    }
  }

  private temporalCast(col: ColInfo, literalIsDate: boolean): string {
    if (col.type === 'date') return literalIsDate ? 'date' : 'timestamptz';
    return /without time zone/i.test(col.pgType) || col.pgType.toLowerCase() === 'timestamp' ? 'timestamp' : 'timestamptz';
  }

  // ---- LIKE -------------------------------------------------------------------------------

  private like(n: LikeNode): string {
    const o = this.operand(n.operand, null);
    let p = n.pattern;
    // A trailing lone escape would be a PostgreSQL error: treat it as a literal backslash.
    let k = 0;
    while (k < p.length && p[p.length - 1 - k] === '\\') k++;
    if (k % 2 === 1) p += '\\';
    // LIKE compares text: anything else (a column of another type, a number, date or timestamp
    // literal) is compared through its text form, as PostgreSQL has no LIKE for those types.
    const isText = o.col ? o.col.type === 'string' : n.operand.kind === 'literal' && n.operand.type === 'string';
    const lhs = isText ? o.sql : `(${o.sql})::text`;
    if (o.col && (o.col.type === 'json' || o.col.type === 'array')) throw invalidValue(`LIKE is not supported on ${o.col.type} properties`);
    return `${lhs} ${n.matchCase ? 'LIKE' : 'ILIKE'} ${this.bind(p, 'text')}`;
  }

  // ---- spatial ----------------------------------------------------------------------------

  private geometryColumn(property: string | null): string {
    if (property === null) return quoteIdent(this.t.geometryColumn);
    const r = this.resolve(property);
    if (r.col.type !== 'geometry') throw invalidValue(`Property '${property}' is not a geometry property`);
    return quoteIdent(r.column);
  }

  private geomLiteral(g: GeometryLiteral): string {
    if (!Number.isInteger(g.epsg) || g.epsg <= 0) throw invalidValue(`Invalid CRS code ${g.epsg}`);
    // coordinates outside a geographic CRS's range are the request's mistake: refuse them here
    // rather than let PROJ fail inside PostgreSQL. An SRID PostGIS does not know is left to it
    // (any CRS of spatial_ref_sys may be used): src/errors/classify.ts makes its error a 400.
    if (isGeographicEpsg(g.epsg)) {
      const bad = firstOutOfRange(g.geometry);
      if (bad) throw invalidValue(`Coordinates (${bad.join(' ')}) of a filter geometry are outside ±180° longitude / ±90° latitude`);
    }
    const p = this.bind(JSON.stringify(g.geometry), 'text');
    const lit = `ST_SetSRID(ST_GeomFromGeoJSON(${p}), ${g.epsg})`;
    const srid = this.t.srid;
    if (Number.isInteger(srid) && srid > 0 && srid !== g.epsg) return `ST_Transform(${lit}, ${srid})`;
    return lit;
  }

  private spatial(n: SpatialNode): string {
    const g = this.geometryColumn(n.property);
    const lit = this.geomLiteral(n.geometry);
    switch (n.op) {
      case 'intersects':
        return `ST_Intersects(${g}, ${lit})`;
      case 'disjoint':
        return `(NOT ST_Intersects(${g}, ${lit}))`;
      case 'within':
        return `ST_Within(${g}, ${lit})`;
      case 'contains':
        return `ST_Contains(${g}, ${lit})`;
      case 'equals':
        return `ST_Equals(${g}, ${lit})`;
      case 'touches':
        return `ST_Touches(${g}, ${lit})`;
      case 'crosses':
        return `ST_Crosses(${g}, ${lit})`;
      case 'overlaps':
        return `ST_Overlaps(${g}, ${lit})`;
      case 'bbox':
        return `(${g} && ${lit} AND ST_Intersects(${g}, ${lit}))`;
      case 'dwithin':
      case 'beyond': {
        if (!n.distance) throw invalidValue(`${n.op} requires a distance`);
        const u = distanceUnits(n.distance.units);
        if (!Number.isFinite(n.distance.value) || n.distance.value < 0) throw invalidValue(`Invalid distance ${n.distance.value}`);
        const geographic = isGeographicEpsg(this.t.srid);
        let sql: string;
        if (u === 'deg') {
          if (!geographic) throw invalidValue('Distances in degrees are only supported on geographic layers');
          sql = `ST_DWithin(${g}, ${lit}, ${this.bind(n.distance.value, 'double precision')})`;
        } else {
          const metres = n.distance.value * u;
          const d = this.bind(metres, 'double precision');
          sql = geographic ? `ST_DWithin(${g}::geography, (${lit})::geography, ${d})` : `ST_DWithin(${g}, ${lit}, ${d})`;
        }
        return n.op === 'beyond' ? `(NOT ${sql})` : sql;
      }
    }
  }

  // ---- temporal ---------------------------------------------------------------------------

  private temporal(n: TemporalNode): string {
    const r = this.resolve(n.property);
    if (r.col.type !== 'date' && r.col.type !== 'datetime') {
      throw invalidValue(`Property '${n.property}' is not a date or timestamp property`);
    }
    const c = quoteIdent(r.column);
    const inst = (i: TemporalInstant): string => this.bind(i.value, this.temporalCast(r.col, i.isDate));
    const v = n.value;
    const unsupported = (): never => {
      throw invalidValue(
        `Temporal operator ${n.op} is not applicable to an instant property and ${v.type === 'instant' ? 'an instant' : 'an interval'}`,
      );
    };
    if (v.type === 'instant') {
      switch (n.op) {
        case 'after':
          return `${c} > ${inst(v)}`;
        case 'before':
          return `${c} < ${inst(v)}`;
        case 'tequals':
        case 'tintersects':
          return `${c} = ${inst(v)}`;
        case 'tdisjoint':
          return `${c} <> ${inst(v)}`;
        default:
          return unsupported();
      }
    }
    const s = v.start;
    const e = v.end;
    switch (n.op) {
      case 'after':
        return e ? `${c} > ${inst(e)}` : 'FALSE';
      case 'before':
        return s ? `${c} < ${inst(s)}` : 'FALSE';
      case 'during': {
        const parts = [s ? `${c} > ${inst(s)}` : `${c} IS NOT NULL`, ...(e ? [`${c} < ${inst(e)}`] : [])];
        return `(${parts.join(' AND ')})`;
      }
      case 'tintersects': {
        const parts = [s ? `${c} >= ${inst(s)}` : `${c} IS NOT NULL`, ...(e ? [`${c} <= ${inst(e)}`] : [])];
        return `(${parts.join(' AND ')})`;
      }
      case 'tdisjoint': {
        const parts = [...(s ? [`${c} < ${inst(s)}`] : []), ...(e ? [`${c} > ${inst(e)}`] : [])];
        return parts.length ? `(${parts.join(' OR ')})` : 'FALSE';
      }
      case 'tstarts':
        return s ? `${c} = ${inst(s)}` : 'FALSE';
      case 'tfinishes':
        return e ? `${c} = ${inst(e)}` : 'FALSE';
      case 'tequals':
        return 'FALSE';
      default:
        return unsupported();
    }
  }

  // ---- resource ids -----------------------------------------------------------------------

  private resourceId(ids: string[]): string {
    const pk = this.t.primaryKey;
    if (!pk) throw invalidValue('This layer has no primary key: resource identifiers are not supported', 'resourceId');
    const f = this.t.fields.find((x) => x.name === pk);
    const col: ColInfo = f ? { type: f.type, pgType: f.pgType } : { type: 'unknown', pgType: '' };
    const layer = this.t.layerName;
    const layerLocal = layer && layer.includes(':') ? layer.slice(layer.lastIndexOf(':') + 1) : undefined;
    const values: string[] = [];
    const seen = new Set<string>();
    for (const raw of ids) {
      let id = raw;
      if (layer && id.startsWith(layer + '.')) id = id.slice(layer.length + 1);
      else if (layerLocal && id.startsWith(layerLocal + '.')) id = id.slice(layerLocal.length + 1);
      else if (!layer && id.includes('.') && !acceptsId(col, id)) id = id.slice(id.lastIndexOf('.') + 1);
      if (!acceptsId(col, id) || seen.has(id)) continue; // cannot be an id of this layer
      seen.add(id);
      values.push(this.literal({ kind: 'literal', type: 'string', value: id }, col));
    }
    if (values.length === 0) return 'FALSE';
    return `${quoteIdent(pk)} IN (${values.join(', ')})`;
  }
}

function acceptsId(col: ColInfo, id: string): boolean {
  switch (col.type) {
    case 'integer':
    case 'long':
      return INT_RE.test(id.trim());
    case 'number':
      return NUM_RE.test(id.trim());
    case 'uuid':
      return UUID_RE.test(id.trim());
    case 'date':
    case 'datetime':
      return checkTemporalString(id.trim()) !== null;
    default:
      return id !== '';
  }
}

/** Conversion factor to metres, or 'deg' for angular units. */
export function distanceUnits(units: string): number | 'deg' {
  const u = units.trim().toLowerCase();
  const tail = u.replace(/^.*[#/:]/, '');
  const byName: Record<string, number | 'deg'> = {
    m: 1,
    meter: 1,
    meters: 1,
    metre: 1,
    metres: 1,
    '9001': 1,
    km: 1000,
    kilometer: 1000,
    kilometers: 1000,
    kilometre: 1000,
    kilometres: 1000,
    '9036': 1000,
    ft: 0.3048,
    foot: 0.3048,
    feet: 0.3048,
    '9002': 0.3048,
    mi: 1609.344,
    mile: 1609.344,
    miles: 1609.344,
    statute_miles: 1609.344,
    '9093': 1609.344,
    nmi: 1852,
    nautical_miles: 1852,
    '9030': 1852,
    deg: 'deg',
    degree: 'deg',
    degrees: 'deg',
    decimal_degrees: 'deg',
    '9102': 'deg',
  };
  const f = byName[u] ?? byName[tail];
  if (f === undefined) throw invalidValue(`Unsupported distance units '${units}'`);
  return f;
}

/** The first position of a geometry (x/y, lon/lat) outside ±180 / ±90, if any. */
function firstOutOfRange(g: GeoJsonGeometry): number[] | undefined {
  const walk = (c: unknown): number[] | undefined => {
    if (!Array.isArray(c)) return undefined;
    if (typeof c[0] === 'number') {
      const [x, y] = c as number[];
      return Math.abs(x) > 180 || Math.abs(y) > 90 ? (c as number[]) : undefined;
    }
    for (const x of c) {
      const r = walk(x);
      if (r) return r;
    }
    return undefined;
  };
  if (g.type === 'GeometryCollection') {
    for (const m of g.geometries) {
      const r = firstOutOfRange(m);
      if (r) return r;
    }
    return undefined;
  }
  return walk(g.coordinates);
}
