/**
 * The renderer builds its Skia paths from SVG path data written straight from TWKB
 * (src/render/svgpath.ts). These tests draw the same PostGIS geometries both ways — through that
 * path data and through the per-vertex moveTo/lineTo calls the renderer made before, from the
 * decoded TWKB — and require identical pixels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createCanvas, Path2D } from '@napi-rs/canvas';
import sharp from 'sharp';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeTestApp, testDatabaseUrl } from './helpers/app.js';
import { decodeTwkb, splitTwkb, type TwkbPart } from '../src/render/twkb.js';
import { PathBytes, writePathData } from '../src/render/svgpath.js';

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
});

/** The per-vertex reference: one call per vertex, sub-pixel parts and points as one pixel. */
function addPart(path: Path2D, part: TwkbPart, close: boolean): void {
  const r0 = part.rings[0];
  if (!r0 || r0.length < 2) return;
  if (part.kind === 1) {
    path.rect(Math.floor(r0[0]), Math.floor(r0[1]), 1, 1);
    return;
  }
  let [minx, miny, maxx, maxy] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < r0.length; i += 2) {
    minx = Math.min(minx, r0[i]);
    maxx = Math.max(maxx, r0[i]);
    miny = Math.min(miny, r0[i + 1]);
    maxy = Math.max(maxy, r0[i + 1]);
  }
  if (maxx - minx < 1 && maxy - miny < 1) {
    path.rect(Math.floor((minx + maxx) / 2), Math.floor((miny + maxy) / 2), 1, 1);
    return;
  }
  for (const ring of part.rings) {
    if (ring.length < 4) continue;
    path.moveTo(ring[0], ring[1]);
    for (let i = 2; i < ring.length; i += 2) path.lineTo(ring[i], ring[i + 1]);
    if (close) path.closePath();
  }
}

/** Fill and stroke `areas`, then stroke `lines`, on a white 256² canvas; the RGBA pixels. */
function paint(areas: Path2D, lines: Path2D): Buffer {
  const canvas = createCanvas(256, 256);
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, 256, 256);
  g.fillStyle = '#f4d6b0';
  g.fill(areas, 'nonzero');
  g.strokeStyle = '#a0522d';
  g.lineWidth = 0.5;
  g.stroke(areas);
  g.strokeStyle = '#1f5fa8';
  g.lineWidth = 2.5;
  g.lineJoin = 'round';
  g.stroke(lines);
  return Buffer.from(canvas.data());
}

function bothWays(twkbs: Uint8Array[]): { reference: Buffer; pathData: Buffer; bytes: number } {
  const refArea = new Path2D();
  const refLine = new Path2D();
  const target = { area: new PathBytes(), line: new PathBytes() };
  for (const t of twkbs) {
    for (const part of decodeTwkb(t)) {
      if (part.kind !== 2) addPart(refArea, part, true);
      addPart(refLine, part, part.kind !== 2);
    }
    writePathData(t, target);
  }
  // a line symbolizer strokes areas and lines; a polygon symbolizer the areas only
  const allLines = new PathBytes();
  allLines.bytes(target.area, 0, target.area.len);
  allLines.bytes(target.line, 0, target.line.len);
  return {
    reference: paint(refArea, refLine),
    pathData: paint(new Path2D(target.area.text()), new Path2D(allLines.text())),
    bytes: target.area.len + target.line.len,
  };
}

/** Screen-space TWKB (as the renderer asks for it) of a query's geometries over a view. */
async function screenTwkb(from: string, view: [number, number, number, number], sizes = false): Promise<Uint8Array[]> {
  const [x0, y0, x1, y1] = view;
  const s = 256 / (x1 - x0);
  const r = await client.query(
    `SELECT ST_AsTWKB(ST_Simplify(ST_Affine(geom, $1::float8, 0, 0, $2::float8, $3::float8, $4::float8), 0.5, true), 1, 0, 0, $5::boolean) AS g
       FROM (${from}) q WHERE geom && ST_MakeEnvelope($6, $7, $8, $9, 2154) ORDER BY 1`,
    [s, -s, -x0 * s, y1 * s, sizes, x0, y0, x1, y1],
  );
  return r.rows.map((row) => row.g as Buffer).filter(Boolean);
}

describe('paths from TWKB as SVG path data', () => {
  it('draw the demo parcels, roads and points pixel for pixel as the per-vertex path did, at three scales', async () => {
    const env = (
      await client.query(
        `SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM (SELECT ST_Extent(geom) e FROM public.parcels) s`,
      )
    ).rows[0];
    // the town and street views in the densest town (Strasbourg), so that they hold many features
    const town = (
      await client.query(
        `SELECT ST_X(p) x, ST_Y(p) y FROM (SELECT ST_Centroid(geom) p FROM public.parcels ORDER BY geom <-> ST_SetSRID(ST_MakePoint(1050000, 6840000), 2154), id LIMIT 1) s`,
      )
    ).rows[0];
    for (const half of [60000, 4000, 300]) {
      const cx = half > 10000 ? (env.x0 + env.x1) / 2 : town.x;
      const cy = half > 10000 ? (env.y0 + env.y1) / 2 : town.y;
      const view: [number, number, number, number] = [cx - half, cy - half, cx + half, cy + half];
      const twkbs = [
        ...(await screenTwkb('SELECT geom FROM public.parcels', view)),
        ...(await screenTwkb('SELECT geom FROM public.roads', view)),
        ...(await screenTwkb('SELECT geom FROM public.pois', view)),
      ];
      expect(twkbs.length).toBeGreaterThan(10);
      const { reference, pathData, bytes } = bothWays(twkbs);
      expect(bytes).toBeGreaterThan(100);
      // something was drawn, and the same thing
      expect(reference.some((v, i) => i % 4 === 0 && v !== 255)).toBe(true);
      expect(pathData.equals(reference)).toBe(true);
    }
  });

  it('handle holes, multi-parts, collections, sub-pixel parts, points, and coordinates off the canvas', async () => {
    const wkts = [
      'MULTIPOLYGON(((10 10,100 10,100 100,10 100,10 10),(30 30,60 30,60 60,30 60,30 30)),((120 120,120.4 120.3,120.2 120.9,120 120)))',
      'GEOMETRYCOLLECTION(POINT(200.5 20.25),LINESTRING(150 150,250 180,240 250),POLYGON((5 200,40 200,40 240,5 200)),LINESTRING(7 7,7.5 7.2))',
      'MULTILINESTRING((-500 -20,300 40.05,1200 -7),(3 250,3 250.5))',
      'POLYGON((-3000 -3000,3000 -3000,3000 3000,-3000 3000,-3000 -3000),(-10 -10,-10 5.55,5.55 5.55,5.55 -10,-10 -10))',
      'MULTIPOINT((0 0),(255.99 255.99),(-0.5 12.3))',
      'POLYGON EMPTY',
    ];
    const r = await client.query(`SELECT ST_AsTWKB(ST_GeomFromText(w), 1) AS g FROM unnest($1::text[]) w`, [wkts]);
    const { reference, pathData } = bothWays(r.rows.map((row) => row.g));
    expect(pathData.equals(reference)).toBe(true);
  });

  it('split concatenated sized TWKB back into the geometries', async () => {
    const r = await client.query(
      `SELECT string_agg(ST_AsTWKB(geom, 1, 0, 0, true), ''::bytea ORDER BY id) AS all, array_agg(ST_AsTWKB(geom, 1, 0, 0, true) ORDER BY id) AS each
         FROM (SELECT id, geom FROM public.parcels ORDER BY id LIMIT 50) s`,
    );
    const parts = splitTwkb(r.rows[0].all);
    expect(parts.map((p) => Buffer.from(p).toString('hex'))).toEqual(r.rows[0].each.map((b: Buffer) => b.toString('hex')));
    // a geometry written without its size cannot be split
    expect(() => splitTwkb(new Uint8Array([0x03, 0x00, 0x01]))).toThrow(/size/);
  });
});

/**
 * Run `fn` with the built renderer and a pool of `n` render workers (the pool runs from the built
 * code only: npm test builds dist/ first), then stop the pool and close the app.
 */
async function withWorkers(
  n: number,
  // biome-ignore lint/suspicious/noExplicitAny: modules imported from dist/ at run time
  fn: (t: Awaited<ReturnType<typeof makeTestApp>>, render: any, workers: any) => Promise<void>,
): Promise<void> {
  const t = await makeTestApp({});
  const before = process.env.GEODATA_RENDER_WORKERS;
  process.env.GEODATA_RENDER_WORKERS = String(n);
  const render = await import(pathToFileURL(distRender).href);
  const workers = await import(pathToFileURL(path.resolve('dist/src/render/workers.js')).href);
  try {
    await fn(t, render, workers);
  } finally {
    await workers.stopRenderWorkers();
    if (before === undefined) delete process.env.GEODATA_RENDER_WORKERS;
    else process.env.GEODATA_RENDER_WORKERS = before;
    await t.close();
  }
}
const distRender = path.resolve('dist/src/render/index.js');

/** A map of `size` px in EPSG:2154 centred on (cx, cy), `half` metres each way, as the render worker tests ask for it. */
function mapAround(
  t: Awaited<ReturnType<typeof makeTestApp>>,
  layers: string[],
  cx: number,
  cy: number,
  half: number,
  size: number,
  transparent = false,
) {
  return {
    layers: layers.map((n) => ({ layer: t.ctx.registry.resolve(n) })),
    bbox: { minx: cx - half, miny: cy - half, maxx: cx + half, maxy: cy + half },
    epsg: 2154,
    width: size,
    height: size,
    format: 'image/png',
    ...(transparent ? { transparent: true } : {}),
    timeoutMs: 30000,
  };
}

describe('render workers', () => {
  it.skipIf(!existsSync(distRender))('draw and encode the same map as the main thread', () =>
    withWorkers(2, async (t, render, workers) => {
      const env = (
        await t.ctx.pool.query(
          `SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM (SELECT ST_Extent(geom) e FROM public.parcels) s`,
        )
      ).rows[0];
      const cx = (env.x0 + env.x1) / 2;
      const cy = (env.y0 + env.y1) / 2;
      const o = mapAround(t, ['parcels', 'roads', 'pois'], cx, cy, 3000, 256);
      const inWorker: Buffer = await render.renderMap({ pool: t.ctx.pool }, o);
      expect(workers.renderWorkerCount()).toBe(2);
      const inThread: Buffer = await render.encodeCanvas(await render.drawMap({ pool: t.ctx.pool }, o), 'image/png', false);
      const [a, b] = await Promise.all([inWorker, inThread].map((png) => sharp(png).raw().toBuffer({ resolveWithObject: true })));
      expect(a.info.width).toBe(256);
      expect(a.data.equals(b.data)).toBe(true);
      // not a blank map: parcels' fill colours are there
      const colours = new Set<number>();
      for (let i = 0; i < a.data.length; i += a.info.channels) colours.add((a.data[i] << 16) | (a.data[i + 1] << 8) | a.data[i + 2]);
      expect(colours.size).toBeGreaterThan(20);
      // several maps at once are spread over the workers and all answered
      const many = await Promise.all(Array.from({ length: 6 }, () => render.renderMap({ pool: t.ctx.pool }, o)));
      // (a label seen again is drawn from a sprite, not directly: the same pixels within a few
      // 8-bit rounding steps where halo, text and map are composited in another order)
      for (const png of many) {
        const c = await sharp(png).raw().toBuffer();
        let worst = 0;
        let off = 0;
        for (let i = 0; i < c.length; i++) {
          const d = Math.abs(c[i] - a.data[i]);
          if (d > worst) worst = d;
          if (d > 0) off++;
        }
        expect(worst).toBeLessThanOrEqual(4);
        expect(off / c.length).toBeLessThan(0.01);
      }
    }),
  );
});

describe('metatiles in a render worker', () => {
  it.skipIf(!existsSync(distRender))('cut into the same tiles as the main thread, each the matching part of the whole image', () =>
    withWorkers(1, async (t, render, workers) => {
      // around a parcel (they are dense around towns)
      const { cx, cy } = (
        await t.ctx.pool.query(
          `SELECT ST_X(c) cx, ST_Y(c) cy FROM (SELECT ST_PointOnSurface(geom) c FROM public.parcels ORDER BY id LIMIT 1) s`,
        )
      ).rows[0];
      // a 2 × 2 metatile of 64 px tiles with a 16 px margin: a 160 px map over 2 km (parcels drawn at this scale)
      const o = mapAround(t, ['parcels', 'roads', 'pois'], cx, cy, 1000, 160, true);
      const cut = { tile: 64, cols: 2, rows: 2, buffer: 16 };
      const inWorker: Buffer[] = await render.renderMetatile({ pool: t.ctx.pool }, o, cut);
      expect(workers.renderWorkerCount()).toBe(1);
      expect(inWorker).toHaveLength(4);
      const whole = await sharp(await render.encodeCanvas(await render.drawMap({ pool: t.ctx.pool }, o), 'image/png', true))
        .raw()
        .toBuffer({ resolveWithObject: true });
      let ink = 0;
      for (const [k, png] of inWorker.entries()) {
        const [i, j] = [k % 2, Math.floor(k / 2)];
        const tile = await sharp(png).raw().toBuffer({ resolveWithObject: true });
        expect([tile.info.width, tile.info.height, tile.info.channels]).toEqual([64, 64, 4]);
        const part = await sharp(whole.data, { raw: whole.info })
          .extract({ left: 16 + i * 64, top: 16 + j * 64, width: 64, height: 64 })
          .raw()
          .toBuffer();
        expect(tile.data.equals(part)).toBe(true);
        for (let p = 3; p < tile.data.length; p += 4) if (tile.data[p] > 0) ink++;
      }
      expect(ink).toBeGreaterThan(1000); // parcels drawn, not four empty tiles
    }),
  );
});

describe('render worker lost', () => {
  it.skipIf(!existsSync(distRender))('fails the map it held with RenderWorkerLost, and a new worker draws the next', () =>
    withWorkers(1, async (t, render, workers) => {
      const o = mapAround(t, ['parcels'], 0.5, 0.5, 0.5, 64);
      await render.renderMap({ pool: t.ctx.pool }, o); // starts the pool
      const [first] = workers.renderWorkerThreads();
      // a job posted, and its worker terminated before it can answer
      const job = workers.renderInWorker([], { width: 64, height: 64, format: 'image/png' }, Date.now() + 30000);
      const stopped = first.terminate();
      await expect(job).rejects.toBeInstanceOf(workers.RenderWorkerLost);
      await stopped;
      expect(workers.renderWorkerCount()).toBe(1);
      expect(workers.renderWorkerThreads()[0]).not.toBe(first);
      const png: Buffer = await render.renderMap({ pool: t.ctx.pool }, o);
      const img = await sharp(png).metadata();
      expect([img.format, img.width, img.height]).toEqual(['png', 64, 64]);
    }),
  );
});

describe('TWKB varint reader', () => {
  it('reads unsigned varints and zigzag integers of every length', async () => {
    const { VarintReader } = await import('../src/render/twkb.js');
    const values = [
      0,
      1,
      -1,
      63,
      -64,
      64,
      127,
      128,
      -8191,
      8191,
      8192,
      1 << 20,
      -(1 << 27),
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      2 ** 40 + 3,
      -(2 ** 45),
    ];
    const bytes: number[] = [];
    const put = (u: number) => {
      do {
        let b = u % 128;
        u = Math.floor(u / 128);
        if (u > 0) b |= 0x80;
        bytes.push(b);
      } while (u > 0);
    };
    for (const v of values) put(v < 0 ? -2 * v - 1 : 2 * v); // zigzag
    for (const v of values.filter((x) => x >= 0)) put(v);
    const r = new VarintReader(Uint8Array.from(bytes));
    for (const v of values) expect(r.zigzag()).toBe(v);
    for (const v of values.filter((x) => x >= 0)) expect(r.varint()).toBe(v);
    expect(r.pos).toBe(bytes.length);
  });
});
