/**
 * Harvesting ("moissonnage") of remote catalogues into the catalogue:
 *  - CSW: POST GetRecords (gmd:MD_Metadata, outputSchema ISO 19139, full, 25 per page, sorted by
 *    apiso:identifier — the request udata sends), paged with nextRecord;
 *  - DCAT: GET the catalogue URL (RDF/XML, Turtle, N-Triples or JSON-LD), following hydra:next
 *    (PartialCollectionView) or hydra:nextPage (PagedCollection);
 *  - document: GET one metadata document (an ISO 19139 gmd:MD_Metadata, a csw:Record, or a CSW
 *    GetRecords / GetRecordById response holding them — the CSW Harvest operation's ResourceType
 *    gmd or a record URL), each record read as CSW-T Insert and catalog-import read it (import.ts
 *    toRecords, given by the caller as HarvestOptions.readRecord).
 * Every record keeps its provenance (source, source identifier, harvested at). Records of a harvest
 * are owned by it through their stored source `harvest:<name>` (harvestOwner): records derived from
 * the layers ('local') and published through CSW-T ('csw-t') can never be replaced or deleted by a
 * harvest, whatever its name; those two names are reserved anyway.
 *
 * Safety rules (docs/catalogue.md): a run first reads the whole source and changes nothing unless
 * the read ended cleanly — no HTTP or parse error, no exception report, no nextRecord pointing back
 * and no hydra:next loop, not more pages than `maxPages`, no identifier twice, and as many records
 * as the source announced (CSW numberOfRecordsMatched/Returned, DCAT hydra:totalItems). A clean read
 * replaces the source's records in one transaction (update in place, delete what left the source),
 * unless it would keep less than `minKeptShare` (default 50 %) of them — one empty answer does not
 * wipe a partner — which needs `confirmDeletions`. Records the run could not read (a broken record
 * in a clean page) block deletions: the others are updated, nothing is deleted.
 */
import type pg from 'pg';
import { parseXml, type XmlElement } from '../ows/xmldom.js';
import { XmlWriter } from '../ows/xml.js';
import { conformityOf, inspireReport } from './inspire.js';
import { EU_FREQUENCIES, INSPIRE_THEMES, resolveTheme, type Agent, type CatalogRecord, type Link, type Theme } from './model.js';
import type { Term } from './rdf.js';
import { detectRdfFormat, parseRdf, parseRdfXmlElement, TripleIndex, key, type RTriple } from './rdfparse.js';
import { CATALOG_SCHEMA, inTransaction, replaceSource, upsertRecord } from './store.js';
import { isoIndex } from './isoindex.js';
import { serialiseElement } from './xmlser.js';

export interface HarvestSource {
  /** Name of the source, unique; not a reserved name (RESERVED_SOURCE_NAMES). */
  name: string;
  url: string;
  /** csw: a CSW 2.0.2 endpoint; dcat: a DCAT catalogue; document: one metadata document (see above). */
  type: 'csw' | 'dcat' | 'document';
  /** type 'document': the only record schema accepted (ISO 19139 or Dublin Core); default both. */
  documentSchema?: 'iso19139' | 'csw';
  /** Safeguard: least share of the source's records a run may keep (0..1, default 0.5; 0 = off). */
  minKeptShare?: number;
  /** Most pages one run reads (default 1000); more fails the run. */
  maxPages?: number;
}

/** Source names that belong to other kinds of records: this server's ('local') and CSW-T's ('csw-t'). */
export const RESERVED_SOURCE_NAMES = ['local', 'csw-t'];

export function isReservedSourceName(name: string): boolean {
  return RESERVED_SOURCE_NAMES.includes(name.trim().toLowerCase());
}

/** The stored owner (records.source) of the records of harvest source `name`. */
export function harvestOwner(name: string): string {
  return `harvest:${name}`;
}

export const DEFAULT_MIN_KEPT_SHARE = 0.5;

export interface HarvestReport {
  source: string;
  ok: boolean;
  /** done: applied; done-errors: some records could not be read (updated, nothing deleted); failed: nothing changed. */
  status: 'done' | 'done-errors' | 'failed';
  pages: number;
  found: number;
  new: number;
  updated: number;
  deleted: number;
  failed: number;
  errors: string[];
}

export interface HarvestOptions {
  schema?: string;
  /** Overrides the source's maxPages. */
  maxPages?: number;
  timeoutMs?: number;
  maxBytes?: number;
  /** Apply a clean run even when it keeps less than minKeptShare of the source's records. */
  confirmDeletions?: boolean;
  /**
   * Type 'document': the reader of one record element (import.ts toRecords, as CSW-T Insert and
   * catalog-import read records; passed in because import.ts builds on this module's mappings).
   */
  readRecord?: (el: XmlElement, source: string, harvestedAt: string) => CatalogRecord[];
}

const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
const RDFS = 'http://www.w3.org/2000/01/rdf-schema#';
const DCAT = 'http://www.w3.org/ns/dcat#';
const DCT = 'http://purl.org/dc/terms/';
const FOAF = 'http://xmlns.com/foaf/0.1/';
const VCARD = 'http://www.w3.org/2006/vcard/ns#';
const SKOS = 'http://www.w3.org/2004/02/skos/core#';
const LOCN = 'http://www.w3.org/ns/locn#';
const HYDRA = 'http://www.w3.org/ns/hydra/core#';
const SCHEMA = 'http://schema.org/';
const GEODCAT = 'http://data.europa.eu/930/';
const GMD = 'http://www.isotc211.org/2005/gmd';

class SourceError extends Error {}

async function fetchText(url: string, init: RequestInit, o: HarvestOptions): Promise<{ text: string; contentType: string }> {
  const res = await fetch(url, {
    ...init,
    signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
    headers: { 'user-agent': 'geodata-server harvester', ...(init.headers ?? {}) },
  });
  if (!res.ok) throw new SourceError(`${url}: HTTP ${res.status}`);
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > (o.maxBytes ?? 64 * 1024 * 1024)) throw new SourceError(`${url}: response larger than the harvest limit`);
  return { text: buf.toString('utf8'), contentType: res.headers.get('content-type') ?? '' };
}

// ---------------------------------------------------------------------------------------------
// helpers shared by the two mappings

function dateOnly(v: string | undefined | null): string | null {
  if (!v) return null;
  const m = v.trim().match(/^(\d{4}-\d{2}-\d{2})(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?/);
  if (!m) return /^\d{4}$/.test(v.trim()) ? `${v.trim()}-01-01` : null;
  return m[1];
}

function notFuture(d: string | null): string | null {
  return d && d.slice(0, 10) <= new Date().toISOString().slice(0, 10) ? d : null;
}

/** Envelope of every coordinate pair in a WKT or GeoJSON literal (lon/lat); null when invalid. */
export function bboxOfGeometryLiteral(v: string): [number, number, number, number] | null {
  let coords: number[][] = [];
  const s = v.trim();
  try {
    if (s.startsWith('{')) {
      const walk = (c: unknown): void => {
        if (Array.isArray(c) && c.length >= 2 && typeof c[0] === 'number') coords.push(c as number[]);
        else if (Array.isArray(c)) c.forEach(walk);
      };
      const g = JSON.parse(s);
      walk(g.coordinates ?? g.geometry?.coordinates);
    } else {
      const body = s.replace(/^<[^>]*>\s*/, '');
      if (!/^(MULTI)?(POLYGON|POINT|LINESTRING|ENVELOPE)/i.test(body)) {
        const parts = body.split(',').map(Number);
        if (parts.length === 4)
          coords = [
            [parts[0], parts[1]],
            [parts[2], parts[3]],
          ];
      } else {
        coords = [...body.matchAll(/(-?[\d.]+(?:e-?\d+)?)\s+(-?[\d.]+(?:e-?\d+)?)/gi)].map((m) => [Number(m[1]), Number(m[2])]);
      }
    }
  } catch {
    return null;
  }
  if (!coords.length || coords.some((c) => !Number.isFinite(c[0]) || !Number.isFinite(c[1]))) return null;
  const xs = coords.map((c) => c[0]);
  const ys = coords.map((c) => c[1]);
  const b: [number, number, number, number] = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  if (b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90) return null;
  return b;
}

function frequencyOf(v: string | undefined): string | null {
  if (!v) return null;
  const tail = v.replace(/.*[/#]/, '').toUpperCase();
  const map: Record<string, string> = {
    ANNUALLY: 'ANNUAL',
    YEARLY: 'ANNUAL',
    IRREGULAR: 'IRREG',
    CONTINUOUS: 'CONT',
    CONTINUAL: 'CONT',
    FORTNIGHTLY: 'BIWEEKLY',
    AS_NEEDED: 'IRREG',
    ASNEEDED: 'IRREG',
    NOTPLANNED: 'NEVER',
    BIANNUALLY: 'BIENNIAL',
  };
  const f = map[tail] ?? tail;
  return EU_FREQUENCIES.includes(f) && f !== 'UNKNOWN' ? f : null;
}

function languageOf(v: string | undefined): string | null {
  if (!v) return null;
  const t = v.replace(/.*[/#]/, '').toLowerCase();
  const m: Record<string, string> = {
    fra: 'fre',
    fre: 'fre',
    fr: 'fre',
    eng: 'eng',
    en: 'eng',
    deu: 'ger',
    ger: 'ger',
    de: 'ger',
    gre: 'gre',
    ell: 'gre',
    el: 'gre',
  };
  return m[t] ?? (t.length === 3 ? t : null);
}

const PROTOCOL_OF_SPEC: [RegExp, string][] = [
  [/standards\/wms$|OGC:WMS/i, 'OGC:WMS'],
  [/standards\/wfs$|OGC:WFS/i, 'OGC:WFS'],
  [/standards\/wmts$|OGC:WMTS/i, 'OGC:WMTS'],
  [/standards\/wcs$|OGC:WCS/i, 'OGC:WCS'],
  [/standards\/cat$|standards\/csw$|OGC:CSW/i, 'OGC:CSW'],
  [/ogcapi-features/i, 'OGC API - Features'],
];

// ---------------------------------------------------------------------------------------------
// DCAT → records

function lit(g: TripleIndex, s: Term, ...preds: string[]): string | undefined {
  for (const p of preds) {
    const all = g.all(s, p).filter((o) => o.t === 'lit');
    const fr = all.find((o) => o.t === 'lit' && o.lang?.toLowerCase().startsWith('fr'));
    const v = (fr ?? all[0])?.v?.trim();
    if (v) return v;
  }
  return undefined;
}

function iriOrLit(g: TripleIndex, s: Term, p: string): string | undefined {
  const o = g.one(s, p);
  return o && o.t !== 'bnode' ? o.v.trim() : undefined;
}

function labelOf(g: TripleIndex, t: Term): string | undefined {
  if (t.t === 'lit') return t.v.trim() || undefined;
  return lit(g, t, `${SKOS}prefLabel`, `${RDFS}label`, `${DCT}title`, `${FOAF}name`, `${VCARD}fn`, `${DCT}description`);
}

function agentFromNode(g: TripleIndex, t: Term | undefined): Agent | null {
  if (!t) return null;
  if (t.t === 'lit') return { name: t.v, organisation: t.v };
  const name = lit(g, t, `${VCARD}fn`, `${FOAF}name`, `${VCARD}organization-name`);
  const org = lit(g, t, `${VCARD}organization-name`, `${FOAF}name`, `${VCARD}fn`);
  const mail = g.one(t, `${VCARD}hasEmail`) ?? g.one(t, `${VCARD}email`) ?? g.one(t, `${FOAF}mbox`);
  const url = g.one(t, `${VCARD}hasURL`) ?? g.one(t, `${VCARD}hasUrl`) ?? g.one(t, `${FOAF}homepage`);
  const a: Agent = { name, organisation: org, email: mail?.v.replace(/^mailto:\s*/i, '').trim() || undefined, url: url?.v };
  return a.name || a.organisation ? a : null;
}

function dcatLinks(g: TripleIndex, ds: Term): Link[] {
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const d of [...g.all(ds, `${DCAT}distribution`), ...g.all(ds, `${DCAT}distributions`)]) {
    const dl = iriOrLit(g, d, `${DCAT}downloadURL`);
    const url = dl ?? iriOrLit(g, d, `${DCAT}accessURL`);
    if (!url || seen.has(url)) continue;
    seen.add(url);
    const svc = g.one(d, `${DCAT}accessService`);
    const spec = svc ? (iriOrLit(g, svc, `${GEODCAT}serviceProtocol`) ?? iriOrLit(g, svc, `${DCT}conformsTo`)) : undefined;
    const proto = spec
      ? PROTOCOL_OF_SPEC.find(([re]) => re.test(spec))?.[1]
      : PROTOCOL_OF_SPEC.find(
          ([re]) => re.test(url.replace(/.*service=([a-z]+).*/i, 'OGC:$1')) && /request=getcapabilities/i.test(url),
        )?.[1];
    const fmt = g.one(d, `${DCT}format`);
    const format = fmt ? (fmt.t === 'iri' ? fmt.v.replace(/.*\//, '') : labelOf(g, fmt))?.toUpperCase() : undefined;
    const mt = g.one(d, `${DCAT}mediaType`);
    const size = lit(g, d, `${DCAT}byteSize`);
    links.push({
      url,
      protocol: proto ?? (dl ? 'WWW:DOWNLOAD-1.0-http--download' : 'WWW:LINK'),
      title: lit(g, d, `${DCT}title`) ?? url.replace(/.*\//, ''),
      description: lit(g, d, `${DCT}description`),
      function: dl || (!proto && format) ? 'download' : proto ? (proto === 'OGC:WFS' ? 'download' : 'browsing') : 'information',
      format,
      mediaType: mt ? (mt.t === 'iri' ? mt.v.replace(/.*media-types\//, '') : mt.v) : undefined,
      byteSize: size && /^\d+$/.test(size) ? Number(size) : undefined,
    });
  }
  for (const p of g.all(ds, `${DCT}hasPart`))
    if (p.t === 'iri' && !seen.has(p.v)) links.push({ url: p.v, protocol: 'WWW:LINK', function: 'information' });
  return links;
}

function dcatThemes(g: TripleIndex, ds: Term): { themes: Theme[]; keywords: string[] } {
  const themes: Theme[] = [];
  const keywords: string[] = [];
  for (const t of g.all(ds, `${DCAT}theme`)) {
    if (t.t === 'lit') {
      keywords.push(t.v);
      continue;
    }
    const label = labelOf(g, t);
    const known = t.t === 'iri' ? resolveTheme(t.v) : null;
    const scheme = g.one(t, `${SKOS}inScheme`)?.v;
    if (t.t === 'iri')
      themes.push({
        uri: t.v,
        label: label ?? known?.label ?? t.v.replace(/.*[/#]/, ''),
        scheme: scheme ?? known?.scheme ?? t.v.replace(/[/#][^/#]*$/, ''),
      });
    else if (label) keywords.push(label);
  }
  return { themes, keywords };
}

export function dcatToRecords(
  triples: RTriple[],
  source: string,
  harvestedAt: string,
): { records: CatalogRecord[]; errors: string[]; datasets: number } {
  const g = new TripleIndex(triples);
  const records: CatalogRecord[] = [];
  const errors: string[] = [];
  /** dataset nodes with a title: what hydra:totalItems counts */
  let datasetCount = 0;
  const accessServices = new Set(triples.filter((t) => t.p === `${DCAT}accessService`).map((t) => key(t.o)));
  // one node typed both dcat:Dataset and dcat:DatasetSeries (SEMIC's XSLT does that) is one dataset
  const datasets = [
    ...new Map([...g.subjectsOfType(`${DCAT}Dataset`), ...g.subjectsOfType(`${DCAT}DatasetSeries`)].map((d) => [key(d), d])).values(),
  ];
  const idOf = new Map<string, string>();
  for (const ds of datasets) {
    const id = iriOrLit(g, ds, `${DCT}identifier`) ?? (ds.t === 'iri' ? ds.v : undefined);
    if (id) idOf.set(key(ds), id);
  }
  for (const ds of datasets) {
    const title = lit(g, ds, `${DCT}title`);
    const id = idOf.get(key(ds));
    if (!title) {
      // udata ignores such nodes (references from servesDataset / hasPart)
      if (g.all(ds, `${DCT}description`).length || g.all(ds, `${DCAT}distribution`).length) errors.push(`dataset ${id ?? ds.v}: no title`);
      continue;
    }
    datasetCount++;
    if (!id) {
      errors.push(`dataset '${title}': no dct:identifier`);
      continue;
    }
    const { themes, keywords: themeWords } = dcatThemes(g, ds);
    const licNode =
      g.one(ds, `${DCT}license`) ??
      (() => {
        const ls = g
          .all(ds, `${DCAT}distribution`)
          .map((d) => g.one(d, `${DCT}license`))
          .filter((x): x is Term => Boolean(x));
        return ls.length && ls.every((l) => l.v === ls[0].v) ? ls[0] : undefined;
      })();
    const rightsNode = g.one(ds, `${DCT}rights`);
    const temporal = g.one(ds, `${DCT}temporal`);
    let bbox: [number, number, number, number] | null = null;
    for (const sp of g.all(ds, `${DCT}spatial`)) {
      const candidates =
        sp.t === 'lit'
          ? [sp]
          : [...g.all(sp, `${LOCN}geometry`), ...g.all(sp, `${DCAT}bbox`), ...g.all(sp, 'http://www.opengis.net/ont/geosparql#asWKT')];
      for (const c of candidates) {
        if (c.t !== 'lit') continue;
        const b = bboxOfGeometryLiteral(c.v);
        if (b) {
          bbox = bbox ? [Math.min(bbox[0], b[0]), Math.min(bbox[1], b[1]), Math.max(bbox[2], b[2]), Math.max(bbox[3], b[3])] : b;
          break;
        }
      }
    }
    const prov = g.one(ds, `${DCT}provenance`);
    const crs = g
      .all(ds, `${DCT}conformsTo`)
      .map((c) => c.v.match(/EPSG\/0\/(\d+)$/)?.[1])
      .filter(Boolean)
      .map(Number);
    const isSeries = g.all(ds, `${RDF}type`).some((t) => t.v === `${DCAT}DatasetSeries`);
    records.push({
      identifier: id,
      type: isSeries ? 'series' : 'dataset',
      title,
      abstract: lit(g, ds, `${DCT}description`, `${DCT}abstract`) ?? '',
      keywords: [
        ...new Set([
          ...g
            .all(ds, `${DCAT}keyword`)
            .filter((k) => k.t === 'lit')
            .map((k) => k.v.trim()),
          ...themeWords,
        ]),
      ],
      themes,
      licence: licNode ? (licNode.t === 'iri' ? { url: licNode.v, label: labelOf(g, licNode) } : null) : null,
      rights:
        [
          licNode?.t === 'lit' ? licNode.v : undefined,
          rightsNode ? (labelOf(g, rightsNode) ?? (rightsNode.t === 'iri' ? rightsNode.v : undefined)) : undefined,
        ]
          .filter(Boolean)
          .join(' — ') || null,
      accessRights: iriOrLit(g, ds, `${DCT}accessRights`) ?? null,
      contact: agentFromNode(g, g.one(ds, `${DCAT}contactPoint`)),
      publisher: agentFromNode(g, g.one(ds, `${DCT}publisher`)),
      created: dateOnly(lit(g, ds, `${DCT}created`)),
      issued: dateOnly(lit(g, ds, `${DCT}issued`)),
      modified: notFuture(dateOnly(lit(g, ds, `${DCT}modified`))),
      temporalStart: temporal && temporal.t !== 'lit' ? dateOnly(lit(g, temporal, `${DCAT}startDate`, `${SCHEMA}startDate`)) : null,
      temporalEnd: temporal && temporal.t !== 'lit' ? dateOnly(lit(g, temporal, `${DCAT}endDate`, `${SCHEMA}endDate`)) : null,
      frequency: frequencyOf(iriOrLit(g, ds, `${DCT}accrualPeriodicity`)),
      language: languageOf(iriOrLit(g, ds, `${DCT}language`)) ?? 'fre',
      lineage: prov ? (labelOf(g, prov) ?? null) : null,
      bbox,
      crs,
      featureCount: null,
      links: dcatLinks(g, ds),
      landingPage: iriOrLit(g, ds, `${DCAT}landingPage`) ?? null,
      operatesOn: [],
      source,
      sourceId: ds.t === 'iri' ? ds.v : id,
      harvestedAt,
      metadataModified: harvestedAt,
    });
  }
  for (const s of g.subjectsOfType(`${DCAT}DataService`)) {
    if (accessServices.has(key(s))) continue;
    const id = iriOrLit(g, s, `${DCT}identifier`);
    const title = lit(g, s, `${DCT}title`);
    if (!id || !title) {
      errors.push(`data service ${s.v}: no ${id ? 'title' : 'dct:identifier'}`);
      continue;
    }
    const spec =
      iriOrLit(g, s, `${GEODCAT}serviceProtocol`) ??
      g
        .all(s, `${DCT}conformsTo`)
        .map((c) => c.v)
        .find((c) => /opengeospatial|opengis/.test(c));
    const proto = spec ? PROTOCOL_OF_SPEC.find(([re]) => re.test(spec))?.[1] : undefined;
    const endpoint = iriOrLit(g, s, `${DCAT}endpointDescription`) ?? iriOrLit(g, s, `${DCAT}endpointURL`);
    const licNode = g.one(s, `${DCT}license`);
    records.push({
      identifier: id,
      type: 'service',
      title,
      abstract: lit(g, s, `${DCT}description`) ?? '',
      keywords: g
        .all(s, `${DCAT}keyword`)
        .filter((k) => k.t === 'lit')
        .map((k) => k.v),
      themes: [],
      licence: licNode?.t === 'iri' ? { url: licNode.v, label: labelOf(g, licNode) } : null,
      rights: licNode?.t === 'lit' ? licNode.v : null,
      contact: agentFromNode(g, g.one(s, `${DCAT}contactPoint`)),
      publisher: agentFromNode(g, g.one(s, `${DCT}publisher`)),
      modified: notFuture(dateOnly(lit(g, s, `${DCT}modified`))),
      language: 'fre',
      bbox: null,
      crs: [],
      links: endpoint ? [{ url: endpoint, protocol: proto ?? 'WWW:LINK', function: 'information' }] : [],
      serviceType: proto?.replace(/^OGC:/, '') ?? null,
      operatesOn: g.all(s, `${DCAT}servesDataset`).map((d) => idOf.get(key(d)) ?? iriOrLit(g, d, `${DCT}identifier`) ?? d.v),
      source,
      sourceId: s.t === 'iri' ? s.v : id,
      harvestedAt,
      metadataModified: harvestedAt,
    });
  }
  return { records, errors, datasets: datasetCount };
}

/** The next page of a DCAT catalogue (hydra:next or hydra:nextPage, IRI or literal). */
export function dcatNextPage(triples: RTriple[]): string | undefined {
  const n = triples.find((t) => t.p === `${HYDRA}next` || t.p === `${HYDRA}nextPage`);
  return n && n.o.t !== 'bnode' ? n.o.v : undefined;
}

// ---------------------------------------------------------------------------------------------
// ISO 19139 → records

function desc(el: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    desc(c, name, out);
  }
  return out;
}
const d1 = (el: XmlElement | undefined, name: string) => (el ? desc(el, name)[0] : undefined);
const ch = (el: XmlElement | undefined, name: string) => el?.children.find((c) => c.name === name);

/** Text of a gco:CharacterString / gmx:Anchor / gmd:URL / gco:Date… wrapper. */
function txt(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  // gco:CharacterString, gmx:Anchor, gmx:MimeFileType, gmd:URL, gco:Date, code lists, …
  const inner = el.children.find((c) => c.text || c.attrs.codeListValue);
  const v = (inner ? inner.text || inner.attrs.codeListValue : el.text)?.trim();
  return v || undefined;
}

const INSPIRE_LABELS = new Map(Object.entries(INSPIRE_THEMES).map(([k, v]) => [v.toLowerCase(), k]));

export function isoToRecord(md: XmlElement, source: string, harvestedAt: string): CatalogRecord {
  const fileId = txt(ch(md, 'fileIdentifier'));
  const ident =
    ch(ch(md, 'identificationInfo'), 'MD_DataIdentification') ??
    ch(ch(md, 'identificationInfo'), 'SV_ServiceIdentification') ??
    ch(md, 'identificationInfo')?.children[0];
  if (!ident) throw new Error(`record ${fileId ?? '?'}: no identificationInfo`);
  const citation = ch(ch(ident, 'citation'), 'CI_Citation');
  const title = txt(ch(citation, 'title'));
  if (!title) throw new Error(`record ${fileId ?? '?'}: no title`);
  const rid = ch(citation, 'identifier')?.children[0];
  let identifier = fileId;
  if (rid) {
    const codeEl = ch(rid, 'code');
    const anchor = ch(codeEl, 'Anchor');
    const code = txt(codeEl);
    const cs = txt(ch(rid, 'codeSpace'));
    identifier = anchor?.text?.trim() || (cs && code ? (cs.endsWith('/') ? cs + code : `${cs}/${code}`) : code) || fileId;
  }
  if (!identifier) throw new Error(`record '${title}': no identifier`);
  const level = (ch(ch(md, 'hierarchyLevel'), 'MD_ScopeCode')?.attrs.codeListValue ?? 'dataset') as CatalogRecord['type'];
  const isService = ident.name === 'SV_ServiceIdentification' || level === 'service';
  const keywords: string[] = [];
  const themes: Theme[] = [];
  for (const mk of desc(ident, 'MD_Keywords')) {
    const thesaurus = txt(ch(ch(ch(mk, 'thesaurusName'), 'CI_Citation'), 'title')) ?? '';
    for (const k of mk.children.filter((c) => c.name === 'keyword')) {
      const anchor = ch(k, 'Anchor');
      const v = txt(k);
      if (!v) continue;
      const href = anchor?.attrs['xlink:href'];
      const code =
        href?.match(/inspire\.ec\.europa\.eu\/theme\/([a-z]{2})$/)?.[1] ??
        (/inspire/i.test(thesaurus) ? INSPIRE_LABELS.get(v.toLowerCase()) : undefined);
      const th = code ? resolveTheme(code) : href && /^https?:/.test(href) && /data-theme/.test(href) ? resolveTheme(href) : null;
      if (th) themes.push({ ...th, label: v });
      else keywords.push(v);
    }
  }
  let licence: CatalogRecord['licence'] = null;
  const rights: string[] = [];
  let accessRights: string | null = null;
  for (const lc of desc(ident, 'MD_LegalConstraints')) {
    const isUse = Boolean(ch(lc, 'useConstraints'));
    for (const oc of lc.children.filter((c) => c.name === 'otherConstraints')) {
      const a = ch(oc, 'Anchor');
      const href = a?.attrs['xlink:href'];
      const v = txt(oc);
      if (isUse && href && !licence) licence = { url: href, label: v };
      else if (!isUse && href && !accessRights) accessRights = href;
      else if (v) rights.push(v);
    }
    for (const ul of lc.children.filter((c) => c.name === 'useLimitation')) {
      const v = txt(ul);
      if (v) rights.push(v);
    }
  }
  const party = (el: XmlElement | undefined): Agent | null => {
    const rp = el ? d1(el, 'CI_ResponsibleParty') : undefined;
    if (!rp) return null;
    const org = txt(ch(rp, 'organisationName'));
    const name = txt(ch(rp, 'individualName')) ?? org;
    const email = txt(d1(rp, 'electronicMailAddress'));
    const url = txt(d1(d1(rp, 'onlineResource') ?? rp, 'linkage'));
    return name || org ? { name, organisation: org, email, url } : null;
  };
  const pocs = ident.children.filter((c) => c.name === 'pointOfContact');
  const publisherEl =
    pocs.find((p) => /publisher|owner|custodian|distributor/.test(d1(p, 'CI_RoleCode')?.attrs.codeListValue ?? '')) ?? pocs[0];
  const dates: Record<string, string> = {};
  for (const cd of desc(citation ?? ident, 'CI_Date')) {
    const type = ch(ch(cd, 'dateType'), 'CI_DateTypeCode')?.attrs.codeListValue;
    const v = dateOnly(txt(ch(cd, 'date')));
    if (type && v) dates[type] = v;
  }
  const geo = d1(ident, 'EX_GeographicBoundingBox');
  const num = (n: string) => Number(txt(ch(geo, n)));
  let bbox: [number, number, number, number] | null = geo
    ? [num('westBoundLongitude'), num('southBoundLatitude'), num('eastBoundLongitude'), num('northBoundLatitude')]
    : null;
  if (bbox && bbox.some((n) => !Number.isFinite(n))) bbox = null;
  const period = d1(ident, 'TimePeriod');
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const or of desc(ch(md, 'distributionInfo') ?? md, 'CI_OnlineResource')) {
    const url = txt(ch(or, 'linkage'));
    if (!url || seen.has(`${url}|${txt(ch(or, 'name')) ?? ''}`)) continue;
    seen.add(`${url}|${txt(ch(or, 'name')) ?? ''}`);
    const fn = ch(ch(or, 'function'), 'CI_OnLineFunctionCode')?.attrs.codeListValue as Link['function'] | undefined;
    links.push({
      url,
      protocol: txt(ch(or, 'protocol')) ?? 'WWW:LINK',
      name: txt(ch(or, 'name')),
      description: txt(ch(or, 'description')),
      title: txt(ch(or, 'name')) ?? txt(ch(or, 'description')),
      function: fn,
    });
  }
  const crs = desc(md, 'referenceSystemIdentifier')
    .map((r) => txt(d1(r, 'code'))?.match(/(\d{4,6})\s*$/)?.[1])
    .filter(Boolean)
    .map(Number);
  const lang =
    ch(ch(ident, 'language'), 'LanguageCode')?.attrs.codeListValue ??
    txt(ch(ident, 'language')) ??
    ch(ch(md, 'language'), 'LanguageCode')?.attrs.codeListValue;
  return {
    identifier,
    codeSpace: null,
    type: isService ? 'service' : ['dataset', 'series', 'nonGeographicDataset'].includes(level) ? level : 'dataset',
    title,
    abstract: txt(ch(ident, 'abstract')) ?? '',
    keywords: [...new Set(keywords)],
    themes,
    licence,
    rights: rights.length ? [...new Set(rights)].join(' — ') : null,
    accessRights,
    contact: party(pocs[0]) ?? party(ch(md, 'contact')),
    publisher: party(publisherEl),
    created: dates.creation ?? null,
    issued: dates.publication ?? null,
    modified: notFuture(dates.revision ?? dates.publication ?? dateOnly(txt(ch(md, 'dateStamp')))),
    temporalStart: dateOnly(txt(ch(period, 'beginPosition')) ?? ch(period, 'beginPosition')?.text),
    temporalEnd: dateOnly(ch(period, 'endPosition')?.text),
    frequency: frequencyOf(ch(d1(ident, 'maintenanceAndUpdateFrequency'), 'MD_MaintenanceFrequencyCode')?.attrs.codeListValue),
    language: languageOf(lang) ?? 'fre',
    lineage: txt(d1(d1(md, 'lineage') ?? md, 'statement')) ?? null,
    bbox,
    crs,
    featureCount: null,
    links,
    serviceType: isService ? (txt(ch(ident, 'serviceType')) ?? null) : null,
    operatesOn: isService
      ? ident.children
          .filter((c) => c.name === 'operatesOn')
          .map((o) => o.attrs.uuidref || o.attrs['xlink:href'])
          .filter(Boolean)
      : [],
    source,
    sourceId: fileId ?? identifier,
    harvestedAt,
    metadataModified: harvestedAt,
    conformity: conformityOf(md),
  };
}

/** The GetRecords request udata sends, ISO 19139 output. */
export function cswGetRecordsRequest(start: number, maxRecords = 25): string {
  const w = new XmlWriter();
  w.start('csw:GetRecords', {
    'xmlns:csw': 'http://www.opengis.net/cat/csw/2.0.2',
    'xmlns:ogc': 'http://www.opengis.net/ogc',
    'xmlns:gmd': GMD,
    'xmlns:apiso': 'http://www.opengis.net/cat/csw/apiso/1.0',
    service: 'CSW',
    version: '2.0.2',
    resultType: 'results',
    outputFormat: 'application/xml',
    outputSchema: GMD,
    startPosition: start,
    maxRecords,
  });
  w.start('csw:Query', { typeNames: 'gmd:MD_Metadata' }).el('csw:ElementSetName', 'full');
  w.start('ogc:SortBy').start('ogc:SortProperty').el('ogc:PropertyName', 'apiso:identifier').el('ogc:SortOrder', 'ASC').end().end();
  w.end().end();
  return w.toString();
}

// ---------------------------------------------------------------------------------------------
// runs

/** Read state of one run: what the source announced, what came, what could not be read. */
interface ReadResult {
  records: CatalogRecord[];
  /** records the run received but could not read (their previous copies must not be deleted) */
  unreadable: number;
}

const maxPagesOf = (src: HarvestSource, o: HarvestOptions) => o.maxPages ?? src.maxPages ?? 1000;

/** An identifier seen twice ends the run at once (a source repeating pages would otherwise be read up to maxPages). */
function noRepeat(seen: Set<string>, records: CatalogRecord[], where: string): void {
  for (const r of records) {
    if (seen.has(r.identifier))
      throw new SourceError(
        `${where}: identifier '${r.identifier}' more than once in the source (a repeated page or a duplicate): nothing changed`,
      );
    seen.add(r.identifier);
  }
}

function intAttr(el: XmlElement, name: string, url: string): number {
  const v = el.attrs[name];
  if (v === undefined || !/^\s*\d+\s*$/.test(v))
    throw new SourceError(`${url}: SearchResults@${name} is ${v === undefined ? 'missing' : `'${v}'`}`);
  return Number(v);
}

async function readCsw(src: HarvestSource, o: HarvestOptions, harvestedAt: string, report: HarvestReport): Promise<ReadResult> {
  const records: CatalogRecord[] = [];
  let unreadable = 0;
  let received = 0;
  let announced: number | undefined;
  const seen = new Set<string>();
  let start = 1;
  const maxPages = maxPagesOf(src, o);
  for (let page = 0; ; page++) {
    if (page >= maxPages) throw new SourceError(`${src.url}: more than ${maxPages} pages (maxPages): run abandoned, nothing changed`);
    const { text } = await fetchText(
      src.url,
      { method: 'POST', body: cswGetRecordsRequest(start), headers: { 'content-type': 'application/xml' } },
      o,
    );
    let root: XmlElement;
    try {
      root = parseXml(text, o.maxBytes ?? 64 * 1024 * 1024);
    } catch (e) {
      throw new SourceError(`${src.url}: not XML (${(e as Error).message})`);
    }
    if (root.name === 'ExceptionReport')
      throw new SourceError(`${src.url}: exception report: ${desc(root, 'ExceptionText')[0]?.text ?? ''}`);
    const sr = d1(root, 'SearchResults');
    if (root.name !== 'GetRecordsResponse' || !sr) throw new SourceError(`${src.url}: not a GetRecordsResponse`);
    report.pages++;
    const matched = intAttr(sr, 'numberOfRecordsMatched', src.url);
    const returned = intAttr(sr, 'numberOfRecordsReturned', src.url);
    const next = intAttr(sr, 'nextRecord', src.url);
    if (announced === undefined) announced = matched;
    else if (matched !== announced)
      throw new SourceError(
        `${src.url}: numberOfRecordsMatched changed from ${announced} to ${matched} during the run (the source changed)`,
      );
    if (returned !== sr.children.length)
      throw new SourceError(`${src.url}: numberOfRecordsReturned=${returned} but the page at ${start} holds ${sr.children.length} records`);
    received += returned;
    for (const md of sr.children) {
      if (md.ns !== GMD || md.name !== 'MD_Metadata') {
        unreadable++;
        report.errors.push(`${md.qname}: not an ISO 19139 record`);
        continue;
      }
      try {
        // kept as received, with its ISO AP index (docs/catalogue-store.md)
        const rec = isoToRecord(md, src.name, harvestedAt);
        noRepeat(seen, [rec], `${src.url} (page at ${start})`);
        // with its INSPIRE quality report: a partner's imperfect record is harvested, its failures reported
        records.push({
          ...rec,
          recordSchema: 'iso19139',
          sourceDoc: serialiseElement(md),
          index: isoIndex(md, rec.identifier),
          quality: inspireReport(md),
        });
      } catch (e) {
        if (e instanceof SourceError) throw e;
        unreadable++;
        report.errors.push((e as Error).message);
      }
    }
    // the end: nextRecord 0 (or past the last record, as some servers write it)
    if (next === 0 || next > matched) break;
    if (next <= start) throw new SourceError(`${src.url}: nextRecord ${next} points back (this page started at ${start}): a loop`);
    if (returned === 0) throw new SourceError(`${src.url}: an empty page at ${start} before the end (nextRecord ${next})`);
    start = next;
  }
  if (received !== announced)
    throw new SourceError(`${src.url}: numberOfRecordsMatched=${announced} but ${received} records were returned`);
  report.failed += unreadable;
  return { records, unreadable };
}

/** The record elements of a metadata document: itself, or the records of a CSW response. */
export function documentRecords(root: XmlElement): XmlElement[] {
  if (root.name === 'GetRecordsResponse') return d1(root, 'SearchResults')?.children ?? [];
  if (root.name === 'GetRecordByIdResponse') return root.children;
  return [root];
}

/** Whether an XML root is a metadata document the 'document' type reads (and not, say, a capabilities document). */
export function isRecordDocument(root: XmlElement): boolean {
  return ['MD_Metadata', 'Record', 'GetRecordsResponse', 'GetRecordByIdResponse'].includes(root.name);
}

/** GET `url` and parse it as XML (the source's mistakes are SourceErrors). */
async function fetchXml(url: string, o: HarvestOptions): Promise<XmlElement> {
  const { text } = await fetchText(url, { headers: { accept: 'application/xml, text/xml;q=0.9' } }, o);
  try {
    return parseXml(text, o.maxBytes ?? 64 * 1024 * 1024);
  } catch (e) {
    throw new SourceError(`${url}: not XML (${(e as Error).message})`);
  }
}

/**
 * Whether `url` answers a GET with a metadata document (a record, or a CSW response holding
 * records: a GetRecordById URL) rather than being a CSW endpoint (capabilities, an exception
 * report or an error for a bare GET). Any failure to read it says endpoint.
 */
export async function answersWithRecordDocument(url: string, o: HarvestOptions = {}): Promise<boolean> {
  try {
    return isRecordDocument(await fetchXml(url, { ...o, timeoutMs: o.timeoutMs ?? 30_000 }));
  } catch {
    return false;
  }
}

async function readDocument(src: HarvestSource, o: HarvestOptions, harvestedAt: string, report: HarvestReport): Promise<ReadResult> {
  const root = await fetchXml(src.url, o);
  if (root.name === 'ExceptionReport') throw new SourceError(`${src.url}: exception report: ${desc(root, 'ExceptionText')[0]?.text ?? ''}`);
  if (!isRecordDocument(root))
    throw new SourceError(`${src.url}: a ${root.qname} is not a metadata document (gmd:MD_Metadata, csw:Record or a CSW response)`);
  report.pages++;
  const records: CatalogRecord[] = [];
  let unreadable = 0;
  const seen = new Set<string>();
  for (const el of documentRecords(root)) {
    const schema = el.name === 'MD_Metadata' && el.ns === GMD ? 'iso19139' : el.name === 'Record' ? 'csw' : null;
    if (!schema || (src.documentSchema && schema !== src.documentSchema)) {
      unreadable++;
      report.errors.push(
        `${el.qname}: not ${src.documentSchema === 'csw' ? 'a csw:Record' : src.documentSchema ? 'an ISO 19139 record' : 'a metadata record'}`,
      );
      continue;
    }
    try {
      if (!o.readRecord) throw new SourceError(`${src.url}: no record reader for a document source`);
      const recs = o.readRecord(el, src.name, harvestedAt).map((r) => ({ ...r, harvestedAt }));
      noRepeat(seen, recs, src.url);
      records.push(...recs);
    } catch (e) {
      if (e instanceof SourceError) throw e;
      unreadable++;
      report.errors.push((e as Error).message);
    }
  }
  report.failed += unreadable;
  return { records, unreadable };
}

async function readDcat(src: HarvestSource, o: HarvestOptions, harvestedAt: string, report: HarvestReport): Promise<ReadResult> {
  const records: CatalogRecord[] = [];
  let unreadable = 0;
  let datasets = 0;
  let announced: number | undefined;
  let url: string | undefined = src.url;
  const visited = new Set<string>();
  const seen = new Set<string>();
  let format: ReturnType<typeof detectRdfFormat> = null;
  const maxPages = maxPagesOf(src, o);
  while (url) {
    if (visited.has(url)) throw new SourceError(`${url}: hydra:next leads back to a page already read: a loop`);
    if (report.pages >= maxPages)
      throw new SourceError(`${src.url}: more than ${maxPages} pages (maxPages): run abandoned, nothing changed`);
    visited.add(url);
    const res = await fetchText(url, { headers: { accept: 'application/rdf+xml, text/turtle;q=0.9, application/ld+json;q=0.8' } }, o);
    format = detectRdfFormat(res.contentType, url) ?? format;
    if (!format) throw new SourceError(`${url}: unsupported content type '${res.contentType}'`);
    let triples: RTriple[];
    try {
      triples = await parseRdf(res.text, format, url);
    } catch (e) {
      throw new SourceError(`${url}: RDF parse error: ${(e as Error).message}`);
    }
    report.pages++;
    const total = dcatTotalItems(triples);
    if (total !== undefined) {
      if (announced === undefined) announced = total;
      else if (total !== announced)
        throw new SourceError(`${url}: hydra:totalItems changed from ${announced} to ${total} during the run (the source changed)`);
    }
    const r = dcatToRecords(triples, src.name, harvestedAt);
    noRepeat(seen, r.records, url);
    records.push(...r.records);
    datasets += r.datasets;
    unreadable += r.errors.length;
    report.errors.push(...r.errors);
    url = dcatNextPage(triples);
  }
  if (announced !== undefined && datasets !== announced)
    throw new SourceError(`${src.url}: hydra:totalItems=${announced} but ${datasets} datasets were found`);
  report.failed += unreadable;
  return { records, unreadable };
}

/** hydra:totalItems of a DCAT page (on the collection or its view), if any. */
export function dcatTotalItems(triples: RTriple[]): number | undefined {
  const t = triples.find((x) => x.p === `${HYDRA}totalItems` && x.o.t === 'lit' && /^\d+$/.test(x.o.v.trim()));
  return t ? Number(t.o.v.trim()) : undefined;
}

/** Parse one CSW GetRecords response body whose records are rdf:RDF (outputSchema DCAT). */
export function dcatRecordsFromCswResponse(
  text: string,
  source: string,
  harvestedAt: string,
): { records: CatalogRecord[]; errors: string[] } {
  const sr = d1(parseXml(text, 64 * 1024 * 1024), 'SearchResults');
  const records: CatalogRecord[] = [];
  const errors: string[] = [];
  for (const c of sr?.children ?? []) {
    const r = dcatToRecords(parseRdfXmlElement(c), source, harvestedAt);
    records.push(...r.records);
    errors.push(...r.errors);
  }
  return { records, errors };
}

/**
 * Harvest one source. The previous run's records stay untouched unless the whole source was read
 * cleanly (see the safety rules above); then they are replaced in one transaction.
 */
export async function harvest(pool: pg.Pool, src: HarvestSource, o: HarvestOptions = {}): Promise<HarvestReport> {
  const report: HarvestReport = {
    source: src.name,
    ok: false,
    status: 'failed',
    pages: 0,
    found: 0,
    new: 0,
    updated: 0,
    deleted: 0,
    failed: 0,
    errors: [],
  };
  if (isReservedSourceName(src.name))
    throw new Error(`the source name '${src.name}' is reserved (${RESERVED_SOURCE_NAMES.join(', ')}: records of this server and of CSW-T)`);
  const schema = o.schema ?? CATALOG_SCHEMA;
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad catalogue schema name '${schema}'`);
  const owner = harvestOwner(src.name);
  const harvestedAt = new Date().toISOString();
  let read: ReadResult;
  try {
    const read1 = src.type === 'csw' ? readCsw : src.type === 'dcat' ? readDcat : readDocument;
    read = await read1(src, o, harvestedAt, report);
  } catch (e) {
    report.errors.push(e instanceof SourceError ? e.message : `${src.url}: ${(e as Error).message}`);
    return report; // nothing written: the previous run's records stay
  }
  const unique = new Map<string, CatalogRecord>();
  const twice = new Set<string>();
  for (const r of read.records) {
    if (unique.has(r.identifier)) twice.add(r.identifier);
    unique.set(r.identifier, { ...r, source: owner });
  }
  if (twice.size) {
    report.errors.push(
      `identifiers present more than once in the source (${[...twice].slice(0, 10).join(', ')}${twice.size > 10 ? ', …' : ''}): nothing changed`,
    );
    return report;
  }
  // records of this harvest stored before owners had a kind (source = the bare name; 'local' and
  // 'csw-t' being reserved, nothing else can have written it) are this source's too: adopted when
  // the run is applied
  const owners = [owner, src.name];
  const before = await pool.query<{ identifier: string; source: string }>(
    `SELECT identifier, source FROM ${schema}.records WHERE identifier = ANY($1::text[]) OR source = ANY($2::text[])`,
    [[...unique.keys()], owners],
  );
  const mine = new Set(before.rows.filter((r) => owners.includes(r.source)).map((r) => r.identifier));
  for (const r of before.rows) {
    if (!owners.includes(r.source) && unique.has(r.identifier)) {
      unique.delete(r.identifier);
      report.failed++;
      report.errors.push(`identifier '${r.identifier}' already belongs to source '${r.source}'`);
    }
  }
  const adopt = () => pool.query(`UPDATE ${schema}.records SET source = $1 WHERE source = $2`, [owner, src.name]);
  report.found = unique.size;
  report.new = [...unique.keys()].filter((k) => !mine.has(k)).length;
  report.updated = unique.size - report.new;
  const kept = report.updated;
  if (read.unreadable > 0) {
    // some records could not be read: their previous copies stay, so nothing is deleted this run
    await adopt();
    await inTransaction(pool, async (c) => {
      for (const r of unique.values()) await upsertRecord(c, r, schema);
    });
    report.errors.push(`${read.unreadable} record(s) could not be read: records updated, none deleted this run`);
    report.status = 'done-errors';
    report.ok = true;
    return report;
  }
  const minShare = src.minKeptShare ?? DEFAULT_MIN_KEPT_SHARE;
  if (mine.size > 0 && kept < mine.size * minShare && !o.confirmDeletions) {
    report.errors.push(
      `the run would delete ${mine.size - kept} of the ${mine.size} records of '${src.name}' (keeping ${Math.round((100 * kept) / mine.size)} %, ` +
        `below minKeptShare ${Math.round(minShare * 100)} %): nothing changed; run it again with confirmDeletions to apply it`,
    );
    report.new = report.updated = 0;
    return report;
  }
  await adopt();
  const res = await replaceSource(pool, owner, [...unique.values()], schema);
  report.deleted = res.deleted;
  report.ok = true;
  report.status = report.failed ? 'done-errors' : 'done';
  return report;
}
