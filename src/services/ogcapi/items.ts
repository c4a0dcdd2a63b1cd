/**
 * OGC API – Features: the items of a collection (a page, planned by src/features/plan.ts like the
 * other front doors' collections) and one item, as GeoJSON, HTML or a file of the format table.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { baseUrlOf } from '../../ows/service.js';
import { ServiceError } from '../../errors/service-error.js';
import { classify } from '../../errors/classify.js';
import { addFeatures } from '../../ops/tags.js';
import {
  ExportError,
  GeoJsonWriter,
  checkQuery,
  clientSignal,
  countFeatures,
  encodeCursor,
  fetchFeatureRows,
  fetchPageWithCount,
  keysetAnchor,
  lastKeyOfPage,
  openFeatureStream,
  orderFingerprint,
  type CollectionInfo,
  type FeatureQuery,
  type FeatureRow,
  type FormatDef,
} from '../../features/index.js';
import { deliveryOf, neighbourPages, pageQuery, planCollection, returnedOf } from '../../features/plan.js';
import { exportFileName, sendExport } from '../downloads/export.js';
import {
  CRS84_INFO,
  fValue,
  linkHeader,
  negotiate,
  rejectUnknown,
  resolveCrs,
  sendWithEtag,
  str,
  withQuery,
  type ApiLink,
  type Format,
} from './common.js';
import { a, page, table, val } from './html.js';
import { ITEMS_PARAMS, isQueryableParam, readItemsRequest } from './params.js';
import {
  GEOJSON,
  HTML_T,
  JSON_T,
  collectionOf,
  engineProblem,
  fileFormats,
  mediaTypeOf,
  send,
  svc,
  titleOf,
  type OgcApiRoutes,
} from './respond.js';

/** Items pages up to this many features are read whole to give them an ETag; larger ones stream. */
const ETAG_MAX_FEATURES = 100;

/** Items as a file: the shared export; its limits become problems naming `f`. */
async function sendDownload(
  ctx: AppContext,
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

export const registerItemsRoutes: OgcApiRoutes = (api, ctx) => {
  api.get<{ Params: { collectionId: string } }>('/collections/:collectionId/items', async (req, reply) => {
    const layer = collectionOf(ctx, req, req.params.collectionId);
    svc(req, 'Items', [layer.name]);
    rejectUnknown(req, ITEMS_PARAMS, isQueryableParam(layer));
    const files = fileFormats(ctx);
    const fmt = negotiate(req, ['json', 'html'], files);
    const r = readItemsRequest(req, layer, ctx.config);
    const db = ctx.runtime.features;
    const signal = clientSignal(reply.raw);
    try {
      checkQuery(r.query);
      if (r.cursor) r.query.after = await keysetAnchor(db, r.query, r.cursor, signal);
    } catch (e) {
      engineProblem(e, req);
    }
    // numberMatched goes into the Link header and the page's size decides how it is sent: known
    // before any byte, carried by a page read whole when it can be
    const limits = ctx.config.limits;
    const plan = planCollection({
      queries: [r.query],
      start: r.offset,
      page: { asked: r.limit, default: limits.itemsDefaultLimit, max: limits.itemsMaxLimit },
      output: typeof fmt === 'string' ? 'features' : 'file',
      totals: 'before',
      bufferUpTo: fmt === 'html' ? Number.POSITIVE_INFINITY : ETAG_MAX_FEATURES,
      cursors: true,
    });
    const pageQ = pageQuery(plan, r.query);
    let matched: number;
    let rows: FeatureRow[] | undefined;
    try {
      if (plan.count === 'carried') ({ rows, matched } = await fetchPageWithCount(db, pageQ, 'geojson', {}, signal));
      else matched = await countFeatures(db, r.query, signal);
    } catch (e) {
      engineProblem(e, req);
    }
    const returned = returnedOf(plan, matched);
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
    const around = neighbourPages(plan, returned, matched);
    const limit = String(plan.limit);
    if (around.next !== undefined) {
      // keyset: the next page starts after this page's last feature (same cost at any depth);
      // offset for a collection without a primary key
      let next: Record<string, string | undefined> = { f, offset: String(around.next), limit, cursor: undefined };
      if (plan.next === 'keyset') {
        const key = await lastKeyOfPage(db, pageQ, signal).catch((e) => engineProblem(e, req));
        if (key !== undefined)
          next = { f, offset: undefined, limit, cursor: encodeCursor({ key, offset: around.next, order: orderFingerprint(r.query) }) };
      }
      links.push({ href: withQuery(base, pathname, q, next), rel: 'next', type: mediaTypeOf(fmt) });
    }
    if (around.prev !== undefined)
      links.push({
        href: withQuery(base, pathname, q, { f, offset: String(around.prev), limit, cursor: undefined }),
        rel: 'prev',
        type: mediaTypeOf(fmt),
      });
    links.push({ href: `${base}/collections/${encodeURIComponent(layer.name)}`, rel: 'collection', type: JSON_T });
    reply.header('Link', linkHeader(links));
    reply.header('Content-Crs', `<${r.crs.uri}>`);
    addFeatures(req, returned);
    const page1: FeatureQuery = { ...pageQ, limit: returned };
    if (typeof fmt !== 'string') {
      // the page as a file, written by the same export as /downloads/{layer}.{ext}
      const filename = exportFileName([layer.name], r.crs.epsg, fmt);
      return sendDownload(ctx, req, reply, fmt, [page1], filename);
    }
    if (deliveryOf(plan, returned) === 'buffer') {
      rows ??= returned ? await fetchFeatureRows(db, page1, 'geojson', {}, signal).catch((e) => engineProblem(e, req)) : [];
    }

    if (fmt === 'html') {
      const feats = (rows ?? []).map((x) => JSON.parse(x.f!) as { id: unknown; properties: Record<string, unknown> });
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
    if (rows) {
      const body = writer.header(info) + rows.map((row, i) => writer.feature(row, page1, i)).join('') + writer.footer(info, rows.length);
      return sendWithEtag(req, reply, writer.contentType, body);
    }
    let stream;
    try {
      stream = await openFeatureStream(db, { queries: [page1], writer, info, signal });
    } catch (e) {
      engineProblem(e, req);
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
      return sendDownload(ctx, req, reply, fmt, [q], filename);
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
};
