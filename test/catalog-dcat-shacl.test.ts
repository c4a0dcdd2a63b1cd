/**
 * DCAT-AP 3.0.1 validity out of the box: the official SHACL shapes (../shared/dcat-ap-shacl/3.0.1,
 * skipped visibly when absent) run with rdf-validate-shacl over every page of the DCAT feed, in the
 * three serialisations, each page parsed on its own the way a harvester reads it (n3 for Turtle,
 * jsonld.toRDF for JSON-LD, the test RDF/XML reader for RDF/XML):
 *  - shapes.ttl (mandatory properties and cardinalities): 0 violations;
 *  - range.ttl (classes of values): 0 violations, except (1) those whose value is a term of an EU
 *    controlled vocabulary (the Publications Office authority tables), whose classes only the EU
 *    vocabularies — not shipped with the shapes — can give (printed, not counted), and (2) the
 *    dcat:servesDataset links of the page-1 DataServices to datasets described in full on another
 *    page (the value must then be typed dcat:Dataset on that page: checked). Typing such a dataset
 *    on page 1 as well would make udata see it twice in one job ("identifier already exists");
 *  - shapes_recommended.ttl (recommended properties): 0 warnings for the demo with no config file;
 *  - mdr-vocabularies.shape.ttl (values from the EU controlled vocabularies), run over each page with
 *    the vocabulary graph of the EU tables this server embeds (src/catalog/vocab.ts: each term typed
 *    skos:Concept in its skos:ConceptScheme, as the EU tables publish them; the ADMS schemes): 0
 *    violations, and every dataset and data service has an EU data theme (what the theme warning asks;
 *    the shape itself warns about each INSPIRE theme too). Its warnings are printed, not counted: a
 *    publisher or a dct:spatial that is not an EU authority IRI (the publisher is the configured
 *    organisation, the extent a geometry), an INSPIRE theme;
 *  - the range.ttl results left to the EU vocabularies are only values that are terms of those tables.
 * Both the demo with no configuration and the configured test catalogue are checked; one record page
 * per dataset (/catalog/records/{id}?f=…) is validated too.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import N3 from 'n3';
import jsonld from 'jsonld';
import SHACLValidator from 'rdf-validate-shacl';
import { parseXml } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';
import { rdfXmlTriples } from './helpers/rdfxml.js';
import { checkVocab, EU_AUTHORITY, vocabularyTerms, type VocabTable } from '../src/catalog/vocab.js';

const SHAPES = path.resolve(import.meta.dirname, '..', '..', 'shared', 'dcat-ap-shacl', '3.0.1');
const haveShapes = existsSync(path.join(SHAPES, 'shapes.ttl'));
const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
const XSD = 'http://www.w3.org/2001/XMLSchema#';
const SH = 'http://www.w3.org/ns/shacl#';
const HYDRA = 'http://www.w3.org/ns/hydra/core#';
const DCAT = 'http://www.w3.org/ns/dcat#';
const { namedNode, blankNode, literal, quad } = N3.DataFactory;

type Fmt = 'rdf' | 'ttl' | 'jsonld';

function shapes(file: string): N3.Store {
  return new N3.Store(new N3.Parser().parse(readFileSync(path.join(SHAPES, file), 'utf8')));
}

async function parsePage(fmt: Fmt, body: string): Promise<N3.Store> {
  if (fmt === 'ttl') return new N3.Store(new N3.Parser().parse(body));
  if (fmt === 'jsonld') {
    const nq = (await jsonld.toRDF(JSON.parse(body), { format: 'application/n-quads' })) as unknown as string;
    return new N3.Store(new N3.Parser({ format: 'N-Quads' }).parse(nq));
  }
  const store = new N3.Store();
  const node = (v: string) => (v.startsWith('_:') ? blankNode(v.slice(2)) : namedNode(v));
  for (const t of rdfXmlTriples(parseXml(body))) {
    const o = t.literal ? literal(t.o, t.literal.lang ?? namedNode(t.literal.datatype ?? `${XSD}string`)) : node(t.o);
    store.addQuad(quad(node(t.s) as N3.Quad_Subject, namedNode(t.p), o as N3.Quad_Object));
  }
  return store;
}

interface Finding {
  severity: string;
  shape: string;
  focus: string;
  path: string;
  value: string;
  message: string;
}

const EU_VOCAB = /^http:\/\/publications\.europa\.eu\/resource\/authority\/([a-z-]+)\//;
const SKOS = 'http://www.w3.org/2004/02/skos/core#';

/** A term of the EU tables this server embeds (vocab.ts). */
const euTerm = (v: string) => {
  const table = v.match(EU_VOCAB)?.[1];
  return Boolean(table) && checkVocab(table as VocabTable, v) === 'ok';
};

/** The EU tables and ADMS schemes as the vocabulary graph a DCAT-AP validator loads beside the data. */
function vocabularyGraph(): N3.Quad[] {
  const type = namedNode(`${RDF}type`);
  const out: N3.Quad[] = [];
  const schemes = new Set([
    'http://purl.org/adms/publishertype/1.0',
    'http://purl.org/adms/licencetype/1.0',
    'http://purl.org/adms/changetype/1.0',
  ]);
  for (const [table, code] of vocabularyTerms()) {
    const scheme = `${EU_AUTHORITY}/${table}`;
    schemes.add(scheme);
    out.push(quad(namedNode(`${scheme}/${code}`), type, namedNode(`${SKOS}Concept`)));
    out.push(quad(namedNode(`${scheme}/${code}`), namedNode(`${SKOS}inScheme`), namedNode(scheme)));
  }
  for (const s of schemes) out.push(quad(namedNode(s), type, namedNode(`${SKOS}ConceptScheme`)));
  return out;
}

async function validate(shapesStore: N3.Store, data: N3.Store): Promise<Finding[]> {
  const v = new SHACLValidator(shapesStore as never);
  const report = await v.validate(data as never);
  return report.results.map((r) => ({
    severity: r.severity?.value.replace(SH, '') ?? '?',
    shape: r.sourceConstraintComponent?.value.replace(SH, '') ?? '?',
    focus: r.focusNode?.value ?? '?',
    path: r.path?.value ?? '?',
    value: r.value?.value ?? '',
    message: r.message.map((m) => m.value).join(' '),
  }));
}

const show = (fs: Finding[]) => fs.map((f) => `${f.severity} ${f.shape} ${f.focus} ${f.path} ${f.value} ${f.message}`).join('\n');

/** Every page of /catalog/dcat.<fmt>, walked with hydra:next. */
async function pages(t: TestApp, fmt: Fmt, pageSize: number): Promise<{ url: string; store: N3.Store }[]> {
  const out: { url: string; store: N3.Store }[] = [];
  let url: string | undefined = `/catalog/dcat.${fmt}?pageSize=${pageSize}`;
  while (url) {
    const r = await t.app.inject(url);
    expect(r.statusCode, url).toBe(200);
    const store = await parsePage(fmt, r.body);
    out.push({ url, store });
    const next = store.getQuads(null, namedNode(`${HYDRA}next`), null, null)[0]?.object.value;
    url = next ? new URL(next).pathname + new URL(next).search : undefined;
    expect(out.length).toBeLessThan(50);
  }
  return out;
}

/** IRIs typed dcat:Dataset or dcat:DatasetSeries on any of the pages. */
function typedDatasets(stores: N3.Store[]): Set<string> {
  const out = new Set<string>();
  for (const st of stores)
    for (const c of [`${DCAT}Dataset`, `${DCAT}DatasetSeries`])
      for (const q of st.getQuads(null, namedNode(`${RDF}type`), namedNode(c), null)) out.add(q.subject.value);
  return out;
}

describe.skipIf(!haveShapes)('DCAT-AP 3.0.1 SHACL shapes (rdf-validate-shacl)', () => {
  let demo: TestApp;
  let configured: TestApp;
  let mandatory: N3.Store;
  let range: N3.Store;
  let recommended: N3.Store;
  let vocabularies: N3.Store;
  const euOnly: string[] = [];
  const vocabWarnings = new Set<string>();

  beforeAll(async () => {
    mandatory = shapes('shapes.ttl');
    range = shapes('range.ttl');
    recommended = shapes('shapes_recommended.ttl');
    vocabularies = shapes('mdr-vocabularies.shape.ttl');
    demo = await makeTestApp({}); // the demo with no config file: every spatial table of public, defaults everywhere
    configured = await makeTestApp(catalogConfig);
  });
  afterAll(async () => {
    await demo?.close();
    await configured?.close();
    if (euOnly.length) console.info(`range results left to the EU vocabularies (not counted):\n${[...new Set(euOnly)].join('\n')}`);
    if (vocabWarnings.size) console.info(`mdr-vocabularies warnings (not counted):\n${[...vocabWarnings].join('\n')}`);
  });

  function rangeFindings(fs: Finding[], datasetIris: Set<string>): Finding[] {
    return fs.filter((f) => {
      if (EU_VOCAB.test(f.value)) {
        // only a term of the EU tables is left to them; an IRI of their namespace that is no term counts
        if (!euTerm(f.value)) return true;
        euOnly.push(`${f.path} ${f.value}`);
        return false;
      }
      return !(f.path === `${DCAT}servesDataset` && f.shape === 'ClassConstraintComponent' && datasetIris.has(f.value));
    });
  }

  function withVocabularies(store: N3.Store): N3.Store {
    const s = new N3.Store(store.getQuads(null, null, null, null));
    s.addQuads(vocabularyGraph());
    return s;
  }

  /**
   * Violations count; warnings are printed. The shape warns about every dcat:theme value outside the
   * EU table (INSPIRE themes included, which udata reads): what it asks for — at least one EU data
   * theme per dataset and data service — is checked by missingEuTheme.
   */
  function vocabularyFindings(fs: Finding[]): Finding[] {
    return fs.filter((f) => {
      if (f.severity === 'Violation') return true;
      vocabWarnings.add(`${f.severity} ${f.path} ${f.shape}${f.path === `${DCAT}theme` ? ` ${f.value}` : ''}`);
      return false;
    });
  }

  /** Datasets and data services of a page with no dcat:theme from the EU data-theme table. */
  function missingEuTheme(store: N3.Store): Finding[] {
    const out: Finding[] = [];
    for (const c of [`${DCAT}Dataset`, `${DCAT}DatasetSeries`, `${DCAT}DataService`])
      for (const q of store.getQuads(null, namedNode(`${RDF}type`), namedNode(c), null)) {
        const themes = store.getQuads(q.subject, namedNode(`${DCAT}theme`), null, null).map((t) => t.object.value);
        // a dataset only named on this page (servesDataset target described on its own page) has no themes here
        if (!store.getQuads(q.subject, namedNode('http://purl.org/dc/terms/title'), null, null).length) continue;
        if (!themes.some((t) => checkVocab('data-theme', t) === 'ok'))
          out.push({
            severity: 'Violation',
            shape: 'EU data theme',
            focus: q.subject.value,
            path: `${DCAT}theme`,
            value: themes.join(' '),
            message: 'no EU data theme',
          });
      }
    return out;
  }

  async function check(t: TestApp, fmt: Fmt, withRecommended: boolean) {
    const all = await pages(t, fmt, 2);
    expect(all.length).toBeGreaterThan(1);
    let datasets = 0;
    // every finding of every page, one line per kind (shape, constraint, path), with the first page it was seen on
    const found = new Map<string, string>();
    const note = (file: string, url: string, fs: Finding[]) => {
      for (const f of fs) {
        const k = `${file}: ${f.severity} ${f.shape} ${f.path} ${f.value.replace(/^_:.*|^b\d.*/, '')}`;
        if (!found.has(k)) found.set(k, `${k} (focus ${f.focus} on ${url}: ${f.message})`);
      }
    };
    const datasetIris = typedDatasets(all.map((x) => x.store));
    for (const { url, store } of all) {
      datasets += store.getQuads(null, namedNode(`${RDF}type`), namedNode(`${DCAT}Dataset`), null).length;
      note('shapes.ttl', url, await validate(mandatory, store));
      note('range.ttl', url, rangeFindings(await validate(range, store), datasetIris));
      if (withRecommended) note('shapes_recommended.ttl', url, await validate(recommended, store));
      note('mdr-vocabularies.shape.ttl', url, vocabularyFindings(await validate(vocabularies, withVocabularies(store))));
      note('EU data theme', url, missingEuTheme(store));
    }
    expect([...found.values()].sort().join('\n')).toBe('');
    expect(datasets).toBeGreaterThan(0);
  }

  for (const fmt of ['rdf', 'ttl', 'jsonld'] as const) {
    it(`demo with no config, /catalog/dcat.${fmt}: every page conforms to shapes.ttl, range.ttl and shapes_recommended.ttl`, async () => {
      await check(demo, fmt, true);
    });
    it(`configured catalogue, /catalog/dcat.${fmt}: every page conforms to shapes.ttl and range.ttl`, async () => {
      await check(configured, fmt, false);
    });
  }

  it('each record on its own (/catalog/records/{id}?f=ttl) conforms too', async () => {
    const datasetIris = typedDatasets((await pages(demo, 'ttl', 100)).map((x) => x.store));
    const list = (await demo.app.inject('/catalog?limit=100')).json() as { records: { identifier: string }[] };
    expect(list.records.length).toBeGreaterThan(4); // the demo layers and the services
    for (const { identifier } of list.records) {
      const r = await demo.app.inject(`/catalog/records/${encodeURIComponent(identifier)}?f=ttl`);
      expect(r.statusCode).toBe(200);
      const store = await parsePage('ttl', r.body);
      expect(show(await validate(mandatory, store)), `shapes.ttl on ${identifier}`).toBe('');
      expect(show(rangeFindings(await validate(range, store), datasetIris)), `range.ttl on ${identifier}`).toBe('');
      expect(show(await validate(recommended, store)), `shapes_recommended.ttl on ${identifier}`).toBe('');
      expect(show(vocabularyFindings(await validate(vocabularies, withVocabularies(store)))), `mdr-vocabularies on ${identifier}`).toBe('');
      expect(show(missingEuTheme(store)), `EU data theme on ${identifier}`).toBe('');
    }
  });
});

describe.skipIf(haveShapes)('DCAT-AP SHACL', () => {
  it(`skipped: ${SHAPES} is absent`, () => console.warn(`DCAT-AP 3.0.1 shapes not found at ${SHAPES}: SHACL validation skipped`));
});
