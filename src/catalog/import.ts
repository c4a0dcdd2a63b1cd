/**
 * Publishing metadata for resources hosted elsewhere: records from ISO 19139 (gmd:MD_Metadata),
 * Dublin Core (csw:Record) and DCAT (rdf:RDF, Turtle, JSON-LD) documents, used by CSW-T
 * Transaction and by the `catalog-import` command. Published records have the source 'csw-t'.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { OwsException } from '../ows/exceptions.js';
import { parseXml, type XmlElement } from '../ows/xmldom.js';
import { dcatToRecords } from './harvest.js';
import { parseRdf, parseRdfXmlElement, detectRdfFormat, TripleIndex, type RTriple } from './rdfparse.js';
import { CSW_NS, checkBbox, checkIdentifier, readDc } from './dc.js';
import { GMD_NS, readIso } from './iso.js';
import { failureLines } from './inspire.js';
import { dcatVocabularyReport } from './vocab.js';
import { closureOf, storeTriples } from './crosswalk.js';
import { indexFromRecord } from './queryables.js';
import { CATALOG_SCHEMA, inTransaction, upsertRecord } from './store.js';
import type { CatalogRecord } from './model.js';

export const PUBLISHED_SOURCE = 'csw-t';

/**
 * Records of one document element: csw:Record (dc.ts), gmd:MD_Metadata (iso.ts) or an rdf:RDF of
 * DCAT datasets (each dataset keeps its own triples, crosswalk.ts). Every record keeps its source
 * document; nothing is made up or dropped.
 */
export function toRecords(el: XmlElement, now: string, source = PUBLISHED_SOURCE, o: ImportOptions = {}): CatalogRecord[] {
  let records: CatalogRecord[];
  if (el.name === 'MD_Metadata' && el.ns === GMD_NS) records = [readIso(el, source, now)];
  else if (el.name === 'Record' && el.ns === CSW_NS) records = [readDc(el, source, now)];
  else if (el.name === 'RDF') records = dcatRecords(parseRdfXmlElement(el), now, source);
  else
    throw new OwsException(
      'InvalidParameterValue',
      `cannot publish a ${el.qname}${el.ns ? ` (namespace ${el.ns})` : ''}: csw:Record, ISO 19139 gmd:MD_Metadata (${GMD_NS}) or DCAT rdf:RDF`,
      'Insert',
    );
  if (o.strict) for (const r of records) enforceQuality(r, 'Insert');
  return records;
}

export interface ImportOptions {
  /** `catalog.strictImport`: refuse a record whose quality report has a failure. */
  strict?: boolean;
}

/** Strict import: a record failing a check of its quality report is refused (the request changes nothing). */
export function enforceQuality(r: CatalogRecord, locator: string): void {
  if (!r.quality || r.quality.conformant) return;
  throw new OwsException(
    'InvalidParameterValue',
    `record '${r.identifier.slice(0, 200)}' fails ${r.quality.profile} (catalog.strictImport): ${failureLines(r.quality).join('; ')}`,
    locator,
  );
}

/** The failures of a record's quality report, one line each (import reports). */
export function qualityWarnings(r: CatalogRecord): string[] {
  return r.quality && !r.quality.conformant ? failureLines(r.quality).map((l) => `${r.identifier}: ${l}`) : [];
}

/** DCAT datasets of a graph as stored records: projection (harvest.ts mapping), own triples, index. */
export function dcatRecords(triples: RTriple[], now: string, source = PUBLISHED_SOURCE): CatalogRecord[] {
  const r = dcatToRecords(triples, source, now);
  if (!r.records.length)
    throw new OwsException('InvalidParameterValue', `no DCAT dataset with identifier and title (${r.errors.join('; ')})`, 'Insert');
  const g = new TripleIndex(triples);
  const nodes = [...g.subjectsOfType('http://www.w3.org/ns/dcat#Dataset'), ...g.subjectsOfType('http://www.w3.org/ns/dcat#DatasetSeries')];
  return r.records.map((x) => {
    checkIdentifier(x.identifier, 'Insert');
    // the envelope is derived from geometry literals, which stay in the source triples as they are:
    // one that gives no valid box is not indexed rather than refusing the dataset
    let bbox = x.bbox;
    try {
      if (bbox) checkBbox(bbox, 'Insert');
    } catch {
      bbox = null;
    }
    const node = nodes.find((n) => {
      const id = g.one(n, 'http://purl.org/dc/terms/identifier');
      return (id && id.v === x.identifier) || (n.t === 'iri' && n.v === x.identifier);
    });
    const own = node ? closureOf(triples, node) : [];
    return {
      ...x,
      quality: node ? dcatVocabularyReport(new TripleIndex(own), node, x.type) : null,
      bbox,
      harvestedAt: source === PUBLISHED_SOURCE ? null : x.harvestedAt,
      recordSchema: 'dcat' as const,
      sourceDoc: own.length ? storeTriples(own) : null,
      index: {
        ...indexFromRecord(x),
        anytext: [
          own
            .filter((t) => t.o.t === 'lit')
            .map((t) => t.o.v)
            .join(' '),
        ],
      },
    };
  });
}

/**
 * Refuse an identifier that differs only in case from an existing record's (another record
 * for every client that compares identifiers case-insensitively, as several CSW clients do).
 */
export async function checkCaseClash(c: pg.PoolClient, schema: string, id: string, locator: string): Promise<void> {
  const r = await c.query<{ identifier: string }>(
    `SELECT identifier FROM ${schema}.records WHERE lower(identifier) = lower($1) AND identifier <> $1`,
    [id],
  );
  if (r.rowCount)
    throw new OwsException(
      'InvalidParameterValue',
      `identifier '${id.slice(0, 200)}' differs only in case from the existing record '${r.rows[0].identifier.slice(0, 200)}'`,
      locator,
    );
}

export interface ImportResult {
  file: string;
  imported: string[];
  errors: string[];
  /** Failures of the imported records' quality reports (the records are imported). */
  warnings: string[];
}

/** Import metadata files; each file in one transaction (all its records or none). */
export async function importMetadataFiles(
  pool: pg.Pool,
  files: string[],
  schema = CATALOG_SCHEMA,
  o: ImportOptions = {},
): Promise<ImportResult[]> {
  const out: ImportResult[] = [];
  const now = new Date().toISOString();
  for (const file of files) {
    const res: ImportResult = { file, imported: [], errors: [], warnings: [] };
    out.push(res);
    try {
      const text = readFileSync(file, 'utf8');
      let records: CatalogRecord[] = [];
      const fmt = text.trimStart().startsWith('<') ? 'xml' : detectRdfFormat(undefined, `file://${file.startsWith('/') ? '' : '/'}${file}`);
      if (fmt === 'xml') {
        const root = parseXml(text, 64 * 1024 * 1024);
        const items =
          root.name === 'GetRecordsResponse' || root.name === 'GetRecordByIdResponse'
            ? (root.children.find((c) => c.name === 'SearchResults')?.children ?? root.children)
            : [root];
        for (const el of items) records.push(...toRecords(el, now, PUBLISHED_SOURCE, o));
      } else if (fmt) {
        records = dcatRecords(await parseRdf(text, fmt, `file://${file}`), now);
        if (o.strict) for (const r of records) enforceQuality(r, 'Insert');
      } else {
        throw new Error('unknown format (XML: ISO 19139, csw:Record, rdf:RDF; or .ttl, .nt, .jsonld)');
      }
      await inTransaction(pool, async (c) => {
        for (const r of records) {
          await checkCaseClash(c, schema, r.identifier, 'Insert');
          if (!(await upsertRecord(c, r, schema))) throw new Error(`identifier '${r.identifier}' belongs to another source`);
          res.imported.push(r.identifier);
        }
      });
      res.warnings = records.flatMap(qualityWarnings);
    } catch (e) {
      res.imported = [];
      res.warnings = [];
      res.errors.push((e as Error).message);
    }
  }
  return out;
}
