/**
 * The DCAT side of the record store: reading (the dataset's own triples kept as its source
 * document) and the one function every DCAT writer reads a stored record through (toDcat).
 *
 *  - A record received as DCAT (CSW-T Insert of an rdf:RDF, catalog-import of RDF/XML, Turtle,
 *    JSON-LD) keeps, as a JSON array of triples, every triple reachable from its dataset node through blank nodes
 *    and through IRIs described in the same document (distributions, agents, locations…), except
 *    other datasets. toDcat gives these triples back unchanged.
 *  - Any other record (Dublin Core, ISO 19139, derived from the layers) goes through the crosswalk
 *    projection → DCAT-AP written by dcat.ts (buildRecordGraph).
 */
import { XmlWriter } from '../ows/xml.js';
import { buildRecordGraph, type DcatDefaults } from './dcat.js';
import type { CatalogRecord } from './model.js';
import { Graph, NS, type Term, writeRdfXml } from './rdf.js';
import { key, type RTriple } from './rdfparse.js';

const RDF_TYPE = `${NS.rdf}type`;
const DATASET_TYPES = new Set([`${NS.dcat}Dataset`, `${NS.dcat}DatasetSeries`]);

/** Triples describing `root`: its own, and those of the nodes it leads to (distributions, services, agents…; other datasets excepted). */
export function closureOf(triples: RTriple[], root: Term): RTriple[] {
  const bySubject = new Map<string, RTriple[]>();
  for (const t of triples) {
    const k = key(t.s);
    const list = bySubject.get(k);
    if (list) list.push(t);
    else bySubject.set(k, [t]);
  }
  const isDataset = (k: string) => (bySubject.get(k) ?? []).some((t) => t.p === RDF_TYPE && DATASET_TYPES.has(t.o.v));
  const out: RTriple[] = [];
  const seen = new Set<string>([key(root)]);
  const queue = [key(root)];
  while (queue.length) {
    const k = queue.shift()!;
    for (const t of bySubject.get(k) ?? []) {
      out.push(t);
      if (t.o.t === 'lit') continue;
      const ok = key(t.o);
      if (seen.has(ok) || !bySubject.has(ok) || isDataset(ok)) continue;
      seen.add(ok);
      queue.push(ok);
    }
  }
  return out;
}

/**
 * Triples as stored (the source document of a DCAT record): a JSON array of {s, p, o} terms.
 * Not N-Triples: harvested graphs hold IRIs N-Triples cannot carry (spaces, braces…), kept as they came.
 */
export function storeTriples(triples: RTriple[]): string {
  return JSON.stringify(triples.map((t) => ({ s: t.s, p: t.p, o: t.o })));
}

/** The record as a DCAT graph: its source triples when it was received as DCAT, else the crosswalk. */
export function toDcat(r: CatalogRecord, base: string, defaults?: DcatDefaults, allDatasetIds?: string[]): Graph {
  if (r.recordSchema === 'dcat' && r.sourceDoc) {
    const g = new Graph();
    for (const t of JSON.parse(r.sourceDoc) as RTriple[]) g.triples.push(t);
    return g;
  }
  return buildRecordGraph(r, base, defaults, allDatasetIds);
}

/** Split an IRI into namespace and an XML-name local part (RDF/XML needs one for predicates). */
function splitIri(iri: string): [string, string] | null {
  const m = iri.match(/^(.*[#/:])([A-Za-z_][\w.-]*)$/);
  return m ? [m[1], m[2]] : null;
}

/**
 * Write a record as one rdf:RDF (CSW outputSchema DCAT / GeoDCAT-AP). Source triples may use any
 * vocabulary: predicates outside the known prefixes get prefixes ns1, ns2… declared on rdf:RDF.
 */
export function writeDcatRecord(w: XmlWriter, r: CatalogRecord, base: string, defaults?: DcatDefaults, allDatasetIds?: string[]): void {
  const g = toDcat(r, base, defaults, allDatasetIds);
  if (!(r.recordSchema === 'dcat' && r.sourceDoc)) {
    writeRdfXml(w, g);
    return;
  }
  const decl: Record<string, string> = {};
  for (const [p, ns] of Object.entries(NS)) decl[`xmlns:${p}`] = ns;
  const prefixOf = new Map<string, string>(Object.entries(NS).map(([p, ns]) => [ns as string, p]));
  // other vocabularies get prefixes ns1, ns2… declared on rdf:RDF (some RDF/XML readers only see those)
  for (const t of g.triples) {
    const split = splitIri(t.p);
    if (split && !prefixOf.has(split[0])) {
      const p = `ns${prefixOf.size - Object.keys(NS).length + 1}`;
      prefixOf.set(split[0], p);
      decl[`xmlns:${p}`] = split[0];
    }
  }
  w.start('rdf:RDF', decl);
  const subjects = new Map<string, { s: Term; ts: RTriple[] }>();
  for (const t of g.triples) {
    const k = key(t.s);
    const e = subjects.get(k);
    if (e) e.ts.push(t);
    else subjects.set(k, { s: t.s, ts: [t] });
  }
  for (const { s, ts } of subjects.values()) {
    w.start('rdf:Description', s.t === 'bnode' ? { 'rdf:nodeID': s.v } : { 'rdf:about': s.v });
    for (const t of ts) {
      const split = splitIri(t.p);
      if (!split) continue; // not expressible in RDF/XML
      const [ns, local] = split;
      const q = `${prefixOf.get(ns)}:${local}`;
      const attrs: Record<string, string> = {};
      if (t.o.t === 'iri') w.el(q, { ...attrs, 'rdf:resource': t.o.v });
      else if (t.o.t === 'bnode') w.el(q, { ...attrs, 'rdf:nodeID': t.o.v });
      else {
        if (t.o.lang) attrs['xml:lang'] = t.o.lang;
        else if (t.o.dt) attrs['rdf:datatype'] = t.o.dt;
        w.start(q, attrs).text(t.o.v).end();
      }
    }
    w.end();
  }
  w.end();
}

/** The record as RDF/XML text (for tests and the import of our own output). */
export function dcatRecordXml(r: CatalogRecord, base: string, defaults?: DcatDefaults, allDatasetIds?: string[]): string {
  const w = new XmlWriter();
  writeDcatRecord(w, r, base, defaults, allDatasetIds);
  return w.toString();
}
