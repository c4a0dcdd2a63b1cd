/**
 * Temporal filters in catalogue queries (CSW GetRecords): comparisons on the date queryables
 * (dct:modified, apiso:CreationDate/PublicationDate/RevisionDate, apiso:TempExtent_begin/_end), the
 * CQL2 temporal operators on them and on the temporal extent as an interval (apiso:TempExtent,
 * `time`), the legacy CQL forms (AFTER, BEFORE, DURING), FES During with a gml:TimePeriod, and
 * the refusals. Records of known dates in a catalogue schema of their own.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { testRecord } from './helpers/catalog.js';
import { migrateCatalog, replaceSource } from '../src/catalog/store.js';
import type { CatalogRecord } from '../src/catalog/model.js';

const S = 'geodata_catalog_temporaltest';
let t: TestApp;

const rec = (identifier: string, o: Partial<CatalogRecord>): CatalogRecord =>
  testRecord(identifier, { source: 'harvest:temporal', metadataModified: '2024-01-01T00:00:00.000Z', ...o });

beforeAll(async () => {
  t = await makeTestApp({ catalog: { schema: S, deriveFromLayers: false }, service: { onlineResource: 'http://geo.test' } });
  await migrateCatalog(t.ctx.pool, S);
  await t.ctx.pool.query(`DELETE FROM ${S}.records`);
  await replaceSource(
    t.ctx.pool,
    'harvest:temporal',
    [
      rec('A', { temporalStart: '2010-01-01', temporalEnd: '2012-12-31', modified: '2015-06-01' }),
      rec('B', { temporalStart: '2018-01-01', modified: '2020-03-04' }), // ongoing: no end
      rec('C', { modified: '2022-01-01', created: '2021-05-05', issued: '2021-06-01' }), // no temporal extent
      rec('D', { temporalStart: '2020-01-01', temporalEnd: '2020-12-31', modified: '2024-01-10' }),
    ],
    S,
  );
});
afterAll(async () => {
  await t?.ctx.pool.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`).catch(() => undefined);
  await t?.close();
});

function ids(x: XmlElement): string[] {
  const sr = x.children.find((c) => c.name === 'SearchResults');
  expect(sr, JSON.stringify(x).slice(0, 600)).toBeDefined();
  return sr!.children.map((r) => r.children.find((c) => c.name === 'identifier')!.text).sort();
}
async function cql(constraint: string, extra = '') {
  const r = await t.app.inject(
    `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&ELEMENTSETNAME=brief&MAXRECORDS=100&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent(constraint)}${extra}`,
  );
  return { status: r.statusCode, xml: parseXml(r.body) };
}
async function fes(filter: string) {
  const r = await t.app.inject({
    method: 'POST',
    url: '/csw',
    headers: { 'content-type': 'application/xml' },
    payload: `<csw:GetRecords xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="http://www.opengis.net/gml" service="CSW" version="2.0.2" resultType="results" maxRecords="100"><csw:Query typeNames="csw:Record"><csw:ElementSetName>brief</csw:ElementSetName><csw:Constraint version="1.1.0"><ogc:Filter>${filter}</ogc:Filter></csw:Constraint></csw:Query></csw:GetRecords>`,
  });
  return { status: r.statusCode, xml: parseXml(r.body) };
}

describe('temporal filters in GetRecords', () => {
  it('comparisons and BETWEEN on the date queryables', async () => {
    expect(ids((await cql("apiso:TempExtent_begin > '2015-01-01'")).xml)).toEqual(['B', 'D']);
    expect(ids((await cql("apiso:TempExtent_end <= '2012-12-31T00:00:00Z'")).xml)).toEqual(['A']);
    expect(ids((await cql("dct:modified BETWEEN '2015-01-01' AND '2021-01-01'")).xml)).toEqual(['A', 'B']);
    expect(ids((await cql("apiso:RevisionDate >= '2022-01-01'")).xml)).toEqual(['C', 'D']);
    expect(ids((await cql("apiso:CreationDate = '2021-05-05'")).xml)).toEqual(['C']);
    expect(ids((await cql("apiso:PublicationDate < '2022-01-01'")).xml)).toEqual(['C']);
  });

  it('CQL2 temporal operators on the temporal extent as an interval (open end = ongoing)', async () => {
    const cases: [string, string[]][] = [
      ["T_INTERSECTS(apiso:TempExtent, INTERVAL('2011-01-01', '2019-01-01'))", ['A', 'B']],
      ["T_INTERSECTS(time, INTERVAL('2030-01-01', '..'))", ['B']],
      ["T_BEFORE(apiso:TempExtent, DATE('2013-01-01'))", ['A']],
      ["T_AFTER(apiso:TempExtent, DATE('2017-12-31'))", ['B', 'D']],
      ["T_DURING(apiso:TempExtent, INTERVAL('2019-06-01', '2021-01-01'))", ['D']],
      ["T_DURING(apiso:TempExtent, INTERVAL('2019-06-01', '..'))", ['D']],
      ["T_CONTAINS(apiso:TempExtent, DATE('2020-06-01'))", ['B', 'D']],
      ["T_EQUALS(apiso:TempExtent, INTERVAL('2020-01-01', '2020-12-31'))", ['D']],
      ["T_DISJOINT(apiso:TempExtent, INTERVAL('2011-01-01', '2019-01-01'))", ['D']],
      ["T_STARTS(apiso:TempExtent, INTERVAL('2020-01-01', '2021-06-30'))", ['D']],
      ["T_OVERLAPS(apiso:TempExtent, INTERVAL('2012-01-01', '2014-01-01'))", ['A']],
      // two-valued logic: C has no extent, so the negation keeps it
      ["NOT T_INTERSECTS(apiso:TempExtent, INTERVAL('2011-01-01', '2019-01-01'))", ['C', 'D']],
    ];
    for (const [q, want] of cases) expect(ids((await cql(q)).xml), q).toEqual(want);
  });

  it('CQL2 temporal operators on instants (dct:modified, apiso:CreationDate, the extent bounds)', async () => {
    const cases: [string, string[]][] = [
      ["T_AFTER(dct:modified, DATE('2020-01-01'))", ['B', 'C', 'D']],
      ["T_BEFORE(Modified, TIMESTAMP('2020-03-04T00:00:00Z'))", ['A']],
      ["T_DURING(dct:modified, INTERVAL('2015-01-01', '2021-01-01'))", ['A', 'B']],
      ["T_INTERSECTS(apiso:CreationDate, DATE('2021-05-05'))", ['C']],
      ["T_AFTER(apiso:TempExtent_begin, DATE('2015-01-01')) AND T_BEFORE(apiso:TempExtent_end, DATE('2021-01-01'))", ['D']],
    ];
    for (const [q, want] of cases) expect(ids((await cql(q)).xml), q).toEqual(want);
  });

  it('legacy CQL (AFTER, BEFORE, DURING with bare ISO 8601 times) and FES During / PropertyIsGreaterThan on dates', async () => {
    expect(ids((await cql('dct:modified AFTER 2021-01-01T00:00:00Z')).xml)).toEqual(['C', 'D']);
    expect(ids((await cql('dct:modified BEFORE 2016-01-01')).xml)).toEqual(['A']);
    expect(ids((await cql('apiso:TempExtent DURING 2019-06-01T00:00:00Z/2021-01-01T00:00:00Z')).xml)).toEqual(['D']);
    const during = await fes(
      `<ogc:During><ogc:PropertyName>apiso:TempExtent</ogc:PropertyName><gml:TimePeriod><gml:beginPosition>2009-01-01</gml:beginPosition><gml:endPosition>2013-06-30</gml:endPosition></gml:TimePeriod></ogc:During>`,
    );
    expect(ids(during.xml)).toEqual(['A']);
    const gt = await fes(
      `<ogc:PropertyIsGreaterThan><ogc:PropertyName>apiso:TempExtent_begin</ogc:PropertyName><ogc:Literal>2019-12-31</ogc:Literal></ogc:PropertyIsGreaterThan>`,
    );
    expect(ids(gt.xml)).toEqual(['D']);
  });

  it('sorts by the temporal extent (its begin; records without one last)', async () => {
    const r = await t.app.inject(
      '/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&ELEMENTSETNAME=brief&SORTBY=apiso:TempExtent:D',
    );
    const sr = parseXml(r.body).children.find((c) => c.name === 'SearchResults')!;
    expect(sr.children.map((x) => x.children.find((c) => c.name === 'identifier')!.text)).toEqual(['D', 'B', 'A', 'C']);
  });

  it('refuses a temporal operator on a property that is not a date, and comparisons on the interval', async () => {
    for (const q of ["T_AFTER(dc:title, DATE('2020-01-01'))", "apiso:TempExtent = '2020-01-01'", "apiso:TempExtent LIKE '2020%'"]) {
      const r = await cql(q);
      expect(r.status, q).toBe(400);
      const e = r.xml.children[0];
      expect(e.attrs.exceptionCode, q).toBe('InvalidParameterValue');
      expect(e.attrs.locator, q).toBe('Constraint');
    }
  });
});
