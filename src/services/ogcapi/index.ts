/**
 * OGC API – Features Parts 1 (Core, HTML, GeoJSON, OpenAPI 3.0), 2 (CRS by reference) and 3
 * (Queryables, CQL2 text/JSON filters), mounted at the server root next to the landing page.
 * Every query goes through the shared feature engine (src/features) — the same path as WFS.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import compress from '@fastify/compress';
import YAML from 'yaml';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { projectRoot } from '../../config/index.js';
import { baseUrlOf } from '../../ows/service.js';
import { ServiceError } from '../../errors/service-error.js';
import { classify } from '../../errors/classify.js';
import { sendProblem } from '../../errors/render.js';
import { qualifiedTable, quoteIdent } from '../../db/pool.js';
import { layersFor } from '../../security/access.js';
import { addFeatures, tagRequest } from '../../ops/tags.js';
import { crsUri } from '../../filter/crs-names.js';
import {
  GeoJsonWriter,
  checkQuery,
  countFeatures,
  clientSignal,
  fetchFeatureRows,
  openFeatureStream,
  pageSize,
  inlineCountable,
  fetchPageWithCount,
  encodeCursor,
  keysetAnchor,
  lastKeyOfPage,
  orderFingerprint,
  type CollectionInfo,
  type FeatureQuery,
  type FeatureRow,
} from '../../features/index.js';
import {
  CONFORMANCE,
  CRS84,
  linkHeader,
  negotiate,
  rejectUnknown,
  resolveCrs,
  CRS84_INFO,
  fValue,
  sendWithEtag,
  str,
  supportedCrs,
  withQuery,
  type ApiLink,
  type Format,
} from './common.js';
import { exportFileName, sendExport } from '../downloads/export.js';
import { ogcApiFileFormats, type FormatDef } from '../../features/formats.js';
import { serverFormats } from '../../features/formats.js';
import { ExportError } from '../../features/index.js';
import { ITEMS_PARAMS, isQueryableParam, queryableFields, readItemsRequest } from './params.js';
import { a, apiHtml, page, table, val } from './html.js';

const GEOJSON = 'application/geo+json';
const JSON_T = 'application/json';
const HTML_T = 'text/html';
const OAS_T = 'application/vnd.oai.openapi+json;version=3.0';
const REL_QUERYABLES = 'http://www.opengis.net/def/rel/ogc/1.0/queryables';
/** Items pages up to this many features are buffered to give them an ETag; larger ones stream. */
const ETAG_MAX_FEATURES = 100;

function svc(req: FastifyRequest, operation: string, layers?: string[]): void {
  tagRequest(req, { service: 'OGCAPI', operation, layers });
}

function collectionOf(ctx: AppContext, req: FastifyRequest, id: string): Layer {
  // a collection the caller may not read is unknown to it (src/security/access.ts)
  const layer = layersFor(ctx, req).get(id);
  if (!layer) throw new ServiceError('not-found', `no collection '${id}'`);
  return layer;
}

/** The OpenAPI document: openapi.yaml, with this server's URL and configured limits filled in. */
export function openApiDocument(ctx: AppContext, base: string): Record<string, any> {
  const doc = YAML.parse(readFileSync(path.join(projectRoot, 'openapi.yaml'), 'utf8'));
  doc.servers = [{ url: base || '/' }];
  const lim = doc.components?.parameters?.limit?.schema;
  if (lim) {
    lim.default = ctx.config.limits.itemsDefaultLimit;
    lim.maximum = ctx.config.limits.itemsMaxLimit;
  }
  return doc;
}

const temporalCache = new Map<string, [string | null, string | null]>();

async function temporalExtent(ctx: AppContext, layer: Layer): Promise<[string | null, string | null] | null> {
  if (!layer.temporalField) return null;
  const key = `${ctx.registry.version}:${layer.name}`;
  const hit = temporalCache.get(key);
  if (hit) return hit;
  const c = `t.${quoteIdent(layer.temporalField)}`;
  const r = await ctx.pool.query<{ a: string | null; b: string | null }>(
    `SELECT to_json(min(${c})) #>> '{}' AS a, to_json(max(${c})) #>> '{}' AS b FROM ${qualifiedTable(layer.schema, layer.table)} t`,
  );
  const v: [string | null, string | null] = [r.rows[0]?.a ?? null, r.rows[0]?.b ?? null];
  temporalCache.set(key, v);
  return v;
}

async function collectionDoc(ctx: AppContext, base: string, layer: Layer) {
  const href = `${base}/collections/${encodeURIComponent(layer.name)}`;
  const e = layer.wgs84Extent;
  const extent: Record<string, unknown> = {
    spatial: { bbox: [e ? [e.minx, e.miny, e.maxx, e.maxy] : [-180, -90, 180, 90]], crs: CRS84 },
  };
  const t = await temporalExtent(ctx, layer);
  if (t) extent.temporal = { interval: [t], trs: 'http://www.opengis.net/def/uom/ISO-8601/0/Gregorian' };
  const links: ApiLink[] = [
    { href: `${href}?f=json`, rel: 'self', type: JSON_T, title: 'this collection' },
    { href: `${href}?f=html`, rel: 'alternate', type: HTML_T, title: 'this collection as HTML' },
    { href: `${href}/items?f=json`, rel: 'items', type: GEOJSON, title: 'items as GeoJSON' },
    { href: `${href}/items?f=html`, rel: 'items', type: HTML_T, title: 'items as HTML' },
    ...fileFormats(ctx).map((f) => ({
      href: `${href}/items?f=${fValue(f)}`,
      rel: 'items',
      type: f.mediaType,
      title: `items as ${f.title}`,
    })),
    { href: `${href}/queryables?f=json`, rel: REL_QUERYABLES, type: 'application/schema+json', title: 'queryables' },
  ];
  return {
    id: layer.name,
    title: layer.title,
    description: layer.abstract,
    keywords: layer.keywords,
    itemType: 'feature',
    extent,
    crs: supportedCrs(layer).map((c) => c.uri),
    storageCrs: crsUri(layer.srid),
    links,
  };
}

/** The temporal extent row of a collection page: none for a collection without time; '..' for an open end. */
function temporalRow(interval: [string | null, string | null] | undefined): string[][] {
  if (!interval) return [];
  return [['temporal extent', `${val(interval[0] ?? '..')} / ${val(interval[1] ?? '..')}`]];
}

function send(
  req: FastifyRequest,
  reply: FastifyReply,
  fmt: 'json' | 'html',
  doc: unknown,
  html: () => string,
  jsonType = JSON_T,
): FastifyReply {
  if (fmt === 'html') return sendWithEtag(req, reply, 'text/html; charset=utf-8', html());
  return sendWithEtag(req, reply, jsonType, JSON.stringify(doc));
}

function jsonSchemaType(t: string): Record<string, unknown> {
  switch (t) {
    case 'integer':
    case 'long':
      return { type: 'integer' };
    case 'number':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'date':
      return { type: 'string', format: 'date' };
    case 'datetime':
      return { type: 'string', format: 'date-time' };
    case 'time':
      return { type: 'string', format: 'time' };
    case 'uuid':
      return { type: 'string', format: 'uuid' };
    default:
      return { type: 'string' };
  }
}

function geometryFormat(g: string): string {
  const m: Record<string, string> = {
    POINT: 'geometry-point',
    LINESTRING: 'geometry-linestring',
    POLYGON: 'geometry-polygon',
    MULTIPOINT: 'geometry-multipoint',
    MULTILINESTRING: 'geometry-multilinestring',
    MULTIPOLYGON: 'geometry-multipolygon',
    GEOMETRYCOLLECTION: 'geometry-geometrycollection',
  };
  return m[g] ?? 'geometry-any';
}

/** The engine's locators in OGC API's parameter names. */
const PARAM_OF: Record<string, string> = { propertyName: 'properties', sortBy: 'sortby', bbox: 'bbox', cursor: 'cursor' };

/**
 * Anything thrown while answering → a ServiceError whose locator is an OGC API parameter:
 * request mistakes found by the engine or the filter compiler (and data exceptions from the
 * values they bound) name `properties`, `sortby`, `bbox` or else `filter`.
 */
function apiError(e: unknown, req: FastifyRequest): ServiceError {
  const err = classify(e, { requestId: req.id });
  if (err.kind === 'internal' && !(e instanceof ServiceError)) req.log.error({ err: e }, 'OGC API request failed');
  if (err.status === 400 && !(e instanceof ServiceError)) {
    const param = PARAM_OF[err.locator ?? ''] ?? 'filter';
    err.locator = param;
    if (!err.message.startsWith('parameter ')) err.message = `parameter '${param}': ${err.message}`;
  }
  return err;
}

function engineProblem(e: unknown, req: FastifyRequest): never {
  throw apiError(e, req);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const chunk of stream) s += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
  return s;
}

/** File formats of items and of one item besides GeoJSON and HTML: those of the format table this server offers. */
function fileFormats(ctx: AppContext): FormatDef[] {
  return ogcApiFileFormats(serverFormats(ctx.config));
}

function mediaTypeOf(f: Format): string {
  return f === 'json' ? GEOJSON : f === 'html' ? HTML_T : f.mediaType;
}

function titleOf(f: Format): string {
  return f === 'json' ? 'GeoJSON' : f === 'html' ? 'HTML' : f.title;
}

export async function registerOgcApi(app: FastifyInstance, ctx: AppContext): Promise<void> {
  /** Items as a file: the shared export; its limits become problems naming `f`. */
  async function sendDownload(
    req: FastifyRequest,
    reply: FastifyReply,
    fmt: FormatDef,
    queries: FeatureQuery[],
    filename: string,
  ): Promise<FastifyReply> {
    try {
      // CSV is shown by browsers: inline; the other files are saved
      return await sendExport(ctx, req, reply, { format: fmt, queries, filename, disposition: fmt.id === 'csv' ? 'inline' : 'attachment' });
    } catch (e) {
      if (e instanceof ExportError) {
        const err = classify(e);
        err.locator = e.status === 400 ? 'properties' : 'f';
        throw err;
      }
      engineProblem(e, req);
    }
  }
  await app.register(async (api) => {
    await api.register(cors, {
      origin: '*',
      exposedHeaders: ['Link', 'Content-Crs', 'ETag', 'Content-Disposition'],
      methods: ['GET', 'HEAD', 'OPTIONS'],
    });
    await api.register(compress, { encodings: ['br', 'gzip', 'deflate'], threshold: 1024 });

    api.setErrorHandler((error, req, reply) => sendProblem(reply, req, apiError(error, req)));

    api.get('/conformance', async (req, reply) => {
      svc(req, 'Conformance');
      rejectUnknown(req);
      const fmt = negotiate(req, ['json', 'html']);
      const doc = { conformsTo: CONFORMANCE };
      return send(req, reply, fmt as 'json' | 'html', doc, () =>
        page('Conformance', `<ul>${CONFORMANCE.map((c) => `<li><code>${val(c)}</code></li>`).join('')}</ul>`),
      );
    });

    api.get('/api', async (req, reply) => {
      svc(req, 'API');
      rejectUnknown(req);
      const fmt = negotiate(req, ['json', 'html']);
      // as HTML: a summary of the paths with a link to Swagger UI at /api.html (services/apidocs.ts)
      const doc = openApiDocument(ctx, baseUrlOf(req, ctx));
      return send(req, reply, fmt as 'json' | 'html', doc, () => apiHtml(doc), OAS_T);
    });

    api.get('/collections', async (req, reply) => {
      const layers = layersFor(ctx, req).list();
      svc(req, 'Collections');
      rejectUnknown(req);
      const fmt = negotiate(req, ['json', 'html']) as 'json' | 'html';
      const base = baseUrlOf(req, ctx);
      const collections = [];
      for (const l of layers) collections.push(await collectionDoc(ctx, base, l));
      const links: ApiLink[] = [
        { href: `${base}/collections?f=json`, rel: 'self', type: JSON_T, title: 'collections' },
        { href: `${base}/collections?f=html`, rel: 'alternate', type: HTML_T, title: 'collections as HTML' },
      ];
      reply.header('Link', linkHeader(links));
      const doc = { links, collections };
      return send(req, reply, fmt, doc, () =>
        page(
          'Collections',
          table(
            ['id', 'title', 'geometry', 'storage CRS', 'rows (est.)'],
            layers.map((l) => [
              a(`${base}/collections/${encodeURIComponent(l.name)}?f=html`, l.name),
              val(l.title),
              val(l.geometryType),
              val(`EPSG:${l.srid}`),
              val(l.rowEstimate),
            ]),
          ),
          links,
        ),
      );
    });

    api.get<{ Params: { collectionId: string } }>('/collections/:collectionId', async (req, reply) => {
      const layer = collectionOf(ctx, req, req.params.collectionId);
      svc(req, 'Collection', [layer.name]);
      rejectUnknown(req);
      const fmt = negotiate(req, ['json', 'html']) as 'json' | 'html';
      const doc = await collectionDoc(ctx, baseUrlOf(req, ctx), layer);
      reply.header('Link', linkHeader(doc.links));
      return send(req, reply, fmt, doc, () =>
        page(
          layer.title,
          `<p>${val(layer.abstract)}</p>
${table(
  ['', ''],
  [
    ['id', val(doc.id)],
    ['geometry', val(layer.geometryType)],
    ['spatial extent (CRS84)', val((doc.extent.spatial as { bbox: number[][] }).bbox[0])],
    ...temporalRow((doc.extent.temporal as { interval?: Array<[string | null, string | null]> } | undefined)?.interval?.[0]),
    ['storage CRS', val(doc.storageCrs)],
    ['CRS', doc.crs.map((c) => `<code>${val(c)}</code>`).join('<br>')],
  ],
)}
<h2>Properties</h2>
${table(
  ['name', 'type'],
  layer.fields.map((f) => [val(f.name), val(f.type)]),
)}`,
          doc.links,
        ),
      );
    });

    api.get<{ Params: { collectionId: string } }>('/collections/:collectionId/queryables', async (req, reply) => {
      const layer = collectionOf(ctx, req, req.params.collectionId);
      svc(req, 'Queryables', [layer.name]);
      rejectUnknown(req);
      const fmt = negotiate(req, ['json', 'html']) as 'json' | 'html';
      const base = baseUrlOf(req, ctx);
      const properties: Record<string, unknown> = {};
      properties[layer.geometryColumn] = {
        title: 'geometry',
        format: geometryFormat(layer.geometryType),
        'x-ogc-role': 'primary-geometry',
      };
      for (const f of queryableFields(layer)) {
        properties[f.name] = {
          title: f.name,
          ...jsonSchemaType(f.type),
          ...(f.name === layer.temporalField ? { 'x-ogc-role': 'primary-instant' } : {}),
        };
      }
      const doc = {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $id: `${base}/collections/${encodeURIComponent(layer.name)}/queryables`,
        type: 'object',
        title: layer.title,
        properties,
        additionalProperties: false,
      };
      return send(
        req,
        reply,
        fmt,
        doc,
        () =>
          page(
            `${layer.title} — queryables`,
            table(
              ['name', 'schema'],
              Object.entries(properties).map(([k, v]) => [val(k), val(v)]),
            ),
          ),
        'application/schema+json',
      );
    });

    api.get<{ Params: { collectionId: string } }>('/collections/:collectionId/items', async (req, reply) => {
      const layer = collectionOf(ctx, req, req.params.collectionId);
      svc(req, 'Items', [layer.name]);
      rejectUnknown(req, ITEMS_PARAMS, isQueryableParam(layer));
      const files = fileFormats(ctx);
      const fmt = negotiate(req, ['json', 'html'], files);
      const r = readItemsRequest(req, layer, ctx.config);
      let matched: number;
      // a JSON page small enough to be buffered (for its ETag) and with a bbox or filter: the page
      // query carries numberMatched, one scan instead of a count and a page
      let prefetched: FeatureRow[] | undefined;
      try {
        checkQuery(r.query);
        if (r.cursor) r.query.after = await keysetAnchor(ctx.runtime.features, r.query, r.cursor);
        const pageQ: FeatureQuery = { ...r.query, limit: r.limit };
        if (fmt === 'json' && r.limit <= ETAG_MAX_FEATURES && inlineCountable(pageQ)) {
          ({ rows: prefetched, matched } = await fetchPageWithCount(ctx.runtime.features, pageQ, 'geojson'));
        } else {
          matched = await countFeatures(ctx.runtime.features, r.query);
        }
      } catch (e) {
        engineProblem(e, req);
      }
      const returned = pageSize(matched, r);
      const base = baseUrlOf(req, ctx);
      const pathname = `/collections/${encodeURIComponent(layer.name)}/items`;
      const q = req.query as Record<string, unknown>;
      const f = fValue(fmt);
      const links: ApiLink[] = [{ href: withQuery(base, pathname, q, { f }), rel: 'self', type: mediaTypeOf(fmt) }];
      for (const other of [...(['json', 'html'] as Format[]), ...files]) {
        if (other !== fmt)
          links.push({
            href: withQuery(base, pathname, q, { f: fValue(other) }),
            rel: 'alternate',
            type: mediaTypeOf(other),
            title: titleOf(other),
          });
      }
      if (r.offset + returned < matched) {
        // keyset: the next page starts after this page's last feature (same cost at any depth);
        // offset for a collection without a primary key
        let next: Record<string, string | undefined> = {
          f,
          offset: String(r.offset + r.limit),
          limit: String(r.limit),
          cursor: undefined,
        };
        if (layer.primaryKey) {
          const key = await lastKeyOfPage(ctx.runtime.features, { ...r.query, limit: r.limit }).catch((e) => engineProblem(e, req));
          if (key !== undefined)
            next = {
              f,
              offset: undefined,
              limit: String(r.limit),
              cursor: encodeCursor({ key, offset: r.offset + r.limit, order: orderFingerprint(r.query) }),
            };
        }
        links.push({ href: withQuery(base, pathname, q, next), rel: 'next', type: mediaTypeOf(fmt) });
      }
      if (r.offset > 0)
        links.push({
          href: withQuery(base, pathname, q, {
            f,
            offset: String(Math.max(0, r.offset - r.limit)),
            limit: String(r.limit),
            cursor: undefined,
          }),
          rel: 'prev',
          type: mediaTypeOf(fmt),
        });
      links.push({ href: `${base}/collections/${encodeURIComponent(layer.name)}`, rel: 'collection', type: JSON_T });
      reply.header('Link', linkHeader(links));
      reply.header('Content-Crs', `<${r.crs.uri}>`);
      addFeatures(req, returned);
      const page1: FeatureQuery = { ...r.query, limit: returned };
      if (typeof fmt !== 'string') {
        // the page as a file, written by the same export as /downloads/{layer}.{ext}
        const filename = exportFileName([layer.name], r.crs.epsg, fmt);
        return sendDownload(req, reply, fmt, [page1], filename);
      }

      if (fmt === 'html') {
        const rows = returned ? await fetchFeatureRows(ctx.runtime.features, page1, 'geojson').catch((e) => engineProblem(e, req)) : [];
        const feats = rows.map((x) => JSON.parse(x.f!) as { id: unknown; properties: Record<string, unknown> });
        // the feature id is the primary key: one column for it, named as the key
        const pk = layer.primaryKey;
        const names = (feats[0] ? Object.keys(feats[0].properties) : layer.fields.map((f) => f.name)).filter((n) => n !== pk);
        const body =
          `<p>${matched} features match; ${returned} shown from offset ${r.offset}.</p>` +
          table(
            [pk ?? 'id', ...names],
            feats.map((f) => [
              a(`${base}${pathname}/${encodeURIComponent(String(f.id))}?f=html`, String(f.id)),
              ...names.map((n) => val(f.properties[n])),
            ]),
          );
        return sendWithEtag(
          req,
          reply,
          'text/html; charset=utf-8',
          page(
            `${layer.title} — items`,
            body,
            links.map((l) => ({ ...l, title: l.title ?? `${l.rel} (${l.type})` })),
          ),
        );
      }

      const info: CollectionInfo = {
        numberMatched: matched,
        numberReturned: returned,
        timeStamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        links: { extra: links.map((l) => ({ href: l.href, rel: l.rel, type: l.type })) },
        layers: [layer],
        outputEpsg: r.crs.epsg,
      };
      const writer = new GeoJsonWriter({ crsMember: false });
      if (prefetched) {
        const body =
          writer.header(info) + prefetched.map((row, i) => writer.feature(row, page1, i)).join('') + writer.footer(info, prefetched.length);
        return sendWithEtag(req, reply, writer.contentType, body);
      }
      let stream;
      try {
        stream = await openFeatureStream(ctx.runtime.features, { queries: [page1], writer, info, signal: clientSignal(reply.raw) });
      } catch (e) {
        engineProblem(e, req);
      }
      if (returned <= ETAG_MAX_FEATURES) {
        return sendWithEtag(req, reply, writer.contentType, await readAll(stream));
      }
      return reply.type(writer.contentType).send(stream);
    });

    api.get<{ Params: { collectionId: string; featureId: string } }>('/collections/:collectionId/items/:featureId', async (req, reply) => {
      const layer = collectionOf(ctx, req, req.params.collectionId);
      svc(req, 'Item', [layer.name]);
      rejectUnknown(req, ['crs']);
      const fmt = negotiate(req, ['json', 'html'], fileFormats(ctx));
      const crsParam = str(req, 'crs');
      const crs = crsParam !== undefined ? resolveCrs(layer, crsParam, 'crs') : CRS84_INFO;
      const id = req.params.featureId;
      const q: FeatureQuery = { layer, filter: { kind: 'resourceId', ids: [id] }, limit: 1, outputEpsg: crs.epsg, flipAxes: crs.flip };
      const rows = await fetchFeatureRows(ctx.runtime.features, q, 'geojson').catch((e) => engineProblem(e, req));
      if (!rows.length) throw new ServiceError('not-found', `no feature '${id}' in collection '${layer.name}'`);
      addFeatures(req, 1);
      const base = baseUrlOf(req, ctx);
      const href = `${base}/collections/${encodeURIComponent(layer.name)}/items/${encodeURIComponent(id)}`;
      const extra = crsParam !== undefined ? `&crs=${encodeURIComponent(crs.uri)}` : '';
      const links: ApiLink[] = [
        { href: `${href}?f=json${extra}`, rel: 'self', type: GEOJSON },
        { href: `${href}?f=html${extra}`, rel: 'alternate', type: HTML_T },
        { href: `${base}/collections/${encodeURIComponent(layer.name)}`, rel: 'collection', type: JSON_T },
      ];
      reply.header('Content-Crs', `<${crs.uri}>`);
      if (typeof fmt !== 'string') {
        const filename = exportFileName([layer.name], crs.epsg, fmt, id);
        return sendDownload(req, reply, fmt, [q], filename);
      }
      reply.header('Link', linkHeader(links));
      const feature = JSON.parse(rows[0].f!) as Record<string, any>;
      feature.links = links;
      return send(
        req,
        reply,
        fmt as 'json' | 'html',
        feature,
        () =>
          page(
            `${layer.title} — ${id}`,
            table(
              ['property', 'value'],
              [
                ...Object.entries(feature.properties ?? {}).map(([k, v]) => [val(k), val(v)]),
                ['geometry', val(feature.geometry?.type ?? null)],
              ],
            ),
            links.map((l) => ({ ...l, title: l.title ?? `${l.rel} (${l.type})` })),
          ),
        GEOJSON,
      );
    });
  });
}
