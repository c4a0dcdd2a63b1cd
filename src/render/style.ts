/**
 * Map styles: a documented subset of SLD 1.0 / SE 1.1 written in YAML (docs/styles.md).
 *
 * A style is a list of FeatureTypeStyles (`featureTypeStyles`, or one given as `rules`), each a
 * list of rules. Each rule has an optional CQL2 filter (or `else: true`), optional
 * scale-denominator bounds, and symbolizers (polygon, line, point, text). As in SE, each
 * FeatureTypeStyle is one pass over the features, and within one each feature is drawn, in data
 * order, by every rule that applies to it (src/render/draw.ts); so a cased road is two
 * FeatureTypeStyles: the wide dark casings first, the narrow light fills second. Labels are
 * collected over the whole map and placed last with collision avoidance.
 */
import type { GeometryType, Layer } from '../registry/types.js';
import { parseSld } from './sld.js';
import { checkStyleColumns, parseRuleStyle, parseSymbolizer, type Rule, type Style, type Symbolizer } from './style-rules.js';

export * from './style-rules.js';

type Obj = Record<string, unknown>;

/** Parse one named style from its config object (rules, or an SLD document in `sld`). Throws StyleError naming the faulty key. */
export function parseStyle(name: string, raw: Obj, where = `styles.${name}`): Style {
  if (raw && typeof raw === 'object' && typeof raw.sld === 'string') return parseSld(name, raw.sld, `${where}.sld`);
  return parseRuleStyle(name, raw, where);
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
      // SE passes (FeatureTypeStyles): the casings under every road, then the minor roads, then
      // the nationales and autoroutes on top of them; names last. Minor roads only at town scale.
      featureTypeStyles: [
        {
          name: 'casings',
          rules: [
            {
              name: 'autoroute-casing',
              title: 'Autoroute',
              filter: "classe = 'autoroute'",
              line: { stroke: '#8c2a1c', 'stroke-width': 5 },
            },
            {
              name: 'nationale-casing',
              title: 'Nationale',
              filter: "classe = 'nationale'",
              maxScaleDenominator: 2000000,
              line: { stroke: '#9a5b00', 'stroke-width': 4 },
            },
          ],
        },
        {
          name: 'minor',
          rules: [
            {
              name: 'chemin',
              title: 'Chemin',
              filter: "classe = 'chemin'",
              maxScaleDenominator: 50000,
              line: { stroke: '#8a7a66', 'stroke-width': 0.8, 'stroke-dasharray': [3, 2] },
            },
            {
              name: 'communale',
              title: 'Communale',
              filter: "classe = 'communale'",
              maxScaleDenominator: 150000,
              line: { stroke: '#b0b0b0', 'stroke-width': 1 },
            },
            {
              name: 'departementale',
              title: 'Départementale',
              filter: "classe = 'departementale'",
              maxScaleDenominator: 1500000,
              line: { stroke: '#f2c94c', 'stroke-width': 1.6 },
            },
          ],
        },
        {
          name: 'major',
          rules: [
            {
              name: 'nationale',
              title: 'Nationale',
              filter: "classe = 'nationale'",
              maxScaleDenominator: 2000000,
              line: { stroke: '#f5a623', 'stroke-width': 2.5 },
            },
            {
              name: 'nationale-thin',
              title: 'Nationale',
              filter: "classe = 'nationale'",
              minScaleDenominator: 2000000,
              line: { stroke: '#f5a623', 'stroke-width': 1 },
            },
          ],
        },
        {
          name: 'motorways',
          rules: [
            { name: 'autoroute', title: 'Autoroute', filter: "classe = 'autoroute'", line: { stroke: '#e8423f', 'stroke-width': 3 } },
          ],
        },
        {
          name: 'names',
          rules: [
            {
              name: 'labels',
              title: 'Noms',
              filter: "classe IN ('autoroute','nationale')",
              maxScaleDenominator: 500000,
              text: { label: 'nom', 'font-size': 10, fill: '#333333', halo: { radius: 1.5, fill: '#ffffff' } },
            },
            {
              name: 'labels-departementale',
              title: 'Noms',
              filter: "classe = 'departementale'",
              maxScaleDenominator: 100000,
              text: { label: 'nom', 'font-size': 10, fill: '#333333', halo: { radius: 1.5, fill: '#ffffff' } },
            },
            {
              name: 'labels-communale',
              title: 'Noms',
              filter: "classe = 'communale'",
              maxScaleDenominator: 20000,
              text: { label: 'nom', 'font-size': 9, fill: '#444444', halo: { radius: 1.5, fill: '#ffffff' } },
            },
          ],
        },
      ],
    },
  },
  pois: {
    requires: ['categorie', 'nom'],
    raw: {
      title: 'Points d’intérêt par catégorie',
      // town scale: points of interest below 1:100,000 (stations below 1:250,000), names below 1:15,000
      rules: [
        {
          name: 'sante',
          title: 'Santé',
          filter: "categorie IN ('pharmacie','hôpital')",
          maxScaleDenominator: 100000,
          point: { mark: 'cross', size: 9, fill: '#2e9e44', stroke: '#1d6b2d', 'stroke-width': 2 },
        },
        {
          name: 'culte',
          title: 'Culte',
          filter: "categorie = 'église'",
          maxScaleDenominator: 100000,
          point: { mark: 'triangle', size: 9, fill: '#7b4fa0', stroke: '#ffffff' },
        },
        {
          name: 'culture',
          title: 'Culture',
          filter: "categorie IN ('musée','bibliothèque')",
          maxScaleDenominator: 100000,
          point: { mark: 'star', size: 10, fill: '#d4a017', stroke: '#6b4f00' },
        },
        {
          name: 'transport',
          title: 'Gare',
          filter: "categorie = 'gare'",
          maxScaleDenominator: 250000,
          point: { mark: 'square', size: 8, fill: '#1f5fa8', stroke: '#ffffff' },
        },
        {
          name: 'commerce',
          title: 'Commerces et services',
          else: true,
          maxScaleDenominator: 100000,
          point: { mark: 'circle', size: 6, fill: '#e4572e', stroke: '#ffffff' },
        },
        {
          name: 'labels',
          title: 'Noms',
          maxScaleDenominator: 15000,
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
    requires: ['nom', 'population'],
    raw: {
      title: 'Communes',
      // place names by importance: cities at every scale, towns from 1:1,000,000, villages from 1:300,000, every commune below 1:100,000
      featureTypeStyles: [
        {
          rules: [
            { name: 'communes', title: 'Commune', polygon: { fill: '#fff8e7', 'fill-opacity': 0.5, stroke: '#6d5d4b', 'stroke-width': 1 } },
          ],
        },
        {
          rules: [
            {
              name: 'labels-city',
              title: 'Nom de la commune',
              filter: 'population >= 50000',
              text: { label: 'nom', 'font-size': 14, fill: '#2b2118', halo: { radius: 2, fill: '#ffffff' } },
            },
            {
              name: 'labels-town',
              title: 'Nom de la commune',
              filter: 'population >= 10000 AND population < 50000',
              maxScaleDenominator: 1000000,
              text: { label: 'nom', 'font-size': 12, fill: '#3b2f22', halo: { radius: 2, fill: '#ffffff' } },
            },
            {
              name: 'labels-village',
              title: 'Nom de la commune',
              filter: 'population >= 2000 AND population < 10000',
              maxScaleDenominator: 300000,
              text: { label: 'nom', 'font-size': 11, fill: '#3b2f22', halo: { radius: 1.5, fill: '#ffffff' } },
            },
            {
              name: 'labels',
              title: 'Nom de la commune',
              filter: 'population < 2000',
              maxScaleDenominator: 100000,
              text: { label: 'nom', 'font-size': 10, fill: '#3b2f22', halo: { radius: 1.5, fill: '#ffffff' } },
            },
          ],
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
