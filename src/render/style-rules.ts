/**
 * The style model (rules, symbolizers) and its parser from the YAML form (docs/styles.md), shared
 * by the YAML styles (style.ts) and the SLD reader (sld.ts), which both build on it.
 */
import { parseCql2Text } from '../filter/cql2.js';
import type { FilterNode } from '../filter/ast.js';
import type { Layer } from '../registry/types.js';
import { compileFilter } from '../filter/sql.js';
import { filterTarget } from '../features/query.js';

export type MarkName = 'circle' | 'square' | 'triangle' | 'star' | 'cross' | 'x';
export const MARKS: MarkName[] = ['circle', 'square', 'triangle', 'star', 'cross', 'x'];

export interface PolygonSymbolizer {
  kind: 'polygon';
  fill?: string;
  fillOpacity: number;
  stroke?: string;
  strokeWidth: number;
  strokeOpacity: number;
  dash?: number[];
}
export interface LineSymbolizer {
  kind: 'line';
  stroke: string;
  width: number;
  opacity: number;
  dash?: number[];
  cap: 'butt' | 'round' | 'square';
  join: 'miter' | 'round' | 'bevel';
}
export interface PointSymbolizer {
  kind: 'point';
  mark: MarkName;
  size: number;
  fill?: string;
  fillOpacity: number;
  stroke?: string;
  strokeWidth: number;
  rotation: number;
}
export interface TextSymbolizer {
  kind: 'text';
  /** Property whose value is the label. */
  label: string;
  font: string;
  size: number;
  fill: string;
  halo?: { radius: number; fill: string };
  offset: [number, number];
}
export type Symbolizer = PolygonSymbolizer | LineSymbolizer | PointSymbolizer | TextSymbolizer;

export interface Rule {
  name: string;
  title: string;
  filter?: FilterNode;
  filterText?: string;
  else: boolean;
  minScale?: number;
  maxScale?: number;
  symbolizers: Symbolizer[];
  /**
   * Index of the rule's se:FeatureTypeStyle in its style (0 when absent). A style's rules are
   * listed FeatureTypeStyle by FeatureTypeStyle; each FeatureTypeStyle is one pass over the
   * features, and within it each feature is drawn by all its matching rules in turn (SE 1.1 §10).
   */
  fts?: number;
}

export interface Style {
  name: string;
  title: string;
  abstract?: string;
  rules: Rule[];
}

/**
 * CSS font list for a style's font-family: generic families are resolved to the DejaVu fonts
 * (Skia's generic fallback would pick a serif face on a bare Debian).
 */
export function fontList(family: string): string {
  const generic: Record<string, string> = {
    'sans-serif': '"DejaVu Sans", sans-serif',
    serif: '"DejaVu Serif", serif',
    monospace: '"DejaVu Sans Mono", monospace',
  };
  return family
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean)
    .map((f) => generic[f.toLowerCase()] ?? (/^[\w -]+$/.test(f) && f.includes(' ') ? `"${f}"` : f))
    .join(', ');
}

export class StyleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StyleError';
  }
}

const COLOUR = /^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{4}|#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8}|rgba?\([\d\s.,%]+\)|[a-zA-Z]+)$/;

function colour(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null || v === 'none') return undefined;
  if (typeof v !== 'string' || !COLOUR.test(v.trim()))
    throw new StyleError(`${where}: '${String(v)}' is not a colour (#rrggbb, #rgb, rgb(), rgba() or a CSS name)`);
  return v.trim();
}

function num(v: unknown, def: number, where: string, min = 0, max = Infinity): number {
  if (v === undefined || v === null) return def;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new StyleError(`${where}: expected a number in ${min}..${max}, got '${String(v)}'`);
  return n;
}

function dash(v: unknown, where: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  const arr = Array.isArray(v)
    ? v
    : String(v)
        .trim()
        .split(/[\s,]+/);
  const nums = arr.map((x) => Number(x));
  if (!nums.length || nums.some((n) => !Number.isFinite(n) || n < 0))
    throw new StyleError(`${where}: stroke-dasharray must be a list of non-negative numbers`);
  return nums;
}

type Obj = Record<string, unknown>;

function get(o: Obj, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined) return o[k];
  return undefined;
}

export function parseSymbolizer(kind: string, o: Obj, where: string): Symbolizer {
  switch (kind) {
    case 'polygon':
      return {
        kind: 'polygon',
        fill: colour(get(o, 'fill'), `${where}.fill`),
        fillOpacity: num(get(o, 'fill-opacity', 'fillOpacity', 'opacity'), 1, `${where}.fill-opacity`, 0, 1),
        stroke: colour(get(o, 'stroke'), `${where}.stroke`),
        strokeWidth: num(get(o, 'stroke-width', 'strokeWidth'), 1, `${where}.stroke-width`, 0, 100),
        strokeOpacity: num(get(o, 'stroke-opacity', 'strokeOpacity', 'opacity'), 1, `${where}.stroke-opacity`, 0, 1),
        dash: dash(get(o, 'stroke-dasharray', 'dash'), `${where}.stroke-dasharray`),
      };
    case 'line': {
      const cap = String(get(o, 'stroke-linecap', 'linecap') ?? 'round');
      const join = String(get(o, 'stroke-linejoin', 'linejoin') ?? 'round');
      if (!['butt', 'round', 'square'].includes(cap)) throw new StyleError(`${where}.stroke-linecap: butt, round or square`);
      if (!['miter', 'mitre', 'round', 'bevel'].includes(join)) throw new StyleError(`${where}.stroke-linejoin: miter, round or bevel`);
      return {
        kind: 'line',
        stroke: colour(get(o, 'stroke'), `${where}.stroke`) ?? '#000000',
        width: num(get(o, 'stroke-width', 'width'), 1, `${where}.stroke-width`, 0, 100),
        opacity: num(get(o, 'stroke-opacity', 'opacity'), 1, `${where}.stroke-opacity`, 0, 1),
        dash: dash(get(o, 'stroke-dasharray', 'dash'), `${where}.stroke-dasharray`),
        cap: cap as LineSymbolizer['cap'],
        join: (join === 'mitre' ? 'miter' : join) as LineSymbolizer['join'],
      };
    }
    case 'point': {
      const mark = String(get(o, 'mark', 'wellKnownName') ?? 'circle').toLowerCase() as MarkName;
      if (!MARKS.includes(mark)) throw new StyleError(`${where}.mark: one of ${MARKS.join(', ')}`);
      return {
        kind: 'point',
        mark,
        size: num(get(o, 'size'), 6, `${where}.size`, 0, 256),
        fill: colour(get(o, 'fill'), `${where}.fill`),
        fillOpacity: num(get(o, 'fill-opacity', 'opacity'), 1, `${where}.fill-opacity`, 0, 1),
        stroke: colour(get(o, 'stroke'), `${where}.stroke`),
        strokeWidth: num(get(o, 'stroke-width'), 1, `${where}.stroke-width`, 0, 50),
        rotation: num(get(o, 'rotation'), 0, `${where}.rotation`, -360, 360),
      };
    }
    case 'text': {
      const label = get(o, 'label', 'property');
      if (typeof label !== 'string' || !label) throw new StyleError(`${where}.label: the name of the property to write`);
      const halo = get(o, 'halo') as Obj | undefined;
      const off = get(o, 'offset');
      const offset: [number, number] =
        Array.isArray(off) && off.length === 2
          ? [num(off[0], 0, `${where}.offset`, -200, 200), num(off[1], 0, `${where}.offset`, -200, 200)]
          : [0, 0];
      return {
        kind: 'text',
        label,
        font: String(get(o, 'font-family', 'font') ?? 'sans-serif'),
        size: num(get(o, 'font-size', 'size'), 11, `${where}.font-size`, 4, 96),
        fill: colour(get(o, 'fill'), `${where}.fill`) ?? '#000000',
        halo: halo
          ? { radius: num(halo.radius, 1.5, `${where}.halo.radius`, 0, 20), fill: colour(halo.fill, `${where}.halo.fill`) ?? '#ffffff' }
          : undefined,
        offset,
      };
    }
    default:
      throw new StyleError(`${where}: unknown symbolizer '${kind}' (polygon, line, point, text)`);
  }
}

const SYMBOLIZER_KEYS: Record<string, string> = {
  polygon: 'polygon',
  polygonsymbolizer: 'polygon',
  line: 'line',
  linesymbolizer: 'line',
  point: 'point',
  pointsymbolizer: 'point',
  text: 'text',
  textsymbolizer: 'text',
};

/**
 * Parse one named style from its rules (YAML form; SLD documents come through src/render/sld.ts,
 * which builds this form). Throws StyleError naming the faulty key.
 */
export function parseRuleStyle(name: string, raw: Obj, where = `styles.${name}`): Style {
  if (!raw || typeof raw !== 'object') throw new StyleError(`${where}: a style is a mapping with 'rules' or 'featureTypeStyles'`);
  const groups: { rules: unknown; where: string }[] = [];
  if (raw.featureTypeStyles !== undefined) {
    if (raw.rules !== undefined) throw new StyleError(`${where}: either 'rules' or 'featureTypeStyles', not both`);
    const fts = raw.featureTypeStyles;
    if (!Array.isArray(fts) || !fts.length) throw new StyleError(`${where}.featureTypeStyles: a non-empty list of {rules}`);
    fts.forEach((f: Obj, k: number) => {
      if (!f || typeof f !== 'object') throw new StyleError(`${where}.featureTypeStyles[${k}]: a mapping with 'rules'`);
      groups.push({ rules: f.rules, where: `${where}.featureTypeStyles[${k}]` });
    });
  } else groups.push({ rules: raw.rules, where });
  const rules: Rule[] = [];
  groups.forEach((grp, k) => {
    const rulesRaw = grp.rules;
    if (!Array.isArray(rulesRaw) || !rulesRaw.length) throw new StyleError(`${grp.where}.rules: a non-empty list of rules`);
    for (const [i, r] of (rulesRaw as Obj[]).entries()) rules.push(parseRule(r, i, `${grp.where}.rules[${i}]`, k));
  });
  return { name, title: String(raw.title ?? name), abstract: typeof raw.abstract === 'string' ? raw.abstract : undefined, rules };
}

function parseRule(r: Obj, i: number, rw: string, fts: number): Rule {
  {
    if (!r || typeof r !== 'object') throw new StyleError(`${rw}: a mapping`);
    let filter: FilterNode | undefined;
    const ft = r.filter;
    if (ft !== undefined && ft !== null) {
      if (typeof ft !== 'string') throw new StyleError(`${rw}.filter: CQL2 text`);
      try {
        filter = parseCql2Text(ft);
      } catch (e) {
        throw new StyleError(`${rw}.filter: ${(e as Error).message}`);
      }
    }
    const symbolizers: Symbolizer[] = [];
    for (const [k, v] of Object.entries(r)) {
      const kind = SYMBOLIZER_KEYS[k.toLowerCase()];
      if (!kind) continue;
      for (const [j, s] of (Array.isArray(v) ? v : [v]).entries())
        symbolizers.push(parseSymbolizer(kind, (s ?? {}) as Obj, `${rw}.${k}${Array.isArray(v) ? `[${j}]` : ''}`));
    }
    if (Array.isArray(r.symbolizers)) {
      for (const [j, s] of (r.symbolizers as Obj[]).entries()) {
        const [k, v] = Object.entries(s ?? {})[0] ?? [];
        const kind = k ? SYMBOLIZER_KEYS[k.toLowerCase()] : undefined;
        if (!kind) throw new StyleError(`${rw}.symbolizers[${j}]: one of polygon, line, point, text`);
        symbolizers.push(parseSymbolizer(kind, (v ?? {}) as Obj, `${rw}.symbolizers[${j}].${k}`));
      }
    }
    if (!symbolizers.length) throw new StyleError(`${rw}: no symbolizer (polygon, line, point or text)`);
    const minScale = r.minScaleDenominator ?? r.minScale;
    const maxScale = r.maxScaleDenominator ?? r.maxScale;
    return {
      name: String(r.name ?? `rule${i + 1}`),
      title: String(r.title ?? r.name ?? (typeof ft === 'string' ? ft : 'default')),
      filter,
      filterText: typeof ft === 'string' ? ft : undefined,
      else: r.else === true,
      minScale: minScale === undefined ? undefined : num(minScale, 0, `${rw}.minScaleDenominator`),
      maxScale: maxScale === undefined ? undefined : num(maxScale, 0, `${rw}.maxScaleDenominator`),
      symbolizers,
      fts,
    };
  }
}

/** A style's filters and labels name columns of the layer (StyleError naming `where` otherwise). */
export function checkStyleColumns(s: Style, layer: Layer, where: string): void {
  const fieldNames = new Set(layer.fields.map((f) => f.name));
  const target = filterTarget(layer);
  for (const r of s.rules) {
    if (r.filter) {
      try {
        compileFilter(r.filter, target, []);
      } catch (e) {
        throw new StyleError(`${where}, rule '${r.name}': filter '${r.filterText}': ${(e as Error).message}`);
      }
    }
    for (const sym of r.symbolizers) {
      if (sym.kind === 'text' && !fieldNames.has(sym.label))
        throw new StyleError(`${where}, rule '${r.name}': label property '${sym.label}' is not a column of the layer`);
    }
  }
}

export function ruleActive(rule: Rule, scale: number): boolean {
  // SE: MinScaleDenominator inclusive, MaxScaleDenominator exclusive
  if (rule.minScale !== undefined && scale < rule.minScale) return false;
  if (rule.maxScale !== undefined && scale >= rule.maxScale) return false;
  return true;
}
