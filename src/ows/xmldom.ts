/**
 * A small, namespace-aware element tree for XML request bodies (WFS/CSW POST, FES filters, SLD).
 *
 * Parsing is done by fast-xml-parser; this module only refuses what must never be processed
 * (DOCTYPE, entity declarations: no XML bombs, no external entities), caps the input size, and
 * turns the parser's output into elements with resolved namespace URIs.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlElement {
  /** Local name, without prefix. */
  name: string;
  /** Namespace URI ('' when none). */
  ns: string;
  /** Qualified name as written (prefix:local). */
  qname: string;
  /** Attributes by qualified name as written (e.g. 'xlink:href', 'version'). */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated direct text content, trimmed. */
  text: string;
  /** In-scope namespace declarations (prefix → URI, '' for the default namespace). */
  nsmap: Record<string, string>;
}

export class XmlInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlInputError';
  }
}

export const DEFAULT_MAX_XML_BYTES = 2 * 1024 * 1024;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true, // only the five predefined entities and character references
  htmlEntities: true, // decodes numeric character references (&#233;); DOCTYPE is refused before parsing
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false as unknown as string,
});

/** Parse an XML document into an element tree. Throws XmlInputError on anything refused. */
export function parseXml(input: string | Buffer, maxBytes = DEFAULT_MAX_XML_BYTES): XmlElement {
  const text = typeof input === 'string' ? input : input.toString('utf8');
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new XmlInputError(`XML body larger than ${maxBytes} bytes`);
  }
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    throw new XmlInputError('DOCTYPE and entity declarations are not allowed in requests');
  }
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: true });
  if (valid !== true) {
    const e = valid.err;
    throw new XmlInputError(`XML is not well-formed: ${e.msg} (line ${e.line}, column ${e.col})`);
  }
  let raw: unknown[];
  try {
    raw = parser.parse(text) as unknown[];
  } catch (err) {
    throw new XmlInputError(`XML is not well-formed: ${(err as Error).message}`);
  }
  const roots = convertList(raw, { xml: 'http://www.w3.org/XML/1998/namespace' });
  if (roots.length !== 1) throw new XmlInputError('XML document must have exactly one root element');
  return roots[0];
}

type RawNode = Record<string, unknown>;

function convertList(list: unknown[], nsmap: Record<string, string>): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of list) {
    const el = convertNode(node as RawNode, nsmap);
    if (el) out.push(el);
  }
  return out;
}

function convertNode(node: RawNode, parentNs: Record<string, string>): XmlElement | null {
  const keys = Object.keys(node).filter((k) => k !== ':@');
  if (keys.length !== 1) return null;
  const qname = keys[0];
  if (qname === '#text' || qname.startsWith('?') || qname === '#comment') return null;
  const rawAttrs = (node[':@'] ?? {}) as Record<string, unknown>;
  const nsmap = { ...parentNs };
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawAttrs)) {
    const value = v === true ? '' : String(v);
    if (k === 'xmlns') nsmap[''] = value;
    else if (k.startsWith('xmlns:')) nsmap[k.slice(6)] = value;
    else attrs[k] = value;
  }
  const colon = qname.indexOf(':');
  const prefix = colon >= 0 ? qname.slice(0, colon) : '';
  const name = colon >= 0 ? qname.slice(colon + 1) : qname;
  const ns = nsmap[prefix] ?? '';
  const childList = (node[qname] ?? []) as unknown[];
  const children: XmlElement[] = [];
  let text = '';
  for (const c of childList) {
    const cr = c as RawNode;
    if ('#text' in cr) {
      text += String(cr['#text']);
      continue;
    }
    const el = convertNode(cr, nsmap);
    if (el) children.push(el);
  }
  return { name, ns, qname, attrs, children, text: text.trim(), nsmap };
}

/** First child element with the given local name (and namespace, when given). */
export function child(el: XmlElement, name: string, ns?: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name && (ns === undefined || c.ns === ns));
}

/** All child elements with the given local name. */
export function children(el: XmlElement, name: string, ns?: string): XmlElement[] {
  return el.children.filter((c) => c.name === name && (ns === undefined || c.ns === ns));
}

/** Attribute by local name, whatever its prefix. */
export function attr(el: XmlElement, localName: string): string | undefined {
  if (localName in el.attrs) return el.attrs[localName];
  for (const [k, v] of Object.entries(el.attrs)) {
    const i = k.indexOf(':');
    if (i >= 0 && k.slice(i + 1) === localName) return v;
  }
  // lenient where the meaning is unambiguous: clients write e.g. typenames or outputformat
  // (OWSLib 0.27 on WFS 2.0); one attribute matching whatever the case is taken
  const lower = localName.toLowerCase();
  let found: string | undefined;
  let n = 0;
  for (const [k, v] of Object.entries(el.attrs)) {
    if (k.startsWith('xmlns')) continue;
    const i = k.indexOf(':');
    if ((i >= 0 ? k.slice(i + 1) : k).toLowerCase() === lower) {
      found = v;
      n++;
    }
  }
  return n === 1 ? found : undefined;
}

/** Resolve a prefixed name found in text content or an attribute value (e.g. typeNames="ns:parcels"). */
export function resolveQName(el: XmlElement, value: string): { ns: string; name: string; prefix: string } {
  const i = value.indexOf(':');
  const prefix = i >= 0 ? value.slice(0, i) : '';
  const name = i >= 0 ? value.slice(i + 1) : value;
  return { prefix, name, ns: el.nsmap[prefix] ?? '' };
}
