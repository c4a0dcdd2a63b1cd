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
import { startOverviews, regionViews, directVsOverview, makeBenchTable, dropBenchSchema } from './lib/overview.mjs';
import { databaseUrl, flag, numOpt, schemaOpt } from './lib/cli.mjs';

const S = schemaOpt('ovinc');
const runs = numOpt('runs', 3);
const nBoxes = numOpt('boxes', 4);
const pool = new pg.Pool({ connectionString: databaseUrl(), max: 3 });
if (flag('setup')) {
  const ms = await makeBenchTable(
    pool,
    S,
    'pts',
    'SELECT id, bati, ST_PointOnSurface(geom)::geometry(Point, 2154) AS geom FROM public.parcels',
  );
  console.log(`made ${S}.pts in ${ms} ms`);
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
for (const { label, o } of regionViews([{ layer: registry.resolve('pts') }], nBoxes)) {
  const { d, v, c, used } = await directVsOverview(ctx, o, runs);
  console.log(
    `${label}: direct ${d.ms.toFixed(0)} ms, overview ${v.ms.toFixed(0)} ms${used ? '' : ' (NOT USED)'}; identical ${(c.same * 100).toFixed(1)} %, coverage IoU ${(c.iou * 100).toFixed(1)} %`,
  );
}
await m.stop();
await close();
if (flag('drop')) await dropBenchSchema(pool, S);
await pool.end();
