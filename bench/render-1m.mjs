#!/usr/bin/env node
/**
 * Region-wide overview of 1,000,000 small polygons (synthetic: random 20–50 m squares over the
 * Grand Est extent, in a scratch schema `wmsbench` of the test database, dropped afterwards with
 * --drop). Measures renderMap() at 256×256 and 1024×768. Needs `npm run build`.
 *
 *   node bench/render-1m.mjs [--drop]
 */
import pg from 'pg';
import { ensureEmbeddedCluster, ensureDatabase } from '../dist/src/db/embedded.js';
import { validateConfig } from '../dist/src/config/index.js';
import { Registry } from '../dist/src/registry/registry.js';
import { renderMap } from '../dist/src/render/index.js';
const url = await ensureDatabase(await ensureEmbeddedCluster(), 'geodata_test');
const pool = new pg.Pool({ connectionString: url, max: 2 });
let t0 = Date.now();
const exists = (await pool.query(`SELECT to_regclass($$wmsbench.p1m$$) r`)).rows[0].r;
if (!exists)
  await pool.query(`CREATE SCHEMA IF NOT EXISTS wmsbench; DROP TABLE IF EXISTS wmsbench.p1m;
  SELECT setseed(0.42);
  CREATE TABLE wmsbench.p1m AS
  SELECT i AS id, random() < 0.4 AS bati,
    ST_MakeEnvelope(x, y, x + 20 + 30 * random(), y + 20 + 30 * random(), 2154)::geometry(Polygon, 2154) AS geom
  FROM (SELECT i, 760000 + 320000 * random() AS x, 6700000 + 290000 * random() AS y FROM generate_series(1, 1000000) i) s;
  ALTER TABLE wmsbench.p1m ADD PRIMARY KEY (id);
  CREATE INDEX ON wmsbench.p1m USING gist (geom); ANALYZE wmsbench.p1m;`);
console.log('created in', Date.now() - t0, 'ms');
const registry = new Registry(
  pool,
  validateConfig({
    layers: [
      {
        table: 'wmsbench.p1m',
        name: 'p1m',
        styles: {
          s: {
            rules: [
              { filter: 'bati = true', polygon: { fill: '#f4d6b0', stroke: '#a0522d', 'stroke-width': 0.5 } },
              { else: true, polygon: { fill: '#e8f0d8', stroke: '#7a8f5a', 'stroke-width': 0.5 } },
            ],
          },
        },
      },
    ],
  }),
);
await registry.reload();
const layer = registry.resolve('p1m');
const region = { minx: 760000, miny: 6700000, maxx: 1080000, maxy: 6990000 };
for (const [w, h, epsg] of [
  [256, 256, 2154],
  [1024, 768, 2154],
  [256, 256, 3857],
]) {
  let bbox = region;
  if (epsg !== 2154) {
    const r = await pool.query(
      `SELECT ST_XMin(b) x0, ST_YMin(b) y0, ST_XMax(b) x1, ST_YMax(b) y1 FROM ST_Transform(ST_MakeEnvelope(760000,6700000,1080000,6990000,2154), 3857) b`,
    );
    bbox = { minx: r.rows[0].x0, miny: r.rows[0].y0, maxx: r.rows[0].x1, maxy: r.rows[0].y1 };
  }
  const ts = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    await renderMap({ pool }, { layers: [{ layer }], bbox, epsg, width: w, height: h, format: 'image/png' });
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  console.log(`${w}x${h} EPSG:${epsg}: min ${ts[0].toFixed(0)} ms, median ${ts[2].toFixed(0)} ms, max ${ts[4].toFixed(0)} ms`);
}

if (process.argv.includes('--drop')) await pool.query('DROP SCHEMA wmsbench CASCADE');
await pool.end();
