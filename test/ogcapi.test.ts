/** OGC API – Features Parts 1, 2, 3 on the real PostGIS test database, through the shared feature engine. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import proj4 from 'proj4';
import YAML from 'yaml';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv } from 'ajv';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { CONFORMANCE } from '../src/services/ogcapi/common.js';
import { hashSecret } from '../src/security/auth.js';

proj4.defs(
  'EPSG:2154',
  '+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs',
);
proj4.defs('EPSG:3035', '+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs');

const CFG = {
  layers: [
    { table: 'public.communes', temporalField: 'date_maj' },
    { table: 'public.pois', temporalField: 'date_creation' },
    { table: 'public.roads' },
    { table: 'public.parcels', name: 'secret_parcels', access: { public: false, roles: ['agents'] } },
  ],
  security: { users: [{ name: 'alice', passwordHash: hashSecret('pw'), roles: ['agents'] }] },
};

let t: TestApp;
const routes: { method: string; url: string }[] = [];

beforeAll(async () => {
  t = await makeTestApp(CFG, (app) =>
    app.addHook('onRoute', (r) => {
      for (const m of [r.method].flat()) routes.push({ method: m, url: r.url });
    }),
  );
});
afterAll(async () => {
  await t?.close();
});

async function get(url: string, headers: Record<string, string> = {}) {
  return t.app.inject({ method: 'GET', url, headers });
}
async function json(url: string, headers: Record<string, string> = {}) {
  const r = await get(url, headers);
  expect(r.statusCode, `${url}: ${r.body.slice(0, 300)}`).toBe(200);
  return r.json();
}
async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await t.ctx.pool.query(text, params)).rows as T[];
}
const items = (coll: string, qs: string) => `/collections/${coll}/items?${qs}`;
const ids = (fc: { features: { id: unknown }[] }) => fc.features.map((f) => f.id);

describe('Part 1 Core: landing, conformance, collections', () => {
  it('the root landing page carries the OGC API links, and they resolve', async () => {
    const doc = await json('/?f=json');
    expect(doc.services.length).toBeGreaterThan(0); // what the landing page had is kept
    const rel = (r: string) => doc.links.filter((l: { rel: string }) => l.rel === r);
    for (const r of ['service-desc', 'service-doc', 'conformance', 'data']) expect(rel(r).length, r).toBeGreaterThan(0);
    const path = (href: string) => new URL(href).pathname;
    expect((await get(path(rel('data')[0].href))).statusCode).toBe(200);
    expect((await get(path(rel('conformance')[0].href))).statusCode).toBe(200);
    const desc = rel('service-desc').find((l: { type: string }) => l.type.includes('openapi+json'));
    expect((await get(path(desc.href))).headers['content-type']).toContain('application/vnd.oai.openapi+json');
    expect((await get(path(rel('service-doc')[0].href))).headers['content-type']).toContain('text/html');
  });

  it('/conformance lists the classes', async () => {
    const doc = await json('/conformance');
    expect(doc.conformsTo).toEqual(CONFORMANCE);
    expect(doc.conformsTo).toContain('http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core');
  });

  it('/collections lists the visible layers with extents, CRS lists and links; valid against its JSON Schema', async () => {
    const doc = await json('/collections');
    const idsSeen = doc.collections.map((c: { id: string }) => c.id);
    expect(idsSeen).toEqual(['communes', 'pois', 'roads']); // the restricted layer is absent for anonymous callers
    const ajv = new Ajv({ strict: false });
    const schemaDir = path.join(import.meta.dirname, '..', 'schemas');
    ajv.addSchema(JSON.parse(readFileSync(path.join(schemaDir, 'ogcapi-collection.schema.json'), 'utf8')));
    const validate = ajv.compile(JSON.parse(readFileSync(path.join(schemaDir, 'ogcapi-collections.schema.json'), 'utf8')));
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const communes = doc.collections[0];
    expect(communes.storageCrs).toBe('http://www.opengis.net/def/crs/EPSG/0/2154');
    expect(communes.crs[0]).toBe('http://www.opengis.net/def/crs/OGC/1.3/CRS84');
    for (const n of [2154, 3857, 4326, 4258, 3035]) expect(communes.crs).toContain(`http://www.opengis.net/def/crs/EPSG/0/${n}`);
    const [b] = communes.extent.spatial.bbox;
    const [ext] = await sql<{ a: number; b: number; c: number; d: number }>(
      `SELECT ST_XMin(e) a, ST_YMin(e) b, ST_XMax(e) c, ST_YMax(e) d FROM (SELECT ST_Transform(ST_SetSRID(ST_Extent(geom), 2154), 4326) e FROM public.communes) s`,
    );
    expect(b[0]).toBeCloseTo(ext.a, 2);
    expect(b[3]).toBeCloseTo(ext.d, 2);
    const [tx] = await sql<{ a: string; b: string }>(`SELECT min(date_maj)::text a, max(date_maj)::text b FROM public.communes`);
    expect(communes.extent.temporal.interval[0]).toEqual([tx.a, tx.b]);
    expect(communes.links.some((l: { rel: string; type: string }) => l.rel === 'items' && l.type === 'application/geo+json')).toBe(true);
    const one = await json('/collections/communes');
    expect(one.id).toBe('communes');
    expect(validate.schema).toBeDefined();
  });

  it('404 problem for an unknown collection or feature, and for a restricted one the caller may not read', async () => {
    for (const u of [
      '/collections/nope',
      '/collections/nope/items',
      '/collections/communes/items/999999999',
      '/collections/communes/items/abc',
    ]) {
      const r = await get(u);
      expect(r.statusCode, u).toBe(404);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.json().status).toBe(404);
    }
    // answered exactly as an unknown collection: its existence is not revealed
    const anon = await get('/collections/secret_parcels/items');
    expect(anon.statusCode).toBe(404);
    expect(anon.headers['www-authenticate']).toBeUndefined();
    expect(anon.headers['content-type']).toContain('application/problem+json');
    expect(anon.body.replaceAll('secret_parcels', 'nope')).toBe((await get('/collections/nope/items')).body);
    const auth = { authorization: 'Basic ' + Buffer.from('alice:pw').toString('base64') };
    const ok = await get('/collections/secret_parcels/items?limit=2', auth);
    expect(ok.statusCode).toBe(200);
    expect(ok.json().features).toHaveLength(2);
    const listed = await json('/collections', auth);
    expect(listed.collections.map((c: { id: string }) => c.id)).toContain('secret_parcels');
  });
});

describe('Part 1 Core + GeoJSON: items', () => {
  it('default page: 10 features, numberMatched = count(*), links self/alternate/next, Link header', async () => {
    const r = await get('/collections/pois/items');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/geo+json');
    const fc = r.json();
    const [{ n }] = await sql<{ n: string }>('SELECT count(*) n FROM public.pois');
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.numberMatched).toBe(Number(n));
    expect(fc.numberReturned).toBe(10);
    expect(fc.features).toHaveLength(10);
    const rels = fc.links.map((l: { rel: string }) => l.rel);
    expect(rels).toEqual(expect.arrayContaining(['self', 'alternate', 'next', 'collection']));
    expect(rels).not.toContain('prev');
    expect(String(r.headers.link)).toMatch(/rel="next"/);
    expect(r.headers['content-crs']).toBe('<http://www.opengis.net/def/crs/OGC/1.3/CRS84>');
  });

  it('a paging walk over a whole collection returns numberMatched features exactly once', async () => {
    let url: string | undefined = '/collections/roads/items?limit=150';
    const seen = new Map<unknown, number>();
    let matched = -1;
    let pages = 0;
    while (url) {
      const fc = await json(url);
      matched = fc.numberMatched;
      expect(fc.numberReturned).toBe(fc.features.length);
      for (const id of ids(fc)) seen.set(id, (seen.get(id) ?? 0) + 1);
      const next = fc.links.find((l: { rel: string }) => l.rel === 'next');
      url = next ? new URL(next.href).pathname + new URL(next.href).search : undefined;
      if (++pages > 100) throw new Error('paging does not end');
    }
    const [{ n }] = await sql<{ n: string }>('SELECT count(*) n FROM public.roads');
    expect(matched).toBe(Number(n));
    expect(seen.size).toBe(matched);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
  });

  it('prev link, offset beyond the end, limit capped at the maximum', async () => {
    const fc = await json(items('pois', 'limit=5&offset=5'));
    const prev = fc.links.find((l: { rel: string }) => l.rel === 'prev');
    expect(new URL(prev.href).searchParams.get('offset')).toBe('0');
    const first = await json(items('pois', 'limit=10'));
    expect(ids(fc)).toEqual(ids(first).slice(5));
    const empty = await json(items('pois', 'offset=1000000'));
    expect(empty.features).toEqual([]);
    expect(empty.numberReturned).toBe(0);
    const { app, close } = await makeTestApp({ ...CFG, limits: { itemsMaxLimit: 7, itemsDefaultLimit: 3 } });
    try {
      expect((await app.inject(items('pois', ''))).json().numberReturned).toBe(3);
      expect((await app.inject(items('pois', 'limit=1000'))).json().numberReturned).toBe(7);
      const api = (await app.inject('/api')).json();
      expect(api.components.parameters.limit.schema.maximum).toBe(7);
    } finally {
      await close();
    }
  });

  it('bbox (CRS84) selects what PostGIS says intersects it', async () => {
    const bbox = [6.0, 48.5, 6.4, 48.8];
    const fc = await json(items('pois', `bbox=${bbox.join(',')}&limit=10000`));
    const rows = await sql<{ id: number }>(
      `SELECT id FROM public.pois WHERE ST_Intersects(geom, ST_Transform(ST_MakeEnvelope($1,$2,$3,$4,4326),2154)) ORDER BY id`,
      bbox,
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(ids(fc)).toEqual(rows.map((r) => r.id));
    expect(fc.numberMatched).toBe(rows.length);
  });

  it('a bbox paging walk: numberMatched exact on every page (the page carries its count), past the end too', async () => {
    const bbox = [6.0, 48.5, 6.4, 48.8];
    const rows = await sql<{ id: number }>(
      `SELECT id FROM public.pois WHERE ST_Intersects(geom, ST_Transform(ST_MakeEnvelope($1,$2,$3,$4,4326),2154)) ORDER BY id`,
      bbox,
    );
    expect(rows.length).toBeGreaterThan(12);
    const seen: unknown[] = [];
    let url: string | undefined = items('pois', `bbox=${bbox.join(',')}&limit=5`);
    while (url) {
      const fc = await json(url);
      expect(fc.numberMatched).toBe(rows.length);
      expect(fc.numberReturned).toBe(fc.features.length);
      seen.push(...ids(fc));
      const next = fc.links.find((l: { rel: string }) => l.rel === 'next');
      url = next ? new URL(next.href).pathname + new URL(next.href).search : undefined;
      expect(seen.length).toBeLessThanOrEqual(rows.length);
    }
    expect(seen).toEqual(rows.map((r) => r.id));
    const past = await json(items('pois', `bbox=${bbox.join(',')}&limit=5&offset=${rows.length + 3}`));
    expect(past).toMatchObject({ numberMatched: rows.length, numberReturned: 0, features: [] });
    const none = await json(items('pois', 'bbox=-10,-10,-9,-9&limit=5'));
    expect(none).toMatchObject({ numberMatched: 0, numberReturned: 0, features: [] });
  });

  it('datetime: instant and intervals on the temporal field', async () => {
    const [{ d }] = await sql<{ d: string }>(
      `SELECT date_creation::text d FROM public.pois WHERE date_creation IS NOT NULL ORDER BY id LIMIT 1`,
    );
    const cases: [string, string, unknown[]][] = [
      [d, 'date_creation = $1::date', [d]],
      [`${d}/..`, 'date_creation >= $1::date', [d]],
      [`../${d}`, 'date_creation <= $1::date', [d]],
      [`2015-01-01/2018-12-31`, 'date_creation BETWEEN $1::date AND $2::date', ['2015-01-01', '2018-12-31']],
    ];
    for (const [dt, where, params] of cases) {
      const fc = await json(items('pois', `datetime=${encodeURIComponent(dt)}&limit=1`));
      const [{ n }] = await sql<{ n: string }>(`SELECT count(*) n FROM public.pois WHERE ${where}`, params);
      expect(fc.numberMatched, dt).toBe(Number(n));
    }
    const bad = await get(items('pois', 'datetime=yesterday'));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().parameter).toBe('datetime');
  });

  it('equality filters on queryables, properties=, sortby=', async () => {
    const fc = await json(items('pois', 'categorie=restaurant&limit=1'));
    const [{ n }] = await sql<{ n: string }>(`SELECT count(*) n FROM public.pois WHERE categorie = 'restaurant'`);
    expect(Number(n)).toBeGreaterThan(0);
    expect(fc.numberMatched).toBe(Number(n));
    const typed = await json(items('communes', 'chef_lieu=true&limit=1'));
    const [{ c }] = await sql<{ c: string }>(`SELECT count(*) c FROM public.communes WHERE chef_lieu`);
    expect(typed.numberMatched).toBe(Number(c));
    const props = await json(items('communes', 'properties=nom,population&limit=3'));
    for (const f of props.features) expect(Object.keys(f.properties).sort()).toEqual(['nom', 'population']);
    const sorted = await json(items('communes', 'sortby=-population,%2Bnom&limit=20&properties=population'));
    const pops = sorted.features.map((f: { properties: { population: number } }) => f.properties.population);
    const top = await sql<{ population: number }>('SELECT population FROM public.communes ORDER BY population DESC, nom LIMIT 20');
    expect(pops).toEqual(top.map((r) => r.population));
    // '+' unescaped in a query string arrives as a space: still ascending
    const asc = await json(items('communes', 'sortby=+population&limit=3&properties=population'));
    const low = await sql<{ population: number }>('SELECT population FROM public.communes ORDER BY population LIMIT 3');
    expect(asc.features.map((f: { properties: { population: number } }) => f.properties.population)).toEqual(low.map((r) => r.population));
  });

  it('one feature by id, with links', async () => {
    const r = await get('/collections/communes/items/1');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/geo+json');
    const f = r.json();
    const [row] = await sql<{ nom: string }>('SELECT nom FROM public.communes WHERE id = 1');
    expect(f.type).toBe('Feature');
    expect(f.id).toBe(1);
    expect(f.properties.nom).toBe(row.nom);
    expect(f.links.map((l: { rel: string }) => l.rel)).toEqual(['self', 'alternate', 'collection']);
  });
});

describe('errors: RFC 7807 naming the parameter', () => {
  const cases: [string, string][] = [
    [items('pois', 'foo=1'), 'foo'],
    [items('pois', 'limit=abc'), 'limit'],
    [items('pois', 'limit=0'), 'limit'],
    [items('pois', 'offset=-1'), 'offset'],
    [items('pois', 'bbox=1,2,3'), 'bbox'],
    [items('pois', 'bbox=7,49,6,48'), 'bbox'],
    [items('pois', 'crs=EPSG:9999999'), 'crs'],
    [items('pois', 'bbox-crs=urn:nothing'), 'bbox-crs'],
    [items('pois', 'properties=nope'), 'properties'],
    [items('pois', 'sortby=nope'), 'sortby'],
    [items('pois', 'filter=nom%20%3D'), 'filter'],
    [items('pois', 'filter=nope%3D1'), 'filter'],
    [items('pois', 'filter-lang=sql&filter=1%3D1'), 'filter-lang'],
    [items('pois', 'filter-lang=cql2-json&filter=%7Bnot%20json'), 'filter'],
    [items('pois', 'capacite=many'), 'capacite'],
    [items('pois', 'f=xml'), 'f'],
    ['/collections?foo=1', 'foo'],
    ['/conformance?limit=1', 'limit'],
  ];
  it.each(cases)('%s → 400 on %s', async (url, param) => {
    const r = await get(url);
    expect(r.statusCode, r.body).toBe(400);
    expect(r.headers['content-type']).toContain('application/problem+json');
    const p = r.json();
    expect(p.status).toBe(400);
    expect(p.title).toBe('Bad Request');
    expect(p.parameter).toBe(param);
    expect(p.detail).toContain(param);
  });
});

describe('Part 2 CRS', () => {
  async function nativeFirstPoint(id: number): Promise<[number, number]> {
    const [r] = await sql<{ x: number; y: number }>('SELECT ST_X(geom) x, ST_Y(geom) y FROM public.pois WHERE id = $1', [id]);
    return [r.x, r.y];
  }

  it('crs=EPSG:2154 gives the stored coordinates; Content-Crs names it', async () => {
    const r = await get(items('pois', 'limit=1&crs=http://www.opengis.net/def/crs/EPSG/0/2154'));
    expect(r.headers['content-crs']).toBe('<http://www.opengis.net/def/crs/EPSG/0/2154>');
    const f = r.json().features[0];
    const [x, y] = await nativeFirstPoint(f.id);
    expect(f.geometry.coordinates[0]).toBeCloseTo(x, 1);
    expect(f.geometry.coordinates[1]).toBeCloseTo(y, 1);
  });

  it('CRS84 is lon/lat, EPSG:4326 lat/lon, EPSG:3035 northing/easting, EPSG:3857 x/y — checked against proj4', async () => {
    const id = (await json(items('pois', 'limit=1'))).features[0].id;
    const native = await nativeFirstPoint(id);
    const ll = proj4('EPSG:2154', 'EPSG:4326', native);
    const crs84 = (await json(`/collections/pois/items/${id}`)).geometry.coordinates;
    expect(crs84[0]).toBeCloseTo(ll[0], 5);
    expect(crs84[1]).toBeCloseTo(ll[1], 5);
    const r4326 = await get(`/collections/pois/items/${id}?crs=${encodeURIComponent('http://www.opengis.net/def/crs/EPSG/0/4326')}`);
    expect(r4326.headers['content-crs']).toBe('<http://www.opengis.net/def/crs/EPSG/0/4326>');
    const c4326 = r4326.json().geometry.coordinates;
    expect(c4326[0]).toBeCloseTo(ll[1], 5);
    expect(c4326[1]).toBeCloseTo(ll[0], 5);
    const laea = proj4('EPSG:2154', 'EPSG:3035', native);
    const c3035 = (await json(items('pois', `crs=http://www.opengis.net/def/crs/EPSG/0/3035&id=${id}`))).features[0].geometry.coordinates;
    expect(c3035[0]).toBeCloseTo(laea[1], 0);
    expect(c3035[1]).toBeCloseTo(laea[0], 0);
    const merc = proj4('EPSG:2154', 'EPSG:3857', native);
    const c3857 = (await json(items('pois', `crs=http://www.opengis.net/def/crs/EPSG/0/3857&id=${id}`))).features[0].geometry.coordinates;
    expect(c3857[0]).toBeCloseTo(merc[0], 0);
    expect(c3857[1]).toBeCloseTo(merc[1], 0);
  });

  it('bbox-crs: the same box in CRS84, EPSG:4326 (lat/lon) and EPSG:2154 selects the same features', async () => {
    const [minx, miny, maxx, maxy] = [6.0, 48.5, 6.4, 48.8];
    const a = await json(items('pois', `bbox=${[minx, miny, maxx, maxy]}&limit=10000`));
    const b = await json(items('pois', `bbox=${[miny, minx, maxy, maxx]}&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326&limit=10000`));
    expect(ids(b)).toEqual(ids(a));
    const [lo, hi] = [proj4('EPSG:4326', 'EPSG:2154', [minx, miny]), proj4('EPSG:4326', 'EPSG:2154', [maxx, maxy])];
    const c = await json(
      items('pois', `bbox=${[lo[0], lo[1], hi[0], hi[1]]}&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/2154&limit=10000`),
    );
    const rows = await sql<{ id: number }>('SELECT id FROM public.pois WHERE geom && ST_MakeEnvelope($1,$2,$3,$4,2154) ORDER BY id', [
      lo[0],
      lo[1],
      hi[0],
      hi[1],
    ]);
    expect(ids(c)).toEqual(rows.map((r) => r.id));
  });
});

describe('Part 3 Filtering: queryables and CQL2', () => {
  it('/queryables is a JSON Schema of the properties', async () => {
    const r = await get('/collections/communes/queryables');
    expect(r.headers['content-type']).toContain('application/schema+json');
    const q = r.json();
    expect(q.$schema).toContain('json-schema.org');
    expect(q.type).toBe('object');
    expect(q.properties.population.type).toBe('integer');
    expect(q.properties.date_maj).toMatchObject({ type: 'string', format: 'date' });
    expect(q.properties.geom.format).toBe('geometry-multipolygon');
    // a JSON Schema that accepts the properties of a real feature
    const ajv = new Ajv({ strict: false, validateFormats: false });
    const { $schema: _s, ...schema } = q;
    const f = await json('/collections/communes/items/1');
    const props = { ...f.properties, geom: f.geometry };
    expect(ajv.validate(schema, props), JSON.stringify(ajv.errors)).toBe(true);
  });

  // [conformance class, layer, cql2-text, cql2-json, SQL WHERE]
  const exprs: [string, string, string, unknown, string][] = [
    [
      'basic-cql2',
      'communes',
      'population > 5000 AND NOT (chef_lieu = true)',
      {
        op: 'and',
        args: [
          { op: '>', args: [{ property: 'population' }, 5000] },
          { op: 'not', args: [{ op: '=', args: [{ property: 'chef_lieu' }, true] }] },
        ],
      },
      'population > 5000 AND NOT chef_lieu',
    ],
    [
      'basic-cql2',
      'pois',
      "categorie = 'musee' OR capacite IS NULL",
      {
        op: 'or',
        args: [
          { op: '=', args: [{ property: 'categorie' }, 'musee'] },
          { op: 'isNull', args: [{ property: 'capacite' }] },
        ],
      },
      "categorie = 'musee' OR capacite IS NULL",
    ],
    [
      'advanced-comparison-operators',
      'communes',
      "nom LIKE 'Saint%'",
      { op: 'like', args: [{ property: 'nom' }, 'Saint%'] },
      "nom LIKE 'Saint%'",
    ],
    [
      'advanced-comparison-operators',
      'communes',
      'population BETWEEN 1000 AND 2000',
      { op: 'between', args: [{ property: 'population' }, 1000, 2000] },
      'population BETWEEN 1000 AND 2000',
    ],
    [
      'advanced-comparison-operators',
      'pois',
      "categorie IN ('ecole','mairie')",
      { op: 'in', args: [{ property: 'categorie' }, ['ecole', 'mairie']] },
      "categorie IN ('ecole','mairie')",
    ],
    [
      'case-insensitive-comparison',
      'pois',
      "CASEI(categorie) = CASEI('MUSEE')",
      {
        op: '=',
        args: [
          { op: 'casei', args: [{ property: 'categorie' }] },
          { op: 'casei', args: ['MUSEE'] },
        ],
      },
      "lower(categorie) = 'musee'",
    ],
    [
      'basic-spatial-functions',
      'pois',
      'S_INTERSECTS(geom, BBOX(6.0,48.5,6.4,48.8))',
      { op: 's_intersects', args: [{ property: 'geom' }, { bbox: [6.0, 48.5, 6.4, 48.8] }] },
      'ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(6.0,48.5,6.4,48.8,4326),2154))',
    ],
    [
      'basic-spatial-functions-plus',
      'roads',
      'S_INTERSECTS(geom, LINESTRING(5.5 48.0, 7.0 49.0))',
      {
        op: 's_intersects',
        args: [
          { property: 'geom' },
          {
            type: 'LineString',
            coordinates: [
              [5.5, 48.0],
              [7.0, 49.0],
            ],
          },
        ],
      },
      "ST_Intersects(geom, ST_Transform(ST_GeomFromText('LINESTRING(5.5 48.0, 7.0 49.0)',4326),2154))",
    ],
    [
      'spatial-functions',
      'pois',
      'S_WITHIN(geom, POLYGON((6 48.5, 6.4 48.5, 6.4 48.8, 6 48.8, 6 48.5)))',
      {
        op: 's_within',
        args: [
          { property: 'geom' },
          {
            type: 'Polygon',
            coordinates: [
              [
                [6, 48.5],
                [6.4, 48.5],
                [6.4, 48.8],
                [6, 48.8],
                [6, 48.5],
              ],
            ],
          },
        ],
      },
      "ST_Within(geom, ST_Transform(ST_GeomFromText('POLYGON((6 48.5, 6.4 48.5, 6.4 48.8, 6 48.8, 6 48.5))',4326),2154))",
    ],
    [
      'spatial-functions',
      'communes',
      'S_CONTAINS(geom, POINT(6.2 48.7))',
      { op: 's_contains', args: [{ property: 'geom' }, { type: 'Point', coordinates: [6.2, 48.7] }] },
      "ST_Contains(geom, ST_Transform(ST_GeomFromText('POINT(6.2 48.7)',4326),2154))",
    ],
    [
      'spatial-functions',
      'communes',
      'S_DISJOINT(geom, POINT(6.2 48.7))',
      { op: 's_disjoint', args: [{ property: 'geom' }, { type: 'Point', coordinates: [6.2, 48.7] }] },
      "ST_Disjoint(geom, ST_Transform(ST_GeomFromText('POINT(6.2 48.7)',4326),2154))",
    ],
    [
      'temporal-functions',
      'pois',
      "T_AFTER(date_creation, DATE('2018-01-01'))",
      { op: 't_after', args: [{ property: 'date_creation' }, { date: '2018-01-01' }] },
      "date_creation > DATE '2018-01-01'",
    ],
    [
      'temporal-functions',
      'pois',
      "T_DURING(date_creation, INTERVAL('2010-01-01','2012-12-31'))",
      { op: 't_during', args: [{ property: 'date_creation' }, { interval: ['2010-01-01', '2012-12-31'] }] },
      "date_creation > DATE '2010-01-01' AND date_creation < DATE '2012-12-31'",
    ],
    [
      'arithmetic',
      'communes',
      'population / 1000 > 8',
      { op: '>', args: [{ op: '/', args: [{ property: 'population' }, 1000] }, 8] },
      'population / 1000.0 > 8',
    ],
  ];

  it('every CQL2 conformance class listed is exercised below', () => {
    const tested = new Set(exprs.map((e) => e[0]));
    for (const c of CONFORMANCE.filter((x) => x.includes('/cql2/1.0/conf/') && !/cql2-(text|json)$/.test(x))) {
      expect(tested.has(c.split('/').pop()!), c).toBe(true);
    }
  });

  it.each(exprs)('%s: %s %s — text and JSON give the same features as SQL', async (_cls, coll, text, jsonExpr, where) => {
    const a = await json(items(coll, `filter=${encodeURIComponent(text)}&limit=10000&properties=`));
    const b = await json(
      items(coll, `filter-lang=cql2-json&filter=${encodeURIComponent(JSON.stringify(jsonExpr))}&limit=10000&properties=`),
    );
    const rows = await sql<{ id: number }>(`SELECT id FROM public.${coll} WHERE ${where} ORDER BY id`);
    expect(a.numberMatched).toBe(rows.length);
    expect(ids(a)).toEqual(rows.map((r) => r.id));
    expect(ids(b)).toEqual(ids(a));
  });

  it('filter-crs: literals in EPSG:2154 and in EPSG:4326 lat/lon', async () => {
    const lo = proj4('EPSG:4326', 'EPSG:2154', [6.0, 48.5]);
    const hi = proj4('EPSG:4326', 'EPSG:2154', [6.4, 48.8]);
    const f2154 = `S_INTERSECTS(geom, BBOX(${lo[0]},${lo[1]},${hi[0]},${hi[1]}))`;
    const a = await json(
      items('pois', `filter=${encodeURIComponent(f2154)}&filter-crs=http://www.opengis.net/def/crs/EPSG/0/2154&limit=10000`),
    );
    const rows = await sql<{ id: number }>(
      'SELECT id FROM public.pois WHERE ST_Intersects(geom, ST_MakeEnvelope($1,$2,$3,$4,2154)) ORDER BY id',
      [lo[0], lo[1], hi[0], hi[1]],
    );
    expect(ids(a)).toEqual(rows.map((r) => r.id));
    const pt = 'S_CONTAINS(geom, POINT(48.7 6.2))';
    const b = await json(items('communes', `filter=${encodeURIComponent(pt)}&filter-crs=http://www.opengis.net/def/crs/EPSG/0/4326`));
    const c = await json(items('communes', `filter=${encodeURIComponent('S_CONTAINS(geom, POINT(6.2 48.7))')}`));
    expect(c.numberMatched).toBe(1);
    expect(ids(b)).toEqual(ids(c));
  });

  it('filter, bbox, datetime and equality combine (AND)', async () => {
    const fc = await json(
      items(
        'pois',
        `filter=${encodeURIComponent('capacite > 50')}&bbox=5,48,7,49.5&datetime=2000-01-01/..&categorie=restaurant&limit=10000`,
      ),
    );
    const rows = await sql<{ id: number }>(
      `SELECT id FROM public.pois WHERE capacite > 50 AND categorie = 'restaurant' AND date_creation >= '2000-01-01'
       AND ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(5,48,7,49.5,4326),2154)) ORDER BY id`,
    );
    expect(ids(fc)).toEqual(rows.map((r) => r.id));
  });
});

describe('HTML, CSV, caching, compression, CORS', () => {
  it('HTML for every resource by f=html and by Accept', async () => {
    for (const u of [
      '/',
      '/conformance',
      '/api',
      '/collections',
      '/collections/communes',
      '/collections/communes/queryables',
      '/collections/communes/items',
      '/collections/communes/items/1',
    ]) {
      const byF = await get(u + (u.includes('?') ? '&' : '?') + 'f=html');
      expect(byF.statusCode, u).toBe(200);
      expect(byF.headers['content-type'], u).toContain('text/html');
      expect(byF.body).toMatch(/^<!DOCTYPE html>/);
      const byAccept = await get(u, { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
      expect(byAccept.headers['content-type'], u).toContain('text/html');
    }
    const page = await get('/collections/communes/items?f=html&limit=5');
    expect(page.body.match(/\/collections\/communes\/items\/\d+\?f=html/g)?.length).toBe(5);
  });

  it('CSV: header, one row per feature, WKT in the requested CRS', async () => {
    const r = await get(items('roads', 'f=csv&limit=25&properties=nom,classe'));
    expect(r.headers['content-type']).toContain('text/csv');
    const lines = r.body.trim().split('\r\n');
    expect(lines[0]).toBe('classe,nom,wkt');
    expect(lines).toHaveLength(26);
    expect(lines[1]).toMatch(/LINESTRING\(\d/);
  });

  it('ETag and If-None-Match → 304', async () => {
    for (const u of [
      '/collections',
      '/collections/pois',
      '/collections/pois/items?limit=20',
      '/collections/pois/items/3',
      '/conformance',
    ]) {
      const a = await get(u);
      const tag = a.headers.etag as string;
      expect(tag, u).toMatch(/^W\/".+"$/);
      const b = await get(u, { 'if-none-match': tag });
      expect(b.statusCode, u).toBe(304);
      expect(b.body).toBe('');
    }
  });

  it('gzip and br negotiated, also on a streamed page', async () => {
    const plain = await get(items('communes', 'limit=200'));
    const gz = await get(items('communes', 'limit=200'), { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    const unz = JSON.parse(gunzipSync(gz.rawPayload).toString('utf8'));
    expect(unz.numberReturned).toBe(200);
    expect(ids(unz)).toEqual(ids(plain.json()));
    const br = await get('/collections', { 'accept-encoding': 'br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(JSON.parse(brotliDecompressSync(br.rawPayload).toString('utf8')).collections.length).toBe(3);
  });

  it('CORS headers for portal frontends', async () => {
    const r = await get('/collections/pois/items?limit=1', { origin: 'https://portal.example' });
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(String(r.headers['access-control-expose-headers'])).toContain('Content-Crs');
    const pre = await t.app.inject({
      method: 'OPTIONS',
      url: '/collections/pois/items',
      headers: { origin: 'https://portal.example', 'access-control-request-method': 'GET' },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
  });
});

describe('OpenAPI: one document, every route', () => {
  it('validates, /api (JSON) and /openapi.yaml are the same document', async () => {
    const api = await json('/api');
    const yaml = YAML.parse((await get('/openapi.yaml')).body);
    expect(api.paths).toEqual(yaml.paths);
    expect(api.components).toEqual({
      ...yaml.components,
      parameters: { ...yaml.components.parameters, limit: api.components.parameters.limit },
    });
    await SwaggerParser.validate(structuredClone(api));
    await SwaggerParser.validate(path.join(import.meta.dirname, '..', 'openapi.yaml'));
  });

  it('every route the server exposes appears in it', async () => {
    const api = await json('/api');
    // compare path shapes: parameter names may differ between router and document ({tms} vs
    // {tileMatrixSetId}), and a router parameter may take a documented suffix ({y} serves {y}.png)
    const shape = (u: string) => u.replace(/\{[^}]+\}(\.[a-z]+)?/g, '{}');
    const documented = new Map<string, Record<string, unknown>>();
    for (const [p, item] of Object.entries(api.paths as Record<string, Record<string, unknown>>)) {
      const resolved = (item.$ref ? api.paths[String(item.$ref).replace('#/paths/', '').replace(/~1/g, '/')] : item) as Record<
        string,
        unknown
      >;
      const k = shape(p);
      documented.set(k, { ...(documented.get(k) ?? {}), ...resolved });
    }
    const exposed = routes
      .filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS') // HEAD mirrors GET; OPTIONS is the CORS preflight
      .filter((r) => !r.url.startsWith('/api.html')) // Swagger UI's page and assets (the page itself is documented)
      .map((r) => ({ ...r, url: r.url.replace(/:([A-Za-z_]\w*)/g, '{$1}').replace(/(.)\/$/, '$1') }));
    expect(exposed.length).toBeGreaterThan(10);
    const missing = exposed.filter((r) => !documented.get(shape(r.url))?.[r.method.toLowerCase()]);
    expect(missing).toEqual([]);
  });
});

describe('clients', () => {
  const qgisPython = '/usr/bin/python3';
  const hasQgis =
    existsSync(qgisPython) &&
    (() => {
      try {
        execFileSync(qgisPython, ['-c', 'import qgis.core'], { stdio: 'ignore', timeout: 60000 });
        return true;
      } catch {
        return false;
      }
    })();
  if (!hasQgis) console.warn('[ogcapi] QGIS OAPIF check skipped: python3-qgis is not installed (apt-get install python3-qgis)');

  it.skipIf(!hasQgis)(
    'QGIS OAPIF provider loads a collection with its features and CRS',
    async () => {
      const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
      const script = `
import sys, json
from qgis.core import QgsApplication, QgsVectorLayer
app = QgsApplication([], False); app.initQgis()
uri = "url='${address}' typename='roads' pageSize='500'"
vl = QgsVectorLayer(uri, 'x', 'OAPIF')
out = {'valid': vl.isValid()}
if vl.isValid():
    feats = list(vl.getFeatures())
    out.update(count=len(feats), fields=[f.name() for f in vl.fields()], crs=vl.crs().authid(),
               ext=[vl.extent().xMinimum(), vl.extent().yMinimum()], geomtype=vl.wkbType(),
               nom=sorted(str(f['nom']) for f in feats if f['nom'] is not None)[:3])
print('RESULT' + json.dumps(out))
`;
      const { execFile } = await import('node:child_process');
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(
          qgisPython,
          ['-c', script],
          { env: { ...process.env, QT_QPA_PLATFORM: 'offscreen' }, timeout: 120000, maxBuffer: 1 << 24 },
          (e, so, se) => (e ? reject(new Error(`${e.message}\n${se}`)) : resolve(so)),
        ),
      );
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT'));
      expect(line, stdout).toBeDefined();
      const res = JSON.parse(line!.slice(6));
      const [{ n }] = await sql<{ n: string }>('SELECT count(*) n FROM public.roads');
      expect(res.valid).toBe(true);
      expect(res.count).toBe(Number(n));
      expect(res.fields).toEqual(expect.arrayContaining(['classe', 'nom']));
      const names = await sql<{ nom: string }>('SELECT nom FROM public.roads WHERE nom IS NOT NULL ORDER BY nom::text COLLATE "C" LIMIT 3');
      expect(res.nom).toEqual(names.map((r) => r.nom));
    },
    180000,
  );
});
