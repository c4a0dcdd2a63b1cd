/**
 * CSW-T Transaction: admin-authenticated Insert / Update / Delete of Dublin Core, ISO 19139 and
 * DCAT records, all-or-nothing, never touching the records derived from this server's layers.
 * Runs on a catalogue schema of its own (config catalog.schema) so that the other catalogue test
 * files, which count records, are not disturbed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';
import { ensureCatalogReady, syncCatalog } from '../src/catalog/sync.js';
import { importMetadataFiles } from '../src/catalog/import.js';
import { testDatabaseUrl } from './helpers/app.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const CSW = 'http://www.opengis.net/cat/csw/2.0.2';
const GMD = 'http://www.isotc211.org/2005/gmd';
const TOKEN = 'csw-t-test-token';
let t: TestApp;
const collected: string[] = [];

beforeAll(async () => {
  process.env.GEODATA_ADMIN_TOKEN = TOKEN;
  t = await makeTestApp({ ...catalogConfig, catalog: { schema: 'geodata_catalog_txtest' } });
  await ensureCatalogReady(t.ctx); // migrate + derive into the test's own schema
  await t.ctx.pool.query(`DELETE FROM geodata_catalog_txtest.records WHERE source <> 'local'`);
  // derived records deleted by an interrupted earlier run come back
  await t.ctx.pool.query('DELETE FROM geodata_catalog_txtest.suppressed');
  await syncCatalog(t.ctx);
});
afterAll(async () => {
  await t?.ctx.pool.query(`DELETE FROM geodata_catalog_txtest.records WHERE source <> 'local'`).catch(() => undefined);
  await t?.close();
});

async function tx(body: string, token: string | null = TOKEN) {
  const r = await t.app.inject({
    method: 'POST',
    url: '/csw',
    headers: { 'content-type': 'application/xml', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    payload: `<csw:Transaction xmlns:csw="${CSW}" xmlns:ogc="http://www.opengis.net/ogc" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dct="http://purl.org/dc/terms/" xmlns:ows="http://www.opengis.net/ows" service="CSW" version="2.0.2">${body}</csw:Transaction>`,
  });
  collected.push(r.body);
  return { status: r.statusCode, xml: parseXml(r.body), headers: r.headers };
}
const summary = (x: XmlElement) => {
  const s = x.children.find((c) => c.name === 'TransactionSummary')!;
  return ['totalInserted', 'totalUpdated', 'totalDeleted'].map((n) => Number(s.children.find((c) => c.name === n)!.text));
};
async function byId(id: string, schema = CSW) {
  const r = await t.app.inject(
    `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ELEMENTSETNAME=full&OUTPUTSCHEMA=${encodeURIComponent(schema)}&ID=${encodeURIComponent(id)}`,
  );
  return parseXml(r.body).children[0];
}
const dcRecord = (id: string, title: string) =>
  `<csw:Record><dc:identifier>${id}</dc:identifier><dc:title>${title}</dc:title><dc:type>dataset</dc:type><dc:subject>eau</dc:subject><dct:abstract>Publié par CSW-T</dct:abstract><dc:rights>Licence Ouverte</dc:rights><ows:BoundingBox crs="urn:ogc:def:crs:EPSG::4326"><ows:LowerCorner>48 5</ows:LowerCorner><ows:UpperCorner>49 6</ows:UpperCorner></ows:BoundingBox></csw:Record>`;
const delById = (id: string) =>
  `<csw:Delete typeName="csw:Record"><csw:Constraint version="1.1.0"><ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>dc:identifier</ogc:PropertyName><ogc:Literal>${id}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter></csw:Constraint></csw:Delete>`;

describe('CSW-T Transaction', () => {
  it('refuses without the admin token and without an XML body', async () => {
    const r = await tx(`<csw:Insert>${dcRecord('ext-0', 'x')}</csw:Insert>`, null);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/Bearer/);
    expect((await tx(`<csw:Insert>${dcRecord('ext-0', 'x')}</csw:Insert>`, 'wrong')).status).toBe(401);
    const kvp = await t.app.inject({
      url: '/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=Transaction',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(kvp.statusCode).toBe(400);
  });

  it('Insert (Dublin Core and ISO 19139), searchable at once; Update replaces; Delete removes; all-or-nothing', async () => {
    // an ISO record written by this server for one layer, re-published under another identifier
    const local = parseXml(
      (
        await t.app.inject(
          `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=gmd:MD_Metadata&RESULTTYPE=results&MAXRECORDS=1&OUTPUTSCHEMA=${encodeURIComponent(GMD)}&ELEMENTSETNAME=full&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent("dc:title = 'Communes'")}`,
        )
      ).body,
    );
    const localId = local.children[1].children[0].children[0].children[0].text;
    const isoXml = (await t.app.inject(`/catalog/records/${localId}?f=iso`)).body
      .replace(/<\?xml[^>]*\?>/, '')
      .replaceAll(localId, 'ext-iso-1')
      .replace(
        '<gco:CharacterString>Communes</gco:CharacterString>',
        '<gco:CharacterString>Communes (copie partenaire)</gco:CharacterString>',
      );
    const ins = await tx(`<csw:Insert>${dcRecord('ext-1', 'Qualité de l’eau')}${isoXml}</csw:Insert>`);
    expect(ins.status).toBe(200);
    expect(summary(ins.xml)).toEqual([2, 0, 0]);
    expect(ins.xml.children.find((c) => c.name === 'InsertResult')!.children.map((c) => c.children[0].text)).toEqual([
      'ext-1',
      'ext-iso-1',
    ]);
    const dc = await byId('ext-1');
    expect(dc.children.find((c) => c.name === 'title')!.text).toBe('Qualité de l’eau');
    const found = await t.app.inject(`/catalog?q=${encodeURIComponent('qualite eau')}`);
    expect(found.json().records.map((r: { identifier: string }) => r.identifier)).toContain('ext-1');
    expect((await byId('ext-iso-1', GMD)).name).toBe('MD_Metadata');
    // inserting an existing identifier fails and rolls the whole request back
    const dup = await tx(`<csw:Insert>${dcRecord('ext-2', 'Deux')}${dcRecord('ext-1', 'encore')}</csw:Insert>`);
    expect(dup.status).toBe(400);
    expect(await byId('ext-2')).toBeUndefined();
    // update: whole record
    const up = await tx(`<csw:Update>${dcRecord('ext-1', 'Qualité de l’eau 2025')}</csw:Update>`);
    expect(summary(up.xml)).toEqual([0, 1, 0]);
    expect((await byId('ext-1')).children.find((c) => c.name === 'title')!.text).toBe('Qualité de l’eau 2025');
    // records derived from the layers cannot be changed; they can be deleted, and stay deleted when derived again
    const upLocal = await tx(`<csw:Update>${dcRecord(localId, 'Piraté')}</csw:Update>`);
    expect(upLocal.status).toBe(400);
    const delLocal = await tx(delById(localId));
    expect(summary(delLocal.xml)).toEqual([0, 0, 1]);
    expect(await byId(localId)).toBeUndefined();
    await syncCatalog(t.ctx);
    expect(await byId(localId)).toBeUndefined();
    await t.ctx.pool.query('DELETE FROM geodata_catalog_txtest.suppressed');
    await syncCatalog(t.ctx);
    expect((await byId(localId)).children.find((c) => c.name === 'title')!.text).toBe('Communes');
    // delete
    const del = await tx(`${delById('ext-1')}${delById('ext-iso-1')}`);
    expect(summary(del.xml)).toEqual([0, 0, 2]);
    expect(await byId('ext-1')).toBeUndefined();
    expect((await tx('<csw:Update><csw:RecordProperty><csw:Name>dc:title</csw:Name></csw:RecordProperty></csw:Update>')).status).toBe(400);
  });

  it.skipIf(!canValidate)('Transaction responses are valid CSW 2.0.2', () => {
    const results = validateXml(collected);
    expect(
      results
        .filter((r) => !r.valid)
        .map((r) => r.output)
        .join('\n'),
    ).toBe('');
  });
  it.skipIf(canValidate)(`schema validation skipped: ${skipReason}`, () => console.warn(skipReason));
});

describe('catalog-import (metadata files published in the catalogue)', () => {
  const SAMPLES = path.resolve(import.meta.dirname, '..', '..', 'shared', 'catalogue-samples');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'catimport-'));
  const dcFile = path.join(dir, 'record.xml');
  writeFileSync(
    dcFile,
    `<csw:Record xmlns:csw="${CSW}" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier>imp-dc-1</dc:identifier><dc:title>Arrêtés de voirie</dc:title></csw:Record>`,
  );
  const ttlFile = path.join(dir, 'cat.ttl');
  writeFileSync(
    ttlFile,
    '@prefix dcat: <http://www.w3.org/ns/dcat#>. @prefix dct: <http://purl.org/dc/terms/>. <http://x.test/d/1> a dcat:Dataset; dct:identifier "imp-ttl-1"; dct:title "Jeu Turtle"@fr.',
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('imports Dublin Core, Turtle and (when ../shared is present) ISO 19139 and DCAT RDF/XML files', async () => {
    const files = [dcFile, ttlFile];
    const haveSamples = existsSync(SAMPLES);
    if (haveSamples)
      files.push(
        path.join(SAMPLES, 'iso19139/pycsw-apiso-inspire-T_ortho_RAS_1998_284404.xml'),
        path.join(SAMPLES, 'dcat/datara--5a26b0f6-0ccf-46ad-ac58-734054b91977.rdf.xml'),
      );
    else console.warn('catalogue samples absent: ISO/DCAT sample imports skipped');
    const res = await importMetadataFiles(t.ctx.pool, files, 'geodata_catalog_txtest');
    for (const r of res) expect(r.imported.length, `${r.file}: ${r.errors.join('; ')}`).toBeGreaterThan(0);
    expect((await byId('imp-dc-1')).children.find((c) => c.name === 'title')!.text).toBe('Arrêtés de voirie');
    expect((await byId('imp-ttl-1')).children.find((c) => c.name === 'title')!.text).toBe('Jeu Turtle');
    if (haveSamples) expect((await byId(res[2].imported[0], GMD)).name).toBe('MD_Metadata');
    // a file whose record collides with a layer's record is refused as a whole
    const localId = (await t.ctx.pool.query(`SELECT identifier FROM geodata_catalog_txtest.records WHERE source = 'local' LIMIT 1`)).rows[0]
      .identifier;
    const clash = path.join(dir, 'clash.xml');
    writeFileSync(
      clash,
      `<csw:GetRecordsResponse xmlns:csw="${CSW}" xmlns:dc="http://purl.org/dc/elements/1.1/"><csw:SearchResults numberOfRecordsMatched="2" numberOfRecordsReturned="2"><csw:Record><dc:identifier>imp-dc-2</dc:identifier><dc:title>Deux</dc:title></csw:Record><csw:Record><dc:identifier>${localId}</dc:identifier><dc:title>Collision</dc:title></csw:Record></csw:SearchResults></csw:GetRecordsResponse>`,
    );
    const [bad] = await importMetadataFiles(t.ctx.pool, [clash], 'geodata_catalog_txtest');
    expect(bad.imported).toEqual([]);
    expect(bad.errors.join()).toMatch(/another source/);
    expect(await byId('imp-dc-2')).toBeUndefined();
  });

  const cli = path.resolve(import.meta.dirname, '..', 'dist', 'src', 'main.js');
  it.skipIf(!existsSync(cli))('the command line: geodata catalog-import FILE…', async () => {
    const cfg = path.join(dir, 'config.yaml');
    writeFileSync(cfg, 'catalog:\n  schema: geodata_catalog_txtest\n');
    const f = path.join(dir, 'cli.xml');
    writeFileSync(
      f,
      `<csw:Record xmlns:csw="${CSW}" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier>imp-cli-1</dc:identifier><dc:title>Par la ligne de commande</dc:title></csw:Record>`,
    );
    const r = await promisify(execFile)(process.execPath, [cli, 'catalog-import', '--config', cfg, f], {
      env: { ...process.env, DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    expect(r.stdout).toContain('1 record(s) imported (imp-cli-1)');
    expect((await byId('imp-cli-1')).children.find((c) => c.name === 'title')!.text).toBe('Par la ligne de commande');
  });
});
