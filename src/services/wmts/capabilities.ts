/** WMTS 1.0.0 capabilities (KVP and RESTful), valid against wmtsGetCapabilities_response.xsd. */
import { writeServiceIdentification, writeServiceProvider } from '../../ows/capabilities.js';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { XmlWriter } from '../../ows/xml.js';
import { layerStyles } from '../../render/style.js';
import { transformExtent } from '../../crs/index.js';
import { MATRIX_SETS, tileRange, type TileMatrixSet } from '../../tiles/matrixsets.js';

export const INFO_FORMATS = ['application/json', 'text/plain', 'text/html', 'application/vnd.ogc.gml'];

const num = (n: number) => String(Number(n.toPrecision(15)));

function operation(w: XmlWriter, name: string, kvpHref: string, restHref?: string): void {
  w.start('ows:Operation', { name }).start('ows:DCP').start('ows:HTTP');
  w.start('ows:Get', { 'xlink:href': kvpHref })
    .start('ows:Constraint', { name: 'GetEncoding' })
    .start('ows:AllowedValues')
    .el('ows:Value', 'KVP')
    .end()
    .end()
    .end();
  if (restHref)
    w.start('ows:Get', { 'xlink:href': restHref })
      .start('ows:Constraint', { name: 'GetEncoding' })
      .start('ows:AllowedValues')
      .el('ows:Value', 'RESTful')
      .end()
      .end()
      .end();
  w.end().end().end();
}

function limits(w: XmlWriter, layer: Layer, set: TileMatrixSet): void {
  const src = layer.extent;
  if (!src) return;
  let e;
  try {
    e = transformExtent(src, layer.srid, set.epsg);
  } catch {
    return;
  }
  const rows: [string, number, number, number, number][] = [];
  for (const m of set.matrices) {
    const r = tileRange(set, m.zoom, e);
    if (!r) return; // outside the set: no limits rather than wrong ones
    // the schema types MaxTileRow/MaxTileCol as positiveInteger: a 0 cannot be written, so no limits then
    if (r.maxRow === 0 || r.maxCol === 0) return;
    rows.push([m.id, r.minRow, r.maxRow, r.minCol, r.maxCol]);
  }
  w.start('TileMatrixSetLimits');
  for (const [id, minRow, maxRow, minCol, maxCol] of rows) {
    w.start('TileMatrixLimits')
      .el('TileMatrix', id)
      .el('MinTileRow', minRow)
      .el('MaxTileRow', maxRow)
      .el('MinTileCol', minCol)
      .el('MaxTileCol', maxCol)
      .end();
  }
  w.end();
}

export function wmtsCapabilities(ctx: AppContext, layers: Layer[], baseUrl: string): string {
  const s = ctx.config.service;
  const w = new XmlWriter();
  w.start('Capabilities', {
    xmlns: 'http://www.opengis.net/wmts/1.0',
    'xmlns:ows': 'http://www.opengis.net/ows/1.1',
    'xmlns:xlink': 'http://www.w3.org/1999/xlink',
    'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
    'xsi:schemaLocation': 'http://www.opengis.net/wmts/1.0 http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd',
    version: '1.0.0',
  });
  writeServiceIdentification(w, s, { type: 'OGC WMTS', versions: ['1.0.0'] });
  writeServiceProvider(w, s, baseUrl);
  const kvp = `${baseUrl}/wmts?`;
  const rest = `${baseUrl}/wmts/1.0.0/`;
  w.start('ows:OperationsMetadata');
  operation(w, 'GetCapabilities', kvp, `${rest}WMTSCapabilities.xml`);
  operation(w, 'GetTile', kvp, rest);
  operation(w, 'GetFeatureInfo', kvp);
  w.end();
  w.start('Contents');
  for (const l of layers) {
    w.start('Layer').el('ows:Title', l.title);
    if (l.abstract) w.el('ows:Abstract', l.abstract);
    if (l.wgs84Extent) {
      const e = l.wgs84Extent;
      w.start('ows:WGS84BoundingBox')
        .el('ows:LowerCorner', `${num(e.minx)} ${num(e.miny)}`)
        .el('ows:UpperCorner', `${num(e.maxx)} ${num(e.maxy)}`)
        .end();
    }
    w.el('ows:Identifier', l.name);
    const ls = layerStyles(l);
    for (const [name, st] of ls.styles) {
      w.start('Style', name === ls.defaultName ? { isDefault: 'true' } : {})
        .el('ows:Title', st.title || name)
        .el('ows:Identifier', name);
      w.el('LegendURL', {
        format: 'image/png',
        'xlink:href': `${baseUrl}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic&FORMAT=image/png&LAYER=${encodeURIComponent(l.name)}&STYLE=${encodeURIComponent(name)}`,
      });
      w.end();
    }
    w.el('Format', 'image/png');
    if (l.queryable) for (const f of INFO_FORMATS) w.el('InfoFormat', f);
    for (const set of MATRIX_SETS) {
      w.start('TileMatrixSetLink').el('TileMatrixSet', set.id);
      limits(w, l, set);
      w.end();
    }
    w.el('ResourceURL', {
      format: 'image/png',
      resourceType: 'tile',
      template: `${rest}${encodeURIComponent(l.name)}/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png`,
    });
    w.end();
  }
  for (const set of MATRIX_SETS) {
    w.start('TileMatrixSet').el('ows:Title', set.title).el('ows:Identifier', set.id).el('ows:SupportedCRS', set.crsUri);
    if (set.wellKnownScaleSet) w.el('WellKnownScaleSet', set.wellKnownScaleSet);
    for (const m of set.matrices) {
      w.start('TileMatrix')
        .el('ows:Identifier', m.id)
        .el('ScaleDenominator', num(m.scaleDenominator))
        .el('TopLeftCorner', set.latLonAxes ? `${num(set.origin[1])} ${num(set.origin[0])}` : `${num(set.origin[0])} ${num(set.origin[1])}`)
        .el('TileWidth', set.tileSize)
        .el('TileHeight', set.tileSize)
        .el('MatrixWidth', m.matrixWidth)
        .el('MatrixHeight', m.matrixHeight)
        .end();
    }
    w.end();
  }
  w.end();
  w.el('ServiceMetadataURL', { 'xlink:href': `${rest}WMTSCapabilities.xml` });
  w.end();
  return w.toString();
}
