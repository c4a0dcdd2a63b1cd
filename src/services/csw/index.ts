/**
 * CSW 2.0.2 (OGC 07-006r1) with the ISO Application Profile queryables (OGC 07-045):
 * GetCapabilities, DescribeRecord, GetRecords, GetRecordById, GetDomain — KVP and POST XML; the
 * publication operations Transaction (transaction.ts) and Harvest (harvest.ts), admin only.
 * Output schemas: csw:Record (Dublin Core), ISO 19139 (gmd), DCAT (each record a self-contained
 * rdf:RDF, as udata's csw-dcat harvester reads them; also under the GeoDCAT-AP URI).
 */
import {
  writeDcp,
  writeFilterCapabilities11,
  writeServiceIdentification,
  writeServiceProvider,
  writeValues10,
} from '../../ows/capabilities.js';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { registerOwsService, type OwsRequest } from '../../ows/service.js';
import { OwsException } from '../../ows/exceptions.js';
import { kvpList, parseIntParam, required } from '../../ows/kvp.js';
import { XmlWriter } from '../../ows/xml.js';
import type { XmlElement } from '../../ows/xmldom.js';
import { parseFesFilter } from '../../filter/fes.js';
import { parseXml } from '../../ows/xmldom.js';
import { checkFilterNs } from './filterns.js';
import { echoElement } from './echo.js';
import { parseCql2Text } from '../../filter/cql2.js';
import { FilterError } from '../../filter/errors.js';
import type { FilterNode } from '../../filter/ast.js';
import { ensureCatalogReady } from '../../catalog/sync.js';
import { bodyBytes } from '../../catalog/search-cache.js';
import { cachedSearch } from '../../catalog/search.js';
import {
  APISO_QUERYABLES,
  CORE_QUERYABLES,
  compileCatalogFilter,
  getRecords,
  queryableFor,
  valuesSql,
  sortKeyFor,
  type SortKey,
} from '../../catalog/query.js';
import { writeDcRecord, CSW_NS } from '../../catalog/dc.js';
import { writeIsoRecord, GMD_NS, ISO_NAMESPACES, sourceIsoDocument } from '../../catalog/iso.js';
import { APISO_ADDITIONAL_QUERYABLES } from '../../catalog/queryables.js';
import { writeDcatRecord } from '../../catalog/crosswalk.js';
import { dcatDefaults } from '../../catalog/dcat.js';
import { registerCatalogRoutes } from '../../catalog/routes.js';
import { registerHarvesting } from '../../catalog/schedule.js';
import { transactionOp, adminTokenConfigured } from './transaction.js';
import { harvestOp, HARVEST_RESOURCE_FORMATS, HARVEST_RESOURCE_TYPES } from './harvest.js';
import { serviceIdentifier } from '../../catalog/derive.js';
import { schemaOf } from '../../catalog/store.js';
import type { CatalogRecord } from '../../catalog/model.js';

const DCAT_NS = 'http://www.w3.org/ns/dcat#';
const GEODCAT_NS = 'http://data.europa.eu/930/';
const OUTPUT_SCHEMAS = [CSW_NS, GMD_NS, DCAT_NS, GEODCAT_NS];
const TYPENAMES = ['csw:Record', 'gmd:MD_Metadata'];
const MAX_RECORDS_CAP = 1000;

const ROOT_NS = {
  'xmlns:csw': CSW_NS,
  'xmlns:dc': 'http://purl.org/dc/elements/1.1/',
  'xmlns:dct': 'http://purl.org/dc/terms/',
  'xmlns:ows': 'http://www.opengis.net/ows',
  'xmlns:ogc': 'http://www.opengis.net/ogc',
  'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
};

type ElementSet = 'brief' | 'summary' | 'full';

interface RecordsQuery {
  typeNames: string[];
  outputSchema: string;
  elementSet: ElementSet;
  elementNames: string[];
  filter: FilterNode | null;
  sort: SortKey[];
  startPosition: number;
  maxRecords: number;
  resultType: 'hits' | 'results' | 'validate';
}

function send(req: OwsRequest, body: string | Buffer, type = 'application/xml; charset=UTF-8') {
  return req.reply.code(200).type(type).send(body);
}

function checkOutputFormat(v: string | undefined): void {
  if (v && !/^(application|text)\/xml/i.test(v))
    throw new OwsException('InvalidParameterValue', `outputFormat '${v}' is not supported (application/xml)`, 'outputFormat');
}

function checkOutputSchema(v: string | undefined): string {
  if (!v) return CSW_NS;
  const s = v.trim();
  if (s === 'csw:Record' || s === 'csw:IsoRecord' || s === 'http://www.isotc211.org/2005/gmd/') return s === 'csw:Record' ? CSW_NS : GMD_NS;
  if (!OUTPUT_SCHEMAS.includes(s))
    throw new OwsException('InvalidParameterValue', `outputSchema '${v}' is not supported (${OUTPUT_SCHEMAS.join(', ')})`, 'outputSchema');
  return s;
}

function checkTypeNames(names: string[], locator = 'typeNames'): string[] {
  if (!names.length) throw new OwsException('MissingParameterValue', "missing parameter 'typeNames'", locator);
  for (const n of names) {
    const local = n.replace(/^[^:]*:/, '');
    if (local !== 'Record' && local !== 'MD_Metadata')
      throw new OwsException('InvalidParameterValue', `typeName '${n}' is not offered (${TYPENAMES.join(', ')})`, locator);
  }
  return names;
}

function checkElementSet(v: string | undefined, dflt: ElementSet): ElementSet {
  if (!v) return dflt;
  const s = v.trim().toLowerCase();
  if (s !== 'brief' && s !== 'summary' && s !== 'full')
    throw new OwsException('InvalidParameterValue', `ElementSetName '${v}' must be brief, summary or full`, 'ElementSetName');
  return s;
}

function filterError(e: unknown): never {
  if (e instanceof FilterError)
    throw new OwsException(
      e.code === 'OperationParsingFailed' ? 'InvalidParameterValue' : 'InvalidParameterValue',
      e.message,
      'Constraint',
    );
  throw e;
}

/** Add namespace declarations commonly omitted in KVP filters. */
function withDefaultNamespaces(xml: string): string {
  const decl: Record<string, string> = {
    ogc: 'http://www.opengis.net/ogc',
    gml: 'http://www.opengis.net/gml',
    csw: CSW_NS,
    dc: 'http://purl.org/dc/elements/1.1/',
    dct: 'http://purl.org/dc/terms/',
    apiso: 'http://www.opengis.net/cat/csw/apiso/1.0',
    ows: 'http://www.opengis.net/ows',
  };
  return xml.replace(/^(\s*(?:<\?xml[^>]*\?>\s*)?<[\w:.-]+)/, (m) => {
    let extra = '';
    for (const [p, ns] of Object.entries(decl)) if (!new RegExp(`xmlns:${p}\\s*=`).test(xml)) extra += ` xmlns:${p}="${ns}"`;
    if (/^\s*(?:<\?xml[^>]*\?>\s*)?<Filter\b/.test(xml) && !/xmlns\s*=/.test(xml)) extra += ` xmlns="http://www.opengis.net/ogc"`;
    return m + extra;
  });
}

const ISO_TIME = String.raw`\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?`;

/**
 * Legacy OGC CQL (as GeoServer's ECQL and pycsw read it) → CQL2: BBOX(prop, minx, miny, maxx, maxy)
 * → S_INTERSECTS(prop, BBOX(…)); `prop AFTER t`, `prop BEFORE t`, `prop DURING t1/t2` (bare ISO
 * 8601 times) → T_AFTER / T_BEFORE / T_DURING.
 */
function cqlText(s: string): FilterNode {
  const t = s
    .replace(
      /\bBBOX\s*\(\s*([\w:.]+)\s*,\s*([^,()]+),([^,()]+),([^,()]+),([^,()]+?)(?:,\s*'[^']*')?\s*\)/gi,
      'S_INTERSECTS($1, BBOX($2,$3,$4,$5))',
    )
    .replace(new RegExp(String.raw`([\w:.]+)\s+DURING\s+(${ISO_TIME})\s*/\s*(${ISO_TIME})`, 'gi'), "T_DURING($1, INTERVAL('$2', '$3'))")
    .replace(
      new RegExp(String.raw`([\w:.]+)\s+(AFTER|BEFORE)\s+(${ISO_TIME})`, 'gi'),
      (_m, prop: string, op: string, time: string) =>
        `T_${op.toUpperCase()}(${prop}, ${time.includes('T') ? 'TIMESTAMP' : 'DATE'}('${time}'))`,
    );
  return parseCql2Text(t);
}

function parseConstraint(lang: string | undefined, text: string): FilterNode {
  const l = (lang ?? '').toUpperCase();
  try {
    if (l === 'CQL_TEXT' || l === 'CQL') return cqlText(text);
    if (l === 'FILTER' || (!l && text.trim().startsWith('<'))) {
      let el: XmlElement;
      try {
        el = parseXml(withDefaultNamespaces(text));
      } catch (e) {
        throw new OwsException('InvalidParameterValue', `CONSTRAINT is not well-formed XML: ${(e as Error).message}`, 'Constraint');
      }
      return parseFesFilter(checkFilterNs(el), { version: '1.1' });
    }
    if (!l) return cqlText(text);
  } catch (e) {
    filterError(e);
  }
  throw new OwsException('InvalidParameterValue', `CONSTRAINTLANGUAGE '${lang}' must be FILTER or CQL_TEXT`, 'constraintLanguage');
}

function parseSortKvp(v: string | undefined): SortKey[] {
  if (!v) return [];
  return kvpList(v).map((item) => {
    const m = item.match(/^(.+?)(?::(A|D|ASC|DESC))?$/i);
    if (!m) throw new OwsException('InvalidParameterValue', `SortBy item '${item}' is not property[:A|:D]`, 'sortBy');
    try {
      return sortKeyFor(m[1], /^d/i.test(m[2] ?? 'A'));
    } catch (e) {
      if (e instanceof FilterError) throw new OwsException('InvalidParameterValue', e.message, 'sortBy');
      throw e;
    }
  });
}

function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

function kvpRecordsQuery(req: OwsRequest): RecordsQuery {
  const k = req.kvp;
  checkOutputFormat(k.OUTPUTFORMAT);
  const typeNames = checkTypeNames(kvpList(required(k, 'typeNames')));
  const elementNames = kvpList(k.ELEMENTNAME);
  if (elementNames.length && k.ELEMENTSETNAME)
    throw new OwsException('InvalidParameterValue', 'ElementSetName and ElementName are mutually exclusive', 'ElementName');
  let filter: FilterNode | null = null;
  if (k.CONSTRAINT) {
    if (!k.CONSTRAINTLANGUAGE)
      throw new OwsException('MissingParameterValue', "parameter 'CONSTRAINTLANGUAGE' is required with CONSTRAINT", 'constraintLanguage');
    filter = parseConstraint(k.CONSTRAINTLANGUAGE, k.CONSTRAINT);
  }
  const rt = (k.RESULTTYPE ?? 'hits').toLowerCase();
  if (rt !== 'hits' && rt !== 'results' && rt !== 'validate')
    throw new OwsException('InvalidParameterValue', `resultType '${k.RESULTTYPE}' must be hits, results or validate`, 'resultType');
  return {
    typeNames,
    outputSchema: checkOutputSchema(k.OUTPUTSCHEMA),
    elementSet: checkElementSet(k.ELEMENTSETNAME, 'summary'),
    elementNames,
    filter,
    sort: parseSortKvp(k.SORTBY),
    startPosition: parseIntParam(k, 'startPosition', { min: 1 }) ?? 1,
    maxRecords: parseIntParam(k, 'maxRecords', { min: 0 }) ?? 10,
    resultType: rt,
  };
}

function xmlRecordsQuery(x: XmlElement): RecordsQuery {
  checkOutputFormat(x.attrs.outputFormat);
  const q = child(x, 'Query');
  if (!q) throw new OwsException('MissingParameterValue', 'GetRecords needs a csw:Query', 'Query');
  const typeNames = checkTypeNames((q.attrs.typeNames ?? '').split(/\s+/).filter(Boolean), 'typeNames');
  const esn = child(q, 'ElementSetName');
  const elementNames = q.children.filter((c) => c.name === 'ElementName').map((c) => c.text);
  let filter: FilterNode | null = null;
  const constraint = child(q, 'Constraint');
  if (constraint) {
    const f = child(constraint, 'Filter');
    const cql = child(constraint, 'CqlText');
    try {
      if (f) filter = parseFesFilter(checkFilterNs(f), { version: '1.1' });
      else if (cql) filter = cqlText(cql.text);
      else throw new OwsException('MissingParameterValue', 'csw:Constraint needs an ogc:Filter or a csw:CqlText', 'Constraint');
    } catch (e) {
      filterError(e);
    }
  }
  const sort: SortKey[] = [];
  const sortBy = child(q, 'SortBy');
  for (const sp of sortBy?.children.filter((c) => c.name === 'SortProperty') ?? []) {
    const pn = child(sp, 'PropertyName')?.text;
    if (!pn) throw new OwsException('InvalidParameterValue', 'SortProperty without PropertyName', 'SortBy');
    try {
      sort.push(sortKeyFor(pn, /^desc$/i.test(child(sp, 'SortOrder')?.text ?? 'ASC')));
    } catch (e) {
      if (e instanceof FilterError) throw new OwsException('InvalidParameterValue', e.message, 'SortBy');
      throw e;
    }
  }
  const num = (name: string, dflt: number, min: number) => {
    const v = x.attrs[name];
    if (v === undefined || v === '') return dflt;
    if (!/^\d+$/.test(v.trim()) || Number(v) < min)
      throw new OwsException('InvalidParameterValue', `${name} must be an integer ≥ ${min}, got '${v}'`, name);
    return Number(v);
  };
  const rt = (x.attrs.resultType ?? 'hits').toLowerCase();
  if (rt !== 'hits' && rt !== 'results' && rt !== 'validate')
    throw new OwsException('InvalidParameterValue', `resultType '${x.attrs.resultType}' must be hits, results or validate`, 'resultType');
  return {
    typeNames,
    outputSchema: checkOutputSchema(x.attrs.outputSchema),
    elementSet: checkElementSet(esn?.text, 'summary'),
    elementNames,
    filter,
    sort,
    startPosition: num('startPosition', 1, 1),
    maxRecords: num('maxRecords', 10, 0),
    resultType: rt,
  };
}

function fallbackOrg(ctx: AppContext): string {
  return ctx.config.service.contact.organisation || ctx.config.service.title;
}

/** Write records in the requested schema into `w` (inside SearchResults or GetRecordByIdResponse). */
function writeRecords(
  w: XmlWriter,
  records: CatalogRecord[],
  q: { outputSchema: string; elementSet: ElementSet; elementNames: string[] },
  req: OwsRequest,
): void {
  for (const r of records) {
    const iso = q.outputSchema === GMD_NS && !q.elementNames.length && q.elementSet === 'full' ? sourceIsoDocument(r) : null;
    if (iso) w.raw(iso);
    else if (q.outputSchema === GMD_NS)
      writeIsoRecord(w, r, {
        base: req.baseUrl,
        elementSet: q.elementNames.length ? 'full' : q.elementSet,
        fallbackOrganisation: fallbackOrg(req.ctx),
      });
    else if (q.outputSchema === DCAT_NS || q.outputSchema === GEODCAT_NS) writeDcatRecord(w, r, req.baseUrl, dcatDefaults(req.ctx.config));
    else writeDcRecord(w, r, q.elementSet, req.baseUrl, q.elementNames);
  }
}

function rootAttrs(schemaLoc: string): Record<string, string> {
  return { ...ROOT_NS, 'xsi:schemaLocation': `${CSW_NS} ${schemaLoc}` };
}

async function getRecordsOp(req: OwsRequest) {
  const q = req.xml ? xmlRecordsQuery(req.xml) : kvpRecordsQuery(req);
  const params: unknown[] = [];
  const where: string[] = [];
  if (q.filter) {
    try {
      where.push(compileCatalogFilter(q.filter, params, schemaOf(req.ctx)));
    } catch (e) {
      filterError(e);
    }
  }
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (q.resultType === 'validate') {
    const w = new XmlWriter();
    w.start('csw:Acknowledgement', { ...rootAttrs('http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd'), timeStamp: now });
    w.start('csw:EchoedRequest');
    if (req.xml) echoElement(w, req.xml);
    else {
      w.start('csw:GetRecords', { service: 'CSW', version: '2.0.2', resultType: 'validate', outputSchema: q.outputSchema });
      w.start('csw:Query', { typeNames: q.typeNames.join(' ') });
      if (q.elementNames.length) for (const n of q.elementNames) w.el('csw:ElementName', n);
      else w.el('csw:ElementSetName', q.elementSet);
      w.end().end();
    }
    w.end().end();
    return send(req, w.toString());
  }
  await ensureCatalogReady(req.ctx);
  const maxRecords = Math.min(q.maxRecords, MAX_RECORDS_CAP);
  const limit = q.resultType === 'hits' ? 0 : maxRecords;
  const res = await cachedSearch(
    req.ctx,
    { where, params, sort: q.sort, offset: q.startPosition - 1, limit },
    [{ ...q, filter: undefined }, req.baseUrl],
    (records) => {
      const rw = new XmlWriter({ declaration: false });
      writeRecords(rw, records, q, req);
      return rw.toString();
    },
  );
  const returned = res.returned;
  const last = q.startPosition - 1 + returned;
  // hits: the record a results request of the same page size would continue with (as pycsw and GeoNetwork)
  const pageEnd = q.startPosition - 1 + Math.min(maxRecords, Math.max(0, res.matched - q.startPosition + 1));
  const nextRecord =
    q.resultType === 'hits'
      ? pageEnd >= res.matched || maxRecords === 0
        ? 0
        : pageEnd + 1
      : last >= res.matched || returned === 0
        ? 0
        : last + 1;
  const w = new XmlWriter();
  const extraNs = q.outputSchema === GMD_NS ? ISO_NAMESPACES : {};
  w.start('csw:GetRecordsResponse', {
    ...rootAttrs('http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd'),
    ...extraNs,
    version: '2.0.2',
  });
  w.el('csw:SearchStatus', { timestamp: now });
  w.start('csw:SearchResults', {
    numberOfRecordsMatched: res.matched,
    numberOfRecordsReturned: returned,
    nextRecord,
    recordSchema: q.outputSchema,
    elementSet: q.elementNames.length ? undefined : q.elementSet,
  });
  if (!res.body) {
    w.end().end();
    return send(req, w.toString());
  }
  // the envelope around the records' bytes, kept encoded with the cached answer (no re-encoding on a hit)
  w.raw('\u0000');
  const [head, tail] = w.toString().split('\u0000');
  return send(req, Buffer.concat([Buffer.from(head, 'utf8'), bodyBytes(res), Buffer.from(tail, 'utf8')]));
}

async function getRecordByIdOp(req: OwsRequest) {
  let ids: string[];
  let outputSchema: string;
  let elementSet: ElementSet;
  if (req.xml) {
    checkOutputFormat(req.xml.attrs.outputFormat);
    ids = req.xml.children.filter((c) => c.name === 'Id').map((c) => c.text);
    outputSchema = checkOutputSchema(req.xml.attrs.outputSchema);
    elementSet = checkElementSet(child(req.xml, 'ElementSetName')?.text, 'summary');
  } else {
    checkOutputFormat(req.kvp.OUTPUTFORMAT);
    ids = kvpList(required(req.kvp, 'Id'));
    outputSchema = checkOutputSchema(req.kvp.OUTPUTSCHEMA);
    elementSet = checkElementSet(req.kvp.ELEMENTSETNAME, 'summary');
  }
  if (!ids.length) throw new OwsException('MissingParameterValue', "missing parameter 'Id'", 'Id');
  await ensureCatalogReady(req.ctx);
  const records = await getRecords(req.ctx.pool, ids, schemaOf(req.ctx));
  const w = new XmlWriter();
  w.start('csw:GetRecordByIdResponse', {
    ...rootAttrs('http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd'),
    ...(outputSchema === GMD_NS ? ISO_NAMESPACES : {}),
  });
  writeRecords(w, records, { outputSchema, elementSet, elementNames: [] }, req);
  w.end();
  return send(req, w.toString());
}

/** XML Schema, as CSW 2.0.2 names it (http://www.w3.org/XML/Schema) and as earlier drafts / clients do. */
const XML_SCHEMA_LANGUAGE = /^(XMLSCHEMA|http:\/\/www\.w3\.org\/XML\/Schema|http:\/\/www\.w3\.org\/2001\/XMLSchema)$/i;

async function describeRecordOp(req: OwsRequest) {
  let names: string[];
  if (req.xml) {
    names = req.xml.children.filter((c) => c.name === 'TypeName').map((c) => c.text);
    const lang = req.xml.attrs.schemaLanguage;
    if (lang && !XML_SCHEMA_LANGUAGE.test(lang.trim()))
      throw new OwsException('InvalidParameterValue', `schemaLanguage '${lang}' is not supported`, 'schemaLanguage');
  } else {
    names = kvpList(req.kvp.TYPENAME);
    const lang = req.kvp.SCHEMALANGUAGE;
    if (lang && !XML_SCHEMA_LANGUAGE.test(lang.trim()))
      throw new OwsException('InvalidParameterValue', `schemaLanguage '${lang}' is not supported`, 'schemaLanguage');
  }
  if (!names.length) names = [...TYPENAMES];
  checkTypeNames(names, 'TypeName');
  const w = new XmlWriter();
  w.start('csw:DescribeRecordResponse', rootAttrs('http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd'));
  for (const n of names) {
    const iso = n.endsWith('MD_Metadata');
    const tns = iso ? GMD_NS : CSW_NS;
    w.start('csw:SchemaComponent', { targetNamespace: tns, schemaLanguage: 'http://www.w3.org/XML/Schema' });
    w.start('xsd:schema', {
      'xmlns:xsd': 'http://www.w3.org/2001/XMLSchema',
      targetNamespace: tns,
      elementFormDefault: 'qualified',
      version: iso ? '2007-04-17' : '2.0.2',
    });
    w.el('xsd:include', {
      schemaLocation: iso ? 'http://schemas.opengis.net/iso/19139/20070417/gmd/gmd.xsd' : 'http://schemas.opengis.net/csw/2.0.2/record.xsd',
    });
    w.end().end();
  }
  w.end();
  return send(req, w.toString());
}

const DOMAIN_LIST: [string, string[]][] = [
  ['GetRecords.resultType', ['hits', 'results', 'validate']],
  ['GetRecords.outputSchema', OUTPUT_SCHEMAS],
  ['GetRecords.typeNames', TYPENAMES],
  ['GetRecords.ElementSetName', ['brief', 'summary', 'full']],
  ['GetRecords.CONSTRAINTLANGUAGE', ['FILTER', 'CQL_TEXT']],
  ['GetRecords.outputFormat', ['application/xml']],
  ['GetRecordById.outputSchema', OUTPUT_SCHEMAS],
  ['GetRecordById.ElementSetName', ['brief', 'summary', 'full']],
  ['DescribeRecord.typeName', TYPENAMES],
  ['DescribeRecord.schemaLanguage', ['http://www.w3.org/XML/Schema']],
  ['Harvest.ResourceType', HARVEST_RESOURCE_TYPES],
  ['Harvest.ResourceFormat', HARVEST_RESOURCE_FORMATS],
];
const DOMAIN_PARAMETERS: Record<string, string[]> = Object.fromEntries(DOMAIN_LIST.map(([k, v]) => [k.toLowerCase(), v]));

async function getDomainOp(req: OwsRequest) {
  let param: string | undefined;
  let prop: string | undefined;
  if (req.xml) {
    param = child(req.xml, 'ParameterName')?.text;
    prop = child(req.xml, 'PropertyName')?.text;
  } else {
    param = req.kvp.PARAMETERNAME;
    prop = req.kvp.PROPERTYNAME;
  }
  if (!param && !prop)
    throw new OwsException('MissingParameterValue', "GetDomain needs 'ParameterName' or 'PropertyName'", 'ParameterName');
  const w = new XmlWriter();
  w.start('csw:GetDomainResponse', rootAttrs('http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd'));
  for (const p of kvpList(param)) {
    const values = DOMAIN_PARAMETERS[p.toLowerCase()];
    if (!values)
      throw new OwsException(
        'InvalidParameterValue',
        `unknown parameter '${p}' (e.g. GetRecords.resultType, GetRecords.outputSchema)`,
        'ParameterName',
      );
    w.start('csw:DomainValues', { type: 'csw:Record' }).el('csw:ParameterName', p).start('csw:ListOfValues');
    for (const v of values) w.el('csw:Value', v);
    w.end().end();
  }
  if (prop) {
    await ensureCatalogReady(req.ctx);
    for (const p of kvpList(prop)) {
      let q;
      try {
        q = queryableFor(p, 'PropertyName');
      } catch (e) {
        if (e instanceof FilterError) throw new OwsException('InvalidParameterValue', e.message, 'PropertyName');
        throw e;
      }
      if (q.kind === 'geometry' || q.kind === 'fulltext' || q.kind === 'interval')
        throw new OwsException('InvalidParameterValue', `no value list for '${p}'`, 'PropertyName');
      const r = await req.ctx.pool.query<{ v: string }>(
        `SELECT DISTINCT v FROM (SELECT ${valuesSql(q)} AS v FROM ${schemaOf(req.ctx)}.records) s WHERE v IS NOT NULL AND v <> '' ORDER BY v LIMIT 1000`,
      );
      w.start('csw:DomainValues', { type: 'csw:Record' }).el('csw:PropertyName', p).start('csw:ListOfValues');
      for (const row of r.rows) w.el('csw:Value', row.v);
      w.end().end();
    }
  }
  w.end();
  return send(req, w.toString());
}

const SECTIONS = ['ServiceIdentification', 'ServiceProvider', 'OperationsMetadata', 'Filter_Capabilities'];

async function getCapabilitiesOp(req: OwsRequest) {
  const { ctx, baseUrl } = req;
  const svc = ctx.config.service;
  let sections = SECTIONS;
  const raw = req.xml
    ? child(req.xml, 'Sections')
        ?.children.map((c) => c.text)
        .join(',')
    : req.kvp.SECTIONS;
  if (raw) {
    const asked = kvpList(raw);
    if (!asked.some((s) => s.toLowerCase() === 'all')) {
      for (const s of asked)
        if (!SECTIONS.some((x) => x.toLowerCase() === s.toLowerCase()))
          throw new OwsException('InvalidParameterValue', `unknown section '${s}'`, 'sections');
      sections = SECTIONS.filter((x) => asked.some((s) => s.toLowerCase() === x.toLowerCase()));
      // the CSW 2.0.2 schema makes ogc:Filter_Capabilities mandatory in every capabilities document
      if (!sections.includes('Filter_Capabilities')) sections = [...sections, 'Filter_Capabilities'];
    }
  }
  const formats = req.xml ? (child(req.xml, 'AcceptFormats')?.children.map((c) => c.text) ?? []) : kvpList(req.kvp.ACCEPTFORMATS ?? '');
  if (formats.length && !formats.some((f) => /^(application|text)\/xml\b/i.test(f.trim())))
    throw new OwsException(
      'InvalidParameterValue',
      `acceptFormats '${formats.join(',')}': capabilities are offered as text/xml and application/xml only`,
      'acceptFormats',
    );
  const href = `${baseUrl}/csw`;
  const w = new XmlWriter();
  const inspire = svc.inspire;
  const attrs: Record<string, string> = {
    ...rootAttrs('http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd'),
    'xmlns:xlink': 'http://www.w3.org/1999/xlink',
    version: '2.0.2',
  };
  if (inspire) {
    attrs['xmlns:inspire_ds'] = 'http://inspire.ec.europa.eu/schemas/inspire_ds/1.0';
    attrs['xmlns:inspire_common'] = 'http://inspire.ec.europa.eu/schemas/common/1.0';
    attrs['xsi:schemaLocation'] +=
      ' http://inspire.ec.europa.eu/schemas/inspire_ds/1.0 http://inspire.ec.europa.eu/schemas/inspire_ds/1.0/inspire_ds.xsd';
  }
  w.start('csw:Capabilities', attrs);
  if (sections.includes('ServiceIdentification')) {
    writeServiceIdentification(w, svc, { type: 'CSW', versions: ['2.0.2'], keywords: ['CSW', 'catalogue', 'DCAT', 'ISO 19139'] });
  }
  if (sections.includes('ServiceProvider')) writeServiceProvider(w, svc, baseUrl);
  if (sections.includes('OperationsMetadata')) {
    w.start('ows:OperationsMetadata');
    const op = (name: string, params: Record<string, string[]>, post = true) => {
      w.start('ows:Operation', { name });
      writeDcp(w, href, post);
      for (const [p, vals] of Object.entries(params)) writeValues10(w, p, vals);
      if (name === 'GetRecords') {
        writeValues10(w, 'SupportedISOQueryables', APISO_QUERYABLES, 'ows:Constraint');
        writeValues10(w, 'AdditionalQueryables', [...APISO_ADDITIONAL_QUERYABLES, ...CORE_QUERYABLES], 'ows:Constraint');
      }
      w.end();
    };
    op('GetCapabilities', { sections: SECTIONS });
    op('DescribeRecord', { typeName: TYPENAMES, outputFormat: ['application/xml'], schemaLanguage: ['http://www.w3.org/XML/Schema'] });
    op('GetRecords', {
      resultType: ['hits', 'results', 'validate'],
      outputFormat: ['application/xml'],
      outputSchema: OUTPUT_SCHEMAS,
      typeNames: TYPENAMES,
      CONSTRAINTLANGUAGE: ['FILTER', 'CQL_TEXT'],
      ElementSetName: ['brief', 'summary', 'full'],
    });
    op('GetRecordById', { outputSchema: OUTPUT_SCHEMAS, outputFormat: ['application/xml'], ElementSetName: ['brief', 'summary', 'full'] });
    op('GetDomain', { ParameterName: DOMAIN_LIST.map(([k]) => k) });
    if (adminTokenConfigured()) {
      op('Transaction', { typeNames: TYPENAMES });
      op('Harvest', { ResourceType: HARVEST_RESOURCE_TYPES, ResourceFormat: HARVEST_RESOURCE_FORMATS });
    }
    writeValues10(w, 'service', ['CSW']);
    writeValues10(w, 'version', ['2.0.2']);
    writeValues10(w, 'MaxRecordDefault', [MAX_RECORDS_CAP], 'ows:Constraint');
    if (inspire) {
      const lang = inspire.language ?? (svc.language || 'fre');
      const md =
        inspire.metadataUrl ??
        `${baseUrl}/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${encodeURIComponent(serviceIdentifier(ctx, 'CSW'))}&OUTPUTSCHEMA=${encodeURIComponent(GMD_NS)}&ELEMENTSETNAME=full`;
      w.start('inspire_ds:ExtendedCapabilities');
      w.start('inspire_common:MetadataUrl')
        .el('inspire_common:URL', md)
        .el('inspire_common:MediaType', 'application/vnd.iso.19139+xml')
        .end();
      w.start('inspire_common:SupportedLanguages').start('inspire_common:DefaultLanguage').el('inspire_common:Language', lang).end().end();
      w.start('inspire_common:ResponseLanguage').el('inspire_common:Language', lang).end();
      w.end();
    }
    w.end();
  }
  if (sections.includes('Filter_Capabilities')) {
    writeFilterCapabilities11(w, {
      spatialOperators: ['BBOX', 'Intersects', 'Within', 'Contains', 'Disjoint', 'Equals', 'Touches', 'Crosses', 'Overlaps'],
      arithmetic: false,
      gmlNamespace: 'http://www.opengis.net/gml',
    });
  }
  w.end();
  return send(req, w.toString());
}

/** Registers CSW on the OWS dispatcher and the /catalog REST routes (DCAT, JSON search). */
export async function registerCatalogue(app: FastifyInstance, ctx: AppContext): Promise<void> {
  registerOwsService({
    name: 'CSW',
    versions: ['2.0.2'],
    requireService: true,
    negotiation: 'ows',
    operations: {
      GetCapabilities: getCapabilitiesOp,
      DescribeRecord: describeRecordOp,
      GetRecords: getRecordsOp,
      GetRecordById: getRecordByIdOp,
      GetDomain: getDomainOp,
      Transaction: transactionOp,
      Harvest: harvestOp,
    },
  });
  registerCatalogRoutes(app, ctx);
  registerHarvesting(app, ctx);
}
