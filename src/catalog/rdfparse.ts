/**
 * Reading RDF for harvesting: RDF/XML (a parser for the W3C grammar's node/property elements,
 * property attributes, rdf:parseType Resource/Literal/Collection, rdf:li, xml:base, xml:lang),
 * Turtle / N-Triples / N3 through n3, and JSON-LD through jsonld.toRDF with remote contexts
 * refused. Everything becomes a list of triples with typed terms, indexed for look-ups.
 */
import N3 from 'n3';
import { parseXml, type XmlElement } from '../ows/xmldom.js';
import type { Term } from './rdf.js';

const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

export interface RTriple {
  s: Term;
  p: string;
  o: Term;
}

function resolveIri(ref: string, base: string | undefined): string {
  if (!base) return ref;
  try {
    return new URL(ref, base).href;
  } catch {
    return ref;
  }
}

function attrNs(el: XmlElement, key: string): { ns: string; local: string } {
  const i = key.indexOf(':');
  if (i < 0) return { ns: '', local: key };
  const pre = key.slice(0, i);
  return { ns: pre === 'xml' ? XML_NS : (el.nsmap[pre] ?? ''), local: key.slice(i + 1) };
}

function rdfAttr(el: XmlElement, local: string): string | undefined {
  for (const [k, v] of Object.entries(el.attrs)) {
    const a = attrNs(el, k);
    if (a.ns === RDF && a.local === local) return v;
  }
  return undefined;
}

export function parseRdfXml(text: string, docUrl?: string, maxBytes = 64 * 1024 * 1024): RTriple[] {
  const root = parseXml(text, maxBytes);
  const out: RTriple[] = [];
  let gen = 0;
  const bnode = (): Term => ({ t: 'bnode', v: `x${++gen}` });
  const baseOf = (el: XmlElement, inherited: string | undefined) => {
    const b = el.attrs['xml:base'];
    return b !== undefined ? resolveIri(b, inherited) : inherited;
  };
  const langOf = (el: XmlElement, inherited: string | undefined) => el.attrs['xml:lang'] ?? inherited;

  const node = (el: XmlElement, base0: string | undefined, lang0: string | undefined): Term => {
    const base = baseOf(el, base0);
    const lang = langOf(el, lang0);
    const about = rdfAttr(el, 'about');
    const id = rdfAttr(el, 'ID');
    const nodeId = rdfAttr(el, 'nodeID');
    const s: Term =
      about !== undefined
        ? { t: 'iri', v: resolveIri(about, base) }
        : id !== undefined
          ? { t: 'iri', v: resolveIri(`#${id}`, base) }
          : nodeId
            ? { t: 'bnode', v: `n${nodeId}` }
            : bnode();
    if (!(el.ns === RDF && el.name === 'Description')) out.push({ s, p: `${RDF}type`, o: { t: 'iri', v: el.ns + el.name } });
    propertyAttributes(el, s, lang, base);
    let li = 0;
    for (const p of el.children) li = property(p, s, base, lang, li);
    return s;
  };

  const propertyAttributes = (el: XmlElement, s: Term, lang: string | undefined, base: string | undefined) => {
    for (const [k, v] of Object.entries(el.attrs)) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
      const a = attrNs(el, k);
      if (a.ns === XML_NS || !a.ns) continue;
      if (a.ns === RDF) {
        if (a.local === 'type') out.push({ s, p: `${RDF}type`, o: { t: 'iri', v: resolveIri(v, base) } });
        continue;
      }
      out.push({ s, p: a.ns + a.local, o: { t: 'lit', v, lang } });
    }
  };

  const property = (p: XmlElement, s: Term, base0: string | undefined, lang0: string | undefined, li: number): number => {
    const base = baseOf(p, base0);
    const lang = langOf(p, lang0);
    let pred = p.ns + p.name;
    if (p.ns === RDF && p.name === 'li') pred = `${RDF}_${++li}`;
    const parseType = rdfAttr(p, 'parseType');
    const res = rdfAttr(p, 'resource');
    const nid = rdfAttr(p, 'nodeID');
    const dt = rdfAttr(p, 'datatype');
    if (parseType === 'Resource') {
      const o = bnode();
      out.push({ s, p: pred, o });
      let l = 0;
      for (const c of p.children) l = property(c, o, base, lang, l);
      return li;
    }
    if (parseType === 'Collection') {
      let head: Term = { t: 'iri', v: `${RDF}nil` };
      const items = p.children.map((c) => node(c, base, lang));
      for (let i = items.length - 1; i >= 0; i--) {
        const cell = bnode();
        out.push({ s: cell, p: `${RDF}first`, o: items[i] });
        out.push({ s: cell, p: `${RDF}rest`, o: head });
        head = cell;
      }
      out.push({ s, p: pred, o: head });
      return li;
    }
    if (parseType === 'Literal') {
      out.push({ s, p: pred, o: { t: 'lit', v: p.text, dt: `${RDF}XMLLiteral` } });
      return li;
    }
    const otherAttrs = Object.keys(p.attrs).filter((k) => {
      if (k === 'xmlns' || k.startsWith('xmlns:')) return false;
      const a = attrNs(p, k);
      return a.ns !== XML_NS && a.ns !== RDF && a.ns !== '';
    });
    if (res !== undefined || nid !== undefined || otherAttrs.length || (p.children.length === 0 && !p.text && rdfAttr(p, 'type'))) {
      const o: Term = res !== undefined ? { t: 'iri', v: resolveIri(res, base) } : nid ? { t: 'bnode', v: `n${nid}` } : bnode();
      out.push({ s, p: pred, o });
      propertyAttributes(p, o, lang, base);
      return li;
    }
    if (p.children.length >= 1) {
      out.push({ s, p: pred, o: node(p.children[0], base, lang) });
      return li;
    }
    out.push({ s, p: pred, o: dt ? { t: 'lit', v: p.text, dt } : { t: 'lit', v: p.text, lang } });
    return li;
  };

  const base = baseOf(root, docUrl);
  if (root.ns === RDF && root.name === 'RDF') for (const c of root.children) node(c, base, langOf(root, undefined));
  else node(root, base, undefined);
  return out;
}

/** Parse one RDF/XML element already in a tree (a CSW SearchResults child). */
export function parseRdfXmlElement(el: XmlElement, docUrl?: string): RTriple[] {
  return parseRdfXml(serialiseElement(el, true), docUrl);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function serialiseElement(el: XmlElement, top: boolean): string {
  const attrs: Record<string, string> = { ...el.attrs };
  if (top) for (const [p, ns] of Object.entries(el.nsmap)) if (p !== 'xml') attrs[p ? `xmlns:${p}` : 'xmlns'] = ns;
  const a = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${esc(v)}"`)
    .join('');
  const inner = el.children.length ? el.children.map((c) => serialiseElement(c, false)).join('') : esc(el.text);
  return `<${el.qname}${a}>${inner}</${el.qname}>`;
}

function fromN3(q: N3.Quad): RTriple {
  const term = (x: N3.Term): Term => {
    if (x.termType === 'NamedNode') return { t: 'iri', v: x.value };
    if (x.termType === 'BlankNode') return { t: 'bnode', v: x.value };
    const l = x as N3.Literal;
    return l.language ? { t: 'lit', v: l.value, lang: l.language } : { t: 'lit', v: l.value, dt: l.datatype?.value };
  };
  return { s: term(q.subject), p: q.predicate.value, o: term(q.object) };
}

export function parseTurtle(text: string, docUrl?: string, format?: string): RTriple[] {
  return new N3.Parser({ baseIRI: docUrl, format }).parse(text).map(fromN3);
}

export async function parseJsonLd(text: string): Promise<RTriple[]> {
  const doc = JSON.parse(text);
  const documentLoader = async (url: string) => {
    throw new Error(`remote JSON-LD contexts are not fetched (${url})`);
  };
  // loaded on first use: only harvesting a JSON-LD catalogue needs it
  const jsonld = (await import('jsonld')).default;
  const nq = (await jsonld.toRDF(doc, { format: 'application/n-quads', documentLoader } as never)) as unknown as string;
  return new N3.Parser({ format: 'N-Quads' }).parse(nq).map(fromN3);
}

export type RdfFormat = 'rdfxml' | 'turtle' | 'ntriples' | 'jsonld';

/** The serialisation from the Content-Type, else the URL's extension (udata's order is the other way round). */
export function detectRdfFormat(contentType: string | undefined, url: string): RdfFormat | null {
  const ct = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (ct === 'application/rdf+xml' || ct === 'application/xml' || ct === 'text/xml') return 'rdfxml';
  if (ct === 'text/turtle' || ct === 'application/x-turtle' || ct === 'text/n3') return 'turtle';
  if (ct === 'application/n-triples') return 'ntriples';
  if (ct === 'application/ld+json' || ct === 'application/json') return 'jsonld';
  const ext = new URL(url).pathname.toLowerCase();
  if (/\.(rdf|xml|owl)$/.test(ext)) return 'rdfxml';
  if (/\.(ttl|n3)$/.test(ext)) return 'turtle';
  if (/\.nt$/.test(ext)) return 'ntriples';
  if (/\.(jsonld|json)$/.test(ext)) return 'jsonld';
  return null;
}

export async function parseRdf(text: string, format: RdfFormat, docUrl?: string): Promise<RTriple[]> {
  if (format === 'rdfxml') return parseRdfXml(text, docUrl);
  if (format === 'jsonld') return parseJsonLd(text);
  return parseTurtle(text, docUrl, format === 'ntriples' ? 'N-Triples' : undefined);
}

/** An index over triples for look-ups by subject and predicate. */
export class TripleIndex {
  private bySubject = new Map<string, Map<string, Term[]>>();
  constructor(readonly triples: RTriple[]) {
    for (const t of triples) {
      const k = key(t.s);
      let m = this.bySubject.get(k);
      if (!m) this.bySubject.set(k, (m = new Map()));
      const l = m.get(t.p) ?? [];
      l.push(t.o);
      m.set(t.p, l);
    }
  }
  all(s: Term, p: string): Term[] {
    return this.bySubject.get(key(s))?.get(p) ?? [];
  }
  one(s: Term, p: string): Term | undefined {
    return this.all(s, p)[0];
  }
  subjectsOfType(type: string): Term[] {
    const out: Term[] = [];
    const seen = new Set<string>();
    for (const t of this.triples) {
      if (t.p === `${RDF}type` && t.o.t === 'iri' && t.o.v === type && !seen.has(key(t.s))) {
        seen.add(key(t.s));
        out.push(t.s);
      }
    }
    return out;
  }
}

export function key(t: Term): string {
  return `${t.t}:${t.v}`;
}
