#!/usr/bin/env node
/**
 * Region-scale renders of a big point layer with and without its overview (src/overviews/,
 * docs/rasteriser.md "Point layers"): the parcels' points on surface (1,000,000 points on the bench
 * database) with a two-rule style on `bati`, in a schema of their own (default `ovinc`, created by
 * --setup, where the overview tables go too). Single renders, median of --runs, and pixel agreement.
 * Uses the built code (npm run build) and DATABASE_URL.
 *
 *   DATABASE_URL=… node bench/overview-points.mjs [--setup] [--schema ovinc] [--runs 3] [--boxes 4] [--drop]
 */
import pg from 'pg';
import { requestList } from './lib/core.mjs';
import { startOverviews, timeDraw, comparePixels } from './lib/overview.mjs';

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
const { ctx, registry, m, readyMs, close } = await startOverviews(pool, {
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
const st = m.status().find((s) => s.layer === 'pts');
console.log(
  `overview ready in ${readyMs} ms: ${st.status}, build ${st.buildMs} ms, cells ${st.levels?.map((l) => l.cell).join(' / ')} m, rows ${st.levels?.map((l) => l.rows).join(' / ')}`,
);
const layers = [{ layer: registry.resolve('pts') }];
for (const crs of ['EPSG:2154', 'EPSG:3857']) {
  for (const r of requestList('wms', { scale: 'region', crs, layers: ['parcels'] }, nBoxes, 20260101)) {
    const o = {
      layers,
      bbox: { minx: r.bbox[0], miny: r.bbox[1], maxx: r.bbox[2], maxy: r.bbox[3] },
      epsg: Number(crs.slice(5)),
      width: 256,
      height: 256,
      format: 'image/png',
    };
    m.use = false;
    const d = await timeDraw(ctx.runtime.render, o, runs);
    m.use = true;
    const before = m.stats.overviewRenders;
    const v = await timeDraw(ctx.runtime.render, o, runs);
    const c = comparePixels(d.px, v.px);
    console.log(
      `${crs} ${r.bbox.map((x) => Math.round(x)).join(',')}: direct ${d.ms.toFixed(0)} ms, overview ${v.ms.toFixed(0)} ms${m.stats.overviewRenders > before ? '' : ' (NOT USED)'}; identical ${(c.same * 100).toFixed(1)} %, coverage IoU ${(c.iou * 100).toFixed(1)} %`,
    );
  }
}
await m.stop();
await close();
if (process.argv.includes('--drop')) {
  await pool.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
  await pool.query(`DELETE FROM geodata_tiles.changes WHERE table_name LIKE $1`, [`${S}.%`]);
  await pool.query(`DELETE FROM geodata_tiles.versions WHERE table_name LIKE $1`, [`${S}.%`]);
}
await pool.end();
