/**
 * CQL2 (OGC 21-065) text and JSON encodings → filter AST.
 *
 * Covered: Basic CQL2, Advanced Comparison Operators (LIKE, BETWEEN, IN), CASEI (mapped to
 * case-insensitive comparison), Basic/Spatial Functions (S_INTERSECTS … S_OVERLAPS) with WKT / GeoJSON
 * / BBOX literals, Temporal Functions (T_AFTER, T_BEFORE, T_DURING, T_EQUALS, T_INTERSECTS,
 * T_DISJOINT, T_STARTS, T_FINISHES, …) on instant properties, arithmetic (+ - * /), and the
 * GeoServer-style extension DWITHIN/BEYOND(geom, geometry, distance, units) (also S_DWITHIN).
 * Not covered: array functions (A_*), ACCENTI, custom functions, INTERVAL with property bounds.
 */
import {
  bareName,
  checkTemporalString,
  envelopePolygon,
  inverseComparisonOp,
  inverseSpatialOp,
  inverseTemporalOp,
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

export interface Cql2Context {
  /** filter-crs: CRS of geometry literals (default CRS84). Coordinates follow its axis order. */
  filterCrs?: string | CrsInfo;
}

const SPATIAL_FUNCS: Record<string, SpatialOp> = {
  s_intersects: 'intersects',
  s_within: 'within',
  s_contains: 'contains',
  s_disjoint: 'disjoint',
  s_equals: 'equals',
  s_touches: 'touches',
  s_crosses: 'crosses',
  s_overlaps: 'overlaps',
  s_dwithin: 'dwithin',
  s_beyond: 'beyond',
  dwithin: 'dwithin',
  beyond: 'beyond',
};

const TEMPORAL_FUNCS: Record<string, TemporalOp> = {
  t_after: 'after',
  t_before: 'before',
  t_during: 'during',
  t_equals: 'tequals',
  t_intersects: 'tintersects',
  t_disjoint: 'tdisjoint',
  t_contains: 'tcontains',
  t_starts: 'tstarts',
  t_startedby: 'tstartedby',
  t_finishes: 'tfinishes',
  t_finishedby: 'tfinishedby',
  t_meets: 'tmeets',
  t_metby: 'tmetby',
  t_overlaps: 'toverlaps',
  t_overlappedby: 'toverlappedby',
};

const COMPARISON_OPS = new Set(['=', '<>', '<', '<=', '>', '>=']);

function temporalInstant(s: string, kind: 'date' | 'timestamp' | 'any', where: string, pos?: number): TemporalInstant {
  const c = checkTemporalString(s);
  if (!c) throw parseError(`Invalid ${kind === 'any' ? 'date/time' : kind} '${s}'${where}`, 'filter', pos);
  if (kind === 'date' && !c.isDate) throw parseError(`Invalid date '${s}' (expected YYYY-MM-DD)${where}`, 'filter', pos);
  if (kind === 'timestamp' && c.isDate) throw parseError(`Invalid timestamp '${s}' (expected a date-time)${where}`, 'filter', pos);
  return { type: 'instant', value: s, isDate: c.isDate };
}

// =============================================================================================
// Text encoding

type TokType = 'ident' | 'qident' | 'string' | 'number' | 'op' | 'eof';
interface Token {
  type: TokType;
  value: string;
  pos: number;
}

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) throw parseError(`CQL2 syntax error at position ${start}: unterminated string literal`, 'filter', start);
        if (s[i] === "'") {
          if (s[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += s[i++];
      }
      out.push({ type: 'string', value: v, pos: start });
      continue;
    }
    if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) throw parseError(`CQL2 syntax error at position ${start}: unterminated quoted identifier`, 'filter', start);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += s[i++];
      }
      out.push({ type: 'qident', value: v, pos: start });
      continue;
    }
    const num = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(s.slice(i, i + 64));
    if (num) {
      i += num[0].length;
      out.push({ type: 'number', value: num[0], pos: start });
      continue;
    }
    if (/[A-Za-z_\u00C0-\uFFFF]/.test(c)) {
      while (i < n && /[A-Za-z0-9_.:\u00C0-\uFFFF]/.test(s[i])) i++;
      out.push({ type: 'ident', value: s.slice(start, i), pos: start });
      continue;
    }
    const two = s.slice(i, i + 2);
    if (two === '<>' || two === '<=' || two === '>=' || two === '!=') {
      out.push({ type: 'op', value: two === '!=' ? '<>' : two, pos: start });
      i += 2;
      continue;
    }
    if ('=<>(),+-*/%[]'.includes(c)) {
      out.push({ type: 'op', value: c, pos: start });
      i++;
      continue;
    }
    throw parseError(`CQL2 syntax error at position ${start}: unexpected character '${c}'`, 'filter', start);
  }
  out.push({ type: 'eof', value: '', pos: n });
  return out;
}

/** Internal: an operand wrapped in CASEI(). */
interface CaseI {
  kind: 'casei';
  arg: Operand;
}
type PExpr = Operand | CaseI;

const WKT_TYPES = new Set([
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'bbox',
  'envelope',
]);

const RESERVED = new Set(['and', 'or', 'not', 'like', 'between', 'in', 'is', 'null']);

class TextParser {
  private i = 0;
  private readonly crs: CrsInfo;

  constructor(
    private readonly toks: Token[],
    ctx: Cql2Context | undefined,
  ) {
    this.crs = literalCrs(ctx?.filterCrs, 'filter-crs');
  }

  private get t(): Token {
    return this.toks[this.i];
  }

  private peek(k = 1): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }

  private fail(msg: string, tok: Token = this.t): never {
    const found = tok.type === 'eof' ? 'end of input' : `'${tok.value}'`;
    throw parseError(`CQL2 syntax error at position ${tok.pos}: ${msg}, found ${found}`, 'filter', tok.pos);
  }

  private isKw(kw: string, tok: Token = this.t): boolean {
    return tok.type === 'ident' && tok.value.toLowerCase() === kw;
  }

  private isOp(op: string, tok: Token = this.t): boolean {
    return tok.type === 'op' && tok.value === op;
  }

  private expectOp(op: string): void {
    if (!this.isOp(op)) this.fail(`expected '${op}'`);
    this.i++;
  }

  private expectKw(kw: string): void {
    if (!this.isKw(kw)) this.fail(`expected ${kw.toUpperCase()}`);
    this.i++;
  }

  private atEnd(): boolean {
    return this.t.type === 'eof';
  }

  parse(): FilterNode {
    if (this.t.type === 'eof') this.fail('empty filter');
    const node = this.orExpr();
    if (!this.atEnd()) this.fail('expected AND, OR or end of input');
    return node;
  }

  private orExpr(): FilterNode {
    const args = [this.andExpr()];
    while (this.isKw('or')) {
      this.i++;
      args.push(this.andExpr());
    }
    return args.length === 1 ? args[0] : { kind: 'or', args };
  }

  private andExpr(): FilterNode {
    const args = [this.factor()];
    while (this.isKw('and')) {
      this.i++;
      args.push(this.factor());
    }
    return args.length === 1 ? args[0] : { kind: 'and', args };
  }

  private factor(): FilterNode {
    if (this.isKw('not')) {
      this.i++;
      return { kind: 'not', arg: this.factor() };
    }
    return this.primary();
  }

  private primary(): FilterNode {
    const t = this.t;
    if (this.isOp('(')) {
      // Either a parenthesised boolean expression or a parenthesised scalar starting a predicate.
      const save = this.i;
      let firstErr: FilterError | null = null;
      try {
        this.i++;
        const inner = this.orExpr();
        this.expectOp(')');
        if (!this.startsPredicateTail()) return inner;
      } catch (e) {
        if (!(e instanceof FilterError)) throw e;
        firstErr = e;
      }
      this.i = save;
      try {
        return this.predicate();
      } catch (e) {
        if (firstErr && e instanceof FilterError && (firstErr.position ?? -1) > (e.position ?? -1)) throw firstErr;
        throw e;
      }
    }
    if (t.type === 'ident' && (this.isKw('true') || this.isKw('false')) && !this.startsPredicateTail(this.peek())) {
      this.i++;
      return { kind: this.isKw('true', t) ? 'include' : 'exclude' };
    }
    if (t.type === 'ident' && this.isOp('(', this.peek())) {
      const fn = t.value.toLowerCase();
      if (fn in SPATIAL_FUNCS) return this.spatialFn(SPATIAL_FUNCS[fn]);
      if (fn in TEMPORAL_FUNCS) return this.temporalFn(TEMPORAL_FUNCS[fn]);
      if (/^a_/.test(fn))
        throw new FilterError(`Array function ${t.value.toUpperCase()} is not supported`, 'InvalidParameterValue', 'filter');
    }
    return this.predicate();
  }

  private startsPredicateTail(tok: Token = this.t): boolean {
    if (tok.type === 'op') return COMPARISON_OPS.has(tok.value) || '+-*/%'.includes(tok.value);
    if (tok.type === 'ident') {
      const v = tok.value.toLowerCase();
      return v === 'like' || v === 'between' || v === 'in' || v === 'is' || v === 'div' || (v === 'not' && this.isPredicateNot());
    }
    return false;
  }

  private isPredicateNot(): boolean {
    const nxt = this.peek();
    return this.isKw('like', nxt) || this.isKw('between', nxt) || this.isKw('in', nxt);
  }

  private predicate(): FilterNode {
    const leftTok = this.t;
    const left = this.scalar();
    const t = this.t;
    if (t.type === 'op' && COMPARISON_OPS.has(t.value)) {
      this.i++;
      const right = this.scalar();
      const ci = left.kind === 'casei' || right.kind === 'casei';
      return {
        kind: 'compare',
        op: t.value as ComparisonOp,
        left: this.plain(left, leftTok),
        right: this.plain(right, t),
        matchCase: !ci,
      };
    }
    let negate = false;
    if (this.isKw('not') && this.isPredicateNot()) {
      negate = true;
      this.i++;
    }
    const wrap = (n: FilterNode): FilterNode => (negate ? { kind: 'not', arg: n } : n);
    if (this.isKw('like')) {
      this.i++;
      const patTok = this.t;
      const pat = this.scalar();
      const p = pat.kind === 'casei' ? pat.arg : pat;
      if (p.kind !== 'literal' || p.type !== 'string') this.fail('LIKE pattern must be a string literal', patTok);
      return wrap({
        kind: 'like',
        operand: this.plain(left, leftTok),
        pattern: String(p.value),
        matchCase: !(left.kind === 'casei' || pat.kind === 'casei'),
      });
    }
    if (this.isKw('between')) {
      this.i++;
      const lo = this.scalar();
      this.expectKw('and');
      const hi = this.scalar();
      return wrap({ kind: 'between', operand: this.plain(left, leftTok), lower: this.plain(lo, t), upper: this.plain(hi, t) });
    }
    if (this.isKw('in')) {
      this.i++;
      this.expectOp('(');
      const values: Operand[] = [];
      if (!this.isOp(')')) {
        for (;;) {
          const vt = this.t;
          values.push(this.plain(this.scalar(), vt));
          if (this.isOp(',')) {
            this.i++;
            continue;
          }
          break;
        }
      }
      this.expectOp(')');
      if (values.length === 0) this.fail('IN list must not be empty');
      return wrap({ kind: 'in', operand: this.plain(left, leftTok), values });
    }
    if (negate) this.fail('expected LIKE, BETWEEN or IN after NOT');
    if (this.isKw('is')) {
      this.i++;
      let not = false;
      if (this.isKw('not')) {
        not = true;
        this.i++;
      }
      this.expectKw('null');
      const n: FilterNode = { kind: 'isNull', operand: this.plain(left, leftTok) };
      return not ? { kind: 'not', arg: n } : n;
    }
    this.fail('expected a comparison operator, LIKE, BETWEEN, IN or IS NULL');
  }

  private plain(e: PExpr, tok: Token): Operand {
    if (e.kind === 'casei') return e.arg;
    void tok;
    return e;
  }

  private scalar(): PExpr {
    let left = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.t.value as '+' | '-';
      const tok = this.t;
      this.i++;
      const right = this.term();
      left = { kind: 'arith', op, left: this.noCasei(left, tok), right: this.noCasei(right, tok) };
    }
    return left;
  }

  private noCasei(e: PExpr, tok: Token): Operand {
    if (e.kind === 'casei') this.fail('CASEI() cannot be used in arithmetic', tok);
    return e;
  }

  private term(): PExpr {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isKw('div')) {
      const tok = this.t;
      if (this.isOp('%')) this.fail('modulo is not supported');
      const op = tok.value === '*' ? '*' : '/';
      this.i++;
      const right = this.unary();
      left = { kind: 'arith', op, left: this.noCasei(left, tok), right: this.noCasei(right, tok) };
    }
    return left;
  }

  private unary(): PExpr {
    if (this.isOp('-') || this.isOp('+')) {
      const tok = this.t;
      const neg = tok.value === '-';
      this.i++;
      const e = this.unary();
      if (e.kind === 'literal' && e.type === 'number') return neg ? { ...e, value: -(e.value as number) } : e;
      const inner = this.noCasei(e, tok);
      return neg ? { kind: 'arith', op: '*', left: { kind: 'literal', type: 'number', value: -1 }, right: inner } : inner;
    }
    return this.atom();
  }

  private atom(): PExpr {
    const t = this.t;
    switch (t.type) {
      case 'number':
        this.i++;
        return { kind: 'literal', type: 'number', value: Number(t.value) };
      case 'string':
        this.i++;
        return { kind: 'literal', type: 'string', value: t.value };
      case 'qident':
        this.i++;
        if (!t.value) this.fail('empty property name', t);
        return { kind: 'property', name: bareName(t.value) };
      case 'op':
        if (t.value === '(') {
          this.i++;
          const e = this.scalar();
          this.expectOp(')');
          return e;
        }
        this.fail('expected an expression');
      // eslint-disable-next-line no-fallthrough
      case 'eof':
        this.fail('expected an expression');
      // eslint-disable-next-line no-fallthrough
      case 'ident': {
        const v = t.value.toLowerCase();
        if (v === 'true' || v === 'false') {
          this.i++;
          return { kind: 'literal', type: 'boolean', value: v === 'true' };
        }
        if (this.isOp('(', this.peek())) {
          if (v === 'date' || v === 'timestamp') {
            const inst = this.typedTemporal();
            return { kind: 'literal', type: inst.isDate ? 'date' : 'timestamp', value: inst.value };
          }
          if (v === 'casei') {
            this.i += 2;
            const e = this.scalar();
            this.expectOp(')');
            return { kind: 'casei', arg: e.kind === 'casei' ? e.arg : e };
          }
          if (v in SPATIAL_FUNCS || v in TEMPORAL_FUNCS) this.fail(`${t.value.toUpperCase()} cannot be used as a value`, t);
          throw new FilterError(
            `CQL2 error at position ${t.pos}: function ${t.value}() is not supported`,
            'InvalidParameterValue',
            'filter',
          );
        }
        if (RESERVED.has(v)) this.fail('expected an expression');
        this.i++;
        const name = bareName(t.value);
        if (!name) this.fail('invalid property name', t);
        return { kind: 'property', name };
      }
    }
  }

  /** DATE('...') or TIMESTAMP('...') at the current token. */
  private typedTemporal(): TemporalInstant {
    const fnTok = this.t;
    const kind = fnTok.value.toLowerCase() as 'date' | 'timestamp';
    this.i++;
    this.expectOp('(');
    const s = this.t;
    if (s.type !== 'string') this.fail(`${kind.toUpperCase()}() requires a string literal`);
    this.i++;
    this.expectOp(')');
    return temporalInstant(s.value, kind, ` at position ${s.pos}`, s.pos);
  }

  private propertyName(): { name: string; tok: Token } | null {
    const t = this.t;
    if (
      t.type === 'qident' ||
      (t.type === 'ident' && !this.isOp('(', this.peek()) && !RESERVED.has(t.value.toLowerCase()) && !WKT_TYPES.has(t.value.toLowerCase()))
    ) {
      this.i++;
      const name = bareName(t.value);
      if (!name) this.fail('invalid property name', t);
      return { name, tok: t };
    }
    return null;
  }

  /**
   * The two arguments of a spatial or temporal function: one property and one literal, in either
   * order (swapped = the literal came first, so the operator must be inverted).
   */
  private propertyAndLiteral<T>(fnTok: Token, what: string, literal: () => T): { prop: string; value: T; swapped: boolean } {
    let prop: string | null = null;
    let value: T | null = null;
    let swapped = false;
    for (let k = 0; k < 2; k++) {
      if (k === 1) this.expectOp(',');
      const p = this.propertyName();
      if (p) {
        if (prop !== null) this.fail(`${fnTok.value.toUpperCase()} between two properties is not supported`, p.tok);
        prop = p.name;
      } else {
        if (value !== null) this.fail('expected a property name');
        value = literal();
        if (k === 0) swapped = true;
      }
    }
    if (prop === null || value === null) this.fail(`${fnTok.value.toUpperCase()} requires a property and ${what}`, fnTok);
    return { prop: prop as string, value: value as T, swapped };
  }

  private spatialFn(op: SpatialOp): FilterNode {
    const fnTok = this.t;
    this.i += 2;
    const { prop, value: geom, swapped } = this.propertyAndLiteral(fnTok, 'a geometry', () => this.geometry());
    const node: SpatialNode = { kind: 'spatial', op: swapped ? inverseSpatialOp(op) : op, property: prop, geometry: geom };
    if (op === 'dwithin' || op === 'beyond') {
      this.expectOp(',');
      const dt = this.t;
      const d = this.unary();
      if (d.kind !== 'literal' || d.type !== 'number') this.fail('expected a distance', dt);
      let units = 'm';
      if (this.isOp(',')) {
        this.i++;
        const u = this.t;
        if (u.type !== 'ident' && u.type !== 'string') this.fail('expected distance units');
        units = u.value;
        this.i++;
      }
      node.distance = { value: d.value as number, units };
    }
    this.expectOp(')');
    return node;
  }

  private temporalFn(op: TemporalOp): FilterNode {
    const fnTok = this.t;
    this.i += 2;
    const { prop, value, swapped } = this.propertyAndLiteral(fnTok, 'a temporal literal', () => this.temporalLiteral());
    this.expectOp(')');
    return { kind: 'temporal', op: swapped ? inverseTemporalOp(op) : op, property: prop, value };
  }

  private temporalLiteral(): TemporalValue {
    const t = this.t;
    if ((this.isKw('date') || this.isKw('timestamp')) && this.isOp('(', this.peek())) return this.typedTemporal();
    if (this.isKw('interval') && this.isOp('(', this.peek())) {
      this.i += 2;
      const start = this.intervalBound();
      this.expectOp(',');
      const end = this.intervalBound();
      this.expectOp(')');
      return { type: 'interval', start, end };
    }
    if (t.type === 'string') {
      this.i++;
      return temporalInstant(t.value, 'any', ` at position ${t.pos}`, t.pos);
    }
    this.fail('expected DATE(), TIMESTAMP() or INTERVAL()');
  }

  private intervalBound(): TemporalInstant | null {
    const t = this.t;
    if ((this.isKw('date') || this.isKw('timestamp')) && this.isOp('(', this.peek())) return this.typedTemporal();
    if (t.type === 'string') {
      this.i++;
      if (t.value === '..' || t.value === '') return null;
      return temporalInstant(t.value, 'any', ` at position ${t.pos}`, t.pos);
    }
    if (t.type === 'ident' || t.type === 'qident') {
      throw new FilterError(`INTERVAL with property bounds is not supported (position ${t.pos})`, 'InvalidParameterValue', 'filter');
    }
    this.fail("expected DATE(), TIMESTAMP(), a string or '..'");
  }

  // ---- WKT ----------------------------------------------------------------------------------

  private geometry(): GeometryLiteral {
    const swap = this.crs.latLonOrder;
    const g = this.wkt(swap);
    return { geometry: g, epsg: this.crs.epsg };
  }

  private num(): number {
    let sign = 1;
    if (this.isOp('-') || this.isOp('+')) {
      if (this.t.value === '-') sign = -1;
      this.i++;
    }
    const t = this.t;
    if (t.type !== 'number') this.fail('expected a number');
    this.i++;
    return sign * Number(t.value);
  }

  private position(swap: boolean): number[] {
    const p = [this.num(), this.num()];
    while (this.t.type === 'number' || this.isOp('-') || this.isOp('+')) p.push(this.num());
    return swap ? [p[1], p[0], ...p.slice(2)] : p;
  }

  private positionList(swap: boolean, min: number, what: string): number[][] {
    const tok = this.t;
    this.expectOp('(');
    const out = [this.position(swap)];
    while (this.isOp(',')) {
      this.i++;
      out.push(this.position(swap));
    }
    this.expectOp(')');
    if (out.length < min) this.fail(`${what} requires at least ${min} positions`, tok);
    return out;
  }

  private ring(swap: boolean): number[][] {
    const tok = this.t;
    const r = this.positionList(swap, 4, 'polygon ring');
    const a = r[0];
    const b = r[r.length - 1];
    if (a[0] !== b[0] || a[1] !== b[1]) this.fail('polygon ring is not closed', tok);
    return r;
  }

  private list<T>(item: () => T): T[] {
    this.expectOp('(');
    const out = [item()];
    while (this.isOp(',')) {
      this.i++;
      out.push(item());
    }
    this.expectOp(')');
    return out;
  }

  private wkt(swap: boolean): GeoJsonGeometry {
    const t = this.t;
    if (t.type !== 'ident') this.fail('expected a geometry literal');
    const type = t.value.toUpperCase();
    this.i++;
    // Optional Z / M / ZM dimension tag
    if (this.t.type === 'ident' && /^(Z|M|ZM)$/i.test(this.t.value)) this.i++;
    if (this.isKw('empty')) this.fail('EMPTY geometries are not supported');
    switch (type) {
      case 'POINT': {
        this.expectOp('(');
        const p = this.position(swap);
        this.expectOp(')');
        return { type: 'Point', coordinates: p };
      }
      case 'LINESTRING':
        return { type: 'LineString', coordinates: this.positionList(swap, 2, 'LINESTRING') };
      case 'POLYGON':
        return { type: 'Polygon', coordinates: this.list(() => this.ring(swap)) };
      case 'MULTIPOINT':
        return {
          type: 'MultiPoint',
          coordinates: this.list(() => {
            if (this.isOp('(')) {
              this.i++;
              const p = this.position(swap);
              this.expectOp(')');
              return p;
            }
            return this.position(swap);
          }),
        };
      case 'MULTILINESTRING':
        return { type: 'MultiLineString', coordinates: this.list(() => this.positionList(swap, 2, 'LINESTRING')) };
      case 'MULTIPOLYGON':
        return { type: 'MultiPolygon', coordinates: this.list(() => this.list(() => this.ring(swap))) };
      case 'GEOMETRYCOLLECTION':
        return { type: 'GeometryCollection', geometries: this.list(() => this.wkt(swap)) };
      case 'BBOX':
      case 'ENVELOPE': {
        const nums = this.list(() => this.num());
        return bboxPolygon(nums, swap, (m) => this.fail(m, t));
      }
      default:
        this.fail('expected a geometry literal (POINT, LINESTRING, POLYGON, MULTI*, GEOMETRYCOLLECTION, BBOX)', t);
    }
  }
}

function bboxPolygon(nums: number[], swap: boolean, fail: (m: string) => never): GeoJsonGeometry {
  let a: number[];
  let b: number[];
  if (nums.length === 4) {
    a = [nums[0], nums[1]];
    b = [nums[2], nums[3]];
  } else if (nums.length === 6) {
    a = [nums[0], nums[1]];
    b = [nums[3], nums[4]];
  } else return fail('BBOX requires 4 or 6 numbers');
  if (nums.some((x) => typeof x !== 'number' || !Number.isFinite(x))) fail('BBOX values must be numbers');
  if (swap) {
    a = [a[1], a[0]];
    b = [b[1], b[0]];
  }
  return envelopePolygon(a[0], a[1], b[0], b[1]);
}

/** Parse a CQL2 text expression. Throws FilterError (with position) on any error. */
export function parseCql2Text(s: string, ctx?: Cql2Context): FilterNode {
  if (typeof s !== 'string') throw parseError('CQL2 text filter must be a string');
  return new TextParser(tokenize(s), ctx).parse();
}

// =============================================================================================
// JSON encoding

type Json = unknown;

function isObj(v: Json): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: Json): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

class JsonParser {
  private readonly crs: CrsInfo;

  constructor(ctx: Cql2Context | undefined) {
    this.crs = literalCrs(ctx?.filterCrs, 'filter-crs');
  }

  private fail(msg: string, path: string): never {
    throw parseError(`CQL2 JSON error at ${path}: ${msg}`);
  }

  node(v: Json, path: string): FilterNode {
    if (typeof v === 'boolean') return { kind: v ? 'include' : 'exclude' };
    if (!isObj(v)) this.fail(`expected a predicate object, found ${describe(v)}`, path);
    if (typeof v.op !== 'string') this.fail(`missing "op" in ${describe(v)}`, path);
    const op = v.op.toLowerCase();
    const args = v.args;
    if (!Array.isArray(args)) this.fail(`"args" must be an array for op "${v.op}"`, path);
    const arity = (n: number): void => {
      if (args.length !== n) this.fail(`op "${v.op}" requires ${n} arguments, found ${args.length}`, path);
    };
    const ap = (k: number): string => `${path}.args[${k}]`;
    if (op === 'and' || op === 'or') {
      if (args.length < 1) this.fail(`op "${op}" requires arguments`, path);
      const nodes = args.map((a, k) => this.node(a, ap(k)));
      return nodes.length === 1 ? nodes[0] : { kind: op, args: nodes };
    }
    if (op === 'not') {
      arity(1);
      return { kind: 'not', arg: this.node(args[0], ap(0)) };
    }
    if (COMPARISON_OPS.has(op)) {
      arity(2);
      const l = this.expr(args[0], ap(0));
      const r = this.expr(args[1], ap(1));
      return {
        kind: 'compare',
        op: op as ComparisonOp,
        left: strip(l),
        right: strip(r),
        matchCase: !(l.kind === 'casei' || r.kind === 'casei'),
      };
    }
    if (op === 'like') {
      arity(2);
      const l = this.expr(args[0], ap(0));
      const p = this.expr(args[1], ap(1));
      const ps = strip(p);
      if (ps.kind !== 'literal' || ps.type !== 'string') this.fail('LIKE pattern must be a string', ap(1));
      return { kind: 'like', operand: strip(l), pattern: String(ps.value), matchCase: !(l.kind === 'casei' || p.kind === 'casei') };
    }
    if (op === 'between') {
      arity(3);
      return {
        kind: 'between',
        operand: strip(this.expr(args[0], ap(0))),
        lower: strip(this.expr(args[1], ap(1))),
        upper: strip(this.expr(args[2], ap(2))),
      };
    }
    if (op === 'in') {
      arity(2);
      const list = args[1];
      if (!Array.isArray(list) || list.length === 0) this.fail('IN requires a non-empty array of values', ap(1));
      return {
        kind: 'in',
        operand: strip(this.expr(args[0], ap(0))),
        values: list.map((x, k) => strip(this.expr(x, `${ap(1)}[${k}]`))),
      };
    }
    if (op === 'isnull') {
      arity(1);
      return { kind: 'isNull', operand: strip(this.expr(args[0], ap(0))) };
    }
    if (op in SPATIAL_FUNCS) return this.spatial(SPATIAL_FUNCS[op], args, path);
    if (op in TEMPORAL_FUNCS) return this.temporal(TEMPORAL_FUNCS[op], args, path);
    if (/^a_/.test(op)) throw new FilterError(`Array operator "${v.op}" is not supported`, 'InvalidParameterValue', 'filter');
    this.fail(`unsupported op "${v.op}"`, path);
  }

  private expr(v: Json, path: string): PExpr {
    if (typeof v === 'string') return { kind: 'literal', type: 'string', value: v };
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) this.fail('number must be finite', path);
      return { kind: 'literal', type: 'number', value: v };
    }
    if (typeof v === 'boolean') return { kind: 'literal', type: 'boolean', value: v };
    if (!isObj(v)) this.fail(`expected an expression, found ${describe(v)}`, path);
    if ('property' in v) {
      if (typeof v.property !== 'string' || !v.property) this.fail('"property" must be a non-empty string', path);
      const name = bareName(v.property);
      if (!name) this.fail('invalid property name', path);
      return { kind: 'property', name };
    }
    if ('date' in v) {
      if (typeof v.date !== 'string') this.fail('"date" must be a string', path);
      return { kind: 'literal', type: 'date', value: temporalInstant(v.date, 'date', ` at ${path}`).value };
    }
    if ('timestamp' in v) {
      if (typeof v.timestamp !== 'string') this.fail('"timestamp" must be a string', path);
      return { kind: 'literal', type: 'timestamp', value: temporalInstant(v.timestamp, 'timestamp', ` at ${path}`).value };
    }
    if ('casei' in v) {
      const inner = this.expr(v.casei, `${path}.casei`);
      return { kind: 'casei', arg: strip(inner) };
    }
    if (typeof v.op === 'string') {
      const op = v.op.toLowerCase();
      const args = v.args;
      if (op === 'casei' && Array.isArray(args) && args.length === 1) {
        return { kind: 'casei', arg: strip(this.expr(args[0], `${path}.args[0]`)) };
      }
      if ((op === '+' || op === '-' || op === '*' || op === '/') && Array.isArray(args) && args.length === 2) {
        const l = this.expr(args[0], `${path}.args[0]`);
        const r = this.expr(args[1], `${path}.args[1]`);
        if (l.kind === 'casei' || r.kind === 'casei') this.fail('CASEI cannot be used in arithmetic', path);
        return { kind: 'arith', op, left: l, right: r };
      }
      if (op === 'accenti') throw new FilterError('ACCENTI is not supported', 'InvalidParameterValue', 'filter');
    }
    if ('function' in v || 'op' in v)
      throw new FilterError(`Unsupported function/expression ${describe(v)}`, 'InvalidParameterValue', 'filter');
    this.fail(`expected an expression, found ${describe(v)}`, path);
  }

  private spatial(op: SpatialOp, args: Json[], path: string): FilterNode {
    const dist = op === 'dwithin' || op === 'beyond';
    if (dist ? args.length < 3 || args.length > 4 : args.length !== 2) {
      this.fail(`spatial operator requires ${dist ? '3 or 4' : '2'} arguments`, path);
    }
    let prop: string | null = null;
    let geom: GeometryLiteral | null = null;
    let swapped = false;
    for (let k = 0; k < 2; k++) {
      const a = args[k];
      if (isObj(a) && 'property' in a) {
        if (prop !== null) this.fail('spatial operators between two properties are not supported', path);
        const e = this.expr(a, `${path}.args[${k}]`);
        prop = (e as { name: string }).name;
      } else {
        if (geom) this.fail('expected a property', `${path}.args[${k}]`);
        geom = this.geometry(a, `${path}.args[${k}]`);
        if (k === 0) swapped = true;
      }
    }
    if (prop === null || geom === null) this.fail('spatial operator requires a property and a geometry', path);
    const node: SpatialNode = { kind: 'spatial', op: swapped ? inverseSpatialOp(op) : op, property: prop, geometry: geom };
    if (dist) {
      const d = args[2];
      if (typeof d !== 'number' || !Number.isFinite(d)) this.fail('distance must be a number', `${path}.args[2]`);
      const u = args.length === 4 ? args[3] : 'm';
      if (typeof u !== 'string') this.fail('units must be a string', `${path}.args[3]`);
      node.distance = { value: d, units: u };
    }
    return node;
  }

  private temporal(op: TemporalOp, args: Json[], path: string): FilterNode {
    if (args.length !== 2) this.fail('temporal operator requires 2 arguments', path);
    let prop: string | null = null;
    let value: TemporalValue | null = null;
    let swapped = false;
    for (let k = 0; k < 2; k++) {
      const a = args[k];
      const p = `${path}.args[${k}]`;
      if (isObj(a) && 'property' in a) {
        if (prop !== null) this.fail('temporal operators between two properties are not supported', path);
        prop = (this.expr(a, p) as { name: string }).name;
      } else {
        if (value) this.fail('expected a property', p);
        value = this.temporalValue(a, p);
        if (k === 0) swapped = true;
      }
    }
    if (prop === null || value === null) this.fail('temporal operator requires a property and a temporal literal', path);
    return { kind: 'temporal', op: swapped ? inverseTemporalOp(op) : op, property: prop, value };
  }

  private temporalValue(v: Json, path: string): TemporalValue {
    if (isObj(v) && 'interval' in v) {
      const iv = v.interval;
      if (!Array.isArray(iv) || iv.length !== 2) this.fail('"interval" must be an array of 2 bounds', path);
      const bound = (b: Json, k: number): TemporalInstant | null => {
        const bp = `${path}.interval[${k}]`;
        if (b === '..') return null;
        if (typeof b === 'string') return temporalInstant(b, 'any', ` at ${bp}`);
        if (isObj(b) && typeof b.date === 'string') return temporalInstant(b.date, 'date', ` at ${bp}`);
        if (isObj(b) && typeof b.timestamp === 'string') return temporalInstant(b.timestamp, 'timestamp', ` at ${bp}`);
        if (isObj(b) && 'property' in b) {
          throw new FilterError('INTERVAL with property bounds is not supported', 'InvalidParameterValue', 'filter');
        }
        return this.fail(`invalid interval bound ${describe(b)}`, bp);
      };
      return { type: 'interval', start: bound(iv[0], 0), end: bound(iv[1], 1) };
    }
    if (isObj(v) && typeof v.date === 'string') return temporalInstant(v.date, 'date', ` at ${path}`);
    if (isObj(v) && typeof v.timestamp === 'string') return temporalInstant(v.timestamp, 'timestamp', ` at ${path}`);
    if (typeof v === 'string') return temporalInstant(v, 'any', ` at ${path}`);
    this.fail(`expected a date, timestamp or interval, found ${describe(v)}`, path);
  }

  private geometry(v: Json, path: string): GeometryLiteral {
    const swap = this.crs.latLonOrder;
    if (isObj(v) && 'bbox' in v && !('type' in v)) {
      const b = v.bbox;
      if (!Array.isArray(b)) this.fail('"bbox" must be an array', path);
      return { geometry: bboxPolygon(b as number[], swap, (m) => this.fail(m, path)), epsg: this.crs.epsg };
    }
    return { geometry: this.geojson(v, path, swap, 0), epsg: this.crs.epsg };
  }

  private pos(p: Json, path: string, swap: boolean): number[] {
    if (!Array.isArray(p) || p.length < 2 || p.length > 4 || p.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      this.fail(`invalid position ${describe(p)}`, path);
    }
    const q = p as number[];
    return swap ? [q[1], q[0], ...q.slice(2)] : q.slice();
  }

  private arr(p: Json, path: string, min: number): Json[] {
    if (!Array.isArray(p) || p.length < min) this.fail(`expected an array of at least ${min} elements`, path);
    return p;
  }

  private line(p: Json, path: string, swap: boolean, min: number): number[][] {
    return this.arr(p, path, min).map((x, k) => this.pos(x, `${path}[${k}]`, swap));
  }

  private ring(p: Json, path: string, swap: boolean): number[][] {
    const r = this.line(p, path, swap, 4);
    const a = r[0];
    const b = r[r.length - 1];
    if (a[0] !== b[0] || a[1] !== b[1]) this.fail('polygon ring is not closed', path);
    return r;
  }

  private geojson(v: Json, path: string, swap: boolean, depth: number): GeoJsonGeometry {
    if (!isObj(v) || typeof v.type !== 'string') this.fail(`expected a GeoJSON geometry, found ${describe(v)}`, path);
    if (depth > 8) this.fail('geometry collection nesting too deep', path);
    const c = v.coordinates;
    const cp = `${path}.coordinates`;
    switch (v.type) {
      case 'Point':
        return { type: 'Point', coordinates: this.pos(c, cp, swap) };
      case 'LineString':
        return { type: 'LineString', coordinates: this.line(c, cp, swap, 2) };
      case 'MultiPoint':
        return { type: 'MultiPoint', coordinates: this.line(c, cp, swap, 1) };
      case 'Polygon':
        return { type: 'Polygon', coordinates: this.arr(c, cp, 1).map((r, k) => this.ring(r, `${cp}[${k}]`, swap)) };
      case 'MultiLineString':
        return { type: 'MultiLineString', coordinates: this.arr(c, cp, 1).map((l, k) => this.line(l, `${cp}[${k}]`, swap, 2)) };
      case 'MultiPolygon':
        return {
          type: 'MultiPolygon',
          coordinates: this.arr(c, cp, 1).map((pg, k) =>
            this.arr(pg, `${cp}[${k}]`, 1).map((r, j) => this.ring(r, `${cp}[${k}][${j}]`, swap)),
          ),
        };
      case 'GeometryCollection':
        return {
          type: 'GeometryCollection',
          geometries: this.arr(v.geometries, `${path}.geometries`, 1).map((g, k) =>
            this.geojson(g, `${path}.geometries[${k}]`, swap, depth + 1),
          ),
        };
      default:
        this.fail(`unsupported geometry type "${v.type}"`, path);
    }
  }
}

function strip(e: PExpr): Operand {
  return e.kind === 'casei' ? e.arg : e;
}

/** Parse a CQL2 JSON expression (already JSON.parse'd, or a JSON string). */
export function parseCql2Json(obj: unknown, ctx?: Cql2Context): FilterNode {
  let v = obj;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch (e) {
      throw parseError(`CQL2 JSON is not valid JSON: ${(e as Error).message}`);
    }
  }
  return new JsonParser(ctx).node(v, '$');
}
