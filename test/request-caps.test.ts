/**
 * Small requests that would ask for huge work are refused with a 400 and a locator before any
 * work: XML elements, attributes and depth (a linear pre-scan before the parser), queries per WFS
 * request, layers per WMS map.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DEFAULT_XML_LIMITS, parseXml, prescanXml, XmlLimitError, type XmlLimits } from '../src/ows/xmldom.js';
import { validateConfig, ConfigError } from '../src/config/index.js';
import { makeTestApp, type TestApp } from './helpers/app.js';

const lim = (o: Partial<XmlLimits>): XmlLimits => ({ ...DEFAULT_XML_LIMITS, ...o });

function limitOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof XmlLimitError) return e.limit;
    throw e;
  }
  return undefined;
}

describe('XML pre-scan', () => {
  it('counts elements, attributes and depth as the parser sees them', () => {
    const doc = `<?xml version="1.0"?><!-- <x a="1"> --><a xmlns="urn:x" b = "1" c='>' d="<e f='2'>"><![CDATA[<g h="3"/>]]><e/><e k="1"/></a>`;
    // 3 elements (a, e, e), 5 attributes (xmlns, b, c, d, k), depth 2
    expect(limitOf(() => prescanXml(doc, lim({ maxElements: 3, maxAttributes: 5, maxDepth: 2 })))).toBeUndefined();
    expect(limitOf(() => prescanXml(doc, lim({ maxElements: 2 })))).toBe('maxElements');
    expect(limitOf(() => prescanXml(doc, lim({ maxAttributes: 4 })))).toBe('maxAttributes');
    expect(limitOf(() => prescanXml(doc, lim({ maxDepth: 1 })))).toBe('maxDepth');
    expect(parseXml(doc).children).toHaveLength(2);
  });

  it('counts attributes without values (which the parser accepts) and bounds them per element', () => {
    const bare = `<a ${Array.from({ length: 300 }, (_, i) => `x${i}`).join(' ')}/>`;
    expect(limitOf(() => prescanXml(bare, lim({ maxAttributes: 299 })))).toBe('maxAttributes');
    // 300 on one element is over the per-element bound whatever the total
    expect(limitOf(() => prescanXml(bare, lim({ maxAttributes: 100_000 })))).toBe('maxAttributes');
    const spread = `<r>${'<e a="1" b="2"/>'.repeat(200)}</r>`;
    expect(limitOf(() => prescanXml(spread, lim({ maxAttributes: 400 })))).toBeUndefined();
    expect(limitOf(() => prescanXml(spread, lim({ maxAttributes: 399 })))).toBe('maxAttributes');
  });

  it('refuses the documents of the probe (150,000 attributes, 70,000 queries, deep nesting) by default', () => {
    const attrs = `<a ${Array.from({ length: 150_000 }, (_, i) => `a${i}="1"`).join(' ')}/>`;
    expect(() => parseXml(attrs)).toThrow(XmlLimitError);
    const queries = `<GetFeature xmlns="http://www.opengis.net/wfs/2.0">${'<Query typeNames="a"/>'.repeat(70_000)}</GetFeature>`;
    expect(() => parseXml(queries)).toThrow(/more than 10000 elements/);
    const deep = `${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}`;
    expect(() => parseXml(deep)).toThrow(/nested more than 64 deep/);
    // documents this server fetches itself (harvesting) are bounded by bytes and depth only
    expect(parseXml(queries, 64 * 1024 * 1024).children).toHaveLength(70_000);
    expect(() => parseXml(deep, 64 * 1024 * 1024)).toThrow(/nested more than 256 deep/);
  });

  it('the limits are configuration, checked by the schema', () => {
    const c = validateConfig({
      limits: { maxXmlElements: 500, maxXmlAttributes: 800, maxXmlDepth: 20, maxQueriesPerRequest: 3, maxLayersPerMap: 7 },
    });
    expect(c.limits).toMatchObject({
      maxXmlElements: 500,
      maxXmlAttributes: 800,
      maxXmlDepth: 20,
      maxQueriesPerRequest: 3,
      maxLayersPerMap: 7,
    });
    const d = validateConfig({});
    expect(d.limits).toMatchObject({
      maxXmlElements: 10000,
      maxXmlAttributes: 20000,
      maxXmlDepth: 64,
      maxQueriesPerRequest: 50,
      maxLayersPerMap: 100,
    });
    expect(() => validateConfig({ limits: { maxXmlDepth: 0 } })).toThrow(ConfigError);
    expect(() => validateConfig({ limits: { maxLayersPerMap: 'many' } })).toThrow(ConfigError);
  });
});

describe('caps over HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({
      limits: { maxLayersPerMap: 5, maxQueriesPerRequest: 4, maxXmlElements: 400 },
      layers: [{ table: 'public.communes' }, { table: 'public.roads' }, { table: 'public.pois' }],
      layerGroups: [{ name: 'base', layers: ['communes', 'roads', 'pois'] }],
    });
  });
  afterAll(async () => t?.close());

  const post = (url: string, payload: string) => t.app.inject({ method: 'POST', url, headers: { 'content-type': 'text/xml' }, payload });
  const wfsPost = (queries: string) =>
    `<GetFeature xmlns="http://www.opengis.net/wfs/2.0" service="WFS" version="2.0.0" count="1" outputFormat="application/json">${queries}</GetFeature>`;

  function expectException(r: { statusCode: number; body: string }, code: string, locator: string): void {
    expect(r.statusCode, r.body).toBe(400);
    expect(r.body).toContain(code);
    expect(r.body).toMatch(new RegExp(`locator="${locator}"|\\(locator: ${locator}\\)`));
  }

  it('WFS: an XML body over the element limit, queries over the per-request limit (XML and KVP)', async () => {
    const probe = await post('/wfs', wfsPost('<Query typeNames="communes"/>'.repeat(70_000).slice(0, 1_900_000)));
    expectException(probe, 'OperationParsingFailed', 'request');
    expect(probe.body).toContain('more than 400 elements');
    expectException(await post('/wfs', wfsPost('<Query typeNames="communes"/>'.repeat(5))), 'InvalidParameterValue', 'Query');
    expect((await post('/wfs', wfsPost('<Query typeNames="communes"/>'.repeat(5)))).body).toContain('at most 4');
    // one Query naming many types is one query per type
    expectException(await post('/wfs', wfsPost(`<Query typeNames="${'communes '.repeat(5)}"/>`)), 'InvalidParameterValue', 'Query');
    const kvp = `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&COUNT=1&OUTPUTFORMAT=application/json&TYPENAMES=`;
    expectException(await t.app.inject({ url: kvp + Array(5).fill('communes').join(',') }), 'InvalidParameterValue', 'typeNames');
    expectException(await t.app.inject({ url: kvp + '(communes)'.repeat(5) }), 'InvalidParameterValue', 'typeNames');
    // resource identifiers are bind parameters: a form POST may not carry 100,000 of them
    const ids = await t.app.inject({
      method: 'POST',
      url: '/wfs',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes&RESOURCEID=${Array.from({ length: 100_000 }, (_, i) => `communes.${i}`).join(',')}`,
    });
    expectException(ids, 'InvalidParameterValue', 'resourceId');
    // within the limits, served
    const ok = await post('/wfs', wfsPost('<Query typeNames="communes"/><Query typeNames="roads"/>'));
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().features.length).toBeGreaterThan(0);
    expect((await t.app.inject({ url: kvp + 'communes,roads,pois,communes' })).statusCode).toBe(200);
  });

  it('XML attributes and depth in a POST body; elements in a KVP FILTER', async () => {
    const attrs = `<GetFeature xmlns="http://www.opengis.net/wfs/2.0" service="WFS" version="2.0.0" ${Array.from({ length: 150_000 }, (_, i) => `a${i}="1"`).join(' ')}/>`;
    const a = await post('/wfs', attrs);
    expectException(a, 'OperationParsingFailed', 'request');
    expect(a.body).toMatch(/attributes/);
    const deep = wfsPost(`<Query typeNames="communes">${'<Filter>'.repeat(80)}${'</Filter>'.repeat(80)}</Query>`);
    const d = await post('/wfs', deep);
    expectException(d, 'OperationParsingFailed', 'request');
    expect(d.body).toContain('nested more than 64 deep');
    const filter = `<Filter xmlns="http://www.opengis.net/fes/2.0"><Or>${'<PropertyIsEqualTo><ValueReference>nom</ValueReference><Literal>x</Literal></PropertyIsEqualTo>'.repeat(150)}</Or></Filter>`;
    const f = await t.app.inject({
      method: 'POST',
      url: '/wfs',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        SERVICE: 'WFS',
        VERSION: '2.0.0',
        REQUEST: 'GetFeature',
        TYPENAMES: 'communes',
        FILTER: filter,
      }).toString(),
    });
    expectException(f, 'OperationParsingFailed', 'filter');
    expect(f.body).toContain('more than 400 elements');
  });

  it('WMS: LAYERS, groups expanded, QUERY_LAYERS and SLD_BODY NamedLayers over the per-map limit', async () => {
    const map = (layers: string) =>
      `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=${layers}&STYLES=&CRS=EPSG:2154&BBOX=700000,6700000,800000,6800000&WIDTH=32&HEIGHT=32&FORMAT=image/png`;
    const many = await t.app.inject({ url: map(Array(2000).fill('communes').join(',')) });
    expectException(many, 'InvalidParameterValue', 'layers');
    expect(many.body).toContain('names 2000 layers');
    expect(many.body).toContain('at most 5');
    // a group counts its members: 3 + 3 > 5
    expectException(await t.app.inject({ url: map('base,base') }), 'InvalidParameterValue', 'layers');
    expect((await t.app.inject({ url: map('base,communes,roads') })).statusCode).toBe(200);
    const info = `${map('communes').replace('GetMap', 'GetFeatureInfo')}&INFO_FORMAT=application/json&I=1&J=1&QUERY_LAYERS=${Array(6).fill('communes').join(',')}`;
    expectException(await t.app.inject({ url: info }), 'InvalidParameterValue', 'query_layers');
    const sld = `<StyledLayerDescriptor xmlns="http://www.opengis.net/sld" version="1.0.0">${'<NamedLayer><Name>communes</Name></NamedLayer>'.repeat(6)}</StyledLayerDescriptor>`;
    const s = await t.app.inject({ url: `${map('communes')}&SLD_BODY=${encodeURIComponent(sld)}` });
    expectException(s, 'InvalidParameterValue', 'sld_body');
  });
});
