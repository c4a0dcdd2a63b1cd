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

/**
 * Bounds on an XML document, checked by a linear pre-scan before the parser runs, so that a small
 * body cannot make the server do large work (70,000 wfs:Query, 150,000 attributes, or nesting
 * deep enough to exhaust the stack). Request bodies use limits.maxXml* from the config.
 */
export interface XmlLimits {
  maxBytes: number;
  /** Start tags in the whole document. */
  maxElements: number;
  /** Attributes (namespace declarations included) in the whole document. */
  maxAttributes: number;
  /** Nesting depth (the root element is depth 1). */
  maxDepth: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({
  maxBytes: DEFAULT_MAX_XML_BYTES,
  maxElements: 10_000,
  maxAttributes: 20_000,
  maxDepth: 64,
});

/** No element of an OGC request or catalogue record has more than a few dozen attributes. */
const MAX_ATTRIBUTES_PER_ELEMENT = 256;

/** The XmlLimits of the configuration's `limits` section (requests' XML). */
export function xmlLimitsOf(l: { maxBodyBytes: number; maxXmlElements: number; maxXmlAttributes: number; maxXmlDepth: number }): XmlLimits {
  return { maxBytes: l.maxBodyBytes, maxElements: l.maxXmlElements, maxAttributes: l.maxXmlAttributes, maxDepth: l.maxXmlDepth };
}

/** A document over one of its XmlLimits: the client's request is too large, not malformed. */
export class XmlLimitError extends XmlInputError {
  constructor(
    message: string,
    readonly limit: keyof XmlLimits,
  ) {
    super(message);
    this.name = 'XmlLimitError';
  }
}

/**
 * Count elements, attributes and depth in one pass over the text (no tree, no allocation) and
 * throw XmlLimitError as soon as a limit is passed. Comments, CDATA sections and processing
 * instructions are skipped; malformed input is left for the parser to report.
 */
export function prescanXml(text: string, lim: XmlLimits): void {
  let elements = 0;
  let attributes = 0;
  let depth = 0;
  const n = text.length;
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0 || lt + 1 >= n) return;
    const c = text.charCodeAt(lt + 1);
    if (c === 33 /* ! */) {
      const [open, close] = text.startsWith('<!--', lt)
        ? ['<!--', '-->']
        : text.startsWith('<![CDATA[', lt)
          ? ['<![CDATA[', ']]>']
          : ['<!', '>'];
      const e = text.indexOf(close, lt + open.length);
      if (e < 0) return;
      i = e + close.length;
      continue;
    }
    if (c === 63 /* ? */) {
      const e = text.indexOf('?>', lt + 2);
      if (e < 0) return;
      i = e + 2;
      continue;
    }
    if (c === 47 /* / */) {
      depth--;
      const e = text.indexOf('>', lt + 2);
      if (e < 0) return;
      i = e + 1;
      continue;
    }
    if (++elements > lim.maxElements) {
      throw new XmlLimitError(`XML document has more than ${lim.maxElements} elements (this server's limit)`, 'maxElements');
    }
    // the start tag: every name that follows white space outside quotes is an attribute
    let j = lt + 1;
    let afterSpace = false;
    let own = 0;
    for (; j < n; j++) {
      const ch = text.charCodeAt(j);
      if (ch === 34 || ch === 39) {
        const e = text.indexOf(ch === 34 ? '"' : "'", j + 1);
        if (e < 0) return;
        j = e;
        afterSpace = false;
      } else if (ch === 62 /* > */) break;
      else if (ch === 32 || ch === 9 || ch === 10 || ch === 13) afterSpace = true;
      else {
        if (afterSpace && ch !== 61 /* = */ && ch !== 47 /* / */) {
          if (++attributes > lim.maxAttributes)
            throw new XmlLimitError(`XML document has more than ${lim.maxAttributes} attributes (this server's limit)`, 'maxAttributes');
          if (++own > MAX_ATTRIBUTES_PER_ELEMENT)
            throw new XmlLimitError(`an XML element has more than ${MAX_ATTRIBUTES_PER_ELEMENT} attributes`, 'maxAttributes');
        }
        afterSpace = false;
      }
    }
    if (j >= n) return;
    if (depth + 1 > lim.maxDepth) {
      throw new XmlLimitError(`XML elements are nested more than ${lim.maxDepth} deep (this server's limit)`, 'maxDepth');
    }
    if (text.charCodeAt(j - 1) !== 47 /* / */) depth++; // not an empty-element tag
    i = j + 1;
  }
}

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

/**
 * Parse an XML document into an element tree. Throws XmlInputError on anything refused
 * (XmlLimitError when over a limit). `limits` is XmlLimits, or just a byte cap for documents
 * this server fetches itself (harvested catalogues: no element or attribute bound, depth 256).
 */
export function parseXml(input: string | Buffer, limits: number | Partial<XmlLimits> = DEFAULT_XML_LIMITS): XmlElement {
  const lim: XmlLimits =
    typeof limits === 'number'
      ? { maxBytes: limits, maxElements: Number.POSITIVE_INFINITY, maxAttributes: Number.POSITIVE_INFINITY, maxDepth: 256 }
      : { ...DEFAULT_XML_LIMITS, ...limits };
  const text = typeof input === 'string' ? input : input.toString('utf8');
  if (Buffer.byteLength(text, 'utf8') > lim.maxBytes) {
    throw new XmlLimitError(`XML body larger than ${lim.maxBytes} bytes`, 'maxBytes');
  }
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    throw new XmlInputError('DOCTYPE and entity declarations are not allowed in requests');
  }
  prescanXml(text, lim);
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
