/**
 * One error model, seen from clients over the real PostGIS: a client's mistake is a 400 in the
 * protocol's own form (never a 500), the same tile case answers the same status on every tile
 * front door, every admin route is behind one check, and requests that never reach a route
 * (over-long URL, slow body) still get the protocol's answer.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import net from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import { makeTestApp, type TestApp, basic, testUsers } from './helpers/app.js';

const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true });

let t: TestApp;

beforeAll(async () => {
  t = await makeTestApp({
    security: {
      users: testUsers(),
    },
    server: { requestTimeoutMs: 1000 },
  });
});
afterAll(async () => {
  await t?.close();
});

/** The OWS exception of a report (OWS 1.0/1.1 or WMS ServiceExceptionReport). */
function owsException(body: string): { code?: string; locator?: string; text: string } {
  const d = parser.parse(body.replace(/<!DOCTYPE[^>]*>/, ''));
  if (d.ExceptionReport) {
    const e = d.ExceptionReport.Exception;
    return { code: e['@_exceptionCode'], locator: e['@_locator'], text: String(e.ExceptionText) };
  }
  const e = d.ServiceExceptionReport.ServiceException;
  return { code: e['@_code'], locator: e['@_locator'], text: String(e['#text'] ?? e) };
}

async function expectOws(url: string, status: number, code: string, locator?: string) {
  const r = await t.app.inject({ url });
  expect(r.statusCode, `${url}\n${r.body}`).toBe(status);
  const e = owsException(r.body);
  expect(e.code, r.body).toBe(code);
  if (locator) expect(e.locator?.toLowerCase(), r.body).toBe(locator.toLowerCase());
  return e;
}

async function expectProblem(url: string, status: number, parameter?: string) {
  const r = await t.app.inject({ url });
  expect(r.statusCode, `${url}\n${r.body}`).toBe(status);
  expect(r.headers['content-type']).toContain('application/problem+json');
  const p = JSON.parse(r.body);
  expect(p.status).toBe(status);
  if (parameter) expect(p.parameter, r.body).toBe(parameter);
  return p;
}

const fesEnvelope = (srs: string, lower: string, upper: string) =>
  encodeURIComponent(
    `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2"><fes:BBOX><gml:Envelope srsName="${srs}"><gml:lowerCorner>${lower}</gml:lowerCorner><gml:upperCorner>${upper}</gml:upperCorner></gml:Envelope></fes:BBOX></fes:Filter>`,
  );

describe('a client mistake is a 400, never a 500 (issue 15 item 6)', () => {
  const wfs20 = '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=2';
  it.each([
    ['GML 3.2', `${wfs20}&BBOX=1,2,3,4,urn:ogc:def:crs:EPSG::999999`],
    ['GeoJSON', `${wfs20}&BBOX=1,2,3,4,EPSG:999999&OUTPUTFORMAT=application/json`],
    ['CSV', `${wfs20}&BBOX=1,2,3,4,EPSG:999999&OUTPUTFORMAT=csv`],
    ['hits', `${wfs20}&BBOX=1,2,3,4,EPSG:999999&RESULTTYPE=hits`],
    [
      'GetPropertyValue',
      '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetPropertyValue&TYPENAMES=pois&VALUEREFERENCE=nom&BBOX=1,2,3,4,EPSG:999999',
    ],
  ])('WFS 2.0 %s: BBOX in an unknown CRS', async (_n, url) => {
    await expectOws(url, 400, 'InvalidParameterValue', 'bbox');
  });

  it('WFS 1.1: BBOX in an unknown CRS, and latitudes beyond 90° in EPSG:4326', async () => {
    await expectOws(
      '/wfs?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=pois&MAXFEATURES=2&BBOX=1,2,3,4,EPSG:999999',
      400,
      'InvalidParameterValue',
      'bbox',
    );
    await expectOws(
      '/wfs?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=pois&MAXFEATURES=2&BBOX=100,100,200,200,urn:ogc:def:crs:EPSG::4326',
      400,
      'InvalidParameterValue',
      'bbox',
    );
  });

  it('WFS: a FES geometry in an unknown CRS, or outside the range of a geographic CRS', async () => {
    await expectOws(`${wfs20}&FILTER=${fesEnvelope('EPSG:999999', '1 2', '3 4')}`, 400, 'InvalidParameterValue', 'filter');
    await expectOws(
      `${wfs20}&FILTER=${fesEnvelope('urn:ogc:def:crs:EPSG::4326', '100 100', '200 200')}`,
      400,
      'InvalidParameterValue',
      'filter',
    );
    await expectOws(
      `${wfs20}&OUTPUTFORMAT=application/json&FILTER=${fesEnvelope('EPSG:999999', '1 2', '3 4')}`,
      400,
      'InvalidParameterValue',
      'filter',
    );
  });

  it('WFS 1.1 POST: a Filter 1.1 geometry in a CRS PostGIS does not know', async () => {
    const body = `<wfs:GetFeature service="WFS" version="1.1.0" maxFeatures="2" xmlns:wfs="http://www.opengis.net/wfs" xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="http://www.opengis.net/gml">
      <wfs:Query typeName="pois"><ogc:Filter><ogc:BBOX><ogc:PropertyName>geom</ogc:PropertyName>
      <gml:Envelope srsName="EPSG:12345"><gml:lowerCorner>1 2</gml:lowerCorner><gml:upperCorner>3 4</gml:upperCorner></gml:Envelope>
      </ogc:BBOX></ogc:Filter></wfs:Query></wfs:GetFeature>`;
    const r = await t.app.inject({ method: 'POST', url: '/wfs', headers: { 'content-type': 'application/xml' }, payload: body });
    expect(r.statusCode, r.body).toBe(400);
    const e = owsException(r.body);
    expect(e.code).toBe('InvalidParameterValue');
    expect(e.locator).toBe('filter');
  });

  it('WFS: COUNT must be a non-negative integer that fits', async () => {
    await expectOws(`${wfs20}&COUNT=1234567890123456789012345678901234567890`, 400, 'InvalidParameterValue', 'count');
    await expectOws(`${wfs20}&COUNT=-1`, 400, 'InvalidParameterValue', 'count');
    await expectOws(`${wfs20}&STARTINDEX=99999999999999999999`, 400, 'InvalidParameterValue', 'startindex');
  });

  it('WMS: a BBOX with five values is refused', async () => {
    await expectOws(
      '/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=pois&STYLES=&CRS=EPSG:2154&BBOX=900000,6700000,1000000,6800000,5&WIDTH=10&HEIGHT=10&FORMAT=image/png',
      400,
      'InvalidParameterValue',
      'bbox',
    );
  });

  it('OGC API: bbox-crs coordinates out of the CRS domain, CQL2 geometries likewise', async () => {
    const epsg4326 = encodeURIComponent('http://www.opengis.net/def/crs/EPSG/0/4326');
    await expectProblem(`/collections/pois/items?bbox=100,100,200,200&bbox-crs=${epsg4326}`, 400, 'bbox');
    await expectProblem(`/collections/pois/items?bbox=1,95,2,96`, 400, 'bbox');
    await expectProblem(
      `/collections/pois/items?filter=${encodeURIComponent('S_INTERSECTS(geom, POINT(1000 1000))')}&filter-crs=${epsg4326}`,
      400,
      'filter',
    );
    await expectProblem(`/collections/pois/items?filter=${encodeURIComponent('S_INTERSECTS(geom, POINT(1000 1000))')}`, 400, 'filter');
    await expectProblem(
      `/collections/pois/items?filter-lang=cql2-json&filter=${encodeURIComponent(JSON.stringify({ op: 's_intersects', args: [{ property: 'geom' }, { type: 'Point', coordinates: [10, 200] }] }))}`,
      400,
      'filter',
    );
  });

  it('OGC API: a limit above the maximum (even forty digits) is clamped, as the standard says', async () => {
    const r = await t.app.inject({ url: '/collections/pois/items?limit=1234567890123456789012345678901234567890' });
    expect(r.statusCode).toBe(200);
    const fc = JSON.parse(r.body);
    const total = Number((await t.ctx.pool.query('SELECT count(*) AS n FROM public.pois')).rows[0].n);
    expect(fc.numberReturned).toBe(Math.min(total, t.ctx.config.limits.itemsMaxLimit));
    await expectProblem('/collections/pois/items?limit=-3', 400, 'limit');
  });

  it('downloads: a clip out of its CRS domain, or in an unknown CRS, names the parameter', async () => {
    await expectProblem(`/downloads/pois.geojson?clip=${encodeURIComponent('POLYGON((100 100, 200 100, 200 200, 100 100))')}`, 400, 'clip');
    await expectProblem(
      `/downloads/pois.geojson?clip=${encodeURIComponent('POLYGON((1 1, 2 1, 2 2, 1 1))')}&clip-crs=EPSG:999999`,
      400,
      'clip-crs',
    );
    await expectProblem('/downloads/pois.geojson?bbox=1,2,3,4&bbox-crs=EPSG:999999', 400, 'bbox-crs');
    await expectProblem('/downloads/pois.geojson?bbox=1,95,2,96', 400, 'bbox');
  });
});

describe('tiles: the same case, the same status on every front door', () => {
  it('a tile outside the matrix: 404 on XYZ, WMTS RESTful and OGC API – Tiles; 400 TileOutOfRange in WMTS KVP', async () => {
    const xyz = await expectProblem('/tiles/pois/3/100/100.png', 404);
    expect(xyz.code).toBe('TileOutOfRange');
    await expectProblem('/collections/pois/map/tiles/WebMercatorQuad/3/100/100', 404);
    await expectProblem('/collections/pois/tiles/WebMercatorQuad/3/100/100', 404);
    const rest = await t.app.inject({ url: '/wmts/1.0.0/pois/default/WebMercatorQuad/3/100/100.png' });
    expect(rest.statusCode).toBe(404);
    expect(owsException(rest.body).code).toBe('TileOutOfRange');
    await expectOws(
      '/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=pois&STYLE=default&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=3&TILEROW=100&TILECOL=100&FORMAT=image/png',
      400,
      'TileOutOfRange',
      'TileRow',
    );
  });
  it('an unknown style: 400 everywhere', async () => {
    await expectProblem('/tiles/pois/3/4/2.png?style=nope', 400);
    await expectProblem('/collections/pois/map/tiles/WebMercatorQuad/3/2/4?style=nope', 400);
  });
});

describe('one admin check (issue 15 item 10)', () => {
  const routes: Array<[string, string]> = [
    ['POST', '/admin/reload'],
    ['POST', '/admin/tiles/purge'],
    ['POST', '/admin/tiles/seed'],
    ['GET', '/admin/overviews'],
    ['POST', '/catalog/harvest'],
  ];
  it.each(routes)('%s %s: 401 with a challenge for anonymous, 403 for a non-admin, through for an admin', async (method, url) => {
    const anon = await t.app.inject({ method: method as 'GET' | 'POST', url });
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/Basic realm="geodata"/);
    expect(anon.headers['www-authenticate']).toMatch(/Bearer/);
    expect(anon.headers['content-type']).toContain('application/problem+json');
    const agent = await t.app.inject({ method: method as 'GET' | 'POST', url, headers: { authorization: basic('agent', 'pw-agent') } });
    expect(agent.statusCode).toBe(403);
    expect(agent.headers['www-authenticate']).toBeUndefined();
    const root = await t.app.inject({
      method: method as 'GET' | 'POST',
      url,
      headers: { authorization: basic('root', 'pw-root'), 'content-type': 'application/json' },
      payload: method === 'POST' ? '{}' : undefined,
    });
    expect([200, 400, 404]).toContain(root.statusCode); // past the check: the route's own answer
  });
});

/** Raw HTTP on a real socket: what Node itself refuses never reaches a route. */
function rawRequest(port: number, head: string, bodyChunks: string[] = [], pauseMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString('utf8')));
    s.on('close', () => resolve(out));
    s.on('error', (e) => (out ? resolve(out) : reject(e)));
    s.write(head);
    let i = 0;
    const next = () => {
      if (i >= bodyChunks.length || s.destroyed) return;
      s.write(bodyChunks[i++]);
      setTimeout(next, pauseMs);
    };
    setTimeout(next, pauseMs);
  });
}

describe('requests that never reach a route', () => {
  let port = 0;
  beforeAll(async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as net.AddressInfo).port;
  });

  it('an over-long URL on an OWS path gets an OWS exception report, elsewhere a problem', async () => {
    const long = 'x'.repeat(40_000);
    const ows = await rawRequest(port, `GET /wfs?SERVICE=WFS&REQUEST=GetFeature&TYPENAMES=${long} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(ows).toMatch(/^HTTP\/1\.1 414 /);
    expect(ows).toContain('ExceptionReport');
    expect(ows).toContain('exceptionCode="InvalidParameterValue"');
    const api = await rawRequest(port, `GET /collections/pois/items?q=${long} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(api).toMatch(/^HTTP\/1\.1 414 /);
    expect(api).toContain('application/problem+json');
  });

  it('a body that trickles in slower than server.requestTimeoutMs is cut off with 408', async () => {
    const body = '<GetCapabilities service="WFS"/>'.padEnd(400, ' ');
    const chunks = body.match(/.{1,10}/g)!;
    const started = Date.now();
    const r = await rawRequest(
      port,
      `POST /wfs HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\n\r\n`,
      chunks,
      200,
    );
    expect(r).toMatch(/^HTTP\/1\.1 408 /);
    expect(r).toContain('ExceptionReport');
    // cut off long before the 8 s the whole body would have taken
    expect(Date.now() - started).toBeLessThan(chunks.length * 200);
  });
});
