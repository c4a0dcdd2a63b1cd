/**
 * Tiles: WMTS 1.0.0 (capabilities against the schema, OWSLib, KVP = RESTful bytes, TileOutOfRange,
 * GetFeatureInfo), XYZ PNG (pixels) and vector tiles (decoded), HTTP caching, coalescing,
 * the byte-bounded LRU, the disk tier across restarts, tiled WMS, admin purge/seed and resumable seeding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import pg from 'pg';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VectorTile } from '@mapbox/vector-tile';
import { PbfReader } from 'pbf';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';
import { transformPoint } from '../src/crs/index.js';
import { DiskTier, MemoryTier, makeEntry, TieredCache } from '../src/tiles/cache.js';
import { WEB_MERCATOR_QUAD, LAMB93, tileExtent, matchTile } from '../src/tiles/matrixsets.js';
import { seed } from '../src/tiles/seed.js';
import { Metrics } from '../src/ops/metrics.js';

// A red 10 km square centred on (905000, 6805000) in Lambert-93, and a blue one 50 km east.
const CX = 905000;
const CY = 6805000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'tiles-test-'));
const config = {
  limits: { maxConcurrentRenders: 2, renderQueue: 64 },
  database: { schemas: ['tilestest'] },
  tiles: { diskDir: dir, metatile: 4, buffer: 32 },
  layers: [
    {
      table: 'tilestest.squares',
      name: 'squares',
      title: 'Tile test squares',
      cache: { maxAge: 120 },
      styles: {
        red: { title: 'Red', rules: [{ title: 'Square', polygon: { fill: '#ff0000' } }] },
        labelled: {
          title: 'Labelled',
          rules: [{ title: 'Square', polygon: { fill: '#0000ff' }, text: { label: 'nom', 'font-size': 12 } }],
        },
      },
      defaultStyle: 'red',
    },
  ],
};

/** WebMercatorQuad tile containing a Lambert-93 point. */
function tileAt(x: number, y: number, z: number): { z: number; x: number; y: number } {
  const [mx, my] = transformPoint(x, y, 2154, 3857);
  const span = WEB_MERCATOR_QUAD.matrices[z].resolution * 256;
  return { z, x: Math.floor((mx - WEB_MERCATOR_QUAD.origin[0]) / span), y: Math.floor((WEB_MERCATOR_QUAD.origin[1] - my) / span) };
}

async function pixel(png: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * 4;
  return [data[i], data[i + 1], data[i + 2], data[i + 3]];
}

// A small square centred on the left edge of WebMercatorQuad tile column LCOL at z14 — a
// metatile boundary (LCOL multiple of 4) — whose label straddles two tiles of two metatiles.
const LZ = 14;
const LSPAN = WEB_MERCATOR_QUAD.matrices[LZ].resolution * 256;
const [lmx0, lmy0] = transformPoint(930000, 6790000, 2154, 3857);
const LCOL = Math.round((lmx0 - WEB_MERCATOR_QUAD.origin[0]) / LSPAN / 4) * 4;
const LROW = Math.floor((WEB_MERCATOR_QUAD.origin[1] - lmy0) / LSPAN);
const [LX, LY] = transformPoint(WEB_MERCATOR_QUAD.origin[0] + LCOL * LSPAN, WEB_MERCATOR_QUAD.origin[1] - (LROW + 0.5) * LSPAN, 3857, 2154);

let t: TestApp;

beforeAll(async () => {
  const c = new pg.Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  await c.query(`CREATE SCHEMA IF NOT EXISTS tilestest;
    DROP TABLE IF EXISTS tilestest.squares;
    CREATE TABLE tilestest.squares (id int PRIMARY KEY, kind text, nom text, surface float8, geom geometry(Polygon, 2154));
    INSERT INTO tilestest.squares VALUES
      (1, 'big', 'Carré rouge', 1e8, ST_MakeEnvelope(${CX - 5000}, ${CY - 5000}, ${CX + 5000}, ${CY + 5000}, 2154)),
      (2, 'small', 'Petit carré', 1e6, ST_MakeEnvelope(950000, 6850000, 951000, 6851000, 2154)),
      (3, 'label', 'Étiquette à cheval', 1e4, ST_MakeEnvelope(${LX - 100}, ${LY - 100}, ${LX + 100}, ${LY + 100}, 2154));
    CREATE INDEX ON tilestest.squares USING gist (geom);
    ANALYZE tilestest.squares;`);
  await c.end();
  t = await makeTestApp(config);
}, 60_000);

afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tile matrix sets', () => {
  it('WebMercatorQuad is GoogleMapsCompatible, Lambert-93 halves from its origin', () => {
    expect(WEB_MERCATOR_QUAD.matrices[0].scaleDenominator).toBeCloseTo(559082264.0287178, 3);
    expect(WEB_MERCATOR_QUAD.matrices[18].matrixWidth).toBe(2 ** 18);
    expect(LAMB93.matrices[3].resolution * 8).toBeCloseTo(LAMB93.matrices[0].resolution, 9);
    const e = tileExtent(WEB_MERCATOR_QUAD, 5, 16, 11);
    expect(matchTile(3857, e, 256, 256)).toMatchObject({ z: 5, col: 16, row: 11 });
    expect(matchTile(3857, { ...e, minx: e.minx + (e.maxx - e.minx) / 3 }, 256, 256)).toBeNull();
    expect(matchTile(3857, e, 512, 512)).toBeNull();
  });
});

describe('WMTS capabilities', () => {
  it('KVP and RESTful capabilities are the same document and list layers, styles and the three sets', async () => {
    const kvp = await t.app.inject({ url: '/wmts?SERVICE=WMTS&REQUEST=GetCapabilities' });
    const rest = await t.app.inject({ url: '/wmts/1.0.0/WMTSCapabilities.xml' });
    expect(kvp.statusCode).toBe(200);
    expect(rest.statusCode).toBe(200);
    expect(rest.body).toBe(kvp.body);
    expect(kvp.body).toContain('<ows:Identifier>squares</ows:Identifier>');
    for (const s of ['WebMercatorQuad', 'WorldCRS84Quad', 'LAMB93']) expect(kvp.body).toContain(`<ows:Identifier>${s}</ows:Identifier>`);
    expect(kvp.body).toContain('urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible');
    expect(kvp.body).toMatch(/<Style isDefault="true"><ows:Title>Red<\/ows:Title><ows:Identifier>red<\/ows:Identifier>/);
  });

  it.skipIf(!canValidate)('is valid against the WMTS 1.0.0 schema', async () => {
    const r = await t.app.inject({ url: '/wmts/1.0.0/WMTSCapabilities.xml' });
    const [v] = validateXml([r.body]);
    if (!v.valid) console.log('VALIDATION', v.output);
    expect(v.valid, v.output).toBe(true);
  });
  it.skipIf(canValidate)(`schema validation: ${skipReason}`, () => undefined);

  const owslib = spawnSync('/usr/bin/python3', ['-c', 'import owslib.wmts'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!owslib)('OWSLib WebMapTileService reads the capabilities', async () => {
    const r = await t.app.inject({ url: '/wmts/1.0.0/WMTSCapabilities.xml' });
    const f = path.join(dir, 'caps.xml');
    writeFileSync(f, r.body);
    const py = `
from owslib.wmts import WebMapTileService
xml = open(${JSON.stringify(f)}, 'rb').read()
w = WebMapTileService('http://localhost/wmts', xml=xml)
print(w.identification.type, w.identification.version)
print(sorted(w.contents.keys()))
print(sorted(w.tilematrixsets.keys()))
l = w.contents['squares']
print(sorted(l.styles.keys()), l.formats)
print(len(w.tilematrixsets['WebMercatorQuad'].tilematrix))
`;
    const p = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
    expect(p.status, p.stderr).toBe(0);
    const lines = p.stdout.trim().split('\n');
    expect(lines[0]).toBe('OGC WMTS 1.0.0');
    expect(lines[1]).toBe("['squares']");
    expect(lines[2]).toBe("['LAMB93', 'WebMercatorQuad', 'WorldCRS84Quad']");
    expect(lines[3]).toBe("['labelled', 'red'] ['image/png']");
    expect(lines[4]).toBe('21');
  });
  it.skipIf(owslib)('OWSLib check skipped: python3-owslib is not installed (apt-get install python3-owslib)', () => undefined);
});

describe('GetTile', () => {
  it('miss then hit, KVP and RESTful give the same bytes, the tile over the square is red', async () => {
    const { z, x, y } = tileAt(CX, CY, 12);
    const rest = await t.app.inject({ url: `/wmts/1.0.0/squares/red/WebMercatorQuad/${z}/${y}/${x}.png` });
    expect(rest.statusCode, rest.body).toBe(200);
    expect(rest.headers['content-type']).toBe('image/png');
    expect(rest.headers['x-cache']).toBe('MISS');
    const kvp = await t.app.inject({
      url: `/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=squares&STYLE=red&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=${z}&TILEROW=${y}&TILECOL=${x}`,
    });
    expect(kvp.statusCode).toBe(200);
    expect(kvp.headers['x-cache']).toBe('HIT');
    expect(kvp.headers['x-cache-tier']).toBe('memory');
    expect(Buffer.compare(kvp.rawPayload, rest.rawPayload)).toBe(0);
    const def = await t.app.inject({ url: `/wmts/1.0.0/squares/default/WebMercatorQuad/${z}/${y}/${x}.png` });
    expect(def.headers['x-cache']).toBe('HIT'); // 'default' is the layer's default style: same tile
    const meta = await sharp(rest.rawPayload).metadata();
    expect([meta.width, meta.height]).toEqual([256, 256]);
    // the square's centre, in tile pixels
    const [mx, my] = transformPoint(CX, CY, 2154, 3857);
    const e = tileExtent(WEB_MERCATOR_QUAD, z, x, y);
    const px = Math.floor(((mx - e.minx) / (e.maxx - e.minx)) * 256);
    const py = Math.floor(((e.maxy - my) / (e.maxy - e.miny)) * 256);
    expect(await pixel(rest.rawPayload, px, py)).toEqual([255, 0, 0, 255]);
    // far from every square: transparent
    const far = await t.app.inject({ url: `/wmts/1.0.0/squares/red/WebMercatorQuad/12/100/100.png` });
    expect(far.statusCode).toBe(200);
    expect((await pixel(far.rawPayload, 128, 128))[3]).toBe(0);
  });

  it('a label crossing a metatile edge is drawn on both sides (not clipped)', async () => {
    const left = await t.app.inject({ url: `/tiles/squares/${LZ}/${LCOL - 1}/${LROW}.png?style=labelled` });
    const right = await t.app.inject({ url: `/tiles/squares/${LZ}/${LCOL}/${LROW}.png?style=labelled` });
    expect(left.statusCode).toBe(200);
    expect(right.statusCode).toBe(200);
    // dark (text) pixels next to the shared edge, on both sides, in the label's row band
    const dark = async (png: Buffer, x0: number, x1: number) => {
      const { data } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      let n = 0;
      for (let y = 118; y <= 138; y++)
        for (let x = x0; x <= x1; x++) {
          const i = (y * 256 + x) * 4;
          if (data[i + 3] > 200 && data[i] < 90 && data[i + 1] < 90 && data[i + 2] < 90) n++;
        }
      return n;
    };
    // the label is wider than the 200 m square: text pixels well beyond the square on each side
    expect(await dark(left.rawPayload, 200, 255)).toBeGreaterThan(0);
    expect(await dark(right.rawPayload, 0, 55)).toBeGreaterThan(0);
  });

  it('HTTP caching: ETag, Last-Modified, Cache-Control from the layer, 304 on If-None-Match', async () => {
    const { z, x, y } = tileAt(CX, CY, 11);
    const r = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png` });
    expect(r.statusCode).toBe(200);
    expect(r.headers.etag).toMatch(/^"[\w-]+"$/);
    expect(r.headers['last-modified']).toMatch(/GMT$/);
    expect(r.headers['cache-control']).toBe('public, max-age=120');
    const again = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png`, headers: { 'if-none-match': String(r.headers.etag) } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers['x-cache']).toBe('HIT');
    const other = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png`, headers: { 'if-none-match': '"nope"' } });
    expect(other.statusCode).toBe(200);
  });

  it('TileOutOfRange and other errors are OWS exceptions with a locator', async () => {
    // RESTful WMTS (07-057r7 §10.2): 404, the same as XYZ and OGC API – Tiles; KVP: 400 (table 27)
    const r = await t.app.inject({ url: '/wmts/1.0.0/squares/red/WebMercatorQuad/2/4/0.png' });
    expect(r.statusCode).toBe(404);
    expect(r.body).toContain('exceptionCode="TileOutOfRange"');
    expect(r.body).toContain('locator="TileRow"');
    const c = await t.app.inject({
      url: '/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=squares&STYLE=red&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=3&TILEROW=0&TILECOL=8',
    });
    expect(c.statusCode).toBe(400);
    expect(c.body).toContain('locator="TileCol"');
    const m = await t.app.inject({
      url: '/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=squares&STYLE=red&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=30&TILEROW=0&TILECOL=0',
    });
    expect(m.body).toContain('exceptionCode="TileOutOfRange"');
    const l = await t.app.inject({
      url: '/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=nope&STYLE=&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=3&TILEROW=0&TILECOL=0',
    });
    expect(l.statusCode).toBe(400);
    expect(l.body).toContain('locator="layer"');
    const s = await t.app.inject({ url: '/wmts/1.0.0/squares/nostyle/WebMercatorQuad/3/0/0.png' });
    expect(s.statusCode).toBe(400);
    expect(s.body).toContain('locator="style"');
    const ms = await t.app.inject({ url: '/wmts/1.0.0/squares/red/NoSuchSet/3/0/0.png' });
    expect(ms.body).toContain('locator="TileMatrixSet"');
    // XYZ answers a tile outside the matrix like the other REST tile paths: 404
    const x = await t.app.inject({ url: '/tiles/squares/3/9/0.png' });
    expect(x.statusCode).toBe(404);
    expect(x.headers['content-type']).toContain('application/problem+json');
    expect(JSON.parse(x.body).code).toBe('TileOutOfRange');
    const nl = await t.app.inject({ url: '/tiles/nope/3/0/0.png' });
    expect(nl.statusCode).toBe(404);
  });

  it('Lambert-93 and CRS84 tiles render the square', async () => {
    const set = LAMB93;
    const z = 8;
    const span = set.matrices[z].resolution * 256;
    const col = Math.floor((CX - set.origin[0]) / span);
    const row = Math.floor((set.origin[1] - CY) / span);
    const r = await t.app.inject({ url: `/wmts/1.0.0/squares/red/LAMB93/${z}/${row}/${col}.png` });
    expect(r.statusCode, r.body).toBe(200);
    const e = tileExtent(set, z, col, row);
    expect(await pixel(r.rawPayload, Math.floor(((CX - e.minx) / span) * 256), Math.floor(((e.maxy - CY) / span) * 256))).toEqual([
      255, 0, 0, 255,
    ]);
    const w = await t.app.inject({ url: `/wmts/1.0.0/squares/red/WorldCRS84Quad/3/1/8.png` });
    expect(w.statusCode).toBe(200);
  });

  it('GetFeatureInfo answers with the feature under the pixel', async () => {
    const { z, x, y } = tileAt(CX, CY, 12);
    const [mx, my] = transformPoint(CX, CY, 2154, 3857);
    const e = tileExtent(WEB_MERCATOR_QUAD, z, x, y);
    const i = Math.floor(((mx - e.minx) / (e.maxx - e.minx)) * 256);
    const j = Math.floor(((e.maxy - my) / (e.maxy - e.miny)) * 256);
    const r = await t.app.inject({
      url: `/wmts?SERVICE=WMTS&REQUEST=GetFeatureInfo&VERSION=1.0.0&LAYER=squares&STYLE=red&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=${z}&TILEROW=${y}&TILECOL=${x}&I=${i}&J=${j}&INFOFORMAT=application/json`,
    });
    expect(r.statusCode, r.body).toBe(200);
    const fc = r.json();
    expect(fc.features.map((f: { properties: { nom: string } }) => f.properties.nom)).toEqual(['Carré rouge']);
    const bad = await t.app.inject({
      url: `/wmts?SERVICE=WMTS&REQUEST=GetFeatureInfo&VERSION=1.0.0&LAYER=squares&STYLE=red&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=${z}&TILEROW=${y}&TILECOL=${x}&I=400&J=${j}&INFOFORMAT=application/json`,
    });
    expect(bad.statusCode).toBe(400);
  });
});

describe('vector tiles', () => {
  it('decode with @mapbox/vector-tile and hold the square with its attributes', async () => {
    const { z, x, y } = tileAt(CX, CY, 11);
    const r = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.mvt` });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/vnd.mapbox-vector-tile');
    const vt = new VectorTile(new PbfReader(r.rawPayload));
    const layer = vt.layers.squares;
    expect(layer).toBeDefined();
    expect(layer.extent).toBe(4096);
    const feats = Array.from({ length: layer.length }, (_, i) => layer.feature(i));
    const sq = feats.find((f) => f.properties.nom === 'Carré rouge');
    expect(sq, JSON.stringify(feats.map((f) => f.properties))).toBeDefined();
    expect(sq!.id).toBe(1);
    expect(sq!.type).toBe(3);
    expect(sq!.properties.kind).toBe('big');
    const gj = sq!.toGeoJSON(x, y, z);
    const c = (gj.geometry as { coordinates: number[][][] }).coordinates[0];
    const [lon, lat] = transformPoint(CX, CY, 2154, 4326);
    expect(Math.min(...c.map((p) => p[0]))).toBeLessThan(lon);
    expect(Math.max(...c.map((p) => p[1]))).toBeGreaterThan(lat);
    const again = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.mvt` });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(Buffer.compare(again.rawPayload, r.rawPayload)).toBe(0);
  });
});

const gdal = existsSync('/usr/bin/gdal_translate');
describe('client: GDAL WMTS driver', () => {
  it.skipIf(!gdal)(
    'gdal_translate reads the square through the RESTful WMTS from the live server',
    async () => {
      const s = await makeTestApp(config);
      const gdir = mkdtempSync(path.join(os.tmpdir(), 'wmts-gdal-'));
      try {
        const addr = await s.app.listen({ port: 0, host: '127.0.0.1' });
        const out = path.join(gdir, 'out.png');
        const [mx, my] = transformPoint(CX, CY, 2154, 3857);
        const h = 12000; // 24 km window around the 10 km square (in Web Mercator metres)
        const src = `WMTS:${addr}/wmts/1.0.0/WMTSCapabilities.xml,layer=squares,tilematrixset=WebMercatorQuad`;
        const args = [
          '-of',
          'PNG',
          '-projwin',
          String(mx - h),
          String(my + h),
          String(mx + h),
          String(my - h),
          '-outsize',
          '200',
          '200',
          src,
          out,
        ];
        const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
          // asynchronous: the server answering GDAL lives in this process
          const p = spawn('gdal_translate', args, {
            env: { ...process.env, GDAL_HTTP_TIMEOUT: '30', GDAL_DEFAULT_WMS_CACHE_PATH: path.join(gdir, 'gdalcache') },
          });
          let o = '';
          p.stdout.on('data', (d) => (o += d));
          p.stderr.on('data', (d) => (o += d));
          p.on('close', (status) => resolve({ status, out: o }));
        });
        expect(r.status, r.out).toBe(0);
        const png = readFileSync(out);
        const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
        const at = (x: number, y: number) => {
          const i = (y * info.width + x) * 4;
          return [data[i], data[i + 1], data[i + 2], data[i + 3]];
        };
        expect(at(100, 100).slice(0, 3)).toEqual([255, 0, 0]);
        expect(at(5, 5)[0] === 255 && at(5, 5)[1] === 0 && at(5, 5)[3] === 255).toBe(false);
      } finally {
        await s.close();
        rmSync(gdir, { recursive: true, force: true });
      }
    },
    90_000,
  );
  it.skipIf(gdal)('skipped: gdal_translate is not installed (apt-get install gdal-bin)', () => undefined);
});

describe('OGC API – Tiles', () => {
  it('lists the tile matrix sets and serves the same tiles as XYZ and WMTS', async () => {
    const list = await t.app.inject({ url: '/tileMatrixSets' });
    expect(list.statusCode).toBe(200);
    expect(list.json().tileMatrixSets.map((s: { id: string }) => s.id)).toEqual(['WebMercatorQuad', 'WorldCRS84Quad', 'LAMB93']);
    const tms = (await t.app.inject({ url: '/tileMatrixSets/LAMB93' })).json();
    expect(tms.crs).toBe('http://www.opengis.net/def/crs/EPSG/0/2154');
    expect(tms.tileMatrices[5].cellSize).toBeCloseTo(104.98463541666667, 9);
    expect(tms.tileMatrices[0].pointOfOrigin).toEqual([0, 12000000]);
    expect((await t.app.inject({ url: '/tileMatrixSets/Nope' })).statusCode).toBe(404);
    const sets = (await t.app.inject({ url: '/collections/squares/tiles' })).json();
    const merc = sets.tilesets.find((s: { tileMatrixSetURI?: string }) => s.tileMatrixSetURI?.endsWith('WebMercatorQuad'));
    expect(merc.dataType).toBe('vector');
    expect(merc.links.find((l: { rel: string }) => l.rel === 'item').href).toMatch(
      /\/collections\/squares\/tiles\/WebMercatorQuad\/\{tileMatrix\}\/\{tileRow\}\/\{tileCol\}$/,
    );
    const { z, x, y } = tileAt(CX, CY, 12);
    const a = await t.app.inject({ url: `/collections/squares/map/tiles/WebMercatorQuad/${z}/${y}/${x}` });
    const b = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png` });
    expect(a.statusCode).toBe(200);
    expect(a.headers['content-type']).toBe('image/png');
    expect(Buffer.compare(a.rawPayload, b.rawPayload)).toBe(0);
    const v = await t.app.inject({ url: `/collections/squares/tiles/WebMercatorQuad/${z}/${y}/${x}` });
    expect(v.headers['content-type']).toBe('application/vnd.mapbox-vector-tile');
    expect(new VectorTile(new PbfReader(v.rawPayload)).layers.squares.length).toBeGreaterThan(0);
    expect((await t.app.inject({ url: `/collections/squares/tiles/WebMercatorQuad/2/9/0` })).statusCode).toBe(404);
    expect((await t.app.inject({ url: `/collections/nope/tiles` })).statusCode).toBe(404);
  });
});

describe('coalescing and tiers', () => {
  it('N concurrent cold requests for one metatile cause one render', async () => {
    const engine = t.ctx.runtime.tiles;
    const { z, x, y } = tileAt(CX, CY, 14);
    const mx = Math.floor(x / 4) * 4;
    const my = Math.floor(y / 4) * 4;
    const before = { ...engine.stats };
    const urls = Array.from(
      { length: 12 },
      (_, i) => `/tiles/squares/${z}/${mx + (i % 4)}/${my + (Math.floor(i / 4) % 4)}.png?style=labelled`,
    );
    const rs = await Promise.all(urls.map((url) => t.app.inject({ url })));
    for (const r of rs) expect(r.statusCode).toBe(200);
    expect(engine.stats.renders - before.renders).toBe(1);
    expect(engine.stats.coalesced - before.coalesced).toBe(11);
    expect(rs.filter((r) => r.headers['x-cache-tier'] === 'coalesced').length).toBe(11);
    const metrics = await t.ctx.runtime.metrics.registry.metrics();
    expect(metrics).toMatch(/geodata_cache_events_total\{tier="render",event="coalesced"\} (\d+)/);
    expect(Number(metrics.match(/geodata_cache_events_total\{tier="render",event="coalesced"\} (\d+)/)![1])).toBeGreaterThanOrEqual(11);
    expect(metrics).toMatch(/geodata_cache_events_total\{tier="memory",event="hit"\} [1-9]/);
    expect(metrics).toMatch(/geodata_cache_events_total\{tier="memory",event="miss"\} [1-9]/);
    expect(metrics).toMatch(/geodata_cache_events_total\{tier="disk",event="miss"\} [1-9]/);
    // the memory tier's bytes are reported as a component of the memory budget: the 16 tiles it now holds
    const held = Number(metrics.match(/geodata_memory_bytes\{component="tile_memory_tier"\} (\d+)/)?.[1]);
    expect(held).toBe(engine.cache.memory!.bytes);
    expect(held).toBeGreaterThanOrEqual(rs.reduce((n, r) => n + r.rawPayload.length, 0));
  });

  it('the memory LRU is bounded in bytes and evicts', async () => {
    const m = new Metrics();
    const inc = (tier: string, event: string) => m.cache.inc({ tier, event });
    const mem = new MemoryTier(10_000, inc);
    for (let i = 0; i < 20; i++) await mem.put(`k${i}`, makeEntry(Buffer.alloc(1000, i)));
    expect(mem.bytes).toBeLessThanOrEqual(10_000);
    expect(mem.evictions).toBeGreaterThan(0);
    expect(await mem.get('k0')).toBeUndefined();
    expect((await mem.get('k19'))?.data[0]).toBe(19);
    const text = await m.registry.metrics();
    expect(text).toMatch(/tier="memory",event="eviction"} \d+/);
  });

  it('the disk tier survives a restart, writes atomically and deletes by prefix', async () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'tiles-disk-'));
    try {
      const a = new DiskTier(d);
      const e = makeEntry(Buffer.from('tile-bytes'));
      await a.put('lyr/v1/red/WebMercatorQuad/3/000/001/000/002.png', e);
      const b = new DiskTier(d); // a new instance on the same folder, as after a restart
      const got = await b.get('lyr/v1/red/WebMercatorQuad/3/000/001/000/002.png');
      expect(got?.data.toString()).toBe('tile-bytes');
      expect(got?.etag).toBe(e.etag);
      expect(existsSync(path.join(d, 'lyr/v1/red/WebMercatorQuad/3/000/001/000/002.png'))).toBe(true);
      await b.deletePrefix('lyr/');
      expect(await a.get('lyr/v1/red/WebMercatorQuad/3/000/001/000/002.png')).toBeUndefined();
      // tiered: a disk hit is promoted to memory
      const mem = new MemoryTier(1 << 20);
      const tc = new TieredCache([mem, b]);
      await b.put('x/1.png', e);
      expect((await tc.get('x/1.png'))?.tier).toBe('disk');
      expect((await tc.get('x/1.png'))?.tier).toBe('memory');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('a second server on the same disk folder serves the tiles from disk', async () => {
    const { z, x, y } = tileAt(CX, CY, 12);
    const t2 = await makeTestApp(config);
    try {
      const r = await t2.app.inject({ url: `/wmts/1.0.0/squares/red/WebMercatorQuad/${z}/${y}/${x}.png` });
      expect(r.statusCode).toBe(200);
      expect(r.headers['x-cache']).toBe('HIT');
      expect(r.headers['x-cache-tier']).toBe('disk');
    } finally {
      await t2.close();
    }
  });
});

describe('tiled WMS', () => {
  it('a GetMap that is exactly a grid tile comes from the tile cache, with the same bytes', async () => {
    const { z, x, y } = tileAt(CX, CY, 13);
    const tile = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png` });
    expect(tile.statusCode).toBe(200);
    const e = tileExtent(WEB_MERCATOR_QUAD, z, x, y);
    const url = `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=squares&STYLES=&CRS=EPSG:3857&BBOX=${e.minx},${e.miny},${e.maxx},${e.maxy}&WIDTH=256&HEIGHT=256&FORMAT=image/png&TRANSPARENT=TRUE`;
    const r = await t.app.inject({ url });
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(Buffer.compare(r.rawPayload, tile.rawPayload)).toBe(0);
    // not a tile (shifted by a third of a tile): rendered by WMS as before
    const s = (e.maxx - e.minx) / 3;
    const r2 = await t.app.inject({ url: url.replace(`BBOX=${e.minx},${e.miny},${e.maxx}`, `BBOX=${e.minx + s},${e.miny},${e.maxx + s}`) });
    expect(r2.statusCode).toBe(200);
    expect(r2.headers['x-cache']).toBeUndefined();
  });
});

describe('admin and seeding', () => {
  it('purge and seed need the admin role or token', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/admin/tiles/purge', payload: { layer: 'squares' } });
    expect(r.statusCode).toBe(401);
    const s = await t.app.inject({ method: 'POST', url: '/admin/tiles/seed', payload: { layer: 'squares', zoom: '5' } });
    expect(s.statusCode).toBe(401);
  });

  it('with the token: seed fills the cache, purge empties it', async () => {
    process.env.GEODATA_ADMIN_TOKEN = 'tiles-test-token';
    try {
      const auth = { authorization: 'Bearer tiles-test-token' };
      const s = await t.app.inject({
        method: 'POST',
        url: '/admin/tiles/seed',
        headers: auth,
        payload: { layer: 'squares', zoom: '6-8', matrixset: 'WebMercatorQuad' },
      });
      expect(s.statusCode, s.body).toBe(200);
      expect(s.json().metatiles).toBeGreaterThan(0);
      const { z, x, y } = tileAt(CX, CY, 8);
      const hit = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png` });
      expect(hit.headers['x-cache']).toBe('HIT');
      const bad = await t.app.inject({
        method: 'POST',
        url: '/admin/tiles/purge',
        headers: auth,
        payload: { layer: 'squares', bbox: '1,2,3' },
      });
      expect(bad.statusCode).toBe(400);
      const p = await t.app.inject({ method: 'POST', url: '/admin/tiles/purge', headers: auth, payload: { layer: 'squares' } });
      expect(p.statusCode).toBe(200);
      const miss = await t.app.inject({ url: `/tiles/squares/${z}/${x}/${y}.png` });
      expect(miss.headers['x-cache']).toBe('MISS');
    } finally {
      delete process.env.GEODATA_ADMIN_TOKEN;
    }
  });

  it('seeding reports progress and resumes from its progress file after an interruption', async () => {
    const engine = t.ctx.runtime.tiles;
    const layer = t.ctx.registry.resolve('squares')!;
    const progressFile = path.join(dir, 'seed-progress.json');
    let seen = 0;
    // interrupt after a few metatiles
    const ac2 = new AbortController();
    const run = seed(engine, {
      layer,
      set: WEB_MERCATOR_QUAD,
      zooms: [12, 13],
      concurrency: 1,
      progressFile,
      signal: ac2.signal,
      onProgress: () => undefined,
    });
    await new Promise((r) => setTimeout(r, 50));
    ac2.abort();
    const partial = await run;
    expect(partial.finished).toBe(false);
    expect(existsSync(progressFile)).toBe(true);
    const before = engine.stats.renders;
    const done = await seed(engine, {
      layer,
      set: WEB_MERCATOR_QUAD,
      zooms: [12, 13],
      concurrency: 2,
      progressFile,
      onProgress: (p) => {
        seen++;
        expect(p.total).toBe(partial.total);
      },
    });
    expect(done.finished).toBe(true);
    expect(done.done).toBe(done.total);
    expect(seen).toBeGreaterThan(0);
    // only the metatiles not done before the interruption were rendered again
    expect(engine.stats.renders - before).toBeLessThanOrEqual(done.total - partial.done);
    expect(existsSync(progressFile)).toBe(false);
  });

  const main = path.join(process.cwd(), 'dist', 'src', 'main.js');
  it.skipIf(!existsSync(main))('the seed CLI seeds a polygon area with progress and refuses a bad zoom range', () => {
    const cdir = mkdtempSync(path.join(os.tmpdir(), 'tiles-cli-'));
    try {
      const cfg = path.join(cdir, 'config.yaml');
      writeFileSync(
        cfg,
        `database:\n  schemas: [tilestest]\ntiles:\n  diskDir: ${JSON.stringify(path.join(cdir, 'cache'))}\nlayers:\n  - table: tilestest.squares\n    name: squares\n`,
      );
      const env = { ...process.env, DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'info' };
      const r = spawnSync(
        process.execPath,
        [
          main,
          'seed',
          '--config',
          cfg,
          '--layer',
          'squares',
          '--matrixset',
          'WebMercatorQuad',
          '--zoom',
          '9-11',
          '--polygon',
          'squares:1',
          '--concurrency',
          '2',
        ],
        { encoding: 'utf8', env, timeout: 120_000 },
      );
      expect(r.status, r.stderr + r.stdout).toBe(0);
      expect(r.stderr).toMatch(/\d+\/\d+ metatiles \(100\.0%\), [\d.]+ metatiles\/s, ETA/);
      expect(r.stdout).toContain('seeding finished');
      expect(existsSync(path.join(cdir, 'cache', 'squares'))).toBe(true);
      const bad = spawnSync(process.execPath, [main, 'seed', '--config', cfg, '--layer', 'squares', '--zoom', '30'], {
        encoding: 'utf8',
        env,
        timeout: 60_000,
      });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain('zoom range outside');
    } finally {
      rmSync(cdir, { recursive: true, force: true });
    }
  });
});
