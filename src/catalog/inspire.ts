/**
 * INSPIRE conformity of an ISO 19139 record: what the Technical Guidance for INSPIRE dataset and
 * service metadata based on ISO/TS 19139:2007, version 2.0 (TG MD 2.0) requires, checked element by
 * element the way the INSPIRE abstract test suite for metadata 2.0 describes it (requirement numbers
 * C.x: common, 1.x: data sets and series). The result is a per-record quality report stored with the
 * record (column `quality`) and the record's declared conformity (DQ_ConformanceResult) for the
 * crosswalks. Importing never changes the record: a failure is a warning, except with
 * `catalog.strictImport` (import.ts) where CSW-T and catalog-import refuse the record.
 */
import type { XmlElement } from '../ows/xmldom.js';
import { descendants, kid, val } from './isoindex.js';
import { INSPIRE_THEMES } from './model.js';
import type { Conformity, QualityCheck, QualityReport } from './quality.js';
import { INSPIRE_THEMES_EN, LANGUAGES } from './vocab.js';

const GMD = 'http://www.isotc211.org/2005/gmd';
const GML311 = 'http://www.opengis.net/gml';
const LOPA = /^https?:\/\/inspire\.ec\.europa\.eu\/metadata-codelist\/LimitationsOnPublicAccess\/\w+$/;
const CAAU = /^https?:\/\/inspire\.ec\.europa\.eu\/metadata-codelist\/ConditionsApplyingToAccessAndUse\/\w+$/;
/** Commission Regulation (EU) No 1089/2010 (interoperability of spatial data sets and services), cited by title or ELI. */
const REG_1089 = /1089\s*\/\s*2010|eli\/reg\/2010\/1089/i;
const SERVICE_TYPES = ['discovery', 'view', 'download', 'transformation', 'invoke', 'other'];

const text = (el: XmlElement | undefined): string | undefined => val(el);
const nilReason = (el: XmlElement | undefined) =>
  Object.entries(el?.attrs ?? {}).find(([k]) => k === 'nilReason' || k.endsWith(':nilReason'))?.[1];
const href = (el: XmlElement | undefined) => el?.children.find((c) => c.name === 'Anchor')?.attrs['xlink:href'];

/** Every DQ_ConformanceResult of the record (in dataQualityInfo), in document order. */
export function conformityOf(md: XmlElement): Conformity[] {
  const out: Conformity[] = [];
  for (const dq of md.children.filter((c) => c.name === 'dataQualityInfo'))
    for (const cr of descendants(dq, 'DQ_ConformanceResult')) {
      const spec = kid(kid(cr, 'specification'), 'CI_Citation');
      const titleEl = kid(spec, 'title');
      const p = kid(cr, 'pass');
      const b = text(p);
      out.push({
        title: text(titleEl) ?? '',
        href: href(titleEl),
        date: text(kid(kid(kid(spec, 'date'), 'CI_Date'), 'date')),
        pass: b === 'true' || b === '1' ? true : b === 'false' || b === '0' ? false : null,
      });
    }
  return out;
}

/** A CI_ResponsibleParty with an organisation name, an e-mail address and a role (TG C.6, C.10). */
function partyProblems(rp: XmlElement | undefined): string[] {
  if (!rp) return ['no CI_ResponsibleParty'];
  const p: string[] = [];
  if (!text(kid(rp, 'organisationName'))) p.push('no organisationName');
  if (!descendants(rp, 'electronicMailAddress').some((e) => text(e))) p.push('no electronicMailAddress');
  if (!kid(kid(rp, 'role'), 'CI_RoleCode')?.attrs.codeListValue) p.push('no role (CI_RoleCode)');
  return p;
}

const INSPIRE_LABELS = new Set(
  [...Object.values(INSPIRE_THEMES), ...Object.values(INSPIRE_THEMES_EN)].map((l) => l.toLowerCase().normalize('NFC')),
);

/** The INSPIRE TG MD 2.0 checks of one gmd:MD_Metadata. */
export function inspireReport(md: XmlElement): QualityReport {
  const checks: QualityCheck[] = [];
  const check = (id: string, req: string | undefined, title: string, problem: string | null | undefined) =>
    checks.push({ id, ...(req ? { req } : {}), title, status: problem ? 'fail' : 'pass', ...(problem ? { detail: problem } : {}) });
  const level = kid(kid(md, 'hierarchyLevel'), 'MD_ScopeCode')?.attrs.codeListValue ?? '';
  const scope = level || 'dataset';
  const ident = kid(md, 'identificationInfo')?.children[0];
  const service = ident?.name === 'SV_ServiceIdentification' || scope === 'service';
  const datasetLike = !service && (scope === 'dataset' || scope === 'series');
  const citation = kid(kid(ident, 'citation'), 'CI_Citation');

  // common requirements
  check('root-element', 'C.2', 'Root element gmd:MD_Metadata', md.ns === GMD && md.name === 'MD_Metadata' ? null : `root is ${md.qname}`);
  const old = descendants(md, 'TimePeriod')
    .concat(descendants(md, 'TimeInstant'))
    .find((e) => e.ns === GML311);
  check(
    'xml-schema',
    'C.1',
    'Valid against the ISO/TS 19139:2007 schemas (GML 3.2)',
    old ? `${old.qname} is in the GML 3.1.1 namespace (ISO/TS 19139:2007 uses GML 3.2.1, http://www.opengis.net/gml/3.2)` : null,
  );
  const mdLang = kid(kid(md, 'language'), 'LanguageCode')?.attrs.codeListValue;
  check(
    'metadata-language-code',
    'C.5',
    'Metadata language (gmd:language/gmd:LanguageCode, ISO 639-2/B)',
    !mdLang ? 'no gmd:language/gmd:LanguageCode' : /^[a-z]{3}$/.test(mdLang) ? null : `'${mdLang}' is not an ISO 639-2/B code`,
  );
  const contacts = md.children.filter((c) => c.name === 'contact');
  const contactProblems = contacts.length ? contacts.map((c) => partyProblems(kid(c, 'CI_ResponsibleParty'))) : [['no gmd:contact']];
  check(
    'md-point-of-contact',
    'C.6',
    'Metadata point of contact with organisation name and e-mail',
    contactProblems.some((p) => p.length === 0) ? null : contactProblems[0].join(', '),
  );
  const stamp = text(kid(md, 'dateStamp'));
  check('md-date', 'C.7', 'Metadata date (gmd:dateStamp)', stamp ? null : 'no gmd:dateStamp');
  check('resource-title', 'C.8', 'Resource title', text(kid(citation, 'title')) ? null : 'no citation title');
  check('resource-abstract', 'C.9', 'Resource abstract', text(kid(ident, 'abstract')) ? null : 'no abstract');
  const pocs = (ident?.children ?? []).filter((c) => c.name === 'pointOfContact');
  const pocProblems = pocs.length ? pocs.map((c) => partyProblems(kid(c, 'CI_ResponsibleParty'))) : [['no gmd:pointOfContact']];
  check(
    'responsible-organisation',
    'C.10',
    'Responsible organisation with organisation name, e-mail and role',
    pocProblems.some((p) => p.length === 0) ? null : pocProblems[0].join(', '),
  );
  const dateTypes = citation
    ? descendants(citation, 'CI_Date').map((d) => kid(kid(d, 'dateType'), 'CI_DateTypeCode')?.attrs.codeListValue)
    : [];
  const temporal = ident ? descendants(ident, 'EX_TemporalExtent').length > 0 : false;
  check(
    'temporal-reference',
    'C.11',
    'Temporal reference (temporal extent, or date of publication, last revision or creation)',
    temporal || dateTypes.some((t) => t === 'publication' || t === 'revision' || t === 'creation')
      ? null
      : 'no temporal extent and no citation date',
  );
  check(
    'max-1-date-of-creation',
    'C.12',
    'Not more than one date of creation',
    dateTypes.filter((t) => t === 'creation').length > 1 ? 'several creation dates' : null,
  );
  check(
    'max-1-date-of-last-revision',
    'C.13',
    'Not more than one date of last revision',
    dateTypes.filter((t) => t === 'revision').length > 1 ? 'several revision dates' : null,
  );
  const legal = ident ? descendants(ident, 'MD_LegalConstraints') : [];
  const code = (lc: XmlElement, name: string) => kid(kid(lc, name), 'MD_RestrictionCode')?.attrs.codeListValue;
  const others = (lc: XmlElement) => lc.children.filter((c) => c.name === 'otherConstraints');
  const accessBlock = legal.find(
    (lc) => code(lc, 'accessConstraints') === 'otherRestrictions' && others(lc).some((o) => LOPA.test(href(o) ?? '')),
  );
  check(
    'limitations-on-public-access',
    'C.17',
    'Limitations on public access (MD_LegalConstraints, accessConstraints otherRestrictions, an INSPIRE LimitationsOnPublicAccess anchor)',
    accessBlock
      ? null
      : legal.some((lc) => code(lc, 'accessConstraints'))
        ? 'accessConstraints without an otherConstraints gmx:Anchor to http://inspire.ec.europa.eu/metadata-codelist/LimitationsOnPublicAccess/…'
        : 'no MD_LegalConstraints with accessConstraints',
  );
  const useBlock = legal.find(
    (lc) =>
      lc !== accessBlock &&
      (code(lc, 'useConstraints') === 'otherRestrictions' || code(lc, 'accessConstraints') === 'otherRestrictions') &&
      others(lc).some((o) => CAAU.test(href(o) ?? '') || Boolean(text(o))),
  );
  check(
    'conditions-for-access-and-use',
    'C.18',
    'Conditions applying to access and use (a second MD_LegalConstraints with otherRestrictions and its text or anchor)',
    useBlock ? null : 'no MD_LegalConstraints (other than the access one) with useConstraints otherRestrictions and otherConstraints',
  );
  const results = md.children.filter((c) => c.name === 'dataQualityInfo').flatMap((dq) => descendants(dq, 'DQ_ConformanceResult'));
  const conformity = conformityOf(md);
  check(
    'conformity',
    'C.20',
    'Conformity statement (DQ_DomainConsistency/DQ_ConformanceResult)',
    results.length ? null : 'no DQ_ConformanceResult',
  );
  const badSpec = conformity.find((c) => !c.title || !c.date);
  check(
    'conformity-specification',
    'C.21',
    'Conformity specification cited with title and date',
    !results.length
      ? 'no DQ_ConformanceResult'
      : badSpec
        ? `specification '${badSpec.title || '?'}' without ${badSpec.title ? 'date' : 'title'}`
        : null,
  );
  const badPass = results.find((r) => {
    const p = kid(r, 'pass');
    const b = text(p);
    return !(b === 'true' || b === 'false' || b === '1' || b === '0' || (p && nilReason(p) === 'unknown' && !b));
  });
  check(
    'conformity-degree',
    'C.22',
    'Degree of conformity (gmd:pass true/false, or nilReason "unknown" when not evaluated)',
    !results.length ? 'no DQ_ConformanceResult' : badPass ? 'a gmd:pass that is neither a gco:Boolean nor nilReason="unknown"' : null,
  );

  if (datasetLike || !service) {
    check(
      'resource-type',
      '1.1',
      'Resource type (gmd:hierarchyLevel dataset or series)',
      !level ? 'no gmd:hierarchyLevel' : datasetLike ? null : `hierarchyLevel '${level}' is not an INSPIRE resource type`,
    );
    const ids = (citation?.children ?? []).filter((c) => c.name === 'identifier').flatMap((c) => c.children);
    check(
      'dataset-uid',
      '1.3',
      'Unique resource identifier (citation identifier code)',
      ids.some((i) => text(kid(i, 'code'))) ? null : 'no citation identifier code',
    );
    const inspireKw = ident
      ? descendants(ident, 'MD_Keywords').filter((mk) =>
          /gemet.*inspire/i.test(text(kid(kid(kid(mk, 'thesaurusName'), 'CI_Citation'), 'title')) ?? ''),
        )
      : [];
    const themeOk = inspireKw.some((mk) =>
      mk.children
        .filter((c) => c.name === 'keyword')
        .some(
          (k) =>
            /inspire\.ec\.europa\.eu\/theme\/[a-z]{2}$/.test(href(k) ?? '') ||
            INSPIRE_LABELS.has((text(k) ?? '').toLowerCase().normalize('NFC')),
        ),
    );
    check(
      'inspire-theme-keyword',
      '1.4',
      "Keyword from 'GEMET - INSPIRE themes, version 1.0'",
      themeOk
        ? null
        : inspireKw.length
          ? 'a GEMET INSPIRE themes block whose keywords are not INSPIRE theme names'
          : 'no keyword block citing the GEMET INSPIRE themes thesaurus',
    );
    const resLang = ident
      ? ident.children.filter((c) => c.name === 'language').map((l) => kid(l, 'LanguageCode')?.attrs.codeListValue ?? text(l))
      : [];
    check(
      'resource-language',
      '1.6',
      'Resource language (ISO 639-2/B)',
      !resLang.length
        ? 'no resource language'
        : resLang.every((l) => l && (l in LANGUAGES || /^[a-z]{3}$/.test(l) || l === 'zxx'))
          ? null
          : `'${resLang[0]}' is not an ISO 639-2/B code`,
    );
    check(
      'topic-category',
      '1.7',
      'Topic category',
      ident && descendants(ident, 'MD_TopicCategoryCode').some((t) => t.text.trim()) ? null : 'no gmd:topicCategory',
    );
    const dist = kid(md, 'distributionInfo');
    check(
      'resource-locator',
      '1.8',
      'Resource locator (distribution online resource linkage; required when the resource is online)',
      dist && descendants(dist, 'linkage').some((l) => text(l)) ? null : 'no online resource linkage in distributionInfo',
    );
    check(
      'bounding-box',
      'C.19',
      'Geographic bounding box',
      ident && descendants(ident, 'EX_GeographicBoundingBox').length ? null : 'no EX_GeographicBoundingBox',
    );
    const inspireSpec = conformity.find((c) => REG_1089.test(`${c.title} ${c.href ?? ''}`));
    check(
      'conformity-1089-2010',
      '1.10',
      'Conformity to Commission Regulation (EU) No 1089/2010 declared',
      inspireSpec ? null : 'no DQ_ConformanceResult citing Regulation (EU) No 1089/2010',
    );
    const statements = md.children
      .filter((c) => c.name === 'dataQualityInfo')
      .flatMap((dq) => descendants(dq, 'LI_Lineage'))
      .map((l) => text(kid(l, 'statement')));
    check(
      'lineage',
      '1.11',
      'Lineage (exactly one non-empty LI_Lineage/statement)',
      statements.filter(Boolean).length === 1
        ? null
        : statements.filter(Boolean).length > 1
          ? 'several lineage statements'
          : 'no LI_Lineage/statement',
    );
  }
  if (service) {
    const st = text(kid(ident, 'serviceType'));
    check(
      'spatial-data-service-type',
      undefined,
      'Spatial data service type (srv:serviceType: discovery, view, download, transformation, invoke, other)',
      st && SERVICE_TYPES.includes(st)
        ? null
        : st
          ? `serviceType '${st}' is not an INSPIRE spatial data service type`
          : 'no srv:serviceType',
    );
    const dist = kid(md, 'distributionInfo');
    const connect = ident ? descendants(ident, 'connectPoint') : [];
    check(
      'resource-locator',
      undefined,
      'Resource locator of the service (distribution linkage or connect point)',
      (dist && descendants(dist, 'linkage').some((l) => text(l))) || connect.some((c) => descendants(c, 'linkage').length)
        ? null
        : 'no linkage',
    );
  }
  const failed = checks.filter((c) => c.status === 'fail').map((c) => c.id);
  return { profile: 'INSPIRE-TG-MD-2.0', scope, conformant: failed.length === 0, failed, checks };
}

/** One line per failure, for logs, CLI output and exception texts. */
export function failureLines(q: QualityReport): string[] {
  return q.checks.filter((c) => c.status === 'fail').map((c) => `${c.req ? `TG ${c.req} ` : ''}${c.id}: ${c.detail}`);
}
