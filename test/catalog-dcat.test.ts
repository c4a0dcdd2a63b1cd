/**
 * DCAT-AP endpoints walked the way udata and piveau walk them (no Accept header, no redirects,
 * hydra:next to the end), every page parsed by an RDF library (n3 for Turtle, jsonld.toRDF for
 * JSON-LD, our RDF/XML reader checked against the Turtle of the same page), with the DCAT-AP
 * mandatory properties and the harvesters.md §5 checklist asserted per dataset and per page.
 * Also: the JSON search API (French full-text, bbox, facets, paging, schema) and the catalogue
 * store's all-or-nothing replacement of a source's records.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import N3 from 'n3';
import jsonld from 'jsonld';
import { Ajv } from 'ajv';
import { parseXml } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig, testRecord } from './helpers/catalog.js';
import { rdfXmlTriples } from './helpers/rdfxml.js';
import { migrateCatalog, replaceSource } from '../src/catalog/store.js';
import { getRecords } from '../src/catalog/query.js';
import { recordHtml } from '../src/catalog/routes.js';
import type { CatalogRecord } from '../src/catalog/model.js';

const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
const DCAT = 'http://www.w3.org/ns/dcat#';
const DCT = 'http://purl.org/dc/terms/';
const FOAF = 'http://xmlns.com/foaf/0.1/';
const HYDRA = 'http://www.w3.org/ns/hydra/core#';
const SKOS = 'http://www.w3.org/2004/02/skos/core#';
const LOCN = 'http://www.w3.org/ns/locn#';
const VCARD = 'http://www.w3.org/2006/vcard/ns#';
const GSP = 'http://www.opengis.net/ont/geosparql#';
const XSD = 'http://www.w3.org/2001/XMLSchema#';

interface T {
  s: string;
  p: string;
  o: string;
  dt?: string;
  lang?: string;
  lit: boolean;
}

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp(catalogConfig);
});
afterAll(async () => {
  await t?.close();
});

function term(x: { termType: string; value: string }): string {
  return x.termType === 'BlankNode' ? `_:${x.value}` : x.value;
}

function fromQuads(quads: N3.Quad[]): T[] {
  return quads.map((q) => ({
    s: term(q.subject),
    p: q.predicate.value,
    o: term(q.object),
    lit: q.object.termType === 'Literal',
    dt: q.object.termType === 'Literal' ? (q.object as N3.Literal).datatype.value : undefined,
    lang: q.object.termType === 'Literal' ? (q.object as N3.Literal).language || undefined : undefined,
  }));
}

async function parsePage(fmt: 'ttl' | 'jsonld' | 'rdf', body: string): Promise<T[]> {
  if (fmt === 'ttl') return fromQuads(new N3.Parser({ blankNodePrefix: '' }).parse(body));
  if (fmt === 'jsonld') {
    const nq = (await jsonld.toRDF(JSON.parse(body), { format: 'application/n-quads' })) as unknown as string;
    return fromQuads(new N3.Parser({ format: 'N-Quads', blankNodePrefix: '' }).parse(nq));
  }
  return rdfXmlTriples(parseXml(body)).map((x) => ({
    s: x.s,
    p: x.p,
    o: x.o,
    lit: Boolean(x.literal),
    dt: x.literal ? (x.literal.datatype ?? (x.literal.lang ? `${RDF}langString` : `${XSD}string`)) : undefined,
    lang: x.literal?.lang,
  }));
}

const objs = (g: T[], s: string, p: string) => g.filter((x) => x.s === s && x.p === p);
const typed = (g: T[], type: string) => g.filter((x) => x.p === `${RDF}type` && x.o === type).map((x) => x.s);

/** Everything the checklist asks of one page, asserted on its own graph. */
function checkPage(g: T[], url: string) {
  const cats = typed(g, `${DCAT}Catalog`);
  expect(cats, url).toHaveLength(1);
  const cat = cats[0];
  expect(typed(g, `${HYDRA}Collection`)).toContain(cat);
  for (const p of ['title', 'description']) expect(objs(g, cat, DCT + p).length, p).toBeGreaterThan(0);
  const pubs = objs(g, cat, `${DCT}publisher`);
  expect(pubs).toHaveLength(1);
  expect(objs(g, pubs[0].o, `${FOAF}name`).length).toBeGreaterThan(0);
  for (const p of [`${FOAF}homepage`, `${DCT}language`, `${DCT}license`, `${DCT}modified`, `${DCAT}themeTaxonomy`])
    expect(objs(g, cat, p).length, p).toBeGreaterThan(0);
  const total = objs(g, cat, `${HYDRA}totalItems`);
  expect(total).toHaveLength(1);
  const views = typed(g, `${HYDRA}PartialCollectionView`);
  expect(views).toHaveLength(1);
  const next = objs(g, views[0], `${HYDRA}next`);
  const today = new Date().toISOString().slice(0, 10);
  const datasets = typed(g, `${DCAT}Dataset`);
  expect(
    objs(g, cat, `${DCAT}dataset`)
      .map((x) => x.o)
      .sort(),
  ).toEqual([...datasets].sort());
  const ids: string[] = [];
  for (const d of datasets) {
    expect(d.startsWith('http')).toBe(true); // dereferenceable IRI
    const idents = objs(g, d, `${DCT}identifier`);
    expect(idents, d).toHaveLength(1);
    ids.push(idents[0].o);
    expect(objs(g, d, `${DCT}title`)[0].lang).toBe('fr');
    expect(objs(g, d, `${DCT}description`)[0].lang).toBe('fr');
    for (const k of objs(g, d, `${DCAT}keyword`)) expect(k.lang).toBe('fr');
    for (const th of objs(g, d, `${DCAT}theme`))
      expect(objs(g, th.o, `${SKOS}prefLabel`).length, `prefLabel of ${th.o}`).toBeGreaterThan(0);
    const lic = objs(g, d, `${DCT}license`);
    expect(lic).toHaveLength(1);
    expect(objs(g, d, `${DCT}accessRights`)).toHaveLength(1);
    const mod = objs(g, d, `${DCT}modified`)[0];
    expect(mod.dt).toBe(`${XSD}date`);
    expect(mod.o <= today).toBe(true);
    // spatial: a blank dct:Location with one locn:geometry (GeoJSON polygon, DCAT-AP: at most one),
    // the WKT polygon as dcat:bbox and a dcat:centroid, in this page
    const sp = objs(g, d, `${DCT}spatial`)[0];
    expect(sp.o.startsWith('_:')).toBe(true);
    const geoms = objs(g, sp.o, `${LOCN}geometry`);
    expect(geoms.map((x) => x.dt)).toEqual([`${GSP}geoJSONLiteral`]);
    expect(JSON.parse(geoms[0].o).type).toBe('Polygon');
    const bbox = objs(g, sp.o, `${DCAT}bbox`);
    expect(bbox.map((x) => x.dt)).toEqual([`${GSP}wktLiteral`]);
    expect(bbox[0].o).toMatch(/^POLYGON\(\(/);
    expect(objs(g, sp.o, `${DCAT}centroid`)[0].o).toMatch(/^POINT\(/);
    const cp = objs(g, d, `${DCAT}contactPoint`)[0];
    expect(objs(g, cp.o, `${VCARD}fn`).length).toBeGreaterThan(0);
    expect(objs(g, cp.o, `${VCARD}hasEmail`)[0].o).toMatch(/^mailto:/);
    expect(objs(g, objs(g, d, `${DCT}publisher`)[0].o, `${FOAF}name`).length).toBeGreaterThan(0);
    const landing = objs(g, d, `${DCAT}landingPage`);
    expect(landing).toHaveLength(1);
    expect(landing[0].o).toBe(`${d}.html`); // the HTML page of the record (none configured in the test metadata)
    expect(typed(g, `${FOAF}Document`)).toContain(landing[0].o);
    const rec = objs(g, d, `${FOAF}isPrimaryTopicOf`)[0];
    expect(objs(g, rec.o, `${DCT}identifier`)[0].o).toBe(idents[0].o);
    expect(objs(g, rec.o, `${DCT}modified`)).toHaveLength(1);
    const dists = objs(g, d, `${DCAT}distribution`).map((x) => x.o);
    expect(dists.length).toBe(10); // 4 services + 6 download formats with an EU file-type code (FlatGeobuf has none: docs/formats.md)
    const urls = new Set<string>();
    for (const di of dists) {
      const access = objs(g, di, `${DCAT}accessURL`);
      expect(access).toHaveLength(1);
      urls.add(access[0].o);
      expect(objs(g, di, `${DCT}license`).map((x) => x.o)).toEqual([lic[0].o]);
      expect(objs(g, di, `${DCT}title`)).toHaveLength(1);
      const svc = objs(g, di, `${DCAT}accessService`)[0];
      if (svc) {
        for (const p of [
          `${DCT}conformsTo`,
          `${DCAT}endpointURL`,
          `${DCAT}endpointDescription`,
          'http://data.europa.eu/930/serviceProtocol',
        ])
          expect(objs(g, svc.o, p).length, p).toBe(1);
        if (objs(g, svc.o, `${DCT}conformsTo`)[0].o.endsWith('/wms')) {
          expect(access[0].o).toMatch(/\?SERVICE=WMS&REQUEST=GetCapabilities$/);
          expect(objs(g, di, `${DCT}format`)[0].o).toBe('http://publications.europa.eu/resource/authority/file-type/WMS_SRVC');
        }
      } else {
        const dl = objs(g, di, `${DCAT}downloadURL`);
        expect(dl).toHaveLength(1);
        // FlatGeobuf has no EU file-type code: not a DCAT distribution (it stays in ISO and /downloads)
        expect(dl[0].o.endsWith('.fgb')).toBe(false);
        expect(objs(g, di, `${DCT}format`)[0].o).toMatch(
          /^http:\/\/publications\.europa\.eu\/resource\/authority\/file-type\/(GEOJSON|CSV|KML|SHP|GPKG|XLSX)$/,
        );
        expect(objs(g, di, `${DCAT}mediaType`)[0].o).toMatch(/^http:\/\/www\.iana\.org\/assignments\/media-types\//);
      }
    }
    expect(urls.size).toBe(dists.length); // one distribution per distinct URL
  }
  return { ids, next: next[0]?.o, total: Number(total[0].o), viewTotal: Number(objs(g, views[0], `${HYDRA}totalItems`)[0]?.o), g };
}

describe('DCAT-AP catalogue pages', () => {
  const media = { rdf: 'application/rdf+xml', ttl: 'text/turtle', jsonld: 'application/ld+json' } as const;

  for (const fmt of ['ttl', 'jsonld', 'rdf'] as const) {
    it(`/catalog/dcat.${fmt}: GET and HEAD, walked with hydra:next to the end, each page self-contained`, async () => {
      let url: string | undefined = `http://geo.test/catalog/dcat.${fmt}?pageSize=1`;
      const ids: string[] = [];
      let pages = 0;
      let sawServices = false;
      while (url) {
        expect(url.startsWith(`http://geo.test/catalog/dcat.${fmt}?`)).toBe(true); // absolute, same format
        const u = new URL(url);
        const head = await t.app.inject({ method: 'HEAD', url: u.pathname + u.search, headers: { 'user-agent': 'uData/0.1 dcat' } });
        expect(head.statusCode).toBe(200);
        expect(String(head.headers['content-type']).startsWith(media[fmt])).toBe(true);
        expect(head.body).toBe('');
        const r = await t.app.inject({ method: 'GET', url: u.pathname + u.search, headers: { 'user-agent': 'uData/0.1 dcat' } });
        expect(r.statusCode).toBe(200);
        expect(String(r.headers['content-type']).startsWith(media[fmt])).toBe(true);
        const g = await parsePage(fmt, r.body);
        const page = checkPage(g, url);
        expect(page.total).toBe(4);
        expect(page.viewTotal).toBe(4);
        ids.push(...page.ids);
        const services = typed(g, `${DCAT}DataService`).filter((s) => !s.startsWith('_:'));
        if (services.length) {
          sawServices = true;
          for (const s of services) {
            for (const p of [
              `${DCT}identifier`,
              `${DCT}title`,
              `${DCAT}endpointURL`,
              `${DCAT}endpointDescription`,
              `${DCT}conformsTo`,
              `${DCT}license`,
            ])
              expect(objs(g, s, p).length, p).toBeGreaterThan(0);
            // served datasets carry their identifier in the same page
            for (const sd of objs(g, s, `${DCAT}servesDataset`)) expect(objs(g, sd.o, `${DCT}identifier`)).toHaveLength(1);
          }
        }
        url = page.next;
        pages++;
        expect(pages).toBeLessThan(10);
      }
      expect(pages).toBe(4);
      expect(sawServices).toBe(true);
      expect(new Set(ids).size).toBe(4);
      // the same identifiers as the CSW
      const csw = await t.app.inject(
        '/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=' +
          encodeURIComponent("dc:type = 'dataset'"),
      );
      const cswIds = [...csw.body.matchAll(/<dc:identifier>([^<]+)<\/dc:identifier>/g)].map((m) => m[1]);
      expect([...ids].sort()).toEqual([...cswIds].sort());
    });
  }

  it('the three serialisations of a page carry the same triples', async () => {
    const ttl = await parsePage('ttl', (await t.app.inject('/catalog/dcat.ttl')).body);
    const rdf = await parsePage('rdf', (await t.app.inject('/catalog/dcat.rdf')).body);
    const js = await parsePage('jsonld', (await t.app.inject('/catalog/dcat.jsonld')).body);
    const key = (x: T) => `${x.s}|${x.p}|${x.o}|${x.lang ?? ''}`;
    // the view IRI names its own format; everything else is identical
    const norm = (g: T[]) =>
      g.map((x) => key({ ...x, s: x.s.replace(/dcat\.\w+\?/, 'dcat?'), o: x.o.replace(/dcat\.\w+\?/, 'dcat?') })).sort();
    expect(norm(rdf)).toEqual(norm(ttl));
    expect(js.length).toBe(ttl.length);
    expect(
      js
        .filter((x) => !x.s.startsWith('_:') && !x.o.startsWith('_:'))
        .map(key)
        .map((k) => k.replace(/dcat\.\w+\?/g, 'dcat?'))
        .sort(),
    ).toEqual(
      ttl
        .filter((x) => !x.s.startsWith('_:') && !x.o.startsWith('_:'))
        .map(key)
        .map((k) => k.replace(/dcat\.\w+\?/g, 'dcat?'))
        .sort(),
    );
  });

  it('/catalog/dcat: RDF/XML without Accept (no redirect), negotiated otherwise', async () => {
    const bare = await t.app.inject({ method: 'GET', url: '/catalog/dcat' });
    expect(bare.statusCode).toBe(200);
    expect(bare.headers['content-type']).toMatch(/^application\/rdf\+xml/);
    expect(String(bare.headers.vary).split(/,\s*/)).toContain('Accept');
    const head = await t.app.inject({ method: 'HEAD', url: '/catalog/dcat' });
    expect(head.headers['content-type']).toMatch(/^application\/rdf\+xml/);
    for (const [accept, type] of [
      ['text/turtle', 'text/turtle'],
      ['application/ld+json', 'application/ld+json'],
      ['application/json;q=0.5, text/turtle;q=0.9', 'text/turtle'],
      ['text/html,*/*;q=0.8', 'application/rdf+xml'],
    ]) {
      const r = await t.app.inject({ method: 'GET', url: '/catalog/dcat', headers: { accept } });
      expect(r.statusCode, accept).toBe(200);
      expect(r.headers['content-type'], accept).toMatch(new RegExp(`^${type.replace('+', '\\+')}`));
    }
  });

  it('bad paging parameters are RFC 7807 problems; past the end is 404', async () => {
    const bad = await t.app.inject('/catalog/dcat.ttl?page=0');
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toMatch(/problem\+json/);
    expect((await t.app.inject('/catalog/dcat.ttl?pageSize=abc')).statusCode).toBe(400);
    expect((await t.app.inject('/catalog/dcat.ttl?page=99')).statusCode).toBe(404);
  });
});

describe('JSON search API /catalog', () => {
  const schema = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'schemas', 'catalog-search.schema.json'), 'utf8'));
  const validate = new Ajv({ strict: false }).compile(schema);
  const search = async (qs: string) => {
    const r = await t.app.inject(`/catalog?${qs}`);
    expect(r.statusCode, qs).toBe(200);
    const body = r.json();
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    return body;
  };
  const titles = (b: { records: { title: string }[] }) => b.records.map((r) => r.title);

  it('French full-text: accents folded and stemmed', async () => {
    expect(titles(await search('q=reseau%20routier'))).toEqual(['Réseau routier']);
    expect(titles(await search('q=routes'))).toContain('Réseau routier'); // routes → route
    expect(titles(await search('q=R%C3%89SEAU'))).toContain('Réseau routier');
    expect(titles(await search('q=communales'))).toEqual(['Communes']);
    expect((await search('q=zzzzqqq')).total).toBe(0);
  });

  it('bbox, keyword/theme/organisation/type filters, facets with counts, paging and sort', async () => {
    const all = await search('limit=100');
    expect(all.total).toBe(8);
    expect(all.facets.types).toEqual([
      { value: 'dataset', count: 4 },
      { value: 'service', count: 4 },
    ]);
    expect(all.facets.themes.find((f: { uri: string }) => f.uri === 'http://inspire.ec.europa.eu/theme/tn').count).toBe(1);
    expect(all.facets.organisations.find((f: { value: string }) => f.value === 'Région Test').count).toBeGreaterThan(0);
    expect((await search('bbox=5,48,6,49&type=dataset')).total).toBe(4);
    expect((await search('bbox=-5,40,-4,41')).total).toBe(0);
    expect(titles(await search('keyword=voirie'))).toEqual(['Réseau routier']);
    expect(titles(await search('theme=http://inspire.ec.europa.eu/theme/au'))).toEqual(['Communes']);
    expect(titles(await search('theme=TRAN'))).toEqual(['Réseau routier']);
    const sorted = await search('type=dataset&sort=title');
    expect(titles(sorted)).toEqual(['Communes', 'Parcelles cadastrales', 'Points d’intérêt', 'Réseau routier']);
    const p1 = await search('type=dataset&sort=-title&limit=3');
    expect(p1.records).toHaveLength(3);
    const next = p1.links.find((l: { rel: string }) => l.rel === 'next');
    const p2 = await search(new URL(next.href).search.slice(1));
    expect(titles(p2)).toEqual(['Communes']);
    expect(p2.links.some((l: { rel: string }) => l.rel === 'next')).toBe(false);
    const rec = p2.records[0];
    expect(rec.links.find((l: { protocol?: string }) => l.protocol === 'OGC:WFS').href).toBe(
      'http://geo.test/wfs?SERVICE=WFS&REQUEST=GetCapabilities',
    );
  });

  it('bad parameters are RFC 7807 problems', async () => {
    for (const qs of ['bbox=1,2,3', 'limit=-1', 'limit=abc', 'sort=nope', 'bbox=5,5,1,1']) {
      const r = await t.app.inject(`/catalog?${qs}`);
      expect(r.statusCode, qs).toBe(400);
      expect(r.json().status).toBe(400);
    }
  });

  it('/catalog/records/{id} in JSON, Turtle, ISO; 404 for an unknown id', async () => {
    const all = await search('q=routier');
    const id = all.records[0].identifier;
    const j = await t.app.inject(`/catalog/records/${encodeURIComponent(id)}`);
    expect(j.json().title).toBe('Réseau routier');
    const ttl = await t.app.inject(`/catalog/records/${encodeURIComponent(id)}?f=ttl`);
    const g = fromQuads(new N3.Parser().parse(ttl.body));
    expect(g.some((x) => x.p === `${DCT}identifier` && x.o === id)).toBe(true);
    const iso = await t.app.inject(`/catalog/records/${encodeURIComponent(id)}?f=iso`);
    expect(parseXml(iso.body).name).toBe('MD_Metadata');
    expect((await t.app.inject('/catalog/records/nope')).statusCode).toBe(404);
    expect((await t.app.inject('/catalog/records/nope.html')).statusCode).toBe(404);
  });

  it('/catalog/records/{id}.html: the landing page for people (dcat:landingPage), escaped, with every access link', async () => {
    const id = (await search('q=routier')).records[0].identifier;
    const rec = (await t.app.inject(`/catalog/records/${encodeURIComponent(id)}`)).json();
    const r = await t.app.inject(`/catalog/records/${encodeURIComponent(id)}.html`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html; charset=utf-8/);
    expect(r.body).toMatch(/^<!DOCTYPE html>/);
    expect(r.body).toContain('<title>Réseau routier</title>');
    expect(r.body).toContain('<html lang="fr">');
    expect(r.body).toContain('Tronçons de routes du réseau routier régional');
    expect(r.body).toContain('href="https://www.etalab.gouv.fr/licence-ouverte-open-licence/"');
    expect(r.body).toContain('mailto:routes@region.test');
    for (const l of rec.links.filter((x: { protocol?: string }) => x.protocol))
      expect(r.body, l.href).toContain(`href="${l.href.replaceAll('&', '&amp;')}"`);
    expect(rec.links).toContainEqual({
      href: `http://geo.test/catalog/records/${encodeURIComponent(id)}.html`,
      rel: 'alternate',
      type: 'text/html',
    });
    // a browser asking the record IRI gets the same page
    const nego = await t.app.inject({ url: `/catalog/records/${encodeURIComponent(id)}`, headers: { accept: 'text/html,*/*;q=0.8' } });
    expect(nego.headers['content-type']).toMatch(/^text\/html/);
    expect(nego.body).toBe(r.body);
    // what a record says is text, never markup
    const html = recordHtml(
      {
        ...rec,
        title: '<script>alert(1)</script>',
        abstract: 'a & b',
        keywords: [],
        themes: [],
        links: [],
        crs: [],
        operatesOn: [],
        source: 'local',
        metadataModified: '2024-01-01T00:00:00Z',
        language: 'fre',
        contact: { organisation: '"x"', email: 'a@b"c' },
        publisher: null,
        licence: null,
      },
      'http://geo.test',
    );
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('a &amp; b');
    expect(html).toContain('href="mailto:a@b&quot;c"');
  });
});

describe('catalogue store', () => {
  // in a schema of its own: the other catalogue test files count the records of the main one
  const S = 'geodata_catalog_storetest';
  it('migrates idempotently and replaces the records of one source all-or-nothing: a failure keeps the previous run', async () => {
    await migrateCatalog(t.ctx.pool, S);
    await migrateCatalog(t.ctx.pool, S);
    const rec = (id: string, title: string): CatalogRecord =>
      testRecord(id, { title, abstract: 'test', modified: '2024-01-01', bbox: [5, 48, 6, 49], crs: [4326], source: 'test-store' });
    const src = `test-store-${process.pid}`;
    expect(await replaceSource(t.ctx.pool, src, [rec(`${src}-a`, 'Aa'), rec(`${src}-b`, 'Bb')], S)).toEqual({ upserted: 2, deleted: 0 });
    expect(await replaceSource(t.ctx.pool, src, [rec(`${src}-a`, 'Aa v2')], S)).toEqual({ upserted: 1, deleted: 1 });
    const [a] = await getRecords(t.ctx.pool, [`${src}-a`], S);
    expect(a.title).toBe('Aa v2');
    expect(a.source).toBe(src);
    // a broken record mid-run (no type: NOT NULL violation) rolls the whole run back
    const broken = { ...rec(`${src}-c`, 'Cc'), type: null as unknown as 'dataset' };
    await expect(replaceSource(t.ctx.pool, src, [rec(`${src}-d`, 'Dd'), broken], S)).rejects.toThrow();
    expect((await getRecords(t.ctx.pool, [`${src}-a`, `${src}-d`], S)).map((r) => r.title)).toEqual(['Aa v2']);
    await replaceSource(t.ctx.pool, src, [], S);
    expect(await getRecords(t.ctx.pool, [`${src}-a`], S)).toHaveLength(0);
  });
});

describe('documentation in step', () => {
  it('openapi.yaml is valid and describes the catalogue routes; the config schema accepts the test metadata', async () => {
    const SwaggerParser = (await import('@apidevtools/swagger-parser')).default;
    const api = (await SwaggerParser.validate(path.join(import.meta.dirname, '..', 'openapi.yaml'))) as { paths: Record<string, unknown> };
    for (const p of [
      '/catalog',
      '/catalog/dcat',
      '/catalog/dcat.rdf',
      '/catalog/dcat.ttl',
      '/catalog/dcat.jsonld',
      '/catalog/records/{id}',
    ])
      expect(api.paths[p], p).toBeDefined();
    const { validateConfig } = await import('../src/config/index.js');
    expect(() => validateConfig(catalogConfig)).not.toThrow();
    expect(() => validateConfig({ layers: [{ table: 'public.roads', metadata: { licence: 42 } }] })).toThrow(/licence/);
  });
});

describe('landing page', () => {
  it('links the catalogue: search and the three DCAT serialisations', async () => {
    const doc = (await t.app.inject('/?f=json')).json();
    const hrefs = doc.links.map((l: { href: string }) => l.href);
    for (const p of ['/catalog', '/catalog/dcat.rdf', '/catalog/dcat.ttl', '/catalog/dcat.jsonld'])
      expect(hrefs).toContain(`http://geo.test${p}`);
    const html = (await t.app.inject({ url: '/', headers: { accept: 'text/html' } })).body;
    expect(html).toContain('href="/catalog/dcat.rdf"');
  });
});
