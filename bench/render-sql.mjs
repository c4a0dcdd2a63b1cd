#!/usr/bin/env node
/**
 * How the renderer should get geometries out of PostGIS (docs/rasteriser.md), and what a whole
 * render costs. Uses the built code (npm run build) and DATABASE_URL, else the embedded
 * cluster's `geodata_test` database (the test data set: run `npm test` once).
 *
 *   node bench/render-sql.mjs [--runs 5]
 */
import pg from 'pg';
import { pino } from 'pino';
import { ensureEmbeddedCluster, ensureDatabase } from '../dist/src/db/embedded.js';
import { validateConfig } from '../dist/src/config/index.js';
import { Registry } from '../dist/src/registry/registry.js';
import { renderMap, layerQuery, styleOf } from '../dist/src/render/index.js';
import { decodeTwkb } from '../dist/src/render/twkb.js';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 5;
let url = process.env.DATABASE_URL;
if (!url) url = await ensureDatabase(await ensureEmbeddedCluster(), 'geodata_test');
// as the renderer does: no parallel workers (their start-up costs more than these queries)
const pool = new pg.Pool({ connectionString: url, max: 2, options: '-c max_parallel_workers_per_gather=0' });
const config = validateConfig({});
const registry = new Registry(pool, config);
await registry.reload();
const parcels = registry.resolve('parcels');
const rows = (await pool.query('SELECT count(*)::int n FROM public.parcels')).rows[0].n;

async function median(fn) {
  await fn();
  const ts = [];
  let extra;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    extra = await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ts.sort((a, b) => a - b);
  return { ms: ts[Math.floor(ts.length / 2)], extra };
}

const scales = {
  region: { minx: 760000, miny: 6700000, maxx: 1080000, maxy: 6990000 },
  town: { minx: 1040000, miny: 6830000, maxx: 1060000, maxy: 6850000 },
  street: { minx: 1049000, miny: 6839000, maxx: 1051000, maxy: 6841000 },
};

// 1. geometry encodings for the same bbox query (parcels, 1024 px wide, EPSG:3857 output)
const W = 1024;
const H = 768;
console.log(`parcels: ${rows} rows; median of ${runs} runs; node ${process.version}\n`);
console.log('| encoding (parcels, 1024×768, EPSG:3857) | region | town | street |');
console.log('|---|---|---|---|');
const enc = {
  'ST_AsBinary(ST_Transform(geom)) — transform/simplify left to Node': (aff) => `ST_AsBinary(ST_Transform(geom, 3857))`,
  'ST_AsGeoJSON(screen-space, 1 decimal)': (aff) => `ST_AsGeoJSON(ST_Simplify(${aff}, 0.5, true), 1)`,
  'ST_AsBinary(screen-space, simplified)': (aff) => `ST_AsBinary(ST_Simplify(${aff}, 0.5, true))`,
  'ST_AsTWKB(screen-space, simplified, 0.1 px) — chosen': (aff) => `ST_AsTWKB(ST_Simplify(${aff}, 0.5, true), 1)`,
};
for (const [name, expr] of Object.entries(enc)) {
  const cells = [];
  for (const bbox of Object.values(scales)) {
    const e3857 = await pool.query(
      `SELECT ST_XMin(b) x0, ST_YMin(b) y0, ST_XMax(b) x1, ST_YMax(b) y1 FROM ST_Transform(ST_MakeEnvelope($1,$2,$3,$4,2154), 3857) b`,
      [bbox.minx, bbox.miny, bbox.maxx, bbox.maxy],
    );
    const { x0, y1, x1 } = e3857.rows[0];
    const sx = W / (x1 - x0);
    const aff = `ST_Affine(ST_Transform(geom, 3857), ${sx}, 0, 0, ${-sx}, ${-x0 * sx}, ${y1 * sx})`;
    const sql = `SELECT ${expr(aff)} AS g FROM public.parcels WHERE geom && ST_MakeEnvelope($1,$2,$3,$4,2154)`;
    const r = await median(async () => {
      const res = await pool.query(sql, [bbox.minx, bbox.miny, bbox.maxx, bbox.maxy]);
      let bytes = 0;
      for (const row of res.rows) {
        bytes += row.g.length;
        if (name.includes('TWKB')) decodeTwkb(row.g);
        else if (name.includes('GeoJSON')) JSON.parse(row.g);
      }
      return { n: res.rows.length, bytes };
    });
    cells.push(`${r.ms.toFixed(1)} ms, ${r.extra.n} rows, ${(r.extra.bytes / 1024).toFixed(0)} KiB`);
  }
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}

{
  // the renderer's actual query: TWKB + sub-pixel features reduced to one row per pixel
  const cells = [];
  for (const bbox of Object.values(scales)) {
    const e = await pool.query(
      `SELECT ST_XMin(b) x0, ST_YMin(b) y0, ST_XMax(b) x1, ST_YMax(b) y1 FROM ST_Transform(ST_MakeEnvelope($1,$2,$3,$4,2154), 3857) b`,
      [bbox.minx, bbox.miny, bbox.maxx, bbox.maxy],
    );
    const { x0, y0, x1, y1 } = e.rows[0];
    const q = layerQuery(parcels, styleOf(parcels).rules, {
      epsg: 3857,
      bbox: { minx: x0, miny: y0, maxx: x1, maxy: y1 },
      width: W,
      height: H,
      margin: 2,
    });
    const r = await median(async () => {
      const res = await pool.query(q.text, q.values);
      let bytes = 0;
      for (const row of res.rows) {
        bytes += row.g.length;
        decodeTwkb(row.g);
      }
      return { n: res.rows.length, bytes };
    });
    cells.push(`${r.ms.toFixed(1)} ms, ${r.extra.n} rows, ${(r.extra.bytes / 1024).toFixed(0)} KiB`);
  }
  console.log(`| renderer's query: TWKB + one row per pixel for sub-pixel features (+ rule columns) | ${cells.join(' | ')} |`);
}

// 2. whole renders through renderMap (query + draw + encode)
console.log('\n| renderMap (parcels + roads + pois) | region | town | street |');
console.log('|---|---|---|---|');
const layers = ['parcels', 'roads', 'pois'].map((n) => ({ layer: registry.resolve(n) }));
for (const [w, h, epsg, format] of [
  [256, 256, 2154, 'image/png'],
  [256, 256, 3857, 'image/png'],
  [1024, 768, 2154, 'image/png'],
  [1024, 768, 2154, 'image/png8'],
  [1024, 768, 2154, 'image/jpeg'],
]) {
  const cells = [];
  for (const bbox of Object.values(scales)) {
    let b = bbox;
    if (epsg !== 2154) {
      const r = await pool.query(
        `SELECT ST_XMin(b) x0, ST_YMin(b) y0, ST_XMax(b) x1, ST_YMax(b) y1 FROM ST_Transform(ST_MakeEnvelope($1,$2,$3,$4,2154), $5::int) b`,
        [bbox.minx, bbox.miny, bbox.maxx, bbox.maxy, epsg],
      );
      b = { minx: r.rows[0].x0, miny: r.rows[0].y0, maxx: r.rows[0].x1, maxy: r.rows[0].y1 };
    }
    // keep the aspect ratio of the image
    const cy = (b.miny + b.maxy) / 2;
    const half = ((b.maxx - b.minx) * h) / w / 2;
    b = { minx: b.minx, maxx: b.maxx, miny: cy - half, maxy: cy + half };
    const r = await median(() => renderMap({ pool }, { layers, bbox: b, epsg, width: w, height: h, format }));
    cells.push(`${r.ms.toFixed(1)} ms`);
  }
  console.log(`| ${w}×${h} EPSG:${epsg} ${format} | ${cells.join(' | ')} |`);
}
await pool.end();
