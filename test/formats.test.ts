/**
 * Formats as clients see them, through every front door: FlatGeobuf (download, WFS OUTPUTFORMAT,
 * OGC API f=fgb) read back by GDAL — count, French accents, NULLs, coordinates where they belong,
 * the spatial index in the header; GeoJSON from WFS in WGS 84 lon/lat without SRSNAME (RFC 7946)
 * and in the asked CRS with one; and formats offered only where they work (ogr2ogr injected
 * missing through the configuration, GDAL itself left installed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { ogrinfo } from './helpers/ogr.js';
import { hasOgr2ogr } from '../src/features/index.js';

const hasGdal = hasOgr2ogr();
const gdalIt = hasGdal ? it : it.skip;
if (!hasGdal) console.warn('[formats.test] ogrinfo/ogr2ogr not available: GDAL checks SKIPPED (apt-get install gdal-bin)');

const LAYERS = [
  { table: 'fmttest.lieux', name: 'lieux', title: 'Lieux' },
  { table: 'public.communes', name: 'communes', title: 'Communes' },
];

let t: TestApp;
let dir: string;

/** Rows of the fixture table: accents, NULLs, a date, points at known Lambert-93 coordinates. */
const ROWS = [
  { id: 1, nom: 'Sélestat', note: 'Œuvre', valeur: 1.5, jour: '2024-02-29', x: 1030000.25, y: 6800000.75 },
  { id: 2, nom: 'Châlons-en-Champagne', note: null, valeur: null, jour: null, x: 800000, y: 6870000 },
  { id: 3, nom: 'Épinal', note: 'Bœuf à l’étouffée', valeur: -2.25, jour: '1999-12-31', x: 950000.5, y: 6790000.5 },
  { id: 4, nom: 'Saint-Dié-des-Vosges', note: 'Ça', valeur: 3, jour: '2001-01-01', x: 990000, y: 6810000 },
];

beforeAll(async () => {
  const pool = new pg.Pool({ connectionString: testDatabaseUrl() });
  await pool.query(`DROP SCHEMA IF EXISTS fmttest CASCADE; CREATE SCHEMA fmttest;
    CREATE TABLE fmttest.lieux (id integer PRIMARY KEY, nom text, note text, valeur double precision, jour date, geom geometry(Point, 2154));`);
  for (const r of ROWS) {
    await pool.query('INSERT INTO fmttest.lieux VALUES ($1, $2, $3, $4, $5, ST_SetSRID(ST_MakePoint($6, $7), 2154))', [
      r.id,
      r.nom,
      r.note,
      r.valeur,
      r.jour,
      r.x,
      r.y,
    ]);
  }
  await pool.end();
  t = await makeTestApp({ layers: LAYERS });
  dir = mkdtempSync(path.join(os.tmpdir(), 'fmttest-'));
}, 60_000);

afterAll(async () => {
  await t?.ctx.pool.query('DROP SCHEMA IF EXISTS fmttest CASCADE');
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function get(app: TestApp, url: string, headers: Record<string, string> = {}) {
  const r = await app.app.inject({ method: 'GET', url, headers });
  return { status: r.statusCode, headers: r.headers, body: r.rawPayload, text: r.body };
}

let n = 0;
function save(body: Buffer, ext: string): string {
  const p = path.join(dir, `f${++n}.${ext}`);
  writeFileSync(p, body);
  return p;
}

/** The features GDAL reads from a file, as GeoJSON (coordinates as stored: no reprojection). */
function gdalFeatures(file: string): Array<{ properties: Record<string, unknown>; geometry: { coordinates: number[] } }> {
  // a GeoJSON feature's identifier stays the top-level id; files carry it as a field
  const r = spawnSync('ogr2ogr', ['-f', 'GeoJSON', '-lco', 'COORDINATE_PRECISION=9', '/vsistdout/', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`ogr2ogr failed: ${r.stderr}`);
  const features = JSON.parse(r.stdout).features as Array<{
    id?: unknown;
    properties: Record<string, unknown>;
    geometry: { coordinates: number[] };
  }>;
  return features.map((f) => ({ ...f, properties: { id: f.id, ...f.properties } }));
}

/** index_node_size of a FlatGeobuf header (FlatBuffers table field 9, default 16; 0 = no spatial index). */
function fgbIndexNodeSize(file: string): number {
  const b = readFileSync(file);
  expect(b.subarray(0, 3).toString('latin1')).toBe('fgb');
  const root = 12 + b.readUInt32LE(12);
  const vtable = root - b.readInt32LE(root);
  const vtSize = b.readUInt16LE(vtable);
  const slot = 4 + 2 * 9;
  const off = slot < vtSize ? b.readUInt16LE(vtable + slot) : 0;
  return off === 0 ? 16 : b.readUInt16LE(root + off);
}

async function expected4326(): Promise<Map<number, [number, number]>> {
  const r = await t.ctx.pool.query(`SELECT id, ST_X(g) x, ST_Y(g) y FROM (SELECT id, ST_Transform(geom, 4326) g FROM fmttest.lieux) s`);
  return new Map(r.rows.map((x) => [Number(x.id), [Number(x.x), Number(x.y)]]));
}

function checkAttributes(features: ReturnType<typeof gdalFeatures>): void {
  expect(features.length).toBe(ROWS.length);
  const byId = new Map(features.map((f) => [Number(f.properties.id), f]));
  for (const r of ROWS) {
    const f = byId.get(r.id)!;
    expect(f, `feature ${r.id}`).toBeDefined();
    expect(f.properties.nom).toBe(r.nom);
    expect(f.properties.note ?? null).toBe(r.note);
    expect(f.properties.valeur ?? null).toBe(r.valeur);
    if (r.jour === null) expect(f.properties.jour ?? null).toBeNull();
    else expect(String(f.properties.jour)).toMatch(new RegExp(`^${r.jour}`));
  }
}

describe('FlatGeobuf', () => {
  gdalIt('download in the layer’s CRS: GDAL reads every feature, accents, NULLs, coordinates; the file is spatially indexed', async () => {
    const r = await get(t, '/downloads/lieux.fgb');
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    expect(r.headers['content-type']).toBe('application/flatgeobuf');
    expect(String(r.headers['content-disposition'])).toContain('attachment; filename="lieux_EPSG2154.fgb"');
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    const file = save(r.body, 'fgb');
    const info = ogrinfo(file).layers[0];
    expect(info.name).toBe('lieux');
    expect(info.featureCount).toBe(ROWS.length);
    expect(info.epsg).toBe(2154);
    expect(fgbIndexNodeSize(file)).toBeGreaterThan(0);
    const features = gdalFeatures(file);
    checkAttributes(features);
    for (const f of features) {
      const row = ROWS.find((x) => x.id === Number(f.properties.id))!;
      expect(f.geometry.coordinates[0]).toBeCloseTo(row.x, 6);
      expect(f.geometry.coordinates[1]).toBeCloseTo(row.y, 6);
    }
  });

  gdalIt('download in WGS 84: longitude first in the file, where PostGIS puts it', async () => {
    const r = await get(t, '/downloads/lieux.fgb?crs=urn:ogc:def:crs:EPSG::4326');
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    expect(String(r.headers['content-disposition'])).toContain('lieux_EPSG4326.fgb');
    const file = save(r.body, 'fgb');
    expect(ogrinfo(file).layers[0].epsg).toBe(4326);
    const want = await expected4326();
    for (const f of gdalFeatures(file)) {
      const [lon, lat] = want.get(Number(f.properties.id))!;
      expect(f.geometry.coordinates[0]).toBeCloseTo(lon, 7);
      expect(f.geometry.coordinates[1]).toBeCloseTo(lat, 7);
      expect(lon).toBeGreaterThan(2);
      expect(lat).toBeGreaterThan(46);
    }
  });

  gdalIt('WFS OUTPUTFORMAT=application/flatgeobuf (2.0) and FlatGeobuf (1.1): the page, attached, read by GDAL', async () => {
    for (const [v, fmt] of [
      ['2.0.0', 'application/flatgeobuf'],
      ['1.1.0', 'FlatGeobuf'],
    ]) {
      const count = v === '2.0.0' ? 'COUNT' : 'MAXFEATURES';
      const type = v === '2.0.0' ? 'TYPENAMES' : 'TYPENAME';
      const r = await get(
        t,
        `/wfs?SERVICE=WFS&VERSION=${v}&REQUEST=GetFeature&${type}=geodata:lieux&${count}=3&OUTPUTFORMAT=${encodeURIComponent(fmt)}`,
      );
      expect(r.status, r.text.slice(0, 400)).toBe(200);
      expect(r.headers['content-type']).toBe('application/flatgeobuf');
      expect(String(r.headers['content-disposition'])).toContain('lieux_EPSG2154.fgb');
      const file = save(r.body, 'fgb');
      const features = gdalFeatures(file);
      // an indexed FlatGeobuf stores its features in the index's (Hilbert) order, not the request's
      expect(features.map((f) => f.properties.nom).sort()).toEqual(
        ROWS.slice(0, 3)
          .map((x) => x.nom)
          .sort(),
      );
      expect(features.find((f) => f.properties.nom === ROWS[1].nom)!.properties.note ?? null).toBeNull();
    }
    // two feature types cannot share one FlatGeobuf file
    const two = await get(
      t,
      '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=lieux,communes&OUTPUTFORMAT=application/flatgeobuf',
    );
    expect(two.status).toBe(400);
    expect(two.text).toContain('locator="outputFormat"');
  });

  gdalIt('OGC API items?f=fgb: the page in CRS84 (lon/lat), read by GDAL; links advertise it', async () => {
    const r = await get(t, '/collections/lieux/items?f=fgb&limit=2&offset=1');
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    expect(r.headers['content-type']).toBe('application/flatgeobuf');
    const file = save(r.body, 'fgb');
    const want = await expected4326();
    const features = gdalFeatures(file);
    expect(features.map((f) => f.properties.nom).sort()).toEqual([ROWS[1].nom, ROWS[2].nom].sort());
    for (const f of features) {
      const [lon, lat] = want.get(Number(f.properties.id))!;
      expect(f.geometry.coordinates[0]).toBeCloseTo(lon, 7);
      expect(f.geometry.coordinates[1]).toBeCloseTo(lat, 7);
    }
    // by Accept as well
    const a = await get(t, '/collections/lieux/items?limit=1', { accept: 'application/flatgeobuf' });
    expect(a.headers['content-type']).toBe('application/flatgeobuf');
    const c = (await get(t, '/collections/lieux?f=json')).text;
    expect(JSON.parse(c).links).toContainEqual(expect.objectContaining({ rel: 'items', type: 'application/flatgeobuf' }));
  });
});

describe('WFS GeoJSON: WGS 84 unless a CRS is asked (RFC 7946)', () => {
  gdalIt('without SRSNAME, every JSON alias answers lon/lat without a crs member; GDAL puts the points where PostGIS does', async () => {
    const want = await expected4326();
    for (const [v, fmt] of [
      ['2.0.0', 'application/geo+json'],
      ['2.0.0', 'application/json'],
      ['2.0.0', 'json'],
      ['1.1.0', 'application/json'],
      ['2.0.0', 'application/vnd.geo+json'],
    ]) {
      const type = v === '2.0.0' ? 'TYPENAMES' : 'TYPENAME';
      const r = await get(t, `/wfs?SERVICE=WFS&VERSION=${v}&REQUEST=GetFeature&${type}=lieux&OUTPUTFORMAT=${encodeURIComponent(fmt)}`);
      expect(r.status, `${v} ${fmt}: ${r.text.slice(0, 300)}`).toBe(200);
      const doc = JSON.parse(r.text);
      expect(doc.crs, `${v} ${fmt}`).toBeUndefined();
      expect(doc.features.length).toBe(ROWS.length);
      const file = save(r.body, 'geojson');
      expect(ogrinfo(file).layers[0].epsg, `${v} ${fmt}`).toBe(4326);
      for (const f of gdalFeatures(file)) {
        const [lon, lat] = want.get(Number(f.properties.id))!;
        expect(f.geometry.coordinates[0], `${v} ${fmt}`).toBeCloseTo(lon, 6);
        expect(f.geometry.coordinates[1], `${v} ${fmt}`).toBeCloseTo(lat, 6);
      }
    }
  });

  gdalIt('with SRSNAME=EPSG:2154 the native CRS is kept, named by the legacy crs member GDAL reads', async () => {
    const r = await get(
      t,
      '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=lieux&SRSNAME=EPSG:2154&OUTPUTFORMAT=application/json',
    );
    expect(r.status).toBe(200);
    const doc = JSON.parse(r.text);
    expect(doc.crs?.properties?.name).toBe('urn:ogc:def:crs:EPSG::2154');
    const file = save(r.body, 'geojson');
    expect(ogrinfo(file).layers[0].epsg).toBe(2154);
    for (const f of gdalFeatures(file)) {
      const row = ROWS.find((x) => x.id === Number(f.properties.id))!;
      expect(f.geometry.coordinates[0]).toBeCloseTo(row.x, 2);
      expect(f.geometry.coordinates[1]).toBeCloseTo(row.y, 2);
    }
  });

  it('NDJSON defaults to lon/lat too; GML keeps the layer’s CRS without SRSNAME', async () => {
    const nd = await get(t, '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=lieux&OUTPUTFORMAT=application/x-ndjson');
    expect(nd.status).toBe(200);
    const first = JSON.parse(nd.text.split('\n')[0]);
    expect(first.geometry.coordinates[0]).toBeGreaterThan(2);
    expect(first.geometry.coordinates[0]).toBeLessThan(9);
    const gml = await get(t, '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=lieux');
    expect(gml.status).toBe(200);
    expect(gml.text).toContain('srsName="urn:ogc:def:crs:EPSG::2154"');
    // the download of GeoJSON follows the same rule: lon/lat by default, the asked CRS otherwise
    const dl = JSON.parse((await get(t, '/downloads/lieux.geojson')).text);
    expect(dl.crs).toBeUndefined();
    expect(dl.features[0].geometry.coordinates[1]).toBeGreaterThan(46);
    const dl2154 = JSON.parse((await get(t, '/downloads/lieux.geojson?crs=EPSG:2154')).text);
    expect(dl2154.crs.properties.name).toBe('urn:ogc:def:crs:EPSG::2154');
    expect(dl2154.features[0].geometry.coordinates[0]).toBeCloseTo(ROWS[0].x, 2);
  });
});

describe('offered only where they work', () => {
  let noGdal: TestApp;
  beforeAll(async () => {
    // the same machine, GDAL installed, but the server told ogr2ogr is elsewhere: its probe fails
    noGdal = await makeTestApp({ layers: LAYERS, formats: { ogr2ogr: '/nonexistent/gdal/ogr2ogr', exclude: ['xlsx'] } });
  }, 60_000);
  afterAll(async () => {
    await noGdal?.close();
  });
  const GONE = ['SHAPE-ZIP', 'application/geopackage+sqlite3', 'GPKG', 'application/flatgeobuf', 'FlatGeobuf', 'excel2007'];

  it('WFS capabilities (2.0 and 1.1) list neither the GDAL formats nor an excluded one; the full server lists them', async () => {
    for (const v of ['2.0.0', '1.1.0']) {
      const full = (await get(t, `/wfs?SERVICE=WFS&REQUEST=GetCapabilities&ACCEPTVERSIONS=${v}`)).text;
      const lean = (await get(noGdal, `/wfs?SERVICE=WFS&REQUEST=GetCapabilities&ACCEPTVERSIONS=${v}`)).text;
      for (const f of GONE) {
        expect(full, `${v} full ${f}`).toContain(`>${f}<`);
        expect(lean, `${v} lean ${f}`).not.toContain(`>${f}<`);
      }
      expect(lean).toContain('>text/csv<');
      expect(lean).toContain('>application/vnd.google-earth.kml+xml<');
    }
  });

  it('WFS OUTPUTFORMAT of a missing format is InvalidParameterValue saying why', async () => {
    const r = await get(noGdal, '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=lieux&OUTPUTFORMAT=SHAPE-ZIP');
    expect(r.status).toBe(400);
    expect(r.text).toContain('InvalidParameterValue');
    expect(r.text).toContain('locator="outputFormat"');
    expect(r.text).toContain("GDAL's ogr2ogr");
  });

  it('the landing page, /downloads and OGC API links offer only what works; a missing format is 404 or 400, never 503', async () => {
    const landing = JSON.parse((await get(noGdal, '/?f=json')).text);
    const exts = landing.layers[0].downloads.map((d: { href: string }) => d.href.slice(d.href.lastIndexOf('.') + 1));
    expect(exts).toEqual(['geojson', 'csv', 'kml']);
    const fullLanding = JSON.parse((await get(t, '/?f=json')).text);
    expect(fullLanding.layers[0].downloads.map((d: { href: string }) => d.href.slice(d.href.lastIndexOf('.') + 1))).toEqual([
      'geojson',
      'csv',
      'kml',
      'shp',
      'gpkg',
      'fgb',
      'xlsx',
    ]);
    const list = JSON.parse((await get(noGdal, '/downloads')).text);
    expect(list.datasets[0].downloads.length).toBe(3);
    const dl = await get(noGdal, '/downloads/lieux.gpkg');
    expect(dl.status).toBe(404);
    expect(dl.text).toContain("GDAL's ogr2ogr");
    const links = JSON.parse((await get(noGdal, '/collections/lieux?f=json')).text).links as Array<{ type: string }>;
    const types = links.map((l) => l.type);
    expect(types).toContain('text/csv');
    for (const gone of ['application/zip', 'application/geopackage+sqlite3', 'application/flatgeobuf', formatXlsx]) {
      expect(types).not.toContain(gone);
    }
    const items = await get(noGdal, '/collections/lieux/items?f=shp');
    expect(items.status).toBe(400);
    expect(JSON.parse(items.text).parameter).toBe('f');
    const alt = JSON.parse((await get(noGdal, '/collections/lieux/items?limit=1')).text).links as Array<{ type: string }>;
    expect(alt.map((l) => l.type)).not.toContain('application/flatgeobuf');
  });

  it('catalogue distributions follow the same list', async () => {
    const lean = (await get(noGdal, '/catalog/dcat.ttl')).text;
    const full = (await get(t, '/catalog/dcat.ttl')).text;
    // FlatGeobuf has no EU file-type code: never a DCAT distribution (docs/formats.md), GDAL or not
    expect(full).not.toContain('/downloads/lieux.fgb');
    expect(full).toContain('/downloads/lieux.gpkg');
    expect(lean).toContain('/downloads/lieux.csv');
    expect(lean).not.toContain('/downloads/lieux.gpkg');
    expect(lean).not.toContain('/downloads/lieux.fgb');
  });
});

const formatXlsx = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
