/**
 * Serialisation of a parsed element back to XML text, self-contained: the element declares every
 * namespace in scope where it was read (so a record taken out of a GetRecordsResponse or a
 * Transaction keeps its prefixes), its descendants only the declarations that differ.
 * Comments, processing instructions and whitespace-only text are not kept (the parser drops them).
 */
import { escapeAttr, escapeText } from '../ows/xml.js';
import type { XmlElement } from '../ows/xmldom.js';

function decls(el: XmlElement, parent: Record<string, string> | null): string {
  let s = '';
  for (const [p, ns] of Object.entries(el.nsmap)) {
    if (p === 'xml') continue;
    if (parent && parent[p] === ns) continue;
    s += p ? ` xmlns:${p}="${escapeAttr(ns)}"` : ` xmlns="${escapeAttr(ns)}"`;
  }
  return s;
}

function write(el: XmlElement, parent: Record<string, string> | null, out: string[], omit?: Record<string, string>): void {
  out.push(`<${el.qname}${decls(el, parent ?? omit ?? null)}`);
  for (const [k, v] of Object.entries(el.attrs)) out.push(` ${k}="${escapeAttr(v)}"`);
  if (!el.children.length && !el.text) {
    out.push('/>');
    return;
  }
  out.push('>');
  if (el.text) out.push(escapeText(el.text));
  for (const c of el.children) write(c, el.nsmap, out);
  out.push(`</${el.qname}>`);
}

/** The element as XML text (no XML declaration). `inScope`: declarations already made by the context. */
export function serialiseElement(el: XmlElement, inScope?: Record<string, string>): string {
  const out: string[] = [];
  write(el, null, out, inScope);
  return out.join('');
}
