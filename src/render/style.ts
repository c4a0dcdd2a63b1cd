/**
 * Map styles: a documented subset of SLD 1.0 / SE 1.1 written in YAML (docs/styles.md).
 *
 * A style is a list of rules. Each rule has an optional CQL2 filter (or `else: true`), optional
 * scale-denominator bounds, and symbolizers (polygon, line, point, text). Rules are drawn as
 * successive passes in their order (like one SE FeatureTypeStyle per rule), so a cased road is two
 * rules: the wide dark casing first, the narrow light fill second. Labels are collected over the
 * whole map and placed last with collision avoidance.
 */
import { parseCql2Text } from '../filter/cql2.js';
import type { FilterNode } from '../filter/ast.js';
import type { GeometryType, Layer } from '../registry/types.js';
import { compileFilter } from '../filter/sql.js';
import { filterTarget } from '../features/query.js';
// sld.ts imports this module too; the functions are only called at run time, so the cycle is safe
import { parseSld } from './sld.js';

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

function parseSymbolizer(kind: string, o: Obj, where: string): Symbolizer {
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

/** Parse one named style from its config object. Throws StyleError naming the faulty key. */
export function parseStyle(name: string, raw: Obj, where = `styles.${name}`): Style {
  if (!raw || typeof raw !== 'object') throw new StyleError(`${where}: a style is a mapping with 'rules'`);
  if (typeof raw.sld === 'string') return parseSld(name, raw.sld, `${where}.sld`);
  const rulesRaw = raw.rules;
  if (!Array.isArray(rulesRaw) || !rulesRaw.length) throw new StyleError(`${where}.rules: a non-empty list of rules`);
  const rules = rulesRaw.map((r: Obj, i: number): Rule => {
    const rw = `${where}.rules[${i}]`;
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
    };
  });
  return { name, title: String(raw.title ?? name), abstract: typeof raw.abstract === 'string' ? raw.abstract : undefined, rules };
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

/** Sane default style per geometry type. */
export function defaultStyleFor(geometryType: GeometryType): Style {
  const g = geometryType.replace('MULTI', '');
  const sym: Symbolizer[] =
    g === 'POLYGON'
      ? [parseSymbolizer('polygon', { fill: '#a5c8e4', 'fill-opacity': 0.6, stroke: '#2b6a9e', 'stroke-width': 0.8 }, 'default')]
      : g === 'LINESTRING'
        ? [parseSymbolizer('line', { stroke: '#2b6a9e', 'stroke-width': 1.2 }, 'default')]
        : g === 'POINT'
          ? [parseSymbolizer('point', { mark: 'circle', size: 7, fill: '#e4572e', stroke: '#ffffff', 'stroke-width': 1 }, 'default')]
          : [
              parseSymbolizer('polygon', { fill: '#a5c8e4', 'fill-opacity': 0.6, stroke: '#2b6a9e', 'stroke-width': 0.8 }, 'default'),
              parseSymbolizer('line', { stroke: '#2b6a9e', 'stroke-width': 1.2 }, 'default'),
              parseSymbolizer('point', { mark: 'circle', size: 7, fill: '#e4572e', stroke: '#ffffff' }, 'default'),
            ];
  return { name: 'default', title: 'Default', rules: [{ name: 'default', title: 'Default', else: false, symbolizers: sym }] };
}

/** Categorised styles for the demo layers (used when the layer configures no styles). */
const DEMO_STYLES: Record<string, { requires: string[]; raw: Obj }> = {
  roads: {
    requires: ['classe', 'nom'],
    raw: {
      title: 'Routes par classe',
      rules: [
        { name: 'autoroute-casing', title: 'Autoroute', filter: "classe = 'autoroute'", line: { stroke: '#8c2a1c', 'stroke-width': 5 } },
        { name: 'nationale-casing', title: 'Nationale', filter: "classe = 'nationale'", line: { stroke: '#9a5b00', 'stroke-width': 4 } },
        {
          name: 'chemin',
          title: 'Chemin',
          filter: "classe = 'chemin'",
          maxScaleDenominator: 200000,
          line: { stroke: '#8a7a66', 'stroke-width': 0.8, 'stroke-dasharray': [3, 2] },
        },
        {
          name: 'communale',
          title: 'Communale',
          filter: "classe = 'communale'",
          maxScaleDenominator: 500000,
          line: { stroke: '#b0b0b0', 'stroke-width': 1 },
        },
        {
          name: 'departementale',
          title: 'Départementale',
          filter: "classe = 'departementale'",
          line: { stroke: '#f2c94c', 'stroke-width': 1.6 },
        },
        { name: 'nationale', title: 'Nationale', filter: "classe = 'nationale'", line: { stroke: '#f5a623', 'stroke-width': 2.5 } },
        { name: 'autoroute', title: 'Autoroute', filter: "classe = 'autoroute'", line: { stroke: '#e8423f', 'stroke-width': 3 } },
        {
          name: 'labels',
          title: 'Noms',
          filter: "classe IN ('autoroute','nationale','departementale')",
          maxScaleDenominator: 100000,
          text: { label: 'nom', 'font-size': 10, fill: '#333333', halo: { radius: 1.5, fill: '#ffffff' } },
        },
      ],
    },
  },
  pois: {
    requires: ['categorie', 'nom'],
    raw: {
      title: 'Points d’intérêt par catégorie',
      rules: [
        {
          name: 'sante',
          title: 'Santé',
          filter: "categorie IN ('pharmacie','hôpital')",
          point: { mark: 'cross', size: 9, fill: '#2e9e44', stroke: '#1d6b2d', 'stroke-width': 2 },
        },
        {
          name: 'culte',
          title: 'Culte',
          filter: "categorie = 'église'",
          point: { mark: 'triangle', size: 9, fill: '#7b4fa0', stroke: '#ffffff' },
        },
        {
          name: 'culture',
          title: 'Culture',
          filter: "categorie IN ('musée','bibliothèque')",
          point: { mark: 'star', size: 10, fill: '#d4a017', stroke: '#6b4f00' },
        },
        {
          name: 'transport',
          title: 'Gare',
          filter: "categorie = 'gare'",
          point: { mark: 'square', size: 8, fill: '#1f5fa8', stroke: '#ffffff' },
        },
        {
          name: 'commerce',
          title: 'Commerces et services',
          else: true,
          point: { mark: 'circle', size: 6, fill: '#e4572e', stroke: '#ffffff' },
        },
        {
          name: 'labels',
          title: 'Noms',
          maxScaleDenominator: 25000,
          text: { label: 'nom', 'font-size': 10, fill: '#222222', halo: { radius: 1.5, fill: '#ffffff' }, offset: [0, -9] },
        },
      ],
    },
  },
  parcels: {
    requires: ['bati'],
    raw: {
      title: 'Parcelles',
      rules: [
        {
          name: 'batie',
          title: 'Parcelle bâtie',
          filter: 'bati = true',
          polygon: { fill: '#f4d6b0', stroke: '#a0522d', 'stroke-width': 0.5 },
        },
        {
          name: 'non-batie',
          title: 'Parcelle non bâtie',
          else: true,
          polygon: { fill: '#e8f0d8', stroke: '#7a8f5a', 'stroke-width': 0.5 },
        },
      ],
    },
  },
  communes: {
    requires: ['nom'],
    raw: {
      title: 'Communes',
      rules: [
        { name: 'communes', title: 'Commune', polygon: { fill: '#fff8e7', 'fill-opacity': 0.5, stroke: '#6d5d4b', 'stroke-width': 1 } },
        {
          name: 'labels',
          title: 'Nom de la commune',
          maxScaleDenominator: 300000,
          text: { label: 'nom', 'font-size': 12, fill: '#3b2f22', halo: { radius: 2, fill: '#ffffff' } },
        },
      ],
    },
  },
};

export interface LayerStyles {
  /** Style names in capabilities order; the first is the default. */
  names: string[];
  styles: Map<string, Style>;
  defaultName: string;
}

const cache = new WeakMap<Layer, LayerStyles>();

/** The named styles of a layer: from config, else the demo style for a demo table, else the default. */
export function layerStyles(layer: Layer): LayerStyles {
  const hit = cache.get(layer);
  if (hit) return hit;
  const styles = new Map<string, Style>();
  const configured = Object.entries(layer.styles ?? {});
  if (configured.length) {
    for (const [name, raw] of configured) styles.set(name, parseStyle(name, raw as Obj, `layers.${layer.name}.styles.${name}`));
  } else {
    const demo = DEMO_STYLES[layer.table];
    const fieldNames = new Set(layer.fields.map((f) => f.name));
    if (demo && demo.requires.every((f) => fieldNames.has(f))) styles.set('default', parseStyle('default', demo.raw));
    else styles.set('default', defaultStyleFor(layer.geometryType));
  }
  // check the styles against the layer's columns once, so that a bad style is a clear error
  for (const s of styles.values()) checkStyleColumns(s, layer, `layers.${layer.name}.styles.${s.name}`);
  const names = [...styles.keys()];
  let defaultName = layer.defaultStyle && styles.has(layer.defaultStyle) ? layer.defaultStyle : names[0];
  if (!styles.has(defaultName)) defaultName = names[0];
  const out: LayerStyles = { names: [defaultName, ...names.filter((n) => n !== defaultName)], styles, defaultName };
  cache.set(layer, out);
  return out;
}
