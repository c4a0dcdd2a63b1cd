/**
 * Render queries of configured styles are prepared once per connection (src/render/index.ts
 * statementName); SLD_BODY styles are not; a registry reload gives new statements.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { renderMap } from '../src/render/index.js';
import { parseStyle } from '../src/render/style.js';

describe('prepared render statements', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({ database: { poolSize: 1 } }); // one connection: the one that prepared them
  });
  afterAll(async () => t?.close());

  const names = async (): Promise<string[]> =>
    (await t.ctx.pool.query(`SELECT name FROM pg_prepared_statements WHERE name LIKE 'gd_r%' ORDER BY name`)).rows.map((r) => r.name);

  it('one per layer query, reused by the next maps; none for SLD_BODY styles; new ones after a reload', async () => {
    const e = (
      await t.ctx.pool.query(`SELECT ST_X(ST_Centroid(geom)) x, ST_Y(ST_Centroid(geom)) y FROM public.parcels ORDER BY id LIMIT 1`)
    ).rows[0];
    const map = (dx: number) => ({
      layers: ['parcels', 'roads'].map((n) => ({ layer: t.ctx.registry.resolve(n) })),
      bbox: { minx: e.x - 200 + dx, miny: e.y - 200, maxx: e.x + 200 + dx, maxy: e.y + 200 },
      epsg: 2154,
      width: 256,
      height: 256,
      format: 'image/png' as const,
    });
    const before = await names();
    const first = await renderMap({ pool: t.ctx.pool }, map(0));
    const after = await names();
    // parcels, roads, and the roads' label candidates (names at this scale: src/render/index.ts labelQuery)
    expect(after.length - before.length).toBe(3);
    // other boxes: the same statements, and the same image as an unprepared first render gave
    await renderMap({ pool: t.ctx.pool }, map(37));
    // (labels seen again come from sprites: within a few 8-bit rounding steps, docs/rasteriser.md)
    const [p1, p2] = await Promise.all([first, await renderMap({ pool: t.ctx.pool }, map(0))].map((png) => sharp(png).raw().toBuffer()));
    let worst = 0;
    for (let i = 0; i < p1.length; i++) worst = Math.max(worst, Math.abs(p1[i] - p2[i]));
    expect(worst).toBeLessThanOrEqual(4);
    expect(await names()).toEqual(after);
    // a style sent with the request is not prepared
    const userStyle = parseStyle('u', { rules: [{ polygon: { fill: '#123456' } }] });
    await renderMap({ pool: t.ctx.pool }, { ...map(0), layers: [{ layer: t.ctx.registry.resolve('parcels'), userStyle }] });
    expect(await names()).toEqual(after);
    // a reload (new layer objects, perhaps new column types) prepares anew
    await t.ctx.registry.reload();
    await renderMap({ pool: t.ctx.pool }, map(0));
    const fresh = (await names()).filter((n) => !after.includes(n));
    expect(fresh.length).toBe(3);
  });
});
