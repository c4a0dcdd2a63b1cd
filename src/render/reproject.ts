/**
 * Reprojection by one affine map where that is exact to the pixel. Over a street- or town-sized
 * view, a projection change (Lambert-93 → Web Mercator, …) is so close to affine that the best
 * affine fit from the layer's CRS straight to screen pixels misses the true positions by
 * hundredths of a pixel: the renderer then sends ST_Affine(geom, …) to PostGIS instead of
 * ST_Affine(ST_Transform(geom, …), …), and PostGIS skips PROJ's per-vertex work, which was most of
 * a Web Mercator map's database time (bench/cpu-split.mjs, docs/rasteriser.md).
 *
 * Exactness is checked, not assumed, on every map:
 *   - the fit is a least-squares affine map over a 9×9 grid of the layer-CRS search extent (the
 *     view plus the symbolizers' margin), each point projected with proj4 then to pixels; the
 *     largest residual on that grid must stay under APPROX_TOLERANCE_PX;
 *   - proj4 itself must agree with PostGIS (PROJ) for the CRS pair: measured once per pair on the
 *     layer's extent, and that disagreement, in pixels of the map, counts against the tolerance.
 * Larger views (region scale), CRS pairs proj4 does not know or computes differently (datum
 * grids), and points proj4 cannot project all fall back to ST_Transform.
 */
import type pg from 'pg';
import proj4 from 'proj4';
import type { Extent } from '../registry/types.js';

/** Largest error allowed, in pixels: under the 0.1 px step of the screen-space TWKB plus rounding. */
export const APPROX_TOLERANCE_PX = 0.125;

/** x' = a·x + b·y + xoff, y' = d·x + e·y + yoff (PostGIS ST_Affine's 2D parameters). */
export interface ScreenAffine {
  a: number;
  b: number;
  d: number;
  e: number;
  xoff: number;
  yoff: number;
  /** largest error found on the check grid, pixels (proj4's disagreement with PostGIS included) */
  errorPx: number;
}

const GRID = 9;

/** Solve the 3×3 normal equations of a least-squares plane fit (Gaussian elimination). */
function solve3(m: number[][], r: number[]): number[] | null {
  const a = m.map((row, i) => [...row, r[i]]);
  for (let i = 0; i < 3; i++) {
    let p = i;
    for (let j = i + 1; j < 3; j++) if (Math.abs(a[j][i]) > Math.abs(a[p][i])) p = j;
    [a[i], a[p]] = [a[p], a[i]];
    if (Math.abs(a[i][i]) < 1e-300) return null;
    for (let j = i + 1; j < 3; j++) {
      const q = a[j][i] / a[i][i];
      for (let k = i; k < 4; k++) a[j][k] -= q * a[i][k];
    }
  }
  const x = [0, 0, 0];
  for (let i = 2; i >= 0; i--) {
    let s = a[i][3];
    for (let j = i + 1; j < 3; j++) s -= a[i][j] * x[j];
    x[i] = s / a[i][i];
  }
  return x;
}

/**
 * The affine map from `from` (layer CRS) to the pixels of a map of `bbox` (output CRS `to`,
 * x/y order) and `width`×`height`, fitted over `search` (layer CRS) — or null when it would miss
 * by APPROX_TOLERANCE_PX or more anywhere on the check grid. `slack` is proj4's known
 * disagreement with PostGIS for the pair, in output-CRS units.
 */
export function approxScreenAffine(
  from: number,
  to: number,
  search: Extent,
  bbox: Extent,
  width: number,
  height: number,
  slack: number,
): ScreenAffine | null {
  if (!Number.isFinite(slack)) return null;
  const sx = width / (bbox.maxx - bbox.minx);
  const sy = height / (bbox.maxy - bbox.miny);
  const slackPx = slack * Math.max(sx, sy);
  if (slackPx >= APPROX_TOLERANCE_PX) return null;
  let fwd: proj4.Converter;
  try {
    fwd = proj4(`EPSG:${from}`, `EPSG:${to}`);
  } catch {
    return null;
  }
  // coordinates relative to the extent's centre keep the normal equations well conditioned
  const cx = (search.minx + search.maxx) / 2;
  const cy = (search.miny + search.maxy) / 2;
  const pts: number[] = []; // dx, dy, px, py
  for (let i = 0; i < GRID; i++) {
    for (let j = 0; j < GRID; j++) {
      const x = search.minx + ((search.maxx - search.minx) * i) / (GRID - 1);
      const y = search.miny + ((search.maxy - search.miny) * j) / (GRID - 1);
      let p: number[];
      try {
        p = fwd.forward([x, y]);
      } catch {
        return null;
      }
      if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) return null;
      pts.push(x - cx, y - cy, (p[0] - bbox.minx) * sx, (bbox.maxy - p[1]) * sy);
    }
  }
  const m = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  const rx = [0, 0, 0];
  const ry = [0, 0, 0];
  for (let k = 0; k < pts.length; k += 4) {
    const v = [pts[k], pts[k + 1], 1];
    for (let i = 0; i < 3; i++) {
      rx[i] += v[i] * pts[k + 2];
      ry[i] += v[i] * pts[k + 3];
      for (let j = 0; j < 3; j++) m[i][j] += v[i] * v[j];
    }
  }
  const fx = solve3(m, rx);
  const fy = solve3(m, ry);
  if (!fx || !fy) return null;
  let err = 0;
  for (let k = 0; k < pts.length; k += 4) {
    const ex = fx[0] * pts[k] + fx[1] * pts[k + 1] + fx[2] - pts[k + 2];
    const ey = fy[0] * pts[k] + fy[1] * pts[k + 1] + fy[2] - pts[k + 3];
    err = Math.max(err, Math.hypot(ex, ey));
  }
  const errorPx = err + slackPx;
  if (!(errorPx < APPROX_TOLERANCE_PX)) return null;
  // back to absolute layer coordinates: a·(x − cx) + b·(y − cy) + c = a·x + b·y + (c − a·cx − b·cy)
  return { a: fx[0], b: fx[1], xoff: fx[2] - fx[0] * cx - fx[1] * cy, d: fy[0], e: fy[1], yoff: fy[2] - fy[0] * cx - fy[1] * cy, errorPx };
}

const agreement = new Map<string, Promise<number>>();

/**
 * How far proj4 and PostGIS place the same points for a CRS pair (output-CRS units, the largest
 * of a 3×3 grid over `extent`), measured once per pair and process; Infinity when proj4 cannot
 * transform them or the query fails. Runs inside the caller's transaction (a savepoint keeps a
 * failure from aborting it).
 */
export function projAgreement(client: pg.PoolClient, from: number, to: number, extent: Extent): Promise<number> {
  const key = `${from}>${to}`;
  let hit = agreement.get(key);
  if (!hit) {
    hit = measureAgreement(client, from, to, extent);
    agreement.set(key, hit);
  }
  return hit;
}

async function measureAgreement(client: pg.PoolClient, from: number, to: number, e: Extent): Promise<number> {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      xs.push(e.minx + ((e.maxx - e.minx) * i) / 2);
      ys.push(e.miny + ((e.maxy - e.miny) * j) / 2);
    }
  }
  let ours: number[][];
  try {
    const fwd = proj4(`EPSG:${from}`, `EPSG:${to}`);
    ours = xs.map((x, i) => fwd.forward([x, ys[i]]));
  } catch {
    return Infinity;
  }
  try {
    await client.query('SAVEPOINT gd_proj');
    const r = await client.query(
      `SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(x, y), ${Math.trunc(from)}), ${Math.trunc(to)}) AS p, o
         FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS u(x, y, o)) s ORDER BY o`,
      [xs, ys],
    );
    await client.query('RELEASE SAVEPOINT gd_proj');
    let worst = 0;
    r.rows.forEach((row: { x: number; y: number }, i: number) => {
      worst = Math.max(worst, Math.hypot(row.x - ours[i][0], row.y - ours[i][1]));
    });
    return Number.isFinite(worst) && r.rows.length === xs.length ? worst : Infinity;
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT gd_proj').catch(() => undefined);
    agreement.delete(`${from}>${to}`);
    return Infinity;
  }
}
