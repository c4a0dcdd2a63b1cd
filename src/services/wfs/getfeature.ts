/** GetFeature, GetPropertyValue and GetFeatureById: counts, paging over a stable order, streaming. */
import type { FastifyReply } from 'fastify';
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import { classify } from '../../errors/classify.js';
import type { OwsRequest } from '../../ows/service.js';
import { addFeatures } from '../../ops/tags.js';
import {
  checkQuery,
  clientSignal,
  countFeatures,
  countWith,
  distributePage,
  fetchFeatureRows,
  GeoJsonWriter,
  GmlWriter,
  matchedAfterPage,
  matchedOfCarriedPage,
  NdjsonWriter,
  neighbourPages,
  openFeatureStream,
  pageQuery,
  planCollection,
  returnedOf,
  xmlName,
  type CollectionInfo,
  type CollectionPlan,
  type CollectionRequest,
  type FeatureQuery,
  type FeatureRow,
  type FeatureWriter,
  type SqlRunner,
} from '../../features/index.js';
import { NS_PREFIX, isGml, isFileKind, namespaceUri, is20, type OutputFormat } from './common.js';
import { ExportError } from '../../features/index.js';
import { exportFileName, sendExport } from '../downloads/export.js';
import { outputCrsOf, type FormatDef } from '../../features/formats.js';
import { parseKvpRequest, parseXmlRequest, type GetFeatureRequest, type WfsQuery } from './request.js';
import { PagePositions, noteLastKey } from './positions.js';

export function readRequest(req: OwsRequest, op: 'GetFeature' | 'GetPropertyValue'): GetFeatureRequest {
  return req.xml ? parseXmlRequest(req.ctx, req.xml, req.version, op) : parseKvpRequest(req.ctx, req.kvp, req.version, op);
}

/**
 * The engine's query for a WFS query in an output format. Without SRSNAME the format's default
 * CRS applies (formats.ts): the layer's own CRS for GML and the file formats, WGS 84 lon/lat for
 * the GeoJSON family (RFC 7946), WGS 84 always for KML.
 */
function toFeatureQuery(q: WfsQuery, format: FormatDef): FeatureQuery {
  const epsg = outputCrsOf(format, q.srs.defaulted ? undefined : q.srs.epsg, q.layer.srid);
  return {
    layer: q.layer,
    filter: q.filter,
    bbox: q.bbox,
    properties: q.properties,
    sortBy: q.sortBy,
    outputEpsg: epsg,
    // without SRSNAME: the layer's own CRS in its EPSG axis order where the format keeps it (GML),
    // x/y where the format's default replaces it (WGS 84 for GeoJSON)
    outputLatLon: q.srs.defaulted ? epsg === q.srs.epsg && q.srs.latLon : q.srs.latLon,
    gmlSrsName: q.srs.srsName,
  };
}

/**
 * Engine and database errors → the one classifier; errors naming no parameter (a data exception
 * or a PROJ failure from the request's values) get `locator` (the BBOX or the filter).
 */
function mapEngineError(e: unknown, locator = 'filter'): never {
  throw classify(e, { locator });
}

function describeUrl(req: OwsRequest, layers: string[], v20: boolean): string {
  const names = [...new Set(layers)].map((n) => `${NS_PREFIX}:${n}`).join(',');
  return `${req.baseUrl}/wfs?SERVICE=WFS&VERSION=${v20 ? '2.0.0' : '1.1.0'}&REQUEST=DescribeFeatureType&${v20 ? 'TYPENAMES' : 'TYPENAME'}=${encodeURIComponent(names)}`;
}

function makeWriter(req: OwsRequest, fmt: OutputFormat, layers: string[], gmlVersion?: '3.2' | '3.1.1'): FeatureWriter {
  switch (fmt.kind) {
    case 'gml32':
    case 'gml311': {
      const version = gmlVersion ?? (fmt.kind === 'gml32' ? '3.2' : '3.1.1');
      return new GmlWriter({
        version,
        namespaceUri: namespaceUri(req.ctx),
        prefix: NS_PREFIX,
        schemaLocation: describeUrl(req, layers, version === '3.2'),
        contentType: fmt.contentType,
      });
    }
    case 'geojson':
      return new GeoJsonWriter({ contentType: fmt.contentType });
    case 'ndjson':
      return new NdjsonWriter({ contentType: fmt.contentType });
    case 'geojsonseq':
      return new NdjsonWriter({ seq: true });
    default:
      throw new Error(`no collection writer for ${fmt.kind}`);
  }
}

function pagingLink(req: OwsRequest, start: number, count: number): string {
  const kvp: Record<string, string> = { ...req.kvp, STARTINDEX: String(start), COUNT: String(count) };
  if (!is20(req.version)) {
    delete kvp.COUNT;
    kvp.MAXFEATURES = String(count);
  }
  const qs = Object.entries(kvp)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return `${req.baseUrl}/wfs?${qs}`;
}

function sendStream(reply: FastifyReply, contentType: string, stream: import('node:stream').Readable): FastifyReply {
  reply.header('Content-Type', contentType);
  return reply.send(stream);
}

/** A one-type page of a walk whose positions are remembered (see positions.ts). */
interface Walk {
  positions: PagePositions;
  fp: string;
  start: number;
  count: number;
}

/** The writer (noting its last row) and the onComplete of a streamed page: a full page remembers where the next one starts. */
function walkHooks(req: OwsRequest, writer: FeatureWriter, walk: Walk | undefined) {
  if (!walk) return { writer, onComplete: (n: number) => addFeatures(req.http, n) };
  const noted = noteLastKey(writer);
  return {
    writer: noted.writer,
    onComplete: (n: number) => {
      addFeatures(req.http, n);
      const key = noted.lastKey();
      if (n === walk.count && key !== undefined) walk.positions.set(walk.fp, walk.start + n, key);
    },
  };
}

/** Where an output format writes numberMatched: GML in its header, GeoJSON in its footer, NDJSON and sequences nowhere. */
function totalsOf(fmt: OutputFormat): CollectionRequest['totals'] {
  if (isGml(fmt.kind)) return 'header';
  return fmt.kind === 'geojson' ? 'footer' : 'none';
}

/** What the planner needs of a GetFeature / GetPropertyValue request (src/features/plan.ts). */
function collectionRequest(ctx: AppContext, r: GetFeatureRequest, fqs: FeatureQuery[], remember: boolean): CollectionRequest {
  const limits = ctx.config.limits;
  return {
    queries: fqs,
    resultType: r.resultType,
    start: r.startIndex,
    page: { asked: r.count, default: limits.defaultCount, max: limits.maxFeatures },
    output: isFileKind(r.format) ? 'file' : 'features',
    totals: totalsOf(r.format),
    rememberPositions: remember,
  };
}

export async function getFeature(req: OwsRequest): Promise<unknown> {
  const r = readRequest(req, 'GetFeature');
  const ctx = req.ctx;
  const positions = ctx.runtime.pagePositions;
  if (r.resultType === 'hits' && !r.format.def.carriesCount) {
    throw new OwsException(
      'InvalidParameterValue',
      'resultType=hits needs an output format that can carry numberMatched (GML or GeoJSON)',
      'resultType',
    );
  }
  if (!r.format.def.multiLayer && r.queries.length > 1) {
    throw new OwsException(
      'InvalidParameterValue',
      `${r.format.def.title} output holds one feature type per request; ask for the types one by one`,
      'outputFormat',
    );
  }
  const fqs = r.queries.map((q) => toFeatureQuery(q, r.format.def));
  checkQueries(fqs);
  const input = collectionRequest(ctx, r, fqs, true);
  let plan = planCollection(input);
  if (plan.delivery === 'export') return exportFeatures(req, r, fqs, plan);
  if (r.byId !== undefined) return getFeatureById(req, r, fqs);
  const signal = clientSignal(req.reply.raw);

  // one type paged in order: a STARTINDEX where the previous page of the same query ended is read
  // as a keyset (after that page's last key) instead of skipping rows; the plan is then made again
  // for the keyset page (a keyset page does not carry its count)
  let walk: Walk | undefined;
  const fp = plan.walk ? PagePositions.fingerprint(fqs[0], ctx.registry.version) : undefined;
  if (fp) {
    walk = { positions, fp, start: plan.start, count: plan.limit! };
    if (plan.start > 0) {
      const after = await positions.recall(ctx.runtime.features, fqs[0], fp, plan.start, signal);
      if (after) {
        fqs[0] = { ...fqs[0], after };
        plan = planCollection({ ...input, queries: fqs });
      }
    }
  }

  if (fqs.length === 1 && plan.count !== 'first') return streamOneType(req, r, fqs[0], plan, signal, walk);
  let counts: number[];
  try {
    counts = [];
    for (const q of fqs) counts.push(await countFeatures(ctx.runtime.features, q, signal));
  } catch (e) {
    mapEngineError(e, fqs.some((q) => q.bbox) ? 'bbox' : 'filter');
  }
  const { matched, paged, returned } = distributePage(fqs, counts, plan.start, plan.delivery === 'hits' ? 0 : plan.limit);
  const info: CollectionInfo = {
    numberMatched: matched,
    numberReturned: returned,
    timeStamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    links: plan.delivery === 'hits' ? {} : pageLinks(req, r, plan, returned, matched),
    layers: fqs.map((q) => q.layer),
    outputEpsg: fqs[0]?.outputEpsg ?? 4326,
  };
  const gmlVersion = isGml(r.format.kind) ? (r.format.kind === 'gml32' ? '3.2' : '3.1.1') : undefined;
  const hooks = walkHooks(
    req,
    makeWriter(
      req,
      r.format,
      fqs.map((q) => q.layer.name),
      gmlVersion,
    ),
    walk,
  );
  const writer = hooks.writer;
  if (plan.delivery === 'hits') {
    const body =
      writer.header({ ...info, numberReturned: isGml(r.format.kind) && r.format.kind === 'gml311' ? matched : 0, links: {} }) +
      writer.footer({ ...info, links: {} }, 0);
    return req.reply.header('Content-Type', writer.contentType).send(body);
  }
  let stream;
  try {
    stream = await openFeatureStream(ctx.runtime.features, {
      queries: paged,
      writer,
      info,
      onComplete: hooks.onComplete,
      signal,
    });
  } catch (e) {
    mapEngineError(e);
  }
  return sendStream(req.reply, writer.contentType, stream);
}

/**
 * Download formats (CSV, KML, Shapefile ZIP, GeoPackage, XLSX): the page the request selects
 * (COUNT/STARTINDEX over the same stable order as GML), written by the export the /downloads
 * URLs use, as an attachment named after the type(s) and the CRS.
 */
async function exportFeatures(req: OwsRequest, r: GetFeatureRequest, fqs: FeatureQuery[], plan: CollectionPlan): Promise<unknown> {
  const ctx = req.ctx;
  const format = r.format.def;
  let paged: FeatureQuery[];
  try {
    if (r.byId !== undefined) {
      // GetFeatureById: the one feature, or 404 NotFound
      let hit: FeatureQuery | undefined;
      for (const q of fqs) if (!hit && (await countFeatures(ctx.runtime.features, q)) > 0) hit = q;
      if (!hit) throw new OwsException('NotFound', `no feature with identifier '${r.byId}'`, 'ID', 404);
      paged = [{ ...hit, limit: 1 }];
    } else if (plan.count === 'first') {
      // several types in one file: their counts say which part of each the page holds
      const counts: number[] = [];
      for (const q of fqs) counts.push(await countFeatures(ctx.runtime.features, q));
      paged = distributePage(fqs, counts, plan.start, plan.limit).paged;
      if (!paged.length) paged = [{ ...fqs[0], limit: 0 }];
    } else {
      paged = fqs.map((q) => pageQuery(plan, q));
    }
    const epsg = fqs[0].outputEpsg ?? fqs[0].layer.srid;
    const filename = exportFileName(
      fqs.map((q) => q.layer.name),
      epsg,
      format,
    );
    return await sendExport(ctx, req.http, req.reply, {
      format,
      queries: paged,
      filename,
      contentType: r.format.contentType,
    });
  } catch (e) {
    if (e instanceof ExportError) {
      const err = classify(e);
      err.locator = e.status === 400 ? 'propertyName' : 'outputFormat';
      throw err;
    }
    mapEngineError(e, fqs.some((q) => q.bbox) ? 'bbox' : 'filter');
  }
}

/** Check the queries: a mistake is the client's exception. */
function checkQueries(fqs: FeatureQuery[]): void {
  try {
    fqs.forEach(checkQuery);
  } catch (e) {
    mapEngineError(e);
  }
}

/** The collection info of a one-type stream whose totals are learnt while it runs. */
function openInfo(q: FeatureQuery): CollectionInfo {
  return {
    numberMatched: 'unknown',
    timeStamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    links: {},
    layers: [q.layer],
    outputEpsg: q.outputEpsg ?? q.layer.srid,
  };
}

/** next/previous of a KVP page once numberMatched is known. */
function pageLinks(
  req: OwsRequest,
  r: GetFeatureRequest,
  plan: CollectionPlan,
  returned: number,
  matched: number,
): CollectionInfo['links'] {
  const links: CollectionInfo['links'] = {};
  if (!r.kvp) return links;
  const { next, prev } = neighbourPages(plan, returned, matched);
  if (next !== undefined) links.next = pagingLink(req, next, plan.limit!);
  if (prev !== undefined) links.previous = pagingLink(req, prev, plan.limit!);
  return links;
}

/**
 * One type whose numberMatched is learnt while the page streams:
 *  - 'after' (GeoJSON, totals in the footer): known exactly without a count when the page was not
 *    full, else carried by the rows or counted on the stream's own connection;
 *  - 'carried' (GML with a BBOX or FILTER): the page query carries it (one scan for the page and
 *    its count) and the header, which holds it, is written when the first row comes;
 *  - 'none' (NDJSON, GeoJSON sequences): nowhere.
 */
async function streamOneType(
  req: OwsRequest,
  r: GetFeatureRequest,
  q: FeatureQuery,
  plan: CollectionPlan,
  signal: AbortSignal,
  walk?: Walk,
): Promise<unknown> {
  const gmlVersion = isGml(r.format.kind) ? (r.format.kind === 'gml32' ? '3.2' : '3.1.1') : undefined;
  const hooks = walkHooks(req, makeWriter(req, r.format, [q.layer.name], gmlVersion), walk);
  const writer = hooks.writer;
  const totals = (matched: number, returned: number): Partial<CollectionInfo> => ({
    numberMatched: matched,
    numberReturned: returned,
    links: pageLinks(req, r, plan, returned, matched),
  });
  const finalize =
    plan.count === 'after'
      ? async (run: SqlRunner, returned: number, carried?: number) =>
          totals(matchedAfterPage(plan, returned, carried) ?? (await countWith(run, q)), returned)
      : undefined;
  // an empty page: nothing matched, or the page lies past the end (then count)
  const header =
    plan.count === 'carried'
      ? async (carried: number | undefined, run?: SqlRunner) => {
          const matched = matchedOfCarriedPage(plan, carried) ?? (run ? await countWith(run, q) : 0);
          return totals(matched, returnedOf(plan, matched));
        }
      : undefined;
  let stream;
  try {
    stream = await openFeatureStream(req.ctx.runtime.features, {
      queries: [pageQuery(plan, q)],
      writer,
      info: openInfo(q),
      finalize,
      header,
      countMatched: plan.count !== 'none',
      onComplete: hooks.onComplete,
      signal,
    });
  } catch (e) {
    mapEngineError(e, q.bbox ? 'bbox' : 'filter');
  }
  return sendStream(req.reply, writer.contentType, stream);
}

async function getFeatureById(req: OwsRequest, r: GetFeatureRequest, fqs: FeatureQuery[]): Promise<unknown> {
  const ctx = req.ctx;
  const fmt = r.format;
  let found: { row: FeatureRow; q: FeatureQuery } | undefined;
  for (const q of fqs) {
    let rows: FeatureRow[];
    try {
      const writer = makeWriter(req, fmt, [q.layer.name]);
      rows = await fetchFeatureRows(ctx.runtime.features, { ...q, limit: 1 }, writer.format, writer.selectOptions);
    } catch (e) {
      mapEngineError(e);
    }
    if (rows.length) {
      found = { row: rows[0], q };
      break;
    }
  }
  if (!found) throw new OwsException('NotFound', `no feature with identifier '${r.byId}'`, 'ID', 404);
  if (isGml(fmt.kind)) {
    const w = makeWriter(req, fmt, [found.q.layer.name]) as GmlWriter;
    // the bare feature: strip the member wrapper and declare the namespaces on the feature
    const member = w.feature(found.row, found.q);
    const inner = member.replace(/^<(wfs:member|gml:featureMember)>/, '').replace(/<\/(wfs:member|gml:featureMember)>\n$/, '');
    const type = `${NS_PREFIX}:${xmlName(found.q.layer.name)}`;
    const ns = `xmlns:${NS_PREFIX}="${namespaceUri(ctx)}" xmlns:gml="${fmt.kind === 'gml32' ? 'http://www.opengis.net/gml/3.2' : 'http://www.opengis.net/gml'}"`;
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n' + inner.replace(`<${type} `, `<${type} ${ns} `);
    return req.reply.header('Content-Type', w.contentType).send(body);
  }
  return req.reply.header('Content-Type', fmt.contentType).send(found.row.f + '\n');
}

/** GetPropertyValue: the values of one property of the matching features, in a wfs:ValueCollection. */
export async function getPropertyValue(req: OwsRequest): Promise<unknown> {
  const r = readRequest(req, 'GetPropertyValue');
  const ctx = req.ctx;
  if (!is20(req.version)) throw new OwsException('OperationNotSupported', 'GetPropertyValue is a WFS 2.0 operation', 'request');
  const vr = r.valueReference!;
  const fqs: FeatureQuery[] = r.queries.map((q) => {
    const fq = toFeatureQuery(q, r.format.def);
    const isGeom = vr === q.layer.geometryColumn;
    if (!isGeom && !q.layer.fields.some((f) => f.name === vr)) {
      throw new OwsException('InvalidParameterValue', `unknown property '${vr}' for ${q.layer.name}`, 'valueReference');
    }
    const notNull = { kind: 'not' as const, arg: { kind: 'isNull' as const, operand: { kind: 'property' as const, name: vr } } };
    return { ...fq, properties: isGeom ? [] : [vr], filter: fq.filter ? { kind: 'and', args: [fq.filter, notNull] } : notNull };
  });
  checkQueries(fqs);
  // the value collection's header holds the totals before any value: counted first
  const plan = planCollection({ ...collectionRequest(ctx, r, fqs, false), output: 'features', totals: 'before' });
  const signal = clientSignal(req.reply.raw);
  const counts: number[] = [];
  try {
    for (const q of fqs) counts.push(await countFeatures(ctx.runtime.features, q, signal));
  } catch (e) {
    mapEngineError(e);
  }
  const { matched, paged, returned } = distributePage(fqs, counts, plan.start, plan.delivery === 'hits' ? 0 : plan.limit);
  const ts = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const ns = namespaceUri(ctx);
  const gml = new GmlWriter({ version: '3.2', namespaceUri: ns, prefix: NS_PREFIX });
  const writer: FeatureWriter = {
    format: 'gml32',
    contentType: 'application/gml+xml; version=3.2; charset=UTF-8',
    selectOptions: gml.selectOptions,
    header: () =>
      `<?xml version="1.0" encoding="UTF-8"?>\n<wfs:ValueCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:${NS_PREFIX}="${ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/wfs/2.0 http://schemas.opengis.net/wfs/2.0/wfs.xsd http://www.opengis.net/gml/3.2 http://schemas.opengis.net/gml/3.2.1/gml.xsd" timeStamp="${ts}" numberMatched="${matched}" numberReturned="${returned}">\n`,
    feature: (row: FeatureRow, q: FeatureQuery) => {
      if (vr === q.layer.geometryColumn) {
        const inner = gml.feature(row, q).match(/<gml:[A-Za-z]+[\s\S]*<\/gml:[A-Za-z]+>/);
        return `<wfs:member>${inner ? inner[0] : ''}</wfs:member>\n`;
      }
      // the value itself (already escaped by PostgreSQL), without the property element
      return `<wfs:member>${(row.a ?? '').replace(/^<[^>]*>/, '').replace(/<\/[^>]*>$/, '')}</wfs:member>\n`;
    },
    footer: () => '</wfs:ValueCollection>\n',
  };
  if (plan.delivery === 'hits' || paged.length === 0) {
    return req.reply
      .header('Content-Type', writer.contentType)
      .send(writer.header({} as CollectionInfo) + writer.footer({} as CollectionInfo, 0));
  }
  let stream;
  try {
    stream = await openFeatureStream(ctx.runtime.features, {
      queries: paged,
      writer,
      info: {} as CollectionInfo,
      onComplete: (n) => addFeatures(req.http, n),
      signal,
    });
  } catch (e) {
    mapEngineError(e);
  }
  return sendStream(req.reply, writer.contentType, stream);
}
