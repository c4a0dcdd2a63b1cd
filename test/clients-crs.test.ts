/**
 * Where data lands, as clients read it: WFS 2.0.0 and 1.1.0 GetFeature asked by OWSLib in every
 * CRS name form, the responses read back by GDAL (which trusts the srsName for the axis order)
 * and reprojected to Lambert-93: a known feature must land within a metre of its PostGIS
 * coordinates. GDAL's own WFS driver too. OWSLib's POST GetFeature (lower-case 'typenames' in
 * WFS 2.0) must work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import proj4 from 'proj4';
import { makeTestApp, type TestApp } from './helpers/app.js';
import '../src/crs/index.js'; // proj4 definitions of EPSG:2154 and 3857

const py = '/usr/bin/python3';
const hasGdal = spawnSync('ogr2ogr', ['--version'], { encoding: 'utf8' }).status === 0;
const hasOwslib = existsSync(py) && spawnSync(py, ['-c', 'import owslib.wfs'], { encoding: 'utf8' }).status === 0;
if (!hasGdal || !hasOwslib)
  console.warn('[clients-crs.test] GDAL or OWSLib missing: client checks SKIPPED (apt-get install gdal-bin python3-owslib)');

const FID = 11;

/** Each srsName form: the name written back per version, and whether GML coordinates come latitude first. */
const FORMS: Array<{ srs: string; v20: string; v11: string; latFirst: boolean; epsg: number }> = [
  { srs: '', v20: 'urn:ogc:def:crs:EPSG::2154', v11: 'urn:x-ogc:def:crs:EPSG:2154', latFirst: false, epsg: 2154 },
  {
    srs: 'EPSG:4326',
    v20: 'http://www.opengis.net/gml/srs/epsg.xml#4326',
    v11: 'http://www.opengis.net/gml/srs/epsg.xml#4326',
    latFirst: false,
    epsg: 4326,
  },
  {
    srs: 'http://www.opengis.net/gml/srs/epsg.xml#4326',
    v20: 'http://www.opengis.net/gml/srs/epsg.xml#4326',
    v11: 'http://www.opengis.net/gml/srs/epsg.xml#4326',
    latFirst: false,
    epsg: 4326,
  },
  { srs: 'urn:ogc:def:crs:EPSG::4326', v20: 'urn:ogc:def:crs:EPSG::4326', v11: 'urn:x-ogc:def:crs:EPSG:4326', latFirst: true, epsg: 4326 },
  { srs: 'urn:x-ogc:def:crs:EPSG:4326', v20: 'urn:ogc:def:crs:EPSG::4326', v11: 'urn:x-ogc:def:crs:EPSG:4326', latFirst: true, epsg: 4326 },
  {
    srs: 'http://www.opengis.net/def/crs/EPSG/0/4326',
    v20: 'urn:ogc:def:crs:EPSG::4326',
    v11: 'urn:x-ogc:def:crs:EPSG:4326',
    latFirst: true,
    epsg: 4326,
  },
  { srs: 'urn:ogc:def:crs:EPSG::4258', v20: 'urn:ogc:def:crs:EPSG::4258', v11: 'urn:x-ogc:def:crs:EPSG:4258', latFirst: true, epsg: 4258 },
  {
    srs: 'urn:ogc:def:crs:OGC:1.3:CRS84',
    v20: 'urn:ogc:def:crs:OGC:1.3:CRS84',
    v11: 'urn:ogc:def:crs:OGC:1.3:CRS84',
    latFirst: false,
    epsg: 4326,
  },
  { srs: 'CRS:84', v20: 'urn:ogc:def:crs:OGC:1.3:CRS84', v11: 'urn:ogc:def:crs:OGC:1.3:CRS84', latFirst: false, epsg: 4326 },
  {
    srs: 'EPSG:2154',
    v20: 'http://www.opengis.net/gml/srs/epsg.xml#2154',
    v11: 'http://www.opengis.net/gml/srs/epsg.xml#2154',
    latFirst: false,
    epsg: 2154,
  },
  {
    srs: 'EPSG:3857',
    v20: 'http://www.opengis.net/gml/srs/epsg.xml#3857',
    v11: 'http://www.opengis.net/gml/srs/epsg.xml#3857',
    latFirst: false,
    epsg: 3857,
  },
  // ETRS89-LAEA: northing first under its URN (as OGC API writes it), x/y under EPSG:3035
  { srs: 'urn:ogc:def:crs:EPSG::3035', v20: 'urn:ogc:def:crs:EPSG::3035', v11: 'urn:x-ogc:def:crs:EPSG:3035', latFirst: true, epsg: 3035 },
  {
    srs: 'EPSG:3035',
    v20: 'http://www.opengis.net/gml/srs/epsg.xml#3035',
    v11: 'http://www.opengis.net/gml/srs/epsg.xml#3035',
    latFirst: false,
    epsg: 3035,
  },
  { srs: 'urn:ogc:def:crs:EPSG::3857', v20: 'urn:ogc:def:crs:EPSG::3857', v11: 'urn:x-ogc:def:crs:EPSG:3857', latFirst: false, epsg: 3857 },
];

let t: TestApp;
let base: string;
let dir: string;
let known: { x: number; y: number };

beforeAll(async () => {
  t = await makeTestApp({ layers: [{ table: 'public.pois' }, { table: 'public.communes' }] });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  dir = mkdtempSync(path.join(tmpdir(), 'clients-crs-'));
  const r = await t.ctx.pool.query('SELECT ST_X(geom) x, ST_Y(geom) y FROM public.pois WHERE id = $1', [FID]);
  known = { x: Number(r.rows[0].x), y: Number(r.rows[0].y) };
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** GDAL reads a file (or a WFS: connection), reprojects to Lambert-93 and gives the features as GeoJSON. */
async function gdalIn2154(
  source: string,
  extra: string[] = [],
): Promise<Array<{ id?: unknown; properties: Record<string, unknown>; geometry: { coordinates: number[] } }>> {
  const r = await promisify(execFile)('ogr2ogr', ['-f', 'GeoJSON', '/vsistdout/', '-t_srs', 'EPSG:2154', source, ...extra], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, GDAL_HTTP_TIMEOUT: '60' },
  });
  return JSON.parse(r.stdout).features;
}

const xml = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true });

/** The srsName and the first position of the feature's geometry, as written. */
function geometryOf(body: string): { srsName: string; pos: number[] } {
  const fc = xml.parse(body).FeatureCollection;
  const member = [fc.member ?? fc.featureMember].flat()[0];
  const point = member.pois.geom.Point;
  return {
    srsName: point['@_srsName'],
    pos: String(point.pos['#text'] ?? point.pos)
      .split(' ')
      .map(Number),
  };
}

describe.skipIf(!hasGdal || !hasOwslib)('every CRS name form, as OWSLib asks and GDAL reads', () => {
  let out: {
    files: Array<{ version: string; method: string; srsName: string; file: string }>;
    post: Record<string, { ok: boolean; error?: string }>;
    types20: string[];
    types11: string[];
  };

  beforeAll(async () => {
    const r = await promisify(execFile)(py, ['test/clients/owslib_wfs.py', base, dir, String(FID), ...FORMS.map((f) => f.srs)], {
      encoding: 'utf8',
      timeout: 240_000,
    });
    out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  }, 300_000);

  it('OWSLib reads both capabilities', () => {
    expect(out.types20).toContain('geodata:pois');
    expect(out.types11).toContain('geodata:pois');
  });

  for (const version of ['2.0.0', '1.1.0'] as const) {
    it(`WFS ${version}: the srsName written declares the axis order written; GDAL puts the feature within 1 m of PostGIS`, async () => {
      for (const form of FORMS) {
        const f = out.files.find((x) => x.version === version && x.method === 'get' && x.srsName === form.srs);
        expect(f, `${version} ${form.srs}`).toBeDefined();
        const body = readFileSync(f!.file, 'utf8');
        const g = geometryOf(body);
        const what = `${version} srsName=${form.srs || '(none)'}`;
        expect(g.srsName, what).toBe(version === '2.0.0' ? form.v20 : form.v11);
        // the coordinates as written, against PostGIS's own point transformed by proj4
        const [x, y] = proj4('EPSG:2154', `EPSG:${form.epsg}`, [known.x, known.y]);
        const tol = form.epsg === 4326 || form.epsg === 4258 ? 1e-5 : 0.05;
        expect(Math.abs(g.pos[0] - (form.latFirst ? y : x)), `${what}: first coordinate`).toBeLessThan(tol);
        expect(Math.abs(g.pos[1] - (form.latFirst ? x : y)), `${what}: second coordinate`).toBeLessThan(tol);
        // and where GDAL, trusting the label, puts it
        const feats = await gdalIn2154(f!.file);
        expect(feats.length, what).toBe(1);
        const [gx, gy] = feats[0].geometry.coordinates;
        expect(Math.hypot(gx - known.x, gy - known.y), `${what}: GDAL's position in Lambert-93`).toBeLessThan(1);
      }
    });
  }

  it('OWSLib POST GetFeature works in WFS 2.0.0 (lower-case typenames) and 1.1.0, by id and by filter', async () => {
    for (const [k, v] of Object.entries(out.post)) expect(v, `${k}: ${v.error ?? ''}`).toEqual({ ok: true });
    for (const f of out.files.filter((x) => x.method.startsWith('post'))) {
      const feats = await gdalIn2154(f.file);
      expect(feats.length, `${f.version} ${f.method}`).toBe(1);
      expect(Math.hypot(feats[0].geometry.coordinates[0] - known.x, feats[0].geometry.coordinates[1] - known.y)).toBeLessThan(1);
    }
  });
});

describe.skipIf(!hasGdal)("GDAL's WFS driver", () => {
  for (const version of ['2.0.0', '1.1.0']) {
    it(`WFS ${version}: the feature lands at its PostGIS place`, async () => {
      const feats = await gdalIn2154(`WFS:${base}/wfs?VERSION=${version}`, ['pois', '-where', `id = ${FID}`]);
      expect(feats.length).toBe(1);
      const [gx, gy] = feats[0].geometry.coordinates;
      expect(Math.hypot(gx - known.x, gy - known.y)).toBeLessThan(1);
    });
  }
});
