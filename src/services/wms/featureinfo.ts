/** WMS GetFeatureInfo: the features under a pixel (with a pixel tolerance), in four formats. */
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import { kvpList, parseIntParam, required, type Kvp } from '../../ows/kvp.js';
import { XmlWriter, escapeText } from '../../ows/xml.js';
import { quoteIdent, qualifiedTable } from '../../db/pool.js';
import { scaleDenominator, transformExtent } from '../../crs/index.js';
import type { Layer } from '../../registry/types.js';
import { resolveStyle } from '../../render/index.js';
import { ruleActive } from '../../render/style.js';
import { INFO_FORMATS } from './capabilities.js';
import { checkLayerCount, findLayers, parseMapParams } from './params.js';

interface InfoFeature {
  id: string;
  props: Record<string, unknown>;
  geojson: string;
  gml: string;
}

interface LayerResult {
  layer: Layer;
  features: InfoFeature[];
}

export async function getFeatureInfo(ctx: AppContext, kvp: Kvp, version: string): Promise<{ body: string; contentType: string }> {
  const mp = await parseMapParams(ctx, kvp, version, { forInfo: true });
  const infoFormat = (kvp.INFO_FORMAT ?? 'text/plain').trim();
  const fmt =
    INFO_FORMATS.find((f) => f === infoFormat.toLowerCase()) ??
    (/gml/i.test(infoFormat) ? 'application/vnd.ogc.gml' : /geo\+?json|json/i.test(infoFormat) ? 'application/json' : undefined);
  if (!fmt)
    throw new OwsException(
      'InvalidFormat',
      `INFO_FORMAT '${infoFormat}' is not supported (supported: ${INFO_FORMATS.join(', ')})`,
      'info_format',
    );
  const qNames = kvpList(required(kvp, 'QUERY_LAYERS')).filter(Boolean);
  checkLayerCount(ctx, qNames.length, 'query_layers');
  const mapNames = new Set(mp.layers.map((l) => l.layer.name));
  const qLayers = qNames.flatMap((n) => {
    const { layers: found, group } = findLayers(ctx, n, 'query_layers');
    for (const l of found) {
      if (!mapNames.has(l.name)) throw new OwsException('LayerNotDefined', `query layer '${n}' is not in LAYERS`, 'query_layers');
    }
    // a group answers for its queryable members
    const queryable = found.filter((l) => l.queryable);
    if (!queryable.length)
      throw new OwsException('LayerNotQueryable', `${group ? 'layer group' : 'layer'} '${n}' is not queryable`, 'query_layers');
    return queryable;
  });
  const [ik, jk] = version === '1.3.0' ? ['I', 'J'] : ['X', 'Y'];
  const iv = kvp[ik] ?? kvp[ik === 'I' ? 'X' : 'I'];
  const jv = kvp[jk] ?? kvp[jk === 'J' ? 'Y' : 'J'];
  if (iv === undefined || iv === '') throw new OwsException('MissingParameterValue', `missing parameter '${ik}'`, ik.toLowerCase());
  if (jv === undefined || jv === '') throw new OwsException('MissingParameterValue', `missing parameter '${jk}'`, jk.toLowerCase());
  const i = Number(iv);
  const j = Number(jv);
  if (!/^\s*\d+\s*$/.test(iv) || i >= mp.width)
    throw new OwsException('InvalidPoint', `${ik}=${iv} is not a pixel column of a ${mp.width}-pixel-wide map`, ik.toLowerCase());
  if (!/^\s*\d+\s*$/.test(jv) || j >= mp.height)
    throw new OwsException('InvalidPoint', `${jk}=${jv} is not a pixel row of a ${mp.height}-pixel-high map`, jk.toLowerCase());
  const count = parseIntParam(kvp, 'FEATURE_COUNT', { min: 1, max: 1000 }) ?? 1;
  const tolPx = parseIntParam(kvp, 'BUFFER', { min: 0, max: 50 }) ?? 4;
  const resx = (mp.bbox.maxx - mp.bbox.minx) / mp.width;
  const resy = (mp.bbox.maxy - mp.bbox.miny) / mp.height;
  const x = mp.bbox.minx + (i + 0.5) * resx;
  const y = mp.bbox.maxy - (j + 0.5) * resy;
  const tol = tolPx * Math.max(resx, resy);
  const scale = scaleDenominator(mp.bbox, mp.width, mp.crs.epsg);
  const styleOf = new Map(mp.layers.map((l) => [l.layer.name, l.style]));
  const out = mp.crs.epsg;
  const results: LayerResult[] = [];
  // topmost layer first, as GeoServer and MapServer answer
  for (const layer of [...qLayers].reverse()) {
    const style = resolveStyle(layer, styleOf.get(layer.name));
    const visible = style.rules.some((r) => r.symbolizers.some((s) => s.kind !== 'text') && ruleActive(r, scale));
    if (!visible) {
      results.push({ layer, features: [] });
      continue;
    }
    const search = transformExtent({ minx: x - tol, miny: y - tol, maxx: x + tol, maxy: y + tol }, out, layer.srid);
    const g = quoteIdent(layer.geometryColumn);
    const go = layer.srid === out ? `t.${g}` : `ST_Transform(t.${g}, ${out})`;
    const pk = layer.primaryKey ? `t.${quoteIdent(layer.primaryKey)}::text` : 'NULL::text';
    const sql = `SELECT ${pk} AS fid, to_jsonb(t.*) - ${`'${layer.geometryColumn.replace(/'/g, "''")}'`} AS props,
        ST_AsGeoJSON(ST_Transform(t.${g}, 4326), 7) AS gj, ST_AsGML(2, ${go}, 8) AS gml
      FROM ${qualifiedTable(layer.schema, layer.table)} t
      WHERE t.${g} && ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8, ${layer.srid})
        AND ST_DWithin(${go}, ST_SetSRID(ST_MakePoint($5::float8, $6::float8), ${out}), $7::float8)
      ORDER BY ST_Distance(${go}, ST_SetSRID(ST_MakePoint($5::float8, $6::float8), ${out})), 1
      LIMIT $8`;
    const res = await ctx.pool.query(sql, [search.minx, search.miny, search.maxx, search.maxy, x, y, tol, count]);
    results.push({
      layer,
      features: res.rows.map((r) => ({ id: `${layer.name}.${r.fid ?? ''}`, props: r.props ?? {}, geojson: r.gj, gml: r.gml })),
    });
  }
  return format(fmt, results, mp.crs.code);
}

function valueText(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function format(fmt: string, results: LayerResult[], crsCode: string): { body: string; contentType: string } {
  switch (fmt) {
    case 'application/json': {
      const features = results.flatMap((r) =>
        r.features.map(
          (f) =>
            `{"type":"Feature","id":${JSON.stringify(f.id)},"layer":${JSON.stringify(r.layer.name)},"geometry":${f.geojson ?? 'null'},"properties":${JSON.stringify(f.props)}}`,
        ),
      );
      return { body: `{"type":"FeatureCollection","features":[${features.join(',')}]}`, contentType: 'application/json; charset=utf-8' };
    }
    case 'text/html': {
      let h = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>GetFeatureInfo</title></head><body>\n';
      for (const r of results) {
        if (!r.features.length) continue;
        const cols = r.layer.fields.map((f) => f.name).filter((n) => n !== r.layer.primaryKey); // the key is the id column
        h += `<table border="1"><caption>${escapeText(r.layer.title)}</caption>\n<tr><th>id</th>${cols.map((c) => `<th>${escapeText(c)}</th>`).join('')}</tr>\n`;
        for (const f of r.features)
          h += `<tr><td>${escapeText(f.id)}</td>${cols.map((c) => `<td>${escapeText(valueText(f.props[c]))}</td>`).join('')}</tr>\n`;
        h += '</table>\n';
      }
      h += '</body></html>\n';
      return { body: h, contentType: 'text/html; charset=utf-8' };
    }
    case 'application/vnd.ogc.gml': {
      const w = new XmlWriter();
      w.start('wfs:FeatureCollection', {
        'xmlns:wfs': 'http://www.opengis.net/wfs',
        'xmlns:gml': 'http://www.opengis.net/gml',
        'xmlns:geodata': 'http://geodata-server.org/geodata',
      });
      for (const r of results) {
        for (const f of r.features) {
          w.start('gml:featureMember');
          w.start(`geodata:${r.layer.name}`, { fid: f.id });
          for (const fld of r.layer.fields) {
            const v = f.props[fld.name];
            if (v !== null && v !== undefined) w.el(`geodata:${fld.name}`, valueText(v));
          }
          w.start(`geodata:${r.layer.geometryColumn}`)
            .raw((f.gml ?? '').replace('<gml:', `<gml:`).replace(/srsName="[^"]*"/, `srsName="${crsCode}"`))
            .end();
          w.end().end();
        }
      }
      w.end();
      return { body: w.toString(), contentType: 'application/vnd.ogc.gml; charset=utf-8' };
    }
    default: {
      let t = '';
      for (const r of results) {
        t += `Layer '${r.layer.name}'\n`;
        if (!r.features.length) t += '  no feature found\n';
        for (const f of r.features) {
          t += `  Feature ${f.id}:\n`;
          for (const fld of r.layer.fields) t += `    ${fld.name} = ${valueText(f.props[fld.name])}\n`;
        }
      }
      return { body: t, contentType: 'text/plain; charset=utf-8' };
    }
  }
}
