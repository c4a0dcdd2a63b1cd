/**
 * Round trip through the record store: every sample of ../shared/catalogue-samples (ISO 19139
 * records, CSW GetRecords responses in ISO and DCAT, DCAT catalogues in RDF/XML, Turtle and
 * JSON-LD) and every record of our own CSW output (Dublin Core and ISO 19139 of the records derived
 * from the layers, of imported Dublin Core records, and DCAT) is imported into an empty catalogue
 * and served again in its own schema: XML records compare equal element by element (namespaces
 * resolved, test/helpers/golden.ts), DCAT datasets keep every triple they had (blank nodes compared
 * by structure position-free: labels replaced).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseXml, type XmlElement } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';
import { ensureCatalogReady } from '../src/catalog/sync.js';
import { importMetadataFiles } from '../src/catalog/import.js';
import { parseRdf, parseRdfXmlElement, detectRdfFormat, type RTriple } from '../src/catalog/rdfparse.js';
import { compareXml } from './helpers/golden.js';
import { serialiseElement } from '../src/catalog/xmlser.js';

const SAMPLES = path.resolve('../shared/catalogue-samples');
const haveSamples = existsSync(SAMPLES);
const CSW = 'http://www.opengis.net/cat/csw/2.0.2';
const GMD = 'http://www.isotc211.org/2005/gmd';
const DCAT = 'http://www.w3.org/ns/dcat#';
const DCT = 'http://purl.org/dc/terms/';
const RDF_TYPE = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#type';
const SCHEMA = 'geodata_catalog_roundtrip';

let src: TestApp; // a catalogue with records derived from the layers and the golden fixtures
let dst: TestApp; // an empty catalogue, records imported only
let tmp: string;

async function fresh(): Promise<void> {
  await dst.ctx.pool.query(`DELETE FROM ${SCHEMA}.records`);
}

async function importFiles(files: string[]): Promise<string[]> {
  const res = await importMetadataFiles(dst.ctx.pool, files, SCHEMA);
  const errors = res.flatMap((r) => r.errors.map((e) => `${path.basename(r.file)}: ${e}`));
  expect(errors).toEqual([]);
  return res.flatMap((r) => r.imported);
}

async function byId(app: TestApp, id: string, schema: string, elementSet = 'full'): Promise<XmlElement[]> {
  const r = await app.app.inject(
    `/csw?service=CSW&version=2.0.2&request=GetRecordById&id=${encodeURIComponent(id)}&outputSchema=${encodeURIComponent(schema)}&elementSetName=${elementSet}`,
  );
  expect(r.statusCode).toBe(200);
  return parseXml(r.body, 64 * 1024 * 1024).children;
}

/**
 * Triples as comparable strings; blank node labels replaced (documents label them differently);
 * literals trimmed, since the XML reader this test parses responses with (src/ows/xmldom.ts) trims
 * text — the response itself carries the literal as stored.
 */
function keys(triples: RTriple[]): string[] {
  const term = (t: RTriple['o']) =>
    t.t === 'bnode' ? '_:' : t.t === 'iri' ? `<${t.v}>` : `"${t.v.trim()}"@${t.lang ?? ''}^^${t.dt ?? ''}`;
  return triples.map((t) => `${term(t.s)} <${t.p}> ${term(t.o)}`).sort();
}

/** The dataset's own triples in a source graph: its statements and those of blank nodes it leads to. */
function ownTriples(triples: RTriple[], node: RTriple['s']): RTriple[] {
  const out: RTriple[] = [];
  const seen = new Set<string>();
  const visit = (s: RTriple['s']) => {
    const k = `${s.t}:${s.v}`;
    if (seen.has(k)) return;
    seen.add(k);
    for (const t of triples)
      if (t.s.t === s.t && t.s.v === s.v) {
        out.push(t);
        if (t.o.t === 'bnode') visit(t.o);
      }
  };
  visit(node);
  return out;
}

/** Every dataset of a graph that the store keeps (identifier and title), with its identifier. */
function datasets(triples: RTriple[]): { node: RTriple['s']; id: string }[] {
  const out: { node: RTriple['s']; id: string }[] = [];
  for (const t of triples) {
    if (t.p !== RDF_TYPE || (t.o.v !== `${DCAT}Dataset` && t.o.v !== `${DCAT}DatasetSeries`)) continue;
    const has = (p: string) => triples.find((x) => x.s.v === t.s.v && x.s.t === t.s.t && x.p === p);
    const id = has(`${DCT}identifier`)?.o.v ?? (t.s.t === 'iri' ? t.s.v : undefined);
    if (id && has(`${DCT}title`) && !out.some((d) => d.id === id)) out.push({ node: t.s, id });
  }
  return out;
}

async function expectDcatKept(triples: RTriple[]): Promise<number> {
  const ds = datasets(triples);
  for (const d of ds) {
    const [rdf] = await byId(dst, d.id, DCAT);
    expect(rdf?.name, d.id).toBe('RDF');
    const served = new Set(keys(parseRdfXmlElement(rdf)));
    // a predicate that is not an absolute IRI (one sample has <asWKT>) cannot be written in RDF/XML
    const own = ownTriples(triples, d.node).filter((t) => /^[a-z][\w+.-]*:/i.test(t.p));
    const missing = keys(own).filter((k) => !served.has(k));
    expect(missing, `${d.id}: triples lost`).toEqual([]);
  }
  return ds.length;
}

async function expectIsoKept(mds: XmlElement[]): Promise<void> {
  for (const md of mds) {
    const id = md.children.find((c) => c.name === 'fileIdentifier')!.children[0].text;
    const [served] = await byId(dst, id, GMD);
    expect(compareXml(md, served), id).toEqual([]);
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'catrt-'));
  src = await makeTestApp({ ...catalogConfig, catalog: { schema: 'geodata_catalog_roundtrip_src' } });
  await ensureCatalogReady(src.ctx);
  await src.ctx.pool.query(`DELETE FROM geodata_catalog_roundtrip_src.records WHERE source <> 'local'`);
  const fx = path.resolve('fixtures/catalogue/records');
  await importMetadataFiles(
    src.ctx.pool,
    readdirSync(fx).map((f) => path.join(fx, f)),
    'geodata_catalog_roundtrip_src',
  );
  dst = await makeTestApp({ service: catalogConfig.service, layers: [], catalog: { schema: SCHEMA, deriveFromLayers: false } });
  await ensureCatalogReady(dst.ctx);
});
afterAll(async () => {
  await src?.close();
  await dst?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!haveSamples)('round trip of ../shared/catalogue-samples', () => {
  it('ISO 19139 records (single record, CSW responses of Géo2France, Géo-IDE, Géoplateforme) come back unchanged', async () => {
    const files = [
      path.join(SAMPLES, 'iso19139', 'pycsw-apiso-inspire-T_ortho_RAS_1998_284404.xml'),
      ...readdirSync(path.join(SAMPLES, 'csw'))
        .filter((f) => f.includes('iso19139'))
        .map((f) => path.join(SAMPLES, 'csw', f)),
    ];
    let n = 0;
    for (const f of files) {
      // one file at a time: two catalogues may publish the same record (same fileIdentifier)
      await fresh();
      await importFiles([f]);
      const root = parseXml(readFileSync(f), 64 * 1024 * 1024);
      const mds = root.name === 'MD_Metadata' ? [root] : root.children.find((c) => c.name === 'SearchResults')!.children;
      await expectIsoKept(mds);
      n += mds.length;
    }
    expect(n).toBe(5);
  });

  it('DCAT records of CSW responses (outputSchema DCAT and GeoDCAT-AP) keep every triple', async () => {
    const files = readdirSync(path.join(SAMPLES, 'csw'))
      .filter((f) => /dcat/.test(f))
      .map((f) => path.join(SAMPLES, 'csw', f));
    let n = 0;
    for (const f of files) {
      await fresh();
      await importFiles([f]);
      for (const rdf of parseXml(readFileSync(f), 64 * 1024 * 1024).children.find((c) => c.name === 'SearchResults')!.children)
        n += await expectDcatKept(parseRdfXmlElement(rdf));
    }
    expect(n).toBeGreaterThanOrEqual(4);
  });

  it('DCAT catalogues (RDF/XML, Turtle, JSON-LD) keep every triple of every dataset', async () => {
    const files = [
      ...readdirSync(path.join(SAMPLES, 'dcat')).map((f) => path.join(SAMPLES, 'dcat', f)),
      ...readdirSync(path.join(SAMPLES, 'geodcat-ap'))
        .filter((f) => f.includes('dataset'))
        .map((f) => path.join(SAMPLES, 'geodcat-ap', f)),
    ];
    let n = 0;
    for (const f of files) {
      await fresh();
      await importFiles([f]);
      // parsed as the import reads it: RDF/XML without a base, Turtle and JSON-LD with the file URL
      const text = readFileSync(f, 'utf8');
      const triples = text.trimStart().startsWith('<')
        ? parseRdfXmlElement(parseXml(text, 64 * 1024 * 1024))
        : await parseRdf(text, detectRdfFormat(undefined, `file://${f}`)!, `file://${f}`);
      n += await expectDcatKept(triples);
    }
    expect(n).toBeGreaterThanOrEqual(10);
  });
});

describe('round trip of our own CSW output', () => {
  async function getRecords(schema: string): Promise<string> {
    const r = await src.app.inject(
      `/csw?service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=results&elementSetName=full&maxRecords=100&outputSchema=${encodeURIComponent(schema)}`,
    );
    expect(r.statusCode).toBe(200);
    return r.body;
  }

  it('Dublin Core (derived, imported DC and ISO records) and ISO 19139 records come back unchanged', async () => {
    for (const schema of [CSW, GMD]) {
      await fresh();
      const body = await getRecords(schema);
      const file = path.join(tmp, `out-${schema === CSW ? 'dc' : 'iso'}.xml`);
      writeFileSync(file, body);
      const ids = await importFiles([file]);
      const records = parseXml(body, 64 * 1024 * 1024).children.find((c) => c.name === 'SearchResults')!.children;
      expect(ids.length).toBe(records.length);
      expect(records.length).toBeGreaterThan(15);
      for (const rec of records) {
        const id =
          schema === CSW
            ? rec.children.find((c) => c.name === 'identifier')!.text
            : rec.children.find((c) => c.name === 'fileIdentifier')!.children[0].text;
        const [served] = await byId(dst, id, schema);
        expect(compareXml(rec, served), id).toEqual([]);
      }
    }
  });

  it('DCAT records keep every triple', async () => {
    await fresh();
    const body = await getRecords(DCAT);
    // DCAT requires dct:title: the view of a Dublin Core record without a title (dc-002) is no DCAT dataset
    const graphs = parseXml(body, 64 * 1024 * 1024)
      .children.find((c) => c.name === 'SearchResults')!
      .children.map((rdf) => ({ rdf, triples: parseRdfXmlElement(rdf) }))
      .filter((g) => datasets(g.triples).length > 0);
    let n = 0;
    for (const g of graphs) {
      const file = path.join(tmp, `out-dcat-${n++}.xml`);
      writeFileSync(file, serialiseElement(g.rdf));
      await importFiles([file]);
    }
    n = 0;
    for (const g of graphs) n += await expectDcatKept(g.triples);
    expect(n).toBeGreaterThan(10);
  });
});
