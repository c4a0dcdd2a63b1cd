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
import { requestList } from './lib/core.mjs';
import { startOverviews, timeDraw, comparePixels } from './lib/overview.mjs';

const arg = (k, d) => (process.argv.includes(`--${k}`) ? process.argv[process.argv.indexOf(`--${k}`) + 1] : d);
const runs = Number(arg('runs', 3));
const nBoxes = Number(arg('boxes', 6));
const layerNames = arg('layers', 'parcels').split(',');
const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL');
const pool = new pg.Pool({ connectionString: url, max: 3 });
const { ctx, registry, m, readyMs, close } = await startOverviews(pool, { overviews: { rebuildDelayMs: 1000 } });
let ready = readyMs;
if (process.argv.includes('--rebuild')) {
  const t0 = Date.now();
  await m.refresh(registry.resolve('parcels'));
  ready = Date.now() - t0;
}
console.log(`overview ready in ${ready} ms`);
console.log(JSON.stringify(m.status(), null, 1));

const layers = layerNames.map((n) => ({ layer: registry.resolve(n) }));
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
    const v = await timeDraw(ctx.runtime.render, o, runs);
    const c = comparePixels(d.px, v.px);
    console.log(
      `${crs} ${r.bbox.map((x) => Math.round(x)).join(',')}: direct ${d.ms.toFixed(0)} ms, overview ${v.ms.toFixed(0)} ms; identical ${(c.same * 100).toFixed(1)} %, within 16/255 ${(c.near * 100).toFixed(1)} %, coverage IoU ${(c.iou * 100).toFixed(1)} % (${c.covA} vs ${c.covB} px)`,
    );
  }
}
await m.stop();
await close();
await pool.end();
