/**
 * A tiny RDF graph and three serialisations of it: Turtle (through the n3 writer), JSON-LD
 * (a flat @graph with a prefix-only @context) and RDF/XML (written with XmlWriter). One builder
 * (dcat.ts) fills the graph; the serialisations are therefore always the same triples.
 */
import N3 from 'n3';
import { XmlWriter } from '../ows/xml.js';

export const NS = {
  rdf: 'http://www.w3.org/1999/02/22-rdf-syntax-ns#',
  rdfs: 'http://www.w3.org/2000/01/rdf-schema#',
  xsd: 'http://www.w3.org/2001/XMLSchema#',
  dcat: 'http://www.w3.org/ns/dcat#',
  dct: 'http://purl.org/dc/terms/',
  foaf: 'http://xmlns.com/foaf/0.1/',
  vcard: 'http://www.w3.org/2006/vcard/ns#',
  skos: 'http://www.w3.org/2004/02/skos/core#',
  locn: 'http://www.w3.org/ns/locn#',
  gsp: 'http://www.opengis.net/ont/geosparql#',
  hydra: 'http://www.w3.org/ns/hydra/core#',
  dcatap: 'http://data.europa.eu/r5r/',
  geodcatap: 'http://data.europa.eu/930/',
  adms: 'http://www.w3.org/ns/adms#',
  prov: 'http://www.w3.org/ns/prov#',
} as const;

export type Prefix = keyof typeof NS;

export type Term = { t: 'iri'; v: string } | { t: 'bnode'; v: string } | { t: 'lit'; v: string; dt?: string; lang?: string };

export interface Triple {
  s: Term;
  p: string;
  o: Term;
}

/** Prefixed names expanded so far (the builders use a few hundred; a page adds each thousands of times). */
const expanded = new Map<string, string>();

/** Expand 'dct:title' → full IRI; full IRIs pass through. */
export function expand(q: string): string {
  const known = expanded.get(q);
  if (known !== undefined) return known;
  const i = q.indexOf(':');
  if (i > 0) {
    const pre = q.slice(0, i) as Prefix;
    if (pre in NS && !q.startsWith(`${pre}://`)) {
      const iri = NS[pre] + q.slice(i + 1);
      if (expanded.size < 4096) expanded.set(q, iri);
      return iri;
    }
  }
  return q;
}

function sameTerm(a: Term, b: Term): boolean {
  if (a.t !== b.t || a.v !== b.v) return false;
  return a.t !== 'lit' || b.t !== 'lit' || ((a.dt ?? '') === (b.dt ?? '') && (a.lang ?? '') === (b.lang ?? ''));
}

export class Graph {
  readonly triples: Triple[] = [];
  private n = 0;
  /** Objects already added per subject and predicate (as written): an identical triple is added once. */
  private seen = new Map<string, Term[]>();

  iri(v: string): Term {
    return { t: 'iri', v: expand(v) };
  }

  bnode(): Term {
    return { t: 'bnode', v: `b${++this.n}` };
  }

  lit(v: string | number, dt?: string, lang?: string): Term {
    return { t: 'lit', v: String(v), dt: dt ? expand(dt) : undefined, lang };
  }

  add(s: Term, p: string, o: Term | null | undefined): this {
    if (!o) return this;
    if (o.t === 'lit' && o.v === '') return this;
    // objects compared field by field, not through a key holding the literal: hashing every long
    // literal (abstracts, geometries) of a 100-dataset page was most of the page's time
    const key = `${s.t}|${s.v}|${p}`;
    const objects = this.seen.get(key);
    if (!objects) this.seen.set(key, [o]);
    else if (objects.some((x) => sameTerm(x, o))) return this;
    else objects.push(o);
    this.triples.push({ s, p: expand(p), o });
    return this;
  }

  /** rdf:type shortcut. */
  a(s: Term, type: string): this {
    return this.add(s, 'rdf:type', this.iri(type));
  }
}

function n3Term(t: Term) {
  const { namedNode, blankNode, literal } = N3.DataFactory;
  if (t.t === 'iri') return namedNode(t.v);
  if (t.t === 'bnode') return blankNode(t.v);
  return literal(t.v, t.lang ? t.lang : t.dt ? namedNode(t.dt) : undefined);
}

export function toTurtle(g: Graph): Promise<string> {
  const writer = new N3.Writer({ prefixes: { ...NS } });
  // grouped by subject (first appearance order) so the writer can use ';' and ','
  for (const { s, props } of groupBySubject(g).values()) {
    for (const [p, objs] of props) {
      for (const o of objs)
        writer.addQuad(N3.DataFactory.quad(n3Term(s) as N3.Quad_Subject, N3.DataFactory.namedNode(p), n3Term(o) as N3.Quad_Object));
    }
  }
  return new Promise((resolve, reject) => writer.end((err, out) => (err ? reject(err) : resolve(out))));
}

function compact(iri: string): string {
  for (const [p, ns] of Object.entries(NS)) {
    if (iri.startsWith(ns)) {
      const local = iri.slice(ns.length);
      if (/^[A-Za-z_][\w.-]*$/.test(local)) return `${p}:${local}`;
    }
  }
  return iri;
}

function groupBySubject(g: Graph): Map<string, { s: Term; props: Map<string, Term[]> }> {
  const out = new Map<string, { s: Term; props: Map<string, Term[]> }>();
  for (const tr of g.triples) {
    const k = `${tr.s.t}:${tr.s.v}`;
    let e = out.get(k);
    if (!e) out.set(k, (e = { s: tr.s, props: new Map() }));
    const list = e.props.get(tr.p) ?? [];
    list.push(tr.o);
    e.props.set(tr.p, list);
  }
  return out;
}

/** JSON-LD: a flat @graph; the @context only declares prefixes, so every value is explicit. */
export function toJsonLd(g: Graph): Record<string, unknown> {
  const nodes: Record<string, unknown>[] = [];
  for (const { s, props } of groupBySubject(g).values()) {
    const node: Record<string, unknown> = { '@id': s.t === 'bnode' ? `_:${s.v}` : s.v };
    for (const [p, objs] of props) {
      if (p === NS.rdf + 'type') {
        node['@type'] = objs.map((o) => compact(o.v));
        continue;
      }
      node[compact(p)] = objs.map((o) => {
        if (o.t === 'iri') return { '@id': o.v };
        if (o.t === 'bnode') return { '@id': `_:${o.v}` };
        if (o.lang) return { '@value': o.v, '@language': o.lang };
        if (o.dt) return { '@value': o.v, '@type': o.dt };
        return { '@value': o.v };
      });
    }
    nodes.push(node);
  }
  return { '@context': { ...NS }, '@graph': nodes };
}

function qnameOf(iri: string): string {
  const c = compact(iri);
  if (c === iri) throw new Error(`no prefix for predicate ${iri}`);
  return c;
}

/** Write an rdf:RDF element (with its namespace declarations) into `w`. */
export function writeRdfXml(w: XmlWriter, g: Graph): void {
  const decl: Record<string, string> = {};
  for (const [p, ns] of Object.entries(NS)) decl[`xmlns:${p}`] = ns;
  w.start('rdf:RDF', decl);
  for (const { s, props } of groupBySubject(g).values()) {
    w.start('rdf:Description', s.t === 'bnode' ? { 'rdf:nodeID': s.v } : { 'rdf:about': s.v });
    for (const [p, objs] of props) {
      const q = qnameOf(p);
      for (const o of objs) {
        if (o.t === 'iri') w.el(q, { 'rdf:resource': o.v });
        else if (o.t === 'bnode') w.el(q, { 'rdf:nodeID': o.v });
        else
          w.start(q, o.lang ? { 'xml:lang': o.lang } : o.dt ? { 'rdf:datatype': o.dt } : {})
            .text(o.v)
            .end();
      }
    }
    w.end();
  }
  w.end();
}

export function toRdfXml(g: Graph): string {
  const w = new XmlWriter();
  writeRdfXml(w, g);
  return w.toString();
}
