/**
 * Reprojection by one affine map (src/render/reproject.ts): the fit's error against proj4 on
 * points it was not fitted on, where it is refused, proj4's agreement with PostGIS, and maps drawn
 * through it against the same maps drawn through ST_Transform, pixel by pixel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import proj4 from 'proj4';
import sharp from 'sharp';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { APPROX_TOLERANCE_PX, approxScreenAffine, projAgreement } from '../src/render/reproject.js';
import { renderMap } from '../src/render/index.js';
import { transformExtent } from '../src/crs/index.js';
import type { Extent } from '../src/registry/types.js';

/** A square view of `w` layer-CRS metres around (cx, cy) in Lambert-93, as a bbox in `epsg`. */
function view(cx: number, cy: number, w: number, epsg: number): Extent {
  const b = transformExtent({ minx: cx - w / 2, miny: cy - w / 2, maxx: cx + w / 2, maxy: cy + w / 2 }, 2154, epsg);
  const s = Math.max(b.maxx - b.minx, b.maxy - b.miny) / 2;
  const mx = (b.minx + b.maxx) / 2;
  const my = (b.miny + b.maxy) / 2;
  return { minx: mx - s, miny: my - s, maxx: mx + s, maxy: my + s };
}

describe('affine fit of a reprojection', () => {
  for (const [epsg, scale, w] of [
    [3857, 'street', 400],
    [3857, 'town', 4000],
    [4326, 'street', 400],
    [4326, 'town', 4000],
  ] as const) {
    it(`EPSG:2154 → ${epsg}, ${scale} scale: within ${APPROX_TOLERANCE_PX} px of proj4 at 500 random points`, () => {
      const bbox = view(1050000, 6840000, w, epsg);
      const search = transformExtent(bbox, epsg, 2154);
      const fit = approxScreenAffine(2154, epsg, search, bbox, 256, 256, 0);
      expect(fit).not.toBeNull();
      const fwd = proj4('EPSG:2154', `EPSG:${epsg}`);
      const sx = 256 / (bbox.maxx - bbox.minx);
      const sy = 256 / (bbox.maxy - bbox.miny);
      let seed = 7;
      const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
      let worst = 0;
      for (let i = 0; i < 500; i++) {
        const x = search.minx + rnd() * (search.maxx - search.minx);
        const y = search.miny + rnd() * (search.maxy - search.miny);
        const [X, Y] = fwd.forward([x, y]);
        const px = (X - bbox.minx) * sx;
        const py = (bbox.maxy - Y) * sy;
        worst = Math.max(worst, Math.hypot(fit!.a * x + fit!.b * y + fit!.xoff - px, fit!.d * x + fit!.e * y + fit!.yoff - py));
      }
      expect(worst).toBeLessThan(APPROX_TOLERANCE_PX);
      // the reported error (grid maximum) is the real one to within a few percent of the tolerance
      expect(Math.abs(worst - fit!.errorPx)).toBeLessThan(APPROX_TOLERANCE_PX / 4);
    });
  }

  it('is refused where a view is too large to be affine, or when proj4 and PostGIS disagree', () => {
    const region = view(930000, 6850000, 150000, 3857);
    expect(approxScreenAffine(2154, 3857, transformExtent(region, 3857, 2154), region, 256, 256, 0)).toBeNull();
    const street = view(930000, 6850000, 400, 3857);
    const search = transformExtent(street, 3857, 2154);
    expect(approxScreenAffine(2154, 3857, search, street, 256, 256, 0)).not.toBeNull();
    // a disagreement of 1 m is most of a pixel at this scale (~2.3 m per pixel): refused
    expect(approxScreenAffine(2154, 3857, search, street, 256, 256, 1)).toBeNull();
    expect(approxScreenAffine(2154, 3857, search, street, 256, 256, Infinity)).toBeNull();
    // a CRS proj4 does not know here
    expect(approxScreenAffine(27572, 3857, search, street, 256, 256, 0)).toBeNull();
  });
});

describe('maps drawn through the affine fit', () => {
  let t: TestApp;
  let centre: [number, number];
  beforeAll(async () => {
    t = await makeTestApp({});
    const r = (
      await t.ctx.pool.query(`SELECT ST_X(c) x, ST_Y(c) y FROM (SELECT ST_Centroid(geom) c FROM public.parcels ORDER BY id LIMIT 1) s`)
    ).rows[0];
    centre = [r.x, r.y];
  });
  afterAll(async () => t?.close());

  it('proj4 agrees with PostGIS for 2154 → 3857 and 4326; a CRS proj4 lacks is never approximated', async () => {
    const client = await t.ctx.pool.connect();
    try {
      await client.query('BEGIN');
      const e = { minx: 760000, miny: 6700000, maxx: 1080000, maxy: 6990000 };
      expect(await projAgreement(client, 2154, 3857, e)).toBeLessThan(0.001); // metres
      expect(await projAgreement(client, 2154, 4326, e)).toBeLessThan(1e-8); // degrees
      expect(await projAgreement(client, 2154, 27572, e)).toBe(Infinity);
      // the transaction is still usable after the failed transformation
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });

  for (const [epsg, w] of [
    [3857, 400],
    [3857, 4000],
    [4326, 400],
    [4326, 4000],
  ] as const) {
    it(`EPSG:${epsg}, a ${w} m view: the same pixels as through ST_Transform`, async () => {
      const bbox = view(centre[0], centre[1], w, epsg);
      const o = {
        layers: ['parcels', 'pois'].map((n) => ({ layer: t.ctx.registry.resolve(n) })),
        bbox,
        epsg,
        width: 256,
        height: 256,
        format: 'image/png' as const,
      };
      const timings: Record<string, number> = {};
      const [a, b] = await Promise.all([
        renderMap({ pool: t.ctx.pool }, { ...o, timings }),
        renderMap({ pool: t.ctx.pool }, { ...o, exactReprojection: true }),
      ]);
      expect(timings.approx).toBe(2); // both layers took the affine map
      const [da, db] = await Promise.all([a, b].map((png) => sharp(png).raw().toBuffer()));
      let close = 0;
      let drawn = 0;
      for (let i = 0; i < da.length; i += 3) {
        if (Math.max(Math.abs(da[i] - db[i]), Math.abs(da[i + 1] - db[i + 1]), Math.abs(da[i + 2] - db[i + 2])) <= 32) close++;
        if (db[i] + db[i + 1] + db[i + 2] < 3 * 250) drawn++;
      }
      expect(drawn).toBeGreaterThan(256 * 64); // the view is not empty
      expect(close / (da.length / 3)).toBeGreaterThan(0.99);
    });
  }
});
