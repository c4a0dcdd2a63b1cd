import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import pg from 'pg';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';
import { transformPoint, transformExtent, resolveWmsCrs } from '../src/crs/index.js';
import { decodeTwkb } from '../src/render/twkb.js';
import { parseStyle, StyleError } from '../src/render/style.js';
import { renderMap } from '../src/render/index.js';
import { ConfigError, validateConfig } from '../src/config/index.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixtureText } from './helpers/fixtures.js';

/** An SLD rule filling every polygon with one colour. */
const fillRule = (colour: string) =>
  `<Rule><PolygonSymbolizer><Fill><CssParameter name="fill">${colour}</CssParameter></Fill></PolygonSymbolizer></Rule>`;

// A red 10 km square centred on (905000, 6805000) in Lambert-93, and a blue point far from it.
const SQ = { minx: 900000, miny: 6800000, maxx: 910000, maxy: 6810000 };
const CX = 905000;
const CY = 6805000;

const config = {
  limits: { maxImageWidth: 2000, maxImageHeight: 2000, maxConcurrentRenders: 2, renderQueue: 4 },
  layerGroups: [
    { name: 'squares_and_roads', title: 'Carrés et routes', layers: ['squares', 'roads', 'not_a_layer'] },
    { name: 'nothing_published', layers: ['not_a_layer'] },
  ],
  layers: [
    { table: 'public.communes' },
    { table: 'public.parcels' },
    { table: 'public.roads' },
    { table: 'public.pois' },
    {
      table: 'wmstest.squares',
      name: 'squares',
      title: 'Test squares',
      styles: {
        red: { title: 'Red', rules: [{ title: 'Square', polygon: { fill: '#ff0000' } }] },
        green: {
          title: 'Green by kind',
          rules: [
            { title: 'Big', filter: "kind = 'big'", polygon: { fill: '#00ff00' } },
            { title: 'Other', else: true, polygon: { fill: '#0000ff' } },
          ],
        },
        small: { title: 'Only at large scales', rules: [{ title: 'Square', maxScaleDenominator: 50000, polygon: { fill: '#ff0000' } }] },
        sld: {
          sld: fixtureText('sld/squares-by-kind.sld'),
        },
      },
    },
  ],
};

let t: TestApp;

beforeAll(async () => {
  const c = new pg.Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  await c.query(`CREATE SCHEMA IF NOT EXISTS wmstest;
    DROP TABLE IF EXISTS wmstest.squares;
    CREATE TABLE wmstest.squares (id int PRIMARY KEY, kind text, nom text, geom geometry(Polygon, 2154));
    INSERT INTO wmstest.squares VALUES
      (1, 'big', 'Carré rouge', ST_MakeEnvelope(${SQ.minx}, ${SQ.miny}, ${SQ.maxx}, ${SQ.maxy}, 2154)),
      (2, 'small', 'Petit carré', ST_MakeEnvelope(950000, 6850000, 951000, 6851000, 2154));
    CREATE INDEX ON wmstest.squares USING gist (geom);
    ANALYZE wmstest.squares;`);
  await c.end();
  t = await makeTestApp(config);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

async function get(params: Record<string, string | number>) {
  const qs = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
  return t.app.inject({ method: 'GET', url: `/wms?${qs}` });
}

async function pixels(buf: Buffer) {
  const { data, info } = await sharp(buf).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    info,
    at(x: number, y: number): [number, number, number, number] {
      const i = (y * info.width + x) * 4;
      return [data[i], data[i + 1], data[i + 2], data[i + 3]];
    },
  };
}

function getMapParams(version: string, crs: string, bbox: number[], extra: Record<string, string | number> = {}) {
  return {
    SERVICE: 'WMS',
    VERSION: version,
    REQUEST: 'GetMap',
    LAYERS: 'squares',
    STYLES: 'red',
    [version === '1.3.0' ? 'CRS' : 'SRS']: crs,
    BBOX: bbox.join(','),
    WIDTH: 200,
    HEIGHT: 200,
    FORMAT: 'image/png',
    TRANSPARENT: 'TRUE',
    ...extra,
  };
}

const isRed = (p: number[]) => p[0] > 200 && p[1] < 60 && p[2] < 60 && p[3] > 200;

describe('CRS module', () => {
  it('resolves WMS CRS names with the axis order of each version', () => {
    expect(resolveWmsCrs('EPSG:4326', '1.3.0')).toEqual({ epsg: 4326, code: 'EPSG:4326', swapAxes: true });
    expect(resolveWmsCrs('EPSG:4326', '1.1.1')?.swapAxes).toBe(false);
    expect(resolveWmsCrs('CRS:84', '1.3.0')).toEqual({ epsg: 4326, code: 'CRS:84', swapAxes: false });
    expect(resolveWmsCrs('EPSG:4258', '1.3.0')?.swapAxes).toBe(true);
    expect(resolveWmsCrs('EPSG:2154', '1.3.0')?.swapAxes).toBe(false);
    expect(resolveWmsCrs('EPSG:900913', '1.1.1')?.epsg).toBe(3857);
    expect(resolveWmsCrs('EPSG:3946', '1.3.0')?.epsg).toBe(3946);
    expect(resolveWmsCrs('EPSG:99999', '1.3.0')).toBeNull();
  });
  it('agrees with PostGIS on the transformations', async () => {
    const c = new pg.Client({ connectionString: testDatabaseUrl() });
    await c.connect();
    try {
      for (const epsg of [4326, 3857, 3035, 3948, 4258]) {
        const r = await c.query(`SELECT ST_X(p) x, ST_Y(p) y FROM ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), 2154), $3::int) p`, [
          CX,
          CY,
          epsg,
        ]);
        const [x, y] = transformPoint(CX, CY, 2154, epsg);
        const tolerance = epsg === 4326 || epsg === 4258 ? 1e-6 : 0.05;
        expect(Math.abs(x - r.rows[0].x)).toBeLessThan(tolerance);
        expect(Math.abs(y - r.rows[0].y)).toBeLessThan(tolerance);
      }
    } finally {
      await c.end();
    }
  });
  it('densifies extents so that curved edges are covered', () => {
    // a Lambert-93 rectangle in lon/lat: the top edge bulges north of the corners
    const e = { minx: 100000, miny: 6900000, maxx: 1200000, maxy: 7100000 };
    const dense = transformExtent(e, 2154, 4326);
    const corners = transformExtent(e, 2154, 4326, 1);
    expect(dense.maxy).toBeGreaterThan(corners.maxy + 0.01);
  });
});

describe('TWKB decoder', () => {
  it('decodes what PostGIS writes', async () => {
    const c = new pg.Client({ connectionString: testDatabaseUrl() });
    await c.connect();
    try {
      const r =
        await c.query(`SELECT ST_AsTWKB('MULTIPOLYGON(((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2)),((20 20,21.25 20,21 21,20 20)))'::geometry, 1) a,
        ST_AsTWKB('GEOMETRYCOLLECTION(POINT(1.5 -2),LINESTRING(0 0,5 5))'::geometry, 1) b`);
      const a = decodeTwkb(r.rows[0].a);
      expect(a).toHaveLength(2);
      expect(a[0].kind).toBe(3);
      expect(a[0].rings[0]).toEqual([0, 0, 10, 0, 10, 10, 0, 10, 0, 0]);
      expect(a[0].rings[1]).toEqual([2, 2, 3, 2, 3, 3, 2, 2]);
      expect(a[1].rings[0][2]).toBeCloseTo(21.3, 6);
      const b = decodeTwkb(r.rows[0].b);
      expect(b.map((p) => p.kind)).toEqual([1, 2]);
      expect(b[0].rings[0]).toEqual([1.5, -2]);
      expect(b[1].rings[0]).toEqual([0, 0, 5, 5]);
    } finally {
      await c.end();
    }
  });
});

describe('styles', () => {
  it('rejects a faulty style with a message naming the key', () => {
    expect(() => parseStyle('s', { rules: [{ line: { stroke: 'not a colour!' } }] })).toThrow(StyleError);
    expect(() => parseStyle('s', { rules: [{ point: { mark: 'hexagon' } }] })).toThrow(/mark/);
    expect(() => parseStyle('s', { rules: [{ filter: 'classe = ', line: {} }] })).toThrow(/filter/);
  });
});

describe('WMS GetMap: the known square lands where expected', () => {
  it('EPSG:2154 (1.3.0 and 1.1.1)', async () => {
    for (const version of ['1.3.0', '1.1.1']) {
      // 30 km wide map: the 10 km square covers the middle third
      const res = await get(getMapParams(version, 'EPSG:2154', [890000, 6790000, 920000, 6820000]));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toBe('image/png');
      const px = await pixels(res.rawPayload);
      expect(px.info.width).toBe(200);
      expect(isRed(px.at(100, 100))).toBe(true);
      expect(isRed(px.at(70, 70))).toBe(true);
      expect(isRed(px.at(129, 129))).toBe(true);
      expect(px.at(60, 60)[3]).toBe(0); // transparent background
      expect(px.at(140, 100)[3]).toBe(0);
      expect(px.at(5, 195)[3]).toBe(0);
    }
  });

  it('EPSG:3857 (and its alias EPSG:900913)', async () => {
    const [x, y] = transformPoint(CX, CY, 2154, 3857);
    const sq = transformExtent(SQ, 2154, 3857);
    const half = (sq.maxx - sq.minx) * 1.5;
    for (const crs of ['EPSG:3857', 'EPSG:900913']) {
      const res = await get(getMapParams('1.3.0', crs, [x - half, y - half, x + half, y + half]));
      expect(res.statusCode, res.body).toBe(200);
      const px = await pixels(res.rawPayload);
      expect(isRed(px.at(100, 100))).toBe(true);
      expect(px.at(10, 10)[3]).toBe(0);
      expect(px.at(190, 190)[3]).toBe(0);
    }
  });

  it('EPSG:4326 lat/lon in 1.3.0, lon/lat in 1.1.1, CRS:84 lon/lat', async () => {
    const [lon, lat] = transformPoint(CX, CY, 2154, 4326);
    const d = 0.25; // degrees: the square (≈0.13° × 0.09°) sits in the middle
    const latlon = [lat - d, lon - d, lat + d, lon + d];
    const lonlat = [lon - d, lat - d, lon + d, lat + d];
    const cases: [string, string, number[]][] = [
      ['1.3.0', 'EPSG:4326', latlon],
      ['1.1.1', 'EPSG:4326', lonlat],
      ['1.3.0', 'CRS:84', lonlat],
      ['1.1.1', 'CRS:84', lonlat],
      ['1.3.0', 'EPSG:4258', latlon],
    ];
    for (const [version, crs, bbox] of cases) {
      const res = await get(getMapParams(version, crs, bbox));
      expect(res.statusCode, `${version} ${crs}: ${res.body}`).toBe(200);
      const px = await pixels(res.rawPayload);
      expect(isRed(px.at(100, 100)), `${version} ${crs}`).toBe(true);
      expect(px.at(10, 10)[3]).toBe(0);
    }
    // the wrong axis order puts the map somewhere else entirely: no red at the centre
    const wrong = await get(getMapParams('1.3.0', 'EPSG:4326', lonlat));
    expect(wrong.statusCode).toBe(200);
    expect(isRed((await pixels(wrong.rawPayload)).at(100, 100))).toBe(false);
  });

  it('opaque background with BGCOLOR, and the style colours of filtered rules', async () => {
    const res = await get(
      getMapParams('1.3.0', 'EPSG:2154', [890000, 6790000, 960000, 6860000], {
        TRANSPARENT: 'FALSE',
        BGCOLOR: '0x123456',
        STYLES: 'green',
        WIDTH: 700,
        HEIGHT: 700,
      }),
    );
    expect(res.statusCode, res.body).toBe(200);
    const px = await pixels(res.rawPayload);
    expect(px.at(5, 5)).toEqual([0x12, 0x34, 0x56, 255]);
    expect(px.at(150, 550)).toEqual([0, 255, 0, 255]); // the big square, rule kind = 'big'
    expect(px.at(605, 95)).toEqual([0, 0, 255, 255]); // the small square at 950500,6850500, else rule
  });

  it('draws a named style written in SLD 1.0 XML', async () => {
    const res = await get(
      getMapParams('1.3.0', 'EPSG:2154', [890000, 6790000, 960000, 6860000], {
        TRANSPARENT: 'FALSE',
        STYLES: 'sld',
        WIDTH: 700,
        HEIGHT: 700,
      }),
    );
    expect(res.statusCode, res.body).toBe(200);
    const px = await pixels(res.rawPayload);
    expect(px.at(150, 550)).toEqual([255, 0, 255, 255]);
    expect(px.at(605, 95)).toEqual([0, 255, 255, 255]);
    const legend = await get({ SERVICE: 'WMS', REQUEST: 'GetLegendGraphic', LAYER: 'squares', STYLE: 'sld', FORMAT: 'image/png' });
    const lp = await pixels(legend.rawPayload);
    expect(lp.at(14, 14)).toEqual([255, 0, 255, 255]);
  });

  it('encodes PNG 8-bit, JPEG and WebP', async () => {
    const bbox = [890000, 6790000, 920000, 6820000];
    for (const [format, type, fmt] of [
      ['image/png; mode=8bit', 'image/png', 'png'],
      ['image/jpeg', 'image/jpeg', 'jpeg'],
      ['image/webp', 'image/webp', 'webp'],
    ]) {
      const res = await get(getMapParams('1.3.0', 'EPSG:2154', bbox, { FORMAT: format, TRANSPARENT: 'FALSE' }));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toBe(type);
      const meta = await sharp(res.rawPayload).metadata();
      expect(meta.format).toBe(fmt);
      if (fmt === 'png') expect(meta.paletteBitDepth ?? meta.bitsPerSample).toBeLessThanOrEqual(8);
      const px = await pixels(res.rawPayload);
      expect(isRed(px.at(100, 100))).toBe(true);
      const bg = px.at(10, 10);
      expect(bg[0] > 240 && bg[1] > 240 && bg[2] > 240).toBe(true);
    }
  });

  it('draws sub-pixel features as one pixel (reduced per pixel in SQL)', async () => {
    // 10 km per pixel: the 1 km square is reduced to its pixel in SQL, the 10 km one is one pixel
    const res = await get(getMapParams('1.3.0', 'EPSG:2154', [400000, 6300000, 1400000, 7300000], { WIDTH: 100, HEIGHT: 100 }));
    expect(res.statusCode, res.body).toBe(200);
    const px = await pixels(res.rawPayload);
    expect(isRed(px.at(55, 44))).toBe(true);
    expect(isRed(px.at(50, 49))).toBe(true);
    let drawn = 0;
    for (let y = 0; y < 100; y++) for (let x = 0; x < 100; x++) if (px.at(x, y)[3] > 0) drawn++;
    expect(drawn).toBe(2);
  });

  it('respects scale denominators', async () => {
    // 30 km over 200 px: scale ≈ 535,714 > 50,000 → nothing drawn
    const far = await pixels(
      (await get(getMapParams('1.3.0', 'EPSG:2154', [890000, 6790000, 920000, 6820000], { STYLES: 'small' }))).rawPayload,
    );
    expect(far.at(100, 100)[3]).toBe(0);
    const near = await pixels(
      (await get(getMapParams('1.3.0', 'EPSG:2154', [904000, 6804000, 906000, 6806000], { STYLES: 'small' }))).rawPayload,
    );
    expect(isRed(near.at(100, 100))).toBe(true);
  });

  it('draws every demo layer with its categorised style', async () => {
    const res = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetMap',
      LAYERS: 'communes,parcels,roads,pois',
      STYLES: '',
      CRS: 'EPSG:2154',
      BBOX: '760000,6700000,1080000,6990000',
      WIDTH: 640,
      HEIGHT: 580,
      FORMAT: 'image/png',
    });
    expect(res.statusCode, res.body).toBe(200);
    const { data } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    const colours = new Set<string>();
    for (let i = 0; i < data.length; i += 4) colours.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
    expect(colours.size).toBeGreaterThan(50);
    // the autoroute red of the roads style appears
    let autoroute = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] === 0xe8 && data[i + 1] === 0x42 && data[i + 2] === 0x3f) autoroute++;
    expect(autoroute).toBeGreaterThan(0);
  });

  it('renderMap works without HTTP', async () => {
    const layer = t.ctx.registry.resolve('squares')!;
    const png = await renderMap(t.ctx, {
      layers: [{ layer, style: 'red' }],
      bbox: { minx: 890000, miny: 6790000, maxx: 920000, maxy: 6820000 },
      epsg: 2154,
      width: 64,
      height: 64,
      format: 'image/png',
      transparent: true,
    });
    const px = await pixels(png);
    expect(isRed(px.at(32, 32))).toBe(true);
  });
});

describe('WMS errors', () => {
  const base = getMapParams('1.3.0', 'EPSG:2154', [890000, 6790000, 920000, 6820000]);
  it('XML exceptions with code and locator', async () => {
    const cases: [Record<string, string | number>, string, string][] = [
      [{ ...base, LAYERS: 'nope' }, 'LayerNotDefined', 'layers'],
      [{ ...base, STYLES: 'nope' }, 'StyleNotDefined', 'styles'],
      [{ ...base, CRS: 'EPSG:99999' }, 'InvalidCRS', 'crs'],
      [{ ...base, FORMAT: 'image/gif' }, 'InvalidFormat', 'format'],
      [{ ...base, BBOX: '1,2,3' }, 'InvalidParameterValue', 'bbox'],
      [{ ...base, BBOX: '10,2,3,4' }, 'InvalidParameterValue', 'bbox'],
      [{ ...base, WIDTH: 5000 }, 'InvalidParameterValue', 'width'],
      [{ ...base, BGCOLOR: 'red' }, 'InvalidParameterValue', 'bgcolor'],
    ];
    for (const [params, code, locator] of cases) {
      const res = await get(params);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.headers['content-type']).toMatch(/xml/);
      expect(res.body).toContain(`code="${code}"`);
      expect(res.body).toContain(`locator="${locator}"`);
    }
    const v111 = await get({ ...getMapParams('1.1.1', 'EPSG:99999', [0, 0, 1, 1]) });
    expect(v111.body).toContain('code="InvalidSRS"');
    expect(v111.body).toContain('<!DOCTYPE ServiceExceptionReport');
  });

  it('EXCEPTIONS=INIMAGE draws the message in an image; BLANK answers an empty image', async () => {
    const inimage = await get({ ...base, LAYERS: 'nope', EXCEPTIONS: 'INIMAGE', TRANSPARENT: 'FALSE' });
    expect(inimage.statusCode).toBe(200);
    expect(inimage.headers['content-type']).toBe('image/png');
    const { data } = await sharp(inimage.rawPayload).raw().toBuffer({ resolveWithObject: true });
    let reddish = 0;
    for (let i = 0; i < data.length; i += 3) if (data[i] > 150 && data[i + 1] < 120) reddish++;
    expect(reddish).toBeGreaterThan(20); // the message text
    const blank = await get({ ...base, LAYERS: 'nope', EXCEPTIONS: 'application/vnd.ogc.se_blank', VERSION: '1.1.1', SRS: 'EPSG:2154' });
    expect(blank.statusCode).toBe(200);
    const px = await pixels(blank.rawPayload);
    const meta = await sharp(blank.rawPayload).metadata();
    expect(meta.width).toBe(200);
    for (const [x, y] of [
      [0, 0],
      [100, 100],
      [199, 199],
    ])
      expect(px.at(x, y)[3]).toBe(0);
    // XML when the image itself cannot be described
    const xml = await get({ ...base, LAYERS: 'nope', EXCEPTIONS: 'INIMAGE', FORMAT: 'image/gif' });
    expect(xml.statusCode).toBe(400);
    expect(xml.body).toContain('ServiceExceptionReport');
  });

  it('a full render queue answers 503 with Retry-After', async () => {
    const { app, close } = await makeTestApp({ ...config, limits: { maxConcurrentRenders: 1, renderQueue: 0 } });
    try {
      const big = new URLSearchParams({
        ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, String(v)])),
        LAYERS: 'parcels,roads,communes',
        STYLES: '',
        BBOX: '760000,6700000,1080000,6990000',
        WIDTH: '1500',
        HEIGHT: '1500',
      }).toString();
      const replies = await Promise.all(Array.from({ length: 4 }, () => app.inject({ method: 'GET', url: `/wms?${big}` })));
      const busy = replies.filter((r) => r.statusCode === 503);
      expect(replies.filter((r) => r.statusCode === 200).length).toBeGreaterThanOrEqual(1);
      expect(busy.length).toBeGreaterThanOrEqual(1);
      expect(busy[0].headers['retry-after']).toBeDefined();
      expect(busy[0].body).toContain('ServerBusy');
    } finally {
      await close();
    }
  });

  it('a render over the time limit answers a ServiceException', async () => {
    const { app, close } = await makeTestApp({ ...config, limits: { renderTimeoutMs: 1 } });
    try {
      const qs = new URLSearchParams({
        ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, String(v)])),
        LAYERS: 'parcels,parcels,parcels',
        STYLES: '',
        BBOX: '760000,6700000,1080000,6990000',
        WIDTH: '1000',
        HEIGHT: '1000',
      }).toString();
      const res = await app.inject({ method: 'GET', url: `/wms?${qs}` });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain('ServiceExceptionReport');
      expect(res.body).toMatch(/longer/);
    } finally {
      await close();
    }
  });
});

describe('WMS GetFeatureInfo', () => {
  const info = (version: string, extra: Record<string, string | number>) => ({
    ...getMapParams(version, 'EPSG:2154', [890000, 6790000, 920000, 6820000]),
    REQUEST: 'GetFeatureInfo',
    QUERY_LAYERS: 'squares',
    ...extra,
  });
  it('returns the feature under the pixel in each format', async () => {
    const json = await get(info('1.3.0', { I: 100, J: 100, INFO_FORMAT: 'application/json' }));
    expect(json.statusCode, json.body).toBe(200);
    const fc = JSON.parse(json.body);
    expect(fc.features).toHaveLength(1);
    expect(fc.features[0].properties).toMatchObject({ id: 1, kind: 'big', nom: 'Carré rouge' });
    expect(fc.features[0].geometry.type).toBe('Polygon');
    const plain = await get(info('1.1.1', { X: 100, Y: 100, INFO_FORMAT: 'text/plain' }));
    expect(plain.body).toContain('Carré rouge');
    const html = await get(info('1.3.0', { I: 100, J: 100, INFO_FORMAT: 'text/html' }));
    expect(html.headers['content-type']).toMatch(/text\/html/);
    expect(html.body).toContain('<td>Carré rouge</td>');
    const gml = await get(info('1.3.0', { I: 100, J: 100, INFO_FORMAT: 'application/vnd.ogc.gml' }));
    expect(gml.body).toContain('<geodata:nom>Carré rouge</geodata:nom>');
    expect(gml.body).toContain('gml:Polygon');
    // outside the square: nothing
    const none = await get(info('1.3.0', { I: 10, J: 10, INFO_FORMAT: 'application/json' }));
    expect(JSON.parse(none.body).features).toHaveLength(0);
  });
  it('finds the feature with lat/lon axis order and honours scale ranges', async () => {
    const [lon, lat] = transformPoint(CX, CY, 2154, 4326);
    const res = await get({
      ...info('1.3.0', { I: 50, J: 50, INFO_FORMAT: 'application/json' }),
      CRS: 'EPSG:4326',
      BBOX: [lat - 0.01, lon - 0.01, lat + 0.01, lon + 0.01].join(','),
      WIDTH: 101,
      HEIGHT: 101,
    });
    expect(JSON.parse(res.body).features[0]?.id).toBe('squares.1');
    const hidden = await get(info('1.3.0', { I: 100, J: 100, INFO_FORMAT: 'application/json', STYLES: 'small' }));
    expect(JSON.parse(hidden.body).features).toHaveLength(0);
  });
  it('FEATURE_COUNT and a pixel tolerance find nearby points', async () => {
    const c = await t.ctx.pool.query(`SELECT ST_X(geom) x, ST_Y(geom) y FROM public.pois ORDER BY id LIMIT 1`);
    const { x, y } = c.rows[0];
    // the POI sits 2 px right of the clicked pixel's centre
    const res = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetFeatureInfo',
      LAYERS: 'pois',
      QUERY_LAYERS: 'pois',
      STYLES: '',
      CRS: 'EPSG:2154',
      BBOX: [x - 102.5, y - 100.5, x + 98.5, y + 100.5].join(','),
      WIDTH: 201,
      HEIGHT: 201,
      I: 100,
      J: 100,
      INFO_FORMAT: 'application/json',
      FEATURE_COUNT: 5,
    });
    const fc = JSON.parse(res.body);
    expect(fc.features.length).toBeGreaterThanOrEqual(1);
    expect(fc.features.length).toBeLessThanOrEqual(5);
    expect(fc.features[0].id).toBe(`pois.${(await t.ctx.pool.query('SELECT min(id) m FROM public.pois')).rows[0].m}`);
  });
  it('rejects bad points and non-queried layers', async () => {
    const bad = await get(info('1.3.0', { I: 500, J: 1, INFO_FORMAT: 'text/plain' }));
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('code="InvalidPoint"');
    const notInMap = await get(info('1.3.0', { I: 1, J: 1, QUERY_LAYERS: 'roads' }));
    expect(notInMap.body).toContain('LayerNotDefined');
    const fmt = await get(info('1.3.0', { I: 1, J: 1, INFO_FORMAT: 'image/png' }));
    expect(fmt.body).toContain('InvalidFormat');
  });
});

describe('WMS GetLegendGraphic', () => {
  it('draws each rule of a style', async () => {
    const res = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetLegendGraphic',
      LAYER: 'squares',
      STYLE: 'green',
      FORMAT: 'image/png',
    });
    expect(res.statusCode, res.body).toBe(200);
    const px = await pixels(res.rawPayload);
    expect(px.info.height).toBe(2 * 24 + 4);
    expect(px.at(14, 14)).toEqual([0, 255, 0, 255]);
    expect(px.at(14, 38)).toEqual([0, 0, 255, 255]);
    // roads: autoroute, nationale, chemin, communale, départementale (casings share their row)
    const roads = await get({ SERVICE: 'WMS', REQUEST: 'GetLegendGraphic', LAYER: 'roads', FORMAT: 'image/png' });
    expect(roads.statusCode).toBe(200);
    expect((await sharp(roads.rawPayload).metadata()).height).toBe(5 * 24 + 4);
    // at 1:1,000,000 chemins and communales are not drawn, so not in the legend
    const roadsAtScale = await get({ SERVICE: 'WMS', REQUEST: 'GetLegendGraphic', LAYER: 'roads', FORMAT: 'image/png', SCALE: 1000000 });
    expect((await sharp(roadsAtScale.rawPayload).metadata()).height).toBe(3 * 24 + 4);
    const bad = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetLegendGraphic',
      LAYER: 'squares',
      STYLE: 'nope',
      FORMAT: 'image/png',
    });
    expect(bad.body).toContain('StyleNotDefined');
  });
});

describe('WMS GetCapabilities', () => {
  it('1.3.0 lists layers, styles, CRSs and bounding boxes in the right axis order', async () => {
    const res = await get({ SERVICE: 'WMS', REQUEST: 'GetCapabilities' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<WMS_Capabilities version="1.3.0"');
    for (const n of ['communes', 'parcels', 'roads', 'pois', 'squares']) expect(res.body).toContain(`<Name>${n}</Name>`);
    for (const c of ['EPSG:2154', 'EPSG:3857', 'EPSG:4326', 'EPSG:4258', 'EPSG:3035', 'EPSG:3942', 'EPSG:3950', 'CRS:84'])
      expect(res.body).toContain(`<CRS>${c}</CRS>`);
    const sq = res.body.slice(res.body.indexOf('<Name>squares</Name>'));
    const bb4326 = sq.match(/<BoundingBox CRS="EPSG:4326" minx="([\d.]+)" miny="([\d.]+)"/)!;
    const ll = transformExtent({ minx: 900000, miny: 6800000, maxx: 951000, maxy: 6851000 }, 2154, 4326);
    expect(Number(bb4326[1])).toBeCloseTo(ll.miny, 3); // latitude first
    expect(Number(bb4326[2])).toBeCloseTo(ll.minx, 3);
    expect(sq).toMatch(/<BoundingBox CRS="EPSG:2154" minx="900000" miny="6800000" maxx="951000" maxy="6851000"/);
    expect(sq).toContain('<Name>green</Name>');
    expect(sq).toContain('REQUEST=GetLegendGraphic');
  });
  it('1.1.1 uses SRS, lon/lat boxes and a DOCTYPE', async () => {
    const res = await get({ SERVICE: 'WMS', REQUEST: 'GetCapabilities', VERSION: '1.1.1' });
    expect(res.headers['content-type']).toMatch(/application\/vnd\.ogc\.wms_xml/);
    expect(res.body).toContain('<!DOCTYPE WMT_MS_Capabilities SYSTEM');
    const sq = res.body.slice(res.body.indexOf('<Name>squares</Name>'));
    const bb = sq.match(/<BoundingBox SRS="EPSG:4326" minx="([\d.]+)"/)!;
    expect(Number(bb[1])).toBeLessThan(10); // longitude first
  });
  it.skipIf(!canValidate)('validates against the OGC schemas (1.3.0 XSD, 1.1.1 DTD, exceptions)', async () => {
    const c13 = (await get({ SERVICE: 'WMS', REQUEST: 'GetCapabilities', VERSION: '1.3.0' })).body;
    const c11 = (await get({ SERVICE: 'WMS', REQUEST: 'GetCapabilities', VERSION: '1.1.1' })).body;
    const e13 = (await get({ ...getMapParams('1.3.0', 'EPSG:2154', [0, 0, 1, 1]), LAYERS: 'nope' })).body;
    const e11 = (await get({ ...getMapParams('1.1.1', 'EPSG:2154', [0, 0, 1, 1]), LAYERS: 'nope' })).body;
    const results = validateXml([c13, c11, e13, e11]);
    for (const r of results) expect(r.valid, r.output).toBe(true);
  });
  it.skipIf(canValidate)(`validation skipped: ${skipReason}`, () => {
    console.warn(skipReason);
  });
});

describe('WMS SLD_BODY', () => {
  const sld = (layer: string, rules: string) => fixtureText('sld/one-layer.sld', { layer, title: 'Sent with the request', rules });
  const green = fillRule('#00ff00');
  const bbox = [890000, 6790000, 920000, 6820000];
  const centre = (p: Awaited<ReturnType<typeof pixels>>) => p.at(100, 100);
  it('styles the layers it names, overriding STYLES, with or without LAYERS', async () => {
    const withLayers = await get({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), STYLES: 'red', SLD_BODY: sld('squares', green) });
    expect(withLayers.statusCode, withLayers.body).toBe(200);
    const c = centre(await pixels(withLayers.rawPayload));
    expect(c[1]).toBeGreaterThan(200);
    expect(c[0]).toBeLessThan(60);
    const params: Record<string, string | number> = { ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD_BODY: sld('squares', green) };
    delete params.LAYERS;
    delete params.STYLES;
    const noLayers = await get(params);
    expect(noLayers.statusCode, noLayers.body).toBe(200);
    expect(centre(await pixels(noLayers.rawPayload))[1]).toBeGreaterThan(200);
    // a filter in the document selects as it would in a configured style
    const filtered = await get({
      ...getMapParams('1.3.0', 'EPSG:2154', bbox),
      SLD_BODY: sld(
        'squares',
        `<Rule><ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>kind</ogc:PropertyName><ogc:Literal>small</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>${green.slice(6)}`,
      ),
    });
    expect(filtered.statusCode, filtered.body).toBe(200);
    expect(centre(await pixels(filtered.rawPayload))[3]).toBe(0); // the big square is not 'small': nothing drawn
  });
  it("a faulty document is the client's InvalidParameterValue, located at sld_body", async () => {
    const cases: [string, string][] = [
      ['<StyledLayerDescriptor><NamedLayer>', 'InvalidParameterValue'],
      [
        sld(
          'squares',
          '<Rule><ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>no_such_column</ogc:PropertyName><ogc:Literal>1</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter><PolygonSymbolizer/></Rule>',
        ),
        'no_such_column',
      ],
      [sld('no_such_layer', green), 'LayerNotDefined'],
    ];
    for (const [body, want] of cases) {
      const res = await get({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD_BODY: body });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.body).toContain(want);
      expect(res.body).toContain('locator="sld_body"');
    }
  });
});

describe('WMS SLD parameter (the URL of an SLD document)', () => {
  const doc = (layer: string, colour: string) => fixtureText('sld/one-layer.sld', { layer, title: 'Fetched', rules: fillRule(colour) });
  const bbox = [890000, 6790000, 920000, 6820000];
  const hits = new Map<string, number>();
  let server: http.Server;
  let base = '';
  let s: TestApp;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const p = new URL(req.url!, 'http://x').pathname;
      hits.set(p, (hits.get(p) ?? 0) + 1);
      const xml = (body: string) => res.writeHead(200, { 'content-type': 'application/vnd.ogc.sld+xml' }).end(body);
      if (p === '/styles/green.sld' || p === '/outside/green.sld') return xml(doc('squares', '#00ff00'));
      if (p === '/styles/magenta.sld') return xml(doc('squares', '#ff00ff'));
      if (p === '/styles/latin1.sld') {
        // ISO-8859-1, with a filter on an accented value: only decoded right does it select the square
        const rule =
          '<Rule><ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>nom</ogc:PropertyName><ogc:Literal>Carré rouge</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter><PolygonSymbolizer><Fill><CssParameter name="fill">#00ff00</CssParameter></Fill></PolygonSymbolizer></Rule>';
        const text = doc('squares', '#000000')
          .replace('UTF-8', 'ISO-8859-1')
          .replace(/<Rule>[\s\S]*<\/Rule>/, rule);
        return res.writeHead(200, { 'content-type': 'application/xml' }).end(Buffer.from(text, 'latin1'));
      }
      if (p === '/styles/unknown-layer.sld') return xml(doc('no_such_layer', '#00ff00'));
      if (p === '/styles/redirect.sld') return res.writeHead(302, { location: `${base}/outside/green.sld` }).end();
      if (p === '/styles/page.html')
        return res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>not a style</body></html>');
      if (p === '/styles/big.sld') return xml(doc('squares', '#00ff00').replace('<Title>', `<!-- ${'x'.repeat(20000)} --><Title>`));
      if (p === '/styles/big-chunked.sld') {
        // no Content-Length: the limit must hold while reading
        res.writeHead(200, { 'content-type': 'application/xml' });
        for (let i = 0; i < 40; i++) res.write(`<!-- ${'y'.repeat(1000)} -->`);
        return res.end(doc('squares', '#00ff00'));
      }
      if (p === '/styles/stalls.sld') {
        // headers and a first chunk, then nothing: the timeout must cover the body
        res.writeHead(200, { 'content-type': 'application/xml' });
        return res.write('<StyledLayerDescriptor');
      }
      if (p === '/styles/silent.sld') return; // never answers
      res.writeHead(404).end('not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    s = await makeTestApp({
      ...config,
      wms: { sldUrl: { allowed: [`${base}/styles/`], timeoutMs: 1000, maxBytes: 16384, cacheSeconds: 60 } },
    });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });
  const getS = (params: Record<string, string | number>) =>
    s.app.inject({ method: 'GET', url: `/wms?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}` });
  const centre = async (buf: Buffer) => (await pixels(buf)).at(100, 100);

  it('draws with the fetched document, as SLD_BODY would, and fetches it once for many requests', async () => {
    const url = `${base}/styles/green.sld`;
    const res = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), STYLES: 'red', SLD: url });
    expect(res.statusCode, res.body).toBe(200);
    expect(await centre(res.rawPayload)).toEqual([0, 255, 0, 255]);
    // identical to the same document sent in SLD_BODY
    const body = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), STYLES: 'red', SLD_BODY: doc('squares', '#00ff00') });
    expect(res.rawPayload.equals(body.rawPayload)).toBe(true);
    // without LAYERS: the document's layers; in 1.1.1 too; and a form POST
    const params: Record<string, string | number> = { ...getMapParams('1.1.1', 'EPSG:2154', bbox), SLD: url };
    delete params.LAYERS;
    delete params.STYLES;
    const noLayers = await getS(params);
    expect(noLayers.statusCode, noLayers.body).toBe(200);
    expect(await centre(noLayers.rawPayload)).toEqual([0, 255, 0, 255]);
    const post = await s.app.inject({
      method: 'POST',
      url: '/wms',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(
        Object.entries({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: url }).map(([k, v]) => [k, String(v)]),
      ).toString(),
    });
    expect(post.statusCode, post.body).toBe(200);
    expect(await centre(post.rawPayload)).toEqual([0, 255, 0, 255]);
    // five more map requests (a client panning): still one fetch, from the cache
    for (let i = 0; i < 5; i++) {
      const b = bbox.map((v, k) => v + (k % 2 === 0 ? i * 1000 : 0));
      expect((await getS({ ...getMapParams('1.3.0', 'EPSG:2154', b), SLD: url })).statusCode).toBe(200);
    }
    expect(hits.get('/styles/green.sld')).toBe(1);
    const latin1 = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: `${base}/styles/latin1.sld` });
    expect(latin1.statusCode, latin1.body).toBe(200);
    expect(await centre(latin1.rawPayload)).toEqual([0, 255, 0, 255]);
    // GetFeatureInfo accepts it too
    const info = await getS({
      ...getMapParams('1.3.0', 'EPSG:2154', bbox),
      SLD: url,
      REQUEST: 'GetFeatureInfo',
      QUERY_LAYERS: 'squares',
      I: 100,
      J: 100,
      INFO_FORMAT: 'application/json',
    });
    expect(info.statusCode, info.body).toBe(200);
    expect(JSON.parse(info.body).features.length).toBe(1);
  });
  it('SLD_BODY wins over SLD, which is then not fetched', async () => {
    const res = await getS({
      ...getMapParams('1.3.0', 'EPSG:2154', bbox),
      SLD: `${base}/styles/magenta.sld`,
      SLD_BODY: doc('squares', '#0000ff'),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(await centre(res.rawPayload)).toEqual([0, 0, 255, 255]);
    expect(hits.get('/styles/magenta.sld')).toBeUndefined();
  });
  it('refuses SLD when disabled, and URLs that are not allowed, with InvalidParameterValue at sld, fetching nothing', async () => {
    const disabled = await get({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: `${base}/styles/green.sld` });
    expect(disabled.statusCode).toBe(400);
    expect(disabled.body).toContain('InvalidParameterValue');
    expect(disabled.body).toContain('locator="sld"');
    expect(disabled.body).toContain('not enabled');
    const before = [...hits.values()].reduce((a, b) => a + b, 0);
    const refused = [
      `${base}/outside/green.sld`,
      `${base}/styles/../outside/green.sld`,
      `${base}/styles/%2e%2e/outside/green.sld`,
      `${base}/styles\\..\\outside/green.sld`,
      `${base.replace('127.0.0.1', '127.0.0.1.nip.io')}/styles/green.sld`,
      `http://user@${base.slice(7)}/styles/green.sld`,
      `${base}.evil.example/styles/green.sld`,
      'file:///etc/passwd',
      'ftp://127.0.0.1/styles/green.sld',
      'styles/green.sld',
    ];
    for (const url of refused) {
      const res = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: url });
      expect(res.statusCode, url).toBe(400);
      expect(res.body, url).toContain('InvalidParameterValue');
      expect(res.body, url).toContain('locator="sld"');
    }
    expect([...hits.values()].reduce((a, b) => a + b, 0)).toBe(before);
  });
  it('a document that cannot be fetched or is not an SLD is a clear exception at sld, never a 500 or a hang', async () => {
    const cases: [string, number, string, RegExp][] = [
      ['redirect.sld', 502, 'NoApplicableCode', /redirects are not followed/],
      ['missing.sld', 502, 'NoApplicableCode', /HTTP 404/],
      ['big.sld', 502, 'NoApplicableCode', /too large/],
      ['big-chunked.sld', 502, 'NoApplicableCode', /too large/],
      ['stalls.sld', 504, 'NoApplicableCode', /within 1000 ms/],
      ['silent.sld', 504, 'NoApplicableCode', /within 1000 ms/],
      ['page.html', 400, 'InvalidParameterValue', /not well-formed|root element must be StyledLayerDescriptor/],
      ['unknown-layer.sld', 400, 'LayerNotDefined', /no_such_layer/],
    ];
    for (const [file, status, code, message] of cases) {
      const res = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: `${base}/styles/${file}` });
      expect(res.statusCode, `${file}: ${res.body}`).toBe(status);
      expect(res.body, file).toContain(`code="${code}"`);
      expect(res.body, file).toContain('locator="sld"');
      expect(res.body, file).toMatch(message);
    }
    // the redirect's target (outside the allowed prefix) was never fetched
    expect(hits.get('/outside/green.sld')).toBeUndefined();
    // a failure is remembered briefly: asking again does not refetch at once
    const again = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: `${base}/styles/missing.sld` });
    expect(again.statusCode).toBe(502);
    expect(hits.get('/styles/missing.sld')).toBe(1);
    // EXCEPTIONS=INIMAGE gets an image, as for other GetMap errors
    const img = await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: `${base}/styles/missing.sld`, EXCEPTIONS: 'INIMAGE' });
    expect(img.headers['content-type']).toBe('image/png');
  });
  it.skipIf(!canValidate)('its exception reports validate', async () => {
    const e13 = (await getS({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), SLD: `${base}/styles/missing.sld` })).body;
    const e11 = (await getS({ ...getMapParams('1.1.1', 'EPSG:2154', bbox), SLD: 'file:///etc/passwd' })).body;
    for (const r of validateXml([e13, e11])) expect(r.valid, r.output).toBe(true);
  });
  it('the configuration takes http(s) prefixes only', async () => {
    for (const allowed of [['ftp://x/'], ['https://u@h/'], []]) {
      expect(() => validateConfig({ wms: { sldUrl: { allowed } } }), JSON.stringify(allowed)).toThrow(ConfigError);
    }
    expect(validateConfig({ wms: { sldUrl: { allowed: ['https://styles.example.org/sld/'] } } }).wms?.sldUrl?.allowed).toEqual([
      'https://styles.example.org/sld/',
    ]);
  });
});

describe('WMS layer groups', () => {
  it('are advertised as named layers over their members, without unpublished members or empty groups', async () => {
    for (const version of ['1.3.0', '1.1.1']) {
      const body = (await get({ SERVICE: 'WMS', REQUEST: 'GetCapabilities', VERSION: version })).body;
      const at = body.indexOf('<Name>squares_and_roads</Name>');
      expect(at, version).toBeGreaterThan(0);
      const g = body.slice(at, body.indexOf('</Layer>', at));
      expect(g).toContain('<Title>Carrés et routes</Title>');
      expect(g).toContain('squares, roads');
      expect(g).not.toContain('not_a_layer');
      expect(body).not.toContain('nothing_published');
      // the group's extent covers the squares and the roads
      const roads = t.ctx.registry.resolve('roads')!.wgs84Extent!;
      const west = Number(
        (version === '1.3.0' ? g.match(/<westBoundLongitude>([-\d.]+)</) : g.match(/<LatLonBoundingBox minx="([-\d.]+)"/))![1],
      );
      expect(west).toBeLessThanOrEqual(roads.minx + 1e-6);
    }
  });
  it('GetMap draws the members in order, exactly as when they are listed', async () => {
    const bbox = [890000, 6790000, 960000, 6860000];
    const group = await get({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), LAYERS: 'squares_and_roads', STYLES: '' });
    const listed = await get({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), LAYERS: 'squares,roads', STYLES: ',' });
    expect(group.statusCode, group.body).toBe(200);
    const a = await sharp(group.rawPayload).raw().toBuffer();
    const b = await sharp(listed.rawPayload).raw().toBuffer();
    expect(a.equals(b)).toBe(true);
    // and something is drawn (the square's default style fill at its centre)
    const px = await pixels(group.rawPayload);
    expect(
      px.at(Math.round(((CX - bbox[0]) / (bbox[2] - bbox[0])) * 200), Math.round(((bbox[3] - CY) / (bbox[3] - bbox[1])) * 200))[3],
    ).toBeGreaterThan(200);
    const bad = await get({ ...getMapParams('1.3.0', 'EPSG:2154', bbox), LAYERS: 'squares_and_roads', STYLES: 'red' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('StyleNotDefined');
  });
  it("GetLegendGraphic on a group stacks its members' legends (title above each), advertised with its size", async () => {
    const res = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetLegendGraphic',
      LAYER: 'squares_and_roads',
      FORMAT: 'image/png',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    const px = await pixels(res.rawPayload);
    // the members' own legends, with their default styles
    const sq = await get({ SERVICE: 'WMS', REQUEST: 'GetLegendGraphic', LAYER: 'squares', FORMAT: 'image/png' });
    const rd = await get({ SERVICE: 'WMS', REQUEST: 'GetLegendGraphic', LAYER: 'roads', FORMAT: 'image/png' });
    const sqMeta = await sharp(sq.rawPayload).metadata();
    const rdMeta = await sharp(rd.rawPayload).metadata();
    const titleRow = (px.info.height - sqMeta.height! - rdMeta.height!) / 2;
    // height = both legends + one title row each
    expect(titleRow).toBeGreaterThanOrEqual(12);
    expect(titleRow).toBeLessThanOrEqual(24);
    expect(px.info.width).toBeGreaterThanOrEqual(Math.max(sqMeta.width!, rdMeta.width!));
    // drawing order: the squares (bottom layer) first, then the roads, each identical to its own legend
    const crop = (buf: Buffer, top: number, w: number, h: number) =>
      sharp(buf).extract({ left: 0, top, width: w, height: h }).ensureAlpha().raw().toBuffer();
    const sqRaw = await sharp(sq.rawPayload).ensureAlpha().raw().toBuffer();
    const rdRaw = await sharp(rd.rawPayload).ensureAlpha().raw().toBuffer();
    expect((await crop(res.rawPayload, titleRow, sqMeta.width!, sqMeta.height!)).equals(sqRaw)).toBe(true);
    expect((await crop(res.rawPayload, 2 * titleRow + sqMeta.height!, rdMeta.width!, rdMeta.height!)).equals(rdRaw)).toBe(true);
    // the members' colours are there: the red square icon, the motorway and the departementale strokes
    expect(isRed(px.at(14, titleRow + 14))).toBe(true);
    const near = (c: number[], hex: string) => [0, 1, 2].every((k) => Math.abs(c[k] - parseInt(hex.slice(1 + 2 * k, 3 + 2 * k), 16)) < 24);
    const found = (hex: string, y0: number, y1: number) => {
      for (let y = y0; y < y1; y++) for (let x = 0; x < 30; x++) if (near(px.at(x, y), hex)) return true;
      return false;
    };
    const roadsTop = 2 * titleRow + sqMeta.height!;
    expect(found('#e8423f', roadsTop, roadsTop + 28)).toBe(true);
    expect(found('#f2c94c', roadsTop + 4 * 24, roadsTop + 5 * 24 + 4)).toBe(true);
    expect(found('#e8423f', 0, roadsTop)).toBe(false);
    // each title row holds dark text pixels
    for (const y0 of [0, titleRow + sqMeta.height!]) {
      let dark = 0;
      for (let y = y0; y < y0 + titleRow; y++) for (let x = 0; x < px.info.width; x++) if (px.at(x, y)[0] < 80) dark++;
      expect(dark).toBeGreaterThan(20);
    }
    // at 1:1,000,000 the roads legend loses chemins and communales
    const atScale = await get({
      SERVICE: 'WMS',
      REQUEST: 'GetLegendGraphic',
      LAYER: 'squares_and_roads',
      FORMAT: 'image/png',
      SCALE: 1000000,
    });
    expect((await sharp(atScale.rawPayload).metadata()).height).toBe(px.info.height - 2 * 24);
    // styles other than default, and RULE, are refused
    const badStyle = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetLegendGraphic',
      LAYER: 'squares_and_roads',
      STYLE: 'red',
      FORMAT: 'image/png',
    });
    expect(badStyle.statusCode).toBe(400);
    expect(badStyle.body).toContain('StyleNotDefined');
    const badRule = await get({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetLegendGraphic',
      LAYER: 'squares_and_roads',
      RULE: 'x',
      FORMAT: 'image/png',
    });
    expect(badRule.statusCode).toBe(400);
    expect(badRule.body).toContain('locator="rule"');
    // capabilities advertise this legend, with the image's own size, in both versions
    for (const version of ['1.3.0', '1.1.1']) {
      const body = (await get({ SERVICE: 'WMS', REQUEST: 'GetCapabilities', VERSION: version })).body;
      const at = body.indexOf('<Name>squares_and_roads</Name>');
      const g = body.slice(at, body.indexOf('</Layer>', at));
      const m = g.match(/<Style>\s*<Name>default<\/Name>[\s\S]*?<LegendURL width="(\d+)" height="(\d+)">[\s\S]*?xlink:href="([^"]+)"/);
      expect(m, version).toBeTruthy();
      expect([Number(m![1]), Number(m![2])]).toEqual([px.info.width, px.info.height]);
      const href = new URL(m![3].replace(/&amp;/g, '&'));
      expect(href.searchParams.get('LAYER')).toBe('squares_and_roads');
      const viaUrl = await t.app.inject({ method: 'GET', url: `/wms${href.search}` });
      expect(viaUrl.statusCode).toBe(200);
      expect(viaUrl.rawPayload.equals(res.rawPayload)).toBe(true);
    }
  });
  it('GetFeatureInfo on a group answers for its queryable members', async () => {
    const res = await get({
      ...getMapParams('1.3.0', 'EPSG:2154', [890000, 6790000, 920000, 6820000]),
      LAYERS: 'squares_and_roads',
      STYLES: '',
      REQUEST: 'GetFeatureInfo',
      QUERY_LAYERS: 'squares_and_roads',
      I: 100,
      J: 100,
      INFO_FORMAT: 'application/json',
    });
    expect(res.statusCode, res.body).toBe(200);
    const fc = JSON.parse(res.body);
    expect(fc.features.map((f: { properties: { nom?: string } }) => f.properties.nom)).toContain('Carré rouge');
  });
});

const gdal = existsSync('/usr/bin/gdal_translate');
describe('client: GDAL WMS driver', () => {
  it.skipIf(!gdal)(
    'gdal_translate reads a map from the live server',
    async () => {
      const { app, close } = await makeTestApp(config);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'wms-gdal-'));
      try {
        const addr = await app.listen({ port: 0, host: '127.0.0.1' });
        const out = path.join(dir, 'out.png');
        const url = `WMS:${addr}/wms?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS=squares&STYLES=red&SRS=EPSG:2154&BBOX=890000,6790000,920000,6820000&FORMAT=image/png`;
        const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
          // run asynchronously: the server answering the driver lives in this process
          import('node:child_process').then(({ spawn }) => {
            const p = spawn('gdal_translate', ['-of', 'PNG', '-outsize', '300', '300', url, out]);
            let s = '';
            p.stdout.on('data', (d) => (s += d));
            p.stderr.on('data', (d) => (s += d));
            p.on('close', (status) => resolve({ status, out: s }));
          });
        });
        expect(r.status, r.out).toBe(0);
        const px = await pixels(readFileSync(out));
        expect(isRed(px.at(150, 150))).toBe(true);
        expect(isRed(px.at(20, 20))).toBe(false);
      } finally {
        await close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
  it.skipIf(gdal)('skipped: gdal_translate is not installed (apt-get install gdal-bin)', () => undefined);
});
void spawnSync;

describe('style configuration', () => {
  it('the config schema checks styles, and a style naming a missing column answers a clear exception', async () => {
    const { validateConfig } = await import('../src/config/index.js');
    expect(() => validateConfig({ layers: [{ table: 'public.roads', styles: { s: { rules: [{ line: { colour: '#fff' } }] } } }] })).toThrow(
      /colour/,
    );
    expect(() =>
      validateConfig({ layers: [{ table: 'public.roads', styles: { s: { rules: [{ point: { mark: 'hexagon' } }] } } }] }),
    ).toThrow(/mark/);
    const bad = await makeTestApp({ layers: [{ table: 'public.roads', styles: { s: { rules: [{ text: { label: 'nope' } }] } } }] });
    try {
      const res = await bad.app.inject({
        url: '/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=roads&STYLES=&CRS=EPSG:2154&BBOX=0,0,1,1&WIDTH=10&HEIGHT=10&FORMAT=image/png',
      });
      expect(res.statusCode).toBe(500);
      expect(res.body).toContain("label property 'nope' is not a column");
      const caps = await bad.app.inject({ url: '/wms?SERVICE=WMS&REQUEST=GetCapabilities' });
      expect(caps.statusCode).toBe(200);
    } finally {
      await bad.close();
    }
  });
});

describe('INSPIRE view service extended capabilities', () => {
  it('are emitted in 1.3.0 when configured, and validate', async () => {
    const insp = await makeTestApp({
      service: { inspire: { metadataUrl: 'https://geo.example.org/csw?SERVICE=CSW&REQUEST=GetRecordById&ID=wms-1', language: 'fre' } },
      layers: [{ table: 'public.communes' }],
    });
    try {
      const caps = (await insp.app.inject({ url: '/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0' })).body;
      expect(caps).toContain('<inspire_vs:ExtendedCapabilities>');
      expect(caps).toContain(
        '<inspire_common:URL>https://geo.example.org/csw?SERVICE=CSW&amp;REQUEST=GetRecordById&amp;ID=wms-1</inspire_common:URL>',
      );
      expect(caps).toContain('<inspire_common:Language>fre</inspire_common:Language>');
      const c11 = (await insp.app.inject({ url: '/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1' })).body;
      expect(c11).not.toContain('inspire');
      if (canValidate) {
        const [r] = validateXml([caps]);
        expect(r.valid, r.output).toBe(true);
      } else console.warn(skipReason);
    } finally {
      await insp.close();
    }
  });
});
