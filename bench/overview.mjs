#!/usr/bin/env node
/**
 * Region-scale renders of a big layer with and without its pre-generalised overview
 * (src/render/overview.ts, docs/rasteriser.md): build cost, single-render timings (median of
 * --runs) and how many pixels differ. Uses the built code (npm run build) and DATABASE_URL
 * (e.g. the 1,000,000-parcel bench database).
 *
 *   DATABASE_URL=… node bench/overview.mjs [--runs 3] [--boxes 6] [--rebuild] [--layers parcels,roads,pois]
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
const runs = Number(arg('runs', 3));
const nBoxes = Number(arg('boxes', 6));
const layerNames = arg('layers', 'parcels').split(',');
const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL');
const pool = new pg.Pool({ connectionString: url, max: 3 });
const config = validateConfig({ overviews: { rebuildDelayMs: 1000 } });
const registry = new Registry(pool, config);
await registry.reload();
const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const ctx = { config, pool, registry, log };
const m = new OverviewManager(ctx);
let t0 = Date.now();
await m.start();
await m.idle();
if (process.argv.includes('--rebuild')) {
  t0 = Date.now();
  await m.refresh(registry.resolve('parcels'));
}
console.log(`overview ready in ${Date.now() - t0} ms`);
console.log(JSON.stringify(m.status(), null, 1));

const layers = layerNames.map((n) => ({ layer: registry.resolve(n) }));
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
  // premultiplied RGBA on a white background: "covered" = not the background
  let same = 0, near = 0, covA = 0, covB = 0, both = 0;
  const n = a.length / 4;
  for (let i = 0; i < a.length; i += 4) {
    const d = Math.max(Math.abs(a[i] - b[i]), Math.abs(a[i + 1] - b[i + 1]), Math.abs(a[i + 2] - b[i + 2]));
    if (d === 0) same++;
    if (d <= 16) near++;
    const ca = a[i] + a[i + 1] + a[i + 2] < 765, cb = b[i] + b[i + 1] + b[i + 2] < 765;
    covA += ca; covB += cb; both += ca && cb;
  }
  return { same: same / n, near: near / n, covDirect: covA, covOverview: covB, coverageIoU: both / Math.max(1, covA + covB - both) };
}
for (const crs of ['EPSG:2154', 'EPSG:3857']) {
  for (const r of requestList('wms', { scale: 'region', crs, layers: ['parcels'] }, nBoxes, 20260101)) {
    const o = { layers, bbox: { minx: r.bbox[0], miny: r.bbox[1], maxx: r.bbox[2], maxy: r.bbox[3] }, epsg: Number(crs.slice(5)), width: 256, height: 256, format: 'image/png' };
    m.use = false;
    const d = await time(o);
    m.use = true;
    const v = await time(o);
    const c = compare(d.px, v.px);
    console.log(`${crs} ${r.bbox.map((x) => Math.round(x)).join(',')}: direct ${d.ms.toFixed(0)} ms, overview ${v.ms.toFixed(0)} ms; identical ${(c.same * 100).toFixed(1)} %, within 16/255 ${(c.near * 100).toFixed(1)} %, coverage IoU ${(c.coverageIoU * 100).toFixed(1)} % (${c.covDirect} vs ${c.covOverview} px)`);
  }
}
await m.stop();
await tileEngine(ctx).close();
await pool.end();
