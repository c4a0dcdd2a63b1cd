/**
 * Local catalogue records derived from the layer registry and enriched from config.
 *
 * Identifiers: a layer's record identifier is `layer.metadata.identifier` when configured, else
 * a UUID derived deterministically from the layer name (SHA-1 of `geodata-server:layer:<name>`,
 * formatted as a version-5-style UUID). It stays the same across restarts and machines, and is
 * used both as the ISO fileIdentifier / resource identifier code and as the DCAT dct:identifier.
 * When `service.inspire.spatialDatasetIdentifierNamespace` is set it is written as the ISO
 * codeSpace and the identifier becomes `<namespace>/<code>` (what the GeoDCAT-AP XSLT builds).
 * Service records use `geodata-server:service:<WMS|WFS|WMTS|CSW>` the same way.
 */
import { EDIT_OPS } from '../changes/schema.js';
import { downloadLinks } from '../services/downloads/index.js';
import { serverFormats } from '../features/formats.js';
import type { FormatDef } from '../features/formats.js';
import { createHash } from 'node:crypto';
import type { AppContext } from '../context.js';
import type { Layer } from '../registry/types.js';
import { publicLayers } from '../security/access.js';
import {
  EU_FREQUENCIES,
  KNOWN_LICENCES,
  resolveTheme,
  type Agent,
  type CatalogRecord,
  type Licence,
  type Link,
  type Theme,
} from './model.js';
import { replaceSource, schemaOf } from './store.js';

export function deterministicUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function joinId(ns: string | undefined, code: string): string {
  if (!ns) return code;
  return ns.endsWith('/') ? ns + code : `${ns}/${code}`;
}

/** The record identifier of a layer (stable; see the module comment). */
export function layerIdentifier(ctx: AppContext, layer: Layer): { identifier: string; code: string; codeSpace: string | null } {
  const md = (layer.extra.metadata ?? {}) as Record<string, unknown>;
  const ns = ctx.config.service.inspire?.spatialDatasetIdentifierNamespace;
  const code = typeof md.identifier === 'string' && md.identifier ? md.identifier : deterministicUuid(`geodata-server:layer:${layer.name}`);
  return { identifier: joinId(ns, code), code, codeSpace: ns ?? null };
}

export function serviceIdentifier(ctx: AppContext, service: string): string {
  return joinId(ctx.config.service.inspire?.spatialDatasetIdentifierNamespace, deterministicUuid(`geodata-server:service:${service}`));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

function agentOf(v: unknown): Agent | null {
  if (!v || typeof v !== 'object') return typeof v === 'string' ? { organisation: v, name: v } : null;
  const o = v as Record<string, unknown>;
  const a: Agent = {
    name: str(o.name) ?? str(o.person) ?? str(o.organisation),
    organisation: str(o.organisation) ?? str(o.name),
    email: str(o.email),
    url: str(o.url),
    phone: str(o.phone),
  };
  return a.name || a.organisation ? a : null;
}

function licenceOf(v: unknown): Licence | null {
  if (!v) return null;
  if (typeof v === 'string') {
    const k = KNOWN_LICENCES[v.toLowerCase()];
    if (k) return k;
    return /^https?:\/\//.test(v) ? { url: v } : null;
  }
  const o = v as Record<string, unknown>;
  const url = str(o.url);
  return url ? { url, label: str(o.label) ?? str(o.title) } : null;
}

function dateOf(v: unknown): string | undefined {
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  const s = str(v);
  return s && /^\d{4}-\d{2}-\d{2}/.test(s) ? s : undefined;
}

/** Relative service/download links of a layer; downloads in the formats given (those this server offers). */
export function layerLinks(layer: Layer, formats: readonly FormatDef[]): Link[] {
  const n = encodeURIComponent(layer.name);
  return [
    {
      url: '/wms?SERVICE=WMS&REQUEST=GetCapabilities',
      protocol: 'OGC:WMS',
      name: layer.name,
      title: `${layer.title} (WMS)`,
      description: 'Service de visualisation WMS',
      function: 'browsing',
    },
    {
      url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities',
      protocol: 'OGC:WFS',
      name: layer.name,
      title: `${layer.title} (WFS)`,
      description: 'Service de téléchargement WFS',
      function: 'download',
    },
    {
      url: '/wmts?SERVICE=WMTS&REQUEST=GetCapabilities',
      protocol: 'OGC:WMTS',
      name: layer.name,
      title: `${layer.title} (WMTS)`,
      description: 'Service de tuiles WMTS',
      function: 'browsing',
    },
    {
      url: `/collections/${n}`,
      protocol: 'OGC API - Features',
      name: layer.name,
      title: `${layer.title} (OGC API Features)`,
      description: 'OGC API – Features',
      function: 'information',
      mediaType: 'application/json',
    },
    // every file format of /downloads/{layer}.{ext}, with its EU file-type code and media type
    ...downloadLinks('', layer, formats).map(
      (d): Link => ({
        url: d.href,
        protocol: 'WWW:DOWNLOAD-1.0-http--download',
        name: layer.name,
        title: `${layer.title} (${d.format})`,
        description: `Téléchargement complet au format ${d.format}`,
        function: 'download',
        format: d.euFileType,
        mediaType: d.mediaType,
      }),
    ),
  ];
}

/** Build the dataset record of one layer. */
export function layerRecord(ctx: AppContext, layer: Layer, updated: string | null): CatalogRecord {
  const md = (layer.extra.metadata ?? {}) as Record<string, unknown>;
  const id = layerIdentifier(ctx, layer);
  const themes: Theme[] = [];
  for (const key of ['inspireThemes', 'themes', 'euThemes']) {
    const v = md[key];
    for (const t of Array.isArray(v) ? v : typeof v === 'string' ? [v] : []) {
      const th = resolveTheme(String(t));
      if (th && !themes.some((x) => x.uri === th.uri)) themes.push(th);
    }
  }
  const svc = ctx.config.service;
  const defaultAgent = agentOf(svc.contact.organisation || svc.contact.person ? { ...svc.contact, name: svc.contact.person } : null);
  const contact = agentOf(md.contact) ?? defaultAgent;
  const publisher = agentOf(md.publisher) ?? contact;
  const today = new Date().toISOString().slice(0, 10);
  let modified = dateOf(md.modified) ?? updated ?? null;
  if (modified && modified.slice(0, 10) > today) modified = today;
  const freq = str(md.updateFrequency ?? md.frequency)?.toUpperCase();
  const temporal = (md.temporalExtent ?? {}) as Record<string, unknown>;
  const keywords = [...new Set([...layer.keywords, ...((Array.isArray(md.keywords) ? md.keywords : []) as unknown[]).map(String)])];
  const crs = [...new Set([layer.srid, 4326, 3857].filter((s) => s > 0))];
  return {
    identifier: id.identifier,
    codeSpace: id.codeSpace,
    type: (str(md.type) as CatalogRecord['type']) ?? 'dataset',
    title: str(md.title) ?? layer.title,
    abstract: str(md.abstract) ?? (layer.abstract || layer.title),
    keywords,
    themes,
    licence: licenceOf(md.licence ?? md.license) ?? KNOWN_LICENCES['etalab-2.0'],
    accessRights: str(md.accessRights) ?? null,
    rights: str(md.rights) ?? null,
    contact,
    publisher,
    created: dateOf(md.created) ?? null,
    issued: dateOf(md.issued) ?? null,
    modified,
    temporalStart: dateOf(temporal.start) ?? null,
    temporalEnd: dateOf(temporal.end) ?? null,
    frequency: freq && EU_FREQUENCIES.includes(freq) ? freq : null,
    language: str(md.language) ?? svc.language ?? 'fre',
    lineage: str(md.lineage) ?? `Données publiées depuis la table PostGIS ${layer.schema}.${layer.table}.`,
    bbox: layer.wgs84Extent ? [layer.wgs84Extent.minx, layer.wgs84Extent.miny, layer.wgs84Extent.maxx, layer.wgs84Extent.maxy] : null,
    crs,
    featureCount: layer.rowEstimate,
    links: layerLinks(layer, serverFormats(ctx)),
    landingPage: str(md.landingPage) ?? null,
    layerName: layer.name,
    serviceType: null,
    operatesOn: [],
    source: 'local',
    metadataModified: new Date().toISOString(),
  };
}

export const SERVICES: {
  type: string;
  title: string;
  path: string;
  protocol: string;
  inspireType: string;
  spec: string;
  version: string;
}[] = [
  {
    type: 'WMS',
    title: 'Service de visualisation WMS',
    path: '/wms',
    protocol: 'OGC:WMS',
    inspireType: 'view',
    spec: 'http://www.opengeospatial.org/standards/wms',
    version: '1.3.0',
  },
  {
    type: 'WFS',
    title: 'Service de téléchargement WFS',
    path: '/wfs',
    protocol: 'OGC:WFS',
    inspireType: 'download',
    spec: 'http://www.opengeospatial.org/standards/wfs',
    version: '2.0.0',
  },
  {
    type: 'WMTS',
    title: 'Service de tuiles WMTS',
    path: '/wmts',
    protocol: 'OGC:WMTS',
    inspireType: 'view',
    spec: 'http://www.opengeospatial.org/standards/wmts',
    version: '1.0.0',
  },
  {
    type: 'CSW',
    title: 'Service de recherche CSW',
    path: '/csw',
    protocol: 'OGC:CSW',
    inspireType: 'discovery',
    spec: 'http://www.opengeospatial.org/standards/cat',
    version: '2.0.2',
  },
];

export function serviceRecords(ctx: AppContext, datasets: CatalogRecord[]): CatalogRecord[] {
  const svc = ctx.config.service;
  const contact = agentOf(svc.contact.organisation || svc.contact.person ? { ...svc.contact, name: svc.contact.person } : null);
  const boxes = datasets.map((d) => d.bbox).filter((b): b is [number, number, number, number] => b !== null);
  const bbox: [number, number, number, number] | null = boxes.length
    ? [
        Math.min(...boxes.map((b) => b[0])),
        Math.min(...boxes.map((b) => b[1])),
        Math.max(...boxes.map((b) => b[2])),
        Math.max(...boxes.map((b) => b[3])),
      ]
    : null;
  const modified =
    datasets
      .map((d) => d.modified ?? '')
      .sort()
      .pop() || null;
  return SERVICES.map((s) => ({
    identifier: serviceIdentifier(ctx, s.type),
    codeSpace: null,
    type: 'service' as const,
    title: `${svc.title} — ${s.title}`,
    abstract: `${s.title} (${s.type} ${s.version}) de ${svc.title}. ${svc.abstract}`,
    keywords: [
      ...new Set([
        ...svc.keywords,
        s.type,
        s.inspireType === 'view'
          ? 'infoMapAccessService'
          : s.inspireType === 'download'
            ? 'infoFeatureAccessService'
            : 'infoCatalogueService',
      ]),
    ],
    themes: [],
    licence: KNOWN_LICENCES['etalab-2.0'],
    accessRights: null,
    rights: svc.accessConstraints && svc.accessConstraints !== 'none' ? svc.accessConstraints : null,
    contact,
    publisher: contact,
    modified,
    language: svc.language ?? 'fre',
    bbox,
    crs: [4326],
    featureCount: null,
    links: [
      {
        url: `${s.path}?SERVICE=${s.type}&REQUEST=GetCapabilities`,
        protocol: s.protocol,
        title: s.title,
        description: `GetCapabilities ${s.type}`,
        function: 'information' as const,
      },
    ],
    serviceType: s.type,
    operatesOn: s.type === 'CSW' ? [] : datasets.map((d) => d.identifier),
    source: 'local',
    metadataModified: new Date().toISOString(),
  }));
}

/**
 * Derive every local record from the registry and replace the local records in the catalogue
 * (none when `catalog.deriveFromLayers` is false; never those deleted through CSW-T).
 */
export async function syncLocalRecords(ctx: AppContext): Promise<{ upserted: number; deleted: number }> {
  // catalog.deriveFromLayers: false → a catalogue of imported / harvested records only
  if (ctx.config.catalog?.deriveFromLayers === false) return replaceSource(ctx.pool, 'local', [], schemaOf(ctx));
  const layers = publicLayers(ctx.registry);
  const stats = new Map<string, string | null>();
  if (layers.length) {
    const r = await ctx.pool.query<{ schema: string; table: string; d: string | null }>(
      `SELECT schemaname AS schema, relname AS table,
              to_char(greatest(last_analyze, last_autoanalyze, last_vacuum, last_autovacuum) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d
         FROM pg_stat_user_tables WHERE (schemaname, relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [layers.map((l) => l.schema), layers.map((l) => l.table)],
    );
    for (const row of r.rows) stats.set(`${row.schema}.${row.table}`, row.d);
    // the last edit the change log (src/changes/) holds, when it is later
    const tables = layers.map((l) => `${l.schema}.${l.table}`);
    const edited = await ctx.pool
      .query<{ t: string; d: string }>(
        `SELECT table_name AS t, to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d FROM geodata_tiles.changes
          WHERE op = ANY($1) AND table_name = ANY($2) GROUP BY table_name`,
        [EDIT_OPS, tables],
      )
      .catch(() => null); // no change log yet (the feed never ran on this database)
    for (const row of edited?.rows ?? []) if (row.d > (stats.get(row.t) ?? '')) stats.set(row.t, row.d);
  }
  const loaded = (ctx.registry.loadedAt ?? new Date()).toISOString().slice(0, 10);
  const datasets = layers.map((l) => layerRecord(ctx, l, stats.get(`${l.schema}.${l.table}`) ?? loaded));
  const schema = schemaOf(ctx);
  // records deleted through CSW-T stay deleted (table suppressed, docs/catalogue-store.md)
  const gone = new Set(
    (await ctx.pool.query<{ identifier: string }>(`SELECT identifier FROM ${schema}.suppressed`)).rows.map((r) => r.identifier),
  );
  const all = [...datasets, ...serviceRecords(ctx, datasets)].filter((r) => !gone.has(r.identifier));
  return replaceSource(ctx.pool, 'local', all, schema);
}
