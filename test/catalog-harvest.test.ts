/**
 * Harvesting: the real catalogue samples in ../shared/catalogue-samples served by a local HTTP
 * server (skipped visibly when ../shared is absent), a re-harvest that updates in place and
 * deletes what left the source, a source failing midway that keeps the previous run, and a round
 * trip — this server's own CSW and DCAT harvested into a second catalogue give the same records.
 * Harvests go into a catalogue schema of their own, so the other test files' counts hold.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig, startSourceServer, type SourceRoute } from './helpers/catalog.js';
import { migrateCatalog, CATALOG_SCHEMA } from '../src/catalog/store.js';
import { getRecords } from '../src/catalog/query.js';
import { harvest, harvestOwner, dcatRecordsFromCswResponse, type HarvestReport } from '../src/catalog/harvest.js';
import type { CatalogRecord } from '../src/catalog/model.js';
import { ensureCatalogReady } from '../src/catalog/sync.js';
import { withEuThemes } from '../src/catalog/dcat.js';

const SAMPLES = path.resolve(import.meta.dirname, '..', '..', 'shared', 'catalogue-samples');
const haveSamples = existsSync(SAMPLES);
const S = 'geodata_catalog_harvesttest';

let t: TestApp;
let server: http.Server;
let base = '';
/** path → [content-type, body] or a function; mutable between harvests */
const routes = new Map<string, SourceRoute>();

beforeAll(async () => {
  t = await makeTestApp(catalogConfig);
  await migrateCatalog(t.ctx.pool, S);
  await t.ctx.pool.query(`DELETE FROM ${S}.records`);
  ({ server, base } = await startSourceServer(routes));
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await t?.ctx.pool.query(`DELETE FROM ${S}.records`).catch(() => undefined);
  await t?.close();
});

const clean = () => t.ctx.pool.query(`DELETE FROM ${S}.records`);
const sample = (rel: string) => readFileSync(path.join(SAMPLES, rel), 'utf8');

/** The records of harvest source `name` (stored with the owner harvest:<name>). */
async function bySource(name: string): Promise<CatalogRecord[]> {
  const r = await t.ctx.pool.query<{ identifier: string }>(`SELECT identifier FROM ${S}.records WHERE source = $1 ORDER BY identifier`, [
    harvestOwner(name),
  ]);
  return getRecords(
    t.ctx.pool,
    r.rows.map((x) => x.identifier),
    S,
  );
}

function all(el: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    all(c, name, out);
  }
  return out;
}
const text = (el: XmlElement | undefined): string | undefined => (el ? (el.children[0]?.text ?? el.text) : undefined);

function expectOk(r: HarvestReport) {
  expect(r.ok, r.errors.join('\n')).toBe(true);
}

describe.skipIf(!haveSamples)('harvesting the catalogue samples', () => {
  it('CSW ISO 19139 responses (Géo2France, Géo-IDE, Géoplateforme, pycsw): title, identifier, licence, distributions, extent kept', async () => {
    const files = [
      'csw/geo2france-getrecords-outputschema-iso19139-page-1.xml',
      'csw/geoide-getrecords-iso19139-single-dataset.xml',
      'csw/geoplateforme-getrecords-iso19139-IGNF_RPG.xml',
      'iso19139/pycsw-apiso-inspire-T_ortho_RAS_1998_284404.xml',
    ];
    for (const f of files) {
      let body = sample(f);
      // a first page of a longer result, served here as a whole source: its counts say so (a page
      // served again for the next startPosition would be a nextRecord loop, which fails the run)
      body = body.replace(
        /numberOfRecordsMatched="\d+" numberOfRecordsReturned="(\d+)"([^>]*)nextRecord="\d+"/,
        'numberOfRecordsMatched="$1" numberOfRecordsReturned="$1"$2nextRecord="0"',
      );
      if (!body.includes('GetRecordsResponse')) {
        // a standalone record: served inside a one-record GetRecords response
        body = `<csw:GetRecordsResponse xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" version="2.0.2"><csw:SearchStatus timestamp="2024-01-01T00:00:00Z"/><csw:SearchResults numberOfRecordsMatched="1" numberOfRecordsReturned="1" nextRecord="0">${body.replace(/<\?xml[^>]*\?>/, '')}</csw:SearchResults></csw:GetRecordsResponse>`;
      }
      routes.set(`/csw/${f}`, () => ({ type: 'application/xml', body }));
      const name = `csw-${path.basename(f, '.xml')}`;
      const report = await harvest(t.ctx.pool, { name, url: `${base}/csw/${f}`, type: 'csw' }, { schema: S });
      expectOk(report);
      const mds = all(parseXml(body), 'MD_Metadata');
      expect(report.found, f).toBe(mds.length);
      const recs = await bySource(name);
      expect(recs).toHaveLength(mds.length);
      for (const md of mds) {
        const fileId = text(all(md, 'fileIdentifier')[0])!;
        const rec = recs.find((r) => r.sourceId === fileId)!;
        expect(rec, fileId).toBeDefined();
        const ident = all(md, 'identificationInfo')[0];
        expect(rec.title).toBe(text(all(all(ident, 'citation')[0], 'title')[0]));
        // identifier: the resource identifier as the GeoDCAT-AP XSLT builds it, else the fileIdentifier
        const rid = all(all(ident, 'citation')[0], 'identifier')[0];
        if (!rid) expect(rec.identifier).toBe(fileId);
        else expect(rec.identifier.endsWith(text(all(rid, 'code')[0])!.replace(/.*\//, ''))).toBe(true);
        // extent
        const geo = all(ident, 'EX_GeographicBoundingBox')[0];
        if (geo) {
          const [w, s, e, n] = ['westBoundLongitude', 'southBoundLatitude', 'eastBoundLongitude', 'northBoundLatitude'].map((k) =>
            Number(text(all(geo, k)[0])),
          );
          expect(rec.bbox).toEqual([Math.min(w, e), Math.min(s, n), Math.max(w, e), Math.max(s, n)]); // some samples swap west/east
        }
        // distributions: every distinct online resource of distributionInfo
        const online = all(all(md, 'distributionInfo')[0] ?? md, 'CI_OnlineResource');
        const distinct = new Set(online.map((o) => `${text(all(o, 'linkage')[0])}|${text(all(o, 'name')[0]) ?? ''}`));
        expect(rec.links.length, fileId).toBe(distinct.size);
        // licence, use and access conditions: nothing dropped — an Anchor keeps its URI (licence or
        // access rights), free text goes to the rights statement
        for (const lc of all(ident, 'MD_LegalConstraints')) {
          for (const oc of all(lc, 'otherConstraints').concat(all(lc, 'useLimitation'))) {
            const href = all(oc, 'Anchor')[0]?.attrs['xlink:href'];
            if (href && oc.name === 'otherConstraints') expect([rec.licence?.url, rec.accessRights]).toContain(href);
            else if (text(oc)) expect(`${rec.licence?.label ?? ''} ${rec.rights ?? ''}`, text(oc)).toContain(text(oc)!.slice(0, 30));
          }
        }
      }
    }
    const rpg = (await bySource('csw-geoplateforme-getrecords-iso19139-IGNF_RPG'))[0];
    for (const p of ['OGC:WMS', 'OGC:WFS'])
      expect(
        rpg.links.some((l) => l.protocol.startsWith(p)),
        p,
      ).toBe(true);
  });

  it('DCAT RDF/XML files (udata catalog, bnodes, series, DataRA): datasets with identifier, title, licence, distributions, spatial', async () => {
    const expected: Record<string, { datasets: number; services: number }> = {
      'dcat/udata-catalog.rdf.xml': { datasets: 4, services: 0 },
      'dcat/udata-bnodes-spatial.rdf.xml': { datasets: 3, services: 1 },
      'dcat/udata-dataset-series.rdf.xml': { datasets: 1, services: -1 }, // one node typed Dataset and DatasetSeries
      'dcat/datara--5a26b0f6-0ccf-46ad-ac58-734054b91977.rdf.xml': { datasets: 1, services: -1 },
    };
    const kept: Record<string, CatalogRecord[]> = {};
    for (const [f, exp] of Object.entries(expected)) {
      routes.set(`/${f}`, () => ({ type: 'application/rdf+xml', body: sample(f) }));
      const name = `dcat-${path.basename(f)}`;
      await clean(); // identifiers are unique in a catalogue; the samples reuse '1', '2', …
      const report = await harvest(t.ctx.pool, { name, url: `${base}/${f}`, type: 'dcat' }, { schema: S });
      expectOk(report);
      const recs = await bySource(name);
      kept[f] = recs;
      const ds = recs.filter((r) => r.type !== 'service');
      expect(ds.length, f).toBe(exp.datasets);
      if (exp.services >= 0) expect(recs.filter((r) => r.type === 'service').length, f).toBe(exp.services);
      for (const r of ds) {
        expect(r.title).toBeTruthy();
        expect(r.identifier).toBeTruthy();
      }
    }
    const cat = kept['dcat/udata-catalog.rdf.xml'];
    const d1 = cat.find((r) => r.identifier === '1')!;
    expect(d1.title).toBe('Dataset 1');
    expect(d1.links.length).toBe(4); // 3 distributions + the hasPart resource
    expect(d1.temporalStart).toBe('2016-01-01');
    expect(cat.find((r) => r.identifier === '3')!.rights).toContain('Licence Ouverte Version 2.0');
    expect(cat.find((r) => r.identifier === '2')!.rights).toContain('Licence Ouverte Version 2.0');
    // spatial from GeoJSON / WKT literals; invalid geometries dropped, not fatal
    const bn = kept['dcat/udata-bnodes-spatial.rdf.xml'];
    expect(bn.filter((r) => r.bbox).length).toBeGreaterThan(0);
    const datara = kept['dcat/datara--5a26b0f6-0ccf-46ad-ac58-734054b91977.rdf.xml'][0];
    expect(datara.title).toMatch(/Campings/);
    expect(datara.bbox).not.toBeNull();
    expect(datara.links.length).toBeGreaterThan(0);
    const series = kept['dcat/udata-dataset-series.rdf.xml'];
    expect(series.some((r) => r.type === 'series')).toBe(true);
  });

  it('DCAT JSON-LD with hydra paging (PartialCollectionView and legacy PagedCollection): both pages followed', async () => {
    for (const kind of ['partial', 'paged']) {
      for (const n of [1, 2]) {
        routes.set(`/hydra-${kind}/catalog.jsonld?page=${n}`, () => ({
          type: 'application/ld+json',
          body: sample(`dcat/hydra-${kind}-collection-${n}.jsonld`).replaceAll(
            'http://data.test.org/catalog.jsonld?page=',
            `${base}/hydra-${kind}/catalog.jsonld?page=`,
          ),
        }));
      }
      const name = `hydra-${kind}`;
      await clean();
      const report = await harvest(t.ctx.pool, { name, url: `${base}/hydra-${kind}/catalog.jsonld?page=1`, type: 'dcat' }, { schema: S });
      expectOk(report);
      expect(report.pages).toBe(2);
      expect(report.found).toBe(4); // hydra:totalItems 4
    }
  });

  it('CSW responses with outputSchema DCAT / GeoDCAT-AP (Géo2France): each rdf:RDF record read on its own', () => {
    for (const f of [
      'csw/geo2france-getrecords-outputschema-dcat-page-1.xml',
      'csw/geo2france-getrecords-outputschema-geodcatap-page-1.xml',
    ]) {
      const r = dcatRecordsFromCswResponse(sample(f), 'x', new Date().toISOString());
      expect(
        r.records.filter((x) => x.type !== 'service'),
        f,
      ).toHaveLength(2);
      for (const rec of r.records) {
        expect(rec.identifier).toBeTruthy();
        expect(rec.title).toBeTruthy();
      }
    }
  });
});

describe.skipIf(haveSamples)('harvest samples', () => {
  it(`skipped: ${SAMPLES} is absent`, () => console.warn(`catalogue samples not found at ${SAMPLES}: sample harvests skipped`));
});

describe('re-harvest and failures', () => {
  it('updates in place, deletes what left the source, and a failing source keeps the previous run', async () => {
    const mk = (ids: string[], suffix = '') =>
      `@prefix dcat: <http://www.w3.org/ns/dcat#>. @prefix dct: <http://purl.org/dc/terms/>. @prefix hydra: <http://www.w3.org/ns/hydra/core#>.\n` +
      ids
        .map(
          (i) =>
            `<http://remote.test/ds/${i}> a dcat:Dataset; dct:identifier "remote-${i}"; dct:title "Jeu ${i}${suffix}"@fr; dct:description "d"@fr.`,
        )
        .join('\n');
    let page1 = mk(['a', 'b', 'c']);
    let page2: string | null = `${mk(['d'])}`;
    routes.set('/remote/cat.ttl?page=1', () => ({
      type: 'text/turtle',
      body: `${page1}\n<http://remote.test/cat> hydra:view [ a hydra:PartialCollectionView; hydra:next <${base}/remote/cat.ttl?page=2> ].`,
    }));
    routes.set('/remote/cat.ttl?page=2', () =>
      page2 === null ? { status: 500, type: 'text/plain', body: 'boom' } : { type: 'text/turtle', body: page2! },
    );
    const src = { name: 'remote-ttl', url: `${base}/remote/cat.ttl?page=1`, type: 'dcat' as const };
    const r1 = await harvest(t.ctx.pool, src, { schema: S });
    expectOk(r1);
    expect([r1.found, r1.new, r1.updated, r1.deleted]).toEqual([4, 4, 0, 0]);
    page1 = mk(['a', 'b'], ' (v2)');
    const r2 = await harvest(t.ctx.pool, src, { schema: S });
    expect([r2.found, r2.new, r2.updated, r2.deleted]).toEqual([3, 0, 3, 1]);
    const recs = await bySource('remote-ttl');
    expect(recs.map((r) => `${r.identifier}:${r.title}`)).toEqual(['remote-a:Jeu a (v2)', 'remote-b:Jeu b (v2)', 'remote-d:Jeu d']);
    expect(recs.every((r) => r.harvestedAt && r.sourceId?.startsWith('http://remote.test/ds/'))).toBe(true);
    // page 2 fails: nothing changes
    page1 = mk(['z']);
    page2 = null;
    const r3 = await harvest(t.ctx.pool, src, { schema: S });
    expect(r3.ok).toBe(false);
    expect(r3.errors.join()).toMatch(/HTTP 500/);
    expect((await bySource('remote-ttl')).map((r) => r.identifier)).toEqual(['remote-a', 'remote-b', 'remote-d']);
    // unreachable source: same
    const r4 = await harvest(t.ctx.pool, { ...src, url: 'http://127.0.0.1:9/none' }, { schema: S, timeoutMs: 5000 });
    expect(r4.ok).toBe(false);
    expect(await bySource('remote-ttl')).toHaveLength(3);
  });
});

describe('round trip: this server harvested into a second catalogue', () => {
  it('CSW (ISO 19139) and DCAT (RDF/XML, paged) give the same records as the local catalogue', async () => {
    const own = await makeTestApp({ ...catalogConfig, service: { ...catalogConfig.service, onlineResource: undefined } });
    const addr = (await own.app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
    await ensureCatalogReady(own.ctx);
    const ownSchema = own.ctx.config.catalog?.schema ?? CATALOG_SCHEMA; // each test app has its own catalogue
    const local = await getRecords(
      t.ctx.pool,
      (
        await t.ctx.pool.query<{ identifier: string }>(
          `SELECT identifier FROM "${ownSchema}".records WHERE source = 'local' ORDER BY identifier`,
        )
      ).rows.map((r) => r.identifier),
      ownSchema,
    );
    await clean();
    const viaCsw = await harvest(t.ctx.pool, { name: 'self-csw', url: `${addr}/csw`, type: 'csw' }, { schema: S });
    expectOk(viaCsw);
    const csw = await bySource('self-csw');
    await clean(); // the same identifiers come back through DCAT
    const viaDcat = await harvest(
      t.ctx.pool,
      { name: 'self-dcat', url: `${addr}/catalog/dcat.rdf?pageSize=2`, type: 'dcat' },
      { schema: S },
    );
    expectOk(viaDcat);
    expect(viaDcat.pages).toBe(2);
    await own.close();
    const dcat = await bySource('self-dcat');
    expect(csw.map((r) => r.identifier)).toEqual(local.map((r) => r.identifier));
    // each harvested ISO 19139 record carries its INSPIRE quality report (this server's output of an
    // INSPIRE-themed layer meets every checked requirement)
    for (const h of csw) expect(h.quality?.profile).toBe('INSPIRE-TG-MD-2.0');
    const inspireLayer = local.find((l) => l.themes.some((th) => th.uri.startsWith('http://inspire.ec.europa.eu/theme/')))!;
    expect(csw.find((h) => h.identifier === inspireLayer.identifier)?.quality?.failed).toEqual([]);
    expect(dcat.map((r) => r.identifier).sort()).toEqual(local.map((r) => r.identifier).sort());
    for (const l of local) {
      for (const h of [csw.find((r) => r.identifier === l.identifier)!, dcat.find((r) => r.identifier === l.identifier)!]) {
        expect(h.title).toBe(l.title);
        expect(h.type).toBe(l.type);
        if (l.type !== 'service' || h.source === harvestOwner('self-csw')) expect(h.abstract).toBe(l.abstract);
        expect(h.licence?.url).toBe(l.licence?.url);
        if (l.type === 'service') continue;
        expect(h.keywords).toEqual(expect.arrayContaining(l.keywords));
        // the DCAT output adds the EU data theme of a layer that names only INSPIRE themes (vocab.ts alignment)
        const themes = h.source === harvestOwner('self-csw') ? l.themes : withEuThemes(l, l.themes);
        expect(h.themes.map((x) => x.uri).sort()).toEqual(themes.map((x) => x.uri).sort());
        expect(h.bbox!.map((n) => n.toFixed(6))).toEqual(l.bbox!.map((n) => n.toFixed(6)));
        expect(h.modified).toBe(l.modified);
        if (l.temporalStart || h.source === harvestOwner('self-csw')) expect(h.temporalStart ?? null).toBe(l.temporalStart ?? null);
        // DCAT-AP recommends dct:temporal: without a configured extent the DCAT says the snapshot at the last update
        else expect([h.temporalStart, h.temporalEnd]).toEqual([l.issued && l.issued <= l.modified! ? l.issued : l.modified, l.modified]);
        expect(h.frequency ?? null).toBe(l.frequency ?? null);
        for (const link of l.links) {
          // a download without an EU file-type code (FlatGeobuf) is not a DCAT distribution (docs/formats.md)
          if (h.source !== harvestOwner('self-csw') && link.protocol === 'WWW:DOWNLOAD-1.0-http--download' && !link.format) continue;
          expect(
            h.links.some((x) => x.url.endsWith(link.url)),
            link.url,
          ).toBe(true);
        }
      }
    }
    const wms = csw.find((r) => r.serviceType === 'view' && r.links[0]?.url.includes('/wms'))!;
    expect(wms.operatesOn.sort()).toEqual(local.find((r) => r.serviceType === 'WMS')!.operatesOn.sort());
  });
});

describe('POST /catalog/harvest', () => {
  it('needs the admin token; unknown sources and bad bodies are RFC 7807 problems', async () => {
    process.env.GEODATA_ADMIN_TOKEN = 'catalogue-test-token';
    const none = await t.app.inject({ method: 'POST', url: '/catalog/harvest', payload: { name: 'x' } });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/Bearer/);
    const auth = { authorization: 'Bearer catalogue-test-token' };
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/catalog/harvest',
          headers: { ...auth, 'content-type': 'application/json' },
          payload: '{"name":"nope"}',
        })
      ).statusCode,
    ).toBe(404);
    const bad = await t.app.inject({
      method: 'POST',
      url: '/catalog/harvest',
      headers: auth,
      payload: { name: 'local', url: 'http://x.test/', type: 'dcat' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().status).toBe(400);
    expect(
      (await t.app.inject({ method: 'POST', url: '/catalog/harvest', headers: auth, payload: { name: 'x', url: 'ftp://x', type: 'csw' } }))
        .statusCode,
    ).toBe(400);
  });
});
