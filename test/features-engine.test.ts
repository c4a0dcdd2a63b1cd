/** The shared feature engine (src/features) against the real test database. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import proj4 from 'proj4';
import pg from 'pg';
import { expectBackendsIdle, makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import type { Layer } from '../src/registry/types.js';
import { buildFeatureSql, FeatureQueryError, pageSize, type FeatureQuery } from '../src/features/query.js';
import { countFeatures, countWith, openFeatureStream, fetchFeatureRows, featureRowEvents } from '../src/features/stream.js';
import { GeoJsonWriter } from '../src/features/writers/geojson.js';
import { GmlWriter } from '../src/features/writers/gml.js';
import { CsvWriter } from '../src/features/writers/csv.js';
import { NdjsonWriter } from '../src/features/writers/ndjson.js';
import type { CollectionInfo, FeatureWriter } from '../src/features/writers/types.js';
import { parseFesFilterString } from '../src/filter/fes.js';

proj4.defs(
  'EPSG:2154',
  '+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs',
);

let t: TestApp;
let parcels: Layer;
let pois: Layer;

beforeAll(async () => {
  t = await makeTestApp();
  parcels = t.ctx.registry.resolve('parcels')!;
  pois = t.ctx.registry.resolve('pois')!;
  expect(parcels).toBeDefined();
  expect(pois).toBeDefined();
});
afterAll(async () => {
  await t?.close();
});

async function run(queries: FeatureQuery[], writer: FeatureWriter, count = true): Promise<{ text: string; matched: number | 'unknown' }> {
  let matched: number | 'unknown' = 'unknown';
  let returned: number | undefined;
  if (count) {
    const counts = await Promise.all(queries.map((q) => countFeatures(t.ctx.pool, q)));
    matched = counts.reduce((a, b) => a + b, 0);
    returned = queries.reduce((s, q, i) => s + pageSize(counts[i], q), 0);
  }
  const info: CollectionInfo = {
    numberMatched: matched,
    numberReturned: returned,
    timeStamp: new Date().toISOString(),
    links: {},
    layers: queries.map((q) => q.layer),
    outputEpsg: queries[0].outputEpsg ?? queries[0].layer.srid,
  };
  const s = await openFeatureStream(t.ctx.pool, { queries, writer, info });
  let text = '';
  for await (const c of s) text += c.toString();
  return { text, matched };
}

describe('query building', () => {
  it('rejects unknown properties and sort keys, naming them', () => {
    expect(() => buildFeatureSql({ layer: parcels, properties: ['nope'] }, 'geojson')).toThrow(FeatureQueryError);
    try {
      buildFeatureSql({ layer: parcels, sortBy: [{ property: 'bogus', desc: false }] }, 'geojson');
      expect.unreachable();
    } catch (e) {
      expect((e as FeatureQueryError).locator).toBe('sortBy');
      expect((e as Error).message).toContain('bogus');
    }
    expect(() => buildFeatureSql({ layer: parcels, bbox: { minx: 5, miny: 0, maxx: 1, maxy: 1, epsg: 2154 } }, 'csv')).toThrow(/bbox/);
  });
  it('orders by sort keys then primary key, with bind parameters only for values', () => {
    const { sql, params } = buildFeatureSql(
      {
        layer: parcels,
        sortBy: [{ property: 'insee', desc: true }],
        limit: 10,
        offset: 5,
        bbox: { minx: 1, miny: 2, maxx: 3, maxy: 4, epsg: 4326 },
      },
      'geojson',
    );
    expect(sql).toMatch(/ORDER BY t\."insee" DESC NULLS LAST, t\."id"/);
    // the box, its CRS, the inner box of the shortcut (4 numbers, in the layer's CRS), limit, offset
    expect(params.slice(0, 5)).toEqual([1, 2, 3, 4, 4326]);
    expect(params.slice(-2)).toEqual([10, 5]);
    expect(params).toHaveLength(11);
    expect(params.every((p) => typeof p === 'number')).toBe(true);
  });
});

describe('bbox shortcut (box inside box before ST_Intersects)', () => {
  it('counts exactly what ST_Intersects counts, on random boxes and on boxes just off a feature', async () => {
    const ext = (
      await t.ctx.pool.query<{ x0: number; y0: number; x1: number; y1: number }>(
        'SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM (SELECT ST_Extent(geom)::geometry e FROM public.parcels) s',
      )
    ).rows[0];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const exact = async (b: number[]) =>
      Number(
        (
          await t.ctx.pool.query(
            'SELECT count(*) n FROM public.parcels WHERE ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 2154))',
            b,
          )
        ).rows[0].n,
      );
    let nonEmpty = 0;
    // boxes around random parcels (the demo parcels cluster around towns) and a few anywhere
    const centres = (
      await t.ctx.pool.query<{ x: number; y: number }>(
        'SELECT ST_X(c) x, ST_Y(c) y FROM (SELECT ST_Centroid(geom) c FROM public.parcels ORDER BY md5(id::text) LIMIT 9) s',
      )
    ).rows;
    for (let i = 0; i < 12; i++) {
      const size = 200 + rnd() * 3000;
      const c = centres[i] ?? { x: ext.x0 + rnd() * (ext.x1 - ext.x0), y: ext.y0 + rnd() * (ext.y1 - ext.y0) };
      const x = c.x - rnd() * size,
        y = c.y - rnd() * size;
      const b = [x, y, x + size, y + size];
      const want = await exact(b);
      if (want > 0) nonEmpty++;
      expect(
        await countFeatures(t.ctx.pool, { layer: parcels, bbox: { minx: b[0], miny: b[1], maxx: b[2], maxy: b[3], epsg: 2154 } }),
      ).toBe(want);
      // the same ground in other CRSs (the shortcut then uses the box inside the transformed quadrilateral)
      for (const epsg of [4326, 3857]) {
        const [x0, y0] = proj4('EPSG:2154', `EPSG:${epsg}`, [b[0], b[1]]);
        const [x1, y1] = proj4('EPSG:2154', `EPSG:${epsg}`, [b[2], b[3]]);
        const bb = { minx: x0, miny: y0, maxx: x1, maxy: y1, epsg };
        const sql = buildFeatureSql({ layer: parcels, bbox: bb }, 'csv').sql;
        expect(sql).toContain(' @ ST_MakeEnvelope(');
        const w = Number(
          (
            await t.ctx.pool.query(
              'SELECT count(*) n FROM public.parcels WHERE ST_Intersects(geom, ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, $5), 2154))',
              [x0, y0, x1, y1, epsg],
            )
          ).rows[0].n,
        );
        expect(await countFeatures(t.ctx.pool, { layer: parcels, bbox: bb }), `EPSG:${epsg}`).toBe(w);
      }
    }
    expect(nonEmpty).toBeGreaterThan(3);
    // a box whose right edge stops 5 cm short of a parcel's leftmost vertex: not counted; 5 cm past it: counted
    const p = (
      await t.ctx.pool.query<{ id: number; x: number; y: number }>(
        `SELECT id, ST_X(pt) x, ST_Y(pt) y FROM (SELECT id, (SELECT d.geom FROM ST_DumpPoints(geom) d ORDER BY ST_X(d.geom) LIMIT 1) pt FROM public.parcels ORDER BY id LIMIT 1) s`,
      )
    ).rows[0];
    const byId = parseFesFilterString(
      `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:ResourceId rid="parcels.${p.id}"/></fes:Filter>`,
      { version: '2.0', defaultCrs: 2154 },
    );
    for (const [dx, want] of [
      [-0.05, 0],
      [0.05, 1],
    ] as const) {
      const b = { minx: p.x - 2000, miny: p.y - 1000, maxx: p.x + dx, maxy: p.y + 1000, epsg: 2154 };
      const one = await t.ctx.pool.query(
        'SELECT count(*) n FROM public.parcels WHERE id = $5 AND ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 2154))',
        [b.minx, b.miny, b.maxx, b.maxy, p.id],
      );
      expect(Number(one.rows[0].n), `dx ${dx}`).toBe(want);
      expect(await countFeatures(t.ctx.pool, { layer: parcels, bbox: b, filter: byId }), `dx ${dx}`).toBe(want);
    }
  });
});

describe('GeoJSON streaming', () => {
  it('streams a bbox + filter query in 4326 with exact numberMatched and coordinates matching proj4', async () => {
    const e = pois.wgs84Extent!;
    const cx = (e.minx + e.maxx) / 2;
    const cy = (e.miny + e.maxy) / 2;
    const q: FeatureQuery = { layer: pois, bbox: { minx: e.minx, miny: e.miny, maxx: cx, maxy: cy, epsg: 4326 }, outputEpsg: 4326 };
    const { text, matched } = await run([q], new GeoJsonWriter());
    const fc = JSON.parse(text);
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.crs).toBeUndefined();
    expect(fc.numberMatched).toBe(matched);
    expect(fc.features.length).toBe(matched);
    expect(matched).toBeGreaterThan(10);
    const ids = fc.features.map((f: { id: number }) => f.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
    // compare with proj4 on native coordinates
    const native = await t.ctx.pool.query('SELECT id, ST_X(geom) x, ST_Y(geom) y FROM public.pois WHERE id = ANY($1)', [ids.slice(0, 20)]);
    for (const r of native.rows) {
      const f = fc.features.find((x: { id: number }) => x.id === r.id);
      const [lon, lat] = proj4('EPSG:2154', 'EPSG:4326', [r.x, r.y]);
      expect(f.geometry.coordinates[0]).toBeCloseTo(lon, 6);
      expect(f.geometry.coordinates[1]).toBeCloseTo(lat, 6);
      expect(lon).toBeGreaterThanOrEqual(e.minx);
      expect(lon).toBeLessThanOrEqual(cx);
    }
  });

  it('property subsets, NULLs and accents come through', async () => {
    const q: FeatureQuery = {
      layer: pois,
      properties: ['nom', 'adresse'],
      filter: parseFesFilterString(
        '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsNull><fes:ValueReference>adresse</fes:ValueReference></fes:PropertyIsNull></fes:Filter>',
        { version: '2.0' },
      ),
      limit: 5,
    };
    const { text } = await run([q], new GeoJsonWriter());
    const fc = JSON.parse(text);
    expect(fc.features.length).toBe(5);
    for (const f of fc.features) {
      expect(Object.keys(f.properties)).toEqual(['nom', 'adresse']);
      expect(f.properties.adresse).toBeNull();
    }
    const accented = await t.ctx.pool.query(`SELECT id, nom FROM public.pois WHERE nom ~ '[éèêàçô]' ORDER BY id LIMIT 1`);
    expect(accented.rows.length).toBe(1);
    const rows = await fetchFeatureRows(
      t.ctx.pool,
      { layer: pois, filter: { kind: 'resourceId', ids: [String(accented.rows[0].id)] } },
      'geojson',
    );
    expect(JSON.parse(rows[0].f!).properties.nom).toBe(accented.rows[0].nom);
  });

  it('paging over a non-unique sort key is disjoint and complete', async () => {
    const base: FeatureQuery = { layer: pois, sortBy: [{ property: 'categorie', desc: false }] };
    const total = await countFeatures(t.ctx.pool, base);
    const seen = new Set<number>();
    let pages = 0;
    for (let off = 0; off < total; off += 450) {
      const { text } = await run([{ ...base, limit: 450, offset: off }], new GeoJsonWriter(), false);
      const fc = JSON.parse(text);
      expect(fc.numberMatched).toBeUndefined();
      for (const f of fc.features) {
        expect(seen.has(f.id)).toBe(false);
        seen.add(f.id);
      }
      pages++;
    }
    expect(seen.size).toBe(total);
    expect(pages).toBe(Math.ceil(total / 450));
  });
});

describe('other formats', () => {
  it('GML 3.2: members with unique gml:ids, lat/lon for the EPSG URN of 4326', async () => {
    const q: FeatureQuery = { layer: parcels, limit: 3, outputEpsg: 4326, outputLatLon: true };
    const { text } = await run([q], new GmlWriter({ version: '3.2', namespaceUri: 'https://x.example/geodata', prefix: 'geodata' }));
    const doc = new XMLParser({ ignoreAttributes: false }).parse(text);
    const fc = doc['wfs:FeatureCollection'];
    expect(fc['@_numberMatched']).toBe('20000');
    expect(fc['@_numberReturned']).toBe('3');
    expect(fc['wfs:member'].length).toBe(3);
    const ids = [...text.matchAll(/gml:id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    const pos = fc['wfs:member'][0]['geodata:parcels']['geodata:geom']['gml:MultiSurface']['gml:surfaceMember']['gml:Polygon'][
      'gml:exterior'
    ]['gml:LinearRing']['gml:posList']['#text']
      .split(' ')
      .map(Number);
    // France: latitude ~ 42-51 first, longitude ~ -5..9 second
    expect(pos[0]).toBeGreaterThan(40);
    expect(pos[1]).toBeLessThan(10);
  });

  it('GML 3.1.1 in WFS 1.1 form, CSV with WKT and NDJSON', async () => {
    const q: FeatureQuery = { layer: pois, limit: 4 };
    const gml = (await run([q], new GmlWriter({ version: '3.1.1', namespaceUri: 'https://x.example/geodata', prefix: 'geodata' }))).text;
    expect(gml).toContain('xmlns:gml="http://www.opengis.net/gml"');
    expect(gml).toContain('numberOfFeatures="4"');
    expect((gml.match(/<gml:featureMember>/g) ?? []).length).toBe(4);
    const csv = (await run([q], new CsvWriter())).text.trim().split('\r\n');
    expect(csv[0]).toBe([...pois.fields.map((f) => f.name), 'wkt'].join(','));
    expect(csv.length).toBe(5);
    expect(csv[1]).toMatch(/,"?POINT\(\d/);
    const nd = (await run([q], new NdjsonWriter(), false)).text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(nd.length).toBe(4);
    expect(nd[0].type).toBe('Feature');
  });
});

describe('GML geometries written from WKT (writers/gml-geometry.ts)', () => {
  it("are ST_AsGML's text, ids renumbered and srsName replaced as before, for every simple type, Z, M, ZM and empty parts", async () => {
    const shapes = [
      'POINT(1 2)',
      'POINT Z (1 2 3)',
      'POINT M (1 2 3)',
      'POINT ZM (1 2 3 4)',
      'POINT EMPTY',
      'LINESTRING(1 2,3 4.125,-5.005 6.995)',
      'LINESTRING M (1 2 9,3 4 9)',
      'POLYGON((0 0,10 0,10 10,0 0),(1 1,2 1,2 2,1 1),(3 3,4 3,4 4,3 3))',
      'POLYGON Z ((0 0 1,10 0 2,10 10 3,0 0 1))',
      'MULTIPOINT((1 2),(3 4))',
      'MULTIPOINT(EMPTY,(1 2))',
      'MULTIPOINT ZM ((1 2 3 4),(5 6 7 8))',
      'MULTILINESTRING((1 2,3 4),(5 6,7 8))',
      'MULTILINESTRING(EMPTY,(1 2,3 4))',
      'MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5),(5.2 5.2,5.4 5.2,5.4 5.4,5.2 5.2)))',
      'MULTIPOLYGON Z (((0 0 1,1 0 1,1 1 1,0 0 1)))',
      'MULTIPOLYGON EMPTY',
      'GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(1 2,3 4),GEOMETRYCOLLECTION(POINT(5 6),MULTIPOINT((7 8))),POINT EMPTY)',
      'GEOMETRYCOLLECTION EMPTY',
      'POINT(854154.9616633609 6921661.786105155)',
      'POINT(-0.001 1e20)',
      'POINT(2.123456789012 48.000000049999)',
    ];
    const layer = { ...parcels, name: 'parcels', geometryType: 'MULTIPOLYGON' } as Layer;
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
    try {
      let compared = 0;
      for (const digits of [2, 7]) {
        const { rows } = await pool.query(
          `SELECT ST_AsText(g, $1) AS w, ST_AsGML(3, g, $1, 5, 'gml', 'parcels.1.geom') AS g32, ST_AsGML(3, g, $1, 5, 'gml', NULL) AS g311
             FROM unnest($2::text[]) AS s(t), LATERAL (SELECT ST_SetSRID(s.t::geometry, 2154) AS g) x`,
          [digits, shapes],
        );
        expect(rows.length).toBe(shapes.length);
        for (const srsName of ['urn:ogc:def:crs:EPSG::2154', 'EPSG:2154', 'http://www.opengis.net/def/crs/EPSG/0/2154?a&b']) {
          const q: FeatureQuery = { layer, gmlSrsName: srsName };
          for (const version of ['3.2', '3.1.1'] as const) {
            const w = new GmlWriter({ version, namespaceUri: 'https://x.example/geodata', prefix: 'geodata' });
            for (const r of rows) {
              const fromGml = w.feature({ fid: '1', g: version === '3.2' ? r.g32 : r.g311, a: null }, q);
              expect(w.feature({ fid: '1', g: r.w, a: null }, q), `${r.w} (${version}, ${srsName})`).toBe(fromGml);
              compared++;
            }
          }
        }
      }
      expect(compared).toBe(2 * 3 * 2 * shapes.length);
    } finally {
      await pool.end();
    }
  });

  it('are asked for where the front door names the CRS and the layer holds simple types only', () => {
    const q: FeatureQuery = { layer: parcels, limit: 1, gmlSrsName: 'urn:ogc:def:crs:EPSG::2154' };
    const opts = { gml: { prefix: 'geodata' } };
    expect(buildFeatureSql(q, 'gml32', opts).sql).toContain('ST_AsText(');
    expect(buildFeatureSql(q, 'gml32', opts).sql).not.toContain('ST_AsGML(');
    // a GEOMETRY column may hold curves and surfaces; without a srsName the one PostGIS writes stays
    expect(buildFeatureSql({ ...q, layer: { ...parcels, geometryType: 'GEOMETRY' } }, 'gml32', opts).sql).toContain('ST_AsGML(');
    expect(buildFeatureSql({ ...q, gmlSrsName: undefined }, 'gml311', opts).sql).toContain('ST_AsGML(');
  });
});

describe('finalize hook', () => {
  it("runs on the stream's connection after the last row and feeds the footer", async () => {
    const q: FeatureQuery = { layer: pois, limit: 7, offset: 3 };
    let seenReturned = -1;
    const s = await openFeatureStream(t.ctx.pool, {
      queries: [q],
      writer: new GeoJsonWriter(),
      info: { numberMatched: 'unknown', timeStamp: 'now', links: {}, layers: [pois], outputEpsg: 2154 },
      finalize: async (run, returned) => {
        seenReturned = returned;
        return { numberMatched: await countWith(run, q), links: { next: 'http://x/next' } };
      },
    });
    let text = '';
    for await (const c of s) text += c.toString();
    const fc = JSON.parse(text);
    expect(seenReturned).toBe(7);
    expect(fc.numberMatched).toBe(2000);
    expect(fc.numberReturned).toBe(7);
    expect(fc.links).toEqual([{ href: 'http://x/next', rel: 'next', type: 'application/geo+json' }]);
    expect(fc.features.map((f: { id: number }) => f.id)).toEqual([4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('numberMatched carried by the page (countMatched)', () => {
  async function page(q: FeatureQuery, countMatched: boolean): Promise<{ ids: unknown[]; carried?: number; sql: string }> {
    let carried: number | undefined;
    const s = await openFeatureStream(t.ctx.pool, {
      queries: [q],
      writer: new GeoJsonWriter(),
      info: { numberMatched: 'unknown', timeStamp: 'now', links: {}, layers: [q.layer], outputEpsg: 2154 },
      countMatched,
      finalize: async (_run, _returned, matched) => {
        carried = matched;
        return {};
      },
    });
    let text = '';
    for await (const c of s) text += c.toString();
    const fc = JSON.parse(text);
    for (const f of fc.features) expect(Object.keys(f.properties)).not.toContain('geodata_matched');
    return { ids: fc.features.map((f: { id: unknown }) => f.id), carried, sql: buildFeatureSql(q, 'geojson', { countMatched }).sql };
  }

  it('gives the same page and the same count as a page query plus a count query', async () => {
    const bbox = { minx: 1045000, miny: 6835000, maxx: 1052000, maxy: 6845000, epsg: 2154 };
    const filter = parseFesFilterString(
      '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsGreaterThan><fes:ValueReference>contenance</fes:ValueReference><fes:Literal>300</fes:Literal></fes:PropertyIsGreaterThan></fes:Filter>',
      { version: '2.0' },
    );
    const cases: FeatureQuery[] = [
      { layer: parcels, bbox, limit: 50, offset: 10 },
      { layer: parcels, bbox, filter, limit: 25, sortBy: [{ property: 'section', desc: true }] },
      {
        layer: pois,
        filter: parseFesFilterString(
          '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsNull><fes:ValueReference>adresse</fes:ValueReference></fes:PropertyIsNull></fes:Filter>',
          { version: '2.0' },
        ),
        limit: 5,
      },
    ];
    for (const q of cases) {
      const want = await countFeatures(t.ctx.pool, q);
      expect(want).toBeGreaterThan(q.limit!);
      const plain = await page(q, false);
      const inline = await page(q, true);
      expect(inline.sql).toContain('array_agg(');
      expect(plain.carried).toBeUndefined();
      expect(inline.carried).toBe(want);
      expect(inline.ids).toEqual(plain.ids);
      expect(inline.ids.length).toBe(q.limit);
    }
    // no bbox and no filter: the page comes off the primary key and the count stays separate
    const all = await page({ layer: parcels, limit: 5 }, true);
    expect(all.sql).not.toContain('array_agg(');
    expect(all.carried).toBeUndefined();
    // the last, partial page of the matches, and a descending sort whose key has NULLs (the keys' slice keeps the order)
    const matched = await countFeatures(t.ctx.pool, { layer: parcels, bbox });
    const last = { layer: parcels, bbox, limit: 40, offset: matched - 15 };
    const lastPlain = await page(last, false);
    const lastInline = await page(last, true);
    expect(lastInline.ids).toEqual(lastPlain.ids);
    expect(lastInline.ids.length).toBe(15);
    expect(lastInline.carried).toBe(matched);
    const nulls = {
      layer: pois,
      bbox: { minx: 0, miny: 6000000, maxx: 2000000, maxy: 8000000, epsg: 2154 },
      limit: 30,
      offset: 7,
      sortBy: [{ property: 'adresse', desc: true }],
    };
    const nullsPlain = await page(nulls, false);
    const nullsInline = await page(nulls, true);
    expect(nullsInline.ids).toEqual(nullsPlain.ids);
    expect(nullsInline.carried).toBe(await countFeatures(t.ctx.pool, nulls));
    // a page past the end carries nothing (no row to carry it)
    const past = await page({ layer: parcels, bbox, limit: 10, offset: 10_000_000 }, true);
    expect(past.ids).toEqual([]);
    expect(past.carried).toBeUndefined();
  });
});

describe('bytes of a stream', () => {
  it('chunks are whole UTF-8 (no character cut between two) and their sum does not depend on the chunk size', async () => {
    const q: FeatureQuery = { layer: pois, limit: 400, sortBy: [{ property: 'nom', desc: false }] };
    const info: CollectionInfo = {
      numberMatched: 2000,
      numberReturned: 400,
      timeStamp: 'now',
      links: {},
      layers: [pois],
      outputEpsg: pois.srid,
    };
    for (const make of [
      () => new GeoJsonWriter(),
      () => new GmlWriter({ version: '3.2', namespaceUri: 'https://x.example/é', prefix: 'geodata' }),
    ]) {
      const read = async (chunkChars?: number) => {
        const chunks: Buffer[] = [];
        for await (const c of await openFeatureStream(t.ctx.pool, { queries: [q], writer: make(), info, chunkChars }))
          chunks.push(c as Buffer);
        return chunks;
      };
      const small = await read(300);
      const whole = await read();
      expect(small.length).toBeGreaterThan(whole.length);
      for (const c of small) expect(Buffer.from(c.toString('utf8'), 'utf8').equals(c)).toBe(true);
      expect(Buffer.concat(small).equals(Buffer.concat(whole))).toBe(true);
      const text = Buffer.concat(whole).toString('utf8');
      expect(text).toMatch(/[ÉÈéèôà]/);
      expect(Buffer.byteLength(text)).toBeGreaterThan(text.length);
    }
  });
});

describe('long streams start at once', () => {
  it('an export (and a page) runs without parallel workers on its connection and gives the connection back reset', async () => {
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
    try {
      const before = (await pool.query('SHOW max_parallel_workers_per_gather')).rows[0].max_parallel_workers_per_gather;
      expect(before).not.toBe('0');
      const seen: string[] = [];
      let rows = 0;
      for await (const ev of featureRowEvents(pool, [{ layer: pois }], 'csv')) {
        if (ev.kind === 'row') rows++;
        if (ev.kind === 'end')
          seen.push(String((await ev.run!('SHOW max_parallel_workers_per_gather', []))[0].max_parallel_workers_per_gather));
      }
      expect(rows).toBe(2000);
      expect(seen).toEqual(['0']);
      // the same (only) connection, once released
      expect((await pool.query('SHOW max_parallel_workers_per_gather')).rows[0].max_parallel_workers_per_gather).toBe(before);
      // a page too: its few thousand rows cost less than starting workers for them
      for await (const ev of featureRowEvents(pool, [{ layer: pois, limit: 10 }], 'csv')) {
        if (ev.kind === 'end')
          expect(String((await ev.run!('SHOW max_parallel_workers_per_gather', []))[0].max_parallel_workers_per_gather)).toBe('0');
      }
      expect((await pool.query('SHOW max_parallel_workers_per_gather')).rows[0].max_parallel_workers_per_gather).toBe(before);
    } finally {
      await pool.end();
    }
  });
});

describe('streaming discipline', () => {
  it('a consumer that stops early releases the cursor and the connection at once', async () => {
    const pool = t.ctx.pool;
    const q: FeatureQuery = { layer: parcels };
    const pids = new Set<number>();
    const onAcquire = (c: { processID?: number }) => pids.add(c.processID!);
    pool.on('acquire', onAcquire as never);
    const s = await openFeatureStream(pool, {
      queries: [q],
      writer: new GeoJsonWriter(),
      info: { numberMatched: 'unknown', timeStamp: '', links: {}, layers: [parcels], outputEpsg: 2154 },
      batchSize: 200,
    });
    let got = 0;
    for await (const c of s) {
      got += c.length;
      if (got > 200_000) break; // for-await break destroys the stream
    }
    expect(got).toBeGreaterThan(200_000);
    await expect.poll(() => pool.idleCount === pool.totalCount && pool.waitingCount === 0, { timeout: 5000 }).toBe(true);
    // the connection is usable again and holds no open portal
    pool.off('acquire', onAcquire as never);
    expect(pids.size).toBe(1);
    // seen from a separate session, the backend that served the stream is idle (no open portal or transaction)
    await expectBackendsIdle(pids);
  });

  it('the whole parcels table streams completely', async () => {
    const { text, matched } = await run([{ layer: parcels, outputEpsg: 4326 }], new NdjsonWriter());
    const lines = text.split('\n').filter(Boolean);
    expect(lines.length).toBe(matched);
    expect(new Set(lines.map((l) => JSON.parse(l).id)).size).toBe(20000);
  });
});
