/**
 * REST face of the catalogue:
 *  - /catalog                JSON search API for portals (q, bbox, facets, paging, sort)
 *  - /catalog/dcat           DCAT-AP, negotiated (no Accept / *\/* → RDF/XML)
 *  - /catalog/dcat.rdf|.ttl|.jsonld   one serialisation each, no negotiation
 *  - /catalog/records/{id}   one record (JSON; ?f=rdf|ttl|jsonld|iso|html; Accept: text/html → HTML)
 *  - /catalog/records/{id}.html  the record's landing page for people (the DCAT dcat:landingPage)
 *  - /catalog/records/{id}/quality, /catalog/quality  metadata quality reports (quality-routes.ts)
 * Every DCAT page is self-contained and paged with hydra:PartialCollectionView.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { baseUrlOf } from '../ows/service.js';
import { escapeAttr, escapeText, XmlWriter } from '../ows/xml.js';
import { ServiceError, invalidParam } from '../errors/service-error.js';
import { parseBbox } from '../request/params.js';
import { buildCatalogue, datasetIri, dcatDefaults, landingPageUrl } from './dcat.js';
import { dcatRecordXml, toDcat } from './crosswalk.js';
import { sourceIsoDocument, writeIsoRecord } from './iso.js';
import { absolutise, type CatalogRecord } from './model.js';
import { getRecords, searchRecords, type SortKey } from './query.js';
import { toJsonLd, toRdfXml, toTurtle, type Graph } from './rdf.js';
import { schemaOf } from './store.js';
import { ensureCatalogReady } from './sync.js';
import { bodyBytes } from './search-cache.js';
import { cachedSearch } from './search.js';
import { recordQuality, registerQualityRoutes, type RecordQuality } from './quality-routes.js';

type Fmt = 'rdf' | 'ttl' | 'jsonld';
const MEDIA: Record<Fmt, string> = { rdf: 'application/rdf+xml', ttl: 'text/turtle', jsonld: 'application/ld+json' };
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

function negotiate(accept: string | undefined): Fmt {
  if (!accept) return 'rdf';
  const items = accept.split(',').map((s, i) => {
    const [type, ...ps] = s.trim().split(';');
    const q = ps.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return { type: type.trim().toLowerCase(), q: q ? Number(q.slice(2)) : 1, i };
  });
  items.sort((a, b) => b.q - a.q || a.i - b.i);
  for (const it of items) {
    if (it.q <= 0) continue;
    if (it.type === 'text/turtle' || it.type === 'application/x-turtle') return 'ttl';
    if (it.type === 'application/ld+json' || it.type === 'application/json') return 'jsonld';
    if (
      it.type === 'application/rdf+xml' ||
      it.type === 'application/xml' ||
      it.type === 'text/xml' ||
      it.type === '*/*' ||
      it.type === 'application/*'
    )
      return 'rdf';
  }
  return 'rdf';
}

async function serialise(g: Graph, fmt: Fmt): Promise<string> {
  if (fmt === 'ttl') return toTurtle(g);
  if (fmt === 'jsonld') return JSON.stringify(toJsonLd(g));
  return toRdfXml(g);
}

function intParam(q: Record<string, unknown>, name: string, dflt: number, min: number, max: number): number {
  const v = q[name];
  if (v === undefined || v === '') return dflt;
  const s = String(v);
  if (!/^\d+$/.test(s)) throw invalidParam(name, `parameter '${name}' must be a non-negative integer, got '${s}'`);
  const n = Number(s);
  if (n < min || n > max) throw invalidParam(name, `parameter '${name}' must be in ${min}..${max}, got ${n}`);
  return n;
}

async function dcatHandler(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, fixed: Fmt | null, path: string) {
  const q = req.query as Record<string, unknown>;
  const page = intParam(q, 'page', 1, 1, 1_000_000);
  const pageSize = intParam(q, 'pageSize', DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE);
  const fmt = fixed ?? negotiate(req.headers.accept);
  await ensureCatalogReady(ctx);
  const base = baseUrlOf(req, ctx);
  const S = schemaOf(ctx);
  // the whole page is kept in the runtime's search cache (keyed by the catalogue's version)
  const res = await cachedSearch(
    ctx,
    { where: [`type <> 'service'`], params: [], sort: [], offset: (page - 1) * pageSize, limit: pageSize },
    [base, path, fmt, q.pageSize !== undefined],
    async (records, matched) => {
      const last = Math.max(1, Math.ceil(matched / pageSize));
      if (page > last) throw new ServiceError('not-found', `page ${page} does not exist (last page: ${last})`);
      let services: CatalogRecord[] = [];
      let allIds: string[] = [];
      if (page === 1) {
        services = (await searchRecords(ctx.pool, { where: [`type = 'service'`], params: [], sort: [], offset: 0, limit: 100 }, S)).records;
        const r = await ctx.pool.query<{ identifier: string }>(`SELECT identifier FROM ${S}.records WHERE type <> 'service'`);
        allIds = r.rows.map((x) => x.identifier);
      }
      const sizeParam = q.pageSize !== undefined ? `&pageSize=${pageSize}` : '';
      // whole-catalogue figures, the same on every page: first issue, last change, extent
      const sum = await ctx.pool.query<{ issued: string | null; modified: string | null; b: number[] | null }>(
        `SELECT issued, modified, CASE WHEN e IS NULL THEN NULL ELSE ARRAY[ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)] END AS b
           FROM (SELECT min(coalesce(issued, modified)) AS issued, max(modified) AS modified, ST_Extent(extent) AS e
                   FROM ${S}.records) s`,
      );
      const row = sum.rows[0];
      const g = buildCatalogue(ctx, base, {
        datasets: records,
        services,
        allDatasetIds: allIds,
        total: matched,
        page,
        pageSize,
        pageUrl: (p) => `${base}${path}?page=${p}${sizeParam}`,
        summary: row
          ? {
              issued: row.issued,
              modified: row.modified,
              bbox: row.b ? (row.b.map(Number) as [number, number, number, number]) : null,
            }
          : undefined,
      });
      return serialise(g, fmt);
    },
  );
  if (!fixed) reply.header('Vary', 'Accept');
  return reply.code(200).type(`${MEDIA[fmt]}; charset=utf-8`).send(bodyBytes(res));
}

const SORTS: Record<string, SortKey> = {
  title: { sql: 'title', desc: false },
  '-title': { sql: 'title', desc: true },
  modified: { sql: 'modified', desc: false },
  '-modified': { sql: 'modified', desc: true },
  identifier: { sql: 'identifier', desc: false },
};

function recordJson(r: CatalogRecord, base: string) {
  const id = encodeURIComponent(r.identifier);
  return {
    identifier: r.identifier,
    type: r.type,
    title: r.title,
    abstract: r.abstract,
    keywords: r.keywords,
    themes: r.themes,
    licence: r.licence,
    organisation: r.publisher?.organisation ?? r.publisher?.name ?? r.contact?.organisation ?? null,
    contact: r.contact,
    modified: r.modified,
    language: r.language,
    bbox: r.bbox,
    crs: r.crs.map((c) => `EPSG:${c}`),
    featureCount: r.featureCount ?? null,
    layer: r.layerName ?? null,
    serviceType: r.serviceType ?? null,
    source: r.source,
    links: [
      ...r.links.map((l) => ({
        href: absolutise(l.url, base),
        protocol: l.protocol,
        name: l.name,
        title: l.title,
        type: l.mediaType,
        function: l.function,
      })),
      { href: datasetIri(base, r.identifier), rel: 'self', type: 'application/json' },
      { href: landingPageUrl(base, r.identifier), rel: 'alternate', type: 'text/html' },
      { href: `${base}/catalog/records/${id}?f=ttl`, rel: 'alternate', type: 'text/turtle' },
      { href: `${base}/catalog/records/${id}?f=iso`, rel: 'alternate', type: 'application/vnd.iso.19139+xml' },
      {
        href: `${base}/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecordById&ID=${id}&OUTPUTSCHEMA=${encodeURIComponent('http://www.isotc211.org/2005/gmd')}&ELEMENTSETNAME=full`,
        rel: 'describedby',
        type: 'application/xml',
      },
    ],
  };
}

async function searchHandler(ctx: AppContext, req: FastifyRequest, reply: FastifyReply) {
  const q = req.query as Record<string, unknown>;
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  let sort: SortKey[] = [];
  let rank: string | undefined;
  const limit = intParam(q, 'limit', 20, 0, 500);
  const offset = intParam(q, 'offset', 0, 0, 10_000_000);
  const list = (name: string) => {
    const v = q[name];
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [v]).map(String).filter(Boolean);
  };
  const text = list('q').join(' ').trim();
  if (text) {
    where.push(
      `(tsv @@ websearch_to_tsquery('${schemaOf(ctx)}.french_unaccent', ${p(text)}) OR unaccent(title) ILIKE unaccent(${p(`%${text.replace(/[\\%_]/g, (m) => `\\${m}`)}%`)}))`,
    );
    rank = text;
  }
  const bboxRaw = list('bbox')[0];
  if (bboxRaw) {
    const b = parseBbox(bboxRaw, { locator: 'bbox' }); // minLon,minLat,maxLon,maxLat
    where.push(`extent && ST_MakeEnvelope(${p(b.minx)}, ${p(b.miny)}, ${p(b.maxx)}, ${p(b.maxy)}, 4326)`);
  }
  for (const k of list('keyword')) where.push(`lower(${p(k)}) = ANY(SELECT lower(x) FROM unnest(keywords) x)`);
  for (const t of list('theme'))
    where.push(
      `EXISTS (SELECT 1 FROM jsonb_array_elements(themes) t WHERE t->>'uri' = ${p(t)} OR lower(t->>'label') = lower(${p(t)}) OR lower(t->>'uri') LIKE '%/' || lower(${p(t)}))`,
    );
  for (const o of list('organisation')) where.push(`lower(organisation) = lower(${p(o)})`);
  for (const t of list('type')) where.push(`type = ${p(t)}`);
  const s = list('sort')[0];
  if (s) {
    if (s === 'relevance') sort = [];
    else if (SORTS[s]) {
      sort = [SORTS[s]];
      rank = undefined;
    } else throw invalidParam('sort', `sort must be one of relevance, ${Object.keys(SORTS).join(', ')}`);
  }
  await ensureCatalogReady(ctx);
  const base = baseUrlOf(req, ctx);
  const res = await searchRecords(ctx.pool, { where, params, sort, offset, limit, rankQuery: rank }, schemaOf(ctx));
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const facetSql = (expr: string) =>
    `SELECT v AS value, count(*)::int AS count FROM (SELECT ${expr} AS v FROM ${schemaOf(ctx)}.records ${w}) s WHERE v IS NOT NULL GROUP BY v ORDER BY count(*) DESC, v LIMIT 50`;
  const [kw, th, org, ty] = await Promise.all([
    ctx.pool.query(facetSql('unnest(keywords)'), params),
    ctx.pool.query(
      `SELECT t->>'uri' AS uri, t->>'label' AS label, count(*)::int AS count FROM ${schemaOf(ctx)}.records, jsonb_array_elements(themes) t ${w} GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 50`,
      params,
    ),
    ctx.pool.query(facetSql('organisation'), params),
    ctx.pool.query(facetSql('type'), params),
  ]);
  const selfQs = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) for (const x of Array.isArray(v) ? v : [v]) if (k !== 'offset') selfQs.append(k, String(x));
  const url = (off: number) => {
    const s = new URLSearchParams(selfQs);
    s.set('offset', String(off));
    return `${base}/catalog?${s.toString()}`;
  };
  const links: { rel: string; href: string; type: string }[] = [{ rel: 'self', href: url(offset), type: 'application/json' }];
  if (offset + res.records.length < res.matched && limit > 0)
    links.push({ rel: 'next', href: url(offset + limit), type: 'application/json' });
  if (offset > 0) links.push({ rel: 'prev', href: url(Math.max(0, offset - limit)), type: 'application/json' });
  links.push({ rel: 'alternate', href: `${base}/catalog/dcat.ttl`, type: 'text/turtle' });
  return reply.type('application/json; charset=utf-8').send({
    total: res.matched,
    offset,
    limit,
    returned: res.records.length,
    records: res.records.map((r) => recordJson(r, base)),
    facets: { keywords: kw.rows, themes: th.rows, organisations: org.rows, types: ty.rows },
    links,
  });
}

async function recordHandler(ctx: AppContext, req: FastifyRequest, reply: FastifyReply) {
  let id = (req.params as { id: string }).id;
  let f = String((req.query as Record<string, unknown>).f ?? '').toLowerCase();
  await ensureCatalogReady(ctx);
  let [r] = await getRecords(ctx.pool, [id], schemaOf(ctx));
  if (!r && id.endsWith('.html')) {
    // /catalog/records/{id}.html: the landing page (an identifier ending in .html wins, above)
    id = id.slice(0, -5);
    [r] = await getRecords(ctx.pool, [id], schemaOf(ctx));
    if (r) f = 'html';
  }
  if (!r) throw new ServiceError('not-found', `no catalogue record '${id}'`);
  const base = baseUrlOf(req, ctx);
  if (!f && /text\/html/.test(req.headers.accept ?? '') && !/json/.test(req.headers.accept ?? '')) f = 'html';
  if (f === 'html') return reply.type('text/html; charset=utf-8').send(recordHtml(r, base, recordQuality(ctx, r, base)));
  // records received as DCAT / ISO 19139 come back as received (docs/catalogue-store.md); the
  // others are written with this server's DCAT-AP defaults (a discovery service serves every dataset)
  const dcatArgs = async () =>
    [
      dcatDefaults(ctx.config),
      r.type === 'service'
        ? (
            await ctx.pool.query<{ identifier: string }>(`SELECT identifier FROM ${schemaOf(ctx)}.records WHERE type <> 'service'`)
          ).rows.map((x) => x.identifier)
        : undefined,
    ] as const;
  if (f === 'rdf') return reply.type(`${MEDIA[f]}; charset=utf-8`).send(dcatRecordXml(r, base, ...(await dcatArgs())));
  if (f === 'ttl' || f === 'jsonld') {
    return reply.type(`${MEDIA[f]}; charset=utf-8`).send(await serialise(toDcat(r, base, ...(await dcatArgs())), f));
  }
  if (f === 'iso' || f === 'xml') {
    const doc = sourceIsoDocument(r);
    if (doc) return reply.type('application/vnd.iso.19139+xml; charset=utf-8').send(`<?xml version="1.0" encoding="UTF-8"?>\n${doc}`);
    const w = new XmlWriter();
    writeIsoRecord(w, r, {
      base,
      elementSet: 'full',
      fallbackOrganisation: ctx.config.service.contact.organisation || ctx.config.service.title,
    });
    return reply.type('application/vnd.iso.19139+xml; charset=utf-8').send(w.toString());
  }
  if (f && f !== 'json') throw invalidParam('f', `f must be json, html, rdf, ttl, jsonld or iso`);
  return reply.type('application/json; charset=utf-8').send(recordJson(r, base));
}

/** The landing page of a record for people: what it is, its extent and dates, how to get it. */
export function recordHtml(r: CatalogRecord, base: string, quality?: RecordQuality): string {
  const e = escapeText;
  const a = escapeAttr;
  const id = encodeURIComponent(r.identifier);
  const lang = r.language === 'eng' ? 'en' : r.language === 'ger' ? 'de' : 'fr';
  const row = (k: string, v: string | null | undefined) => (v ? `<tr><th scope="row">${e(k)}</th><td>${v}</td></tr>` : '');
  const org = r.publisher?.organisation ?? r.publisher?.name ?? r.contact?.organisation ?? r.contact?.name;
  const contact = r.contact
    ? [r.contact.organisation ?? r.contact.name, r.contact.email ? `<a href="mailto:${a(r.contact.email)}">${e(r.contact.email)}</a>` : '']
        .filter(Boolean)
        .map((x) => (x!.startsWith('<a') ? x : e(x!)))
        .join(' — ')
    : null;
  const links = r.links
    .map((l) => {
      const href = absolutise(l.url, base);
      const label = l.title ?? l.name ?? href;
      const kind = [l.protocol, l.format].filter(Boolean).join(', ');
      return `<li><a href="${a(href)}">${e(label)}</a>${kind ? ` <small>(${e(kind)})</small>` : ''}${l.description && l.description !== label ? `<br>${e(l.description)}` : ''}</li>`;
    })
    .join('\n');
  const formats = [
    ['JSON', `${datasetIri(base, r.identifier)}`],
    ['DCAT (Turtle)', `${base}/catalog/records/${id}?f=ttl`],
    ['DCAT (RDF/XML)', `${base}/catalog/records/${id}?f=rdf`],
    ['DCAT (JSON-LD)', `${base}/catalog/records/${id}?f=jsonld`],
    ['ISO 19139', `${base}/catalog/records/${id}?f=iso`],
  ];
  const bbox = r.bbox ? r.bbox.map((n) => Number(n.toFixed(6))).join(', ') : null;
  const period = r.temporalStart || r.temporalEnd ? `${e(r.temporalStart ?? '…')} → ${e(r.temporalEnd ?? '…')}` : null;
  return `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(r.title)}</title>
<link rel="alternate" type="application/json" href="${a(datasetIri(base, r.identifier))}">
<link rel="alternate" type="text/turtle" href="${a(`${base}/catalog/records/${id}?f=ttl`)}">
<link rel="alternate" type="application/rdf+xml" href="${a(`${base}/catalog/records/${id}?f=rdf`)}">
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}th{text-align:left;padding-right:1rem;vertical-align:top}</style>
</head>
<body>
<p><a href="${a(`${base}/catalog`)}">Catalogue</a></p>
<h1>${e(r.title)}</h1>
<p>${e(r.abstract || r.title).replace(/\n/g, '<br>')}</p>
<table>
${[
  row('Identifiant', e(r.identifier)),
  row('Type', e(r.type)),
  row('Organisation', org ? e(org) : null),
  row('Contact', contact),
  row('Mots-clés', r.keywords.length ? e(r.keywords.join(', ')) : null),
  row('Thèmes', r.themes.length ? r.themes.map((t) => `<a href="${a(t.uri)}">${e(t.label)}</a>`).join(', ') : null),
  row('Licence', r.licence ? `<a href="${a(r.licence.url)}">${e(r.licence.label ?? r.licence.url)}</a>` : null),
  row('Droits', r.rights ? e(r.rights) : null),
  row('Emprise (lon/lat)', bbox ? e(bbox) : null),
  row('Période', period),
  row('Mise à jour', r.modified ? e(r.modified) : null),
  row('Publication', r.issued ? e(r.issued) : null),
  row('Généalogie', r.lineage ? e(r.lineage) : null),
  row('Source', r.source !== 'local' ? e(r.source) : null),
]
  .filter(Boolean)
  .join('\n')}
</table>
${links ? `<h2>Accès aux données</h2>\n<ul>\n${links}\n</ul>` : ''}
${qualityHtml(r, base, quality)}
<h2>Métadonnées</h2>
<ul>
${formats.map(([k, u]) => `<li><a href="${a(u)}">${e(k)}</a></li>`).join('\n')}
</ul>
</body>
</html>
`;
}

/** The landing page's quality section: declared conformity and the checks that failed. */
function qualityHtml(r: CatalogRecord, base: string, q: RecordQuality | undefined): string {
  const e = escapeText;
  const conformity = (r.conformity ?? [])
    .map(
      (c) =>
        `<li>${e(c.title)}${c.date ? ` (${e(c.date)})` : ''} : ${c.pass === true ? 'conforme' : c.pass === false ? 'non conforme' : 'non évalué'}</li>`,
    )
    .join('\n');
  if (!q && !conformity) return '';
  const name =
    q?.report.profile === 'INSPIRE-TG-MD-2.0' ? 'INSPIRE (guide technique des métadonnées 2.0)' : 'vocabulaires de l’UE (DCAT-AP 3.0.1)';
  const fails = q?.report.checks.filter((c) => c.status !== 'pass') ?? [];
  const report = q
    ? `<p>${e(name)}${q.basis === 'crosswalk' ? ' — sur la fiche ISO 19139 produite par ce serveur' : ''} : ${
        q.report.conformant ? 'toutes les exigences vérifiées sont satisfaites' : `${q.report.failed.length} exigence(s) non satisfaite(s)`
      } (<a href="${escapeAttr(`${base}/catalog/records/${encodeURIComponent(r.identifier)}/quality`)}">rapport</a>).</p>${
        fails.length
          ? `\n<ul>\n${fails.map((c) => `<li>${c.req ? `${e(c.req)} ` : ''}${e(c.title)} : ${e(c.detail ?? c.status)}</li>`).join('\n')}\n</ul>`
          : ''
      }`
    : '';
  return `<h2>Qualité des métadonnées</h2>\n${conformity ? `<p>Conformité déclarée :</p>\n<ul>\n${conformity}\n</ul>\n` : ''}${report}`;
}

export function registerCatalogRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/catalog', (req, reply) => searchHandler(ctx, req, reply));
  app.get('/catalog/dcat', (req, reply) => dcatHandler(ctx, req, reply, null, '/catalog/dcat'));
  app.get('/catalog/dcat.rdf', (req, reply) => dcatHandler(ctx, req, reply, 'rdf', '/catalog/dcat.rdf'));
  app.get('/catalog/dcat.ttl', (req, reply) => dcatHandler(ctx, req, reply, 'ttl', '/catalog/dcat.ttl'));
  app.get('/catalog/dcat.jsonld', (req, reply) => dcatHandler(ctx, req, reply, 'jsonld', '/catalog/dcat.jsonld'));
  app.get('/catalog/records/:id', (req, reply) => recordHandler(ctx, req, reply));
  registerQualityRoutes(app, ctx);
}
