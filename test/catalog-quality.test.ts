/**
 * Metadata quality of imported records (src/catalog/inspire.ts, vocab.ts; docs/catalogue-store.md):
 *  - the real ISO 19139 records of ../shared/catalogue-samples are imported (catalog-import) with
 *    their INSPIRE TG MD 2.0 report: the Géoplateforme record (IGNF_RPG) meets every checked
 *    requirement; the Géo2France, Géo-IDE and pycsw records declare no conformity and give their
 *    limitation on public access as free text (warnings, the records are imported);
 *  - the report is served per record (/catalog/records/{id}/quality), summarised for admins
 *    (/catalog/quality) and shown on the landing page; a declared conformity (pass true) becomes a
 *    dct:conformsTo dct:Standard in DCAT;
 *  - with catalog.strictImport, CSW-T refuses a record that fails (nothing written) and accepts a
 *    complete one; a non-ISO 19139 MD_Metadata (ISO 19115-3) is refused in both modes;
 *  - a DCAT record's controlled values are checked against the EU tables.
 * Runs on catalogue schemas of its own.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import N3 from 'n3';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { serialiseElement } from '../src/catalog/xmlser.js';
import { importMetadataFiles, type ImportResult } from '../src/catalog/import.js';
import { ensureCatalogReady } from '../src/catalog/sync.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';

const SAMPLES = path.resolve(import.meta.dirname, '..', '..', 'shared', 'catalogue-samples');
const have = existsSync(SAMPLES);
const TOKEN = 'quality-test-token';
const CSW = 'http://www.opengis.net/cat/csw/2.0.2';
const LAX = 'geodata_catalog_qatest';
const STRICT = 'geodata_catalog_qastrict';
const FILES = {
  geo2france: 'csw/geo2france-getrecords-outputschema-iso19139-page-1.xml',
  geoide: 'csw/geoide-getrecords-iso19139-single-dataset.xml',
  ign: 'csw/geoplateforme-getrecords-iso19139-IGNF_RPG.xml',
  pycsw: 'iso19139/pycsw-apiso-inspire-T_ortho_RAS_1998_284404.xml',
};

function mdOf(file: string): XmlElement {
  const find = (e: XmlElement): XmlElement | undefined => (e.name === 'MD_Metadata' ? e : e.children.map(find).find(Boolean));
  return find(parseXml(readFileSync(path.join(SAMPLES, file), 'utf8'), 1e8))!;
}

describe.skipIf(!have)('metadata quality of imported records', () => {
  let lax: TestApp;
  let strict: TestApp;
  let results: Record<keyof typeof FILES, ImportResult>;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quality-'));

  beforeAll(async () => {
    process.env.GEODATA_ADMIN_TOKEN = TOKEN;
    lax = await makeTestApp({ ...catalogConfig, catalog: { schema: LAX } });
    strict = await makeTestApp({ ...catalogConfig, catalog: { schema: STRICT, strictImport: true, deriveFromLayers: false } });
    for (const [t, s] of [
      [lax, LAX],
      [strict, STRICT],
    ] as const) {
      await ensureCatalogReady(t.ctx);
      await t.ctx.pool.query(`DELETE FROM ${s}.records WHERE source <> 'local'`);
    }
    const out = await Promise.all(
      Object.values(FILES).map(async (f) => (await importMetadataFiles(lax.ctx.pool, [path.join(SAMPLES, f)], LAX))[0]),
    );
    results = Object.fromEntries(Object.keys(FILES).map((k, i) => [k, out[i]])) as typeof results;
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await lax?.close();
    await strict?.close();
  });

  const quality = async (t: TestApp, id: string) => {
    const r = await t.app.inject(`/catalog/records/${encodeURIComponent(id)}/quality`);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as {
      basis: string;
      report: { profile: string; conformant: boolean; failed: string[]; checks: { id: string; req?: string; status: string }[] };
    };
  };

  it('imports every sample, the incomplete ones with warnings, and reports each requirement', async () => {
    for (const r of Object.values(results)) {
      expect(r.errors).toEqual([]);
      expect(r.imported.length).toBeGreaterThan(0);
    }
    expect(results.geo2france.imported).toHaveLength(2);
    expect(results.ign.warnings).toEqual([]);
    for (const k of ['geo2france', 'geoide', 'pycsw'] as const)
      expect(results[k].warnings.join('\n')).toMatch(/C\.17 limitations-on-public-access/);

    const ign = await quality(lax, results.ign.imported[0]);
    expect(ign.basis).toBe('source');
    expect(ign.report.profile).toBe('INSPIRE-TG-MD-2.0');
    expect(ign.report.conformant).toBe(true);
    // every requirement the guidance numbers for data sets and series was checked
    const reqs = ign.report.checks.map((c) => c.req).filter(Boolean);
    for (const req of [
      'C.5',
      'C.6',
      'C.7',
      'C.8',
      'C.9',
      'C.10',
      'C.11',
      'C.17',
      'C.18',
      'C.19',
      'C.20',
      'C.21',
      'C.22',
      '1.1',
      '1.3',
      '1.4',
      '1.7',
      '1.8',
      '1.10',
      '1.11',
    ])
      expect(reqs).toContain(req);
    expect(ign.report.checks.every((c) => c.status === 'pass')).toBe(true);

    const geoide = await quality(lax, results.geoide.imported[0]);
    expect(geoide.report.conformant).toBe(false);
    expect(geoide.report.failed).toEqual(
      expect.arrayContaining([
        'limitations-on-public-access',
        'conformity',
        'conformity-specification',
        'conformity-degree',
        'conformity-1089-2010',
      ]),
    );
    // the lineage, theme keyword, contacts and extent of this record are there
    for (const ok of ['lineage', 'inspire-theme-keyword', 'md-point-of-contact', 'responsible-organisation', 'bounding-box', 'dataset-uid'])
      expect(geoide.report.failed).not.toContain(ok);
    // a record stored before the checks existed (no report): its source document is checked when asked
    await lax.ctx.pool.query(`UPDATE ${LAX}.records SET quality = NULL WHERE identifier = $1`, [results.geoide.imported[0]]);
    const again = await quality(lax, results.geoide.imported[0]);
    expect(again.basis).toBe('source');
    expect(again.report.failed).toEqual(geoide.report.failed);
    await lax.ctx.pool.query(`UPDATE ${LAX}.records SET quality = $2 WHERE identifier = $1`, [
      results.geoide.imported[0],
      JSON.stringify(geoide.report),
    ]);
    // the pycsw record's temporal extent is a GML 3.1.1 gml:TimePeriod (ISO/TS 19139:2007 uses GML 3.2)
    expect((await quality(lax, results.pycsw.imported[0])).report.failed).toContain('xml-schema');
  });

  it('a declared conformity becomes dct:conformsTo a dct:Standard in DCAT; the landing page shows the report', async () => {
    const id = results.ign.imported[0];
    const ttl = await lax.app.inject(`/catalog/records/${encodeURIComponent(id)}?f=ttl`);
    const store = new N3.Store(new N3.Parser().parse(ttl.body));
    const DCT = 'http://purl.org/dc/terms/';
    const specs = store.getQuads(null, N3.DataFactory.namedNode(`${DCT}conformsTo`), null, null).map((q) => q.object);
    const titles = specs.flatMap((s) => store.getQuads(s, N3.DataFactory.namedNode(`${DCT}title`), null, null).map((q) => q.object.value));
    expect(titles.join('\n')).toMatch(/1089\/2010/);
    for (const s of specs)
      expect(
        store.getQuads(
          s,
          N3.DataFactory.namedNode('http://www.w3.org/1999/02/22-rdf-syntax-ns#type'),
          N3.DataFactory.namedNode(`${DCT}Standard`),
          null,
        ),
      ).toHaveLength(1);

    const html = (await lax.app.inject(`/catalog/records/${encodeURIComponent(results.geoide.imported[0])}.html`)).body;
    expect(html).toContain('Qualité des métadonnées');
    expect(html).toMatch(/C\.17 Limitations on public access/);
    expect(html).toContain(`/catalog/records/${encodeURIComponent(results.geoide.imported[0])}/quality`);
  });

  it('a record derived from a layer is checked through its ISO 19139 output', async () => {
    const list = (await lax.app.inject('/catalog?limit=100&q=routier')).json() as {
      records: { identifier: string; layer: string | null }[];
    };
    const roads = list.records.find((r) => r.layer === 'roads')!;
    const q = await quality(lax, roads.identifier);
    expect(q.basis).toBe('crosswalk');
    // configured INSPIRE theme, lineage, licence, contact: what INSPIRE asks of our own ISO output
    for (const ok of [
      'inspire-theme-keyword',
      'lineage',
      'conformity-1089-2010',
      'conformity-degree',
      'limitations-on-public-access',
      'conditions-for-access-and-use',
      'responsible-organisation',
      'md-point-of-contact',
      'topic-category',
      'bounding-box',
    ])
      expect(q.report.checks.find((c) => c.id === ok)?.status, ok).toBe('pass');
  });

  it('admins get the catalogue-wide summary', async () => {
    expect((await lax.app.inject('/catalog/quality')).statusCode).toBe(401);
    const r = await lax.app.inject({ url: '/catalog/quality', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.statusCode).toBe(200);
    const body = r.json() as {
      total: number;
      checked: number;
      failing: number;
      failuresByCheck: { check: string; records: number }[];
      records: { identifier: string }[];
    };
    expect(body.total).toBeGreaterThan(body.checked);
    expect(body.checked).toBeGreaterThanOrEqual(5);
    expect(body.failing).toBe(4); // geo2france ×2, geoide, pycsw
    expect(body.failuresByCheck.find((c) => c.check === 'limitations-on-public-access')?.records).toBe(4);
    expect(body.records.map((x) => x.identifier).sort()).toEqual(
      [...results.geo2france.imported, ...results.geoide.imported, ...results.pycsw.imported].sort(),
    );
    expect((await lax.app.inject({ url: '/catalog/quality?limit=x', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(400);
  });

  const insert = (t: TestApp, el: string) =>
    t.app.inject({
      method: 'POST',
      url: '/csw',
      headers: { 'content-type': 'application/xml', authorization: `Bearer ${TOKEN}` },
      payload: `<csw:Transaction xmlns:csw="${CSW}" service="CSW" version="2.0.2"><csw:Insert>${el}</csw:Insert></csw:Transaction>`,
    });
  const exception = (body: string) => {
    const ex = parseXml(body).children[0];
    return { code: ex.attrs.exceptionCode, locator: ex.attrs.locator, text: ex.children[0]?.text ?? '' };
  };

  it('strictImport: CSW-T refuses a record failing the INSPIRE checks (nothing written), accepts a complete one', async () => {
    const bad = await insert(strict, serialiseElement(mdOf(FILES.geoide)));
    expect(bad.statusCode).toBe(400);
    expect(exception(bad.body)).toMatchObject({ code: 'InvalidParameterValue', locator: 'Insert' });
    expect(exception(bad.body).text).toMatch(/INSPIRE-TG-MD-2\.0.*C\.17/);
    const n = await strict.ctx.pool.query(`SELECT count(*)::int AS n FROM ${STRICT}.records`);
    expect(n.rows[0].n).toBe(0);
    const good = await insert(strict, serialiseElement(mdOf(FILES.ign)));
    expect(good.statusCode, good.body).toBe(200);
    const q = await strict.ctx.pool.query(`SELECT quality->>'conformant' AS ok FROM ${STRICT}.records`);
    expect(q.rows).toEqual([{ ok: 'true' }]);
    // without strictImport the same incomplete record is published, with its report
    const lenient = await insert(
      lax,
      serialiseElement(mdOf(FILES.geoide)).replace(
        /<gco:CharacterString>([^<]*)<\/gco:CharacterString>/,
        '<gco:CharacterString>$1-copy</gco:CharacterString>',
      ),
    );
    expect(lenient.statusCode, lenient.body).toBe(200);
  });

  it('an MD_Metadata that is not ISO 19139 (ISO 19115-3 mdb) is refused in both modes', async () => {
    const mdb = '<mdb:MD_Metadata xmlns:mdb="http://standards.iso.org/iso/19115/-3/mdb/2.0"><mdb:metadataIdentifier/></mdb:MD_Metadata>';
    for (const t of [lax, strict]) {
      const r = await insert(t, mdb);
      expect(r.statusCode).toBe(400);
      expect(exception(r.body)).toMatchObject({ code: 'InvalidParameterValue', locator: 'Insert' });
      expect(exception(r.body).text).toMatch(/19115\/-3\/mdb/);
    }
  });

  it('a DCAT record: its controlled values are checked against the EU tables; strictImport refuses wrong ones', async () => {
    const ttl = (freq: string, format: string) => `@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
<https://data.example/ds/1> a dcat:Dataset ; dct:identifier "vocab-1" ; dct:title "Vocabulaires"@fr ; dct:description "d"@fr ;
  dct:accrualPeriodicity <${freq}> ; dct:language <http://publications.europa.eu/resource/authority/language/FRA> ;
  dcat:theme <http://publications.europa.eu/resource/authority/data-theme/TRAN> ;
  dcat:distribution [ a dcat:Distribution ; dcat:accessURL <https://data.example/f.csv> ; dct:format <${format}> ] .`;
    const EU = 'http://publications.europa.eu/resource/authority';
    const bad = path.join(dir, 'bad.ttl');
    writeFileSync(bad, ttl('http://example.org/freq/weekly', `${EU}/file-type/NOT-A-CODE`));
    const [r] = await importMetadataFiles(lax.ctx.pool, [bad], LAX);
    expect(r.imported).toEqual(['vocab-1']);
    expect(r.warnings.join('\n')).toMatch(/frequency: not in .*frequency: http:\/\/example\.org\/freq\/weekly/);
    expect(r.warnings.join('\n')).toMatch(/format: not in .*file-type/);
    const q = await quality(lax, 'vocab-1');
    expect(q.report).toMatchObject({ profile: 'DCAT-AP-3.0.1-vocabularies', conformant: false });
    expect(q.report.checks.find((c) => c.id === 'theme')?.status).toBe('pass');
    expect(q.report.checks.find((c) => c.id === 'language')?.status).toBe('pass');
    const [s] = await importMetadataFiles(strict.ctx.pool, [bad], STRICT, { strict: true });
    expect(s.imported).toEqual([]);
    expect(s.errors.join()).toMatch(/catalog\.strictImport/);
    const good = path.join(dir, 'good.ttl');
    writeFileSync(good, ttl(`${EU}/frequency/WEEKLY`, `${EU}/file-type/CSV`));
    const [g] = await importMetadataFiles(strict.ctx.pool, [good], STRICT, { strict: true });
    expect(g).toMatchObject({ imported: ['vocab-1'], errors: [], warnings: [] });
  });
});

describe.skipIf(have)('metadata quality', () => {
  it(`skipped: ${SAMPLES} is absent`, () => console.warn(`catalogue samples not found at ${SAMPLES}`));
});
