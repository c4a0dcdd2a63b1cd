#!/usr/bin/env node
/**
 * Region-scale renders of a big layer with and without its pre-generalised overview
 * (src/overviews/, docs/rasteriser.md): build cost, single-render timings (median of
 * --runs) and how many pixels differ. Uses the built code (npm run build) and DATABASE_URL
 * (e.g. the 1,000,000-parcel bench database).
 *
 *   DATABASE_URL=… node bench/overview.mjs [--runs 3] [--boxes 6] [--rebuild] [--layers parcels,roads,pois]
 */
import pg from 'pg';
import { startOverviews, regionViews, directVsOverview } from './lib/overview.mjs';
import { databaseUrl, flag, numOpt, opt } from './lib/cli.mjs';

const runs = numOpt('runs', 3);
const nBoxes = numOpt('boxes', 6);
const layerNames = opt('layers', 'parcels').split(',');
const pool = new pg.Pool({ connectionString: databaseUrl(), max: 3 });
const { ctx, registry, m, readyMs, close } = await startOverviews(pool, { overviews: { rebuildDelayMs: 1000 } });
let ready = readyMs;
if (flag('rebuild')) {
  const t0 = Date.now();
  await m.refresh(registry.resolve('parcels'));
  ready = Date.now() - t0;
}
console.log(`overview ready in ${ready} ms`);
console.log(JSON.stringify(m.status(), null, 1));

for (const { label, o } of regionViews(
  layerNames.map((n) => ({ layer: registry.resolve(n) })),
  nBoxes,
)) {
  const { d, v, c } = await directVsOverview(ctx, o, runs);
  console.log(
    `${label}: direct ${d.ms.toFixed(0)} ms, overview ${v.ms.toFixed(0)} ms; identical ${(c.same * 100).toFixed(1)} %, within 16/255 ${(c.near * 100).toFixed(1)} %, coverage IoU ${(c.iou * 100).toFixed(1)} % (${c.covA} vs ${c.covB} px)`,
  );
}
await m.stop();
await close();
await pool.end();
