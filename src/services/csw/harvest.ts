/**
 * CSW 2.0.2 Harvest (OGC 07-006r1 §10.12), KVP and POST XML, behind the same authorisation as
 * CSW-T Transaction (the admin role or the admin token). It is a front door to the harvest
 * machinery (src/catalog/harvest.ts), nothing more: the records of a Source belong to the harvest
 * named after it (stored source `harvest:<Source URL>`, or the name of a configured
 * `catalog.harvest` source with the same URL), with the same safety rules (a failed or suspicious
 * read changes nothing, minKeptShare) and the same limits on what a harvest may replace.
 *
 * ResourceType:
 *  - http://www.opengis.net/cat/csw/2.0.2 (or csw:Record): the Source is a CSW 2.0.2 endpoint,
 *    harvested whole (ISO 19139 GetRecords, paged) — unless a GET of the Source answers a metadata
 *    document (csw:Record, or a GetRecordById/GetRecords response: a record URL), which is then
 *    harvested as such;
 *  - http://www.isotc211.org/2005/gmd (and its variants, gmd:MD_Metadata): the Source is an ISO
 *    19139 document (gmd:MD_Metadata, or a CSW response holding gmd:MD_Metadata records);
 *  - http://www.w3.org/ns/dcat#: the Source is a DCAT catalogue (hydra paging followed).
 * Without ResponseHandler the answer is csw:HarvestResponse/csw:TransactionResponse (inserted,
 * updated, deleted, a csw:BriefRecord per inserted record). With ResponseHandler (http or https
 * URLs) the request is checked, acknowledged at once (csw:Acknowledgement with a RequestId), and
 * the same HarvestResponse — or the exception report — is POSTed to each handler when the run
 * ends. HarvestInterval (xsd:duration, at least PT5M; PT0S ends it) re-harvests the Source
 * periodically after a successful run (src/catalog/schedule.ts).
 */
import { randomUUID } from 'node:crypto';
import type { OwsRequest } from '../../ows/service.js';
import { OwsException, ServiceError } from '../../ows/exceptions.js';
import { renderOws } from '../../errors/render.js';
import { classify } from '../../errors/classify.js';
import { XmlWriter } from '../../ows/xml.js';
import type { XmlElement } from '../../ows/xmldom.js';
import { adminDenial } from '../../security/admin.js';
import { CSW_NS } from '../../catalog/dc.js';
import { answersWithRecordDocument, harvestOwner, type HarvestReport, type HarvestSource } from '../../catalog/harvest.js';
import { runHarvest, setHarvestSchedule } from '../../catalog/schedule.js';
import { getRecords } from '../../catalog/query.js';
import { migrateCatalog, schemaOf } from '../../catalog/store.js';
import type { AppContext } from '../../context.js';
import { echoElement } from './echo.js';
import { TRANSACTION_NS, writeTransactionResponse } from './transaction.js';

const GMD = 'http://www.isotc211.org/2005/gmd';
const DCAT = 'http://www.w3.org/ns/dcat#';

/** ResourceType values (as advertised), and what each makes of the Source. */
export const HARVEST_RESOURCE_TYPES = [CSW_NS, GMD, DCAT];
const RESOURCE_TYPE_OF: Record<string, 'csw' | 'iso19139' | 'dcat'> = {
  [CSW_NS]: 'csw',
  'csw:record': 'csw',
  [GMD]: 'iso19139',
  [`${GMD}/`]: 'iso19139',
  'http://www.isotc211.org/schemas/2005/gmd/': 'iso19139',
  'http://www.isotc211.org/schemas/2005/gmd': 'iso19139',
  'gmd:md_metadata': 'iso19139',
  [DCAT]: 'dcat',
};

const XML_FORMATS = ['application/xml', 'text/xml'];
const RDF_FORMATS = ['application/rdf+xml', 'text/turtle', 'application/n-triples', 'application/ld+json'];
export const HARVEST_RESOURCE_FORMATS = [...XML_FORMATS, ...RDF_FORMATS];

/** Shortest HarvestInterval (as the configured sources' intervalMinutes). */
const MIN_INTERVAL_S = 300;

interface HarvestRequest {
  source: string;
  kind: 'csw' | 'iso19139' | 'dcat';
  /** seconds; null: end a periodic re-harvest; undefined: leave it as it is */
  interval: number | null | undefined;
  handlers: string[];
}

/** xsd:duration → seconds (a month is 30 days, a year 365); undefined when it is not one. */
export function durationSeconds(v: string): number | undefined {
  const m = v.trim().match(/^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/);
  if (!m) return undefined;
  const [y, mo, w, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0));
  return Math.round(((((y * 365 + mo * 30 + w * 7 + d) * 24 + h) * 60 + mi) * 60 + s) as number);
}

const httpUrl = (v: string) => {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
};

function parseRequest(req: OwsRequest): HarvestRequest {
  const x = req.xml;
  const kid = (n: string) => x?.children.filter((c) => c.name === n && c.ns === CSW_NS).map((c) => c.text.trim()) ?? [];
  const one = (n: string) => (x ? kid(n)[0] : req.kvp[n.toUpperCase()]?.trim());
  const source = one('Source');
  if (!source) throw new OwsException('MissingParameterValue', "Harvest needs a 'Source' (the URL to harvest)", 'Source');
  if (source.length > 2048 || !httpUrl(source))
    throw new OwsException('InvalidParameterValue', `Source '${source.slice(0, 200)}' is not an http or https URL`, 'Source');
  const type = one('ResourceType');
  if (!type) throw new OwsException('MissingParameterValue', "Harvest needs a 'ResourceType'", 'ResourceType');
  const kind = RESOURCE_TYPE_OF[type] ?? RESOURCE_TYPE_OF[type.toLowerCase()];
  if (!kind)
    throw new OwsException(
      'InvalidParameterValue',
      `ResourceType '${type.slice(0, 200)}' cannot be harvested (${HARVEST_RESOURCE_TYPES.join(', ')})`,
      'ResourceType',
    );
  const format = one('ResourceFormat')?.toLowerCase().replace(/;.*/, '').trim();
  if (format && !(kind === 'dcat' ? HARVEST_RESOURCE_FORMATS : XML_FORMATS).includes(format))
    throw new OwsException(
      'InvalidParameterValue',
      `ResourceFormat '${format.slice(0, 100)}' is not offered for ${type} (${(kind === 'dcat' ? HARVEST_RESOURCE_FORMATS : XML_FORMATS).join(', ')})`,
      'ResourceFormat',
    );
  const iv = one('HarvestInterval');
  let interval: number | null | undefined;
  if (iv) {
    const s = durationSeconds(iv);
    if (s === undefined)
      throw new OwsException(
        'InvalidParameterValue',
        `HarvestInterval '${iv.slice(0, 100)}' is not an ISO 8601 duration (e.g. P1D)`,
        'HarvestInterval',
      );
    if (s > 0 && s < MIN_INTERVAL_S)
      throw new OwsException(
        'InvalidParameterValue',
        `HarvestInterval '${iv}' is shorter than PT5M (PT0S ends a periodic harvest)`,
        'HarvestInterval',
      );
    if (s > 366 * 86_400 * 10)
      throw new OwsException('InvalidParameterValue', `HarvestInterval '${iv}' is longer than ten years`, 'HarvestInterval');
    interval = s === 0 ? null : s;
  }
  const handlers = x
    ? kid('ResponseHandler')
    : (req.kvp.RESPONSEHANDLER ?? '')
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean);
  for (const h of handlers) {
    if (/^(mailto|ftp|ftps|sftp):/i.test(h))
      throw new OwsException(
        'OptionNotSupported',
        `ResponseHandler '${h.slice(0, 200)}': only http and https response handlers are supported (the HarvestResponse is POSTed there)`,
        'ResponseHandler',
      );
    if (!httpUrl(h))
      throw new OwsException('InvalidParameterValue', `ResponseHandler '${h.slice(0, 200)}' is not a URL`, 'ResponseHandler');
  }
  return { source, kind, interval, handlers };
}

/** The harvest source a request stands for: a configured one with that URL, else one named after the URL. */
async function sourceFor(ctx: AppContext, h: HarvestRequest): Promise<HarvestSource> {
  const type: HarvestSource['type'] =
    h.kind === 'dcat' ? 'dcat' : h.kind === 'iso19139' ? 'document' : (await answersWithRecordDocument(h.source)) ? 'document' : 'csw';
  const configured = (ctx.config.catalog?.harvest ?? []).find((s) => s.url === h.source && s.type === type);
  if (configured) return configured;
  return { name: h.source, url: h.source, type, documentSchema: h.kind === 'iso19139' ? 'iso19139' : undefined };
}

async function ownedIdentifiers(ctx: AppContext, owner: string): Promise<Set<string>> {
  const r = await ctx.pool.query<{ identifier: string }>(`SELECT identifier FROM ${schemaOf(ctx)}.records WHERE source = $1`, [owner]);
  return new Set(r.rows.map((x) => x.identifier));
}

/** Run the harvest; the csw:HarvestResponse document, or a ServiceError when nothing was applied. */
async function harvestResponse(
  ctx: AppContext,
  h: HarvestRequest,
  src: HarvestSource,
  baseUrl: string,
  requestId?: string,
): Promise<string> {
  await migrateCatalog(ctx.pool, schemaOf(ctx));
  const owner = harvestOwner(src.name);
  const before = await ownedIdentifiers(ctx, owner);
  const report: HarvestReport = await runHarvest(ctx, src);
  if (!report.ok)
    throw new OwsException(
      'InvalidParameterValue',
      `the harvest of '${h.source.slice(0, 200)}' failed, nothing changed: ${report.errors.slice(0, 5).join('; ').slice(0, 2000)}`,
      'Source',
    );
  if (h.interval !== undefined) await setHarvestSchedule(ctx, src, h.interval);
  const added = [...(await ownedIdentifiers(ctx, owner))].filter((id) => !before.has(id));
  const inserted = await getRecords(ctx.pool, added, schemaOf(ctx));
  const w = new XmlWriter();
  w.start('csw:HarvestResponse', {
    ...TRANSACTION_NS,
    'xsi:schemaLocation': `${CSW_NS} http://schemas.opengis.net/csw/2.0.2/CSW-publication.xsd`,
  });
  writeTransactionResponse(
    w,
    { inserted: report.new, updated: report.updated, deleted: report.deleted, requestId },
    inserted,
    baseUrl,
    false,
  );
  w.end();
  return w.toString();
}

function echoKvp(w: XmlWriter, h: HarvestRequest, req: OwsRequest) {
  w.start('csw:Harvest', { service: 'CSW', version: '2.0.2' });
  w.el('csw:Source', h.source);
  w.el('csw:ResourceType', req.kvp.RESOURCETYPE);
  if (req.kvp.RESOURCEFORMAT) w.el('csw:ResourceFormat', req.kvp.RESOURCEFORMAT);
  if (req.kvp.HARVESTINTERVAL) w.el('csw:HarvestInterval', req.kvp.HARVESTINTERVAL);
  for (const r of h.handlers) w.el('csw:ResponseHandler', r);
  w.end();
}

/** POST the outcome of an asynchronous harvest to its response handlers (failures logged). */
async function notify(ctx: AppContext, handlers: string[], body: string, requestId: string): Promise<void> {
  for (const url of handlers) {
    try {
      const r = await fetch(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/xml; charset=UTF-8', 'user-agent': 'geodata-server harvester' },
        signal: AbortSignal.timeout(60_000),
      });
      await r.arrayBuffer();
      if (!r.ok) ctx.log.warn({ requestId, handler: url, status: r.status }, 'CSW Harvest response handler refused the response');
    } catch (e) {
      ctx.log.warn({ requestId, handler: url, err: e }, 'CSW Harvest response handler unreachable');
    }
  }
}

export async function harvestOp(req: OwsRequest) {
  const denial = adminDenial(req.http, req.ctx.config.security.realm, 'Harvest');
  if (denial) throw denial;
  const h = parseRequest(req);
  const { ctx, baseUrl } = req;
  const src = await sourceFor(ctx, h);
  if (!h.handlers.length) {
    const body = await harvestResponse(ctx, h, src, baseUrl);
    return req.reply.code(200).type('application/xml; charset=UTF-8').send(body);
  }
  const requestId = `urn:uuid:${randomUUID()}`;
  void harvestResponse(ctx, h, src, baseUrl, requestId)
    .catch((e: unknown) => {
      const err = e instanceof ServiceError ? e : classify(e);
      if (!(e instanceof ServiceError)) ctx.log.error({ err: e, requestId }, 'asynchronous CSW Harvest failed');
      return renderOws(err, 'ows10', '2.0.2').body;
    })
    .then((body) => notify(ctx, h.handlers, body, requestId));
  const w = new XmlWriter();
  w.start('csw:HarvestResponse', {
    ...TRANSACTION_NS,
    'xsi:schemaLocation': `${CSW_NS} http://schemas.opengis.net/csw/2.0.2/CSW-publication.xsd`,
  });
  w.start('csw:Acknowledgement', { timeStamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });
  w.start('csw:EchoedRequest');
  if (req.xml) echoElement(w, req.xml as XmlElement);
  else echoKvp(w, h, req);
  w.end();
  w.el('csw:RequestId', requestId);
  w.end().end();
  return req.reply.code(200).type('application/xml; charset=UTF-8').send(w.toString());
}
