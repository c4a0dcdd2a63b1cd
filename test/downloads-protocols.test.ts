/**
 * The download formats through the protocols: WFS GetFeature OUTPUTFORMAT (2.0 and 1.1) and
 * OGC API Features f= / Accept, written by the same export as /downloads and opened by GDAL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { ogrinfo } from './helpers/ogr.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';
import { hasOgr2ogr } from '../src/features/index.js';

const hasGdal = hasOgr2ogr();
const gdalIt = hasGdal ? it : it.skip;
if (!hasGdal) console.warn('[downloads-protocols.test] ogrinfo/ogr2ogr not available: GDAL checks SKIPPED (apt-get install gdal-bin)');

let t: TestApp;
let dir: string;

const CONFIG = {
  layers: [
    { table: 'public.communes', name: 'communes', title: 'Communes', metadata: { clipKey: 'insee' } },
    { table: 'public.pois', name: 'pois', title: "Points d'intérêt" },
  ],
};

beforeAll(async () => {
  t = await makeTestApp(CONFIG);
  dir = mkdtempSync(path.join(os.tmpdir(), 'dlproto-'));
}, 60_000);

afterAll(async () => {
  await t?.close();
  if (dir && !process.env.KEEP_DL) rmSync(dir, { recursive: true, force: true });
});

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await t.app.inject({ method: 'GET', url, headers });
  return { status: r.statusCode, headers: r.headers, body: r.rawPayload, text: r.body };
}

let fileNo = 0;
/** Save a response and give GDAL's name for it (a Shapefile ZIP is read through /vsizip/). */
function gdalName(body: Buffer, ext: string): string {
  const p = path.join(dir, `f${++fileNo}.${ext}`);
  writeFileSync(p, body);
  if (ext === 'zip') return `/vsizip/${p}`;
  if (ext === 'csv') return `CSV:${p}`;
  return p;
}

const EXT: Record<string, string> = { kml: 'kml', shp: 'zip', gpkg: 'gpkg', xlsx: 'xlsx', csv: 'csv' };

/** The names of a page of communes in the server's stable order (the primary key). */
async function communeNames(offset: number, limit: number, where = 'TRUE'): Promise<string[]> {
  const r = await t.ctx.pool.query(`SELECT nom FROM public.communes WHERE ${where} ORDER BY id OFFSET $1 LIMIT $2`, [offset, limit]);
  return r.rows.map((x) => x.nom as string);
}

function nameField(kind: string): string {
  return kind === 'kml' ? 'Name' : 'nom';
}

describe('WFS GetFeature download output formats', () => {
  const cases: Array<{ fmt: string; kind: string; mime: string }> = [
    { fmt: 'SHAPE-ZIP', kind: 'shp', mime: 'application/zip' },
    { fmt: 'application/vnd.google-earth.kml+xml', kind: 'kml', mime: 'application/vnd.google-earth.kml+xml' },
    { fmt: 'KML', kind: 'kml', mime: 'application/vnd.google-earth.kml+xml' },
    { fmt: 'application/geopackage+sqlite3', kind: 'gpkg', mime: 'application/geopackage+sqlite3' },
    { fmt: 'GPKG', kind: 'gpkg', mime: 'application/geopackage+sqlite3' },
    { fmt: 'excel2007', kind: 'xlsx', mime: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
    {
      fmt: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      kind: 'xlsx',
      mime: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    },
    { fmt: 'text/csv', kind: 'csv', mime: 'text/csv' },
  ];
  for (const c of cases) {
    gdalIt(
      `2.0 OUTPUTFORMAT=${c.fmt}: COUNT/STARTINDEX page opened by GDAL, accents intact, CRS`,
      async () => {
        const srs = c.kind === 'shp' || c.kind === 'gpkg' ? 'EPSG:4326' : 'urn:ogc:def:crs:EPSG::2154';
        const r = await get(
          `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=geodata:communes&COUNT=37&STARTINDEX=5&SRSNAME=${encodeURIComponent(srs)}&OUTPUTFORMAT=${encodeURIComponent(c.fmt)}`,
        );
        expect(r.status, r.text.slice(0, 400)).toBe(200);
        expect(String(r.headers['content-type'])).toContain(c.mime);
        const epsg = c.kind === 'kml' ? 4326 : c.kind === 'shp' || c.kind === 'gpkg' ? 4326 : 2154;
        expect(String(r.headers['content-disposition'])).toContain(`attachment; filename="communes_EPSG${epsg}.${EXT[c.kind]}"`);
        const info = ogrinfo(gdalName(r.body, EXT[c.kind]), true);
        const l = info.layers[0];
        expect(l.featureCount).toBe(37);
        const want = await communeNames(5, 37);
        expect(l.features!.map((f) => String(f.properties[nameField(c.kind)]))).toEqual(want);
        expect(
          want.some((n) => /[éèêëçôîàâ]/i.test(n)),
          'the demo data has accented names',
        ).toBe(true);
        if (c.kind === 'shp' || c.kind === 'gpkg' || c.kind === 'kml') {
          expect(l.epsg).toBe(4326);
          // x/y = longitude/latitude in the file, whatever axis order the protocol uses on the wire
          const [minx, miny, maxx, maxy] = l.extent!;
          expect(minx).toBeGreaterThan(2);
          expect(maxx).toBeLessThan(9);
          expect(miny).toBeGreaterThan(46);
          expect(maxy).toBeLessThan(51);
        }
      },
      60_000,
    );
  }

  gdalIt(
    'BBOX, FILTER and PROPERTYNAME apply; urn 4326 SRSNAME still writes lon/lat into the GeoPackage',
    async () => {
      const filter = `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsGreaterThan><fes:ValueReference>population</fes:ValueReference><fes:Literal>2000</fes:Literal></fes:PropertyIsGreaterThan></fes:Filter>`;
      const ext = (
        await t.ctx.pool.query(
          `SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM (SELECT ST_Extent(geom) e FROM public.communes) s`,
        )
      ).rows[0];
      const bbox = [ext.x0, ext.y0, (ext.x0 + ext.x1) / 2, (ext.y0 + ext.y1) / 2].join(',') + ',urn:ogc:def:crs:EPSG::2154';

      const half = [ext.x0, ext.y0, (ext.x0 + ext.x1) / 2, (ext.y0 + ext.y1) / 2];
      // BBOX and FILTER are exclusive in KVP: once each
      const byBbox = await get(
        `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes&COUNT=10000&OUTPUTFORMAT=GPKG&SRSNAME=urn:ogc:def:crs:EPSG::4326&PROPERTYNAME=nom,population&BBOX=${bbox}`,
      );
      const byFilter = await get(
        `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes&COUNT=10000&OUTPUTFORMAT=GPKG&SRSNAME=urn:ogc:def:crs:EPSG::4326&PROPERTYNAME=nom,population&FILTER=${encodeURIComponent(filter)}`,
      );
      for (const [r, where] of [
        [byBbox, `geom && ST_MakeEnvelope(${half.join(', ')}, 2154)`],
        [byFilter, 'population > 2000'],
      ] as const) {
        expect(r.status, r.text.slice(0, 400)).toBe(200);
        const want = await communeNames(0, 10000, where);
        expect(want.length).toBeGreaterThan(5);
        expect(want.length).toBeLessThan(400);
        const l = ogrinfo(gdalName(r.body, 'gpkg'), true).layers[0];
        expect(l.featureCount).toBe(want.length);
        expect(l.fields.map((f) => f.name).sort(), JSON.stringify(l.fields)).toEqual(['nom', 'population']);
        expect(l.features!.map((f) => f.properties.nom)).toEqual(want);
        expect(l.epsg).toBe(4326);
        expect(l.extent![0]).toBeGreaterThan(2); // longitude first
        expect(l.extent![1]).toBeGreaterThan(46);
      }
    },
    60_000,
  );

  gdalIt(
    'WFS 1.1.0: MAXFEATURES and OUTPUTFORMAT=SHAPE-ZIP; several types in one KML; one type per Shapefile',
    async () => {
      const r = await get(
        '/wfs?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=geodata:communes&MAXFEATURES=12&OUTPUTFORMAT=SHAPE-ZIP',
      );
      expect(r.status, r.text.slice(0, 400)).toBe(200);
      const l = ogrinfo(gdalName(r.body, 'zip'), true).layers[0];
      expect(l.featureCount).toBe(12);
      expect(l.epsg).toBe(2154);
      expect(l.features!.map((f) => f.properties.nom)).toEqual(await communeNames(0, 12));

      const nCommunes = Number((await t.ctx.pool.query('SELECT count(*) n FROM public.communes')).rows[0].n);
      const k = await get(
        `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes,pois&STARTINDEX=${nCommunes - 5}&COUNT=15&OUTPUTFORMAT=KML`,
      );
      expect(k.status, k.text.slice(0, 400)).toBe(200);
      expect(String(k.headers['content-disposition'])).toContain('communes_pois_EPSG4326.kml');
      const kl = ogrinfo(gdalName(k.body, 'kml')).layers;
      // the page runs over the types in order: the last 5 communes, then 10 POIs, one folder each
      expect(kl.map((x) => x.featureCount)).toEqual([5, 10]);

      const bad = await get('/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes,pois&OUTPUTFORMAT=SHAPE-ZIP');
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('InvalidParameterValue');
      expect(bad.text).toContain('locator="outputFormat"');
    },
    60_000,
  );

  gdalIt(
    'GetFeatureById stored query as GeoPackage; an absent id is 404 NotFound',
    async () => {
      const id = (await t.ctx.pool.query('SELECT id, nom FROM public.communes ORDER BY id DESC LIMIT 1')).rows[0];
      const r = await get(
        `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=communes.${id.id}&OUTPUTFORMAT=GPKG`,
      );
      expect(r.status, r.text.slice(0, 400)).toBe(200);
      const l = ogrinfo(gdalName(r.body, 'gpkg'), true).layers[0];
      expect(l.featureCount).toBe(1);
      expect(l.features![0].properties.nom).toBe(id.nom);
      const nf = await get(
        '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=communes.999999&OUTPUTFORMAT=GPKG',
      );
      expect(nf.status).toBe(404);
      expect(nf.text).toContain('NotFound');
    },
    60_000,
  );

  it('an unknown output format is InvalidParameterValue with locator outputFormat (2.0 and 1.1)', async () => {
    for (const v of ['2.0.0', '1.1.0']) {
      const r = await get(
        `/wfs?SERVICE=WFS&VERSION=${v}&REQUEST=GetFeature&TYPENAMES=communes&TYPENAME=communes&OUTPUTFORMAT=application/x-dwg`,
      );
      expect(r.status).toBe(400);
      expect(r.text).toContain('InvalidParameterValue');
      expect(r.text).toMatch(/locator="outputFormat"/);
    }
    // hits carry a number, which a file cannot
    const h = await get('/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes&RESULTTYPE=hits&OUTPUTFORMAT=SHAPE-ZIP');
    expect(h.status).toBe(400);
  });

  const caps: Record<string, string> = {};
  it('GetCapabilities 2.0 and 1.1 list the download formats for GetFeature and per feature type', async () => {
    const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true });
    for (const v of ['2.0.0', '1.1.0']) {
      const r = await get(`/wfs?SERVICE=WFS&REQUEST=GetCapabilities&ACCEPTVERSIONS=${v}`);
      expect(r.status).toBe(200);
      caps[v] = r.text;
      const doc = parser.parse(r.text).WFS_Capabilities;
      const op = [doc.OperationsMetadata.Operation].flat().find((o: { '@_name': string }) => o['@_name'] === 'GetFeature');
      const param = [op.Parameter].flat().find((p: { '@_name': string }) => p['@_name'] === 'outputFormat');
      const values: string[] = v === '2.0.0' ? [param.AllowedValues.Value].flat() : [param.Value].flat();
      for (const f of [
        'SHAPE-ZIP',
        'application/vnd.google-earth.kml+xml',
        'KML',
        'application/geopackage+sqlite3',
        'GPKG',
        'excel2007',
        'text/csv',
      ]) {
        expect(values, `${v} ${f}`).toContain(f);
      }
      const ft = [doc.FeatureTypeList.FeatureType].flat()[0];
      expect([ft.OutputFormats.Format].flat()).toContain('SHAPE-ZIP');
    }
  });
  it.skipIf(!canValidate)('both capabilities documents stay schema-valid', () => {
    const res = validateXml([caps['2.0.0'], caps['1.1.0']]);
    res.forEach((x) => expect(x.valid, x.output).toBe(true));
  });
  it.skipIf(canValidate)(`schema validation: ${skipReason}`, () => {
    console.warn(skipReason);
  });
});

describe('OGC API Features download formats (f= and Accept)', () => {
  for (const f of ['kml', 'shp', 'gpkg', 'xlsx', 'csv']) {
    gdalIt(
      `items?f=${f}: the page (limit/offset/crs) opened by GDAL`,
      async () => {
        const crs = f === 'csv' ? '' : '&crs=' + encodeURIComponent('http://www.opengis.net/def/crs/EPSG/0/4326');
        const r = await get(`/collections/communes/items?f=${f}&limit=23&offset=7${crs}`);
        expect(r.status, r.text.slice(0, 400)).toBe(200);
        expect(String(r.headers['content-disposition'])).toMatch(new RegExp(`filename="communes_EPSG4326\\.${EXT[f]}"`));
        const info = ogrinfo(gdalName(r.body, EXT[f]), true);
        const l = info.layers[0];
        expect(l.featureCount).toBe(23);
        expect(l.features!.map((x) => String(x.properties[nameField(f)]))).toEqual(await communeNames(7, 23));
        if (f !== 'xlsx' && f !== 'csv') {
          expect(l.epsg).toBe(4326);
          // EPSG:4326 is lat/lon on the wire (Part 2) but files store lon/lat
          expect(l.extent![0]).toBeGreaterThan(2);
          expect(l.extent![2]).toBeLessThan(9);
          expect(l.extent![1]).toBeGreaterThan(46);
        }
      },
      60_000,
    );
  }

  gdalIt(
    'Accept media types choose the format; the GeoJSON page links every alternate',
    async () => {
      const a = await get('/collections/pois/items?limit=5', { accept: 'application/geopackage+sqlite3' });
      expect(a.status, a.text.slice(0, 300)).toBe(200);
      expect(String(a.headers['content-type'])).toContain('application/geopackage+sqlite3');
      expect(ogrinfo(gdalName(a.body, 'gpkg')).layers[0].featureCount).toBe(5);
      const k = await get('/collections/pois/items?limit=5', { accept: 'application/vnd.google-earth.kml+xml' });
      expect(String(k.headers['content-type'])).toContain('kml');
      const j = await get('/collections/pois/items?limit=5&filter=' + encodeURIComponent("categorie = 'mairie'"));
      const links = JSON.parse(j.text).links as Array<{ rel: string; type: string; href: string }>;
      const alt = links.filter((l) => l.rel === 'alternate').map((l) => l.type);
      expect(alt).toEqual(
        expect.arrayContaining([
          'text/html',
          'text/csv',
          'application/vnd.google-earth.kml+xml',
          'application/zip',
          'application/geopackage+sqlite3',
          'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
        ]),
      );
      const shpLink = links.find((l) => l.type === 'application/zip')!.href;
      expect(shpLink).toContain('f=shp');
      expect(new URL(shpLink).searchParams.get('filter')).toBe("categorie = 'mairie'");
      const n = Number((await t.ctx.pool.query(`SELECT count(*) n FROM public.pois WHERE categorie = 'mairie'`)).rows[0].n);
      const u = new URL(shpLink);
      u.searchParams.set('limit', '1000');
      const s = await get(u.pathname + u.search);
      expect(s.status, s.text.slice(0, 300)).toBe(200);
      expect(ogrinfo(gdalName(s.body, 'zip')).layers[0].featureCount).toBe(Math.min(n, 1000));
      const coll = JSON.parse((await get('/collections/pois')).text);
      expect(coll.links.filter((l: { rel: string }) => l.rel === 'items').map((l: { type: string }) => l.type)).toContain(
        'application/geopackage+sqlite3',
      );
    },
    60_000,
  );

  gdalIt(
    'one item as GeoPackage and KML; unknown id 404; unknown f 400 naming f',
    async () => {
      const c = (await t.ctx.pool.query('SELECT id, nom FROM public.communes ORDER BY id LIMIT 1 OFFSET 3')).rows[0];
      const g = await get(`/collections/communes/items/${c.id}?f=gpkg`);
      expect(g.status, g.text.slice(0, 300)).toBe(200);
      expect(String(g.headers['content-disposition'])).toContain(`communes_${c.id}_EPSG4326.gpkg`);
      const l = ogrinfo(gdalName(g.body, 'gpkg'), true).layers[0];
      expect(l.featureCount).toBe(1);
      expect(l.features![0].properties.nom).toBe(c.nom);
      const k = await get(`/collections/communes/items/${c.id}?f=kml`);
      expect(ogrinfo(gdalName(k.body, 'kml'), true).layers[0].features![0].properties.Name).toBe(c.nom);
      expect((await get('/collections/communes/items/999999?f=gpkg')).status).toBe(404);
      for (const url of ['/collections/communes/items?f=dwg', '/collections/communes/items/1?f=dwg']) {
        const b = await get(url);
        expect(b.status).toBe(400);
        expect(String(b.headers['content-type'])).toContain('application/problem+json');
        expect(JSON.parse(b.text).parameter).toBe('f');
      }
    },
    60_000,
  );
});
