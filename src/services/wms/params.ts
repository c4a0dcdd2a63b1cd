/** Parsing of the GetMap / GetFeatureInfo parameters shared by the WMS operations. */
import { bboxAreaKm2 } from '../../crs/area.js';
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import { kvpList, parseIntParam, parseNumberList, required, type Kvp } from '../../ows/kvp.js';
import { resolveWmsCrs, type MapCrs } from '../../crs/index.js';
import type { Extent, Layer } from '../../registry/types.js';
import type { MapFormat, RenderLayer } from '../../render/index.js';
import { checkStyleColumns, layerStyles, ruleActive, StyleError } from '../../render/style.js';
import type { LegendPart } from '../../render/legend.js';
import { parseSldLayers, type SldLayer } from '../../render/sld.js';
import { FilterError } from '../../filter/errors.js';
import { fetchSldDocument } from './sld-url.js';
import { xmlLimitsOf } from '../../ows/xmldom.js';

export const MAP_FORMATS: Record<string, MapFormat> = {
  'image/png': 'image/png',
  'image/png8': 'image/png8',
  'image/png; mode=8bit': 'image/png8',
  'image/jpeg': 'image/jpeg',
  'image/jpg': 'image/jpeg',
  'image/webp': 'image/webp',
};
/** Formats advertised in capabilities. */
export const ADVERTISED_FORMATS = ['image/png', 'image/png; mode=8bit', 'image/jpeg', 'image/webp'];

export const CONTENT_TYPE: Record<MapFormat, string> = {
  'image/png': 'image/png',
  'image/png8': 'image/png',
  'image/jpeg': 'image/jpeg',
  'image/webp': 'image/webp',
};

export function parseFormat(v: string | undefined, locator = 'format'): MapFormat {
  const key = (v ?? '')
    .trim()
    .toLowerCase()
    .replace(/\s*;\s*/g, '; ')
    .replace(/ /g, ' ');
  const f =
    MAP_FORMATS[key] ??
    MAP_FORMATS[key.replace('; ', ';')] ??
    (key.startsWith('image/png') && /8bit|8/.test(key) ? 'image/png8' : undefined);
  if (!f) throw new OwsException('InvalidFormat', `format '${v}' is not supported (supported: ${ADVERTISED_FORMATS.join(', ')})`, locator);
  return f;
}

export type ExceptionMode = 'xml' | 'inimage' | 'blank';

export function exceptionMode(kvp: Kvp): ExceptionMode {
  const v = (kvp.EXCEPTIONS ?? '').toLowerCase();
  if (v === 'inimage' || v === 'application/vnd.ogc.se_inimage') return 'inimage';
  if (v === 'blank' || v === 'application/vnd.ogc.se_blank') return 'blank';
  return 'xml';
}

export function parseBgcolor(v: string | undefined): string {
  if (!v) return '#ffffff';
  const m = v.trim().match(/^(?:0x|#)?([0-9a-fA-F]{6})$/);
  if (!m) throw new OwsException('InvalidParameterValue', `BGCOLOR must be 0xRRGGBB, got '${v}'`, 'bgcolor');
  return `#${m[1].toLowerCase()}`;
}

export function parseBool(v: string | undefined, key: string): boolean {
  if (v === undefined || v === '') return false;
  const l = v.trim().toLowerCase();
  if (l === 'true' || l === '1') return true;
  if (l === 'false' || l === '0') return false;
  throw new OwsException('InvalidParameterValue', `${key.toUpperCase()} must be TRUE or FALSE, got '${v}'`, key);
}

/** The layers this caller may read (ctx.registry is the request's view, src/security/access.ts). */
export function publishedLayers(ctx: AppContext): Layer[] {
  return ctx.registry.list();
}

/** A layer by name; one the caller may not read is answered exactly as one that does not exist. */
export function findLayer(ctx: AppContext, name: string, locator: string): Layer {
  const l = ctx.registry.resolve(name);
  if (!l) throw new OwsException('LayerNotDefined', `layer '${name}' is not defined`, locator);
  return l;
}

/** limits.maxLayersPerMap, checked before the layers are resolved and again once groups are expanded. */
export function checkLayerCount(ctx: AppContext, n: number, locator: string): void {
  const max = ctx.config.limits.maxLayersPerMap;
  if (n > max)
    throw new OwsException('InvalidParameterValue', `the request names ${n} layers; this server draws at most ${max} in one map`, locator);
}

/** A configured layer group, with the members this request may see (bottom first). */
export interface LayerGroup {
  name: string;
  title: string;
  abstract?: string;
  members: Layer[];
}

/**
 * The layer groups to advertise and accept, as this caller sees them: members it may not read
 * (and names that are not published) are left out, a group left without members does not exist
 * for it, and a layer of the same name takes precedence over a group (whoever asks, so that a
 * name means the same thing to every caller).
 */
export function layerGroups(ctx: AppContext): LayerGroup[] {
  return (ctx.config.layerGroups ?? []).map((g) => resolveGroup(ctx, g)).filter((g): g is LayerGroup => !!g);
}

function findGroup(ctx: AppContext, name: string): LayerGroup | undefined {
  const g = (ctx.config.layerGroups ?? []).find((x) => x.name === name);
  return g && resolveGroup(ctx, g);
}

function resolveGroup(ctx: AppContext, g: AppContext['config']['layerGroups'][number]): LayerGroup | undefined {
  if (ctx.registry.unrestricted.resolve(g.name)) return undefined;
  const members = g.layers.map((n) => ctx.registry.resolve(n)).filter((l): l is Layer => !!l);
  return members.length ? { name: g.name, title: g.title ?? g.name, abstract: g.abstract, members } : undefined;
}

/**
 * The parts of a layer group's legend: each member with its default style (the one GetMap draws
 * it with), in drawing order. With a scale, only the rules drawn at that scale, and members with
 * none left are left out. Throws StyleError for a member whose style configuration is broken.
 */
export function groupLegendParts(group: LayerGroup, scale?: number): LegendPart[] {
  const parts: LegendPart[] = [];
  for (const layer of group.members) {
    const ls = layerStyles(layer);
    let style = ls.styles.get(ls.defaultName)!;
    if (scale !== undefined) {
      style = { ...style, rules: style.rules.filter((r) => ruleActive(r, scale)) };
      if (!style.rules.some((r) => r.symbolizers.some((sym) => sym.kind !== 'text'))) continue;
    }
    parts.push({ layer, style });
  }
  return parts;
}

/** A LAYERS / QUERY_LAYERS entry: a layer, or a group's members. */
export function findLayers(ctx: AppContext, name: string, locator: string): { layers: Layer[]; group?: LayerGroup } {
  const group = findGroup(ctx, name);
  if (group) return { layers: group.members, group };
  return { layers: [findLayer(ctx, name, locator)] };
}

export interface MapParams {
  layers: RenderLayer[];
  crs: MapCrs;
  bbox: Extent;
  width: number;
  height: number;
  format: MapFormat;
  transparent: boolean;
  bgcolor: string;
}

/**
 * The styles an SLD document (SLD 1.0 / SE 1.1, the subset of docs/styles.md) gives per layer
 * name, from SLD_BODY or, when SLD_BODY is absent, fetched from the URL in SLD (sld-url.ts, only
 * when the configuration enables it). Each UserStyle is checked against its layer's columns here,
 * so that a mistake is the client's InvalidParameterValue (locator sld_body or sld) and not a
 * failed render.
 */
async function sldDocument(ctx: AppContext, kvp: Kvp): Promise<SldLayer[] | undefined> {
  const body = kvp.SLD_BODY;
  if (body !== undefined && body.trim() !== '') return sldLayers(ctx, body, 'SLD_BODY', 'sld_body');
  if (kvp.SLD !== undefined && kvp.SLD.trim() !== '') {
    const doc = await fetchSldDocument(ctx, kvp.SLD);
    return sldLayers(ctx, doc.text, `SLD ${doc.url}`, 'sld');
  }
  return undefined;
}

function sldLayers(ctx: AppContext, text: string, where: string, locator: string): SldLayer[] {
  let layers: SldLayer[];
  try {
    layers = parseSldLayers(text, where, xmlLimitsOf(ctx.config.limits));
  } catch (e) {
    if (e instanceof StyleError || e instanceof FilterError) throw new OwsException('InvalidParameterValue', e.message, locator);
    throw e;
  }
  checkLayerCount(ctx, layers.length, locator);
  for (const l of layers) {
    const layer = findLayer(ctx, l.layer, locator);
    if (l.namedStyle && !layerStyles(layer).styles.has(l.namedStyle) && l.namedStyle.toLowerCase() !== 'default') {
      throw new OwsException('StyleNotDefined', `${where} names style '${l.namedStyle}', which layer '${l.layer}' does not have`, locator);
    }
    try {
      if (l.style) checkStyleColumns(l.style, layer, `${where}, layer ${l.layer}`);
    } catch (e) {
      if (e instanceof StyleError) throw new OwsException('InvalidParameterValue', e.message, locator);
      throw e;
    }
  }
  return layers;
}

export async function parseMapParams(ctx: AppContext, kvp: Kvp, version: string, opts: { forInfo?: boolean } = {}): Promise<MapParams> {
  const sld = await sldDocument(ctx, kvp);
  // with SLD_BODY (or SLD), LAYERS may be left out: the document's NamedLayers are then drawn, in its order
  const layerNames = (sld && !kvp.LAYERS ? sld.map((l) => l.layer) : kvpList(required(kvp, 'LAYERS'))).filter((n) => n !== '');
  if (!layerNames.length) throw new OwsException('MissingParameterValue', "parameter 'LAYERS' lists no layer", 'layers');
  checkLayerCount(ctx, layerNames.length, 'layers');
  const styleNames = sld ? [] : kvpList(kvp.STYLES);
  if (styleNames.length && !(styleNames.length === layerNames.length || (styleNames.length === 1 && styleNames[0] === ''))) {
    throw new OwsException('StyleNotDefined', `STYLES lists ${styleNames.length} styles for ${layerNames.length} layers`, 'styles');
  }
  const layers = layerNames.flatMap((n, i) => {
    const style = styleNames[i] ?? '';
    const { layers: found, group } = findLayers(ctx, n, 'layers');
    if (group) {
      if (style && style.toLowerCase() !== 'default')
        throw new OwsException(
          'StyleNotDefined',
          `layer group '${n}' draws its layers with their default styles; ask for style '' or 'default'`,
          'styles',
        );
      return found.map((layer) => ({ layer, style: '' }));
    }
    const layer = found[0];
    // SLD_BODY (or SLD) decides the style of the layers it names (STYLES is then ignored, as in SLD 1.0 §6.4)
    const fromSld = sld?.find((l) => l.layer === n || l.layer === layer.name);
    if (fromSld) return [{ layer, style: fromSld.namedStyle ?? '', userStyle: fromSld.style }];
    if (style) {
      const ls = layerStyles(layer);
      if (!ls.styles.has(style) && style.toLowerCase() !== 'default')
        throw new OwsException(
          'StyleNotDefined',
          `style '${style}' is not defined for layer '${n}' (styles: ${ls.names.join(', ')})`,
          'styles',
        );
    }
    return { layer, style };
  });
  // a group counts its members
  checkLayerCount(ctx, layers.length, 'layers');
  const crsKey = version === '1.3.0' ? 'CRS' : 'SRS';
  const crsName = kvp[crsKey] ?? kvp[crsKey === 'CRS' ? 'SRS' : 'CRS'];
  if (!crsName) throw new OwsException('MissingParameterValue', `missing parameter '${crsKey}'`, crsKey.toLowerCase());
  const crs = resolveWmsCrs(crsName, version);
  if (!crs)
    throw new OwsException(
      version === '1.3.0' ? 'InvalidCRS' : 'InvalidSRS',
      `${crsKey} '${crsName}' is not supported`,
      crsKey.toLowerCase(),
    );
  const b = parseNumberList(required(kvp, 'BBOX'), 'bbox', 4);
  const bbox = crs.swapAxes ? { minx: b[1], miny: b[0], maxx: b[3], maxy: b[2] } : { minx: b[0], miny: b[1], maxx: b[2], maxy: b[3] };
  if (!(bbox.minx < bbox.maxx) || !(bbox.miny < bbox.maxy)) {
    throw new OwsException(
      'InvalidParameterValue',
      `BBOX '${kvp.BBOX}' is empty or inverted (min must be less than max on both axes)`,
      'bbox',
    );
  }
  const maxArea = ctx.config.limits.maxBboxAreaKm2;
  if (maxArea) {
    const area = bboxAreaKm2(bbox, crs.epsg);
    if (area > maxArea)
      throw new OwsException(
        'InvalidParameterValue',
        `BBOX covers ${Math.round(area).toLocaleString('en')} km², more than the ${maxArea.toLocaleString('en')} km² this server allows in one request`,
        'bbox',
      );
  }

  const lim = ctx.config.limits;
  required(kvp, 'WIDTH');
  required(kvp, 'HEIGHT');
  const width = parseIntParam(kvp, 'WIDTH', { min: 1, max: lim.maxImageWidth })!;
  const height = parseIntParam(kvp, 'HEIGHT', { min: 1, max: lim.maxImageHeight })!;
  const format = opts.forInfo ? parseFormat(kvp.FORMAT || 'image/png') : parseFormat(required(kvp, 'FORMAT'));
  return {
    layers,
    crs,
    bbox,
    width,
    height,
    format,
    transparent: parseBool(kvp.TRANSPARENT, 'transparent'),
    bgcolor: parseBgcolor(kvp.BGCOLOR),
  };
}
