/** WFS 2.0.0 / 1.1.0 over the real test database, checked the way clients see it. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { XMLParser } from 'fast-xml-parser';
import proj4 from 'proj4';
import { expectBackendsIdle, makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { canValidate, schemasDir, skipReason, validateXml, validatorPath } from './helpers/xml-validate.js';

proj4.defs(
  'EPSG:2154',
  '+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs',
);

const parser = new XMLParser({
  ignoreAttributes: false,
  removeNSPrefix: false,
  isArray: (name) =>
    [
      'wfs:member',
      'gml:featureMember',
      'wfs:FeatureType',
      'ows:Constraint',
      'fes:Constraint',
      'wfs:OtherCRS',
      'wfs:OtherSRS',
      'xsd:element',
      'xsd:complexType',
    ].includes(name),
});
const xml = (s: string) => parser.parse(s);

let t: TestApp;
const docs: Record<string, string> = {};

async function get(query: string) {
  return t.app.inject({ method: 'GET', url: `/wfs?${query}` });
}
async function post(body: string) {
  return t.app.inject({ method: 'POST', url: '/wfs', headers: { 'content-type': 'application/xml' }, payload: body });
}
function exception(body: string): { code: string; locator?: string; text: string } {
  const d = xml(body);
  const rep = d['ows:ExceptionReport'];
  const e = rep['ows:Exception'];
  return { code: e['@_exceptionCode'], locator: e['@_locator'], text: String(e['ows:ExceptionText']) };
}
async function expectException(query: string, status: number, code: string, locator?: string) {
  const r = await get(query);
  expect(r.statusCode, r.body).toBe(status);
  const e = exception(r.body);
  expect(e.code).toBe(code);
  if (locator !== undefined) expect(e.locator?.toLowerCase()).toBe(locator.toLowerCase());
  return e;
}
function members(body: string): any[] {
  const fc = xml(body)['wfs:FeatureCollection'];
  return (fc['wfs:member'] ?? fc['gml:featureMember'] ?? []).map((m: any) => Object.values(m)[0]);
}
function ids(body: string): string[] {
  return members(body).map((f: any) => f['@_gml:id']);
}
async function sqlCount(sql: string, params: unknown[] = []): Promise<number> {
  const r = await t.ctx.pool.query(sql, params);
  return Number(r.rows[0].n);
}

const MIXED_SCHEMA = 'wfs_test';

/** Run a client process without blocking the event loop (the server under test is in this process). */
function runAsync(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(args[0], args.slice(1), { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 180_000);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  // a table with every geometry type, NULL geometry and NULL attributes, in its own schema
  const c = new pg.Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${MIXED_SCHEMA} CASCADE; CREATE SCHEMA ${MIXED_SCHEMA}`);
  await c.query(
    `CREATE TABLE ${MIXED_SCHEMA}.mixed (id integer PRIMARY KEY, label text, mesure numeric(10,2), vu timestamptz, geom geometry(Geometry, 2154))`,
  );
  await c.query(`INSERT INTO ${MIXED_SCHEMA}.mixed VALUES
    (1, 'point à Épinal', 1.5, '2024-05-01T10:00:00Z', 'SRID=2154;POINT(950000 6790000)'),
    (2, 'ligne <&> "quotes"', NULL, NULL, 'SRID=2154;LINESTRING(950000 6790000, 951000 6791000)'),
    (3, NULL, 3, NULL, 'SRID=2154;POLYGON((950000 6790000, 951000 6790000, 951000 6791000, 950000 6790000))'),
    (4, 'multi', 4, NULL, 'SRID=2154;MULTIPOLYGON(((950000 6790000, 951000 6790000, 951000 6791000, 950000 6790000)),((960000 6790000, 961000 6790000, 961000 6791000, 960000 6790000)))'),
    (5, 'collection', 5, NULL, 'SRID=2154;GEOMETRYCOLLECTION(POINT(950000 6790000), LINESTRING(950000 6790000, 951000 6791000))'),
    (6, 'sans géométrie', 6, NULL, NULL),
    (7, 'multiligne', 7, NULL, 'SRID=2154;MULTILINESTRING((950000 6790000, 951000 6791000),(952000 6790000, 953000 6791000))')`);
  await c.end();
  t = await makeTestApp({ database: { schemas: ['public', MIXED_SCHEMA] } });
});

afterAll(async () => {
  await t?.close();
  const c = new pg.Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${MIXED_SCHEMA} CASCADE`);
  await c.end();
});

describe('GetCapabilities', () => {
  it('2.0.0: feature types with CRSs, bbox, formats and truthful constraints', async () => {
    const r = await get('SERVICE=WFS&REQUEST=GetCapabilities');
    expect(r.statusCode).toBe(200);
    docs.cap20 = r.body;
    const c = xml(r.body)['wfs:WFS_Capabilities'];
    expect(c['@_version']).toBe('2.0.0');
    const fts = c['wfs:FeatureTypeList']['wfs:FeatureType'];
    const parcels = fts.find((f: any) => f['wfs:Name'] === 'geodata:parcels');
    expect(parcels['wfs:DefaultCRS']).toBe('urn:ogc:def:crs:EPSG::2154');
    expect(parcels['wfs:OtherCRS']).toEqual([
      'urn:ogc:def:crs:EPSG::3857',
      'urn:ogc:def:crs:EPSG::4326',
      'urn:ogc:def:crs:EPSG::4258',
      'urn:ogc:def:crs:EPSG::3035',
      'urn:ogc:def:crs:OGC:1.3:CRS84',
    ]);
    const e = t.ctx.registry.resolve('parcels')!.wgs84Extent!;
    const [lx, ly] = parcels['ows:WGS84BoundingBox']['ows:LowerCorner'].split(' ').map(Number);
    expect(lx).toBeCloseTo(e.minx, 6);
    expect(ly).toBeCloseTo(e.miny, 6);
    expect(parcels['wfs:OutputFormats']['wfs:Format']).toContain('application/json');
    const cons = Object.fromEntries(
      c['ows:OperationsMetadata']['ows:Constraint'].map((x: any) => [x['@_name'], x['ows:DefaultValue'] ?? x['ows:AllowedValues']]),
    );
    expect(cons.ImplementsBasicWFS).toBe('TRUE');
    expect(cons.ImplementsResultPaging).toBe('TRUE');
    expect(cons.KVPEncoding).toBe('TRUE');
    expect(cons.XMLEncoding).toBe('TRUE');
    expect(cons.ImplementsTransactionalWFS).toBe('FALSE');
    expect(Number(cons.CountDefault)).toBe(t.ctx.config.limits.defaultCount);
    const fes = Object.fromEntries(
      c['fes:Filter_Capabilities']['fes:Conformance']['fes:Constraint'].map((x: any) => [x['@_name'], x['ows:DefaultValue']]),
    );
    expect(fes.ImplementsStandardFilter).toBe('TRUE');
    expect(fes.ImplementsSpatialFilter).toBe('TRUE');
    expect(fes.ImplementsSorting).toBe('TRUE');
    expect(fes.ImplementsFunctions).toBe('FALSE');
    const ops = c['ows:OperationsMetadata']['ows:Operation'].map((o: any) => o['@_name']);
    expect(ops).toEqual([
      'GetCapabilities',
      'DescribeFeatureType',
      'GetFeature',
      'GetPropertyValue',
      'ListStoredQueries',
      'DescribeStoredQueries',
    ]);
  });

  it('1.1.0 with DefaultSRS and OGC filter capabilities; CountDefault follows config', async () => {
    const r = await get('SERVICE=WFS&REQUEST=GetCapabilities&ACCEPTVERSIONS=1.1.0');
    docs.cap11 = r.body;
    const c = xml(r.body)['wfs:WFS_Capabilities'];
    expect(c['@_version']).toBe('1.1.0');
    expect(c['wfs:FeatureTypeList']['wfs:FeatureType'][0]['wfs:DefaultSRS']).toMatch(/^urn:x-ogc:def:crs:EPSG:\d+$/); // WFS 1.1: the experimental URN of its time (GeoServer)
    expect(c['ogc:Filter_Capabilities']).toBeDefined();
    expect(docs.cap20).not.toContain('inspire_dls');
    const t2 = await makeTestApp({
      limits: { defaultCount: 500 },
      service: {
        inspire: {
          metadataUrl: 'https://catalogue.example/csw?id=wfs-demo',
          language: 'fre',
          spatialDatasetIdentifierNamespace: 'https://data.example/ns',
        },
      },
    });
    try {
      const r2 = await t2.app.inject({ url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities' });
      expect(r2.body).toMatch(/<ows:Constraint name="CountDefault"><ows:NoValues\/><ows:DefaultValue>500<\/ows:DefaultValue>/);
      // INSPIRE download service extended capabilities when configured
      docs.capInspire = r2.body;
      const ext = xml(r2.body)['wfs:WFS_Capabilities']['ows:OperationsMetadata']['ows:ExtendedCapabilities'][
        'inspire_dls:ExtendedCapabilities'
      ];
      expect(ext['inspire_common:MetadataUrl']['inspire_common:URL']).toBe('https://catalogue.example/csw?id=wfs-demo');
      expect(ext['inspire_dls:SpatialDataSetIdentifier'].map((x: any) => x['inspire_common:Code'])).toContain('parcels');
      // the default count applies, and numberMatched + next tell the client there is more
      const g = await t2.app.inject({ url: '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois' });
      const fc = xml(g.body)['wfs:FeatureCollection'];
      expect(fc['@_numberReturned']).toBe('500');
      expect(fc['@_numberMatched']).toBe('2000');
      expect(fc['@_next']).toContain('STARTINDEX=500');
    } finally {
      await t2.close();
    }
  });
});

describe('DescribeFeatureType', () => {
  it('derives an XSD from the column types (GML 3.2 for 2.0, 3.1.1 for 1.1)', async () => {
    const r = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=DescribeFeatureType&TYPENAMES=geodata:parcels,mixed');
    expect(r.statusCode).toBe(200);
    docs.dft20 = r.body;
    const s = xml(r.body)['xsd:schema'];
    const types = s['xsd:complexType'];
    const els = (name: string) =>
      Object.fromEntries(
        types
          .find((c: any) => c['@_name'] === `${name}Type`)
          ['xsd:complexContent']['xsd:extension']['xsd:sequence']['xsd:element'].map((e: any) => [e['@_name'], e['@_type']]),
      );
    expect(els('parcels')).toMatchObject({
      id: 'xsd:long',
      numero: 'xsd:int',
      valeur: 'xsd:double',
      bati: 'xsd:boolean',
      date_maj: 'xsd:date',
      updated_at: 'xsd:dateTime',
      geom: 'gml:MultiSurfacePropertyType',
    });
    expect(els('mixed')).toMatchObject({ mesure: 'xsd:decimal', geom: 'gml:GeometryPropertyType' });
    expect(s['xsd:element'].find((e: any) => e['@_name'] === 'parcels')['@_substitutionGroup']).toBe('gml:AbstractFeature');
    const r11 = await get('SERVICE=WFS&VERSION=1.1.0&REQUEST=DescribeFeatureType&TYPENAME=roads,pois');
    docs.dft11 = r11.body;
    expect(r11.body).toContain('substitutionGroup="gml:_Feature"');
    expect(r11.body).toContain('type="gml:CurvePropertyType"');
    expect(r11.body).toContain('type="gml:PointPropertyType"');
  });
  it('unknown type → InvalidParameterValue on typeNames', async () => {
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=DescribeFeatureType&TYPENAMES=nope',
      400,
      'InvalidParameterValue',
      'typeNames',
    );
  });
});

describe('GetFeature', () => {
  it('GML 3.2 collection with exact numberMatched, several type names in one collection', async () => {
    const r = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=geodata:roads,geodata:pois&COUNT=4&STARTINDEX=1998');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/gml\+xml; version=3\.2/);
    docs.gf20 = r.body;
    const fc = xml(r.body)['wfs:FeatureCollection'];
    expect(fc['@_numberMatched']).toBe('4000');
    expect(fc['@_numberReturned']).toBe('4');
    // the page straddles the two types: 2 roads then 2 pois
    expect(ids(r.body)).toEqual(['roads.1999', 'roads.2000', 'pois.1', 'pois.2']);
  });

  it('a paging walk following next links is disjoint and complete', async () => {
    let url: string | undefined =
      '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=300&SORTBY=categorie%20DESC&FILTER=' +
      encodeURIComponent(
        '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsGreaterThan><fes:ValueReference>id</fes:ValueReference><fes:Literal>100</fes:Literal></fes:PropertyIsGreaterThan></fes:Filter>',
      );
    const seen = new Set<string>();
    let matched = -1;
    let pages = 0;
    let lastCat = '\uffff';
    while (url) {
      const r = await t.app.inject({ url: url.replace(/^https?:\/\/[^/]+/, '') });
      expect(r.statusCode).toBe(200);
      const fc = xml(r.body)['wfs:FeatureCollection'];
      matched = Number(fc['@_numberMatched']);
      if (pages > 0) expect(fc['@_previous']).toBeDefined();
      for (const f of members(r.body)) {
        expect(seen.has(f['@_gml:id'])).toBe(false);
        seen.add(f['@_gml:id']);
        expect(f['geodata:categorie'] <= lastCat).toBe(true);
        lastCat = f['geodata:categorie'];
      }
      url = fc['@_next'];
      pages++;
      expect(pages).toBeLessThan(20);
    }
    expect(matched).toBe(await sqlCount('SELECT count(*) n FROM public.pois WHERE id > 100'));
    expect(seen.size).toBe(matched);
    expect(pages).toBe(Math.ceil(matched / 300));
  });

  it('GML pages of a BBOX query carry their count: the header is exact on full, partial, past-the-end and empty pages (2.0 and 1.1)', async () => {
    const box = [1045000, 6835000, 1052000, 6845000];
    const want = await sqlCount(
      'SELECT count(*) n FROM public.parcels WHERE ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 2154))',
      box,
    );
    expect(want).toBeGreaterThan(120);
    const bbox = `${box.join(',')},urn:ogc:def:crs:EPSG::2154`;
    const page = async (start: number, count: number) => {
      const r = await get(`SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&BBOX=${bbox}&COUNT=${count}&STARTINDEX=${start}`);
      expect(r.statusCode, r.body).toBe(200);
      const fc = xml(r.body)['wfs:FeatureCollection'];
      return {
        matched: Number(fc['@_numberMatched']),
        returned: Number(fc['@_numberReturned']),
        members: members(r.body).length,
        next: fc['@_next'],
        body: r.body,
      };
    };
    const full = await page(0, 100);
    expect(full).toMatchObject({ matched: want, returned: 100, members: 100 });
    expect(full.next).toContain('STARTINDEX=100');
    const last = await page(want - 7, 100);
    expect(last).toMatchObject({ matched: want, returned: 7, members: 7 });
    expect(last.next).toBeUndefined();
    const past = await page(want + 50, 100);
    expect(past).toMatchObject({ matched: want, returned: 0, members: 0 });
    docs.gmlPastEnd = past.body;
    const empty = await get(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&BBOX=0,0,10,10,urn:ogc:def:crs:EPSG::2154&COUNT=10',
    );
    expect(xml(empty.body)['wfs:FeatureCollection']).toMatchObject({ '@_numberMatched': '0', '@_numberReturned': '0' });
    docs.gmlEmpty = empty.body;
    const v11 = await get(`SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=parcels&BBOX=${box.join(',')},EPSG:2154&MAXFEATURES=25`);
    expect(v11.statusCode, v11.body).toBe(200);
    expect(Number(xml(v11.body)['wfs:FeatureCollection']['@_numberOfFeatures'])).toBe(25);
    expect(members(v11.body)).toHaveLength(25);
    docs.gml11Bbox = v11.body;
  });

  it('BBOX honours the axis order of its CRS', async () => {
    const e = t.ctx.registry.resolve('parcels')!.wgs84Extent!;
    const [x1, y1, x2, y2] = [e.minx + 0.3, e.miny + 0.3, e.minx + 0.8, e.miny + 0.6].map((v) => Number(v.toFixed(4)));
    const expected = await sqlCount(
      'SELECT count(*) n FROM public.parcels WHERE ST_Intersects(geom, ST_Transform(ST_MakeEnvelope($1,$2,$3,$4,4326),2154))',
      [x1, y1, x2, y2],
    );
    expect(expected).toBeGreaterThan(0);
    const hits = async (bbox: string) => {
      const r = await get(
        `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&RESULTTYPE=hits&BBOX=${encodeURIComponent(bbox)}`,
      );
      expect(r.statusCode, r.body).toBe(200);
      return Number(xml(r.body)['wfs:FeatureCollection']['@_numberMatched']);
    };
    expect(await hits(`${y1},${x1},${y2},${x2},urn:ogc:def:crs:EPSG::4326`)).toBe(expected);
    expect(await hits(`${x1},${y1},${x2},${y2},EPSG:4326`)).toBe(expected);
    expect(await hits(`${x1},${y1},${x2},${y2},urn:ogc:def:crs:OGC:1.3:CRS84`)).toBe(expected);
    // native CRS without a CRS name
    const [a, b] = proj4('EPSG:4326', 'EPSG:2154', [x1, y1]);
    const [c, d] = proj4('EPSG:4326', 'EPSG:2154', [x2, y2]);
    const native = await sqlCount('SELECT count(*) n FROM public.parcels WHERE ST_Intersects(geom, ST_MakeEnvelope($1,$2,$3,$4,2154))', [
      a,
      b,
      c,
      d,
    ]);
    expect(await hits(`${a},${b},${c},${d}`)).toBe(native);
    // lon/lat given to a lat/lon CRS: longitudes as latitudes fall outside France → 0, not an error
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&BBOX=1,2,3',
      400,
      'InvalidParameterValue',
      'bbox',
    );
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&BBOX=200,40,210,50,urn:ogc:def:crs:EPSG::4326',
      400,
      'InvalidParameterValue',
      'bbox',
    );
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&BBOX=1,2,3,4,EPSG:99999999x',
      400,
      'InvalidParameterValue',
      'bbox',
    );
    // a box PROJ cannot transform is the client's mistake, not a server error (GML and GeoJSON paths)
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&BBOX=-1e308,-1e308,1e308,1e308,EPSG:3857',
      400,
      'InvalidParameterValue',
      'bbox',
    );
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&OUTPUTFORMAT=json&BBOX=-1e308,-1e308,1e308,1e308,EPSG:3857',
      400,
      'InvalidParameterValue',
      'bbox',
    );
  });

  it('FILTER (FES 2.0), RESOURCEID, PROPERTYNAME, SORTBY', async () => {
    const f = `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:And><fes:PropertyIsLike wildCard="*" singleChar="?" escapeChar="!"><fes:ValueReference>nom</fes:ValueReference><fes:Literal>École*</fes:Literal></fes:PropertyIsLike><fes:Not><fes:PropertyIsNull><fes:ValueReference>capacite</fes:ValueReference></fes:PropertyIsNull></fes:Not></fes:And></fes:Filter>`;
    const r = await get(
      `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&FILTER=${encodeURIComponent(f)}&PROPERTYNAME=nom,capacite&SORTBY=capacite%20DESC`,
    );
    expect(r.statusCode, r.body).toBe(200);
    const fs = members(r.body);
    expect(fs.length).toBe(await sqlCount(`SELECT count(*) n FROM public.pois WHERE nom LIKE 'École%' AND capacite IS NOT NULL`));
    expect(fs.length).toBeGreaterThan(0);
    for (const x of fs) {
      expect(Object.keys(x).filter((k) => !k.startsWith('@_'))).toEqual(['geodata:nom', 'geodata:capacite', 'geodata:geom']);
      expect(String(x['geodata:nom'])).toMatch(/^École/);
    }
    const caps = fs.map((x) => Number(x['geodata:capacite']));
    expect(caps).toEqual([...caps].sort((p, q) => q - p));
    const rid = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&RESOURCEID=pois.7,pois.3,roads.9');
    expect(ids(rid.body).sort()).toEqual(['pois.3', 'pois.7', 'roads.9']);
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&PROPERTYNAME=nom,bogus',
      400,
      'InvalidParameterValue',
      'propertyName',
    );
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&SORTBY=bogus%20ASC',
      400,
      'InvalidParameterValue',
      'sortBy',
    );
    const bad = await expectException(
      `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&FILTER=${encodeURIComponent('<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>colour</fes:ValueReference><fes:Literal>1</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>')}`,
      400,
      'InvalidParameterValue',
    );
    expect(bad.text).toContain('colour');
    await expectException(
      `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&FILTER=${encodeURIComponent('<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo>')}`,
      400,
      'OperationParsingFailed',
    );
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&BBOX=1,2,3,4&RESOURCEID=pois.1',
      400,
      'InvalidParameterValue',
    );
    // WFS 1.1: SORTBY 'name D', MAXFEATURES, spatial filter in the native CRS
    const r11 = await get('SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=pois&SORTBY=id%20D&MAXFEATURES=3');
    expect(r11.statusCode).toBe(200);
    expect(ids(r11.body)).toEqual(['pois.2000', 'pois.1999', 'pois.1998']);
    expect(xml(r11.body)['wfs:FeatureCollection']['@_numberOfFeatures']).toBe('3');
    docs.gf11 = r11.body;
  });

  it('FES operators end to end: numberMatched equals the same predicate in SQL', async () => {
    const FES = 'xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2"';
    const e = t.ctx.registry.resolve('pois')!.extent!;
    const cx = Math.round((e.minx + e.maxx) / 2);
    const cy = Math.round((e.miny + e.maxy) / 2);
    const [lon, lat] = proj4('EPSG:2154', 'EPSG:4326', [cx, cy]);
    const cases: Array<[string, string, unknown[]]> = [
      [
        `<fes:PropertyIsBetween><fes:ValueReference>capacite</fes:ValueReference><fes:LowerBoundary><fes:Literal>50</fes:Literal></fes:LowerBoundary><fes:UpperBoundary><fes:Literal>200</fes:Literal></fes:UpperBoundary></fes:PropertyIsBetween>`,
        'capacite BETWEEN 50 AND 200',
        [],
      ],
      [
        `<fes:Or><fes:PropertyIsEqualTo><fes:ValueReference>categorie</fes:ValueReference><fes:Literal>piscine</fes:Literal></fes:PropertyIsEqualTo><fes:PropertyIsLessThan><fes:ValueReference>date_creation</fes:ValueReference><fes:Literal>1950-01-01</fes:Literal></fes:PropertyIsLessThan></fes:Or>`,
        `categorie = 'piscine' OR date_creation < '1950-01-01'`,
        [],
      ],
      [
        `<fes:PropertyIsLike wildCard="%" singleChar="_" escapeChar="\\" matchCase="false"><fes:ValueReference>nom</fes:ValueReference><fes:Literal>%MUSÉE%</fes:Literal></fes:PropertyIsLike>`,
        `lower(nom) LIKE '%musée%'`,
        [],
      ],
      [
        `<fes:DWithin><fes:ValueReference>geom</fes:ValueReference><gml:Point srsName="urn:ogc:def:crs:EPSG::2154"><gml:pos>${cx} ${cy}</gml:pos></gml:Point><fes:Distance uom="m">20000</fes:Distance></fes:DWithin>`,
        `ST_DWithin(geom, ST_SetSRID(ST_MakePoint($1, $2), 2154), 20000)`,
        [cx, cy],
      ],
      [
        `<fes:Within><fes:ValueReference>geom</fes:ValueReference><gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>${lat - 0.3} ${lon - 0.4}</gml:lowerCorner><gml:upperCorner>${lat + 0.3} ${lon + 0.4}</gml:upperCorner></gml:Envelope></fes:Within>`,
        `ST_Within(geom, ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, 4326), 2154))`,
        [lon - 0.4, lat - 0.3, lon + 0.4, lat + 0.3],
      ],
      [
        `<fes:Not><fes:Disjoint><fes:ValueReference>geom</fes:ValueReference><gml:Envelope srsName="urn:ogc:def:crs:EPSG::2154"><gml:lowerCorner>${e.minx} ${e.miny}</gml:lowerCorner><gml:upperCorner>${cx} ${cy}</gml:upperCorner></gml:Envelope></fes:Disjoint></fes:Not>`,
        `NOT ST_Disjoint(geom, ST_MakeEnvelope($1, $2, $3, $4, 2154))`,
        [e.minx, e.miny, cx, cy],
      ],
    ];
    for (const [f, where, params] of cases) {
      const expected = await sqlCount(`SELECT count(*) n FROM public.pois WHERE ${where}`, params);
      expect(expected, where).toBeGreaterThan(0);
      expect(expected, where).toBeLessThan(2000);
      const r = await get(
        `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&RESULTTYPE=hits&FILTER=${encodeURIComponent(`<fes:Filter ${FES}>${f}</fes:Filter>`)}`,
      );
      expect(r.statusCode, r.body).toBe(200);
      expect(Number(xml(r.body)['wfs:FeatureCollection']['@_numberMatched']), where).toBe(expected);
    }
  });

  it('SRSNAME reprojects; the EPSG URN of 4326 writes lat/lon in GML; coordinates agree with proj4', async () => {
    const native = (await t.ctx.pool.query('SELECT id, ST_X(geom) x, ST_Y(geom) y FROM public.pois WHERE id IN (11, 12)')).rows;
    const r = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&RESOURCEID=pois.11,pois.12&SRSNAME=urn:ogc:def:crs:EPSG::4326');
    docs.latlon = r.body;
    const r2 = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&RESOURCEID=pois.11,pois.12&SRSNAME=EPSG:3857');
    const rj = await get(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&RESOURCEID=pois.11,pois.12&SRSNAME=urn:ogc:def:crs:EPSG::4326&OUTPUTFORMAT=application/json',
    );
    const fj = JSON.parse(rj.body).features;
    for (const row of native) {
      const [lon, lat] = proj4('EPSG:2154', 'EPSG:4326', [row.x, row.y]);
      const m = members(r.body).find((f) => f['@_gml:id'] === `pois.${row.id}`);
      expect(m['geodata:geom']['gml:Point']['@_srsName']).toBe('urn:ogc:def:crs:EPSG::4326');
      const [p0, p1] = String(m['geodata:geom']['gml:Point']['gml:pos']['#text'] ?? m['geodata:geom']['gml:Point']['gml:pos'])
        .split(' ')
        .map(Number);
      expect(p0).toBeCloseTo(lat, 6);
      expect(p1).toBeCloseTo(lon, 6);
      const [mx, my] = proj4('EPSG:2154', 'EPSG:3857', [row.x, row.y]);
      const m3 = members(r2.body).find((f) => f['@_gml:id'] === `pois.${row.id}`);
      const [q0, q1] = String(m3['geodata:geom']['gml:Point']['gml:pos']['#text'] ?? m3['geodata:geom']['gml:Point']['gml:pos'])
        .split(' ')
        .map(Number);
      expect(q0).toBeCloseTo(mx, 0);
      expect(q1).toBeCloseTo(my, 0);
      // GeoJSON stays lon/lat whatever the srsName
      const j = fj.find((f: any) => f.id === row.id);
      expect(j.geometry.coordinates[0]).toBeCloseTo(lon, 6);
      expect(j.geometry.coordinates[1]).toBeCloseTo(lat, 6);
    }
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&SRSNAME=EPSG:32631',
      400,
      'InvalidParameterValue',
      'srsName',
    );
  });

  it('output formats: GeoJSON aliases, CSV with WKT, NDJSON, GeoJSON sequences; unknown → InvalidParameterValue', async () => {
    for (const f of ['application/json', 'json', 'geojson', 'application/geo+json', 'application/vnd.geo+json']) {
      const r = await get(`SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=3&OUTPUTFORMAT=${encodeURIComponent(f)}`);
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toMatch(/json/);
      const fc = JSON.parse(r.body);
      expect(fc.features.length).toBe(3);
      expect(fc.numberMatched).toBe(2000);
      expect(fc.numberReturned).toBe(3);
      expect(fc.links.find((l: any) => l.rel === 'next').href).toContain('STARTINDEX=3');
    }
    // GeoJSON totals come after the features: exact whether the page is full, partial or past the end
    const flt = encodeURIComponent(
      '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>categorie</fes:ValueReference><fes:Literal>piscine</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>',
    );
    const piscines = await sqlCount(`SELECT count(*) n FROM public.pois WHERE categorie = 'piscine'`);
    expect(piscines).toBeGreaterThan(4);
    for (const [start, cnt] of [
      [0, 10000],
      [2, 10000],
      [0, 3],
      [piscines + 5, 10],
      [piscines - 1, 10],
    ]) {
      const r = await get(
        `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&OUTPUTFORMAT=json&FILTER=${flt}&STARTINDEX=${start}&COUNT=${cnt}`,
      );
      const fc = JSON.parse(r.body);
      const expectReturned = Math.max(0, Math.min(cnt, piscines - start));
      expect(fc.numberMatched, `${start},${cnt}`).toBe(piscines);
      expect(fc.numberReturned).toBe(expectReturned);
      expect(fc.features.length).toBe(expectReturned);
      expect(Boolean(fc.links?.find((l: any) => l.rel === 'next'))).toBe(start + expectReturned < piscines);
      expect(Boolean(fc.links?.find((l: any) => l.rel === 'prev'))).toBe(start > 0);
    }
    const csv = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=roads&COUNT=5&OUTPUTFORMAT=text/csv');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('id,classe,nom,numero,largeur,sens_unique,date_mise_service,wkt');
    expect(lines.length).toBe(6);
    expect(lines[1]).toMatch(/"LINESTRING\(\d/);
    const nd = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=4&OUTPUTFORMAT=application/x-ndjson');
    expect(
      nd.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).type),
    ).toEqual(['Feature', 'Feature', 'Feature', 'Feature']);
    const seq = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=2&OUTPUTFORMAT=application/geo%2Bjson-seq');
    expect(seq.headers['content-type']).toBe('application/geo+json-seq');
    expect(seq.body.split('\u001e').filter(Boolean).length).toBe(2);
    // GML 3.1.1 asked of a 2.0 server
    const g311 = await get(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=2&OUTPUTFORMAT=' +
        encodeURIComponent('text/xml; subtype=gml/3.1.1'),
    );
    expect(g311.body).toContain('xmlns:gml="http://www.opengis.net/gml"');
    docs.g311in20 = g311.body;
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&OUTPUTFORMAT=shapezip',
      400,
      'InvalidParameterValue',
      'outputFormat',
    );
  });

  it('RESULTTYPE=hits in 2.0 and 1.1', async () => {
    const r = await get(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&RESULTTYPE=hits&FILTER=' +
        encodeURIComponent(
          '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>bati</fes:ValueReference><fes:Literal>true</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>',
        ),
    );
    docs.hits = r.body;
    const fc = xml(r.body)['wfs:FeatureCollection'];
    expect(Number(fc['@_numberMatched'])).toBe(await sqlCount('SELECT count(*) n FROM public.parcels WHERE bati'));
    expect(fc['@_numberReturned']).toBe('0');
    expect(fc['wfs:member']).toBeUndefined();
    const r11 = await get('SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=roads&RESULTTYPE=hits');
    expect(xml(r11.body)['wfs:FeatureCollection']['@_numberOfFeatures']).toBe('2000');
    docs.hits11 = r11.body;
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=roads&RESULTTYPE=hits&OUTPUTFORMAT=csv',
      400,
      'InvalidParameterValue',
      'resultType',
    );
    const jh = JSON.parse(
      (await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=roads&RESULTTYPE=hits&OUTPUTFORMAT=json')).body,
    );
    expect(jh).toMatchObject({ type: 'FeatureCollection', features: [], numberMatched: 2000, numberReturned: 0 });
  });

  it('NULLs are omitted in GML and null in JSON; accents and XML specials intact; every geometry type', async () => {
    const r = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=mixed');
    expect(r.statusCode, r.body).toBe(200);
    docs.mixed = r.body;
    const fs = members(r.body);
    expect(fs.length).toBe(7);
    expect(fs[0]['geodata:label']).toBe('point à Épinal');
    expect(fs[1]['geodata:label']).toBe('ligne <&> "quotes"');
    expect(fs[1]['geodata:mesure']).toBeUndefined();
    expect(fs[2]['geodata:label']).toBeUndefined();
    expect(Object.keys(fs[0]['geodata:geom'])).toEqual(['gml:Point']);
    expect(Object.keys(fs[1]['geodata:geom'])).toEqual(['gml:LineString']);
    expect(Object.keys(fs[3]['geodata:geom'])).toEqual(['gml:MultiSurface']);
    expect(Object.keys(fs[4]['geodata:geom'])).toEqual(['gml:MultiGeometry']);
    expect(fs[5]['geodata:geom']).toBeUndefined();
    expect(fs[0]['geodata:vu']).toBe('2024-05-01T10:00:00+00:00');
    const all = [...r.body.matchAll(/gml:id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(all).size).toBe(all.length);
    const j = JSON.parse((await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=mixed&OUTPUTFORMAT=json')).body);
    expect(j.features.map((f: any) => f.geometry?.type ?? null)).toEqual([
      'Point',
      'LineString',
      'Polygon',
      'MultiPolygon',
      'GeometryCollection',
      null,
      'MultiLineString',
    ]);
    expect(j.features[1].properties.mesure).toBeNull();
    expect(j.features[0].properties.label).toBe('point à Épinal');
    const csv = (await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=mixed&OUTPUTFORMAT=csv')).body.split('\r\n');
    expect(csv[2]).toBe('2,"ligne <&> ""quotes""",,,"LINESTRING(950000 6790000,951000 6791000)"');
    const accented = (await t.ctx.pool.query(`SELECT id, nom FROM public.communes WHERE nom ~ '[éèêàçôî]' ORDER BY id LIMIT 1`)).rows[0];
    const c = await get(`SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&FEATUREID=communes.${accented.id}`);
    expect(members(c.body)[0]['geodata:nom']).toBe(accented.nom);
  });

  it('POST XML GetFeature (2.0 with FES, 1.1 with OGC Filter)', async () => {
    const e = t.ctx.registry.resolve('pois')!.extent!;
    const body20 = `<wfs:GetFeature service="WFS" version="2.0.0" count="5" xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:geodata="https://geodata-server.example/geodata">
      <wfs:Query typeNames="geodata:pois"><wfs:PropertyName>nom</wfs:PropertyName>
        <fes:Filter><fes:Intersects><fes:ValueReference>geom</fes:ValueReference>
          <gml:Envelope srsName="urn:ogc:def:crs:EPSG::2154"><gml:lowerCorner>${e.minx} ${e.miny}</gml:lowerCorner><gml:upperCorner>${(e.minx + e.maxx) / 2} ${(e.miny + e.maxy) / 2}</gml:upperCorner></gml:Envelope>
        </fes:Intersects></fes:Filter>
        <fes:SortBy><fes:SortProperty><fes:ValueReference>nom</fes:ValueReference><fes:SortOrder>DESC</fes:SortOrder></fes:SortProperty></fes:SortBy>
      </wfs:Query></wfs:GetFeature>`;
    const r = await post(body20);
    expect(r.statusCode, r.body).toBe(200);
    const fc = xml(r.body)['wfs:FeatureCollection'];
    expect(Number(fc['@_numberMatched'])).toBe(
      await sqlCount('SELECT count(*) n FROM public.pois WHERE ST_Intersects(geom, ST_MakeEnvelope($1,$2,$3,$4,2154))', [
        e.minx,
        e.miny,
        (e.minx + e.maxx) / 2,
        (e.miny + e.maxy) / 2,
      ]),
    );
    const noms = members(r.body).map((f) => String(f['geodata:nom']));
    expect(noms.length).toBe(5);
    expect(noms).toEqual([...noms].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)));
    const body11 = `<wfs:GetFeature service="WFS" version="1.1.0" maxFeatures="2" xmlns:wfs="http://www.opengis.net/wfs" xmlns:ogc="http://www.opengis.net/ogc">
      <wfs:Query typeName="roads"><ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>classe</ogc:PropertyName><ogc:Literal>autoroute</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter></wfs:Query></wfs:GetFeature>`;
    const r11 = await post(body11);
    expect(r11.statusCode, r11.body).toBe(200);
    expect(members(r11.body).map((f) => f['geodata:classe'])).toEqual(['autoroute', 'autoroute']);
    const bad = await post(
      '<wfs:GetFeature service="WFS" version="2.0.0" xmlns:wfs="http://www.opengis.net/wfs/2.0"><wfs:Query typeNames="pois"><fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:Frobnicate/></fes:Filter></wfs:Query></wfs:GetFeature>',
    );
    expect(bad.statusCode).toBe(400);
    expect(exception(bad.body).code).toBe('OperationParsingFailed');
    const notXml = await post('<wfs:GetFeature');
    expect(exception(notXml.body).code).toBe('OperationParsingFailed');
  });

  it('errors: missing typeNames, unknown type, bad resultType, bad count', async () => {
    await expectException('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature', 400, 'MissingParameterValue', 'typeNames');
    await expectException('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=geodata:nope', 400, 'InvalidParameterValue', 'typeNames');
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&RESULTTYPE=all',
      400,
      'InvalidParameterValue',
      'resultType',
    );
    await expectException('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=-1', 400, 'InvalidParameterValue', 'count');
    await expectException('SERVICE=WFS&VERSION=2.0.0&REQUEST=Transaction', 501, 'OperationNotSupported');
    const r11 = await get('SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature');
    expect(xml(r11.body)['ows:ExceptionReport']['@_xmlns:ows']).toBe('http://www.opengis.net/ows');
    docs.err11 = r11.body;
  });
});

describe('stored queries and GetPropertyValue', () => {
  it('GetFeatureById returns the bare feature; a missing id is 404 NotFound', async () => {
    const r = await get(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=parcels.5',
    );
    expect(r.statusCode).toBe(200);
    const f = xml(r.body)['geodata:parcels'];
    expect(f['@_gml:id']).toBe('parcels.5');
    expect(f['geodata:id']).toBe(5);
    const j = await get(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=pois.9&OUTPUTFORMAT=application/json',
    );
    expect(JSON.parse(j.body)).toMatchObject({ type: 'Feature', id: 9 });
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=parcels.999999',
      404,
      'NotFound',
      'ID',
    );
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&STOREDQUERY_ID=urn:x:nope&ID=parcels.1',
      400,
      'InvalidParameterValue',
    );
  });

  it('ListStoredQueries, DescribeStoredQueries, GetPropertyValue', async () => {
    const l = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=ListStoredQueries');
    docs.lsq = l.body;
    expect(l.body).toContain('urn:ogc:def:query:OGC-WFS::GetFeatureById');
    const d = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=DescribeStoredQueries&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById');
    docs.dsq = d.body;
    expect(d.body).toContain('<wfs:Parameter name="ID"');
    const v = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetPropertyValue&TYPENAMES=pois&VALUEREFERENCE=adresse&COUNT=4&SORTBY=id');
    docs.gpv = v.body;
    const vc = xml(v.body)['wfs:ValueCollection'];
    const expected = (await t.ctx.pool.query('SELECT adresse FROM public.pois WHERE adresse IS NOT NULL ORDER BY id LIMIT 4')).rows.map(
      (r) => r.adresse,
    );
    expect(vc['wfs:member']).toEqual(expected);
    expect(Number(vc['@_numberMatched'])).toBe(await sqlCount('SELECT count(*) n FROM public.pois WHERE adresse IS NOT NULL'));
    const g = await get('SERVICE=WFS&VERSION=2.0.0&REQUEST=GetPropertyValue&TYPENAMES=roads&VALUEREFERENCE=geom&COUNT=2');
    docs.gpvGeom = g.body;
    expect((g.body.match(/<wfs:member><gml:LineString /g) ?? []).length).toBe(2);
    await expectException(
      'SERVICE=WFS&VERSION=2.0.0&REQUEST=GetPropertyValue&TYPENAMES=pois&VALUEREFERENCE=zzz',
      400,
      'InvalidParameterValue',
      'valueReference',
    );
  });
});

describe('XML validity', () => {
  it.skipIf(!canValidate)('every XML response validates against the OGC schemas', () => {
    const names = Object.keys(docs);
    expect(names.length).toBeGreaterThanOrEqual(14);
    const res = validateXml(names.map((n) => docs[n]));
    res.forEach((r, i) => expect(r.valid, `${names[i]}: ${r.output}`).toBe(true));
  });
  it.skipIf(canValidate)(`schema validation: ${skipReason}`, () => {
    console.warn(skipReason);
  });
});

describe('bulk export and connection hygiene (real listening server)', () => {
  let base = '';
  beforeAll(async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const a = t.app.server.address() as { port: number };
    base = `http://127.0.0.1:${a.port}`;
  });

  it('streams all 20000 parcels as GeoJSON, complete', async () => {
    const r = await fetch(
      `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&OUTPUTFORMAT=application/json&SRSNAME=EPSG:4326`,
    );
    expect(r.status).toBe(200);
    const fc = await r.json();
    expect(fc.numberMatched).toBe(20000);
    expect(fc.features.length).toBe(20000);
    expect(new Set(fc.features.map((f: any) => f.id)).size).toBe(20000);
  });

  it('a client that aborts mid-stream releases the pool connection at once', async () => {
    const pool = t.ctx.pool;
    const pids = new Set<number>();
    const onAcquire = (c: pg.PoolClient) => pids.add((c as unknown as { processID: number }).processID);
    pool.on('acquire', onAcquire);
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels`, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 100_000) {
            req.destroy();
            resolve();
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    });
    await expect.poll(() => pool.idleCount === pool.totalCount && pool.waitingCount === 0, { timeout: 5000 }).toBe(true);
    pool.off('acquire', onAcquire);
    // the backend that served the stream is idle: no open portal, no transaction left behind
    expect(pids.size).toBeGreaterThan(0);
    // seen from a separate session, the backend that served the stream is idle (no open portal or transaction)
    await expectBackendsIdle(pids);
    // and the server still answers
    const r = await fetch(`${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=1&OUTPUTFORMAT=json`);
    expect((await r.json()).features.length).toBe(1);
  });

  it.skipIf(!canValidate)("GML output validates strictly against the server's own DescribeFeatureType schema", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wfs-strict-'));
    try {
      const files: string[] = [];
      const reqs = [
        'VERSION=2.0.0&TYPENAMES=parcels,roads,pois,communes&COUNT=40&STARTINDEX=1990',
        'VERSION=2.0.0&TYPENAMES=mixed',
        'VERSION=2.0.0&TYPENAMES=parcels&COUNT=5&SRSNAME=urn:ogc:def:crs:EPSG::4326&PROPERTYNAME=nature,valeur',
        'VERSION=1.1.0&TYPENAME=communes,pois,roads&MAXFEATURES=30',
        'VERSION=1.1.0&TYPENAME=mixed',
      ];
      for (const [i, q] of reqs.entries()) {
        const r = await fetch(`${base}/wfs?SERVICE=WFS&REQUEST=GetFeature&${q}`);
        const body = await r.text();
        expect(r.status, body).toBe(200);
        expect(body).toContain(`${base}/wfs?SERVICE=WFS`);
        const f = path.join(dir, `fc${i}.xml`);
        writeFileSync(f, body);
        files.push(f);
      }
      const v = await runAsync([
        '/usr/bin/python3',
        validatorPath!,
        '--catalog',
        path.join(schemasDir!, 'catalog.xml'),
        '--fetch-local-schemas',
        ...files,
      ]);
      for (const f of files) expect(v.stdout, v.stdout + v.stderr).toContain(`valid: ${f}`);
      expect(v.stdout).not.toMatch(/^(invalid|unsupported):/m);
      expect(v.stdout).not.toContain('validated laxly');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const ogr = ['/usr/bin/ogr2ogr', '/usr/bin/ogrinfo'].every((p) => existsSync(p));
  it.skipIf(!ogr)('GDAL WFS driver copies parcels (2.0, paged) and pois (1.1) to GeoPackage: counts equal numberMatched', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wfs-gdal-'));
    try {
      const run = (args: string[]) => runAsync(args, { GDAL_HTTP_TIMEOUT: '60' });
      const out = path.join(dir, 'out.gpkg');
      let r = await run([
        '/usr/bin/ogr2ogr',
        '--debug',
        'on',
        '--config',
        'OGR_WFS_PAGE_SIZE',
        '5000',
        '-f',
        'GPKG',
        out,
        `WFS:${base}/wfs`,
        'parcels',
      ]);
      expect(r.status, r.stderr).toBe(0);
      // GDAL saw ImplementsResultPaging and walked the pages
      const starts = [...r.stderr.matchAll(/STARTINDEX=(\d+)/gi)].map((m) => Number(m[1]));
      expect(starts).toEqual(expect.arrayContaining([5000, 10000, 15000]));
      let info = await run(['/usr/bin/ogrinfo', '-so', '-al', out]);
      expect(info.stdout).toMatch(/Feature Count: 20000\b/);
      expect(info.stdout).toMatch(/nature: String/);
      const out11 = path.join(dir, 'out11.gpkg');
      r = await run(['/usr/bin/ogr2ogr', '-f', 'GPKG', out11, `WFS:${base}/wfs?VERSION=1.1.0`, 'pois']);
      expect(r.status, r.stderr).toBe(0);
      info = await run(['/usr/bin/ogrinfo', '-so', '-al', out11]);
      expect(info.stdout).toMatch(/Feature Count: 2000\b/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it.skipIf(ogr)('GDAL client check skipped: ogr2ogr/ogrinfo not installed (apt-get install gdal-bin)', () => undefined);

  const owslib = spawnSync('/usr/bin/python3', ['-c', 'import owslib'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!owslib)('OWSLib reads capabilities and features in 2.0.0 and 1.1.0', async () => {
    const script = `
import sys
from owslib.wfs import WebFeatureService
url = sys.argv[1]
for v in ('2.0.0', '1.1.0'):
    w = WebFeatureService(url, version=v)
    names = sorted(w.contents)
    r = w.getfeature(typename=['geodata:pois'], maxfeatures=7)
    body = r.read()
    if isinstance(body, bytes): body = body.decode('utf-8')
    n = body.count('<wfs:member>') + body.count('<gml:featureMember>')
    print(v, ','.join(names), n)
`;
    const r = await runAsync(['/usr/bin/python3', '-c', script, `${base}/wfs`]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^2\.0\.0 .*geodata:parcels.* 7$/);
    expect(lines[1]).toMatch(/^1\.1\.0 .*geodata:pois.* 7$/);
  });
  it.skipIf(owslib)('OWSLib client check skipped: python3-owslib not installed', () => undefined);
});
