#!/usr/bin/env node
/**
 * Region-scale renders of a big point layer with and without its overview (src/render/overview.ts,
 * docs/rasteriser.md "Point layers"): the parcels' points on surface (1,000,000 points on the bench
 * database) with a two-rule style on `bati`, in a schema of their own (default `ovinc`, created by
 * --setup, where the overview tables go too). Single renders, median of --runs, and pixel agreement.
 * Uses the built code (npm run build) and DATABASE_URL.
 *
 *   DATABASE_URL=… node bench/overview-points.mjs [--setup] [--schema ovinc] [--runs 3] [--boxes 4] [--drop]
 */
import pg from 'pg';
import { pino } from 'pino';
import { validateConfig } from '../dist/src/config/index.js';
import { Registry } from '../dist/src/registry/registry.js';
import { drawMap } from '../dist/src/render/index.js';
import { OverviewManager } from '../dist/src/render/overview.js';
import { tileEngine } from '../dist/src/tiles/engine.js';
import { requestList } from './lib/core.mjs';

const arg = (k, d) => (process.argv.includes(`--${k}`) ? process.argv[process.argv.indexOf(`--${k}`) + 1] : d);
const S = arg('schema', 'ovinc');
if (!/^[a-z_][a-z0-9_]*$/.test(S)) throw new Error('bad --schema');
const runs = Number(arg('runs', 3));
const nBoxes = Number(arg('boxes', 4));
const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL');
const pool = new pg.Pool({ connectionString: url, max: 3 });
if (process.argv.includes('--setup')) {
  const t = Date.now();
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
  await pool.query(`DROP TABLE IF EXISTS ${S}.pts`);
  await pool.query(`CREATE TABLE ${S}.pts AS SELECT id, bati, ST_PointOnSurface(geom)::geometry(Point, 2154) AS geom FROM public.parcels`);
  await pool.query(`ALTER TABLE ${S}.pts ADD PRIMARY KEY (id)`);
  await pool.query(`CREATE INDEX ON ${S}.pts USING gist (geom)`);
  await pool.query(`ANALYZE ${S}.pts`);
  console.log(`made ${S}.pts in ${Date.now() - t} ms`);
}
const config = validateConfig({
  database: { schemas: [S] },
  layers: [
    {
      table: `${S}.pts`,
      name: 'pts',
      styles: {
        bati: {
          rules: [
            { title: 'bâti', filter: 'bati = true', point: { mark: 'circle', size: 5, fill: '#d62728' } },
            { title: 'non bâti', else: true, point: { mark: 'square', size: 4, fill: '#1f77b4' } },
          ],
        },
      },
    },
  ],
  overviews: { schema: S },
});
const registry = new Registry(pool, config);
await registry.reload();
const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const ctx = { config, pool, registry, log };
const m = new OverviewManager(ctx);
let t0 = Date.now();
await m.start();
await m.idle();
const st = m.status().find((s) => s.layer === 'pts');
console.log(`overview ready in ${Date.now() - t0} ms: ${st.status}, build ${st.buildMs} ms, cells ${st.levels?.map((l) => l.cell).join(' / ')} m, rows ${st.levels?.map((l) => l.rows).join(' / ')}`);
const layers = [{ layer: registry.resolve('pts') }];
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
async function time(o) {
  const ts = [];
  let canvas;
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    canvas = await drawMap({ pool }, o);
    canvas.data();
    ts.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms: median(ts), px: Buffer.from(canvas.data()) };
}
function compare(a, b) {
  let same = 0, covA = 0, covB = 0, both = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (Math.max(Math.abs(a[i] - b[i]), Math.abs(a[i + 1] - b[i + 1]), Math.abs(a[i + 2] - b[i + 2])) === 0) same++;
    const ca = a[i] + a[i + 1] + a[i + 2] < 765, cb = b[i] + b[i + 1] + b[i + 2] < 765;
    covA += ca; covB += cb; both += ca && cb;
  }
  return { same: same / (a.length / 4), iou: both / Math.max(1, covA + covB - both) };
}
for (const crs of ['EPSG:2154', 'EPSG:3857']) {
  for (const r of requestList('wms', { scale: 'region', crs, layers: ['parcels'] }, nBoxes, 20260101)) {
    const o = { layers, bbox: { minx: r.bbox[0], miny: r.bbox[1], maxx: r.bbox[2], maxy: r.bbox[3] }, epsg: Number(crs.slice(5)), width: 256, height: 256, format: 'image/png' };
    m.use = false;
    const d = await time(o);
    m.use = true;
    const before = m.stats.overviewRenders;
    const v = await time(o);
    const c = compare(d.px, v.px);
    console.log(`${crs} ${r.bbox.map((x) => Math.round(x)).join(',')}: direct ${d.ms.toFixed(0)} ms, overview ${v.ms.toFixed(0)} ms${m.stats.overviewRenders > before ? '' : ' (NOT USED)'}; identical ${(c.same * 100).toFixed(1)} %, coverage IoU ${(c.iou * 100).toFixed(1)} %`);
  }
}
await m.stop();
await tileEngine(ctx).close();
if (process.argv.includes('--drop')) {
  await pool.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
  await pool.query(`DELETE FROM geodata_tiles.changes WHERE table_name LIKE $1`, [`${S}.%`]);
  await pool.query(`DELETE FROM geodata_tiles.versions WHERE table_name LIKE $1`, [`${S}.%`]);
}
await pool.end();
