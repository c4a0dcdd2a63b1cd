/**
 * The ISO AP queryable index of a gmd:MD_Metadata (OGC 07-045 §8.2 names; the core queryables
 * through the profile's mapping): part of the ISO 19139 schema module (iso.ts), kept apart so that
 * the harvester can index what it harvests without an import cycle.
 */
import type { XmlElement } from '../ows/xmldom.js';
import { IndexBuilder } from './queryables.js';

export function descendants(el: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    descendants(c, name, out);
  }
  return out;
}
export const kid = (el: XmlElement | undefined, name: string) => el?.children.find((c) => c.name === name);

/** Value of a wrapper: gco:CharacterString, gmx:Anchor, gmd:URL, gco:Date…, or a code list value. */
export function val(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  const inner = el.children.find((c) => c.text || c.attrs.codeListValue);
  const v = inner ? inner.attrs.codeListValue || inner.text : el.attrs.codeListValue || el.text;
  return v?.trim() || undefined;
}
const vals = (root: XmlElement | undefined, name: string) => (root ? descendants(root, name).map(val) : []);

function textsOf(el: XmlElement, out: string[] = []): string[] {
  if (el.text) out.push(el.text);
  for (const [k, v] of Object.entries(el.attrs)) if (/^(xlink:href|codeListValue|uuidref)$/.test(k)) out.push(v);
  for (const c of el.children) textsOf(c, out);
  return out;
}

/** The queryable index of an MD_Metadata (ISO AP names, and the core ones through the AP's mapping). */
/** `storeId`: the record's identifier in the store when it is not the fileIdentifier (harvested records). */
export function isoIndex(md: XmlElement, storeId?: string): Record<string, string[]> {
  const b = new IndexBuilder();
  b.add('identifier', storeId);
  const ident = kid(md, 'identificationInfo')?.children[0];
  const citation = kid(kid(ident, 'citation'), 'CI_Citation');
  b.add('identifier', val(kid(md, 'fileIdentifier')));
  b.add('parentidentifier', val(kid(md, 'parentIdentifier')));
  const levels = (md.children.filter((c) => c.name === 'hierarchyLevel').map(val) as string[]).filter(Boolean);
  b.add('type', ...(levels.length ? levels : ['dataset']));
  b.add('hierarchylevelname', ...md.children.filter((c) => c.name === 'hierarchyLevelName').map(val));
  b.add('language', val(kid(md, 'language')));
  b.add('modified', val(kid(md, 'dateStamp')));
  for (const rs of descendants(md, 'referenceSystemIdentifier')) b.add('crs', val(kid(kid(rs, 'RS_Identifier'), 'code')));
  b.add('organisationname', ...md.children.filter((c) => c.name === 'contact').flatMap((c) => vals(c, 'organisationName')));
  if (citation) {
    b.add('title', val(kid(citation, 'title')));
    b.add('alternatetitle', ...citation.children.filter((c) => c.name === 'alternateTitle').map(val));
    for (const cd of descendants(citation, 'CI_Date')) {
      const type = val(kid(cd, 'dateType'));
      const d = val(kid(cd, 'date'));
      if (type === 'revision') b.add('revisiondate', d);
      else if (type === 'creation') b.add('creationdate', d);
      else if (type === 'publication') b.add('publicationdate', d);
    }
    for (const id of kid(citation, 'identifier')?.children ?? []) {
      const code = val(kid(id, 'code'));
      const space = val(kid(id, 'codeSpace'));
      b.add('resourceidentifier', code, code && space ? (space.endsWith('/') ? space + code : `${space}/${code}`) : undefined);
    }
  }
  if (ident) {
    b.add('abstract', val(kid(ident, 'abstract')));
    for (const mk of descendants(ident, 'MD_Keywords')) {
      b.add('subject', ...mk.children.filter((c) => c.name === 'keyword').map(val));
      b.add('keywordtype', val(kid(mk, 'type')));
    }
    const topics = descendants(ident, 'MD_TopicCategoryCode').map((c) => c.text);
    b.add('topiccategory', ...topics);
    b.add('subject', ...topics);
    b.add('resourcelanguage', ...ident.children.filter((c) => c.name === 'language').map(val));
    for (const poc of ident.children.filter((c) => c.name === 'pointOfContact')) {
      const org = vals(poc, 'organisationName')[0] ?? vals(poc, 'individualName')[0];
      const role = vals(poc, 'role')[0] ?? vals(poc, 'CI_RoleCode')[0];
      b.add('organisationname', org);
      b.add('responsiblepartyrole', role);
      if (role === 'originator' || role === 'author' || role === 'owner') b.add('creator', org);
      else if (role === 'publisher' || role === 'distributor') b.add('publisher', org);
      else b.add('contributor', org);
    }
    b.add('accessconstraints', ...vals(ident, 'accessConstraints'));
    b.add('otherconstraints', ...vals(ident, 'otherConstraints'));
    b.add('classification', ...vals(ident, 'classification'));
    b.add('rights', ...vals(ident, 'useLimitation'), ...vals(ident, 'otherConstraints'));
    b.add('hassecurityconstraints', descendants(ident, 'MD_SecurityConstraints').length ? 'true' : 'false');
    b.add('denominator', ...vals(ident, 'denominator'));
    for (const dist of descendants(ident, 'distance')) {
      const d = dist.children.find((c) => c.name === 'Distance');
      b.add('distancevalue', d?.text);
      b.add('distanceuom', d?.attrs.uom);
    }
    for (const gd of descendants(ident, 'EX_GeographicDescription')) b.add('geographicdescriptioncode', ...vals(gd, 'code'));
    const period = descendants(ident, 'TimePeriod')[0];
    b.add('tempextent_begin', kid(period, 'beginPosition')?.text ?? kid(kid(kid(period, 'begin'), 'TimeInstant'), 'timePosition')?.text);
    b.add('tempextent_end', kid(period, 'endPosition')?.text ?? kid(kid(kid(period, 'end'), 'TimeInstant'), 'timePosition')?.text);
    if (ident.name === 'SV_ServiceIdentification') {
      b.add('servicetype', val(kid(ident, 'serviceType')));
      b.add('servicetypeversion', ...ident.children.filter((c) => c.name === 'serviceTypeVersion').map(val));
      b.add('couplingtype', val(kid(ident, 'couplingType')));
      b.add('operation', ...vals(ident, 'operationName'));
      const on = ident.children.filter((c) => c.name === 'operatesOn');
      b.add('operateson', ...on.map((o) => o.attrs.uuidref || o.attrs['xlink:href']));
      b.add('relation', ...on.map((o) => o.attrs.uuidref || o.attrs['xlink:href']));
      b.add('operatesonname', ...on.map((o) => o.attrs['xlink:title']));
    }
  }
  const dist = kid(md, 'distributionInfo');
  if (dist) {
    for (const f of descendants(dist, 'MD_Format')) b.add('format', val(kid(f, 'name')));
    b.add('references', ...vals(dist, 'linkage'));
  }
  const dq = kid(md, 'dataQualityInfo');
  if (dq) {
    b.add('lineage', ...vals(dq, 'statement'));
    b.add('source', ...vals(dq, 'statement'));
    for (const cr of descendants(dq, 'DQ_ConformanceResult')) {
      const spec = kid(kid(cr, 'specification'), 'CI_Citation');
      b.add('specificationtitle', val(kid(spec, 'title')));
      for (const cd of spec ? descendants(spec, 'CI_Date') : []) {
        b.add('specificationdate', val(kid(cd, 'date')));
        b.add('specificationdatetype', val(kid(cd, 'dateType')));
      }
      b.add('degree', val(kid(cr, 'pass')));
    }
  }
  return b.done(textsOf(md));
}
