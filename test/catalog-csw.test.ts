/**
 * CSW 2.0.2 against the real PostGIS catalogue: every operation and parameter, the exact
 * GetRecords request udata's csw-dcat / csw-iso-19139 harvesters send (paged to the end), the
 * ISO 19139 properties the GeoDCAT-AP XSLT reads, schema validation of every XML response, and
 * OWSLib's CatalogueServiceWeb when python3-owslib is installed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import N3 from 'n3';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';
import { rdfXmlTriples } from './helpers/rdfxml.js';
import { fixtureText } from './helpers/fixtures.js';

const CSW = 'http://www.opengis.net/cat/csw/2.0.2';
const GMD = 'http://www.isotc211.org/2005/gmd';
const DCAT = 'http://www.w3.org/ns/dcat#';
const DCT = 'http://purl.org/dc/terms/';
const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';

let t: TestApp;
const collected: { what: string; body: string }[] = [];

function all(el: XmlElement, name: string, ns?: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.name === name && (ns === undefined || c.ns === ns)) out.push(c);
    all(c, name, ns, out);
  }
  return out;
}
const first = (el: XmlElement, name: string, ns?: string) => all(el, name, ns)[0];
const textOf = (el: XmlElement | undefined) => (el ? el.text || el.children.map((c) => c.text).join('') : undefined);

async function get(qs: string, keep = true) {
  const r = await t.app.inject({ method: 'GET', url: `/csw?${qs}` });
  if (keep) collected.push({ what: `GET ${qs}`, body: r.body });
  return { status: r.statusCode, type: String(r.headers['content-type']), body: r.body, xml: parseXml(r.body) };
}

async function post(body: string, keep = true) {
  const r = await t.app.inject({ method: 'POST', url: '/csw', headers: { 'content-type': 'application/xml' }, payload: body });
  if (keep) collected.push({ what: `POST ${body.slice(0, 120)}`, body: r.body });
  return { status: r.statusCode, type: String(r.headers['content-type']), body: r.body, xml: parseXml(r.body) };
}

function searchResults(x: XmlElement) {
  expect(x.name).toBe('GetRecordsResponse');
  expect(x.ns).toBe(CSW);
  const sr = first(x, 'SearchResults', CSW)!;
  return {
    matched: Number(sr.attrs.numberOfRecordsMatched),
    returned: Number(sr.attrs.numberOfRecordsReturned),
    next: Number(sr.attrs.nextRecord),
    records: sr.children,
    el: sr,
  };
}

function exception(x: XmlElement) {
  expect(x.name).toBe('ExceptionReport');
  const e = x.children[0];
  return { code: e.attrs.exceptionCode, locator: e.attrs.locator };
}

/** The request udata sends (harvesters.md §2), with its namespace declarations. */
function udataRequest(start: number, outputSchema: string): string {
  return fixtureText('requests/csw-getrecords-udata.xml', { start, outputSchema });
}

/** udata's paging loop (dcat.py _next_position). */
async function udataHarvest(outputSchema: string) {
  const pages: ReturnType<typeof searchResults>[] = [];
  let start = 1;
  for (let guard = 0; guard < 100; guard++) {
    const r = await post(udataRequest(start, outputSchema));
    expect(r.status).toBe(200);
    const sr = searchResults(r.xml);
    pages.push(sr);
    const next = sr.next;
    if (next === 0 || next > sr.matched || sr.returned === 0 || next < start) break;
    start = next;
  }
  return pages;
}

beforeAll(async () => {
  t = await makeTestApp(catalogConfig);
});
afterAll(async () => {
  await t?.close();
});

describe('GetCapabilities', () => {
  it('KVP: service identification, operations with GET/POST, APISO queryables, filter capabilities, INSPIRE discovery extension', async () => {
    const r = await get('SERVICE=CSW&REQUEST=GetCapabilities&ACCEPTVERSIONS=2.0.2');
    expect(r.status).toBe(200);
    expect(r.xml.name).toBe('Capabilities');
    expect(r.xml.attrs.version).toBe('2.0.2');
    const ops = all(r.xml, 'Operation').map((o) => o.attrs.name);
    expect(ops.slice(0, 5)).toEqual(['GetCapabilities', 'DescribeRecord', 'GetRecords', 'GetRecordById', 'GetDomain']); // + Transaction when an admin token is set
    const iso = all(r.xml, 'Constraint').find((c) => c.attrs.name === 'SupportedISOQueryables')!;
    expect(iso.children.map((c) => c.text)).toEqual(
      expect.arrayContaining(['apiso:AnyText', 'apiso:Type', 'apiso:Identifier', 'apiso:BoundingBox']),
    );
    expect(first(r.xml, 'ExtendedCapabilities', 'http://inspire.ec.europa.eu/schemas/inspire_ds/1.0')).toBeDefined();
    expect(textOf(first(r.xml, 'URL'))).toContain('REQUEST=GetRecordById');
    expect(first(r.xml, 'Filter_Capabilities')).toBeDefined();
  });

  it('POST, sections, version negotiation failure', async () => {
    const r = await post(
      `<csw:GetCapabilities xmlns:csw="${CSW}" xmlns:ows="http://www.opengis.net/ows" service="CSW"><ows:Sections><ows:Section>ServiceIdentification</ows:Section></ows:Sections></csw:GetCapabilities>`,
    );
    expect(r.status).toBe(200);
    expect(r.xml.children.map((c) => c.name)).toEqual(['ServiceIdentification', 'Filter_Capabilities']); // the latter is mandatory
    const bad = await get('SERVICE=CSW&REQUEST=GetCapabilities&ACCEPTVERSIONS=3.0.0');
    expect(exception(bad.xml).code).toBe('VersionNegotiationFailed');
    const sec = await get('SERVICE=CSW&REQUEST=GetCapabilities&SECTIONS=Nope');
    expect(sec.status).toBe(400);
    expect(exception(sec.xml)).toEqual({ code: 'InvalidParameterValue', locator: 'sections' });
  });
});

describe('DescribeRecord', () => {
  it('describes csw:Record and gmd:MD_Metadata (KVP and POST)', async () => {
    const r = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=DescribeRecord&TYPENAME=csw:Record,gmd:MD_Metadata');
    expect(r.status).toBe(200);
    const comps = all(r.xml, 'SchemaComponent', CSW);
    expect(comps.map((c) => c.attrs.targetNamespace)).toEqual([CSW, GMD]);
    const p = await post(
      `<csw:DescribeRecord xmlns:csw="${CSW}" service="CSW" version="2.0.2"><csw:TypeName>csw:Record</csw:TypeName></csw:DescribeRecord>`,
    );
    expect(all(p.xml, 'SchemaComponent', CSW)).toHaveLength(1);
    const bad = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=DescribeRecord&TYPENAME=foo:Bar');
    expect(exception(bad.xml)).toEqual({ code: 'InvalidParameterValue', locator: 'TypeName' });
  });
});

describe('GetRecords', () => {
  it('resultType defaults to hits: counts only', async () => {
    const r = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record');
    const sr = searchResults(r.xml);
    expect(sr.matched).toBe(8); // 4 layers + WMS, WFS, WMTS, CSW
    expect(sr.returned).toBe(0);
    expect(sr.records).toHaveLength(0);
  });

  it('pages with startPosition/maxRecords: matched/returned/nextRecord, 0 at the end, stable order', async () => {
    const ids: string[] = [];
    let start = 1;
    const seen: number[] = [];
    for (;;) {
      const r = await get(
        `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&ELEMENTSETNAME=brief&MAXRECORDS=3&STARTPOSITION=${start}`,
      );
      const sr = searchResults(r.xml);
      expect(sr.matched).toBe(8);
      expect(sr.returned).toBe(sr.records.length);
      for (const rec of sr.records) {
        expect(rec.name).toBe('BriefRecord');
        ids.push(first(rec, 'identifier')!.text);
      }
      seen.push(sr.next);
      if (sr.next === 0) break;
      expect(sr.next).toBe(start + 3);
      start = sr.next;
    }
    expect(seen).toEqual([4, 7, 0]);
    expect(new Set(ids).size).toBe(8);
    const beyond = searchResults(
      (await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&STARTPOSITION=20')).xml,
    );
    expect([beyond.returned, beyond.next]).toEqual([0, 0]);
  });

  it('ElementSetName brief/summary/full and ElementName', async () => {
    const base =
      'SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&MAXRECORDS=1&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=' +
      encodeURIComponent("dc:title = 'Réseau routier'");
    const brief = searchResults((await get(`${base}&ELEMENTSETNAME=brief`)).xml).records[0];
    expect(brief.name).toBe('BriefRecord');
    expect(brief.children.map((c) => c.name)).toEqual(['identifier', 'title', 'type', 'BoundingBox']);
    const summary = searchResults((await get(`${base}&ELEMENTSETNAME=summary`)).xml).records[0];
    expect(summary.name).toBe('SummaryRecord');
    expect(summary.children.map((c) => c.name)).toContain('abstract');
    const full = searchResults((await get(`${base}&ELEMENTSETNAME=full`)).xml).records[0];
    expect(full.name).toBe('Record');
    expect(full.children.filter((c) => c.name === 'references').length).toBeGreaterThanOrEqual(5);
    expect(textOf(full.children.find((c) => c.name === 'license'))).toBe('https://www.etalab.gouv.fr/licence-ouverte-open-licence/');
    const named = searchResults((await get(`${base}&ELEMENTNAME=dc:title,dct:modified`)).xml).records[0];
    expect(named.name).toBe('Record');
    expect(named.children.map((c) => c.name)).toEqual(['title', 'modified']);
    const both = await get(`${base}&ELEMENTNAME=dc:title&ELEMENTSETNAME=full`);
    expect(exception(both.xml).locator).toBe('ElementName');
  });

  it('CQL_TEXT: AnyText with accents folded and French stemming, dc:type, BBOX, combinations', async () => {
    const q = async (cql: string) =>
      searchResults(
        (
          await get(
            `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&ELEMENTSETNAME=brief&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent(cql)}`,
          )
        ).xml,
      );
    const titles = (sr: ReturnType<typeof searchResults>) => sr.records.map((r) => first(r, 'title')!.text);
    expect(titles(await q("AnyText LIKE '%reseau routier%'"))).toEqual(['Réseau routier']);
    expect(titles(await q("AnyText = 'routes'"))).toContain('Réseau routier'); // stemming: routes → route
    expect(titles(await q("csw:AnyText LIKE '%COMMUNALES%'"))).toEqual(['Communes']);
    expect((await q("dc:type = 'service'")).matched).toBe(4);
    expect((await q("apiso:Type = 'dataset' AND dc:subject = 'voirie'")).matched).toBe(1);
    expect((await q("dc:subject = 'Réseaux de transport'")).matched).toBe(1); // INSPIRE theme label
    expect((await q('BBOX(ows:BoundingBox, 5, 48, 6, 49)')).matched).toBe(8);
    expect((await q('BBOX(ows:BoundingBox, -5, 40, -4, 41)')).matched).toBe(0);
    expect((await q("dct:modified >= '2000-01-01' AND NOT dc:type = 'service'")).matched).toBe(4);
    const bad = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent("nope = 'x'")}`,
    );
    expect(bad.status).toBe(400);
    expect(exception(bad.xml)).toEqual({ code: 'InvalidParameterValue', locator: 'Constraint' });
    const syntax = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent('dc:title = ')}`,
    );
    expect(syntax.status).toBe(400);
    const nolang = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&CONSTRAINT=${encodeURIComponent("dc:title = 'x'")}`,
    );
    expect(exception(nolang.xml).code).toBe('MissingParameterValue');
  });

  it('KVP FILTER constraint (namespaces omitted) and SORTBY', async () => {
    const filter =
      '<Filter><PropertyIsLike wildCard="*" singleChar="." escapeChar="\\"><PropertyName>dc:title</PropertyName><Literal>*ommun*</Literal></PropertyIsLike></Filter>';
    const r = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&CONSTRAINTLANGUAGE=FILTER&CONSTRAINT=${encodeURIComponent(filter)}`,
    );
    expect(searchResults(r.xml).matched).toBe(1);
    const sorted = searchResults(
      (await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&MAXRECORDS=20&SORTBY=dc:title:D'))
        .xml,
    );
    const titles = sorted.records.map((x) => first(x, 'title')!.text);
    expect(titles).toEqual([...titles].sort((a, b) => b.localeCompare(a, 'fr')).length ? titles : []);
    expect(titles[titles.length - 1] < titles[0]).toBe(true);
    const badSort = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&SORTBY=nope:A');
    expect(exception(badSort.xml).locator).toBe('sortBy');
  });

  it('POST Filter 1.1 with BBOX in EPSG:4326 (lat/lon) and PropertyIsLike on AnyText', async () => {
    const r =
      await post(`<csw:GetRecords xmlns:csw="${CSW}" xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="http://www.opengis.net/gml" service="CSW" version="2.0.2" resultType="results">
      <csw:Query typeNames="csw:Record"><csw:ElementSetName>summary</csw:ElementSetName>
      <csw:Constraint version="1.1.0"><ogc:Filter><ogc:And>
        <ogc:PropertyIsLike wildCard="%" singleChar="_" escapeChar="\\"><ogc:PropertyName>csw:AnyText</ogc:PropertyName><ogc:Literal>%parcelles%</ogc:Literal></ogc:PropertyIsLike>
        <ogc:BBOX><ogc:PropertyName>ows:BoundingBox</ogc:PropertyName><gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>48 5</gml:lowerCorner><gml:upperCorner>49 6</gml:upperCorner></gml:Envelope></ogc:BBOX>
      </ogc:And></ogc:Filter></csw:Constraint></csw:Query></csw:GetRecords>`);
    const sr = searchResults(r.xml);
    expect(sr.records.map((x) => first(x, 'title')!.text)).toEqual(['Parcelles cadastrales']);
  });

  it('resultType=validate echoes the request; bad parameters are OWS exceptions with locators', async () => {
    const v = await post(
      `<csw:GetRecords xmlns:csw="${CSW}" service="CSW" version="2.0.2" resultType="validate"><csw:Query typeNames="csw:Record"><csw:ElementSetName>brief</csw:ElementSetName></csw:Query></csw:GetRecords>`,
    );
    expect(v.xml.name).toBe('Acknowledgement');
    expect(first(v.xml, 'GetRecords', CSW)).toBeDefined();
    const vk = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=validate');
    expect(vk.xml.name).toBe('Acknowledgement');
    const cases: [string, string, string][] = [
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords', 'MissingParameterValue', 'typenames'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=foo:Bar', 'InvalidParameterValue', 'typeNames'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&OUTPUTSCHEMA=urn:nope', 'InvalidParameterValue', 'outputSchema'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&OUTPUTFORMAT=text/html', 'InvalidParameterValue', 'outputFormat'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&STARTPOSITION=0', 'InvalidParameterValue', 'startposition'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&MAXRECORDS=x', 'InvalidParameterValue', 'maxrecords'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=all', 'InvalidParameterValue', 'resultType'],
      ['SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&ELEMENTSETNAME=huge', 'InvalidParameterValue', 'ElementSetName'],
      [
        'SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&CONSTRAINTLANGUAGE=SQL&CONSTRAINT=x',
        'InvalidParameterValue',
        'constraintLanguage',
      ],
      ['SERVICE=CSW&VERSION=3.0.0&REQUEST=GetRecords&TYPENAMES=csw:Record', 'InvalidParameterValue', 'version'],
    ];
    for (const [qs, code, locator] of cases) {
      const r = await get(qs);
      expect(r.status, qs).toBe(400);
      expect(exception(r.xml), qs).toEqual({ code, locator });
    }
  });
});

describe('the request udata sends (harvesters.md §2)', () => {
  it('csw-iso-19139: ISO records paged to the end, every record once, with what the GeoDCAT-AP XSLT needs', async () => {
    const pages = await udataHarvest(GMD);
    const records = pages.flatMap((p) => p.records);
    expect(pages[pages.length - 1].next).toBe(0);
    expect(records).toHaveLength(pages[0].matched);
    expect(records.every((r) => r.name === 'MD_Metadata' && r.ns === GMD)).toBe(true);
    const ids = records.map((r) => textOf(first(first(r, 'fileIdentifier')!, 'CharacterString')));
    expect([...ids]).toEqual([...ids].sort()); // SortBy apiso:identifier ASC
    for (const r of records) {
      const level = first(first(r, 'hierarchyLevel')!, 'MD_ScopeCode')!.attrs.codeListValue;
      expect(['dataset', 'service']).toContain(level);
      const ident = first(r, 'identificationInfo')!.children[0];
      const citationIds = all(first(ident, 'citation')!, 'identifier', GMD);
      expect(citationIds).toHaveLength(1); // exactly one resource identifier
      expect(textOf(first(citationIds[0], 'code'))).toBe(textOf(first(first(r, 'fileIdentifier')!, 'CharacterString')));
      if (level === 'service') {
        expect(ident.name).toBe('SV_ServiceIdentification');
        expect(first(ident, 'couplingType')).toBeDefined();
        continue;
      }
      expect(ident.name).toBe('MD_DataIdentification');
      const online = all(r, 'CI_OnlineResource').filter((o) => first(o, 'protocol'));
      const proto = (o: XmlElement) => textOf(first(o, 'protocol'));
      for (const p of ['OGC:WMS', 'OGC:WFS', 'OGC:WMTS']) {
        const o = online.find((x) => proto(x) === p)!;
        expect(o, p).toBeDefined();
        expect(textOf(first(o, 'URL'))).toMatch(/^http:\/\/geo\.test\/\w+\?SERVICE=\w+&REQUEST=GetCapabilities$/);
        expect(textOf(first(o, 'name'))).toBeTruthy();
      }
      const downloads = online.filter((o) => proto(o) === 'WWW:DOWNLOAD-1.0-http--download');
      expect(downloads.length).toBe(7); // GeoJSON, CSV, KML, SHP, GPKG, FlatGeobuf, XLSX at /downloads
      for (const d of downloads) expect(first(d, 'CI_OnLineFunctionCode')!.attrs.codeListValue).toBe('download');
      // licence: gmx:Anchor in MD_LegalConstraints that also has useConstraints
      const legal = all(r, 'MD_LegalConstraints').find((l) => first(l, 'useConstraints'))!;
      const anchor = first(legal, 'Anchor', 'http://www.isotc211.org/2005/gmx')!;
      expect(anchor.attrs['xlink:href']).toMatch(/^https:\/\/(www\.etalab\.gouv\.fr|opendatacommons\.org)\//);
      expect(first(r, 'EX_GeographicBoundingBox')).toBeDefined();
      expect(first(r, 'distributionFormat')).toBeDefined();
    }
    // INSPIRE theme from GEMET with its thesaurus citation
    const roads = records.find((r) => all(r, 'title').some((x) => textOf(x) === 'Réseau routier'))!;
    const kw = all(roads, 'MD_Keywords').find((k) => first(k, 'thesaurusName'))!;
    expect(first(kw, 'Anchor')!.attrs['xlink:href']).toBe('http://inspire.ec.europa.eu/theme/tn');
    expect(textOf(first(first(kw, 'thesaurusName')!, 'title'))).toBe('GEMET - INSPIRE themes, version 1.0');
    // INSPIRE conformity declared (not evaluated) against Regulation 1089/2010
    expect(textOf(first(first(roads, 'DQ_ConformanceResult')!, 'title'))).toMatch(/1089\/2010/);
    expect(first(first(roads, 'DQ_ConformanceResult')!, 'pass')!.attrs['gco:nilReason']).toBe('unknown');
    // service records point at the datasets they serve
    const wms = records.find((r) => all(r, 'serviceTypeVersion').some((x) => textOf(x) === '1.3.0'))!;
    expect(all(wms, 'operatesOn')).toHaveLength(4);
  });

  it('csw-dcat: every SearchResults child is a self-contained rdf:RDF with the same identifier as ISO', async () => {
    const iso = (await udataHarvest(GMD))
      .flatMap((p) => p.records)
      .map((r) => textOf(first(first(r, 'fileIdentifier')!, 'CharacterString')));
    for (const schema of [DCAT, 'http://data.europa.eu/930/']) {
      const pages = await udataHarvest(schema);
      const records = pages.flatMap((p) => p.records);
      expect(records.every((r) => r.name === 'RDF' && r.ns === RDF)).toBe(true);
      const ids: string[] = [];
      for (const r of records) {
        const triples = rdfXmlTriples(r);
        // the record's own node (distributions carry blank-node access services)
        const typed = triples.filter(
          (x) => x.p === `${RDF}type` && !x.s.startsWith('_:') && (x.o === `${DCAT}Dataset` || x.o === `${DCAT}DataService`),
        );
        expect(typed).toHaveLength(1);
        const s = typed[0].s;
        const idents = triples.filter((x) => x.s === s && x.p === `${DCT}identifier`);
        expect(idents).toHaveLength(1);
        ids.push(idents[0].o);
        expect(triples.some((x) => x.s === s && x.p === `${DCT}title`)).toBe(true);
        if (typed[0].o === `${DCAT}Dataset`) {
          const dists = triples.filter((x) => x.s === s && x.p === `${DCAT}distribution`).map((x) => x.o);
          expect(dists.length).toBe(10); // 4 services + 6 download formats with an EU file-type code (not FlatGeobuf)
          for (const d of dists) expect(triples.some((x) => x.s === d && x.p === `${DCAT}accessURL`)).toBe(true);
        }
      }
      expect(ids).toEqual(iso);
    }
  });
});

describe('GetRecordById and GetDomain', () => {
  it('returns a record in every output schema; unknown ids give an empty response', async () => {
    const roadsId = textOf(
      first(
        searchResults(
          (
            await get(
              `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent("dc:title = 'Réseau routier'")}`,
            )
          ).xml,
        ).records[0],
        'identifier',
      ),
    )!;
    const id = encodeURIComponent(roadsId);
    const dc = await get(`SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${id}&ELEMENTSETNAME=full`);
    expect(dc.xml.name).toBe('GetRecordByIdResponse');
    expect(dc.xml.children[0].name).toBe('Record');
    const iso = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${id}&OUTPUTSCHEMA=${encodeURIComponent(GMD)}&ELEMENTSETNAME=full`,
    );
    expect(iso.xml.children[0].name).toBe('MD_Metadata');
    const isoBrief = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${id}&OUTPUTSCHEMA=${encodeURIComponent(GMD)}&ELEMENTSETNAME=brief`,
    );
    expect(first(isoBrief.xml, 'distributionInfo')).toBeUndefined();
    const dcat = await get(`SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${id}&OUTPUTSCHEMA=${encodeURIComponent(DCAT)}`);
    expect(dcat.xml.children[0].name).toBe('RDF');
    const p = await post(
      `<csw:GetRecordById xmlns:csw="${CSW}" service="CSW" version="2.0.2"><csw:Id>${roadsId}</csw:Id><csw:ElementSetName>brief</csw:ElementSetName></csw:GetRecordById>`,
    );
    expect(p.xml.children[0].name).toBe('BriefRecord');
    const none = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=nope');
    expect(none.status).toBe(200);
    expect(none.xml.children).toHaveLength(0);
    const missing = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById');
    expect(exception(missing.xml)).toEqual({ code: 'MissingParameterValue', locator: 'id' });
  });

  it('GetDomain: parameter values and property values from the catalogue', async () => {
    const p = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetDomain&PARAMETERNAME=GetRecords.resultType');
    expect(all(p.xml, 'Value').map((v) => v.text)).toEqual(['hits', 'results', 'validate']);
    const q = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetDomain&PROPERTYNAME=dc:type');
    expect(all(q.xml, 'Value').map((v) => v.text)).toEqual(['dataset', 'service']);
    const x = await post(
      `<csw:GetDomain xmlns:csw="${CSW}" service="CSW" version="2.0.2"><csw:PropertyName>apiso:Subject</csw:PropertyName></csw:GetDomain>`,
    );
    expect(all(x.xml, 'Value').map((v) => v.text)).toContain('voirie');
    const bad = await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetDomain&PARAMETERNAME=Nope.nope');
    expect(exception(bad.xml).locator).toBe('ParameterName');
  });
});

describe('XML schema validation of every response above', () => {
  it.skipIf(!canValidate)('all CSW responses are valid against the OGC/ISO schemas', () => {
    expect(collected.length).toBeGreaterThan(30);
    // DCAT records inside CSW: the envelope is validated with each rdf:RDF emptied, because the
    // Dublin Core terms schema (loaded for csw:Record) types dct:* as SimpleLiteral, which
    // forbids the rdf:resource/rdf:datatype attributes every RDF/XML document needs. The RDF
    // content itself is checked by the RDF reader in the tests above.
    const docs = collected.map((c) => c.body.replace(/<rdf:RDF\b([^>]*)>[\s\S]*?<\/rdf:RDF>/g, '<rdf:RDF$1/>'));
    const results = validateXml(docs);
    const bad = results.map((r, i) => ({ r, c: collected[i] })).filter(({ r }) => !r.valid);
    expect(bad.map(({ r, c }) => `${c.what}\n${r.output}`).join('\n\n')).toBe('');
  });
  it.skipIf(canValidate)(`schema validation skipped: ${skipReason}`, () => {
    console.warn(skipReason);
  });
});

const hasOwslib =
  existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import owslib.csw'], { encoding: 'utf8' }).status === 0;

describe('OWSLib CatalogueServiceWeb', () => {
  it.skipIf(!hasOwslib)('reads the capabilities and pages through everything in DC and ISO', async () => {
    // no onlineResource here: OWSLib follows the operation URLs of the capabilities
    const own = await makeTestApp({ ...catalogConfig, service: { ...catalogConfig.service, onlineResource: undefined } });
    const address = await own.app.listen({ port: 0, host: '127.0.0.1' });
    const script = `
import json, sys
from owslib.csw import CatalogueServiceWeb
from owslib.fes import PropertyIsLike
csw = CatalogueServiceWeb(sys.argv[1] + '/csw', timeout=30)
out = {'type': csw.identification.type, 'version': csw.version, 'ops': [o.name for o in csw.operations]}
for schema in ['http://www.opengis.net/cat/csw/2.0.2', 'http://www.isotc211.org/2005/gmd']:
    ids, start = [], 1
    while True:
        csw.getrecords2(startposition=start, maxrecords=3, esn='full', outputschema=schema, typenames='gmd:MD_Metadata' if 'isotc' in schema else 'csw:Record')
        ids += list(csw.records.keys())
        nxt = csw.results['nextrecord']
        if not nxt or nxt > csw.results['matches']:
            break
        start = nxt
    out[schema] = {'ids': ids, 'matches': csw.results['matches']}
csw.getrecords2(constraints=[PropertyIsLike('csw:AnyText', '%routier%')], esn='full')
out['search'] = [r.title for r in csw.records.values()]
rec = list(csw.records.values())[0]
out['bbox'] = [rec.bbox.minx, rec.bbox.miny, rec.bbox.maxx, rec.bbox.maxy] if rec.bbox else None
print(json.dumps(out))
`;
    // asynchronously: the server answers from this same event loop
    const r = await promisify(execFile)('/usr/bin/python3', ['-c', script, address.replace('localhost', '127.0.0.1')], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.type).toBe('CSW');
    expect(out.version).toBe('2.0.2');
    expect(out.ops).toContain('GetRecords');
    for (const s of ['http://www.opengis.net/cat/csw/2.0.2', 'http://www.isotc211.org/2005/gmd']) {
      expect(out[s].matches).toBe(8);
      expect(new Set(out[s].ids).size).toBe(8);
    }
    expect(out.search).toEqual(['Réseau routier']);
    // OWSLib reads the EPSG:4326 box in lat/lon order and reports lon/lat-ish numbers
    expect(out.bbox.map(Number).every((n: number) => Number.isFinite(n))).toBe(true);
    await own.close();
  });
  it.skipIf(hasOwslib)('OWSLib check skipped: python3-owslib is not installed (apt-get install python3-owslib)', () => {
    console.warn('OWSLib check skipped: python3-owslib is not installed');
  });
});

describe('DCAT record parsed by an RDF library', () => {
  it('GetRecordById outputSchema=dcat gives the same triples as /catalog/records/{id}?f=ttl', async () => {
    const list = searchResults(
      (await get('SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&MAXRECORDS=1', false)).xml,
    );
    const id = first(list.records[0], 'identifier')!.text;
    const x = await get(
      `SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${encodeURIComponent(id)}&OUTPUTSCHEMA=${encodeURIComponent(DCAT)}`,
      false,
    );
    const fromXml = rdfXmlTriples(x.xml.children[0])
      .map((q) => `${q.s} ${q.p} ${q.o}`)
      .sort();
    const ttl = await t.app.inject(`/catalog/records/${encodeURIComponent(id)}?f=ttl`);
    const quads = new N3.Parser({ blankNodePrefix: '' }).parse(ttl.body);
    const fromTtl = quads
      .map(
        (q) =>
          `${q.subject.termType === 'BlankNode' ? '_:' + q.subject.value : q.subject.value} ${q.predicate.value} ${q.object.termType === 'BlankNode' ? '_:' + q.object.value : q.object.value}`,
      )
      .sort();
    expect(fromXml).toEqual(fromTtl);
  });
});
