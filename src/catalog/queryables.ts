/**
 * The queryable index of the record store: every CSW 2.0.2 core queryable (OGC 07-006r1 Table 6)
 * and the ISO Application Profile ones (OGC 07-045 §8.2), kept per record in the jsonb column `q`
 * as lower-case name → list of values, computed by the schema module that read the record
 * (dc.ts, iso.ts, import.ts for DCAT) or, for records derived from the layers, from the record's
 * projection (indexFromRecord). The filter compiler (query.ts) reads only this index, the
 * full-text vector (`tsv`) and the envelope (`extent`).
 */
import type { CatalogRecord, QueryableIndex } from './model.js';

/**
 * text and date: multi-valued, in the index under `key`; fulltext: `tsv`; geometry: `extent`;
 * interval: the temporal extent, begin and end read from the index keys tempextent_begin/_end.
 */
export type QueryableKind = 'text' | 'date' | 'fulltext' | 'geometry' | 'interval';

export interface QueryableDef {
  kind: QueryableKind;
  /** Key in the index (`q`); for 'geometry', 'fulltext' and 'interval', unused. */
  key: string;
}

const t = (key: string): QueryableDef => ({ kind: 'text', key });
const d = (key: string): QueryableDef => ({ kind: 'date', key });

/** Queryables by lower-cased bare name (prefix stripped: dc:title, apiso:Title, csw:AnyText …). */
export const QUERYABLE_DEFS: Record<string, QueryableDef> = {
  anytext: { kind: 'fulltext', key: 'anytext' },
  // CSW 2.0.2 core (dc / dct names and their OGC names)
  title: t('title'),
  abstract: t('abstract'),
  description: t('abstract'),
  subject: t('subject'),
  type: t('type'),
  format: t('format'),
  identifier: t('identifier'),
  modified: d('modified'),
  date: d('date'),
  relation: t('relation'),
  source: t('source'),
  creator: t('creator'),
  publisher: t('publisher'),
  contributor: t('contributor'),
  language: t('language'),
  rights: t('rights'),
  license: t('license'),
  spatial: t('spatial'),
  references: t('references'),
  crs: t('crs'),
  boundingbox: { kind: 'geometry', key: '' },
  bbox: { kind: 'geometry', key: '' },
  envelope: { kind: 'geometry', key: '' },
  geometry: { kind: 'geometry', key: '' },
  // ISO AP (apiso:)
  alternatetitle: t('alternatetitle'),
  organisationname: t('organisationname'),
  resourceidentifier: t('resourceidentifier'),
  fileidentifier: t('identifier'),
  parentidentifier: t('parentidentifier'),
  topiccategory: t('topiccategory'),
  keyword: t('subject'),
  keywordtype: t('keywordtype'),
  revisiondate: d('revisiondate'),
  creationdate: d('creationdate'),
  publicationdate: d('publicationdate'),
  resourcelanguage: t('resourcelanguage'),
  hierarchylevelname: t('hierarchylevelname'),
  servicetype: t('servicetype'),
  servicetypeversion: t('servicetypeversion'),
  operation: t('operation'),
  operateson: t('operateson'),
  operatesonidentifier: t('operateson'),
  operatesonname: t('operatesonname'),
  couplingtype: t('couplingtype'),
  tempextent_begin: d('tempextent_begin'),
  tempextent_end: d('tempextent_end'),
  // the temporal extent as one interval [TempExtent_begin, TempExtent_end], for the temporal
  // operators (CQL2 T_INTERSECTS…, FES During…): OGC API – Records names it `time`, DCAT dct:temporal
  tempextent: { kind: 'interval', key: '' },
  time: { kind: 'interval', key: '' },
  temporal: { kind: 'interval', key: '' },
  hassecurityconstraints: t('hassecurityconstraints'),
  accessconstraints: t('accessconstraints'),
  otherconstraints: t('otherconstraints'),
  classification: t('classification'),
  lineage: t('lineage'),
  responsiblepartyrole: t('responsiblepartyrole'),
  specificationtitle: t('specificationtitle'),
  specificationdate: d('specificationdate'),
  specificationdatetype: t('specificationdatetype'),
  degree: t('degree'),
  denominator: t('denominator'),
  distancevalue: t('distancevalue'),
  distanceuom: t('distanceuom'),
  geographicdescriptioncode: t('geographicdescriptioncode'),
};

/** Core queryables advertised in GetCapabilities (OGC 07-006r1 Table 6 names). */
export const CORE_QUERYABLES = [
  'csw:AnyText',
  'dc:title',
  'dct:abstract',
  'dc:subject',
  'dc:type',
  'dc:format',
  'dc:identifier',
  'dct:modified',
  'dc:date',
  'dc:relation',
  'dc:source',
  'dc:creator',
  'dc:publisher',
  'dc:contributor',
  'dc:language',
  'dc:rights',
  'ows:BoundingBox',
  'csw:CRS',
];

export const APISO_QUERYABLES = [
  'apiso:Subject',
  'apiso:Title',
  'apiso:Abstract',
  'apiso:AnyText',
  'apiso:Format',
  'apiso:Identifier',
  'apiso:Modified',
  'apiso:Type',
  'apiso:BoundingBox',
  'apiso:CRS',
  'apiso:AlternateTitle',
  'apiso:RevisionDate',
  'apiso:CreationDate',
  'apiso:PublicationDate',
  'apiso:OrganisationName',
  'apiso:HasSecurityConstraints',
  'apiso:Language',
  'apiso:ResourceIdentifier',
  'apiso:ParentIdentifier',
  'apiso:KeywordType',
  'apiso:TopicCategory',
  'apiso:ResourceLanguage',
  'apiso:GeographicDescriptionCode',
  'apiso:Denominator',
  'apiso:DistanceValue',
  'apiso:DistanceUOM',
  'apiso:TempExtent_begin',
  'apiso:TempExtent_end',
  'apiso:ServiceType',
  'apiso:ServiceTypeVersion',
  'apiso:Operation',
  'apiso:OperatesOn',
  'apiso:OperatesOnIdentifier',
  'apiso:OperatesOnName',
  'apiso:CouplingType',
];

export const APISO_ADDITIONAL_QUERYABLES = [
  'apiso:AccessConstraints',
  'apiso:OtherConstraints',
  'apiso:Classification',
  'apiso:ConditionApplyingToAccessAndUse',
  'apiso:Lineage',
  'apiso:ResponsiblePartyRole',
  'apiso:SpecificationTitle',
  'apiso:SpecificationDate',
  'apiso:SpecificationDateType',
  'apiso:Degree',
  'apiso:TempExtent',
];
QUERYABLE_DEFS.conditionapplyingtoaccessanduse = t('rights');

/** Builder of an index: values are trimmed, empty ones dropped, duplicates kept once. */
export class IndexBuilder {
  readonly q: QueryableIndex = {};
  add(key: string, ...values: (string | null | undefined)[]): this {
    for (const v of values) {
      const s = v?.trim();
      if (!s) continue;
      const list = this.q[key] ?? (this.q[key] = []);
      if (!list.includes(s)) list.push(s);
    }
    return this;
  }
  /** The index with 'anytext' set from `text` (every text of the source document). */
  done(text: string[]): QueryableIndex {
    this.q.anytext = [text.filter(Boolean).join(' ')];
    return this.q;
  }
}

/**
 * Index of a record known only by its projection (records derived from the layers, DCAT records):
 * the same values the Dublin Core crosswalk writes.
 */
export function indexFromRecord(r: CatalogRecord): QueryableIndex {
  const b = new IndexBuilder();
  b.add('identifier', r.identifier);
  b.add('resourceidentifier', r.identifier);
  b.add('title', r.title);
  b.add('abstract', r.abstract);
  b.add('type', r.type);
  b.add('subject', ...r.keywords, ...r.themes.map((x) => x.label));
  b.add('format', ...r.links.map((l) => l.mediaType ?? l.protocol));
  b.add('relation', ...r.operatesOn);
  b.add('operateson', ...r.operatesOn);
  b.add('modified', r.modified);
  b.add('revisiondate', r.modified);
  b.add('creationdate', r.created);
  b.add('publicationdate', r.issued);
  b.add('date', r.issued);
  b.add('creator', r.contact?.organisation ?? r.contact?.name);
  b.add('publisher', r.publisher?.organisation ?? r.publisher?.name);
  b.add('organisationname', r.contact?.organisation ?? r.contact?.name, r.publisher?.organisation ?? r.publisher?.name);
  b.add('language', r.language);
  b.add('resourcelanguage', r.language);
  b.add('rights', r.licence ? (r.licence.label ?? r.licence.url) : null, r.rights);
  b.add('license', r.licence?.url);
  b.add('source', r.lineage);
  b.add('lineage', r.lineage);
  b.add('references', ...r.links.map((l) => l.url));
  b.add('crs', ...r.crs.map((c) => `urn:ogc:def:crs:EPSG::${c}`));
  b.add('servicetype', r.serviceType);
  b.add('tempextent_begin', r.temporalStart);
  b.add('tempextent_end', r.temporalEnd);
  b.add('accessconstraints', r.accessRights);
  return b.done([
    r.identifier,
    r.title,
    r.abstract,
    ...r.keywords,
    ...r.themes.map((x) => x.label),
    r.contact?.organisation ?? '',
    r.publisher?.organisation ?? '',
    r.lineage ?? '',
  ]);
}
