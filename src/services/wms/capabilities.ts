/** WMS GetCapabilities 1.3.0 (XSD) and 1.1.1 (DTD). */
import type { AppContext } from '../../context.js';
import { XmlWriter } from '../../ows/xml.js';
import { MAP_CRS_CODES } from '../../crs/offered.js';
import { OGC_PIXEL_SIZE, resolveWmsCrs, transformExtent } from '../../crs/index.js';
import type { Extent, Layer } from '../../registry/types.js';
import { defaultStyleFor, layerStyles, type LayerStyles, type Style } from '../../render/style.js';
import { groupLegendSize, legendSize } from '../../render/legend.js';
import { ADVERTISED_FORMATS, groupLegendParts, layerGroups, publishedLayers, type LayerGroup } from './params.js';

export const INFO_FORMATS = ['text/plain', 'text/html', 'application/json', 'application/vnd.ogc.gml'];

function fmt(n: number): string {
  return String(Math.round(n * 1e7) / 1e7);
}

function union(a: Extent | null, b: Extent | null): Extent | null {
  if (!a) return b;
  if (!b) return a;
  return { minx: Math.min(a.minx, b.minx), miny: Math.min(a.miny, b.miny), maxx: Math.max(a.maxx, b.maxx), maxy: Math.max(a.maxy, b.maxy) };
}

/** Bounding boxes per advertised CRS: [code, extent in x/y order]. */
function boxes(layer: { extent: Extent | null; srid: number }): [string, Extent][] {
  if (!layer.extent) return [];
  const out: [string, Extent][] = [];
  for (const code of MAP_CRS_CODES) {
    const crs = resolveWmsCrs(code, '1.3.0')!;
    try {
      out.push([code, transformExtent(layer.extent, layer.srid, crs.epsg)]);
    } catch {
      /* extent outside the CRS's domain */
    }
  }
  return out;
}

function scaleRange(style: Style): { min?: number; max?: number } {
  const rules = style.rules.filter((r) => r.symbolizers.some((s) => s.kind !== 'text'));
  if (!rules.length) return {};
  const min = Math.min(...rules.map((r) => r.minScale ?? 0));
  const max = Math.max(...rules.map((r) => r.maxScale ?? Infinity));
  return { min: min > 0 ? min : undefined, max: Number.isFinite(max) ? max : undefined };
}

export function capabilities(ctx: AppContext, version: string, base: string): string {
  const v13 = version === '1.3.0';
  const cfg = ctx.config.service;
  const url = `${base}/wms?`;
  const layers = publishedLayers(ctx);
  const w = new XmlWriter({ declaration: false });
  let head = '<?xml version="1.0" encoding="UTF-8"?>\n';
  // INSPIRE scenario 1 needs the service metadata record's URL; without it nothing is emitted
  const inspire = v13 && cfg.inspire?.metadataUrl ? cfg.inspire : undefined;
  if (v13) {
    w.start('WMS_Capabilities', {
      version: '1.3.0',
      xmlns: 'http://www.opengis.net/wms',
      'xmlns:xlink': 'http://www.w3.org/1999/xlink',
      'xmlns:sld': 'http://www.opengis.net/sld',
      'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
      ...(inspire
        ? {
            'xmlns:inspire_common': 'http://inspire.ec.europa.eu/schemas/common/1.0',
            'xmlns:inspire_vs': 'http://inspire.ec.europa.eu/schemas/inspire_vs/1.0',
          }
        : {}),
      'xsi:schemaLocation':
        'http://www.opengis.net/wms http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/sld_capabilities.xsd' +
        (inspire
          ? ' http://inspire.ec.europa.eu/schemas/inspire_vs/1.0 http://inspire.ec.europa.eu/schemas/inspire_vs/1.0/inspire_vs.xsd'
          : ''),
    });
  } else {
    head += '<!DOCTYPE WMT_MS_Capabilities SYSTEM "http://schemas.opengis.net/wms/1.1.1/WMS_MS_Capabilities.dtd">\n';
    w.start('WMT_MS_Capabilities', { version: '1.1.1' });
  }
  const online = (href: string) =>
    w.el('OnlineResource', {
      'xlink:type': 'simple',
      'xlink:href': href,
      ...(v13 ? { 'xmlns:xlink': undefined } : { 'xmlns:xlink': 'http://www.w3.org/1999/xlink' }),
    });

  // Service
  w.start('Service');
  w.el('Name', v13 ? 'WMS' : 'OGC:WMS');
  w.el('Title', cfg.title);
  w.el('Abstract', cfg.abstract);
  if (cfg.keywords.length) {
    w.start('KeywordList');
    for (const k of cfg.keywords) w.el('Keyword', k);
    w.end();
  }
  online(`${base}/wms`);
  const c = cfg.contact;
  if (c && Object.keys(c).length) {
    w.start('ContactInformation');
    if (c.person || c.organisation) {
      w.start('ContactPersonPrimary');
      w.el('ContactPerson', c.person ?? '');
      w.el('ContactOrganization', c.organisation ?? '');
      w.end();
    }
    if (c.position) w.el('ContactPosition', c.position);
    if (c.address || c.city || c.postcode || c.country) {
      w.start('ContactAddress');
      w.el('AddressType', 'postal');
      w.el('Address', c.address ?? '');
      w.el('City', c.city ?? '');
      w.el('StateOrProvince', '');
      w.el('PostCode', c.postcode ?? '');
      w.el('Country', c.country ?? '');
      w.end();
    }
    if (c.phone) w.el('ContactVoiceTelephone', c.phone);
    if (c.email) w.el('ContactElectronicMailAddress', c.email);
    w.end();
  }
  w.el('Fees', cfg.fees);
  w.el('AccessConstraints', cfg.accessConstraints);
  if (v13) {
    w.el('MaxWidth', ctx.config.limits.maxImageWidth);
    w.el('MaxHeight', ctx.config.limits.maxImageHeight);
  }
  w.end();

  // Capability
  w.start('Capability');
  w.start('Request');
  const op = (name: string, formats: string[]) => {
    w.start(name);
    for (const f of formats) w.el('Format', f);
    w.start('DCPType').start('HTTP');
    w.start('Get');
    online(url);
    w.end();
    w.start('Post');
    online(url);
    w.end();
    w.end().end();
    w.end();
  };
  op('GetCapabilities', [v13 ? 'text/xml' : 'application/vnd.ogc.wms_xml']);
  op('GetMap', ADVERTISED_FORMATS);
  op('GetFeatureInfo', INFO_FORMATS);
  op(v13 ? 'sld:GetLegendGraphic' : 'GetLegendGraphic', ['image/png']);
  w.end();
  w.start('Exception');
  for (const f of v13
    ? ['XML', 'INIMAGE', 'BLANK']
    : ['application/vnd.ogc.se_xml', 'application/vnd.ogc.se_inimage', 'application/vnd.ogc.se_blank'])
    w.el('Format', f);
  w.end();
  if (inspire) {
    // INSPIRE Technical Guidance for View Services, scenario 1: metadata URL + languages
    const lang = (inspire.language ?? cfg.language ?? 'fre').toLowerCase();
    w.start('inspire_vs:ExtendedCapabilities');
    const metadataUrl = () => {
      w.start('inspire_common:MetadataUrl');
      w.el('inspire_common:URL', inspire.metadataUrl!);
      w.el('inspire_common:MediaType', 'application/vnd.ogc.csw.GetRecordByIdResponse_xml');
      w.end();
    };
    const languages = () => {
      w.start('inspire_common:SupportedLanguages').start('inspire_common:DefaultLanguage').el('inspire_common:Language', lang).end().end();
      w.start('inspire_common:ResponseLanguage').el('inspire_common:Language', lang).end();
    };
    metadataUrl();
    languages();
    w.end();
  }

  // root layer
  const rootExtent = layers.reduce<Extent | null>((acc, l) => union(acc, l.wgs84Extent), null);
  w.start('Layer');
  w.el('Title', cfg.title);
  w.el('Abstract', cfg.abstract);
  for (const code of MAP_CRS_CODES) w.el(v13 ? 'CRS' : 'SRS', code);
  if (rootExtent) geoBox(w, rootExtent, v13);
  if (rootExtent) for (const [code, e] of boxes({ extent: rootExtent, srid: 4326 })) bbox(w, code, e, v13);
  for (const l of layers) layerElement(w, l, v13, base, online);
  for (const g of layerGroups(ctx)) groupElement(w, g, v13, base, online);
  w.end(); // root Layer
  w.end(); // Capability
  w.end();
  return head + w.toString();
}

function geoBox(w: XmlWriter, e: Extent, v13: boolean): void {
  if (v13) {
    w.start('EX_GeographicBoundingBox');
    w.el('westBoundLongitude', fmt(e.minx));
    w.el('eastBoundLongitude', fmt(e.maxx));
    w.el('southBoundLatitude', fmt(e.miny));
    w.el('northBoundLatitude', fmt(e.maxy));
    w.end();
  } else {
    w.el('LatLonBoundingBox', { minx: fmt(e.minx), miny: fmt(e.miny), maxx: fmt(e.maxx), maxy: fmt(e.maxy) });
  }
}

function bbox(w: XmlWriter, code: string, e: Extent, v13: boolean): void {
  if (v13) {
    if (code === 'CRS:84') return; // EX_GeographicBoundingBox says it; some clients dislike both
    const swap = resolveWmsCrs(code, '1.3.0')!.swapAxes;
    const [minx, miny, maxx, maxy] = swap ? [e.miny, e.minx, e.maxy, e.maxx] : [e.minx, e.miny, e.maxx, e.maxy];
    w.el('BoundingBox', { CRS: code, minx: fmt(minx), miny: fmt(miny), maxx: fmt(maxx), maxy: fmt(maxy) });
  } else {
    if (code === 'CRS:84') return;
    w.el('BoundingBox', { SRS: code, minx: fmt(e.minx), miny: fmt(e.miny), maxx: fmt(e.maxx), maxy: fmt(e.maxy) });
  }
}

/** A layer group: a named layer over the union of its members' extents (members stay listed on their own). */
function groupElement(w: XmlWriter, g: LayerGroup, v13: boolean, base: string, online: (href: string) => void): void {
  w.start('Layer', { queryable: g.members.some((l) => l.queryable) ? 1 : 0, opaque: 0 });
  w.el('Name', g.name);
  w.el('Title', g.title);
  w.el('Abstract', g.abstract ?? `Layer group: ${g.members.map((l) => l.name).join(', ')}`);
  const e = g.members.reduce<Extent | null>((acc, l) => union(acc, l.wgs84Extent), null);
  if (e) {
    geoBox(w, e, v13);
    for (const [code, b] of boxes({ extent: e, srid: 4326 })) bbox(w, code, b, v13);
  }
  // one style, its members' default styles, whose legend stacks theirs (GetLegendGraphic LAYER=<group>)
  w.start('Style');
  w.el('Name', 'default');
  w.el('Title', `${g.title} (default styles of its layers)`);
  let size: { width: number; height: number } | undefined;
  try {
    size = groupLegendSize(groupLegendParts(g));
  } catch {
    // a member's style configuration is broken (logged at start): no legend to advertise
  }
  if (size) {
    w.start('LegendURL', { width: size.width, height: size.height });
    w.el('Format', 'image/png');
    online(
      `${base}/wms?SERVICE=WMS&VERSION=${v13 ? '1.3.0' : '1.1.1'}&REQUEST=GetLegendGraphic&FORMAT=image/png&LAYER=${encodeURIComponent(g.name)}&STYLE=default`,
    );
    w.end();
  }
  w.end();
  w.end();
}

function layerElement(w: XmlWriter, l: Layer, v13: boolean, base: string, online: (href: string) => void): void {
  w.start('Layer', { queryable: l.queryable ? 1 : 0, opaque: 0 });
  w.el('Name', l.name);
  w.el('Title', l.title);
  if (l.abstract) w.el('Abstract', l.abstract);
  if (l.keywords.length) {
    w.start('KeywordList');
    for (const k of l.keywords) w.el('Keyword', k);
    w.end();
  }
  if (l.wgs84Extent) geoBox(w, l.wgs84Extent, v13);
  for (const [code, e] of boxes(l)) bbox(w, code, e, v13);
  let ls: LayerStyles;
  try {
    ls = layerStyles(l);
  } catch {
    // a broken style configuration (logged at start): advertise the default style only
    const d = defaultStyleFor(l.geometryType);
    ls = { names: ['default'], styles: new Map([['default', d]]), defaultName: 'default' };
  }
  for (const name of ls.names) {
    const s = ls.styles.get(name)!;
    w.start('Style');
    w.el('Name', name);
    w.el('Title', s.title);
    if (s.abstract) w.el('Abstract', s.abstract);
    const size = legendSize(s, l);
    w.start('LegendURL', { width: size.width, height: size.height });
    w.el('Format', 'image/png');
    online(
      `${base}/wms?SERVICE=WMS&VERSION=${v13 ? '1.3.0' : '1.1.1'}&REQUEST=GetLegendGraphic&FORMAT=image/png&LAYER=${encodeURIComponent(l.name)}&STYLE=${encodeURIComponent(name)}`,
    );
    w.end();
    w.end();
  }
  const range = scaleRange(ls.styles.get(ls.defaultName)!);
  if (v13) {
    if (range.min !== undefined) w.el('MinScaleDenominator', range.min);
    if (range.max !== undefined) w.el('MaxScaleDenominator', range.max);
  } else if (range.min !== undefined || range.max !== undefined) {
    // ScaleHint: ground size of the pixel diagonal
    const k = OGC_PIXEL_SIZE * Math.SQRT2;
    w.el('ScaleHint', { min: fmt((range.min ?? 0) * k), max: fmt(range.max !== undefined ? range.max * k : 1e12) });
  }
  w.end();
}
