/** OGC API – Features: the collections and each collection (extent, CRS list, links to items and queryables). */
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import { baseUrlOf } from '../../ows/service.js';
import { layersFor } from '../../security/access.js';
import { crsUri } from '../../filter/crs-names.js';
import { CRS84, fValue, linkHeader, negotiate, rejectUnknown, supportedCrs, type ApiLink } from './common.js';
import { a, page, table, val } from './html.js';
import { GEOJSON, HTML_T, JSON_T, REL_QUERYABLES, collectionOf, fileFormats, send, svc, type OgcApiRoutes } from './respond.js';

async function collectionDoc(ctx: AppContext, base: string, layer: Layer) {
  const href = `${base}/collections/${encodeURIComponent(layer.name)}`;
  const e = layer.wgs84Extent;
  const extent: Record<string, unknown> = {
    spatial: { bbox: [e ? [e.minx, e.miny, e.maxx, e.maxy] : [-180, -90, 180, 90]], crs: CRS84 },
  };
  const t = await ctx.runtime.temporalExtents.of(layer, ctx.registry.version);
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

export const registerCollectionRoutes: OgcApiRoutes = (api, ctx) => {
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
};
