/**
 * Downloads: every format opened by GDAL (ogrinfo) or a spreadsheet reader, clipping checked
 * against direct SQL, reprojection, Shapefile edge cases, bounded memory on big exports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ExcelJS from 'exceljs';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { downloadLinks } from '../src/services/downloads/index.js';
import { FORMATS, hasOgr2ogr } from '../src/features/index.js';
import { ogrinfo, type OgrLayer } from './helpers/ogr.js';

const hasGdal = hasOgr2ogr();
const gdalIt = hasGdal ? it : it.skip;
if (!hasGdal) console.warn('[downloads.test] ogrinfo/ogr2ogr not available: GDAL checks SKIPPED (apt-get install gdal-bin)');

let t: TestApp;
let dir: string;

const CONFIG = {
  layers: [
    {
      table: 'public.communes',
      name: 'communes',
      title: 'Communes',
      metadata: { clipKey: 'insee', kml: { name: 'nom', description: 'Commune {nom} ({insee})' } },
    },
    { table: 'public.parcels', name: 'parcels', title: 'Parcelles' },
    { table: 'public.roads', name: 'roads', title: 'Routes' },
    { table: 'public.pois', name: 'pois', title: "Points d'intérêt" },
    { table: 'dltest.mixed', name: 'mixed', title: 'Mixed geometries' },
  ],
};

beforeAll(async () => {
  // a table with the Shapefile edge cases: long and colliding field names, NULLs, dates, accents, mixed geometries
  const { Pool } = (await import('pg')).default;
  const { testDatabaseUrl } = await import('./helpers/app.js');
  const pool = new Pool({ connectionString: testDatabaseUrl() });
  await pool.query(`DROP SCHEMA IF EXISTS dltest CASCADE; CREATE SCHEMA dltest;
    CREATE TABLE dltest.mixed (
      id integer PRIMARY KEY,
      nom_de_la_commune_longue text,
      nom_de_la_commune_courte text,
      valeur_numerique double precision,
      compte integer,
      jour date,
      actif boolean,
      geom geometry(Geometry, 2154));
    INSERT INTO dltest.mixed VALUES
      (1, 'Sélestat', 'Œuvre', 1.5, 10, '2024-02-29', true, ST_SetSRID(ST_MakePoint(1030000, 6800000), 2154)),
      (2, 'Châlons-en-Champagne', NULL, NULL, NULL, NULL, NULL, ST_SetSRID(ST_MakeLine(ST_MakePoint(800000, 6870000), ST_MakePoint(801000, 6871000)), 2154)),
      (3, 'Épinal', 'Bœuf', -2.25, 0, '1999-12-31', false, ST_Buffer(ST_SetSRID(ST_MakePoint(950000, 6790000), 2154), 100)),
      (4, 'Saint-Dié-des-Vosges', 'Ça', 3, 7, '2001-01-01', true, ST_SetSRID(ST_MakePoint(990000, 6810000), 2154));`);
  await pool.end();
  t = await makeTestApp(CONFIG);
  dir = mkdtempSync(path.join(os.tmpdir(), 'dltest-'));
}, 60_000);

afterAll(async () => {
  await t?.ctx.pool.query('DROP SCHEMA IF EXISTS dltest CASCADE');
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function download(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const r = await t.app.inject({ method: 'GET', url });
  return { status: r.statusCode, headers: r.headers, body: r.rawPayload };
}

function save(name: string, body: Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, body);
  return p;
}

function epsgOf(l: OgrLayer): number | undefined {
  return l.epsg;
}

async function sqlCount(sql: string, params: unknown[] = []): Promise<number> {
  const r = await t.ctx.pool.query(sql, params);
  return Number(r.rows[0].n);
}

describe('download formats opened by GDAL', () => {
  gdalIt(
    'GeoJSON, CSV, KML, Shapefile, GeoPackage, FlatGeobuf of the communes clipped to one commune, in Lambert-93 and WGS 84',
    async () => {
      const insee = (await t.ctx.pool.query(`SELECT insee FROM public.communes WHERE nom LIKE 'S%' ORDER BY id LIMIT 1`)).rows[0]
        .insee as string;
      const expected = await sqlCount(
        `SELECT count(*) AS n FROM public.communes t, (SELECT geom FROM public.communes WHERE insee = $1) c WHERE ST_Intersects(t.geom, c.geom)`,
        [insee],
      );
      expect(expected).toBeGreaterThan(1);
      const names = new Set(
        (
          await t.ctx.pool.query(
            `SELECT t.nom FROM public.communes t, (SELECT geom FROM public.communes WHERE insee = $1) c WHERE ST_Intersects(t.geom, c.geom)`,
            [insee],
          )
        ).rows.map((r) => r.nom as string),
      );
      for (const crs of ['EPSG:2154', 'EPSG:4326']) {
        for (const ext of ['geojson', 'csv', 'kml', 'shp', 'gpkg', 'fgb']) {
          const r = await download(`/downloads/communes.${ext}?clip=communes:${insee}&crs=${crs}`);
          expect(r.status, `${ext} ${crs}: ${r.body.toString().slice(0, 300)}`).toBe(200);
          const epsg = ext === 'kml' ? 4326 : Number(crs.split(':')[1]);
          const fileExt = ext === 'shp' ? 'zip' : ext;
          expect(String(r.headers['content-disposition'])).toContain(`communes_communes-${insee}_EPSG${epsg}.${fileExt}`);
          let file = save(`c_${epsg}.${fileExt}`, r.body);
          if (ext === 'shp') {
            expect(Number(r.headers['content-length'])).toBe(r.body.length);
            const d = path.join(dir, `shp_${epsg}`);
            rmSync(d, { recursive: true, force: true });
            expect(spawnSync('unzip', ['-q', '-o', file, '-d', d]).status).toBe(0);
            expect(readdirSync(d).sort()).toEqual(['communes.cpg', 'communes.dbf', 'communes.prj', 'communes.shp', 'communes.shx']);
            file = path.join(d, 'communes.shp');
          }
          if (ext === 'csv') {
            // GDAL's CSV driver reads the WKT column as the geometry
            file = file.replace(/\.csv$/, '.csv');
          }
          const info = ogrinfo(ext === 'csv' ? `CSV:${file}` : file, true);
          const layer = info.layers[0];
          expect(layer.featureCount, `${ext} ${crs}`).toBe(expected);
          if (ext !== 'csv') expect(epsgOf(layer), `${ext} ${crs}`).toBe(epsg);
          const nomField = ext === 'kml' ? (layer.features![0].properties.Name !== undefined ? 'Name' : 'name') : 'nom';
          const got = new Set(layer.features!.map((f) => String(f.properties[nomField])));
          expect(got, `${ext} ${crs}`).toEqual(names);
          if (ext === 'kml') {
            const descr = layer.features!.map((f) => String(f.properties.Description ?? f.properties.description));
            expect(
              descr.every((d) => d.startsWith('Commune ')),
              descr.slice(0, 2).join(' | '),
            ).toBe(true);
          }
        }
      }
    },
    120_000,
  );

  gdalIt('Shapefile .prj is ESRI WKT and .cpg says UTF-8', async () => {
    const r = await download('/downloads/pois.shp?crs=EPSG:2154&filter=' + encodeURIComponent("categorie = 'mairie'"));
    expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
    const z = save('pois.zip', r.body);
    const d = path.join(dir, 'pois');
    spawnSync('unzip', ['-q', '-o', z, '-d', d]);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(path.join(d, 'pois.cpg'), 'utf8').trim()).toBe('UTF-8');
    const prj = readFileSync(path.join(d, 'pois.prj'), 'utf8');
    // the ESRI flavour of WKT1, as GDAL writes it for EPSG:2154
    expect(prj).toMatch(/^PROJCS\["RGF_1993_Lambert_93",GEOGCS\["GCS_RGF_1993",DATUM\["D_RGF_1993"/);
    expect(prj).toContain('PROJECTION["Lambert_Conformal_Conic"]');
  });

  gdalIt('Shapefile edge cases: mixed geometries split by type, long names truncated uniquely, NULLs, dates, accents', async () => {
    const r = await download('/downloads/mixed.shp');
    expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
    const z = save('mixed.zip', r.body);
    const d = path.join(dir, 'mixed');
    spawnSync('unzip', ['-q', '-o', z, '-d', d]);
    const files = readdirSync(d).sort();
    for (const fam of ['point', 'line', 'polygon']) {
      for (const e of ['shp', 'shx', 'dbf', 'prj', 'cpg']) expect(files).toContain(`mixed_${fam}.${e}`);
    }
    const pts = ogrinfo(path.join(d, 'mixed_point.shp'), true).layers[0];
    expect(pts.featureCount).toBe(2);
    const lines = ogrinfo(path.join(d, 'mixed_line.shp'), true).layers[0];
    expect(lines.featureCount).toBe(1);
    const polys = ogrinfo(path.join(d, 'mixed_polygon.shp'), true).layers[0];
    expect(polys.featureCount).toBe(1);
    const names = pts.fields.map((f) => f.name);
    expect(names.every((n) => n.length <= 10)).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    const longA = names.find((n) => n.startsWith('nom_de_la'))!;
    const longB = names.filter((n) => n.startsWith('nom_de_l'));
    expect(longB.length).toBe(2);
    const byId = new Map(pts.features!.map((f) => [Number(f.properties.id), f.properties]));
    expect(byId.get(1)![longA]).toBe('Sélestat');
    expect(Object.values(byId.get(1)!)).toContain('Œuvre');
    expect(String(byId.get(1)!.jour).replace(/\//g, '-')).toBe('2024-02-29');
    expect(pts.fields.find((f) => f.name === 'jour')!.type).toBe('Date');
    const line = lines.features![0].properties;
    expect(line[longA]).toBe('Châlons-en-Champagne');
    expect(line.valeur_num ?? line[names.find((n) => n.startsWith('valeur'))!]).toBeNull();
    expect(line.jour).toBeNull();
  });

  gdalIt('GeoPackage keeps the mixed layer whole, with its CRS', async () => {
    const r = await download('/downloads/mixed.gpkg?crs=EPSG:3857');
    expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
    expect(r.headers['content-type']).toBe('application/geopackage+sqlite3');
    const info = ogrinfo(save('mixed.gpkg', r.body), true);
    expect(info.layers[0].featureCount).toBe(4);
    expect(epsgOf(info.layers[0])).toBe(3857);
    expect(info.layers[0].fields.map((f) => f.name)).toContain('nom_de_la_commune_longue');
  });

  it('the 255-field limit of a Shapefile is reported, not hidden', async () => {
    const { Pool } = (await import('pg')).default;
    const cols = Array.from({ length: 260 }, (_, i) => `c${i} int`).join(', ');
    await t.ctx.pool.query(`CREATE TABLE dltest.wide (id int PRIMARY KEY, ${cols}, geom geometry(Point, 2154))`);
    const w = await makeTestApp({ layers: [{ table: 'dltest.wide', name: 'wide', title: 'wide' }] });
    try {
      const r = await w.app.inject({ method: 'GET', url: '/downloads/wide.shp' });
      expect(r.statusCode).toBe(400);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.json().detail).toMatch(/at most 255 fields/);
    } finally {
      await w.close();
    }
    void Pool;
  });
});

describe('CSV options and XLSX', () => {
  it('CSV with BOM, semicolons and x/y columns', async () => {
    const r = await download('/downloads/pois.csv?bom=true&sep=semicolon&geometry=xy&crs=EPSG:4326&properties=nom,categorie');
    expect(r.status).toBe(200);
    expect([...r.body.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = r.body.toString('utf8').slice(1).trim().split('\r\n');
    // columns in table order, then x;y
    expect(lines[0].split(';').sort()).toEqual(['categorie', 'nom', 'x', 'y']);
    expect(lines[0].endsWith(';x;y')).toBe(true);
    const n = await sqlCount('SELECT count(*) AS n FROM public.pois');
    expect(lines.length - 1).toBe(n);
    const [, , x, y] = lines[1].split(';');
    expect(Number(x)).toBeGreaterThan(3);
    expect(Number(x)).toBeLessThan(9);
    expect(Number(y)).toBeGreaterThan(47);
  });

  it('XLSX read back with exceljs: the rows, typed, accents intact', async () => {
    const insee = (await t.ctx.pool.query('SELECT insee FROM public.communes ORDER BY id LIMIT 1')).rows[0].insee as string;
    const r = await download(`/downloads/parcels.xlsx?filter=${encodeURIComponent(`insee = '${insee}'`)}&geometry=both`);
    expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    const rows = (await t.ctx.pool.query('SELECT id, idu, contenance, nature FROM public.parcels WHERE insee = $1 ORDER BY id', [insee]))
      .rows;
    expect(rows.length).toBeGreaterThan(0);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(r.body as unknown as ArrayBuffer);
    const ws = wb.worksheets[0];
    // strings are inline rich text (t="inlineStr", what GDAL and Excel read as text; exceljs hands
    // them back as {richText}): compare their text
    const plain = (v: unknown) =>
      v && typeof v === 'object' && 'richText' in v ? (v as { richText: Array<{ text: string }> }).richText.map((x) => x.text).join('') : v;
    const header = (ws.getRow(1).values as unknown[]).slice(1).map(plain);
    expect(header).toEqual([
      'id',
      'idu',
      'insee',
      'section',
      'numero',
      'contenance',
      'nature',
      'bati',
      'valeur',
      'date_maj',
      'updated_at',
      'wkt',
      'x',
      'y',
    ]);
    expect(ws.actualRowCount).toBe(rows.length + 1);
    rows.forEach((row, i) => {
      const v = (ws.getRow(i + 2).values as unknown[]).map(plain);
      expect(v[1]).toBe(Number(row.id));
      expect(v[2]).toBe(row.idu);
      expect(v[6]).toBe(row.contenance);
      expect(v[7] ?? null).toBe(row.nature);
      expect(String(v[12])).toMatch(/^MULTIPOLYGON/);
    });
  });
});

describe('clipping', () => {
  it('clip by a commune returns exactly the parcels intersecting it; cut keeps polygons inside it', async () => {
    const insee = (
      await t.ctx.pool.query(
        `SELECT c.insee FROM public.communes c JOIN public.parcels p ON p.insee = c.insee GROUP BY c.insee ORDER BY count(*) DESC LIMIT 1`,
      )
    ).rows[0].insee as string;
    const expected = await sqlCount(
      `SELECT count(*) AS n FROM public.parcels t, (SELECT geom FROM public.communes WHERE insee = $1) c WHERE ST_Intersects(t.geom, c.geom)`,
      [insee],
    );
    const r = await download(`/downloads/parcels.geojson?clip=communes:${insee}&crs=EPSG:2154`);
    expect(r.status).toBe(200);
    const fc = JSON.parse(r.body.toString());
    expect(fc.features.length).toBe(expected);
    const cut = JSON.parse(
      (await download(`/downloads/parcels.geojson?clip=communes:${insee}&clipmode=cut&crs=EPSG:2154`)).body.toString(),
    );
    const expectedCut = await sqlCount(
      `SELECT count(*) AS n FROM public.parcels t, (SELECT geom FROM public.communes WHERE insee = $1) c
       WHERE ST_Intersects(t.geom, c.geom) AND NOT ST_IsEmpty(ST_CollectionExtract(ST_Intersection(t.geom, c.geom), 3))`,
      [insee],
    );
    expect(cut.features.length).toBe(expectedCut);
    expect(cut.features.every((f: { geometry: { type: string } }) => f.geometry.type === 'MultiPolygon')).toBe(true);
    // every cut geometry lies within the commune
    const outside = await sqlCount(
      `SELECT count(*) AS n FROM json_array_elements($1::json) f, (SELECT geom FROM public.communes WHERE insee = $2) c
       WHERE NOT ST_CoveredBy(ST_SetSRID(ST_GeomFromGeoJSON(f->>'geometry'), 2154), ST_Buffer(c.geom, 0.05))`,
      [JSON.stringify(cut.features), insee],
    );
    expect(outside).toBe(0);
  });

  it('clip by a WKT polygon in CRS84 and in Lambert-93', async () => {
    const wkt = 'POLYGON((1040000 6830000, 1060000 6830000, 1060000 6850000, 1040000 6850000, 1040000 6830000))';
    const expected = await sqlCount(`SELECT count(*) AS n FROM public.pois WHERE ST_Intersects(geom, ST_GeomFromText($1, 2154))`, [wkt]);
    expect(expected).toBeGreaterThan(0);
    const a = JSON.parse((await download(`/downloads/pois.geojson?clip=${encodeURIComponent(wkt)}&clip-crs=EPSG:2154`)).body.toString());
    expect(a.features.length).toBe(expected);
    const gj = (await t.ctx.pool.query(`SELECT ST_AsGeoJSON(ST_Transform(ST_GeomFromText($1, 2154), 4326), 9) AS g`, [wkt])).rows[0]
      .g as string;
    const b = JSON.parse((await download(`/downloads/pois.geojson?clip=${encodeURIComponent(gj)}`)).body.toString());
    expect(Math.abs(b.features.length - expected)).toBeLessThanOrEqual(2); // the edges are curved in CRS84
  });

  it('bad clips and parameters are 400 problems', async () => {
    for (const q of [
      'clip=communes:nope',
      'clip=POLYGON((0 0, 1 1',
      'clip=POINT(1 2)',
      'clip=nolayer:1',
      'clipmode=cut',
      'clip=communes:x&clipmode=middle',
      'crs=EPSG:9999',
      'filter=nom%20%3D',
      'properties=nothing',
      'sep=tab',
      'bbox=1,2,3',
    ]) {
      const r = await download(`/downloads/pois.csv?${q}`);
      expect(r.statusCode ?? r.status, q).toBe(400);
      expect(r.headers['content-type'], q).toContain('application/problem+json');
      expect(JSON.parse(r.body.toString()).detail, q).toBeTruthy();
    }
    expect((await download('/downloads/unknown.csv')).status).toBe(404);
    expect((await download('/downloads/pois.docx')).status).toBe(404);
  });
});

describe('links', () => {
  it('downloadLinks gives every format with media type and EU file type; the landing page lists them', async () => {
    const links = downloadLinks('https://example.org/geo/', { name: 'parcels' }, FORMATS);
    expect(links.map((l) => l.href)).toEqual(
      ['geojson', 'csv', 'kml', 'shp', 'gpkg', 'fgb', 'xlsx'].map((e) => `https://example.org/geo/downloads/parcels.${e}`),
    );
    expect(links.map((l) => l.fileType?.split('/').pop())).toEqual(['GEOJSON', 'CSV', 'KML', 'SHP', 'GPKG', undefined, 'XLSX']);
    expect(links.find((l) => l.href.endsWith('.fgb'))?.mediaType).toBe('application/flatgeobuf');
    const r = await t.app.inject({ method: 'GET', url: '/?f=json' });
    const doc = r.json();
    const parcels = doc.layers.find((l: { name: string }) => l.name === 'parcels');
    expect(parcels.downloads.map((d: { mediaType: string }) => d.mediaType)).toContain('application/zip');
  });
});

describe('big exports stream in bounded memory', () => {
  it('all 20k parcels as CSV and GeoJSON: the right count, RSS growth far below the output size', async () => {
    const n = await sqlCount('SELECT count(*) AS n FROM public.parcels');
    for (const ext of ['csv', 'geojson']) {
      const res = await t.app.inject({ method: 'GET', url: `/downloads/parcels.${ext}`, payloadAsStream: true });
      expect(res.statusCode).toBe(200);
      const stream = res.stream();
      const rss0 = process.memoryUsage().rss;
      let peak = rss0;
      let bytes = 0;
      let newlines = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) newlines++;
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      // CSV: header + n lines; GeoJSON: one feature per line between the header and the footer
      expect(ext === 'csv' ? newlines - 1 : newlines - 2).toBe(n);
      expect(bytes).toBeGreaterThan(5_000_000);
      // the consumer reads chunk by chunk: memory must not follow the size of the file
      expect(peak - rss0).toBeLessThan(Math.max(bytes / 2, 64 * 1024 * 1024));
    }
  }, 120_000);
});
