/**
 * Dublin Core (csw:Record, OGC 07-006r1 §10.2.5) — the schema module that reads and writes it.
 *
 * Reading (readDc): a csw:Record is kept as received (the source document) with its queryable
 * index (every dc/dct element under its queryable name, the bounding box in CRS84 whatever its
 * CRS and axis order) and a projection for the other schemas' writers (crosswalk DC → ISO 19139 /
 * DCAT-AP, docs/catalogue-store.md). Nothing is made up: no abstract from the title, no language
 * from the service default in the Dublin Core view.
 *
 * Writing (writeDcRecord): a record received as csw:Record is written from its source document —
 * unchanged for ElementSetName full, the elements of csw:SummaryRecord / csw:BriefRecord (in the
 * order record.xsd requires) for summary / brief, the requested elements for ElementName. Other
 * records go through the crosswalk from their projection.
 */
import { OwsException } from '../ows/exceptions.js';
import type { XmlWriter } from '../ows/xml.js';
import { parseXml, type XmlElement } from '../ows/xmldom.js';
import { parseCrsName } from '../filter/crs-names.js';
import { absolutise, type CatalogRecord, type RecordType } from './model.js';
import { IndexBuilder } from './queryables.js';
import { serialiseElement } from './xmlser.js';

export const CSW_NS = 'http://www.opengis.net/cat/csw/2.0.2';
export const DC_NS = 'http://purl.org/dc/elements/1.1/';
export const DCT_NS = 'http://purl.org/dc/terms/';
export const OWS_NS = 'http://www.opengis.net/ows';

/** Namespaces declared by every CSW response root (records written inside need not repeat them). */
export const RESPONSE_NS: Record<string, string> = {
  csw: CSW_NS,
  dc: DC_NS,
  dct: DCT_NS,
  ows: OWS_NS,
  ogc: 'http://www.opengis.net/ogc',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
};

// ---------------------------------------------------------------------------------------------
// shared validation of incoming values (CSW-T, import)

const CONTROL = /[\u0000-\u001F\u007F]/;

/** Identifier rules of the store: non-empty, at most 1024 characters, no control characters. */
export function checkIdentifier(id: string, locator: string): void {
  if (!id.trim()) throw new OwsException('InvalidParameterValue', 'empty record identifier', locator);
  if (id.length > 1024) throw new OwsException('InvalidParameterValue', `record identifier longer than 1024 characters`, locator);
  if (CONTROL.test(id)) throw new OwsException('InvalidParameterValue', 'record identifier with control characters', locator);
}

/** A W3CDTF / ISO 8601 date or date-time that exists (no 2023-02-30, no month 13). */
export function isValidDate(v: string): boolean {
  const m = v.trim().match(/^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$/);
  if (!m) return false;
  const [, y, mo, d, h, mi, s] = m;
  if (mo && (Number(mo) < 1 || Number(mo) > 12)) return false;
  if (d) {
    const days = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
    if (Number(d) < 1 || Number(d) > days) return false;
  }
  if (h && (Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 60)) return false;
  return true;
}

/** Refuse NaN, infinite, inverted or out-of-range CRS84 boxes. */
export function checkBbox(b: number[], locator: string): [number, number, number, number] {
  if (b.length !== 4 || !b.every(Number.isFinite))
    throw new OwsException('InvalidParameterValue', `bounding box with a missing or non-numeric coordinate (${b.join(' ')})`, locator);
  const [w, s, e, n] = b;
  if (s > n || w > e) throw new OwsException('InvalidParameterValue', `inverted bounding box (${b.join(' ')})`, locator);
  if (s < -90 || n > 90 || w < -180 || e > 180)
    throw new OwsException('InvalidParameterValue', `bounding box outside the CRS's valid area (${b.join(' ')})`, locator);
  return [w, s, e, n];
}

// ---------------------------------------------------------------------------------------------
// reading

const kids = (el: XmlElement, ns: string, name: string) => el.children.filter((c) => c.ns === ns && c.name === name);

function allText(el: XmlElement, out: string[] = []): string[] {
  if (el.text) out.push(el.text);
  for (const [k, v] of Object.entries(el.attrs)) if (!k.startsWith('xmlns') && !k.startsWith('xsi:')) out.push(v);
  for (const c of el.children) allText(c, out);
  return out;
}

const RECORD_TYPES: RecordType[] = ['dataset', 'series', 'nonGeographicDataset', 'service'];

/** The envelope of an ows:BoundingBox / ows:WGS84BoundingBox in CRS84 order [w, s, e, n], with its EPSG code. */
export function owsBox(bb: XmlElement, locator: string): { box: number[]; epsg: number } {
  const lo = (bb.children.find((c) => c.name === 'LowerCorner')?.text ?? '').trim().split(/\s+/).map(Number);
  const up = (bb.children.find((c) => c.name === 'UpperCorner')?.text ?? '').trim().split(/\s+/).map(Number);
  if (lo.length < 2 || up.length < 2 || ![...lo, ...up].every(Number.isFinite))
    throw new OwsException('InvalidParameterValue', `${bb.qname} with a missing or non-numeric corner`, locator);
  if (bb.name === 'WGS84BoundingBox') return { box: [lo[0], lo[1], up[0], up[1]], epsg: 4326 };
  const crs = bb.attrs.crs ?? 'urn:ogc:def:crs:EPSG::4326';
  const info = parseCrsName(crs);
  if (!info) throw new OwsException('InvalidParameterValue', `${bb.qname}: unknown CRS '${crs}'`, locator);
  const box = info.latLonOrder ? [lo[1], lo[0], up[1], up[0]] : [lo[0], lo[1], up[0], up[1]];
  return { box, epsg: info.epsg };
}

/**
 * csw:Record → stored record (source document, index, projection). Refuses (InvalidParameterValue,
 * nothing stored) records without dc:identifier, with a bad identifier, an impossible date or a
 * NaN / inverted bounding box. dc:title is not required (record.xsd does not require it).
 */
export function readDc(el: XmlElement, source: string, now: string, locator = 'Insert'): CatalogRecord {
  const dc = (n: string) => kids(el, DC_NS, n).map((c) => c.text);
  const dct = (n: string) => kids(el, DCT_NS, n).map((c) => c.text);
  const identifier = dc('identifier')[0];
  if (!identifier) throw new OwsException('InvalidParameterValue', 'a csw:Record needs a dc:identifier', locator);
  checkIdentifier(identifier, locator);
  for (const c of el.children) {
    if (c.ns === DCT_NS && ['modified', 'created', 'issued', 'available', 'dateAccepted', 'dateSubmitted', 'valid'].includes(c.name)) {
      if (c.text && !isValidDate(c.text))
        throw new OwsException('InvalidParameterValue', `${c.qname} '${c.text.slice(0, 40)}' is not a valid date`, locator);
    } else if (c.ns === DC_NS && c.name === 'date' && c.text && /^\d{4}-/.test(c.text) && !isValidDate(c.text))
      throw new OwsException('InvalidParameterValue', `dc:date '${c.text.slice(0, 40)}' is not a valid date`, locator);
  }
  // bounding boxes: the first one gives the envelope (CRS84 after axis order and reprojection)
  const boxes = el.children.filter((c) => c.ns === OWS_NS && (c.name === 'BoundingBox' || c.name === 'WGS84BoundingBox'));
  let bbox: [number, number, number, number] | null = null;
  let bboxEpsg = 4326;
  const crsValues: string[] = [];
  for (const bb of boxes) {
    const { box, epsg } = owsBox(bb, locator);
    if (epsg === 4326) checkBbox(box, locator);
    else if (box[0] > box[2] || box[1] > box[3])
      throw new OwsException('InvalidParameterValue', `inverted bounding box (${box.join(' ')})`, locator);
    if (bb.attrs.crs) crsValues.push(bb.attrs.crs);
    if (!bbox) {
      bbox = box as [number, number, number, number];
      bboxEpsg = epsg;
    }
  }
  const b = new IndexBuilder();
  const title = dc('title');
  b.add('identifier', ...dc('identifier'));
  b.add('title', ...title);
  b.add('alternatetitle', ...dct('alternative'));
  b.add('abstract', ...dct('abstract'), ...dc('description'));
  b.add('subject', ...dc('subject'));
  b.add('type', ...dc('type'));
  b.add('format', ...dc('format'));
  b.add('relation', ...dc('relation'), ...['isPartOf', 'hasPart', 'isVersionOf', 'hasVersion', 'requires', 'isRequiredBy'].flatMap(dct));
  b.add('references', ...dct('references'));
  b.add('modified', ...dct('modified'));
  b.add('date', ...dc('date'));
  b.add('creationdate', ...dct('created'));
  b.add('publicationdate', ...dct('issued'));
  b.add('source', ...dc('source'));
  b.add('creator', ...dc('creator'));
  b.add('publisher', ...dc('publisher'));
  b.add('contributor', ...dc('contributor'));
  b.add('organisationname', ...dc('creator'), ...dc('publisher'), ...dc('contributor'));
  b.add('language', ...dc('language'));
  b.add('rights', ...dc('rights'), ...dct('accessRights'), ...dct('license'));
  b.add('license', ...dct('license'));
  b.add('accessconstraints', ...dct('accessRights'));
  b.add('spatial', ...dct('spatial'));
  b.add('crs', ...crsValues);
  const index = b.done(allText(el));
  const types = dc('type');
  const type = types.find((x) => RECORD_TYPES.includes(x as RecordType)) as RecordType | undefined;
  const first = (v: string[]) => v.find(Boolean);
  const licence = first(dct('license'));
  return {
    identifier,
    type: type ?? (types.some((x) => /service$/i.test(x)) ? 'service' : 'dataset'),
    title: first(title) ?? '',
    abstract: first(dct('abstract')) ?? first(dc('description')) ?? '',
    keywords: [...new Set(dc('subject').filter(Boolean))],
    themes: [],
    licence: licence && /^https?:/.test(licence) ? { url: licence } : null,
    rights: dc('rights').filter(Boolean).join(' — ') || null,
    accessRights: first(dct('accessRights')) ?? null,
    contact: first(dc('creator')) ? { organisation: first(dc('creator')) } : null,
    publisher: first(dc('publisher')) ? { organisation: first(dc('publisher')) } : null,
    created: first(dct('created')) ?? null,
    issued: first(dct('issued')) ?? null,
    modified: first(dct('modified')) ?? null,
    language: first(dc('language')) ?? 'fre',
    lineage: first(dc('source')) ?? null,
    bbox,
    bboxEpsg,
    crs: [],
    links: dct('references')
      .filter(Boolean)
      .map((u, i) => ({ url: u, protocol: kids(el, DCT_NS, 'references')[i]?.attrs.scheme || 'WWW:LINK' })),
    operatesOn: [],
    source,
    sourceId: identifier,
    harvestedAt: null,
    metadataModified: now,
    recordSchema: 'csw',
    sourceDoc: serialiseElement(el),
    index,
  };
}

// ---------------------------------------------------------------------------------------------
// writing

function boundingBox(w: XmlWriter, r: CatalogRecord): void {
  if (!r.bbox) return;
  const [west, south, east, north] = r.bbox;
  // EPSG:4326 in its own axis order: latitude first
  w.start('ows:BoundingBox', { crs: 'urn:ogc:def:crs:EPSG::4326', dimensions: 2 });
  w.el('ows:LowerCorner', `${south} ${west}`);
  w.el('ows:UpperCorner', `${north} ${east}`);
  w.end();
}

/** Elements of a full record in order, by qualified name, for ElementName selection. */
export const DC_ELEMENTS = [
  'dc:identifier',
  'dc:title',
  'dc:type',
  'dc:subject',
  'dc:format',
  'dc:relation',
  'dct:modified',
  'dct:abstract',
  'dct:spatial',
  'dc:creator',
  'dc:publisher',
  'dc:contributor',
  'dc:language',
  'dc:rights',
  'dct:license',
  'dc:source',
  'dc:date',
  'dct:references',
  'ows:BoundingBox',
];

/** csw:BriefRecord and csw:SummaryRecord content, in record.xsd order: [namespace, local name]. */
const BRIEF: [string, string][] = [
  [DC_NS, 'identifier'],
  [DC_NS, 'title'],
  [DC_NS, 'type'],
  [OWS_NS, 'BoundingBox'],
  [OWS_NS, 'WGS84BoundingBox'],
];
const SUMMARY: [string, string][] = [
  [DC_NS, 'identifier'],
  [DC_NS, 'title'],
  [DC_NS, 'type'],
  [DC_NS, 'subject'],
  [DC_NS, 'format'],
  [DC_NS, 'relation'],
  [DCT_NS, 'modified'],
  [DCT_NS, 'abstract'],
  [DCT_NS, 'spatial'],
  [OWS_NS, 'BoundingBox'],
  [OWS_NS, 'WGS84BoundingBox'],
];
const PREFIX_NS: Record<string, string> = { dc: DC_NS, dct: DCT_NS, dcterms: DCT_NS, ows: OWS_NS };

/** Parsed source documents of the last records written (a page is written once; keep a few). */
const parsed = new Map<string, XmlElement>();
function docOf(r: CatalogRecord): XmlElement {
  let el = parsed.get(r.sourceDoc!);
  if (!el) {
    el = parseXml(r.sourceDoc!, 64 * 1024 * 1024);
    if (parsed.size > 200) parsed.clear();
    parsed.set(r.sourceDoc!, el);
  }
  return el;
}

function writeFromDoc(w: XmlWriter, r: CatalogRecord, elementSet: 'brief' | 'summary' | 'full', elementNames?: string[]): void {
  const doc = docOf(r);
  // namespaces of the source root that the response root does not declare go on the record element
  const extra: Record<string, string> = {};
  const scope: Record<string, string> = { ...RESPONSE_NS };
  for (const [p, ns] of Object.entries(doc.nsmap)) {
    if (p === 'xml' || p === '' || RESPONSE_NS[p] === ns || (p in RESPONSE_NS && p !== 'xsi')) continue;
    extra[`xmlns:${p}`] = ns;
    scope[p] = ns;
  }
  const out = (c: XmlElement) => w.raw(serialiseElement(c, scope));
  if (elementNames?.length) {
    const want = elementNames.map((n) => {
      const [p, l] = n.includes(':') ? n.split(':', 2) : ['', n];
      return { ns: PREFIX_NS[p.toLowerCase()], local: l.toLowerCase() };
    });
    w.start('csw:Record', extra);
    for (const c of doc.children)
      if (want.some((x) => x.local === c.name.toLowerCase() && (!x.ns || x.ns === c.ns || (x.ns === DCT_NS && c.ns === DC_NS)))) out(c);
    w.end();
    return;
  }
  if (elementSet === 'full') {
    w.start('csw:Record', extra);
    for (const c of doc.children) out(c);
    w.end();
    return;
  }
  const list = elementSet === 'brief' ? BRIEF : SUMMARY;
  w.start(elementSet === 'brief' ? 'csw:BriefRecord' : 'csw:SummaryRecord', extra);
  for (const [ns, local] of list) {
    const found = doc.children.filter((c) => c.ns === ns && c.name === local);
    // record.xsd: a brief or summary record has at least one dc:title
    if (!found.length && local === 'title') w.el('dc:title', '');
    for (const c of found) out(c);
  }
  w.end();
}

export function writeDcRecord(
  w: XmlWriter,
  r: CatalogRecord,
  elementSet: 'brief' | 'summary' | 'full',
  base: string,
  elementNames?: string[],
): void {
  if (r.recordSchema === 'csw' && r.sourceDoc) {
    writeFromDoc(w, r, elementSet, elementNames);
    return;
  }
  // crosswalk: projection → Dublin Core (docs/catalogue-store.md)
  const want = elementNames?.length ? new Set(elementNames.map((n) => n.replace(/^csw:/, '').toLowerCase())) : null;
  const has = (q: string) => !want || want.has(q.toLowerCase()) || want.has(q.replace(/^[^:]*:/, '').toLowerCase());
  const root = want
    ? 'csw:Record'
    : elementSet === 'brief'
      ? 'csw:BriefRecord'
      : elementSet === 'summary'
        ? 'csw:SummaryRecord'
        : 'csw:Record';
  w.start(root);
  // ISO 19139 records: the distribution formats (MD_Format names), not the link protocols
  const formats =
    r.recordSchema === 'iso19139' && r.index ? (r.index.format ?? []) : [...new Set(r.links.map((l) => l.mediaType ?? l.protocol))];
  if (has('dc:identifier')) w.el('dc:identifier', r.identifier);
  if (has('dc:title')) w.el('dc:title', r.title);
  if (has('dc:type')) w.el('dc:type', r.type);
  if (!want && elementSet === 'brief') {
    boundingBox(w, r);
    w.end();
    return;
  }
  if (has('dc:subject')) {
    for (const k of r.keywords) w.el('dc:subject', k);
    for (const t of r.themes) w.el('dc:subject', { scheme: t.scheme }, t.label);
  }
  if (has('dc:format')) for (const f of formats) w.el('dc:format', f);
  if (has('dc:relation')) for (const id of r.operatesOn) w.el('dc:relation', id);
  if (has('dct:modified') && r.modified) w.el('dct:modified', r.modified);
  if (has('dct:abstract') && r.abstract) w.el('dct:abstract', r.abstract);
  if (!want && elementSet === 'summary') {
    boundingBox(w, r);
    w.end();
    return;
  }
  if (has('dc:creator') && r.contact) w.el('dc:creator', r.contact.organisation ?? r.contact.name ?? '');
  if (has('dc:publisher') && r.publisher) w.el('dc:publisher', r.publisher.organisation ?? r.publisher.name ?? '');
  if (has('dc:language') && r.language) w.el('dc:language', r.language);
  if (has('dc:rights')) {
    if (r.licence) w.el('dc:rights', r.licence.label ?? r.licence.url);
    if (r.rights) w.el('dc:rights', r.rights);
  }
  if (has('dct:license') && r.licence) w.el('dct:license', r.licence.url);
  if (has('dc:source') && r.lineage) w.el('dc:source', r.lineage);
  if (has('dc:date') && r.issued) w.el('dc:date', r.issued);
  if (has('dct:references')) for (const l of r.links) w.el('dct:references', { scheme: l.protocol }, absolutise(l.url, base));
  if (has('ows:BoundingBox')) boundingBox(w, r);
  w.end();
}
