/**
 * DCAT-AP 3.0 (compatible with 2.1.1 and GeoDCAT-AP) graphs built from catalogue records.
 *
 * Every dataset is written with everything a harvester needs in the same graph: distributions,
 * agents, PeriodOfTime, Location geometry, theme labels, licence document, CatalogRecord. So a
 * catalogue page, or a single CSW record, is self-contained.
 *
 * DCAT-AP 3.0.1 valid out of the box (test/catalog-dcat-shacl.test.ts runs the official SHACL
 * shapes): every value whose class DCAT-AP fixes and no EU vocabulary gives (landing pages,
 * standards, media types, ADMS concepts, vCard kinds) is typed in the page; a dct:Location has one
 * locn:geometry (GeoJSON) beside dcat:bbox (WKT) and dcat:centroid; records of this server get
 * the defaults of DcatDefaults (publisher and contact point from the `service` section, themes
 * from `catalog.dcat.defaultThemes`, keywords derived from the themes, a snapshot PeriodOfTime)
 * when their metadata has none. Harvested and published records are written as they came.
 */
import type { AppContext } from '../context.js';
import type { Config } from '../config/index.js';
import { SERVICES } from './derive.js';
import { absolutise, FILE_TYPES, languageCodes, resolveTheme, type Agent, type CatalogRecord, type Link, type Theme } from './model.js';
import type { Conformity } from './quality.js';
import { Graph, type Term } from './rdf.js';
import { accessRightOfInspire, checkVocab, INSPIRE_TO_EU_THEME, KEYWORD_TO_EU_THEME, TOPIC_TO_EU_THEME } from './vocab.js';

const EU = 'http://publications.europa.eu/resource/authority';
/** The IANA media type URIs DCAT-AP expects (http, www). */
export const IANA = 'http://www.iana.org/assignments/media-types/';
const ADMS_PUBLISHER_TYPE = 'http://purl.org/adms/publishertype/';
const ADMS_LICENCE_TYPE = 'http://purl.org/adms/licencetype/';
const ADMS_CHANGE_TYPE = 'http://purl.org/adms/changetype/';

/** ADMS publisher types (code → English label), for `catalog.dcat.publisherType`. */
export const PUBLISHER_TYPES: Record<string, string> = {
  'Academia-ScientificOrganisation': 'Academia/Scientific organisation',
  Company: 'Company',
  IndustryConsortium: 'Industry consortium',
  LocalAuthority: 'Local Authority',
  NationalAuthority: 'National authority',
  NonGovernmentalOrganisation: 'Non-Governmental Organisation',
  NonProfitOrganisation: 'Non-Profit Organisation',
  PrivateIndividual: 'Private Individual(s)',
  RegionalAuthority: 'Regional authority',
  StandardisationBody: 'Standardisation body',
  SupraNationalAuthority: 'Supra-national authority',
};

/** What the DCAT output adds to this server's own records when their metadata is silent. */
export interface DcatDefaults {
  /** Publisher and contact point: the `service` section's contact (organisation, else the service title). */
  agent: Agent;
  /** ADMS publisher type code of every foaf:Agent written (dct:type). */
  publisherType: string;
  /** Themes of local records (datasets and services) that configure none. */
  themes: Theme[];
}

/** Defaults from the configuration: `service.contact`, `catalog.dcat.publisherType` and `catalog.dcat.defaultThemes`. */
export function dcatDefaults(config: Pick<Config, 'service' | 'catalog'>): DcatDefaults {
  const c = config.service.contact ?? {};
  const dcat = config.catalog?.dcat ?? {};
  const themes = (dcat.defaultThemes ?? ['REGI']).map(resolveTheme).filter((t): t is Theme => t !== null);
  return {
    agent: {
      name: c.organisation || c.person || config.service.title,
      organisation: c.organisation || config.service.title,
      email: c.email,
      url: c.url,
      phone: c.phone,
    },
    publisherType: dcat.publisherType && PUBLISHER_TYPES[dcat.publisherType] ? dcat.publisherType : 'RegionalAuthority',
    themes,
  };
}

export function datasetIri(base: string, id: string): string {
  return `${base}/catalog/records/${encodeURIComponent(id)}`;
}

/** The human landing page (HTML) of a record of this catalogue. */
export function landingPageUrl(base: string, id: string): string {
  return `${datasetIri(base, id)}.html`;
}

/** Record-level values with this server's defaults applied (local records only). */
interface Effective {
  contact: Agent | null;
  publisher: Agent | null;
  themes: Theme[];
  keywords: string[];
}

/**
 * The themes with at least one EU data theme (DCAT-AP's controlled vocabulary for dcat:theme) when
 * the record's INSPIRE themes, ISO topic categories or keywords name one (vocab.ts alignments).
 */
export function withEuThemes(r: CatalogRecord, themes: Theme[]): Theme[] {
  if (themes.some((t) => checkVocab('data-theme', t.uri) === 'ok')) return themes;
  const plain = (k: string) =>
    k
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .trim();
  const codes = [
    ...themes.map((t) => INSPIRE_TO_EU_THEME[t.uri.match(/inspire\.ec\.europa\.eu\/theme\/([a-z]{2})$/)?.[1] ?? '']),
    ...(r.index?.topiccategory ?? []).map((t) => TOPIC_TO_EU_THEME[t]),
    ...r.keywords.map((k) => KEYWORD_TO_EU_THEME[plain(k)]),
  ].filter((c): c is string => Boolean(c));
  const added = [...new Set(codes)].map(resolveTheme).filter((t): t is Theme => t !== null);
  return [...themes, ...added];
}

function effective(r: CatalogRecord, d: DcatDefaults | undefined): Effective {
  const local = r.source === 'local' && d;
  const themes = withEuThemes(r, r.themes.length || !local ? r.themes : d.themes);
  const keywords = r.keywords.length || !local ? r.keywords : [...new Set(themes.map((t) => t.label))];
  return {
    contact: r.contact ?? (local ? d.agent : null),
    publisher: r.publisher ?? (local ? (r.contact ?? d.agent) : null),
    themes,
    keywords,
  };
}

/** A concept of a controlled vocabulary DCAT-AP types skos:Concept (ADMS, INSPIRE code lists): typed and labelled in the page. */
function concept(g: Graph, uri: string, label: string, scheme?: string): Term {
  const c = g.iri(uri);
  g.a(c, 'skos:Concept');
  g.add(c, 'skos:prefLabel', g.lit(label, undefined, 'en'));
  if (scheme) g.add(c, 'skos:inScheme', g.iri(scheme));
  return c;
}

function standard(g: Graph, uri: string, label?: string): Term {
  const s = g.iri(uri);
  g.a(s, 'dct:Standard');
  if (label) g.add(s, 'rdfs:label', g.lit(label));
  return s;
}

/** A dct:Standard for a declared conformity: its URI when the record gives one, else a blank node; title and date. */
function specification(g: Graph, c: Conformity): Term {
  const s = c.href && /^https?:\/\//.test(c.href) ? g.iri(c.href) : g.bnode();
  g.a(s, 'dct:Standard');
  g.add(s, 'dct:title', g.lit(c.title));
  if (c.date) g.add(s, 'dct:issued', dateLit(g, c.date));
  return s;
}

function mediaType(g: Graph, type: string): Term {
  const m = g.iri(IANA + type);
  g.a(m, 'dct:MediaType');
  return m;
}

function dateLit(g: Graph, v: string | null | undefined): Term | null {
  if (!v) return null;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return g.lit(v, 'xsd:date');
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return null;
  return g.lit(d.toISOString().replace(/\.\d{3}Z$/, 'Z'), 'xsd:dateTime');
}

function bboxWkt(b: [number, number, number, number]): string {
  const [w, s, e, n] = b;
  return `POLYGON((${w} ${s},${e} ${s},${e} ${n},${w} ${n},${w} ${s}))`;
}

function bboxGeoJson(b: [number, number, number, number]): string {
  const [w, s, e, n] = b;
  return JSON.stringify({
    type: 'Polygon',
    coordinates: [
      [
        [w, s],
        [e, s],
        [e, n],
        [w, n],
        [w, s],
      ],
    ],
  });
}

function addAgentVcard(g: Graph, a: Agent, lang: string): Term {
  const n = g.bnode();
  g.a(n, 'vcard:Organization');
  g.a(n, 'vcard:Kind'); // the class DCAT-AP gives contact points (SHACL sees no subclass axioms)
  g.add(n, 'vcard:fn', g.lit(a.name ?? a.organisation ?? '', undefined, lang));
  if (a.organisation) g.add(n, 'vcard:organization-name', g.lit(a.organisation, undefined, lang));
  if (a.email) g.add(n, 'vcard:hasEmail', g.iri(`mailto:${a.email}`));
  if (a.url) g.add(n, 'vcard:hasURL', g.iri(a.url));
  if (a.phone) g.add(n, 'vcard:hasTelephone', g.lit(a.phone));
  return n;
}

function addAgentFoaf(g: Graph, a: Agent, lang: string, publisherType?: string): Term {
  const n = g.bnode();
  g.a(n, 'foaf:Agent');
  g.add(n, 'foaf:name', g.lit(a.organisation ?? a.name ?? '', undefined, lang));
  if (a.email) g.add(n, 'foaf:mbox', g.iri(`mailto:${a.email}`));
  if (a.url) {
    const home = g.iri(a.url);
    g.add(n, 'foaf:homepage', home);
    g.a(home, 'foaf:Document');
  }
  if (publisherType)
    g.add(
      n,
      'dct:type',
      concept(g, ADMS_PUBLISHER_TYPE + publisherType, PUBLISHER_TYPES[publisherType] ?? publisherType, `${ADMS_PUBLISHER_TYPE}1.0`),
    );
  return n;
}

/** ADMS licence type of the licences this server knows (all of them ask for attribution). */
const LICENCE_TYPES: [RegExp, string, string][] = [
  [
    /etalab\.gouv\.fr\/licence-ouverte|creativecommons\.org\/licenses\/by\/|opendatacommons\.org\/licenses\/odbl/,
    'Attribution',
    'Attribution',
  ],
  [/creativecommons\.org\/publicdomain\/zero|opendatacommons\.org\/licenses\/pddl/, 'PublicDomain', 'Public domain'],
];

function addLicence(g: Graph, r: CatalogRecord): Term | null {
  if (!r.licence || !/^[a-z][a-z0-9+.-]*:/i.test(r.licence.url)) return null;
  const l = g.iri(r.licence.url);
  g.a(l, 'dct:LicenseDocument');
  if (r.licence.label) g.add(l, 'rdfs:label', g.lit(r.licence.label, undefined, 'fr'));
  const type = LICENCE_TYPES.find(([re]) => re.test(r.licence!.url));
  if (type) g.add(l, 'dct:type', concept(g, ADMS_LICENCE_TYPE + type[1], type[2], `${ADMS_LICENCE_TYPE}1.0`));
  return l;
}

function addThemes(g: Graph, subject: Term, themes: Theme[]): void {
  for (const t of themes) {
    const th = g.iri(t.uri);
    g.add(subject, 'dcat:theme', th);
    g.a(th, 'skos:Concept');
    g.add(th, 'skos:prefLabel', g.lit(t.label, undefined, 'fr'));
    if (t.scheme) {
      g.add(th, 'skos:inScheme', g.iri(t.scheme));
      g.a(g.iri(t.scheme), 'skos:ConceptScheme');
      g.add(
        g.iri(t.scheme),
        'dct:title',
        g.lit(t.scheme.includes('inspire') ? 'GEMET - INSPIRE themes, version 1.0' : 'Data theme', undefined, 'en'),
      );
    }
  }
}

/** EU file type of an OGC service distribution (DCAT-AP asks every distribution for a dct:format). */
const SERVICE_FILE_TYPE: Record<string, string> = {
  'OGC:WMS': 'WMS_SRVC',
  'OGC:WFS': 'WFS_SRVC',
  'OGC:WMTS': 'WMTS_SRVC',
  'OGC:WCS': 'WCS_SRVC',
  'OGC:CSW': 'XML',
  'OGC API - Features': 'GEOJSON',
};

/** A dct:Location: one locn:geometry (GeoJSON), dcat:bbox (WKT) and dcat:centroid (WKT point). */
function addLocation(g: Graph, b: [number, number, number, number]): Term {
  const loc = g.bnode();
  g.a(loc, 'dct:Location');
  g.add(loc, 'locn:geometry', g.lit(bboxGeoJson(b), 'gsp:geoJSONLiteral'));
  g.add(loc, 'dcat:bbox', g.lit(bboxWkt(b), 'gsp:wktLiteral'));
  g.add(loc, 'dcat:centroid', g.lit(`POINT(${(b[0] + b[2]) / 2} ${(b[1] + b[3]) / 2})`, 'gsp:wktLiteral'));
  return loc;
}

const SPEC: Record<string, string> = {
  'OGC:WMS': 'http://www.opengeospatial.org/standards/wms',
  'OGC:WFS': 'http://www.opengeospatial.org/standards/wfs',
  'OGC:WMTS': 'http://www.opengeospatial.org/standards/wmts',
  'OGC:CSW': 'http://www.opengeospatial.org/standards/cat',
  'OGC API - Features': 'http://www.opengis.net/spec/ogcapi-features-1/1.0',
};

const SPEC_LABEL: Record<string, string> = {
  'http://www.opengeospatial.org/standards/wms': 'OGC Web Map Service',
  'http://www.opengeospatial.org/standards/wfs': 'OGC Web Feature Service',
  'http://www.opengeospatial.org/standards/wmts': 'OGC Web Map Tile Service',
  'http://www.opengeospatial.org/standards/cat': 'OGC Catalogue Service',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0': 'OGC API - Features - Part 1: Core',
};

interface Ctx {
  base: string;
  lang: string;
  licence: Term | null;
  eff: Effective;
  defaults?: DcatDefaults;
}

function addDistribution(g: Graph, r: CatalogRecord, ds: Term, link: Link, c: Ctx): Term {
  const d = g.bnode();
  const url = absolutise(link.url, c.base);
  const { lang, licence } = c;
  g.a(d, 'dcat:Distribution');
  g.add(d, 'dcat:accessURL', g.iri(url));
  const title = link.title ?? `${r.title} (${link.protocol})`;
  g.add(d, 'dct:title', g.lit(title, undefined, lang));
  g.add(d, 'dct:description', g.lit(link.description ?? title, undefined, lang));
  g.add(d, 'dct:license', licence);
  g.add(d, 'dcatap:availability', g.iri(`${EU}/planned-availability/STABLE`));
  g.add(d, 'dct:modified', dateLit(g, r.modified));
  const spec = SPEC[link.protocol];
  if (spec) {
    const s = g.bnode();
    const endpoint = url.split('?')[0];
    g.a(s, 'dcat:DataService');
    g.add(s, 'dct:title', g.lit(link.title ?? link.protocol, undefined, lang));
    g.add(s, 'dct:conformsTo', standard(g, spec, SPEC_LABEL[spec]));
    g.add(s, 'geodcatap:serviceProtocol', g.iri(spec));
    if (link.protocol === 'OGC API - Features') {
      g.add(s, 'dcat:endpointURL', g.iri(`${c.base}/`));
      g.add(s, 'dcat:endpointDescription', g.iri(`${c.base}/openapi.yaml`));
    } else {
      g.add(s, 'dcat:endpointURL', g.iri(endpoint));
      g.add(s, 'dcat:endpointDescription', g.iri(url));
    }
    g.add(s, 'dct:license', licence);
    g.add(s, 'dcat:servesDataset', ds);
    g.add(s, 'dcat:keyword', g.lit(link.protocol.replace(/^OGC:/, ''), undefined, lang));
    for (const k of c.eff.keywords) g.add(s, 'dcat:keyword', g.lit(k, undefined, lang));
    addThemes(g, s, c.eff.themes);
    if (c.eff.contact) g.add(s, 'dcat:contactPoint', addAgentVcard(g, c.eff.contact, lang));
    if (c.eff.publisher) g.add(s, 'dct:publisher', addAgentFoaf(g, c.eff.publisher, lang, c.defaults?.publisherType));
    g.add(d, 'dcat:accessService', s);
    const ft = SERVICE_FILE_TYPE[link.protocol];
    if (ft) g.add(d, 'dct:format', g.iri(`${EU}/file-type/${ft}`));
    if (link.mediaType) g.add(d, 'dcat:mediaType', mediaType(g, link.mediaType));
  } else {
    if (link.function === 'download') g.add(d, 'dcat:downloadURL', g.iri(url));
    // a format code outside the EU file-type table is no dct:format (DCAT-AP's controlled vocabulary)
    if (link.format && checkVocab('file-type', `${EU}/file-type/${link.format}`) !== 'bad')
      g.add(d, 'dct:format', g.iri(`${EU}/file-type/${link.format}`));
    const mt = link.mediaType ?? (link.format ? FILE_TYPES[link.format]?.mediaType : undefined);
    if (mt) g.add(d, 'dcat:mediaType', mediaType(g, mt));
    if (link.byteSize !== undefined) g.add(d, 'dcat:byteSize', g.lit(link.byteSize, 'xsd:nonNegativeInteger'));
  }
  return d;
}

/** Add one dataset (or series) with all its dependent nodes; returns its IRI. */
export function addDataset(g: Graph, r: CatalogRecord, base: string, defaults?: DcatDefaults): Term {
  const lang = languageCodes(r.language).iso2;
  const eff = effective(r, defaults);
  const ds = g.iri(datasetIri(base, r.identifier));
  g.a(ds, r.type === 'series' ? 'dcat:DatasetSeries' : 'dcat:Dataset');
  g.add(ds, 'dct:identifier', g.lit(r.identifier));
  g.add(ds, 'dct:title', g.lit(r.title, undefined, lang));
  g.add(ds, 'dct:description', g.lit(r.abstract || r.title, undefined, lang));
  for (const k of eff.keywords) g.add(ds, 'dcat:keyword', g.lit(k, undefined, lang));
  addThemes(g, ds, eff.themes);
  const licence = addLicence(g, r);
  g.add(ds, 'dct:license', licence);
  // an INSPIRE limitation on public access is written as the EU access right it amounts to
  const inspireAccess = r.accessRights ? accessRightOfInspire(r.accessRights) : null;
  const access = g.iri(
    inspireAccess
      ? `${EU}/access-right/${inspireAccess}`
      : r.accessRights && /^https?:/.test(r.accessRights)
        ? r.accessRights
        : `${EU}/access-right/PUBLIC`,
  );
  g.add(ds, 'dct:accessRights', access);
  if (!access.v.startsWith(`${EU}/`)) g.a(access, 'dct:RightsStatement'); // EU access rights are typed by their vocabulary
  if (r.rights) {
    const rs = g.bnode();
    g.a(rs, 'dct:RightsStatement');
    g.add(rs, 'rdfs:label', g.lit(r.rights, undefined, lang));
    g.add(ds, 'dct:rights', rs);
  }
  if (r.frequency && checkVocab('frequency', `${EU}/frequency/${r.frequency}`) === 'ok')
    g.add(ds, 'dct:accrualPeriodicity', g.iri(`${EU}/frequency/${r.frequency}`));
  let start = r.temporalStart;
  let end = r.temporalEnd;
  if (!start && !end && r.source === 'local' && defaults) {
    // a live table: the state of the data at its last update (a snapshot), unless configured
    end = r.modified;
    start = [r.issued, r.created].find((x) => x && end && x <= end) ?? end;
  }
  if (start || end) {
    const t = g.bnode();
    g.a(t, 'dct:PeriodOfTime');
    g.add(t, 'dcat:startDate', dateLit(g, start));
    g.add(t, 'dcat:endDate', dateLit(g, end));
    g.add(ds, 'dct:temporal', t);
  }
  if (r.bbox) g.add(ds, 'dct:spatial', addLocation(g, r.bbox));
  if (eff.contact) g.add(ds, 'dcat:contactPoint', addAgentVcard(g, eff.contact, lang));
  if (eff.publisher) g.add(ds, 'dct:publisher', addAgentFoaf(g, eff.publisher, lang, defaults?.publisherType));
  // the landing page: the configured (or harvested) one, else this server's HTML page of the record
  const landing = g.iri(r.landingPage ? absolutise(r.landingPage, base) : landingPageUrl(base, r.identifier));
  g.add(ds, 'dcat:landingPage', landing);
  g.a(landing, 'foaf:Document');
  g.add(ds, 'dct:created', dateLit(g, r.created));
  g.add(ds, 'dct:issued', dateLit(g, r.issued));
  g.add(ds, 'dct:modified', dateLit(g, r.modified));
  const eu = languageCodes(r.language).eu;
  if (eu) g.add(ds, 'dct:language', g.iri(`${EU}/language/${eu}`));
  for (const c of r.crs) g.add(ds, 'dct:conformsTo', standard(g, `http://www.opengis.net/def/crs/EPSG/0/${c}`, `EPSG:${c}`));
  // a specification the record declares it conforms to (ISO DQ_ConformanceResult pass=true), as GeoDCAT-AP maps it
  for (const c of r.conformity ?? []) if (c.pass === true && c.title) g.add(ds, 'dct:conformsTo', specification(g, c));
  if (r.lineage) {
    const p = g.bnode();
    g.a(p, 'dct:ProvenanceStatement');
    g.add(p, 'rdfs:label', g.lit(r.lineage, undefined, lang));
    g.add(ds, 'dct:provenance', p);
  }
  if (eff.themes.some((t) => t.uri.startsWith('http://inspire.ec.europa.eu/theme/'))) {
    g.add(
      ds,
      'dct:type',
      concept(
        g,
        'http://inspire.ec.europa.eu/metadata-codelist/ResourceType/dataset',
        'Spatial data set',
        'http://inspire.ec.europa.eu/metadata-codelist/ResourceType',
      ),
    );
  }
  const c: Ctx = { base, lang, licence, eff, defaults };
  // a download in a format the EU file-type table has no code for (FlatGeobuf) is not a DCAT-AP
  // distribution a harvester can describe (dct:format is recommended); it stays in ISO and /downloads
  for (const link of r.links) {
    if (link.protocol === 'WWW:DOWNLOAD-1.0-http--download' && !link.format) continue;
    g.add(ds, 'dcat:distribution', addDistribution(g, r, ds, link, c));
  }
  addCatalogRecord(g, r, ds);
  return ds;
}

/** The dcat:CatalogRecord of a dataset or service (ADMS change type: created, or updated since). */
function addCatalogRecord(g: Graph, r: CatalogRecord, topic: Term): void {
  const rec = g.bnode();
  g.a(rec, 'dcat:CatalogRecord');
  g.add(rec, 'dct:identifier', g.lit(r.identifier));
  g.add(rec, 'foaf:primaryTopic', topic);
  const modified = dateLit(g, r.metadataModified);
  g.add(rec, 'dct:modified', modified);
  // first publication of the record: the harvest date of harvested records, else the resource's own
  // publication date when it is older than the record's last change, else that change
  const issued = r.harvestedAt ?? [r.issued, r.created].find((x) => x && x <= r.metadataModified) ?? r.metadataModified;
  g.add(rec, 'dct:issued', dateLit(g, issued));
  const updated = issued.slice(0, 10) < r.metadataModified.slice(0, 10);
  g.add(
    rec,
    'adms:status',
    concept(g, ADMS_CHANGE_TYPE + (updated ? 'Updated' : 'Created'), updated ? 'Updated' : 'Created', `${ADMS_CHANGE_TYPE}1.0`),
  );
  g.add(rec, 'dct:conformsTo', standard(g, 'http://data.europa.eu/930/', 'GeoDCAT-AP'));
  if (r.source !== 'local' && r.sourceId) {
    // where the record came from: the source's own record of the same resource
    const src = g.bnode();
    g.a(src, 'dcat:CatalogRecord');
    g.add(src, 'dct:identifier', g.lit(r.sourceId));
    g.add(src, 'foaf:primaryTopic', topic);
    g.add(src, 'dct:modified', modified);
    g.add(rec, 'dct:source', src);
  }
  g.add(topic, 'foaf:isPrimaryTopicOf', rec);
}

/** A standalone dcat:DataService for a service record. */
export function addDataService(g: Graph, r: CatalogRecord, base: string, served: Map<string, string>, defaults?: DcatDefaults): Term {
  const lang = languageCodes(r.language).iso2;
  const eff = effective(r, defaults);
  const s = g.iri(datasetIri(base, r.identifier));
  const def = SERVICES.find((x) => x.type === r.serviceType);
  g.a(s, 'dcat:DataService');
  g.add(s, 'dct:identifier', g.lit(r.identifier));
  g.add(s, 'dct:title', g.lit(r.title, undefined, lang));
  g.add(s, 'dct:description', g.lit(r.abstract || r.title, undefined, lang));
  for (const k of eff.keywords) g.add(s, 'dcat:keyword', g.lit(k, undefined, lang));
  addThemes(g, s, eff.themes);
  const caps = r.links[0] ? absolutise(r.links[0].url, base) : undefined;
  if (caps) {
    g.add(s, 'dcat:endpointURL', g.iri(caps.split('?')[0]));
    g.add(s, 'dcat:endpointDescription', g.iri(caps));
  }
  if (def) {
    g.add(s, 'dct:conformsTo', standard(g, def.spec, SPEC_LABEL[def.spec]));
    g.add(s, 'geodcatap:serviceProtocol', g.iri(def.spec));
    g.add(s, 'dct:type', g.iri('http://inspire.ec.europa.eu/metadata-codelist/ResourceType/service'));
    g.add(s, 'dct:type', g.iri(`http://inspire.ec.europa.eu/metadata-codelist/SpatialDataServiceType/${def.inspireType}`));
  }
  g.add(s, 'dct:license', addLicence(g, r));
  g.add(s, 'dct:accessRights', g.iri(`${EU}/access-right/PUBLIC`));
  if (eff.contact) g.add(s, 'dcat:contactPoint', addAgentVcard(g, eff.contact, lang));
  if (eff.publisher) g.add(s, 'dct:publisher', addAgentFoaf(g, eff.publisher, lang, defaults?.publisherType));
  g.add(s, 'dct:modified', dateLit(g, r.modified));
  // a discovery service (this CSW) gives access to the records of every dataset of the catalogue
  const ids = r.operatesOn.length || r.source !== 'local' || def?.inspireType !== 'discovery' ? r.operatesOn : [...served.keys()];
  for (const id of ids) {
    const iri = g.iri(datasetIri(base, id));
    g.add(s, 'dcat:servesDataset', iri);
    // the served dataset carries its identifier in the same page (udata matches on it)
    if (served.has(id)) g.add(iri, 'dct:identifier', g.lit(id));
  }
  return s;
}

export interface CataloguePage {
  datasets: CatalogRecord[];
  services: CatalogRecord[];
  /** identifier → present (for servesDataset identifiers) */
  allDatasetIds: string[];
  total: number;
  page: number;
  pageSize: number;
  /** URL of this page without the page parameter, e.g. https://…/catalog/dcat.ttl */
  pageUrl: (page: number) => string;
  /** Figures of the whole catalogue (every page says the same): first issue, last change, extent. */
  summary?: { issued: string | null; modified: string | null; bbox: [number, number, number, number] | null };
}

export function buildCatalogue(ctx: AppContext, base: string, p: CataloguePage): Graph {
  const g = new Graph();
  const svc = ctx.config.service;
  const defaults = dcatDefaults(ctx.config);
  const lang = languageCodes(svc.language ?? 'fre').iso2;
  const cat = g.iri(`${base}/catalog`);
  g.a(cat, 'dcat:Catalog');
  g.a(cat, 'hydra:Collection');
  g.add(cat, 'dct:title', g.lit(svc.title, undefined, lang));
  g.add(cat, 'dct:description', g.lit(svc.abstract || svc.title, undefined, lang));
  g.add(cat, 'dct:publisher', addAgentFoaf(g, defaults.agent, lang, defaults.publisherType));
  const home = g.iri(`${base}/`);
  g.add(cat, 'foaf:homepage', home);
  g.a(home, 'foaf:Document');
  const catLang = languageCodes(svc.language ?? 'fre').eu;
  if (catLang) g.add(cat, 'dct:language', g.iri(`${EU}/language/${catLang}`));
  const lic = g.iri('https://www.etalab.gouv.fr/licence-ouverte-open-licence/');
  g.add(cat, 'dct:license', lic);
  g.a(lic, 'dct:LicenseDocument');
  g.add(lic, 'rdfs:label', g.lit('Licence Ouverte / Open Licence version 2.0', undefined, 'fr'));
  g.add(lic, 'dct:type', concept(g, `${ADMS_LICENCE_TYPE}Attribution`, 'Attribution', `${ADMS_LICENCE_TYPE}1.0`));
  const dates = [...p.datasets, ...p.services]
    .map((r) => r.modified ?? '')
    .filter(Boolean)
    .sort();
  g.add(cat, 'dct:modified', dateLit(g, p.summary?.modified ?? dates[dates.length - 1]));
  g.add(cat, 'dct:issued', dateLit(g, p.summary?.issued ?? dates[0]));
  if (p.summary?.bbox) g.add(cat, 'dct:spatial', addLocation(g, p.summary.bbox));
  g.add(cat, 'dcat:themeTaxonomy', g.iri(`${EU}/data-theme`));
  g.add(cat, 'dcat:themeTaxonomy', g.iri('http://inspire.ec.europa.eu/theme'));
  g.a(g.iri(`${EU}/data-theme`), 'skos:ConceptScheme');
  g.add(g.iri(`${EU}/data-theme`), 'dct:title', g.lit('Data theme', undefined, 'en'));
  g.a(g.iri('http://inspire.ec.europa.eu/theme'), 'skos:ConceptScheme');
  g.add(g.iri('http://inspire.ec.europa.eu/theme'), 'dct:title', g.lit('GEMET - INSPIRE themes, version 1.0', undefined, 'en'));
  g.add(cat, 'hydra:totalItems', g.lit(p.total, 'xsd:integer'));
  const view = g.iri(p.pageUrl(p.page));
  g.a(view, 'hydra:PartialCollectionView');
  g.add(cat, 'hydra:view', view);
  const last = Math.max(1, Math.ceil(p.total / p.pageSize));
  g.add(view, 'hydra:first', g.iri(p.pageUrl(1)));
  g.add(view, 'hydra:last', g.iri(p.pageUrl(last)));
  g.add(view, 'hydra:totalItems', g.lit(p.total, 'xsd:integer'));
  if (p.page < last) g.add(view, 'hydra:next', g.iri(p.pageUrl(p.page + 1)));
  if (p.page > 1) g.add(view, 'hydra:previous', g.iri(p.pageUrl(p.page - 1)));
  for (const r of p.datasets) g.add(cat, 'dcat:dataset', addDataset(g, r, base, defaults));
  const served = new Map(p.allDatasetIds.map((i) => [i, i]));
  for (const s of p.services) g.add(cat, 'dcat:service', addDataService(g, s, base, served, defaults));
  return g;
}

/** One record as a self-contained graph (CSW outputSchema=dcat, /catalog/records/{id}). */
export function buildRecordGraph(r: CatalogRecord, base: string, defaults?: DcatDefaults, allDatasetIds?: string[]): Graph {
  const g = new Graph();
  if (r.type === 'service') addDataService(g, r, base, new Map((allDatasetIds ?? r.operatesOn).map((i) => [i, i])), defaults);
  else addDataset(g, r, base, defaults);
  return g;
}
