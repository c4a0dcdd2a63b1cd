/** Landing page (HTML and JSON) and health endpoints. */
import { processSlot } from '../cluster.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { baseUrlOf } from '../ows/service.js';
import { escapeText as esc } from '../ows/xml.js';
import { layersFor, publicLayers } from '../security/access.js';
import { downloadLinks } from './downloads/index.js';
import { serverFormats } from '../features/formats.js';

export function wantsJson(req: FastifyRequest): boolean {
  const f = String((req.query as Record<string, unknown>)?.f ?? '').toLowerCase();
  if (f) return f === 'json' || f === 'application/json';
  const accept = String(req.headers.accept ?? '');
  if (!accept) return true;
  const iJson = accept.indexOf('json');
  const iHtml = accept.indexOf('text/html');
  if (iHtml < 0) return iJson >= 0 || accept.includes('*/*');
  return iJson >= 0 && iJson < iHtml;
}

export function landingDocument(ctx: AppContext, base: string, req?: FastifyRequest) {
  const offered = serverFormats(ctx);
  const services = [
    {
      name: 'WMS',
      title: 'Web Map Service 1.3.0 / 1.1.1',
      url: `${base}/wms`,
      capabilities: `${base}/wms?SERVICE=WMS&REQUEST=GetCapabilities`,
    },
    {
      name: 'WFS',
      title: 'Web Feature Service 2.0.0 / 1.1.0',
      url: `${base}/wfs`,
      capabilities: `${base}/wfs?SERVICE=WFS&REQUEST=GetCapabilities`,
    },
    {
      name: 'WMTS',
      title: 'Web Map Tile Service 1.0.0',
      url: `${base}/wmts`,
      capabilities: `${base}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities`,
    },
    { name: 'CSW', title: 'Catalogue Service 2.0.2', url: `${base}/csw`, capabilities: `${base}/csw?SERVICE=CSW&REQUEST=GetCapabilities` },
  ];
  return {
    title: ctx.config.service.title,
    description: ctx.config.service.abstract,
    services,
    qgis: {
      WMS: `${base}/wms`,
      WFS: `${base}/wfs`,
      WMTS: `${base}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities`,
      CSW: `${base}/csw`,
    },
    layers: (req ? layersFor(ctx, req).list() : publicLayers(ctx.registry)).map((l) => ({
      name: l.name,
      title: l.title,
      /** The layer's page (the OGC API collection, with its items, queryables and downloads). */
      href: `${base}/collections/${encodeURIComponent(l.name)}?f=html`,
      table: `${l.schema}.${l.table}`,
      geometryType: l.geometryType,
      srid: l.srid,
      crs: `EPSG:${l.srid}`,
      extent: l.extent ? [l.extent.minx, l.extent.miny, l.extent.maxx, l.extent.maxy] : null,
      wgs84Extent: l.wgs84Extent ? [l.wgs84Extent.minx, l.wgs84Extent.miny, l.wgs84Extent.maxx, l.wgs84Extent.maxy] : null,
      rowEstimate: l.rowEstimate,
      primaryKey: l.primaryKey,
      fields: l.fields.map((f) => ({ name: f.name, type: f.type })),
      downloads: downloadLinks(base, l, offered),
    })),
    links: [
      { rel: 'self', type: 'application/json', href: `${base}/?f=json` },
      { rel: 'alternate', type: 'text/html', href: `${base}/?f=html` },
      { rel: 'service-desc', type: 'application/yaml', href: `${base}/openapi.yaml` },
      // OGC API – Features (src/services/ogcapi) is mounted at the root: this page is its landing page
      { rel: 'service-desc', type: 'application/vnd.oai.openapi+json;version=3.0', href: `${base}/api` },
      { rel: 'service-doc', type: 'text/html', href: `${base}/api.html` },
      { rel: 'conformance', type: 'application/json', href: `${base}/conformance` },
      { rel: 'data', type: 'application/json', href: `${base}/collections` },
      { rel: 'status', type: 'application/json', href: `${base}/readyz` },
      { rel: 'search', type: 'application/json', href: `${base}/catalog` },
      { rel: 'data', type: 'application/rdf+xml', href: `${base}/catalog/dcat.rdf` },
      { rel: 'data', type: 'text/turtle', href: `${base}/catalog/dcat.ttl` },
      { rel: 'data', type: 'application/ld+json', href: `${base}/catalog/dcat.jsonld` },
    ],
  };
}

function landingHtml(doc: ReturnType<typeof landingDocument>): string {
  const rows = doc.layers
    .map(
      (l) =>
        `<tr><td><a href="${esc(l.href)}"><code>${esc(l.name)}</code></a></td><td>${esc(l.title)}</td><td>${esc(l.geometryType)}</td><td>${esc(l.crs)}</td>` +
        `<td>${l.rowEstimate.toLocaleString('fr-FR')}</td><td>${l.wgs84Extent ? l.wgs84Extent.map((n) => n.toFixed(4)).join(', ') : '—'}</td>` +
        `<td>${l.downloads.map((d) => `<a href="${esc(d.href)}" type="${esc(d.mediaType)}">${esc(d.href.slice(d.href.lastIndexOf('.') + 1))}</a>`).join(' ')}</td></tr>`,
    )
    .join('\n');
  const svc = doc.services
    .map(
      (s) =>
        `<li><strong>${esc(s.name)}</strong> — ${esc(s.title)}: <code>${esc(s.url)}</code> (<a href="${esc(s.capabilities)}">capabilities</a>)</li>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>${esc(doc.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}code{background:#f4f4f4;padding:0 .2em}</style>
</head><body>
<h1>${esc(doc.title)}</h1>
<p>${esc(doc.description)}</p>
<h2>Services</h2>
<ul>
${svc}
</ul>
<h2>Add to QGIS</h2>
<p>In QGIS, <em>Layer → Add Layer → Add WMS/WMTS Layer…</em> (or WFS), <em>New</em>, and paste the URL:</p>
<ul>
<li>WMS: <code>${esc(doc.qgis.WMS)}</code></li>
<li>WFS: <code>${esc(doc.qgis.WFS)}</code></li>
<li>WMTS: <code>${esc(doc.qgis.WMTS)}</code></li>
<li>CSW (MetaSearch): <code>${esc(doc.qgis.CSW)}</code></li>
</ul>
<h2>Layers</h2>
<table><thead><tr><th>name</th><th>title</th><th>geometry</th><th>CRS</th><th>rows (est.)</th><th>WGS 84 extent</th><th>download</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>OGC API – Features</h2>
<p><a href="/collections?f=html">collections</a> · <a href="/conformance?f=html">conformance</a> · <a href="/api.html">API</a> (OpenAPI: <a href="/api">JSON</a>, <a href="/openapi.yaml">YAML</a>)</p>
<h2>Catalogue</h2>
<p>Search: <a href="/catalog">/catalog</a> (JSON) · DCAT-AP for harvesters: <a href="/catalog/dcat.rdf">RDF/XML</a>, <a href="/catalog/dcat.ttl">Turtle</a>, <a href="/catalog/dcat.jsonld">JSON-LD</a> · CSW: <code>${esc(doc.qgis.CSW)}</code></p>
<p><a href="?f=json">JSON</a> · <a href="/readyz">status</a></p>
</body></html>`;
}

export function registerLanding(app: FastifyInstance, ctx: AppContext): void {
  app.get('/', async (req, reply) => {
    const doc = landingDocument(ctx, baseUrlOf(req, ctx), req);
    if (wantsJson(req)) return reply.type('application/json; charset=utf-8').send(doc);
    return reply.type('text/html; charset=utf-8').send(landingHtml(doc));
  });

  app.get('/healthz', async () => ({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }));

  app.get('/readyz', async (req, reply) => {
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      // a pool whose every connection is held (starved by stuck streams, or saturated) makes the
      // process unable to serve: it is not ready, and says so within 2 s instead of hanging
      const connecting = ctx.pool.connect();
      let timer: NodeJS.Timeout | undefined;
      const client = await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            connecting.then(
              (c) => c.release(),
              () => undefined,
            );
            reject(
              new Error(
                `no database connection free within 2 s (pool: ${ctx.pool.totalCount} open, ${ctx.pool.idleCount} idle, ${ctx.pool.waitingCount} waiting)`,
              ),
            );
          }, 2000);
        }),
      ]).finally(() => clearTimeout(timer));
      try {
        await client.query({ text: 'SELECT 1', query_timeout: 2000 } as never);
        checks.database = 'ok';
      } finally {
        client.release();
      }
    } catch (e) {
      ok = false;
      checks.database = `unavailable: ${(e as Error).message}`;
    }
    // every export slot held with no slot given back for longer than any statement may run: stuck
    const exports = ctx.runtime.gates.stream;
    const stalled = exports.stalledMs();
    const limit = (ctx.config.database.statementTimeoutMs ?? 60_000) + 10_000;
    if (stalled > limit) {
      ok = false;
      checks.exports = `stalled: all ${exports.max} export slots held for ${Math.round(stalled / 1000)} s`;
    } else checks.exports = `ok (${exports.active}/${exports.max} active, ${exports.queued} queued)`;
    // the layers this caller may read: the count of restricted layers is not everyone's to know
    if (ctx.registry.loaded) checks.registry = `ok (${layersFor(ctx, req).list().length} layers, version ${ctx.registry.version})`;
    else {
      ok = false;
      checks.registry = 'not loaded';
    }
    // in a cluster, the worker that answered (src/cluster.ts): a load balancer's check is per process
    const slot = processSlot();
    return reply
      .code(ok ? 200 : 503)
      .send({ status: ok ? 'ready' : 'not ready', ...(slot !== undefined ? { process: slot } : {}), checks });
  });
}
