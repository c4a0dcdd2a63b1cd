/**
 * DCAT-AP 3.0 (compatible with 2.1.1 and GeoDCAT-AP) graphs built from catalogue records.
 *
 * Every dataset is written with everything a harvester needs in the same graph: distributions,
 * agents, PeriodOfTime, Location geometry, theme labels, licence document, CatalogRecord. So a
 * catalogue page, or a single CSW record, is self-contained.
 */
import type { AppContext } from '../context.js';
import { SERVICES } from './derive.js';
import { absolutise, FILE_TYPES, languageCodes, type Agent, type CatalogRecord, type Link } from './model.js';
import { Graph, type Term } from './rdf.js';

const EU = 'http://publications.europa.eu/resource/authority';
const IANA = 'https://www.iana.org/assignments/media-types/';

export function datasetIri(base: string, id: string): string {
  return `${base}/catalog/records/${encodeURIComponent(id)}`;
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
  g.add(n, 'vcard:fn', g.lit(a.name ?? a.organisation ?? '', undefined, lang));
  if (a.organisation) g.add(n, 'vcard:organization-name', g.lit(a.organisation, undefined, lang));
  if (a.email) g.add(n, 'vcard:hasEmail', g.iri(`mailto:${a.email}`));
  if (a.url) g.add(n, 'vcard:hasURL', g.iri(a.url));
  if (a.phone) g.add(n, 'vcard:hasTelephone', g.lit(a.phone));
  return n;
}

function addAgentFoaf(g: Graph, a: Agent, lang: string): Term {
  const n = g.bnode();
  g.a(n, 'foaf:Agent');
  g.add(n, 'foaf:name', g.lit(a.organisation ?? a.name ?? '', undefined, lang));
  if (a.email) g.add(n, 'foaf:mbox', g.iri(`mailto:${a.email}`));
  if (a.url) g.add(n, 'foaf:homepage', g.iri(a.url));
  return n;
}

function addLicence(g: Graph, r: CatalogRecord): Term | null {
  if (!r.licence) return null;
  const l = g.iri(r.licence.url);
  g.a(l, 'dct:LicenseDocument');
  if (r.licence.label) g.add(l, 'rdfs:label', g.lit(r.licence.label, undefined, 'fr'));
  return l;
}

const SPEC: Record<string, string> = {
  'OGC:WMS': 'http://www.opengeospatial.org/standards/wms',
  'OGC:WFS': 'http://www.opengeospatial.org/standards/wfs',
  'OGC:WMTS': 'http://www.opengeospatial.org/standards/wmts',
  'OGC:CSW': 'http://www.opengeospatial.org/standards/cat',
  'OGC API - Features': 'http://www.opengis.net/spec/ogcapi-features-1/1.0',
};

function addDistribution(g: Graph, r: CatalogRecord, link: Link, base: string, licence: Term | null, lang: string): Term {
  const d = g.bnode();
  const url = absolutise(link.url, base);
  g.a(d, 'dcat:Distribution');
  g.add(d, 'dcat:accessURL', g.iri(url));
  g.add(d, 'dct:title', g.lit(link.title ?? `${r.title} (${link.protocol})`, undefined, lang));
  if (link.description) g.add(d, 'dct:description', g.lit(link.description, undefined, lang));
  g.add(d, 'dct:license', licence);
  g.add(d, 'dcatap:availability', g.iri('http://data.europa.eu/r5r/availability/stable'));
  g.add(d, 'dct:modified', dateLit(g, r.modified));
  const spec = SPEC[link.protocol];
  if (spec) {
    const s = g.bnode();
    const endpoint = url.split('?')[0];
    g.a(s, 'dcat:DataService');
    g.add(s, 'dct:title', g.lit(link.title ?? link.protocol, undefined, lang));
    g.add(s, 'dct:conformsTo', g.iri(spec));
    g.add(s, 'geodcatap:serviceProtocol', g.iri(spec));
    if (link.protocol === 'OGC API - Features') {
      g.add(s, 'dcat:endpointURL', g.iri(`${base}/`));
      g.add(s, 'dcat:endpointDescription', g.iri(`${base}/openapi.yaml`));
    } else {
      g.add(s, 'dcat:endpointURL', g.iri(endpoint));
      g.add(s, 'dcat:endpointDescription', g.iri(url));
    }
    g.add(s, 'dct:license', licence);
    g.add(d, 'dcat:accessService', s);
    if (link.mediaType) g.add(d, 'dcat:mediaType', g.iri(IANA + link.mediaType));
  } else {
    if (link.function === 'download') g.add(d, 'dcat:downloadURL', g.iri(url));
    if (link.format) g.add(d, 'dct:format', g.iri(`${EU}/file-type/${link.format}`));
    const mt = link.mediaType ?? (link.format ? FILE_TYPES[link.format]?.mediaType : undefined);
    if (mt) g.add(d, 'dcat:mediaType', g.iri(IANA + mt));
    if (link.byteSize !== undefined) g.add(d, 'dcat:byteSize', g.lit(link.byteSize, 'xsd:nonNegativeInteger'));
  }
  return d;
}

/** Add one dataset (or series) with all its dependent nodes; returns its IRI. */
export function addDataset(g: Graph, r: CatalogRecord, base: string): Term {
  const lang = languageCodes(r.language).iso2;
  const ds = g.iri(datasetIri(base, r.identifier));
  g.a(ds, r.type === 'series' ? 'dcat:DatasetSeries' : 'dcat:Dataset');
  g.add(ds, 'dct:identifier', g.lit(r.identifier));
  g.add(ds, 'dct:title', g.lit(r.title, undefined, lang));
  g.add(ds, 'dct:description', g.lit(r.abstract || r.title, undefined, lang));
  for (const k of r.keywords) g.add(ds, 'dcat:keyword', g.lit(k, undefined, lang));
  for (const t of r.themes) {
    const th = g.iri(t.uri);
    g.add(ds, 'dcat:theme', th);
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
  const licence = addLicence(g, r);
  g.add(ds, 'dct:license', licence);
  g.add(ds, 'dct:accessRights', g.iri(r.accessRights && /^https?:/.test(r.accessRights) ? r.accessRights : `${EU}/access-right/PUBLIC`));
  if (r.rights) {
    const rs = g.bnode();
    g.a(rs, 'dct:RightsStatement');
    g.add(rs, 'rdfs:label', g.lit(r.rights, undefined, lang));
    g.add(ds, 'dct:rights', rs);
  }
  if (r.frequency) g.add(ds, 'dct:accrualPeriodicity', g.iri(`${EU}/frequency/${r.frequency}`));
  if (r.temporalStart || r.temporalEnd) {
    const t = g.bnode();
    g.a(t, 'dct:PeriodOfTime');
    g.add(t, 'dcat:startDate', dateLit(g, r.temporalStart));
    g.add(t, 'dcat:endDate', dateLit(g, r.temporalEnd));
    g.add(ds, 'dct:temporal', t);
  }
  if (r.bbox) {
    const loc = g.bnode();
    g.a(loc, 'dct:Location');
    g.add(loc, 'locn:geometry', g.lit(bboxWkt(r.bbox), 'gsp:wktLiteral'));
    g.add(loc, 'locn:geometry', g.lit(bboxGeoJson(r.bbox), 'gsp:geoJSONLiteral'));
    g.add(loc, 'dcat:bbox', g.lit(bboxWkt(r.bbox), 'gsp:wktLiteral'));
    g.add(loc, 'dcat:centroid', g.lit(`POINT(${(r.bbox[0] + r.bbox[2]) / 2} ${(r.bbox[1] + r.bbox[3]) / 2})`, 'gsp:wktLiteral'));
    g.add(ds, 'dct:spatial', loc);
  }
  if (r.contact) g.add(ds, 'dcat:contactPoint', addAgentVcard(g, r.contact, lang));
  if (r.publisher) g.add(ds, 'dct:publisher', addAgentFoaf(g, r.publisher, lang));
  g.add(ds, 'dcat:landingPage', g.iri(r.landingPage ? absolutise(r.landingPage, base) : datasetIri(base, r.identifier)));
  g.add(ds, 'dct:created', dateLit(g, r.created));
  g.add(ds, 'dct:issued', dateLit(g, r.issued));
  g.add(ds, 'dct:modified', dateLit(g, r.modified));
  g.add(ds, 'dct:language', g.iri(`${EU}/language/${languageCodes(r.language).eu}`));
  for (const c of r.crs) g.add(ds, 'dct:conformsTo', g.iri(`http://www.opengis.net/def/crs/EPSG/0/${c}`));
  if (r.lineage) {
    const p = g.bnode();
    g.a(p, 'dct:ProvenanceStatement');
    g.add(p, 'rdfs:label', g.lit(r.lineage, undefined, lang));
    g.add(ds, 'dct:provenance', p);
  }
  if (r.themes.some((t) => t.uri.startsWith('http://inspire.ec.europa.eu/theme/'))) {
    g.add(ds, 'dct:type', g.iri('http://inspire.ec.europa.eu/metadata-codelist/ResourceType/dataset'));
  }
  for (const link of r.links) g.add(ds, 'dcat:distribution', addDistribution(g, r, link, base, licence, lang));
  const rec = g.bnode();
  g.a(rec, 'dcat:CatalogRecord');
  g.add(rec, 'dct:identifier', g.lit(r.identifier));
  g.add(rec, 'foaf:primaryTopic', ds);
  g.add(rec, 'dct:modified', dateLit(g, r.metadataModified));
  g.add(rec, 'dct:conformsTo', g.iri('http://data.europa.eu/930/'));
  if (r.source !== 'local') g.add(rec, 'dct:source', g.lit(r.source));
  g.add(ds, 'foaf:isPrimaryTopicOf', rec);
  return ds;
}

/** A standalone dcat:DataService for a service record. */
export function addDataService(g: Graph, r: CatalogRecord, base: string, served: Map<string, string>): Term {
  const lang = languageCodes(r.language).iso2;
  const s = g.iri(datasetIri(base, r.identifier));
  const def = SERVICES.find((x) => x.type === r.serviceType);
  g.a(s, 'dcat:DataService');
  g.add(s, 'dct:identifier', g.lit(r.identifier));
  g.add(s, 'dct:title', g.lit(r.title, undefined, lang));
  g.add(s, 'dct:description', g.lit(r.abstract || r.title, undefined, lang));
  for (const k of r.keywords) g.add(s, 'dcat:keyword', g.lit(k, undefined, lang));
  const caps = r.links[0] ? absolutise(r.links[0].url, base) : undefined;
  if (caps) {
    g.add(s, 'dcat:endpointURL', g.iri(caps.split('?')[0]));
    g.add(s, 'dcat:endpointDescription', g.iri(caps));
  }
  if (def) {
    g.add(s, 'dct:conformsTo', g.iri(def.spec));
    g.add(s, 'geodcatap:serviceProtocol', g.iri(def.spec));
    g.add(s, 'dct:type', g.iri('http://inspire.ec.europa.eu/metadata-codelist/ResourceType/service'));
    g.add(s, 'dct:type', g.iri(`http://inspire.ec.europa.eu/metadata-codelist/SpatialDataServiceType/${def.inspireType}`));
  }
  g.add(s, 'dct:license', addLicence(g, r));
  g.add(s, 'dct:accessRights', g.iri(`${EU}/access-right/PUBLIC`));
  if (r.contact) g.add(s, 'dcat:contactPoint', addAgentVcard(g, r.contact, lang));
  if (r.publisher) g.add(s, 'dct:publisher', addAgentFoaf(g, r.publisher, lang));
  g.add(s, 'dct:modified', dateLit(g, r.modified));
  for (const id of r.operatesOn) {
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
}

export function buildCatalogue(ctx: AppContext, base: string, p: CataloguePage): Graph {
  const g = new Graph();
  const svc = ctx.config.service;
  const lang = languageCodes(svc.language ?? 'fre').iso2;
  const cat = g.iri(`${base}/catalog`);
  g.a(cat, 'dcat:Catalog');
  g.a(cat, 'hydra:Collection');
  g.add(cat, 'dct:title', g.lit(svc.title, undefined, lang));
  g.add(cat, 'dct:description', g.lit(svc.abstract || svc.title, undefined, lang));
  const pub = g.bnode();
  g.a(pub, 'foaf:Agent');
  g.add(pub, 'foaf:name', g.lit(svc.contact.organisation || svc.title, undefined, lang));
  if (svc.contact.email) g.add(pub, 'foaf:mbox', g.iri(`mailto:${svc.contact.email}`));
  g.add(cat, 'dct:publisher', pub);
  g.add(cat, 'foaf:homepage', g.iri(`${base}/`));
  g.add(cat, 'dct:language', g.iri(`${EU}/language/${languageCodes(svc.language ?? 'fre').eu}`));
  const lic = g.iri('https://www.etalab.gouv.fr/licence-ouverte-open-licence/');
  g.add(cat, 'dct:license', lic);
  g.a(lic, 'dct:LicenseDocument');
  g.add(lic, 'rdfs:label', g.lit('Licence Ouverte / Open Licence version 2.0', undefined, 'fr'));
  const dates = [...p.datasets, ...p.services]
    .map((r) => r.modified ?? '')
    .filter(Boolean)
    .sort();
  g.add(cat, 'dct:modified', dateLit(g, dates[dates.length - 1]));
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
  for (const r of p.datasets) g.add(cat, 'dcat:dataset', addDataset(g, r, base));
  const served = new Map(p.allDatasetIds.map((i) => [i, i]));
  for (const s of p.services) g.add(cat, 'dcat:service', addDataService(g, s, base, served));
  return g;
}

/** One record as a self-contained graph (CSW outputSchema=dcat, /catalog/records/{id}). */
export function buildRecordGraph(r: CatalogRecord, base: string): Graph {
  const g = new Graph();
  if (r.type === 'service') addDataService(g, r, base, new Map(r.operatesOn.map((i) => [i, i])));
  else addDataset(g, r, base);
  return g;
}
