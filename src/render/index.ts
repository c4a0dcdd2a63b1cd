/**
 * The map renderer, independent of HTTP: one bbox query per layer through the GiST index,
 * reprojection, screen transform and generalisation to the pixel in PostGIS (ST_Transform →
 * ST_Affine → ST_Simplify → ST_AsTWKB at 0.1 px), antialiased drawing with Skia
 * (@napi-rs/canvas, chosen by measurement: docs/rasteriser.md), encoding to PNG (RGBA or 8-bit
 * paletted through sharp), JPEG or WebP.
 *
 *   renderMap(ctx, {layers, styles, bbox, epsg, width, height, format, transparent, bgcolor}) → Buffer
 *
 * The WMS GetMap handler and the tile cache both call it.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { compileFilter } from '../filter/sql.js';
import { filterTarget } from '../features/query.js';
import { quoteIdent, qualifiedTable } from '../db/pool.js';
import type { Extent, Layer } from '../registry/types.js';
import { ExtentError, scaleDenominator, transformExtent } from '../crs/index.js';
import { layerStyles, ruleActive, type Rule, type Style, type TextSymbolizer } from './style.js';
import {
  encodeCanvas,
  paintAndCut,
  paintAndEncode,
  paintMap,
  type LabelRow,
  type LayerData,
  type LayerRow,
  type MapFormat,
  type PaintOptions,
  type TileCut,
} from './draw.js';
import { cutInWorker, renderInWorker, WorkerRenderTimeout } from './workers.js';
import { approxScreenAffine, projAgreement, type ScreenAffine } from './reproject.js';
import { scanned } from './scan.js';
import { LINE_SPACING, labelMargin } from './labels.js';
import type { ReadRouter } from '../db/replicas.js';

export { encodeCanvas, type MapFormat };
export interface RenderLayer {
  layer: Layer;
  /** Style name; undefined or '' = the layer's default style. */
  style?: string;
  /** A style given with the request (WMS SLD_BODY), used instead of the named one. */
  userStyle?: Style;
}

export interface MapOptions {
  layers: RenderLayer[];
  /** Map extent in the output CRS, x/y order (lon/lat for geographic CRSs). */
  bbox: Extent;
  epsg: number;
  width: number;
  height: number;
  format: MapFormat;
  transparent?: boolean;
  /** Background colour, CSS form (#rrggbb). Default white. */
  bgcolor?: string;
  /** Deadline for the whole render (database statement timeout and drawing). */
  timeoutMs?: number;
  /** Always reproject with ST_Transform, never by the affine approximation (tests, comparisons). */
  exactReprojection?: boolean;
  /** When given, milliseconds spent per step are added to it (sql, decode, path, paint, raster, encode; bench/render-town.mjs). */
  timings?: Record<string, number>;
}

/** Add the time since `t0` (performance.now()) to `timings[key]`; returns now. */
function lap(timings: Record<string, number> | undefined, key: string, t0: number): number {
  const t = performance.now();
  if (timings) timings[key] = (timings[key] ?? 0) + t - t0;
  return t;
}

/**
 * Where a layer's rows may come from instead of its table: the overviews (src/overviews/) answer
 * with the SQL that reads a pre-generalised table in layerQuery's row form, or null.
 */
export interface LayerSource {
  query(
    layer: Layer,
    rules: Rule[],
    view: { bbox: Extent; epsg: number; width: number; height: number },
    margin: number,
  ): { text: string; values: unknown[] } | null;
}

/** What the renderer needs: the database pool, and (optionally) the source that may stand in for a layer's table. */
export interface RenderContext {
  pool: pg.Pool;
  /** Read replicas (src/db/replicas.ts): the map's queries run on one that has replayed the layers' last edits, else on the pool. */
  reads?: ReadRouter;
  /** Absent: every layer is drawn from its own table. */
  source?: LayerSource;
  /** false: no named prepared statements (a pooler in transaction mode hands each transaction another connection). */
  prepare?: boolean;
}

export class RenderTimeout extends Error {
  constructor() {
    super('the map took longer to render than the server allows');
    this.name = 'RenderTimeout';
  }
}

export class StyleNotFound extends Error {
  constructor(
    readonly layer: string,
    readonly style: string,
  ) {
    super(`style '${style}' is not defined for layer '${layer}'`);
  }
}

/** Resolve the Style object for a layer/style name pair (throws StyleNotFound). */
export function resolveStyle(layer: Layer, name?: string): Style {
  const ls = layerStyles(layer);
  const key = !name || (name.toLowerCase() === 'default' && !ls.styles.has(name)) ? ls.defaultName : name;
  const s = ls.styles.get(key);
  if (!s) throw new StyleNotFound(layer.name, name ?? '');
  return s;
}

/** Whether a layer's rows carry a PostGIS-computed anchor (lx, ly): polygon layers with point symbols (labels: labelQuery). */
function polygonAnchors(layer: Layer, rules: Rule[]): boolean {
  const gt = layer.geometryType;
  if (gt === 'POINT' || gt === 'MULTIPOINT' || gt === 'LINESTRING' || gt === 'MULTILINESTRING') return false;
  return rules.some((r) => r.symbolizers.some((s) => s.kind === 'point'));
}

/** The text symbolizers of rules, in rule order (the l<i> columns of labelQuery). */
function textSymbolizers(rules: Rule[]): TextSymbolizer[] {
  return rules.flatMap((r) => r.symbolizers.filter((s): s is TextSymbolizer => s.kind === 'text'));
}

/** Per-row bounding box of the geometry (from a LATERAL subquery), in polygon/line queries. */
const BOX = '_gd_l._gd_box';

/** A query's bound values: `p(v)` appends v and gives its placeholder. */
function binder() {
  const values: unknown[] = [];
  return {
    values,
    p: (v: unknown) => {
      values.push(v);
      return `$${values.length}`;
    },
  };
}

/** A view's resolution (map units per pixel) and its extent grown by `margin` pixels, in the layer's CRS. */
function searchExtent(layer: Layer, o: { epsg: number; bbox: Extent; width: number; height: number; margin: number }) {
  const resx = (o.bbox.maxx - o.bbox.minx) / o.width;
  const resy = (o.bbox.maxy - o.bbox.miny) / o.height;
  const grown = {
    minx: o.bbox.minx - o.margin * resx,
    miny: o.bbox.miny - o.margin * resy,
    maxx: o.bbox.maxx + o.margin * resx,
    maxy: o.bbox.maxy + o.margin * resy,
  };
  return { resx, resy, search: transformExtent(grown, o.epsg, layer.srid) };
}

/** Build the SQL for one layer; exported for GetFeatureInfo and benchmarks. */
export function layerQuery(
  layer: Layer,
  rules: Rule[],
  o: {
    epsg: number;
    bbox: Extent;
    width: number;
    height: number;
    margin: number;
    typicalSize?: number | null;
    sizes?: boolean;
    projSlack?: number;
  },
): { text: string; values: unknown[]; approx: ScreenAffine | null } {
  const { values, p } = binder();
  const g = quoteIdent(layer.geometryColumn);
  const { resx, resy, search } = searchExtent(layer, o);
  const box = (e: Extent) =>
    `ST_MakeEnvelope(${p(e.minx)}::float8, ${p(e.miny)}::float8, ${p(e.maxx)}::float8, ${p(e.maxy)}::float8, ${layer.srid})`;
  const env = box(search);
  const sx = 1 / resx;
  const sy = 1 / resy;
  const gt = layer.geometryType;
  const isPoint = gt === 'POINT' || gt === 'MULTIPOINT';
  const sw = search.maxx - search.minx;
  const sh = search.maxy - search.miny;
  // what reaches this far outside the view is clipped (street-scale views of huge polygons)
  const farExtent = { minx: search.minx - sw, miny: search.miny - sh, maxx: search.maxx + sw, maxy: search.maxy + sh };
  const exact = (expr: string) =>
    `ST_Affine(${layer.srid === o.epsg ? expr : `ST_Transform(${expr}, ${o.epsg})`}, ${p(sx)}::float8, 0, 0, ${p(-sy)}::float8, ${p(-o.bbox.minx * sx)}::float8, ${p(o.bbox.maxy * sy)}::float8)`;
  // Layer CRS → screen pixels in one affine map when the reprojection is that close to one
  // (src/render/reproject.ts): fitted over the far extent when it holds there, else over the
  // search extent. Only geometries lying wholly inside the fitted extent take it: a long road's
  // vertex kilometres away would be misplaced by the extrapolation, so such rows keep ST_Transform.
  let approx: ScreenAffine | null = null;
  let fitted = search;
  if (layer.srid !== o.epsg && o.projSlack !== undefined) {
    approx = approxScreenAffine(layer.srid, o.epsg, farExtent, o.bbox, o.width, o.height, o.projSlack);
    if (approx) fitted = farExtent;
    else approx = approxScreenAffine(layer.srid, o.epsg, search, o.bbox, o.width, o.height, o.projSlack);
  }
  const viaAffine = (a: ScreenAffine) => (expr: string) =>
    `ST_Affine(${expr}, ${p(a.a)}::float8, ${p(a.b)}::float8, ${p(a.d)}::float8, ${p(a.e)}::float8, ${p(a.xoff)}::float8, ${p(a.yoff)}::float8)`;
  const fast = approx ? viaAffine(approx) : exact;
  let fittedSql = '';
  const fittedBox = () => (fittedSql ||= box(fitted));
  // Per-pixel reduction of sub-pixel features (below) only pays when a good share of the
  // features is sub-pixel: at town and street scale it costs a second index scan and a per-row
  // box for a few percent of the rows (measured: 300 ms → 75 ms for 50,000 parcels, docs/rasteriser.md).
  const resN = Math.min(sw / (o.width + 2 * o.margin), sh / (o.height + 2 * o.margin));
  const reduce = !isPoint && (o.typicalSize == null || resN >= o.typicalSize / 2);
  let screen: string;
  // points lie inside the search extent, so inside the fitted one
  if (isPoint) screen = fast(g);
  else {
    // simplify to the pixel, and clip what reaches far outside the view
    const w = o.width;
    const h = o.height;
    // a layer drawn by the renderer's own scan converter (src/render/scan.ts) takes its rings as they
    // are: it fills even-odd and its cost per vertex is small, where Skia needed them oriented and
    // thinned (a fifth of PostgreSQL's time for a town map, measured: docs/rasteriser.md)
    const plain = scanned(rules);
    const orient = (e: string) => (!plain && gt !== 'LINESTRING' && gt !== 'MULTILINESTRING' ? `ST_ForcePolygonCW(${e})` : e);
    // (the tolerance is built only when used: a bound parameter must appear in the text)
    const simplify = (e: string, tol: () => string) => (plain ? e : `ST_Simplify(${e}, ${tol()}, true)`);
    // (built only when used: each expression adds its own parameters)
    let exactSql = '';
    // Through ST_Transform, simplified first to a tenth of a pixel in the layer's CRS: PROJ's
    // per-vertex work was most of a region map's road query in Web Mercator (75 → 35 ms of
    // PostgreSQL CPU, the same bytes out: what the tenth of a pixel drops, the half-pixel
    // simplification after it and the 0.1 px TWKB grid drop anyway; docs/rasteriser.md). The
    // tolerance is rounded to 3 significant digits, so that the tiles of a zoom level agree.
    const projected = () => (layer.srid === o.epsg ? g : `ST_Simplify(${g}, ${p(Number((0.1 * resN).toPrecision(3)))}::float8, true)`);
    const viaExact = () => (exactSql ||= orient(simplify(exact(projected()), () => '0.5')));
    const clip = () =>
      `ST_ClipByBox2D(${viaExact()}, ST_MakeEnvelope(${p(-w)}::float8, ${p(-h)}::float8, ${p(2 * w)}::float8, ${p(2 * h)}::float8))`;
    let inFitted = '';
    let beyondFitted: string | null = null;
    if (approx) {
      // Simplified to half a pixel in the layer's CRS, before the map and before any clip, so
      // that a feature crossing several tiles of a zoom level is simplified alike in each (the
      // tolerance, from the fit's scale, is rounded to 3 significant digits for the same reason);
      // when the fit holds over the far extent, what reaches beyond it is clipped to it in the
      // layer's CRS, so that every vertex sent is one the fit holds for.
      const unitsPerPx = 1 / Math.sqrt(Math.abs(approx.a * approx.e - approx.b * approx.d));
      const tol = Number((0.5 * unitsPerPx).toPrecision(3));
      const simple = simplify(g, () => `${p(tol)}::float8`);
      inFitted = `WHEN ${g} @ ${fittedBox()} THEN ${orient(fast(simple))} `;
      if (fitted === farExtent) beyondFitted = orient(fast(`ST_ClipByBox2D(${simple}, ${fittedBox()})`));
    }
    if (beyondFitted) screen = `CASE ${inFitted}ELSE ${beyondFitted} END`;
    else if (reduce) {
      const big = `ST_XMax(${BOX}) - ST_XMin(${BOX}) > ${p(sw * 2)}::float8 OR ST_YMax(${BOX}) - ST_YMin(${BOX}) > ${p(sh * 2)}::float8`;
      screen = `CASE WHEN ${big} THEN ${clip()} ${inFitted}ELSE ${viaExact()} END`;
    } else {
      // box tests only, no per-row box computation
      screen = `CASE ${inFitted}WHEN ${g} @ ${box(farExtent)} THEN ${viaExact()} ELSE ${clip()} END`;
    }
  }
  // `sizes`: each TWKB carries its byte size, so that concatenated geometries can be split (queryLayer)
  const twkb = (expr: string) => (o.sizes ? `ST_AsTWKB(${expr}, 1, 0, 0, true)` : `ST_AsTWKB(${expr}, 1)`);
  const cols = [`${twkb(screen)} AS g`];
  const target = filterTarget(layer);
  rules.forEach((r, i) => {
    if (r.filter) cols.push(`coalesce((${compileFilter(r.filter, target, values)}), false) AS r${i}`);
  });
  // Anchors for point symbols: points and lines get theirs from the screen geometry when drawn
  // (src/render/draw.ts: a line's is the middle of its visible part), polygons a point on their
  // surface from PostGIS, computed once per row (LATERAL … OFFSET 0). Labels: labelQuery.
  const anchors = polygonAnchors(layer, rules);
  let anchorJoin = '';
  if (anchors) {
    const lp = approx ? `CASE WHEN ${g} @ ${fittedBox()} THEN ${fast('_gd_a.p')} ELSE ${exact('_gd_a.p')} END` : fast('_gd_a.p');
    anchorJoin = ` CROSS JOIN LATERAL (SELECT ${lp} AS p OFFSET 0) _gd_s`;
    cols.push('ST_X(_gd_s.p) AS lx, ST_Y(_gd_s.p) AS ly');
  }
  const table = qualifiedTable(layer.schema, layer.table);
  const anchorJoins = anchors ? ` CROSS JOIN LATERAL (SELECT ST_PointOnSurface(${g}) AS p OFFSET 0) _gd_a${anchorJoin}` : '';
  if (!reduce) return { text: `SELECT ${cols.join(', ')} FROM ${table}${anchorJoins} WHERE ${g} && ${env}`, values, approx };
  // Sub-pixel features (bounding box under a pixel, tested on the box in the layer's CRS, before
  // any transformation) are grouped on a one-pixel grid in the layer's CRS with plain arithmetic,
  // and only one point per grid cell is transformed and sent: a region-wide view of a dense layer
  // sends about one row per pixel instead of one per feature. The box is computed once per row
  // (LATERAL … OFFSET 0 keeps the planner from inlining it four times).
  const r = p(resN);
  const cell = p(resN);
  const ox = p(search.minx);
  const oy = p(search.miny);
  const lateral = `CROSS JOIN LATERAL (SELECT ${g}::box2d AS _gd_box OFFSET 0) _gd_l`;
  const small = `(ST_XMax(${BOX}) - ST_XMin(${BOX}) < ${r}::float8 AND ST_YMax(${BOX}) - ST_YMin(${BOX}) < ${r}::float8)`;
  const ruleCols: string[] = [];
  const ruleNames: string[] = [];
  rules.forEach((rule, i) => {
    if (!rule.filter) return;
    ruleCols.push(`coalesce((${compileFilter(rule.filter, target, values)}), false) AS r${i}`);
    ruleNames.push(`r${i}`);
  });
  const nulls = anchors ? ['NULL::float8 AS lx, NULL::float8 AS ly'] : [];
  const cellCentre = `ST_SetSRID(ST_MakePoint(${ox}::float8 + (gx + 0.5) * ${cell}::float8, ${oy}::float8 + (gy + 0.5) * ${cell}::float8), ${layer.srid})`;
  const cells =
    `FROM (SELECT floor(((ST_XMin(${BOX}) + ST_XMax(${BOX})) / 2 - ${ox}::float8) / ${cell}::float8) AS gx,\n` +
    `             floor(((ST_YMin(${BOX}) + ST_YMax(${BOX})) / 2 - ${oy}::float8) / ${cell}::float8) AS gy${ruleCols.map((c) => `, ${c}`).join('')}\n` +
    `      FROM ${table} ${lateral} WHERE ${g} && ${env} AND ${small}) q\n`;
  const head = `SELECT ${cols.join(', ')} FROM ${table} ${lateral}${anchorJoins} WHERE ${g} && ${env} AND NOT ${small}\nUNION ALL\n`;
  const cellCols = (c: string[]) => [...c, ...nulls].map((x) => `, ${x}`).join('');
  // One point per pixel. With rule filters, the pixel takes the rule flags of the combination of
  // most features in it (its dominant class: a dense map shows the mix of its classes, as drawing
  // every feature in turn would, not the last rule's colour everywhere).
  // The cell's point is made (transformed, encoded) for the kept combination only, after
  // DISTINCT ON, not for every combination found in the pixel (docs/rasteriser.md).
  const names = ruleNames.map((c) => `, ${c}`).join('');
  const text = ruleNames.length
    ? head +
      `(SELECT ${twkb(fast(cellCentre))} AS g${cellCols(ruleNames)}\n` +
      `FROM (SELECT DISTINCT ON (gx, gy) gx, gy${names}\n` +
      `      FROM (SELECT gx, gy, count(*) AS n${names}\n` +
      `            ${cells.replace(/\n {6}/g, '\n                  ')}            GROUP BY gx, gy${names}) c\n` +
      `      ORDER BY gx, gy, n DESC${names}) d)`
    : head + `SELECT ${twkb(fast(cellCentre))} AS g${cellCols([])}\n${cells}GROUP BY gx, gy`;
  return { text, values, approx };
}

/**
 * The label candidates of one layer (src/render/labels.ts): one row per candidate anchor within
 * `margin` pixels of the map (labelMargin), with the rule flags (r<i>), the label texts (l<i>, of
 * textSymbolizers(rules)), the anchor on the map (lx, ly, exact ST_Transform: never the view's
 * affine fit, so that every map puts it on the same pixel), in the layer's CRS (wx, wy) and the
 * feature's size. Anchors come from the whole geometry: the point (a multipoint's first), a
 * polygon's ST_PointOnSurface, and along each part of a line one point in the middle of each of
 * round(length / LINE_SPACING px) equal stretches (length in the map's CRS, at the map's scale).
 * null when no active rule labels.
 */
export function labelQuery(
  layer: Layer,
  rules: Rule[],
  o: { epsg: number; bbox: Extent; width: number; height: number; margin: number },
): { text: string; values: unknown[]; textRules: TextSymbolizer[] } | null {
  const textRules = textSymbolizers(rules);
  if (!textRules.length) return null;
  const { values, p } = binder();
  const g = quoteIdent(layer.geometryColumn);
  const { resx, resy, search } = searchExtent(layer, o);
  const env = `ST_MakeEnvelope(${p(search.minx)}::float8, ${p(search.miny)}::float8, ${p(search.maxx)}::float8, ${p(search.maxy)}::float8, ${layer.srid})`;
  const inMap = (e: string) => (layer.srid === o.epsg ? e : `ST_Transform(${e}, ${o.epsg})`);
  const gt = layer.geometryType;
  const points = `SELECT ST_GeometryN(${g}, 1) AS p, 0::float8 AS size`;
  const surfaces = `SELECT ST_PointOnSurface(${g}) AS p, ST_Area(${g}) AS size`;
  // (a function: its parameter is bound only when the query uses it)
  const lines = () =>
    `SELECT ST_LineInterpolatePoint(_gd_d.geom, (_gd_i + 0.5) / _gd_d.n) AS p, ST_Length(${g}) AS size ` +
    `FROM (SELECT geom, greatest(1, round(ST_Length(${inMap('geom')}) / ${p(LINE_SPACING * resx)}::float8))::int AS n FROM ST_Dump(${g})) _gd_d ` +
    `CROSS JOIN generate_series(0, _gd_d.n - 1) _gd_i`;
  const candidates =
    gt === 'POINT' || gt === 'MULTIPOINT'
      ? points
      : gt === 'LINESTRING' || gt === 'MULTILINESTRING'
        ? lines()
        : gt === 'POLYGON' || gt === 'MULTIPOLYGON'
          ? surfaces
          : `${points} WHERE ST_Dimension(${g}) = 0 UNION ALL ${surfaces} WHERE ST_Dimension(${g}) = 2 ` +
            `UNION ALL SELECT * FROM (${lines()}) _gd_l WHERE ST_Dimension(${g}) = 1`;
  const screen = `ST_Affine(${inMap('_gd_c.p')}, ${p(1 / resx)}::float8, 0, 0, ${p(-1 / resy)}::float8, ${p(-o.bbox.minx / resx)}::float8, ${p(o.bbox.maxy / resy)}::float8)`;
  const fieldNames = new Set(layer.fields.map((f) => f.name));
  const target = filterTarget(layer);
  const cols: string[] = [];
  const conds: string[] = [];
  rules.forEach((r, i) => {
    if (r.filter) cols.push(`coalesce((${compileFilter(r.filter, target, values)}), false) AS r${i}`);
  });
  textRules.forEach((t, i) => {
    const c = fieldNames.has(t.label) ? `${quoteIdent(t.label)}::text` : 'NULL::text';
    cols.push(`${c} AS l${i}`);
    conds.push(`${c} IS NOT NULL`);
  });
  // only the features some labelling rule may apply to, when every such rule has a filter
  const labelling = rules.filter((r) => r.symbolizers.some((s) => s.kind === 'text'));
  let which = `(${conds.join(' OR ')})`;
  if (labelling.every((r) => r.filter && !r.else))
    which += ` AND (${labelling.map((r) => `coalesce((${compileFilter(r.filter!, target, values)}), false)`).join(' OR ')})`;
  cols.push('ST_X(_gd_s.s) AS lx, ST_Y(_gd_s.s) AS ly, ST_X(_gd_c.p) AS wx, ST_Y(_gd_c.p) AS wy, _gd_c.size AS size');
  const table = qualifiedTable(layer.schema, layer.table);
  const text =
    `SELECT ${cols.join(', ')} FROM ${table} CROSS JOIN LATERAL (${candidates}) _gd_c ` +
    `CROSS JOIN LATERAL (SELECT ${screen} AS s OFFSET 0) _gd_s ` +
    `WHERE ${g} && ${env} AND _gd_c.p && ${env} AND ${which}`;
  return { text, values, textRules };
}

/** Prepared render statements per connection, at most MAX_PREPARED each (then queries go unnamed). */
const prepared = new WeakMap<pg.PoolClient, Set<string>>();
const MAX_PREPARED = 200;
/** A number per Layer object: a registry reload (new objects, maybe new column types) gets new statements. */
const layerIds = new WeakMap<Layer, number>();
let nextLayerId = 1;

/**
 * The name to prepare a render query under on this connection, or undefined. A map's queries
 * differ from the previous map's only in their parameters: preparing them once per connection
 * saves PostgreSQL's parse and plan of every query (0.4–0.8 ms of its CPU per street map with
 * three layers, bench/.work measurements in docs/rasteriser.md). The name is a hash of the text.
 */
function statementName(client: pg.PoolClient, layer: Layer, text: string): string | undefined {
  let set = prepared.get(client);
  if (!set) prepared.set(client, (set = new Set()));
  let id = layerIds.get(layer);
  if (id === undefined) layerIds.set(layer, (id = nextLayerId++));
  const name = `gd_r${id}_${createHash('sha1').update(text).digest('base64url').slice(0, 22)}`;
  if (set.has(name)) return name;
  if (set.size >= MAX_PREPARED) return undefined;
  set.add(name);
  return name;
}

const typicalSizes = new WeakMap<Layer, Promise<number | null>>();

/**
 * The median size (larger side of the bounding box, layer CRS units) of a sample of up to 1,000
 * features of a line or polygon layer, measured once per layer object (the registry builds new
 * ones on reload). null when the layer is empty or the sample fails: the renderer then always
 * reduces sub-pixel features per pixel.
 */
export function typicalFeatureSize(client: pg.PoolClient, layer: Layer): Promise<number | null> {
  let hit = typicalSizes.get(layer);
  if (!hit) {
    const g = quoteIdent(layer.geometryColumn);
    const est = layer.rowEstimate ?? 0;
    // a block sample of about 2,000 rows on large tables, the first rows of small ones
    const sample = est > 20000 ? ` TABLESAMPLE SYSTEM (${Math.min(100, (2000 / est) * 100).toFixed(4)})` : '';
    const sql =
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b))) AS m ` +
      `FROM (SELECT ${g}::box2d AS b FROM ${qualifiedTable(layer.schema, layer.table)}${sample} WHERE ${g} IS NOT NULL LIMIT 1000) s`;
    hit = client
      .query('SAVEPOINT gd_size')
      .then(() => client.query(sql))
      .then(async (r) => {
        await client.query('RELEASE SAVEPOINT gd_size');
        const m = r.rows[0]?.m;
        return typeof m === 'number' && m > 0 ? m : null;
      })
      .catch(async () => {
        await client.query('ROLLBACK TO SAVEPOINT gd_size').catch(() => undefined);
        typicalSizes.delete(layer);
        return null;
      });
    typicalSizes.set(layer, hit);
  }
  return hit;
}

/**
 * Without labels, the features come as one row: their sized TWKB concatenated by string_agg, each
 * preceded by its rule flags as a bit mask of `maskBytes(rules)` bytes (bit i of the mask: the
 * i-th filtered rule matches). Parsing one row per feature in `pg` (and the garbage it left) cost
 * more than the query at town scale (docs/rasteriser.md); one row (rather than one per rule
 * combination) keeps the features in the order of the data, which SE draws them in. The row comes
 * as base64 text: `pg` reads every value as text (bytea as hex, twice its bytes, decoded from a
 * string as long again), and base64's third more costs Node about half what hex did (measured).
 */
function aggregated(text: string, rules: Rule[]): string {
  const flags = rules.flatMap((r, i) => (r.filter ? [`r${i}`] : []));
  if (!flags.length) return `SELECT encode(string_agg(g, ''::bytea), 'base64') AS g FROM (${text}) _gd_q`; // string_agg skips NULLs
  const bytes: string[] = [];
  for (let b = 0; b * 8 < flags.length; b++) {
    const bits = flags.slice(b * 8, b * 8 + 8).map((f, k) => (k ? `(${f}::int << ${k})` : `${f}::int`));
    bytes.push(`set_byte('\\x00'::bytea, 0, ${bits.join(' | ')})`);
  }
  // mask || NULL is NULL: a feature without geometry is skipped whole
  return `SELECT encode(string_agg(${bytes.join(' || ')} || g, ''::bytea), 'base64') AS g FROM (${text}) _gd_q`;
}

/** Bytes of rule mask before each feature of an aggregated row. */
export function maskBytes(rules: Rule[]): number {
  return Math.ceil(rules.filter((r) => r.filter).length / 8);
}

async function queryLayer(
  client: pg.PoolClient,
  layer: Layer,
  rules: Rule[],
  o: MapOptions,
  margin: number,
  labelMarginPx: number,
  pre: { text: string; values: unknown[] } | null,
  shareable: boolean,
): Promise<LayerData> {
  const gt = layer.geometryType;
  // one row per feature when it carries an anchor; else all features in one row
  const labels = polygonAnchors(layer, rules);
  // `pre` (an overview's query, sized TWKB) serves only rows without anchors
  if (labels) pre = null;
  const typicalSize = pre || gt === 'POINT' || gt === 'MULTIPOINT' ? null : await typicalFeatureSize(client, layer);
  const projSlack =
    pre || layer.srid === o.epsg || o.exactReprojection
      ? undefined
      : await projAgreement(client, layer.srid, o.epsg, layer.extent ?? transformExtent(o.bbox, o.epsg, layer.srid));
  const q =
    pre ??
    layerQuery(layer, rules, {
      epsg: o.epsg,
      bbox: o.bbox,
      width: o.width,
      height: o.height,
      margin,
      typicalSize,
      sizes: !labels,
      projSlack,
    });
  if (o.timings && 'approx' in q && q.approx) o.timings.approx = (o.timings.approx ?? 0) + 1;
  const t = performance.now();
  const text = labels ? q.text : aggregated(q.text, rules);
  // a configured style's query (not an overview's, not SLD_BODY's) is a prepared statement of the connection
  const name = shareable && !pre ? statementName(client, layer, text) : undefined;
  const res = await client.query({ name, text, values: q.values });
  lap(o.timings, 'sql', t);
  const rows: LayerRow[] = [];
  for (const row of res.rows) {
    if (!row.g) continue;
    if (!labels) {
      rows.push({ g: Buffer.from(row.g as string, 'base64'), match: [], many: true, mask: maskBytes(rules) });
      continue;
    }
    const match = rules.map((r, i) => (r.filter ? row[`r${i}`] === true : true));
    rows.push({ g: row.g, match, many: false, lx: row.lx ?? null, ly: row.ly ?? null });
  }
  return { rules, ...(await queryLabels(client, layer, rules, o, labelMarginPx, shareable)), rows };
}

/** The layer's label candidates (labelQuery), with the rule flags shared by candidates alike. */
async function queryLabels(
  client: pg.PoolClient,
  layer: Layer,
  rules: Rule[],
  o: MapOptions,
  margin: number,
  shareable: boolean,
): Promise<Pick<LayerData, 'textRules' | 'labels'>> {
  const q = labelQuery(layer, rules, { epsg: o.epsg, bbox: o.bbox, width: o.width, height: o.height, margin });
  if (!q) return { textRules: [], labels: [] };
  const t = performance.now();
  const name = shareable ? statementName(client, layer, q.text) : undefined;
  const res = await client.query({ name, text: q.text, values: q.values });
  lap(o.timings, 'sql', t);
  const matches = new Map<string, boolean[]>();
  const labels: LabelRow[] = [];
  for (const row of res.rows) {
    const m = rules.map((r, i) => (r.filter ? row[`r${i}`] === true : true));
    const key = m.map(Number).join('');
    let match = matches.get(key);
    if (!match) matches.set(key, (match = m));
    labels.push({
      match,
      texts: q.textRules.map((_, i) => row[`l${i}`] ?? null),
      x: row.lx,
      y: row.ly,
      wx: row.wx,
      wy: row.wy,
      size: row.size ?? 0,
    });
  }
  return { textRules: q.textRules, labels };
}

/** Run every layer's query in one read-only transaction; the layers' data in drawing order (exported for measurements: bench/). */
export async function queryLayers(rc: RenderContext, o: MapOptions): Promise<LayerData[]> {
  if (rc.reads) {
    // on a replica that has replayed the layers' last edits (else the primary); run again on the primary if the replica fails
    const tables = o.layers.map((l) => `${l.layer.schema}.${l.layer.table}`);
    return rc.reads.run(tables, (client) => queryLayersOn(client, rc, o));
  }
  const client = await rc.pool.connect();
  try {
    return await queryLayersOn(client, rc, o);
  } finally {
    client.release();
  }
}

async function queryLayersOn(client: pg.PoolClient, rc: RenderContext, o: MapOptions): Promise<LayerData[]> {
  const scale = scaleDenominator(o.bbox, o.width, o.epsg);
  const deadline = o.timeoutMs ? Date.now() + o.timeoutMs : Infinity;
  const layers: LayerData[] = [];
  let ok = false;
  try {
    // one round trip (the timeout is a number written by us, not request text);
    // no parallel workers: starting them costs ~30 ms, more than most map queries take (measured)
    const timeout = o.timeoutMs ? Math.max(1, Math.floor(o.timeoutMs)) : 0;
    await client.query(
      `BEGIN READ ONLY; SET LOCAL statement_timeout = ${Number.isSafeInteger(timeout) ? timeout : 0}; SET LOCAL max_parallel_workers_per_gather = 0`,
    );
    const active = o.layers.map((rl) => {
      const style = rl.userStyle ?? resolveStyle(rl.layer, rl.style);
      return style.rules.filter((r) => ruleActive(r, scale));
    });
    // label candidates are read further out: labels of all layers are placed together (src/render/labels.ts)
    const labelMarginPx = labelMargin(active.flatMap(textSymbolizers));
    for (const [n, rl] of o.layers.entries()) {
      const rules = active[n];
      if (!rules.length) continue;
      let margin = 2;
      for (const r of rules)
        for (const s of r.symbolizers)
          margin = Math.max(margin, s.kind === 'point' ? s.size : s.kind === 'text' ? 0 : s.kind === 'line' ? s.width : s.strokeWidth);
      try {
        // the context's layer source (the overviews, src/overviews/): at coarse scales a pre-generalised table of a big layer stands in for it
        const pre = rc.source?.query(rl.layer, rules, o, margin) ?? null;
        layers.push(await queryLayer(client, rl.layer, rules, o, margin, labelMarginPx, pre, !rl.userStyle && rc.prepare !== false));
      } catch (e) {
        // the map extent has no image in the layer's CRS (e.g. a whole-world view): nothing to draw
        if (e instanceof ExtentError) continue;
        throw e;
      }
      if (Date.now() > deadline) throw new RenderTimeout();
    }
    await client.query('COMMIT');
    ok = true;
  } catch (e) {
    if ((e as { code?: string }).code === '57014') throw new RenderTimeout();
    throw e;
  } finally {
    if (!ok) await client.query('ROLLBACK').catch(() => undefined);
  }
  return layers;
}

function paintOptions(o: MapOptions) {
  return { width: o.width, height: o.height, format: o.format, transparent: o.transparent, bgcolor: o.bgcolor };
}

/** Draw every layer on a canvas in this thread; returns the canvas (tests: the reference for the workers' images) — see renderMap. */
export async function drawMap(rc: RenderContext, o: MapOptions) {
  const layers = await queryLayers(rc, o);
  return paintMap(layers, paintOptions(o), o.timings);
}

/**
 * The queries here, the drawing and encoding in a render worker when the pool runs
 * (src/render/workers.ts: `inWorker` returns null when it does not), else in this thread (`here`);
 * past `o.timeoutMs` either way, RenderTimeout.
 */
async function drawOffThread<T>(
  rc: RenderContext,
  o: MapOptions,
  inWorker: (layers: LayerData[], p: PaintOptions, deadline: number) => Promise<T> | null,
  here: (layers: LayerData[], p: PaintOptions) => T | Promise<T>,
): Promise<T> {
  const layers = await queryLayers(rc, o);
  const p = paintOptions(o);
  const deadline = o.timeoutMs ? Date.now() + o.timeoutMs : Infinity;
  const job = inWorker(layers, p, deadline);
  if (job) {
    return job.catch((e) => {
      throw e instanceof WorkerRenderTimeout ? new RenderTimeout() : e;
    });
  }
  if (Date.now() > deadline) throw new RenderTimeout();
  return here(layers, p);
}

/** Render a map to an encoded image (drawOffThread). */
export function renderMap(rc: RenderContext, o: MapOptions): Promise<Buffer> {
  return drawOffThread(
    rc,
    o,
    (layers, p, deadline) => renderInWorker(layers, p, deadline, o.timings),
    (layers, p) => paintAndEncode(layers, p, o.timings),
  );
}

/** Render a metatile and cut it into tiles, a PNG each, row by row (drawOffThread). */
export function renderMetatile(rc: RenderContext, o: MapOptions, cut: TileCut): Promise<Buffer[]> {
  return drawOffThread(
    rc,
    o,
    (layers, p, deadline) => cutInWorker(layers, p, cut, deadline, o.timings),
    (layers, p) => paintAndCut(layers, p, cut, o.timings),
  );
}

export { layerStyles, resolveStyle as styleOf };
