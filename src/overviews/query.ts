/**
 * The renderer's side of the overviews: the SQL that reads an overview level for a map view, in
 * the row form of the renderer's layerQuery (src/render/index.ts), so that the renderer draws it
 * unchanged.
 */
import { compileFilter } from '../filter/sql.js';
import { qualifiedTable } from '../db/pool.js';
import type { Extent, Layer } from '../registry/types.js';
import type { Rule } from '../render/style.js';
import { num, type OverviewLevel } from './model.js';

/**
 * One overview level read for a view, in two index scans (sized TWKB, as layerQuery with
 * `sizes`, so that the renderer can aggregate the rows per rule combination):
 *  - rows at least a pixel wide or high (kept features; partial GiST index on sz > 0): drawn with
 *    their geometry, projected to the screen and simplified to half a pixel as layerQuery does;
 *  - smaller rows (cell points and kept features under a pixel) grouped per output pixel on the
 *    layer-CRS grid layerQuery uses, from their stored box centre (no geometry read), one point
 *    per pixel with the rule flags of the combination of most features in it (its dominant
 *    class), as layerQuery's per-pixel reduction; for point layers one point per pixel and
 *    combination, the dominant one drawn last.
 */
export function levelQuery(
  level: OverviewLevel,
  layer: Layer,
  rules: Rule[],
  o: { bbox: Extent; epsg: number; width: number; height: number },
  search: Extent,
  resN: number,
): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const t = qualifiedTable(level.layer.schema, level.layer.table);
  const env = `ST_MakeEnvelope(${p(search.minx)}::float8, ${p(search.miny)}::float8, ${p(search.maxx)}::float8, ${p(search.maxy)}::float8, ${num(layer.srid)})`;
  const inOut = (expr: string) => (layer.srid === o.epsg ? expr : `ST_Transform(${expr}, ${num(o.epsg)})`);
  const resx = (o.bbox.maxx - o.bbox.minx) / o.width;
  const resy = (o.bbox.maxy - o.bbox.miny) / o.height;
  const affine = (expr: string) =>
    `ST_Affine(${expr}, ${p(1 / resx)}::float8, 0, 0, ${p(-1 / resy)}::float8, ${p(-o.bbox.minx / resx)}::float8, ${p(o.bbox.maxy / resy)}::float8)`;
  const target = {
    fields: level.layer.fields,
    geometryColumn: 'geom',
    srid: layer.srid,
    primaryKey: layer.primaryKey,
    layerName: layer.name,
  };
  const ruleCols: string[] = [];
  const ruleNames: string[] = [];
  rules.forEach((r, i) => {
    if (!r.filter) return;
    ruleCols.push(`, coalesce((${compileFilter(r.filter, target, values)}), false) AS r${i}`);
    ruleNames.push(`, r${i}`);
  });
  const points = /POINT/.test(layer.geometryType);
  const lines = /LINESTRING/.test(layer.geometryType);
  // kept geometries stored already projected to the output CRS skip ST_Transform
  let screen = `ST_Simplify(${affine(level.outSrid === o.epsg ? 'geom_out' : inOut('geom'))}, 0.5, true)`;
  if (!lines) screen = `ST_ForcePolygonCW(${screen})`;
  screen = `ST_ClipByBox2D(${screen}, ST_MakeEnvelope(${num(-o.width)}, ${num(-o.height)}, ${num(2 * o.width)}, ${num(2 * o.height)}))`;
  const r = p(resN);
  const ox = p(search.minx);
  const oy = p(search.miny);
  const centre = `ST_SetSRID(ST_MakePoint(${ox}::float8 + (gx + 0.5) * ${r}::float8, ${oy}::float8 + (gy + 0.5) * ${r}::float8), ${num(layer.srid)})`;
  const kept = `SELECT ST_AsTWKB(${screen}, 1, 0, 0, true) AS g${ruleCols.join('')} FROM ${t} WHERE geom && ${env} AND sz > 0 AND sz >= ${r}::float8\n`;
  if (points) {
    // The direct render of points does not reduce them per pixel: every point is drawn with its
    // rule's mark where it is, feature by feature. Here a pixel gives one point per rule
    // combination found in it, at the mean place of its points (exactly in place when the pixel
    // holds one cell point). The pixels come in an order that does not follow the map (a hash of
    // the cell, as data order is to the map) and within a pixel by weight: the combination of
    // most points (its dominant class) is drawn last, on top, as the direct drawing of a dense
    // map shows it.
    const mean = `ST_SetSRID(ST_MakePoint(sum(cx * n) / sum(n), sum(cy * n) / sum(n)), ${num(layer.srid)})`;
    const text =
      kept +
      `UNION ALL\n` +
      `(SELECT ST_AsTWKB(${affine(inOut('p'))}, 1, 0, 0, true) AS g${ruleNames.join('')}\n` +
      `FROM (SELECT gx, gy, ${mean} AS p, sum(n) AS w${ruleNames.join('')}\n` +
      `      FROM (SELECT floor((cx - ${ox}::float8) / ${r}::float8) AS gx, floor((cy - ${oy}::float8) / ${r}::float8) AS gy, cx, cy, n${ruleCols.join('')}\n` +
      `            FROM ${t} WHERE geom && ${env} AND sz < ${r}::float8) q\n` +
      `      GROUP BY gx, gy${ruleNames.join('')}) c\n` +
      `${ruleNames.length ? `ORDER BY hashfloat8(gx) # hashfloat8(gy), gx, gy, w${ruleNames.join('')}` : ''})`;
    return { text, values };
  }
  if (!ruleNames.length) {
    const text =
      kept +
      `UNION ALL\n` +
      `SELECT ST_AsTWKB(${affine(inOut(centre))}, 1, 0, 0, true) AS g\n` +
      `FROM (SELECT floor((cx - ${ox}::float8) / ${r}::float8) AS gx, floor((cy - ${oy}::float8) / ${r}::float8) AS gy\n` +
      `      FROM ${t} WHERE geom && ${env} AND sz < ${r}::float8) q\n` +
      `GROUP BY gx, gy`;
    return { text, values };
  }
  // one point per pixel with the rule combination of most features in it (its dominant class),
  // made (transformed, encoded) for that combination only, after DISTINCT ON (docs/rasteriser.md)
  const text =
    kept +
    `UNION ALL\n` +
    `(SELECT ST_AsTWKB(${affine(inOut(centre))}, 1, 0, 0, true) AS g${ruleNames.join('')}\n` +
    `FROM (SELECT DISTINCT ON (gx, gy) gx, gy${ruleNames.join('')}\n` +
    `      FROM (SELECT gx, gy, sum(n) AS w${ruleNames.join('')}\n` +
    `            FROM (SELECT floor((cx - ${ox}::float8) / ${r}::float8) AS gx, floor((cy - ${oy}::float8) / ${r}::float8) AS gy, n${ruleCols.join('')}\n` +
    `                  FROM ${t} WHERE geom && ${env} AND sz < ${r}::float8) q\n` +
    `            GROUP BY gx, gy${ruleNames.join('')}) c\n` +
    `      ORDER BY gx, gy, w DESC${ruleNames.join('')}) d)`;
  return { text, values };
}
