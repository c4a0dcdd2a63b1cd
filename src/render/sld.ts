/**
 * SLD 1.0 (and SE 1.1) XML → the style model of style.ts. The same subset as the YAML form:
 * rules with ogc:Filter / ElseFilter and scale denominators; Polygon, Line, Point (well-known
 * marks) and Text symbolizers. Each FeatureTypeStyle is its own pass over the features, in order
 * (a FeatureTypeStyle without Rule is skipped).
 */
import { parseXml, type XmlElement, type XmlLimits } from '../ows/xmldom.js';
import { parseFesFilter } from '../filter/fes.js';
import type { FilterNode } from '../filter/ast.js';
import { StyleError, parseRuleStyle, type Style } from './style-rules.js';

type Obj = Record<string, unknown>;

function kids(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}
function kid(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}
function textOf(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  const lit = kid(el, 'Literal');
  const t = (lit ? lit.text : el.text).trim();
  return t === '' ? undefined : t;
}

/** CssParameter (SLD 1.0) / SvgParameter (SE 1.1) values by name. */
function params(el: XmlElement | undefined): Obj {
  const out: Obj = {};
  if (!el) return out;
  for (const p of el.children) {
    if (p.name !== 'CssParameter' && p.name !== 'SvgParameter') continue;
    const n = p.attrs.name;
    const v = textOf(p);
    if (n && v !== undefined) out[n] = /^-?[\d.]+$/.test(v) ? Number(v) : v;
  }
  return out;
}

function fillStroke(el: XmlElement | undefined): Obj {
  const fill = params(kid(el, 'Fill'));
  const stroke = params(kid(el, 'Stroke'));
  return { ...fill, ...stroke };
}

function symbolizer(el: XmlElement): [string, Obj] | null {
  switch (el.name) {
    case 'PolygonSymbolizer': {
      const o = fillStroke(el);
      if (!kid(el, 'Fill')) o.fill = 'none';
      else if (o.fill === undefined) o.fill = '#808080';
      if (kid(el, 'Stroke') && o.stroke === undefined) o.stroke = '#000000';
      return ['polygon', o];
    }
    case 'LineSymbolizer':
      return ['line', params(kid(el, 'Stroke'))];
    case 'PointSymbolizer': {
      const g = kid(el, 'Graphic');
      const mark = kid(g, 'Mark');
      const o: Obj = { ...fillStroke(mark) };
      const wkn = textOf(kid(mark, 'WellKnownName'));
      if (wkn) o.mark = wkn;
      const size = textOf(kid(g, 'Size'));
      if (size) o.size = Number(size);
      const rot = textOf(kid(g, 'Rotation'));
      if (rot) o.rotation = Number(rot);
      if (mark && !kid(mark, 'Fill') && !kid(mark, 'Stroke')) o.fill = '#808080';
      return ['point', o];
    }
    case 'TextSymbolizer': {
      const label = kid(el, 'Label');
      const prop = kid(label, 'PropertyName') ?? kid(label, 'ValueReference');
      if (!prop) throw new StyleError('TextSymbolizer: Label must be a PropertyName');
      const font = params(kid(el, 'Font'));
      const o: Obj = { label: prop.text.trim() };
      if (font['font-family']) o['font-family'] = font['font-family'];
      if (font['font-size']) o['font-size'] = Number(font['font-size']);
      const fill = params(kid(el, 'Fill'));
      if (fill.fill) o.fill = fill.fill;
      const halo = kid(el, 'Halo');
      if (halo) o.halo = { radius: Number(textOf(kid(halo, 'Radius')) ?? 1), fill: params(kid(halo, 'Fill')).fill ?? '#ffffff' };
      const disp = kid(kid(kid(el, 'LabelPlacement'), 'PointPlacement'), 'Displacement');
      if (disp) o.offset = [Number(textOf(kid(disp, 'DisplacementX')) ?? 0), -Number(textOf(kid(disp, 'DisplacementY')) ?? 0)];
      return ['text', o];
    }
    default:
      return null;
  }
}

/** Parse an SLD 1.0 / SE 1.1 document into a named style (the first UserStyle, or the default one). */
export function parseSld(name: string, xml: string, where = `styles.${name}.sld`): Style {
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (e) {
    throw new StyleError(`${where}: not well-formed XML: ${(e as Error).message}`);
  }
  const layers = [...kids(root, 'NamedLayer'), ...kids(root, 'UserLayer')];
  const styles = root.name === 'UserStyle' ? [root] : layers.flatMap((l) => kids(l, 'UserStyle'));
  if (!styles.length) throw new StyleError(`${where}: no UserStyle found (StyledLayerDescriptor/NamedLayer/UserStyle)`);
  const us = styles.find((s) => /^(1|true)$/.test(textOf(kid(s, 'IsDefault')) ?? '')) ?? styles[0];
  return userStyle(us, name, where);
}

/** What an SLD document (WMS SLD_BODY) asks for one layer: its own UserStyle, or a named style. */
export interface SldLayer {
  layer: string;
  style?: Style;
  namedStyle?: string;
}

/**
 * The NamedLayers of an SLD document, in document order, each with the UserStyle it carries (the
 * one marked IsDefault, else the first) or the NamedStyle it names (neither: the layer's default).
 */
export function parseSldLayers(xml: string, where = 'SLD_BODY', limits?: XmlLimits): SldLayer[] {
  let root: XmlElement;
  try {
    root = parseXml(xml, limits);
  } catch (e) {
    throw new StyleError(`${where}: not well-formed XML: ${(e as Error).message}`);
  }
  if (root.name !== 'StyledLayerDescriptor')
    throw new StyleError(`${where}: the root element must be StyledLayerDescriptor, not ${root.name}`);
  const out: SldLayer[] = [];
  for (const nl of kids(root, 'NamedLayer')) {
    const layer = textOf(kid(nl, 'Name'));
    if (!layer) throw new StyleError(`${where}: a NamedLayer has no Name`);
    const styles = kids(nl, 'UserStyle');
    const us = styles.find((s) => /^(1|true)$/.test(textOf(kid(s, 'IsDefault')) ?? '')) ?? styles[0];
    if (us) out.push({ layer, style: userStyle(us, textOf(kid(us, 'Name')) ?? 'sld_body', `${where}: NamedLayer ${layer}`) });
    else out.push({ layer, namedStyle: textOf(kid(kid(nl, 'NamedStyle'), 'Name')) });
  }
  if (!out.length) throw new StyleError(`${where}: no NamedLayer (UserLayer with inline data is not supported)`);
  return out;
}

function userStyle(us: XmlElement, name: string, where: string): Style {
  const filters = new Map<Obj, FilterNode>();
  const rules: Obj[] = [];
  const featureTypeStyles: { rules: Obj[] }[] = [];
  for (const fts of [...kids(us, 'FeatureTypeStyle'), ...kids(us, 'CoverageStyle')]) {
    const group: Obj[] = [];
    for (const [i, r] of kids(fts, 'Rule').entries()) {
      const rw = `${where}: Rule ${textOf(kid(r, 'Name')) ?? i + 1}`;
      const title = textOf(kid(r, 'Title')) ?? textOf(kid(kid(r, 'Description'), 'Title'));
      const raw: Obj = { name: textOf(kid(r, 'Name')), title };
      const f = kid(r, 'Filter');
      if (f) {
        try {
          filters.set(raw, parseFesFilter(f, { version: f.ns === 'http://www.opengis.net/fes/2.0' ? '2.0' : '1.1' }));
        } catch (e) {
          throw new StyleError(`${rw}: filter: ${(e as Error).message}`);
        }
      }
      if (kid(r, 'ElseFilter')) raw.else = true;
      const min = textOf(kid(r, 'MinScaleDenominator'));
      const max = textOf(kid(r, 'MaxScaleDenominator'));
      if (min) raw.minScaleDenominator = Number(min);
      if (max) raw.maxScaleDenominator = Number(max);
      const syms: Obj[] = [];
      for (const c of r.children) {
        const s = symbolizer(c);
        if (s) syms.push({ [s[0]]: s[1] });
      }
      raw.symbolizers = syms;
      rules.push(raw);
      group.push(raw);
    }
    if (group.length) featureTypeStyles.push({ rules: group });
  }
  if (!rules.length) throw new StyleError(`${where}: the UserStyle has no Rule`);
  const style = parseRuleStyle(
    name,
    {
      title: textOf(kid(us, 'Title')) ?? textOf(kid(kid(us, 'Description'), 'Title')) ?? name,
      abstract: textOf(kid(us, 'Abstract')),
      featureTypeStyles,
    },
    where,
  );
  style.rules.forEach((rule, i) => {
    const f = filters.get(rules[i]);
    if (f) {
      rule.filter = f;
      rule.filterText = 'ogc:Filter';
      if (rule.title === 'default') rule.title = rule.name;
    }
  });
  return style;
}
