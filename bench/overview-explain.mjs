#!/usr/bin/env node
/**
 * EXPLAIN ANALYZE of one region view (256², EPSG:2154 and 3857), the overview level query against
 * the direct layer query, 3 runs each (docs/rasteriser.md). Built code (npm run build), DATABASE_URL.
 */
import pg from 'pg';
import { pino } from 'pino';
import { validateConfig } from '../dist/src/config/index.js';
import { Registry } from '../dist/src/registry/registry.js';
import { styleOf, layerQuery } from '../dist/src/render/index.js';
import { createContext } from '../dist/src/context.js';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 3 });
const config = validateConfig({});
const registry = new Registry(pool, config);
await registry.reload();
const ctx = createContext({ config, pool, registry, log: pino({ level: 'warn' }) });
const m = ctx.runtime.overviews;
await m.start();
const L = registry.resolve('parcels');
for (const epsg of [2154, 3857]) {
  const bbox =
    epsg === 2154
      ? { minx: 825941, miny: 6742962, maxx: 975941, maxy: 6892962 }
      : { minx: 532767, miny: 6207059, maxx: 771070, maxy: 6445363 };
  const c = await pool.connect();
  await c.query('set max_parallel_workers_per_gather=0');
  for (const [name, q] of [
    ['overview', m.query(L, styleOf(L).rules, { epsg, bbox, width: 256, height: 256 }, 2)],
    ['direct', layerQuery(L, styleOf(L).rules, { epsg, bbox, width: 256, height: 256, margin: 2, typicalSize: 105 })],
  ]) {
    const ts = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.query({ text: 'EXPLAIN (ANALYZE) ' + q.text, values: q.values });
      ts.push(Number(r.rows.at(-1)['QUERY PLAN'].match(/([\d.]+) ms/)[1]));
    }
    console.log(epsg, name, 'EXPLAIN ANALYZE execution ms', ts.join(' / '));
  }
  c.release();
}
await ctx.runtime.close();
await pool.end();
