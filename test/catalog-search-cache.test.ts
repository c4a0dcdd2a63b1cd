/**
 * The catalogue's search cache (src/catalog/search-cache.ts) never serves a stale answer: the same
 * GetRecords and DCAT page, asked again after a CSW-T Insert / Update / Delete, after a CSW Harvest,
 * after a change made by another process (another application on the same database, with a cache
 * of its own) and after a change written straight to the store, show the change at once. A repeated
 * request is answered from the cache with the same bytes (the search status's time stamp aside).
 */
import http from 'node:http';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { startSourceServer, testRecord, type SourceRoute } from './helpers/catalog.js';
import { ensureCatalogReady } from '../src/catalog/sync.js';
import { replaceSource } from '../src/catalog/store.js';

const S = 'geodata_catalog_cachetest';
const CSW = 'http://www.opengis.net/cat/csw/2.0.2';
const TOKEN = 'csw-cache-test-token';
let a: TestApp;
let b: TestApp;
let server: http.Server;
let base: string;
const routes = new Map<string, SourceRoute>();

const config = { catalog: { schema: S, deriveFromLayers: false }, service: { onlineResource: 'http://geo.test' } };

beforeAll(async () => {
  process.env.GEODATA_ADMIN_TOKEN = TOKEN;
  a = await makeTestApp(config);
  b = await makeTestApp(config);
  await ensureCatalogReady(a.ctx);
  await ensureCatalogReady(b.ctx);
  await a.ctx.pool.query(`DELETE FROM ${S}.records`);
  ({ server, base } = await startSourceServer(routes));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await a?.ctx.pool.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`).catch(() => undefined);
  await a?.close();
  await b?.close();
});

const dcRecord = (id: string, title: string) =>
  `<csw:Record xmlns:csw="${CSW}" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dct="http://purl.org/dc/terms/"><dc:identifier>${id}</dc:identifier><dc:title>${title}</dc:title><dc:type>dataset</dc:type><dct:abstract>Zanzibar</dct:abstract></csw:Record>`;

async function tx(app: TestApp, body: string) {
  const r = await app.app.inject({
    method: 'POST',
    url: '/csw',
    headers: { 'content-type': 'application/xml', authorization: `Bearer ${TOKEN}` },
    payload: `<csw:Transaction xmlns:csw="${CSW}" xmlns:ogc="http://www.opengis.net/ogc" xmlns:dc="http://purl.org/dc/elements/1.1/" service="CSW" version="2.0.2">${body}</csw:Transaction>`,
  });
  expect(r.statusCode, r.body).toBe(200);
}

const GETRECORDS = `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&ELEMENTSETNAME=full&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent("AnyText LIKE '%zanzib%'")}`;

/** The same GetRecords (AnyText LIKE) each time: identifier → title of the records returned. */
async function search(app: TestApp): Promise<{ matched: number; titles: Record<string, string>; body: string }> {
  const r = await app.app.inject(GETRECORDS);
  expect(r.statusCode, r.body).toBe(200);
  const sr = parseXml(r.body).children.find((c) => c.name === 'SearchResults')!;
  const text = (rec: XmlElement, name: string) => rec.children.find((c) => c.name === name)?.text ?? '';
  return {
    matched: Number(sr.attrs.numberOfRecordsMatched),
    titles: Object.fromEntries(sr.children.map((rec) => [text(rec, 'identifier'), text(rec, 'title')])),
    body: r.body,
  };
}

/** Dataset identifiers of the first DCAT page (Turtle). */
async function dcatIds(app: TestApp): Promise<string[]> {
  const r = await app.app.inject('/catalog/dcat.ttl');
  expect(r.statusCode, r.body).toBe(200);
  return [...new Set([...r.body.matchAll(/dct:identifier "([^"]+)"/g)].map((m) => m[1]))].sort();
}

describe('catalogue search cache', () => {
  it('answers a repeated request from the cache, byte for byte', async () => {
    await tx(a, `<csw:Insert>${dcRecord('cache-1', 'Un')}</csw:Insert>`);
    const first = await search(a);
    const hits = a.ctx.runtime.catalogCache.stats.hits;
    const again = await search(a);
    expect(a.ctx.runtime.catalogCache.stats.hits).toBe(hits + 1);
    const stamp = (s: string) => s.replace(/timestamp="[^"]*"/, 'timestamp=""');
    expect(stamp(again.body)).toBe(stamp(first.body));
    expect(first.titles).toEqual({ 'cache-1': 'Un' });
  });

  it('CSW-T Insert, Update and Delete are seen by the next identical GetRecords and DCAT page', async () => {
    expect((await search(a)).matched).toBe(1);
    expect(await dcatIds(a)).toEqual(['cache-1']);
    await tx(a, `<csw:Insert>${dcRecord('cache-2', 'Deux')}</csw:Insert>`);
    expect((await search(a)).titles).toEqual({ 'cache-1': 'Un', 'cache-2': 'Deux' });
    expect(await dcatIds(a)).toEqual(['cache-1', 'cache-2']);
    await tx(a, `<csw:Update>${dcRecord('cache-2', 'Deux bis')}</csw:Update>`);
    expect((await search(a)).titles).toEqual({ 'cache-1': 'Un', 'cache-2': 'Deux bis' });
    await tx(
      a,
      `<csw:Delete typeName="csw:Record"><csw:Constraint version="1.1.0"><ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>dc:identifier</ogc:PropertyName><ogc:Literal>cache-2</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter></csw:Constraint></csw:Delete>`,
    );
    expect((await search(a)).titles).toEqual({ 'cache-1': 'Un' });
    expect(await dcatIds(a)).toEqual(['cache-1']);
  });

  it('a change made by another process (its own cache) is seen at once', async () => {
    expect((await search(a)).matched).toBe(1);
    expect((await search(b)).matched).toBe(1);
    await tx(b, `<csw:Insert>${dcRecord('cache-3', 'Trois')}</csw:Insert>`);
    expect((await search(a)).titles).toEqual({ 'cache-1': 'Un', 'cache-3': 'Trois' });
    await tx(a, `<csw:Update>${dcRecord('cache-3', 'Trois bis')}</csw:Update>`);
    expect((await search(b)).titles).toEqual({ 'cache-1': 'Un', 'cache-3': 'Trois bis' });
  });

  it('a CSW Harvest and a write straight to the store are seen at once', async () => {
    expect((await search(a)).matched).toBe(2);
    routes.set('/record.xml', () => ({ type: 'application/xml', body: dcRecord('cache-h', 'Moissonné') }));
    const h = await a.app.inject({
      method: 'POST',
      url: '/csw',
      headers: { 'content-type': 'application/xml', authorization: `Bearer ${TOKEN}` },
      payload: `<csw:Harvest xmlns:csw="${CSW}" service="CSW" version="2.0.2"><csw:Source>${base}/record.xml</csw:Source><csw:ResourceType>${CSW}</csw:ResourceType></csw:Harvest>`,
    });
    expect(h.statusCode, h.body).toBe(200);
    expect((await search(a)).titles).toMatchObject({ 'cache-h': 'Moissonné' });
    await replaceSource(a.ctx.pool, 'harvest:direct', [testRecord('cache-d', { title: 'Direct', abstract: 'zanzibar' })], S);
    const after = await search(b);
    expect(after.titles).toMatchObject({ 'cache-1': 'Un', 'cache-3': 'Trois bis', 'cache-h': 'Moissonné', 'cache-d': 'Direct' });
    expect(after.matched).toBe(4);
  });
});
