/**
 * CSW 2.0.2 golden-file conformance tests (OGC 07-006r1): every request in fixtures/catalogue/get
 * (one KVP query string per file) and fixtures/catalogue/post (one XML body per file) is sent to
 * a catalogue holding only the records of fixtures/catalogue/records (12 Dublin Core, 3 ISO 19139;
 * derivation from the layers switched off), in file-name order, and its response compared
 * semantically (test/helpers/golden.ts) with fixtures/catalogue/expected/NAME.xml. POST files named
 * tx-* are sent with the admin token (CSW-T). Every response that is not an exception is also
 * validated against the OGC schemas when OGC_SCHEMAS_DIR is set.
 *
 * A missing expected file fails the test; with GOLDEN_WRITE=1 it is written from the response
 * instead, to be reviewed against the standard before it is committed (fixtures/catalogue/README.md).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseXml } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';
import { ensureCatalogReady } from '../src/catalog/sync.js';
import { importMetadataFiles } from '../src/catalog/import.js';
import { compareXml, prettyXml } from './helpers/golden.js';

const DIR = path.resolve('fixtures/catalogue');
const SCHEMA = 'geodata_catalog_golden';
const TOKEN = 'golden-test-token';
let t: TestApp;
const valid: { name: string; body: string }[] = [];

interface Case {
  name: string;
  method: 'GET' | 'POST';
  body: string;
}

const cases: Case[] = [
  ...readdirSync(path.join(DIR, 'get'))
    .filter((f) => f.endsWith('.txt'))
    .map((f) => ({
      name: f.replace(/\.txt$/, ''),
      method: 'GET' as const,
      body: readFileSync(path.join(DIR, 'get', f), 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .join('')
        .trim(),
    })),
  ...readdirSync(path.join(DIR, 'post'))
    .filter((f) => f.endsWith('.xml'))
    .map((f) => ({ name: f.replace(/\.xml$/, ''), method: 'POST' as const, body: readFileSync(path.join(DIR, 'post', f), 'utf8') })),
].sort((a, b) => (a.name < b.name ? -1 : 1));

beforeAll(async () => {
  process.env.GEODATA_ADMIN_TOKEN = TOKEN;
  t = await makeTestApp({
    service: catalogConfig.service,
    layers: catalogConfig.layers,
    catalog: { schema: SCHEMA, deriveFromLayers: false },
  });
  await ensureCatalogReady(t.ctx);
  await t.ctx.pool.query(`DELETE FROM ${SCHEMA}.records`);
  const files = readdirSync(path.join(DIR, 'records'))
    .sort()
    .map((f) => path.join(DIR, 'records', f));
  const res = await importMetadataFiles(t.ctx.pool, files, SCHEMA);
  const errors = res.flatMap((r) => r.errors.map((e) => `${r.file}: ${e}`));
  if (errors.length) throw new Error(errors.join('\n'));
});
afterAll(async () => {
  await t?.close();
});

describe('CSW 2.0.2 golden files', () => {
  it('the catalogue holds exactly the fixture records (no record derived from the layers)', async () => {
    const r = await t.ctx.pool.query<{ identifier: string; record_schema: string }>(
      `SELECT identifier, record_schema FROM ${SCHEMA}.records ORDER BY identifier`,
    );
    expect(r.rows.map((x) => `${x.identifier}:${x.record_schema}`)).toEqual([
      ...Array.from({ length: 12 }, (_, i) => `dc-${String(i + 1).padStart(3, '0')}:csw`),
      'iso-001:iso19139',
      'iso-002:iso19139',
      'iso-003:iso19139',
    ]);
  });

  for (const c of cases) {
    it(`${c.method} ${c.name}`, async () => {
      const r =
        c.method === 'GET'
          ? await t.app.inject({ method: 'GET', url: `/csw?${c.body}` })
          : await t.app.inject({
              method: 'POST',
              url: '/csw',
              headers: { 'content-type': 'application/xml', ...(c.name.startsWith('tx-') ? { authorization: `Bearer ${TOKEN}` } : {}) },
              payload: c.body,
            });
      expect(r.statusCode).toBeLessThan(500);
      const actual = parseXml(r.body, 64 * 1024 * 1024);
      if (actual.name === 'ExceptionReport') expect(r.statusCode).toBeGreaterThanOrEqual(400);
      else {
        expect(r.statusCode).toBe(200);
        valid.push({ name: c.name, body: r.body });
      }
      const file = path.join(DIR, 'expected', `${c.name}.xml`);
      if (!existsSync(file)) {
        if (process.env.GOLDEN_WRITE !== '1') throw new Error(`no expected file ${file} (GOLDEN_WRITE=1 writes it for review)`);
        writeFileSync(file, prettyXml(actual));
        return;
      }
      const diffs = compareXml(parseXml(readFileSync(file, 'utf8'), 64 * 1024 * 1024), actual);
      expect(diffs, r.body.slice(0, 3000)).toEqual([]);
    });
  }

  it.skipIf(!canValidate)('every non-exception response is valid against the CSW 2.0.2 / ISO schemas', () => {
    const results = validateXml(valid.map((v) => v.body));
    const bad = results.map((r, i) => (r.valid ? '' : `${valid[i].name}: ${r.output}`)).filter(Boolean);
    expect(bad.join('\n')).toBe('');
  });
  it.skipIf(canValidate)(`schema validation skipped: ${skipReason}`, () => console.warn(skipReason));
});
