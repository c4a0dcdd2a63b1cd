#!/usr/bin/env node
/**
 * Where a town- or street-scale WMS render spends its time (docs/rasteriser.md, "Town and street
 * scale"): renders the first requests of the benchmark's request lists one after the other through
 * renderMap and prints the median total and the median of each step (sql, decode, path, paint,
 * raster, encode). Uses the built code (npm run build) and BENCH_DATABASE_URL (or DATABASE_URL).
 *
 *   node bench/render-town.mjs [--n 15] [--only REGEX] [--save DIR] [--scales town,street|region]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { validateConfig } from '../dist/src/config/index.js';
import { Registry } from '../dist/src/registry/registry.js';
import { renderMap } from '../dist/src/render/index.js';
import { requestList } from './lib/core.mjs';
import { databaseUrl, numOpt, opt } from './lib/cli.mjs';

const n = numOpt('n', 15);
const only = new RegExp(opt('only', '.'));
const save = opt('save');
const url = databaseUrl(['BENCH_DATABASE_URL', 'DATABASE_URL']);
const pool = new pg.Pool({ connectionString: url, max: 2 });
const registry = new Registry(pool, validateConfig({}));
await registry.reload();
const SEED = 20260101;
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
};
const steps = ['sql', 'decode', 'path', 'paint', 'raster', 'encode'];
console.log(`| scenario | total | ${steps.join(' | ')} |`);
console.log(`|---|---:|${steps.map(() => '---:').join('|')}|`);
for (const scale of opt('scales', 'town,street').split(',')) {
  for (const crs of ['EPSG:2154', 'EPSG:3857']) {
    for (const set of [['parcels'], ['parcels', 'roads', 'pois']]) {
      const id = `wms-${scale}-${crs.slice(5)}-${set.length === 1 ? 'parcels' : 'all'}`;
      if (!only.test(id)) continue;
      // the same list as bench/run.mjs builds for this scenario
      const list = requestList('wms', { scale, crs, layers: set }, n, SEED);
      const totals = [];
      const per = Object.fromEntries(steps.map((k) => [k, []]));
      const layers = set.map((name) => ({ layer: registry.resolve(name) }));
      await renderMap(
        { pool },
        { layers, bbox: bb(list[0].bbox), epsg: Number(crs.slice(5)), width: 256, height: 256, format: 'image/png' },
      );
      for (const [i, r] of list.entries()) {
        const timings = {};
        const t0 = performance.now();
        const png = await renderMap(
          { pool },
          {
            layers,
            bbox: bb(r.bbox),
            epsg: Number(crs.slice(5)),
            width: 256,
            height: 256,
            format: 'image/png',
            transparent: process.env.TRANSPARENT === '1',
            timings,
          },
        );
        totals.push(performance.now() - t0);
        for (const k of steps) per[k].push(timings[k] ?? 0);
        if (save && i < 3) {
          mkdirSync(save, { recursive: true });
          writeFileSync(`${save}/${id}-${i}.png`, png);
        }
      }
      console.log(`| ${id} | ${med(totals).toFixed(1)} | ${steps.map((k) => med(per[k]).toFixed(1)).join(' | ')} |`);
    }
  }
}
await pool.end();

function bb(b) {
  return { minx: b[0], miny: b[1], maxx: b[2], maxy: b[3] };
}
