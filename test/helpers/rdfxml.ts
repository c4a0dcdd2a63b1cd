/**
 * A small RDF/XML reader for tests (node elements with rdf:about / rdf:nodeID, typed node
 * elements, property elements with rdf:resource / rdf:nodeID / nested nodes / literals with
 * rdf:datatype or xml:lang). It reads what harvesters read; it is not a full RDF/XML parser
 * (no rdf:parseType, no property attributes), and fails loudly on what it does not know.
 */
import type { XmlElement } from '../../src/ows/xmldom.js';

const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';

export interface SimpleTriple {
  s: string;
  p: string;
  /** IRI, '_:label' or the literal's lexical value */
  o: string;
  literal?: { datatype?: string; lang?: string };
}

function rdfAttr(el: XmlElement, local: string): string | undefined {
  for (const [k, v] of Object.entries(el.attrs)) {
    const i = k.indexOf(':');
    if (i < 0) continue;
    if (k.slice(i + 1) === local && el.nsmap[k.slice(0, i)] === RDF) return v;
  }
  return undefined;
}

export function rdfXmlTriples(root: XmlElement): SimpleTriple[] {
  if (root.ns !== RDF || root.name !== 'RDF') throw new Error(`not rdf:RDF but ${root.qname}`);
  const out: SimpleTriple[] = [];
  let gen = 0;
  const node = (el: XmlElement): string => {
    const about = rdfAttr(el, 'about');
    const nodeId = rdfAttr(el, 'nodeID');
    const s = about ?? (nodeId ? `_:${nodeId}` : `_:gen${++gen}`);
    if (!(el.ns === RDF && el.name === 'Description')) out.push({ s, p: `${RDF}type`, o: el.ns + el.name });
    for (const a of Object.keys(el.attrs)) {
      const i = a.indexOf(':');
      const pre = i >= 0 ? a.slice(0, i) : '';
      if (pre === 'xml' || (pre && el.nsmap[pre] === RDF) || a.startsWith('xmlns')) continue;
      throw new Error(`property attributes are not supported (${a})`);
    }
    for (const p of el.children) {
      const pred = p.ns + p.name;
      const res = rdfAttr(p, 'resource');
      const nid = rdfAttr(p, 'nodeID');
      if (rdfAttr(p, 'parseType')) throw new Error('rdf:parseType is not supported');
      if (res !== undefined) out.push({ s, p: pred, o: res });
      else if (nid !== undefined) out.push({ s, p: pred, o: `_:${nid}` });
      else if (p.children.length === 1) out.push({ s, p: pred, o: node(p.children[0]) });
      else if (p.children.length > 1) throw new Error(`property ${p.qname} has several node children`);
      else out.push({ s, p: pred, o: p.text, literal: { datatype: rdfAttr(p, 'datatype'), lang: p.attrs['xml:lang'] } });
    }
    return s;
  };
  for (const c of root.children) node(c);
  return out;
}
