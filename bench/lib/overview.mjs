// Shared by the overview benchmarks (bench/overview*.mjs): an overview manager on a pool, timed
// single renders, and pixel agreement between two renders. Uses the built code (dist/).
import { pino } from 'pino';
import { validateConfig } from '../../dist/src/config/index.js';
import { Registry } from '../../dist/src/registry/registry.js';
import { drawMap } from '../../dist/src/render/index.js';
import { createContext } from '../../dist/src/context.js';
import { requestList } from './core.mjs';

/** A registry and a started overview manager for the raw configuration; waits until it is idle. */
export async function startOverviews(pool, raw) {
  const config = validateConfig(raw);
  const registry = new Registry(pool, config);
  await registry.reload();
  const ctx = createContext({ config, pool, registry, log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
  const m = ctx.runtime.overviews;
  const t0 = Date.now();
  await m.start();
  await m.idle();
  return { ctx, registry, m, readyMs: Date.now() - t0, close: () => ctx.runtime.close() };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** Median time of `runs` renders (drawn and rasterised, `rc` the runtime's render context: ctx.runtime.render) and the last one's premultiplied RGBA. */
export async function timeDraw(rc, o, runs) {
  const ts = [];
  let canvas;
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    canvas = await drawMap(rc, o);
    canvas.data();
    ts.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms: median(ts), px: Buffer.from(canvas.data()) };
}

/**
 * (Re)create `schema.table` from a SELECT of the bench database (with an `id` and a `geom`):
 * primary key, GiST index, statistics. Returns the milliseconds it took.
 */
export async function makeBenchTable(pool, schema, table, select) {
  const t = Date.now();
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await pool.query(`DROP TABLE IF EXISTS ${schema}.${table}`);
  await pool.query(`CREATE TABLE ${schema}.${table} AS ${select}`);
  await pool.query(`ALTER TABLE ${schema}.${table} ADD PRIMARY KEY (id)`);
  await pool.query(`CREATE INDEX ON ${schema}.${table} USING gist (geom)`);
  await pool.query(`ANALYZE ${schema}.${table}`);
  return Date.now() - t;
}

/** Drop a bench schema and the change triggers' bookkeeping of its tables. */
export async function dropBenchSchema(pool, schema) {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.query(`DELETE FROM geodata_tiles.changes WHERE table_name LIKE $1`, [`${schema}.%`]);
  await pool.query(`DELETE FROM geodata_tiles.versions WHERE table_name LIKE $1`, [`${schema}.%`]);
}

/** The bench's region-scale WMS views (`n` boxes in each of EPSG:2154 and 3857) as render options over `layers`. */
export function* regionViews(layers, n) {
  for (const crs of ['EPSG:2154', 'EPSG:3857']) {
    for (const r of requestList('wms', { scale: 'region', crs, layers: ['parcels'] }, n, 20260101)) {
      const o = {
        layers,
        bbox: { minx: r.bbox[0], miny: r.bbox[1], maxx: r.bbox[2], maxy: r.bbox[3] },
        epsg: Number(crs.slice(5)),
        width: 256,
        height: 256,
        format: 'image/png',
      };
      yield { label: `${crs} ${r.bbox.map((x) => Math.round(x)).join(',')}`, o };
    }
  }
}

/** One view drawn without then with the overviews (`runs` times each): timings, pixel agreement, and whether an overview was read. */
export async function directVsOverview(ctx, o, runs) {
  const m = ctx.runtime.overviews;
  m.use = false;
  const d = await timeDraw(ctx.runtime.render, o, runs);
  m.use = true;
  const before = m.stats.overviewRenders;
  const v = await timeDraw(ctx.runtime.render, o, runs);
  return { d, v, c: comparePixels(d.px, v.px), used: m.stats.overviewRenders > before };
}

/**
 * Agreement of two RGBA renders on a white background: `same` and `near` (within 16/255) shares
 * of pixels; `covA`/`covB` pixels drawn (not the background); `iou` of the drawn pixels.
 */
export function comparePixels(a, b) {
  let same = 0,
    near = 0,
    covA = 0,
    covB = 0,
    both = 0;
  const n = a.length / 4;
  for (let i = 0; i < a.length; i += 4) {
    const d = Math.max(Math.abs(a[i] - b[i]), Math.abs(a[i + 1] - b[i + 1]), Math.abs(a[i + 2] - b[i + 2]));
    if (d === 0) same++;
    if (d <= 16) near++;
    const ca = a[i] + a[i + 1] + a[i + 2] < 765,
      cb = b[i] + b[i + 1] + b[i + 2] < 765;
    covA += ca;
    covB += cb;
    both += ca && cb;
  }
  return { same: same / n, near: near / n, covA, covB, iou: both / Math.max(1, covA + covB - both) };
}
