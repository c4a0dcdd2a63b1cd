/**
 * Where labels and point symbols of lines and polygons go: a long road is labelled along its
 * length (candidates every 300 px, src/render/index.ts labelQuery), so also on the part of it a
 * street-scale map shows; a polygon layer styled with a point symbol alone gets one symbol per
 * polygon (src/render/draw.ts anchorOf).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { renderMap } from '../src/render/index.js';

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, channels: info.channels };
}

describe('anchors of labels and point symbols', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({
      layers: [
        {
          table: 'public.roads',
          name: 'road_names',
          styles: { names: { rules: [{ text: { label: 'nom', 'font-size': 14, fill: '#000000' } }] } },
        },
        { table: 'public.pois' },
        {
          table: 'public.parcels',
          name: 'parcel_marks',
          styles: { marks: { rules: [{ point: { mark: 'square', size: 4, fill: '#ff0000' } }] } },
        },
      ],
    });
  });
  afterAll(async () => t?.close());

  it('a long road is labelled inside a street-scale view far from its own middle', async () => {
    // the longest named road, seen 300 m wide around the point at 5 % of its length
    const r = (
      await t.ctx.pool.query(
        `SELECT ST_X(p) x, ST_Y(p) y, ST_Distance(p, ST_PointOnSurface(geom)) d
           FROM (SELECT geom, ST_LineInterpolatePoint(ST_GeometryN(geom, 1), 0.05) p FROM public.roads WHERE nom IS NOT NULL ORDER BY ST_Length(geom) DESC LIMIT 1) s`,
      )
    ).rows[0];
    expect(r.d).toBeGreaterThan(1000); // PostGIS's point on that line lies far outside the view
    const bbox = { minx: r.x - 150, miny: r.y - 150, maxx: r.x + 150, maxy: r.y + 150 };
    const png = await renderMap(
      { pool: t.ctx.pool },
      {
        layers: [{ layer: t.ctx.registry.resolve('road_names') }],
        bbox,
        epsg: 2154,
        width: 256,
        height: 256,
        format: 'image/png',
        transparent: true,
      },
    );
    const { data, channels } = await pixels(png);
    let text = 0;
    for (let i = 0; i < data.length; i += channels) if (data[i + 3] > 128 && data[i] < 64) text++;
    expect(text).toBeGreaterThan(30); // glyphs of the name are drawn
  });

  it('a polygon layer with only a point symbol draws one symbol per polygon', async () => {
    const e = (
      await t.ctx.pool.query(`SELECT ST_X(ST_Centroid(geom)) x, ST_Y(ST_Centroid(geom)) y FROM public.parcels ORDER BY id LIMIT 1`)
    ).rows[0];
    const bbox = { minx: e.x - 300, miny: e.y - 300, maxx: e.x + 300, maxy: e.y + 300 };
    const n = Number(
      (
        await t.ctx.pool.query(
          `SELECT count(*) n FROM public.parcels WHERE ST_Intersects(ST_PointOnSurface(geom), ST_MakeEnvelope($1, $2, $3, $4, 2154))`,
          [bbox.minx, bbox.miny, bbox.maxx, bbox.maxy],
        )
      ).rows[0].n,
    );
    expect(n).toBeGreaterThan(5);
    const png = await renderMap(
      { pool: t.ctx.pool },
      {
        layers: [{ layer: t.ctx.registry.resolve('parcel_marks') }],
        bbox,
        epsg: 2154,
        width: 512,
        height: 512,
        format: 'image/png',
        transparent: true,
      },
    );
    const { data, channels } = await pixels(png);
    let red = 0;
    for (let i = 0; i < data.length; i += channels) if (data[i + 3] > 200 && data[i] > 200 && data[i + 1] < 60) red++;
    // 4×4 px squares, some overlapping or cut at the edge: between a third and all of n × 16
    expect(red).toBeGreaterThan((n * 16) / 3);
    expect(red).toBeLessThanOrEqual(n * 25);
  });

  it('labels: drawn directly the first time, from a sprite afterwards, with the same pixels', async () => {
    const e = (await t.ctx.pool.query(`SELECT ST_X(geom) x, ST_Y(geom) y FROM public.pois WHERE nom IS NOT NULL ORDER BY id LIMIT 1`))
      .rows[0];
    const bbox = { minx: e.x - 200, miny: e.y - 200, maxx: e.x + 200, maxy: e.y + 200 };
    const o = {
      layers: [{ layer: t.ctx.registry.resolve('pois') }],
      bbox,
      epsg: 2154,
      width: 256,
      height: 256,
      format: 'image/png' as const,
      transparent: true,
    };
    const first = await renderMap({ pool: t.ctx.pool }, o);
    const second = await renderMap({ pool: t.ctx.pool }, o); // the sprite is made
    const third = await renderMap({ pool: t.ctx.pool }, o); // and reused
    expect(second.equals(first)).toBe(true);
    expect(third.equals(first)).toBe(true);
    const { data, channels } = await pixels(first);
    let halo = 0;
    let ink = 0;
    for (let i = 0; i < data.length; i += channels) {
      if (data[i + 3] < 250) continue;
      if (data[i] > 245 && data[i + 1] > 245 && data[i + 2] > 245) halo++;
      else if (data[i] + data[i + 1] + data[i + 2] < 3 * 110) ink++; // the demo labels are #222222 (antialiased)
    }
    expect(ink).toBeGreaterThan(20);
    expect(halo).toBeGreaterThan(ink); // a 1.5 px white halo around every glyph
  });
});
