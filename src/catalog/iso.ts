/**
 * ISO 19139 (gmd:MD_Metadata) for catalogue records, written so that GeoNetwork, the INSPIRE
 * validator and the SEMIC GeoDCAT-AP XSLT that udata runs all read what they need:
 * hierarchyLevel; one resource identifier (codeSpace + code = the DCAT dct:identifier); licence as
 * gmx:Anchor next to useConstraints; GEMET INSPIRE theme keywords with their thesaurus; full
 * GetCapabilities URLs with OGC:WMS/WFS/WMTS protocols and the layer name; download links with
 * CI_OnLineFunctionCode download; service records with srv:SV_ServiceIdentification + operatesOn.
 *
 * This is the ISO 19139 schema module of the record store: readIso keeps a received MD_Metadata as
 * its source document with the ISO AP queryable index (OGC 07-045 §8.2) and a projection (the
 * mapping of harvest.ts's isoToRecord); sourceIsoDocument gives the document back unchanged for
 * full ISO output; writeIsoRecord is the crosswalk from the projection (records received as Dublin
 * Core or DCAT, records derived from the layers) and the brief / summary element sets.
 */
import { OwsException } from '../ows/exceptions.js';
import type { XmlWriter } from '../ows/xml.js';
import type { XmlElement } from '../ows/xmldom.js';
import { SERVICES } from './derive.js';
import { absolutise, isoFrequency, FILE_TYPES, type Agent, type CatalogRecord } from './model.js';
import { datasetIri } from './dcat.js';
import { checkBbox, checkIdentifier, isValidDate } from './dc.js';
import { isoToRecord } from './harvest.js';
import { descendants, isoIndex, kid, val } from './isoindex.js';
import { inspireReport } from './inspire.js';
import { serialiseElement } from './xmlser.js';

export const GMD_NS = 'http://www.isotc211.org/2005/gmd';
export const ISO_NAMESPACES = {
  'xmlns:gmd': GMD_NS,
  'xmlns:gco': 'http://www.isotc211.org/2005/gco',
  'xmlns:gmx': 'http://www.isotc211.org/2005/gmx',
  'xmlns:srv': 'http://www.isotc211.org/2005/srv',
  'xmlns:gml': 'http://www.opengis.net/gml/3.2',
  'xmlns:xlink': 'http://www.w3.org/1999/xlink',
};

const CL = 'http://standards.iso.org/iso/19139/resources/gmxCodelists.xml';

function cs(w: XmlWriter, name: string, value: string | null | undefined): void {
  if (value === null || value === undefined || value === '') return;
  w.start(name).el('gco:CharacterString', value).end();
}

function code(w: XmlWriter, wrapper: string, list: string, value: string, text = value): void {
  w.start(wrapper)
    .el(`gmd:${list}`, { codeList: `${CL}#${list}`, codeListValue: value }, text)
    .end();
}

function date(w: XmlWriter, v: string): void {
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) w.el('gco:Date', v);
  else w.el('gco:DateTime', new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z'));
}

function party(w: XmlWriter, a: Agent | null, role: string, fallbackOrg: string): void {
  w.start('gmd:CI_ResponsibleParty');
  if (a?.name && a.name !== a.organisation) cs(w, 'gmd:individualName', a.name);
  cs(w, 'gmd:organisationName', a?.organisation ?? a?.name ?? fallbackOrg);
  if (a?.email || a?.url || a?.phone) {
    w.start('gmd:contactInfo').start('gmd:CI_Contact');
    if (a.phone) w.start('gmd:phone').start('gmd:CI_Telephone').start('gmd:voice').el('gco:CharacterString', a.phone).end().end().end();
    if (a.email)
      w.start('gmd:address')
        .start('gmd:CI_Address')
        .start('gmd:electronicMailAddress')
        .el('gco:CharacterString', a.email)
        .end()
        .end()
        .end();
    if (a.url) w.start('gmd:onlineResource').start('gmd:CI_OnlineResource').start('gmd:linkage').el('gmd:URL', a.url).end().end().end();
    w.end().end();
  }
  code(w, 'gmd:role', 'CI_RoleCode', role);
  w.end();
}

const TOPIC: Record<string, string> = {
  tn: 'transportation',
  au: 'boundaries',
  cp: 'planningCadastre',
  lu: 'planningCadastre',
  hy: 'inlandWaters',
  el: 'elevation',
  oi: 'imageryBaseMapsEarthCover',
  lc: 'imageryBaseMapsEarthCover',
  ps: 'environment',
  bu: 'structure',
  us: 'utilitiesCommunication',
  pd: 'society',
  su: 'society',
  ge: 'geoscientificInformation',
  so: 'geoscientificInformation',
  nz: 'environment',
  hb: 'biota',
  sd: 'biota',
  br: 'biota',
  ac: 'climatologyMeteorologyAtmosphere',
  mf: 'climatologyMeteorologyAtmosphere',
  ad: 'location',
  gn: 'location',
  gg: 'location',
  rs: 'location',
  ef: 'environment',
  pf: 'economy',
  af: 'farming',
  er: 'economy',
  mr: 'economy',
  hh: 'health',
  am: 'planningCadastre',
  of: 'oceans',
  sr: 'oceans',
};

export interface IsoOptions {
  base: string;
  elementSet: 'brief' | 'summary' | 'full';
  /** Write namespace declarations on the root (always true except when the caller declared them). */
  declareNamespaces?: boolean;
  fallbackOrganisation: string;
}

function citation(w: XmlWriter, r: CatalogRecord, withIdentifier: boolean): void {
  w.start('gmd:citation').start('gmd:CI_Citation');
  if (r.title) cs(w, 'gmd:title', r.title);
  else w.el('gmd:title', { 'gco:nilReason': 'missing' }); // a Dublin Core record may have no title; ISO requires the element
  const dates: [string, string][] = [];
  if (r.created) dates.push([r.created, 'creation']);
  if (r.issued) dates.push([r.issued, 'publication']);
  if (r.modified) dates.push([r.modified, 'revision']);
  if (!dates.length) dates.push([r.metadataModified, 'revision']);
  for (const [d, t] of dates) {
    w.start('gmd:date').start('gmd:CI_Date').start('gmd:date');
    date(w, d);
    w.end();
    code(w, 'gmd:dateType', 'CI_DateTypeCode', t);
    w.end().end();
  }
  if (withIdentifier) {
    // one resource identifier: the XSLT turns it into the one DCAT dct:identifier
    w.start('gmd:identifier');
    if (r.codeSpace) {
      const codePart = r.identifier.slice(r.codeSpace.length).replace(/^\//, '');
      w.start('gmd:RS_Identifier');
      cs(w, 'gmd:code', codePart);
      cs(w, 'gmd:codeSpace', r.codeSpace);
      w.end();
    } else {
      w.start('gmd:MD_Identifier');
      cs(w, 'gmd:code', r.identifier);
      w.end();
    }
    w.end();
  }
  w.end().end();
}

function bbox(w: XmlWriter, r: CatalogRecord, wrapper: string, withTemporal: boolean): void {
  if (!r.bbox && !(withTemporal && (r.temporalStart || r.temporalEnd))) return;
  w.start(wrapper).start('gmd:EX_Extent');
  if (r.bbox) {
    const [west, south, east, north] = r.bbox;
    w.start('gmd:geographicElement').start('gmd:EX_GeographicBoundingBox');
    w.start('gmd:westBoundLongitude').el('gco:Decimal', west).end();
    w.start('gmd:eastBoundLongitude').el('gco:Decimal', east).end();
    w.start('gmd:southBoundLatitude').el('gco:Decimal', south).end();
    w.start('gmd:northBoundLatitude').el('gco:Decimal', north).end();
    w.end().end();
  }
  if (withTemporal && (r.temporalStart || r.temporalEnd)) {
    w.start('gmd:temporalElement').start('gmd:EX_TemporalExtent').start('gmd:extent');
    w.start('gml:TimePeriod', { 'gml:id': 'tp1' });
    if (r.temporalStart) w.el('gml:beginPosition', r.temporalStart);
    else w.el('gml:beginPosition', { indeterminatePosition: 'unknown' });
    if (r.temporalEnd) w.el('gml:endPosition', r.temporalEnd);
    else w.el('gml:endPosition', { indeterminatePosition: 'now' });
    w.end().end().end().end();
  }
  w.end().end();
}

function keywords(w: XmlWriter, r: CatalogRecord): void {
  if (r.keywords.length) {
    w.start('gmd:descriptiveKeywords').start('gmd:MD_Keywords');
    for (const k of r.keywords) cs(w, 'gmd:keyword', k);
    w.end().end();
  }
  const inspire = r.themes.filter((t) => t.uri.startsWith('http://inspire.ec.europa.eu/theme/'));
  if (inspire.length) {
    w.start('gmd:descriptiveKeywords').start('gmd:MD_Keywords');
    for (const t of inspire) w.start('gmd:keyword').el('gmx:Anchor', { 'xlink:href': t.uri }, t.label).end();
    code(w, 'gmd:type', 'MD_KeywordTypeCode', 'theme');
    w.start('gmd:thesaurusName').start('gmd:CI_Citation');
    w.start('gmd:title')
      .el('gmx:Anchor', { 'xlink:href': 'http://www.eionet.europa.eu/gemet/inspire_themes' }, 'GEMET - INSPIRE themes, version 1.0')
      .end();
    w.start('gmd:date').start('gmd:CI_Date').start('gmd:date').el('gco:Date', '2008-06-01').end();
    code(w, 'gmd:dateType', 'CI_DateTypeCode', 'publication');
    w.end().end();
    w.end().end();
    w.end().end();
  }
  const other = r.themes.filter((t) => !t.uri.startsWith('http://inspire.ec.europa.eu/theme/'));
  if (other.length) {
    w.start('gmd:descriptiveKeywords').start('gmd:MD_Keywords');
    for (const t of other) w.start('gmd:keyword').el('gmx:Anchor', { 'xlink:href': t.uri }, t.label).end();
    code(w, 'gmd:type', 'MD_KeywordTypeCode', 'theme');
    w.start('gmd:thesaurusName').start('gmd:CI_Citation');
    w.start('gmd:title')
      .el('gmx:Anchor', { 'xlink:href': 'http://publications.europa.eu/resource/authority/data-theme' }, 'Data theme (EU)')
      .end();
    w.start('gmd:date').start('gmd:CI_Date').start('gmd:date').el('gco:Date', '2015-10-01').end();
    code(w, 'gmd:dateType', 'CI_DateTypeCode', 'publication');
    w.end().end();
    w.end().end();
    w.end().end();
  }
}

function constraints(w: XmlWriter, r: CatalogRecord): void {
  // access: INSPIRE "no limitations" unless a URI is configured
  w.start('gmd:resourceConstraints').start('gmd:MD_LegalConstraints');
  code(w, 'gmd:accessConstraints', 'MD_RestrictionCode', 'otherRestrictions');
  const access =
    r.accessRights && /^https?:/.test(r.accessRights)
      ? r.accessRights
      : 'http://inspire.ec.europa.eu/metadata-codelist/LimitationsOnPublicAccess/noLimitations';
  w.start('gmd:otherConstraints')
    .el('gmx:Anchor', { 'xlink:href': access }, access.endsWith('noLimitations') ? 'Pas de restriction d’accès public' : access)
    .end();
  w.end().end();
  // use: the licence as an Anchor next to useConstraints (→ dct:license in GeoDCAT-AP)
  if (r.licence || r.rights) {
    w.start('gmd:resourceConstraints').start('gmd:MD_LegalConstraints');
    code(w, 'gmd:useConstraints', 'MD_RestrictionCode', 'otherRestrictions');
    if (r.licence)
      w.start('gmd:otherConstraints')
        .el('gmx:Anchor', { 'xlink:href': r.licence.url }, r.licence.label ?? r.licence.url)
        .end();
    if (r.rights) cs(w, 'gmd:otherConstraints', r.rights);
    w.end().end();
  }
}

function onlineResource(
  w: XmlWriter,
  url: string,
  protocol: string,
  name: string | undefined,
  description: string | undefined,
  fn: string | undefined,
): void {
  w.start('gmd:onLine').start('gmd:CI_OnlineResource');
  w.start('gmd:linkage').el('gmd:URL', url).end();
  cs(w, 'gmd:protocol', protocol);
  cs(w, 'gmd:name', name);
  cs(w, 'gmd:description', description);
  if (fn) code(w, 'gmd:function', 'CI_OnLineFunctionCode', fn);
  w.end().end();
}

function distribution(w: XmlWriter, r: CatalogRecord, base: string): void {
  const formats = [...new Set(r.links.map((l) => l.format).filter((f): f is string => Boolean(f)))];
  w.start('gmd:distributionInfo').start('gmd:MD_Distribution');
  for (const f of formats) {
    w.start('gmd:distributionFormat').start('gmd:MD_Format');
    cs(w, 'gmd:name', FILE_TYPES[f]?.label ?? f);
    cs(w, 'gmd:version', '-');
    w.end().end();
  }
  w.start('gmd:transferOptions').start('gmd:MD_DigitalTransferOptions');
  for (const l of r.links) {
    const fn = l.protocol.startsWith('OGC:') ? (l.protocol === 'OGC:WFS' ? 'download' : 'browsing') : l.function;
    onlineResource(w, absolutise(l.url, base), l.protocol, l.name, l.description ?? l.title, fn);
  }
  onlineResource(w, datasetIri(base, r.identifier), 'WWW:LINK', undefined, 'Fiche de métadonnées (DCAT, JSON)', 'information');
  w.end().end();
  w.end().end();
}

/** Write one gmd:MD_Metadata. */
export function writeIsoRecord(w: XmlWriter, r: CatalogRecord, o: IsoOptions): void {
  const full = o.elementSet !== 'brief';
  const service = r.type === 'service';
  w.start('gmd:MD_Metadata', o.declareNamespaces === false ? {} : ISO_NAMESPACES);
  cs(w, 'gmd:fileIdentifier', r.identifier);
  w.start('gmd:language')
    .el('gmd:LanguageCode', { codeList: 'http://www.loc.gov/standards/iso639-2/', codeListValue: r.language }, r.language)
    .end();
  code(w, 'gmd:characterSet', 'MD_CharacterSetCode', 'utf8');
  code(w, 'gmd:hierarchyLevel', 'MD_ScopeCode', r.type);
  if (full) cs(w, 'gmd:hierarchyLevelName', service ? 'service' : r.type === 'series' ? 'série de données' : 'jeu de données');
  w.start('gmd:contact');
  party(w, r.contact, 'pointOfContact', o.fallbackOrganisation);
  w.end();
  w.start('gmd:dateStamp');
  date(w, r.metadataModified);
  w.end();
  if (full) {
    cs(w, 'gmd:metadataStandardName', 'ISO 19115:2003/19139');
    cs(w, 'gmd:metadataStandardVersion', '1.0');
    for (const c of r.crs.slice(0, 1)) {
      w.start('gmd:referenceSystemInfo').start('gmd:MD_ReferenceSystem').start('gmd:referenceSystemIdentifier').start('gmd:RS_Identifier');
      w.start('gmd:code')
        .el('gmx:Anchor', { 'xlink:href': `http://www.opengis.net/def/crs/EPSG/0/${c}` }, `EPSG:${c}`)
        .end();
      w.end().end().end().end();
    }
  }
  w.start('gmd:identificationInfo');
  if (service) {
    const def = SERVICES.find((s) => s.type === r.serviceType);
    w.start('srv:SV_ServiceIdentification');
    citation(w, r, true);
    cs(w, 'gmd:abstract', r.abstract || r.title);
    if (full) {
      w.start('gmd:pointOfContact');
      party(w, r.contact, 'custodian', o.fallbackOrganisation);
      w.end();
      keywords(w, r);
      if (r.keywords.length === 0 && def) {
        w.start('gmd:descriptiveKeywords').start('gmd:MD_Keywords');
        cs(w, 'gmd:keyword', def.type);
        w.end().end();
      }
      constraints(w, r);
    }
    w.start('srv:serviceType')
      .el('gco:LocalName', def?.inspireType ?? 'other')
      .end();
    cs(w, 'srv:serviceTypeVersion', def?.version);
    if (full) bbox(w, r, 'srv:extent', false);
    w.start('srv:couplingType')
      .el(
        'srv:SV_CouplingType',
        { codeList: `${CL}#SV_CouplingType`, codeListValue: r.operatesOn.length ? 'tight' : 'loose' },
        r.operatesOn.length ? 'tight' : 'loose',
      )
      .end();
    const caps = r.links[0] ? absolutise(r.links[0].url, o.base) : `${o.base}/csw`;
    w.start('srv:containsOperations').start('srv:SV_OperationMetadata');
    cs(w, 'srv:operationName', 'GetCapabilities');
    w.start('srv:DCP')
      .el('srv:DCPList', { codeList: `${CL}#DCPList`, codeListValue: 'WebServices' }, 'WebServices')
      .end();
    w.start('srv:connectPoint').start('gmd:CI_OnlineResource');
    w.start('gmd:linkage').el('gmd:URL', caps).end();
    cs(w, 'gmd:protocol', r.links[0]?.protocol);
    w.end().end();
    w.end().end();
    for (const id of r.operatesOn)
      w.el('srv:operatesOn', {
        uuidref: id,
        'xlink:href': `${o.base}/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${encodeURIComponent(id)}&OUTPUTSCHEMA=${encodeURIComponent(GMD_NS)}&ELEMENTSETNAME=full`,
      });
    w.end();
  } else {
    w.start('gmd:MD_DataIdentification');
    citation(w, r, true);
    cs(w, 'gmd:abstract', r.abstract || r.title);
    if (full) {
      w.start('gmd:pointOfContact');
      party(w, r.publisher ?? r.contact, 'custodian', o.fallbackOrganisation);
      w.end();
      w.start('gmd:resourceMaintenance').start('gmd:MD_MaintenanceInformation');
      code(w, 'gmd:maintenanceAndUpdateFrequency', 'MD_MaintenanceFrequencyCode', isoFrequency(r.frequency));
      w.end().end();
      keywords(w, r);
      constraints(w, r);
      code(w, 'gmd:spatialRepresentationType', 'MD_SpatialRepresentationTypeCode', 'vector');
    }
    w.start('gmd:language')
      .el('gmd:LanguageCode', { codeList: 'http://www.loc.gov/standards/iso639-2/', codeListValue: r.language }, r.language)
      .end();
    if (full) {
      code(w, 'gmd:characterSet', 'MD_CharacterSetCode', 'utf8');
      const topics = [...new Set(r.themes.map((t) => TOPIC[t.uri.replace(/.*\//, '')]).filter(Boolean))];
      for (const t of topics.length ? topics : ['location']) w.start('gmd:topicCategory').el('gmd:MD_TopicCategoryCode', t).end();
    }
    bbox(w, r, 'gmd:extent', full);
    w.end();
  }
  w.end();
  if (full && r.links.length) distribution(w, r, o.base);
  if (full) {
    w.start('gmd:dataQualityInfo').start('gmd:DQ_DataQuality');
    w.start('gmd:scope').start('gmd:DQ_Scope');
    code(w, 'gmd:level', 'MD_ScopeCode', r.type);
    if (service) {
      w.start('gmd:levelDescription').start('gmd:MD_ScopeDescription');
      cs(w, 'gmd:other', 'service');
      w.end().end();
    }
    w.end().end();
    // INSPIRE conformity: declared "not evaluated" (pass nil) against the regulation that applies
    const inspire = service || r.themes.some((t) => t.uri.startsWith('http://inspire.ec.europa.eu/theme/'));
    if (inspire) {
      const [title, date] = service
        ? [
            'Règlement (CE) n° 976/2009 de la Commission du 19 octobre 2009 portant modalités d’application de la directive 2007/2/CE en ce qui concerne les services en réseau',
            '2009-10-20',
          ]
        : [
            'Règlement (UE) n° 1089/2010 de la Commission du 23 novembre 2010 portant modalités d’application de la directive 2007/2/CE en ce qui concerne l’interopérabilité des séries et des services de données géographiques',
            '2010-12-08',
          ];
      w.start('gmd:report').start('gmd:DQ_DomainConsistency').start('gmd:result').start('gmd:DQ_ConformanceResult');
      w.start('gmd:specification').start('gmd:CI_Citation');
      cs(w, 'gmd:title', title);
      w.start('gmd:date').start('gmd:CI_Date').start('gmd:date').el('gco:Date', date).end();
      code(w, 'gmd:dateType', 'CI_DateTypeCode', 'publication');
      w.end().end();
      w.end().end();
      cs(w, 'gmd:explanation', 'Conformité non évaluée');
      w.el('gmd:pass', { 'gco:nilReason': 'unknown' });
      w.end().end().end().end();
    }
    if (r.lineage && !service) {
      w.start('gmd:lineage').start('gmd:LI_Lineage');
      cs(w, 'gmd:statement', r.lineage);
      w.end().end();
    }
    w.end().end();
  }
  w.end();
}

// ---------------------------------------------------------------------------------------------
// reading (the store's ISO 19139 module)

/**
 * gmd:MD_Metadata → stored record (source document, ISO AP index, projection). Refuses what the
 * store cannot keep: no fileIdentifier nor resource identifier, a bad identifier, an impossible
 * date, a NaN or inverted geographic bounding box.
 */
export function readIso(md: XmlElement, source: string, now: string, locator = 'Insert'): CatalogRecord {
  const fileId = val(kid(md, 'fileIdentifier'));
  if (fileId) checkIdentifier(fileId, locator);
  for (const geo of descendants(md, 'EX_GeographicBoundingBox')) {
    const n = (x: string) => Number(val(kid(geo, x)));
    // west > east is a box across the antimeridian (or swapped longitudes, common in the wild): accepted
    const [w, s, e, no] = [n('westBoundLongitude'), n('southBoundLatitude'), n('eastBoundLongitude'), n('northBoundLatitude')];
    checkBbox([Math.min(w, e), s, Math.max(w, e), no], locator);
  }
  for (const d of [...descendants(md, 'Date'), ...descendants(md, 'DateTime')])
    if (d.ns === 'http://www.isotc211.org/2005/gco' && d.text && !isValidDate(d.text))
      throw new OwsException('InvalidParameterValue', `${d.qname} '${d.text.slice(0, 40)}' is not a valid date`, locator);
  let r: CatalogRecord;
  const untitled = !val(kid(kid(kid(kid(md, 'identificationInfo')?.children[0], 'citation'), 'CI_Citation'), 'title'));
  try {
    // a record without a title is kept (its document unchanged); the projection's title is empty
    r = isoToRecord(untitled ? withTitle(md, '-') : md, source, now);
    if (untitled) r.title = '';
  } catch (e) {
    throw new OwsException('InvalidParameterValue', (e as Error).message, locator);
  }
  // the store's identifier is the fileIdentifier (the metadata record's), as GetRecordById expects
  const identifier = fileId ?? r.identifier;
  checkIdentifier(identifier, locator);
  const index = isoIndex(md);
  // the metadata date is the record's dateStamp (not the time it was received)
  const stamp = val(kid(md, 'dateStamp'));
  const stampDate = stamp ? new Date(/Z|[+-]\d\d:?\d\d$/.test(stamp) || stamp.length === 10 ? stamp : `${stamp}Z`) : null;
  return {
    ...r,
    metadataModified: stampDate && !Number.isNaN(stampDate.getTime()) ? stampDate.toISOString() : now,
    identifier,
    sourceId: identifier,
    harvestedAt: source === 'csw-t' ? null : r.harvestedAt,
    recordSchema: 'iso19139',
    sourceDoc: serialiseElement(md),
    index,
    quality: inspireReport(md),
  };
}

/** A copy of `md` whose citation has the title `t` (the projection's mapping needs one). */
function withTitle(md: XmlElement, t: string): XmlElement {
  const el = (name: string, children: XmlElement[], text = ''): XmlElement => ({
    name,
    ns: '',
    qname: name,
    attrs: {},
    children,
    text,
    nsmap: {},
  });
  const replace = (e: XmlElement, path: string[]): XmlElement => {
    if (!path.length)
      return { ...e, children: [el('title', [el('CharacterString', [], t)]), ...e.children.filter((c) => c.name !== 'title')] };
    const [head, ...rest] = path;
    const i = head === '*' ? 0 : e.children.findIndex((c) => c.name === head);
    if (i < 0) return e;
    const children = [...e.children];
    children[i] = replace(children[i], rest);
    return { ...e, children };
  };
  return replace(md, ['identificationInfo', '*', 'citation', 'CI_Citation']);
}

/** The record's MD_Metadata as received, when it was received in ISO 19139. */
export function sourceIsoDocument(r: CatalogRecord): string | null {
  return r.recordSchema === 'iso19139' && r.sourceDoc ? r.sourceDoc : null;
}
