/**
 * Style semantics of Symbology Encoding (issue 20 item 7): within one FeatureTypeStyle the
 * features are drawn in data order, each by all its rules; separate FeatureTypeStyles are
 * separate passes (road casings); a per-pixel cell of a dense region map takes the colour of its
 * dominant class. Checked on decoded PNG pixels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import sharp from 'sharp';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { renderMap } from '../src/render/index.js';
import { parseStyle } from '../src/render/style.js';
import { fixtureText } from './helpers/fixtures.js';

const S = `carto_fts_${process.pid}`;
const X = 900000;
const Y = 6800000;

async function rgba(png: Buffer) {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, at: (x: number, y: number) => [...data.subarray((y * info.width + x) * 4, (y * info.width + x) * 4 + 4)] };
}
const isRed = (p: number[]) => p[0] > 200 && p[1] < 60 && p[2] < 60;
const isBlue = (p: number[]) => p[2] > 200 && p[0] < 60 && p[1] < 60;
const isBlack = (p: number[]) => p[0] < 40 && p[1] < 40 && p[2] < 40 && p[3] > 200;

describe('SE feature type styles and rule semantics', () => {
  let t: TestApp;
  let db: pg.Client;
  beforeAll(async () => {
    db = new pg.Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    await db.query(`DROP SCHEMA IF EXISTS ${S} CASCADE; CREATE SCHEMA ${S};
      -- 6,000 points in 300 m × 300 m, categories interleaved in data order (a, b, a, b, …)
      CREATE TABLE ${S}.pts (id integer PRIMARY KEY, cat text, geom geometry(Point, 2154));
      INSERT INTO ${S}.pts SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END,
        ST_SetSRID(ST_MakePoint(${X} + (hashint4(i) & 65535) / 65535.0 * 300, ${Y} + (hashint4(i + 100000) & 65535) / 65535.0 * 300), 2154)
        FROM generate_series(1, 6000) i;
      -- two crossing roads: a north-south one of class b first, an east-west one of class a second
      -- (drawn rule by rule, b's rule being the last one, the first road would come out on top)
      CREATE TABLE ${S}.roads (id integer PRIMARY KEY, classe text, geom geometry(LineString, 2154));
      INSERT INTO ${S}.roads VALUES
        (1, 'b', ST_GeomFromText('LINESTRING(${X + 500} ${Y}, ${X + 500} ${Y + 1000})', 2154)),
        (2, 'a', ST_GeomFromText('LINESTRING(${X} ${Y + 500}, ${X + 1000} ${Y + 500})', 2154));
      -- tiny squares (0.5 m), three of class a for one of class b in the west half, the reverse in the east half
      CREATE TABLE ${S}.dots (id integer PRIMARY KEY, cat text, geom geometry(Polygon, 2154));
      INSERT INTO ${S}.dots SELECT i, CASE WHEN (gx < 50) = (i % 4 <> 0) THEN 'a' ELSE 'b' END,
        ST_MakeEnvelope(${X} + gx * 20 + (i % 4) * 3, ${Y} + gy * 20, ${X} + gx * 20 + (i % 4) * 3 + 0.5, ${Y} + gy * 20 + 0.5, 2154)
        FROM (SELECT i, (i / 4) % 100 AS gx, i / 400 AS gy FROM generate_series(0, 39999) i) s;
      -- overlapping squares, two of class a then one of class b (drawn by the renderer's own scan converter)
      CREATE TABLE ${S}.boxes (id integer PRIMARY KEY, cat text, geom geometry(Polygon, 2154));
      INSERT INTO ${S}.boxes VALUES
        (1, 'a', ST_MakeEnvelope(${X + 10}, ${Y + 10}, ${X + 50}, ${Y + 50}, 2154)),
        (2, 'a', ST_MakeEnvelope(${X + 30}, ${Y + 30}, ${X + 70}, ${Y + 70}, 2154)),
        (3, 'b', ST_MakeEnvelope(${X + 60}, ${Y + 60}, ${X + 100}, ${Y + 100}, 2154));
      ANALYZE ${S}.pts; ANALYZE ${S}.roads; ANALYZE ${S}.dots; ANALYZE ${S}.boxes`);
    const two = {
      rules: [
        { filter: "cat = 'a'", point: { mark: 'circle', size: 10, fill: '#ff0000' } },
        { filter: "cat = 'b'", point: { mark: 'square', size: 10, fill: '#0000ff' } },
      ],
    };
    const fill = (c: string) => ({ stroke: c, 'stroke-width': 4, 'stroke-linecap': 'butt' });
    const casing = { stroke: '#000000', 'stroke-width': 14, 'stroke-linecap': 'butt' };
    t = await makeTestApp({
      layers: [
        { table: `${S}.pts`, name: 'fts_pts', styles: { two } },
        {
          table: `${S}.roads`,
          name: 'fts_roads',
          styles: {
            // SE: two passes, the casings under every road
            passes: {
              featureTypeStyles: [
                { rules: [{ line: casing }] },
                {
                  rules: [
                    { filter: "classe = 'a'", line: fill('#ff0000') },
                    { filter: "classe = 'b'", line: fill('#0000ff') },
                  ],
                },
              ],
            },
            // one FeatureTypeStyle: each road drawn whole (casing, then fill) before the next
            single: {
              rules: [
                { filter: "classe = 'a'", line: [casing, fill('#ff0000')] },
                { filter: "classe = 'b'", line: [casing, fill('#0000ff')] },
              ],
            },
          },
        },
        {
          table: `${S}.dots`,
          name: 'fts_dots',
          styles: {
            two: {
              rules: [
                { filter: "cat = 'a'", polygon: { fill: '#ff0000' } },
                { filter: "cat = 'b'", polygon: { fill: '#0000ff' } },
              ],
            },
          },
        },
        {
          table: `${S}.boxes`,
          name: 'fts_boxes',
          styles: {
            two: {
              rules: [
                { filter: "cat = 'a'", polygon: { fill: '#ff0000', stroke: '#000000', 'stroke-width': 1.5 } },
                { filter: "cat = 'b'", polygon: { fill: '#0000ff', stroke: '#000000', 'stroke-width': 1.5 } },
              ],
            },
          },
        },
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
    await db?.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`).catch(() => undefined);
    await db?.end();
  });

  const render = (layer: string, style: string, bbox: { minx: number; miny: number; maxx: number; maxy: number }, size = 256) =>
    renderMap(t.ctx, {
      layers: [{ layer: t.ctx.registry.resolve(layer), style }],
      bbox,
      epsg: 2154,
      width: size,
      height: size,
      format: 'image/png',
      transparent: true,
    });

  it('dense interleaved points of two categories show both colours, in proportion', async () => {
    const png = await render('fts_pts', 'two', { minx: X, miny: Y, maxx: X + 300, maxy: Y + 300 });
    const { data } = await rgba(png);
    let red = 0;
    let blue = 0;
    for (let i = 0; i < data.length; i += 4) {
      const p = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (isRed(p)) red++;
      else if (isBlue(p)) blue++;
    }
    // drawn rule by rule (the old passes), the blue squares covered nearly every red circle
    expect(red + blue).toBeGreaterThan(0.8 * 256 * 256);
    expect(red / (red + blue)).toBeGreaterThan(0.3);
    expect(blue / (red + blue)).toBeGreaterThan(0.3);
  });

  it('two FeatureTypeStyles draw the casing under every road; one draws each road whole in turn', async () => {
    const bbox = { minx: X, miny: Y, maxx: X + 1000, maxy: Y + 1000 };
    // 256 px over 1000 m: the roads cross at pixel (128, 128); 6 px from the centre along the
    // first (north-south) road lies inside the second road's casing but outside its fill
    const passes = await rgba(await render('fts_roads', 'passes', bbox));
    expect(isRed(passes.at(128, 128))).toBe(true); // the second road's fill on top (data order)
    expect(isBlue(passes.at(128, 122))).toBe(true); // the first road's fill runs over the second's casing
    expect(isBlue(passes.at(128, 134))).toBe(true);
    expect(isBlack(passes.at(122, 128))).toBe(false); // and the second road's fill over the first's casing
    const single = await rgba(await render('fts_roads', 'single', bbox));
    expect(isRed(single.at(128, 128))).toBe(true);
    expect(isBlack(single.at(128, 122))).toBe(true); // the second road's casing cuts the first road
    expect(isBlack(single.at(128, 134))).toBe(true);
    expect(isBlue(single.at(128, 60))).toBe(true);
  });

  it('polygons are drawn whole (fill, then outline) in data order: a later one covers an earlier outline', async () => {
    // 128 m across 256 px: 2 px a metre; the first square's right edge (x = 50 m) runs inside the
    // second, of the same class (drawn fill by fill then outline by outline, it would show)
    const px = await rgba(await render('fts_boxes', 'two', { minx: X, miny: Y, maxx: X + 128, maxy: Y + 128 }));
    const col = (m: number) => m * 2;
    const row = (m: number) => (128 - m) * 2;
    // an outline 1.5 px wide straddles two pixels: the darkest of the three about the edge
    const darkest = (x: number, y: number) => Math.min(...[-1, 0, 1].map((d) => Math.max(...px.at(x + d, y).slice(0, 3))));
    for (const d of [-1, 0, 1]) expect(isRed(px.at(col(50) + d, row(40)))).toBe(true); // the first square's outline, under the second's fill
    expect(darkest(col(30), row(40))).toBeLessThan(80); // the second square's outline, over the first's fill
    expect(darkest(col(10), row(30))).toBeLessThan(80); // the first square's outer edge
    // the third square, of the other class, over the second: its fill over the second's outline
    for (const d of [-1, 0, 1]) expect(isBlue(px.at(col(70) + d, row(65)))).toBe(true);
    expect(isRed(px.at(col(20), row(20)))).toBe(true);
    expect(isBlue(px.at(col(80), row(80)))).toBe(true);
  });

  it('a per-pixel cell of a dense map takes the colour of its dominant class', async () => {
    // 2 km over 64 px: each pixel holds several sub-pixel squares of both classes
    const png = await render('fts_dots', 'two', { minx: X, miny: Y, maxx: X + 2000, maxy: Y + 2000 }, 64);
    const { at } = await rgba(png);
    let westRed = 0;
    let eastBlue = 0;
    let west = 0;
    let east = 0;
    for (let y = 4; y < 60; y++) {
      for (let x = 2; x < 30; x++) {
        const p = at(x, y);
        if (p[3] < 200) continue;
        west++;
        if (isRed(p)) westRed++;
      }
      for (let x = 34; x < 62; x++) {
        const p = at(x, y);
        if (p[3] < 200) continue;
        east++;
        if (isBlue(p)) eastBlue++;
      }
    }
    expect(west).toBeGreaterThan(500);
    expect(east).toBeGreaterThan(500);
    // with the OR of the rules' matches every mixed pixel was drawn by both rules: blue, the last one
    expect(westRed / west).toBeGreaterThan(0.95);
    expect(eastBlue / east).toBeGreaterThan(0.95);
  });

  it('YAML featureTypeStyles and SLD FeatureTypeStyles give one pass each; else rules are per FeatureTypeStyle', () => {
    const yaml = parseStyle('y', {
      featureTypeStyles: [
        { rules: [{ filter: "classe = 'a'", line: { stroke: '#000' } }] },
        { rules: [{ else: true, line: { stroke: '#fff' } }] },
      ],
    });
    expect(yaml.rules.map((r) => r.fts)).toEqual([0, 1]);
    expect(() => parseStyle('y', { rules: [{ line: {} }], featureTypeStyles: [{ rules: [{ line: {} }] }] })).toThrow(/not both/);
    expect(() => parseStyle('y', { featureTypeStyles: [{ rules: [] }] })).toThrow(/featureTypeStyles\[0\]\.rules/);
    const sld = parseStyle('s', {
      sld: `<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld"><NamedLayer><Name>r</Name><UserStyle>
        <FeatureTypeStyle><Rule><LineSymbolizer><Stroke><CssParameter name="stroke">#000000</CssParameter></Stroke></LineSymbolizer></Rule></FeatureTypeStyle>
        <FeatureTypeStyle><Rule><LineSymbolizer/></Rule><Rule><ElseFilter/><LineSymbolizer/></Rule></FeatureTypeStyle>
      </UserStyle></NamedLayer></StyledLayerDescriptor>`,
    });
    expect(sld.rules.map((r) => r.fts)).toEqual([0, 1, 1]);
  });

  it('an SLD_BODY with two FeatureTypeStyles draws the casing under every road', async () => {
    const sld = fixtureText('sld/roads-casing.sld');
    const res = await t.app.inject({
      method: 'GET',
      url: '/wms',
      query: {
        SERVICE: 'WMS',
        VERSION: '1.3.0',
        REQUEST: 'GetMap',
        SLD_BODY: sld,
        CRS: 'EPSG:2154',
        BBOX: `${X},${Y},${X + 1000},${Y + 1000}`,
        WIDTH: '256',
        HEIGHT: '256',
        FORMAT: 'image/png',
        TRANSPARENT: 'TRUE',
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const { at } = await rgba(res.rawPayload);
    expect(isRed(at(128, 128))).toBe(true);
    expect(isBlue(at(128, 122))).toBe(true);
    expect(isBlue(at(128, 134))).toBe(true);
  });
});
