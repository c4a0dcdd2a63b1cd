/**
 * Semantic comparison of XML responses with golden files (fixtures/catalogue/expected): both are
 * parsed; elements are compared by namespace and local name (prefixes do not matter), attributes
 * by namespace and local name (order and namespace declarations do not matter), text with
 * whitespace collapsed and numbers numerically (1e-6). Not compared: csw:SearchStatus/@timestamp,
 * csw:Acknowledgement/@timeStamp, xsi:schemaLocation, ows:ExceptionText (free text, OWS Common
 * §8.5). In an expected file, a text or attribute value '*' matches any value, and an element
 * with golden:match="subset" (xmlns:golden="urn:geodata:golden") matches when its children appear
 * in the actual element in that order, others allowed in between.
 */
import { escapeAttr, escapeText } from '../../src/ows/xml.js';
import type { XmlElement } from '../../src/ows/xmldom.js';

export const GOLDEN_NS = 'urn:geodata:golden';
const IGNORED_ATTRS = new Set(['timestamp', 'timeStamp', '{http://www.w3.org/2001/XMLSchema-instance}schemaLocation']);

function attrKey(el: XmlElement, qname: string): string {
  const i = qname.indexOf(':');
  if (i < 0) return qname;
  const ns = el.nsmap[qname.slice(0, i)] ?? qname.slice(0, i);
  return `{${ns}}${qname.slice(i + 1)}`;
}

function norm(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function sameValue(expected: string, actual: string): boolean {
  const e = norm(expected);
  const a = norm(actual);
  if (e === '*' || e === a) return true;
  // numbers and lists of numbers (coordinates) compare numerically
  const en = e.split(' ');
  const an = a.split(' ');
  if (en.length === an.length && en.every((x) => x !== '' && Number.isFinite(Number(x))) && an.every((x) => Number.isFinite(Number(x))))
    return en.every((x, i) => Math.abs(Number(x) - Number(an[i])) <= 1e-6 * Math.max(1, Math.abs(Number(x))));
  return false;
}

/** Differences between an expected and an actual element ([] when they match). */
export function compareXml(expected: XmlElement, actual: XmlElement, path = ''): string[] {
  const here = `${path}/${expected.qname}`;
  if (expected.ns !== actual.ns || expected.name !== actual.name)
    return [`${here}: expected {${expected.ns}}${expected.name}, got {${actual.ns}}${actual.name}`];
  const diffs: string[] = [];
  if (expected.ns === 'http://www.opengis.net/ows' && expected.name === 'ExceptionText') return diffs;
  const ea = new Map<string, string>();
  let subset = false;
  for (const [k, v] of Object.entries(expected.attrs)) {
    const key = attrKey(expected, k);
    if (key === `{${GOLDEN_NS}}match`) subset = v === 'subset';
    else if (!IGNORED_ATTRS.has(key)) ea.set(key, v);
  }
  const aa = new Map<string, string>();
  for (const [k, v] of Object.entries(actual.attrs)) {
    const key = attrKey(actual, k);
    if (!IGNORED_ATTRS.has(key)) aa.set(key, v);
  }
  for (const [k, v] of ea) {
    if (!aa.has(k)) diffs.push(`${here}/@${k}: missing (expected '${v}')`);
    else if (!sameValue(v, aa.get(k)!)) diffs.push(`${here}/@${k}: expected '${v}', got '${aa.get(k)}'`);
  }
  for (const k of aa.keys()) if (!ea.has(k) && !subset) diffs.push(`${here}/@${k}: unexpected attribute '${aa.get(k)}'`);
  if (!sameValue(expected.text, actual.text)) diffs.push(`${here}: text expected '${norm(expected.text)}', got '${norm(actual.text)}'`);
  if (subset) {
    let j = 0;
    for (const ec of expected.children) {
      while (j < actual.children.length && compareXml(ec, actual.children[j], here).length) j++;
      if (j >= actual.children.length) {
        diffs.push(`${here}: no child matching ${ec.qname} (in order)`);
        break;
      }
      j++;
    }
    return diffs;
  }
  if (expected.children.length !== actual.children.length)
    diffs.push(
      `${here}: ${expected.children.length} children expected, got ${actual.children.length} (${actual.children.map((c) => c.qname).join(', ')})`,
    );
  const n = Math.min(expected.children.length, actual.children.length);
  for (let i = 0; i < n && diffs.length < 20; i++) diffs.push(...compareXml(expected.children[i], actual.children[i], here));
  return diffs;
}

/** Indented XML of a parsed element (golden files are written this way), namespaces declared on the root. */
export function prettyXml(el: XmlElement): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  const write = (e: XmlElement, depth: number, parent: Record<string, string> | null) => {
    const pad = '  '.repeat(depth);
    let decl = '';
    for (const [p, ns] of Object.entries(e.nsmap)) {
      if (p === 'xml' || (parent && parent[p] === ns)) continue;
      decl += p ? ` xmlns:${p}="${escapeAttr(ns)}"` : ` xmlns="${escapeAttr(ns)}"`;
    }
    const attrs = Object.entries(e.attrs)
      .map(([k, v]) => ` ${k}="${escapeAttr(v)}"`)
      .join('');
    if (!e.children.length && !e.text) out.push(`${pad}<${e.qname}${decl}${attrs}/>\n`);
    else if (!e.children.length) out.push(`${pad}<${e.qname}${decl}${attrs}>${escapeText(e.text)}</${e.qname}>\n`);
    else {
      out.push(`${pad}<${e.qname}${decl}${attrs}>\n`);
      if (e.text) out.push(`${pad}  ${escapeText(e.text)}\n`);
      for (const c of e.children) write(c, depth + 1, e.nsmap);
      out.push(`${pad}</${e.qname}>\n`);
    }
  };
  write(el, 0, null);
  return out.join('');
}
