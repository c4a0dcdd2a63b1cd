/**
 * Hostile input through every parameter of every front door: each answered 4xx (or, where the
 * input is a legitimate value such as a literal, a normal answer), never 5xx, nothing executed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import pg from 'pg';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';

const INJECTIONS = [
  `x'; DROP TABLE canary_sec; --`,
  `x"; DROP TABLE canary_sec; --`,
  `1) OR 1=1; DROP TABLE canary_sec; --`,
  `parcels;DELETE FROM canary_sec`,
  `$$; DROP TABLE canary_sec; $$`,
  `nom" FROM canary_sec; --`,
  `\\'; SELECT pg_sleep(10); --`,
  `../../../../etc/passwd`,
  `%2e%2e%2f%2e%2e%2fetc%2fpasswd`,
  `<script>alert(1)</script>`,
  `\u0000`,
  `'`.repeat(5000),
];

describe('injection attempts through every parameter', () => {
  let t: TestApp;
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
    await pool.query(
      'DROP TABLE IF EXISTS public.canary_sec; CREATE TABLE public.canary_sec (v int); INSERT INTO public.canary_sec VALUES (42)',
    );
    t = await makeTestApp({
      layers: [{ table: 'public.communes' }, { table: 'public.parcels' }, { table: 'public.roads' }, { table: 'public.pois' }],
    });
  });
  afterAll(async () => {
    await t?.close();
    await pool.query('DROP TABLE IF EXISTS public.canary_sec');
    await pool.end();
  });

  const wfs = (p: Record<string, string>) =>
    `/wfs?${new URLSearchParams({ SERVICE: 'WFS', VERSION: '2.0.0', REQUEST: 'GetFeature', TYPENAMES: 'parcels', COUNT: '2', OUTPUTFORMAT: 'application/json', ...p })}`;
  const wms = (p: Record<string, string>) =>
    `/wms?${new URLSearchParams({ SERVICE: 'WMS', VERSION: '1.3.0', REQUEST: 'GetMap', LAYERS: 'parcels', STYLES: '', CRS: 'EPSG:2154', BBOX: '900000,6800000,901000,6801000', WIDTH: '64', HEIGHT: '64', FORMAT: 'image/png', ...p })}`;
  const oapi = (p: Record<string, string>, coll = 'parcels') =>
    `/collections/${encodeURIComponent(coll)}/items?${new URLSearchParams({ limit: '2', ...p })}`;
  const csw = (p: Record<string, string>) =>
    `/csw?${new URLSearchParams({ SERVICE: 'CSW', VERSION: '2.0.2', REQUEST: 'GetRecords', typeNames: 'csw:Record', resultType: 'results', ...p })}`;

  function urlsFor(x: string): string[] {
    return [
      wfs({ TYPENAMES: x }),
      wfs({ PROPERTYNAME: x }),
      wfs({ SORTBY: x }),
      wfs({ SORTBY: `${x} DESC` }),
      wfs({ SRSNAME: x }),
      wfs({ BBOX: x }),
      wfs({ OUTPUTFORMAT: x }),
      wfs({ RESOURCEID: x }),
      wfs({ COUNT: x }),
      wfs({ STARTINDEX: x }),
      wfs({
        FILTER: `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>${x}</fes:ValueReference><fes:Literal>1</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>`,
      }),
      wfs({
        FILTER: `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>insee</fes:ValueReference><fes:Literal>${x.replace(/[<&]/g, '')}</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>`,
      }),
      wfs({ FILTER: x }),
      wms({ LAYERS: x }),
      wms({ STYLES: x }),
      wms({ CRS: x }),
      wms({ BBOX: x }),
      wms({ FORMAT: x }),
      wms({ BGCOLOR: x }),
      wms({ WIDTH: x }),
      oapi({}, x),
      oapi({ filter: `nom = '${x.replace(/'/g, "''")}'` }),
      oapi({ filter: `${x} = 1` }),
      oapi({ filter: x }),
      oapi({ sortby: x }),
      oapi({ properties: x }),
      oapi({ crs: x }),
      oapi({ 'bbox-crs': x, bbox: '1,2,3,4' }),
      oapi({ bbox: x }),
      oapi({ [x.slice(0, 40)]: '1' }),
      oapi({ insee: x }),
      `/collections/parcels/items/${encodeURIComponent(x)}`,
      `/downloads/${encodeURIComponent(x)}.csv`,
      `/downloads/parcels.${encodeURIComponent(x)}`,
      `/downloads/parcels.csv?${new URLSearchParams({ clip: x })}`,
      `/downloads/parcels.csv?${new URLSearchParams({ clip: `communes:${x}` })}`,
      csw({
        constraintLanguage: 'CQL_TEXT',
        constraint_language_version: '1.1.0',
        constraint: `AnyText LIKE '%${x.replace(/'/g, "''")}%'`,
      }),
      csw({ constraintLanguage: 'CQL_TEXT', constraint_language_version: '1.1.0', constraint: x }),
      csw({ sortBy: x }),
      csw({ ElementName: x }),
      `/catalog?${new URLSearchParams({ q: x })}`,
      `/catalog?${new URLSearchParams({ sort: x })}`,
      `/usage?${new URLSearchParams({ layer: x })}`,
      `/${encodeURIComponent(x)}`,
      `/tiles/${encodeURIComponent(x)}/3/4/2.png`,
      `/tiles/parcels/${encodeURIComponent(x)}/4/2.png`,
      `/tiles/parcels/3/4/${encodeURIComponent(x)}.mvt`,
      `/wmts/1.0.0/${encodeURIComponent(x)}/default/WebMercatorQuad/3/2/4.png`,
      `/wmts/1.0.0/parcels/${encodeURIComponent(x)}/WebMercatorQuad/3/2/4.png`,
      `/wmts/1.0.0/parcels/default/${encodeURIComponent(x)}/3/2/4.png`,
      `/wmts?${new URLSearchParams({ SERVICE: 'WMTS', REQUEST: 'GetTile', VERSION: '1.0.0', LAYER: x, STYLE: 'default', TILEMATRIXSET: 'WebMercatorQuad', TILEMATRIX: '3', TILEROW: '2', TILECOL: '4', FORMAT: 'image/png' })}`,
      `/wmts?${new URLSearchParams({ SERVICE: 'WMTS', REQUEST: 'GetTile', VERSION: '1.0.0', LAYER: 'parcels', STYLE: 'default', TILEMATRIXSET: x, TILEMATRIX: '3', TILEROW: '2', TILECOL: '4', FORMAT: 'image/png' })}`,
      `/tileMatrixSets/${encodeURIComponent(x)}`,
      `/collections/parcels/tiles/${encodeURIComponent(x)}/3/2/4`,
    ];
  }

  it('path traversal in tile URLs reaches no file outside the cache', async () => {
    for (const url of [
      '/tiles/..%2F..%2F..%2Fetc%2Fpasswd/1/1/1.png',
      '/tiles/parcels/1/1/..%2F..%2F..%2F..%2Fetc%2Fpasswd.png',
      '/wmts/1.0.0/..%2F..%2Fetc/default/WebMercatorQuad/1/1/1.png',
      '/tiles/parcels/../../../etc/passwd',
    ]) {
      const r = await t.app.inject({ url });
      expect(r.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(r.statusCode, url).toBeLessThan(500);
      expect(r.body).not.toContain('root:x:0:0');
    }
  });

  it('no 5xx, nothing executed, no reflected markup in HTML', async () => {
    const failures: string[] = [];
    for (const x of INJECTIONS) {
      for (const url of urlsFor(x)) {
        const r = await t.app.inject({ url });
        if (r.statusCode >= 500) failures.push(`${r.statusCode} ${url.slice(0, 200)} → ${r.body.slice(0, 200)}`);
        if (String(r.headers['content-type'] ?? '').includes('text/html') && r.body.includes('<script>alert(1)</script>'))
          failures.push(`reflected script: ${url}`);
      }
    }
    expect(failures).toEqual([]);
    const canary = await pool.query('SELECT v FROM public.canary_sec');
    expect(canary.rows).toEqual([{ v: 42 }]);
    expect(Number((await pool.query('SELECT count(*) n FROM public.parcels')).rows[0].n)).toBeGreaterThan(0);
  }, 300_000);

  it('a literal is a value, never SQL: an injected string matches nothing and runs nothing', async () => {
    const r = await t.app.inject({ url: oapi({ filter: `nom = 'x''; DROP TABLE canary_sec; --'` }, 'communes') });
    expect(r.statusCode).toBe(200);
    expect(r.json().numberMatched).toBe(0);
    const w = await t.app.inject({
      url: wfs({
        TYPENAMES: 'communes',
        FILTER: `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>nom</fes:ValueReference><fes:Literal>x'); DROP TABLE canary_sec; --</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>`,
      }),
    });
    expect(w.statusCode).toBe(200);
    expect(w.json().features).toEqual([]);
    expect((await pool.query('SELECT v FROM public.canary_sec')).rows).toEqual([{ v: 42 }]);
  });

  it('an unknown property is refused by name, in each protocol', async () => {
    const w = await t.app.inject({ url: wfs({ PROPERTYNAME: 'nom"; DROP TABLE canary_sec; --' }) });
    expect(w.statusCode).toBe(400);
    expect(w.body).toContain('InvalidParameterValue');
    const o = await t.app.inject({ url: oapi({ filter: '"nope" = 1' }) });
    expect(o.statusCode).toBe(400);
    expect(o.json().detail).toMatch(/nope/);
  });

  it('XML bombs, external entities and oversize bodies are refused in POST requests of every service', async () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><GetFeature service="WFS" version="2.0.0">&lol2;</GetFeature>`;
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><GetRecords service="CSW" version="2.0.2">&x;</GetRecords>`;
    for (const path of ['/wfs', '/csw', '/wms', '/ows']) {
      for (const body of [bomb, xxe]) {
        const r = await t.app.inject({ method: 'POST', url: path, payload: body, headers: { 'content-type': 'application/xml' } });
        expect(r.statusCode, `${path}: ${r.body}`).toBe(400);
        expect(r.body).not.toContain('root:');
      }
    }
    const huge = `<GetFeature service="WFS" version="2.0.0">${'<a/>'.repeat(1_000_000)}</GetFeature>`;
    const r = await t.app.inject({ method: 'POST', url: '/wfs', payload: huge, headers: { 'content-type': 'application/xml' } });
    expect(r.statusCode).toBe(413);
  });
});
