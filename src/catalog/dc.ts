/** Dublin Core records (csw:BriefRecord, csw:SummaryRecord, csw:Record) for CSW 2.0.2. */
import type { XmlWriter } from '../ows/xml.js';
import { absolutise, type CatalogRecord } from './model.js';

export const CSW_NS = 'http://www.opengis.net/cat/csw/2.0.2';

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

export function writeDcRecord(
  w: XmlWriter,
  r: CatalogRecord,
  elementSet: 'brief' | 'summary' | 'full',
  base: string,
  elementNames?: string[],
): void {
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
  const formats = [...new Set(r.links.map((l) => l.mediaType ?? l.protocol))];
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
  if (has('dct:abstract')) w.el('dct:abstract', r.abstract || r.title);
  if (!want && elementSet === 'summary') {
    boundingBox(w, r);
    w.end();
    return;
  }
  if (has('dc:creator') && r.contact) w.el('dc:creator', r.contact.organisation ?? r.contact.name ?? '');
  if (has('dc:publisher') && r.publisher) w.el('dc:publisher', r.publisher.organisation ?? r.publisher.name ?? '');
  if (has('dc:language')) w.el('dc:language', r.language);
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
