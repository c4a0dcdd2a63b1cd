/**
 * The catalogue's one metadata model, kept in PostGIS (schema `geodata_catalog`, table `records`).
 *
 * Every output (CSW Dublin Core, ISO 19139, DCAT-AP in three serialisations, the JSON search API)
 * is written from a CatalogRecord read from that table; nothing is written from the registry
 * directly. Local records are derived from the layer registry and enriched from the layer's
 * `metadata` block in config (see derive.ts); harvested/external records carry their provenance
 * (source, source_id, harvested_at).
 *
 * Links of local records are stored relative to the server root ('/wms?…'); they are made
 * absolute with the request's public base URL when written out (see absolutise()).
 */

import { FORMATS } from '../features/formats.js';
import type { Conformity, QualityReport } from './quality.js';
import { DATA_THEMES, FREQUENCIES, LANGUAGES, LANGUAGE_ALIASES } from './vocab.js';

export type RecordType = 'dataset' | 'series' | 'nonGeographicDataset' | 'service';

export interface Theme {
  uri: string;
  label: string;
  /** Concept scheme URI (INSPIRE theme register, EU data-theme authority table, …). */
  scheme: string;
}

export interface Agent {
  name?: string;
  organisation?: string;
  email?: string;
  url?: string;
  phone?: string;
}

export interface Licence {
  url: string;
  label?: string;
}

export type LinkFunction = 'download' | 'information' | 'offlineAccess' | 'order' | 'search' | 'browsing';

export interface Link {
  url: string;
  /** OGC:WMS, OGC:WFS, OGC:WMTS, OGC:CSW, OGC API - Features, WWW:DOWNLOAD-1.0-http--download, WWW:LINK … */
  protocol: string;
  /** Layer / feature type name for service links. */
  name?: string;
  title?: string;
  description?: string;
  function?: LinkFunction;
  /** File format short name (EU file-type code: GEOJSON, CSV, …). */
  format?: string;
  mediaType?: string;
  byteSize?: number;
}

export interface CatalogRecord {
  /** Stable identifier, the same in CSW (fileIdentifier + resource identifier) and DCAT (dct:identifier). */
  identifier: string;
  /** Optional namespace of the resource identifier (ISO codeSpace). */
  codeSpace?: string | null;
  type: RecordType;
  title: string;
  abstract: string;
  keywords: string[];
  themes: Theme[];
  licence: Licence | null;
  accessRights?: string | null;
  rights?: string | null;
  contact: Agent | null;
  publisher: Agent | null;
  created?: string | null;
  issued?: string | null;
  /** ISO 8601 date or date-time, never in the future. */
  modified: string | null;
  temporalStart?: string | null;
  temporalEnd?: string | null;
  /** EU frequency code (ANNUAL, MONTHLY, IRREG, …). */
  frequency?: string | null;
  /** ISO 639-2/B code (fre, eng). */
  language: string;
  lineage?: string | null;
  /** CRS84 bounding box [west, south, east, north]. */
  bbox: [number, number, number, number] | null;
  /** EPSG code of `bbox` when the source gave it in another CRS (the store reprojects it to CRS84). */
  bboxEpsg?: number;
  /** EPSG codes. */
  crs: number[];
  featureCount?: number | null;
  links: Link[];
  landingPage?: string | null;
  /** Local layer name for dataset records derived from the registry. */
  layerName?: string | null;
  /** WMS/WFS/WMTS/CSW for service records. */
  serviceType?: string | null;
  /** Identifiers of the datasets a service operates on. */
  operatesOn: string[];
  /** 'local' for records derived from this server, else the harvest source / 'external'. */
  source: string;
  sourceId?: string | null;
  harvestedAt?: string | null;
  /** Modification date of the metadata record itself. */
  metadataModified: string;
  /**
   * Schema of the source document the record was received in ('csw' Dublin Core csw:Record,
   * 'iso19139' gmd:MD_Metadata, 'dcat' RDF); 'local' for records derived from the layers, which have
   * no source document. See docs/catalogue-store.md.
   */
  recordSchema?: RecordSchema;
  /** The source document as received: XML text (csw, iso19139) or the dataset's triples as JSON (dcat). */
  sourceDoc?: string | null;
  /** The queryable index (lower-case queryable name → values), computed from the source document. */
  index?: QueryableIndex;
  /** Declared degrees of conformity (ISO DQ_ConformanceResult), for the crosswalks (DCAT dct:conformsTo). */
  conformity?: Conformity[];
  /** Metadata quality report computed when the record was received (inspire.ts, vocabulary checks). */
  quality?: QualityReport | null;
}

export type RecordSchema = 'csw' | 'iso19139' | 'dcat' | 'local';

/**
 * Every CSW 2.0.2 core and ISO AP queryable of a record, by lower-case queryable name (without
 * prefix): 'title', 'type', 'format', 'subject', 'organisationname', … Each value list keeps the
 * order of the source document. 'anytext' holds one string: every text and attribute value.
 * Dates are ISO 8601 strings. The bounding box is not here (column `extent`).
 */
export type QueryableIndex = Record<string, string[]>;

export const ISO_SCOPE_CODES: RecordType[] = ['dataset', 'series', 'nonGeographicDataset', 'service'];

/** Make a stored (possibly relative) URL absolute against the public base URL. */
export function absolutise(url: string, base: string): string {
  return url.startsWith('/') ? base + url : url;
}

/** Licences commonly used by French platforms, by short key. */
export const KNOWN_LICENCES: Record<string, Licence> = {
  'etalab-2.0': { url: 'https://www.etalab.gouv.fr/licence-ouverte-open-licence/', label: 'Licence Ouverte / Open Licence version 2.0' },
  lov2: { url: 'https://www.etalab.gouv.fr/licence-ouverte-open-licence/', label: 'Licence Ouverte / Open Licence version 2.0' },
  odbl: { url: 'https://opendatacommons.org/licenses/odbl/1-0/', label: 'Open Database License (ODbL) 1.0' },
  'cc-by-4.0': { url: 'https://creativecommons.org/licenses/by/4.0/', label: 'Creative Commons Attribution 4.0' },
};

export const INSPIRE_THEME_SCHEME = 'http://inspire.ec.europa.eu/theme';
export const EU_THEME_SCHEME = 'http://publications.europa.eu/resource/authority/data-theme';

/** INSPIRE themes (code → French label, as in the INSPIRE registry / GEMET). */
export const INSPIRE_THEMES: Record<string, string> = {
  ad: 'Adresses',
  au: 'Unités administratives',
  tn: 'Réseaux de transport',
  hy: 'Hydrographie',
  ps: 'Sites protégés',
  cp: 'Parcelles cadastrales',
  gn: 'Dénominations géographiques',
  bu: 'Bâtiments',
  lu: 'Usage des sols',
  lc: 'Occupation des terres',
  el: 'Altitude',
  oi: 'Ortho-imagerie',
  us: "Services d'utilité publique et services publics",
  pd: 'Répartition de la population — démographie',
  am: 'Zones de gestion, de restriction ou de réglementation et unités de déclaration',
  nz: 'Zones à risque naturel',
  so: 'Sols',
  ge: 'Géologie',
  rs: 'Référentiels de coordonnées',
  gg: 'Systèmes de maillage géographique',
  su: 'Unités statistiques',
  hh: 'Santé et sécurité des personnes',
  ef: 'Installations de suivi environnemental',
  pf: 'Lieux de production et sites industriels',
  af: 'Installations agricoles et aquacoles',
  ac: 'Conditions atmosphériques',
  mf: 'Caractéristiques géographiques météorologiques',
  of: 'Caractéristiques géographiques océanographiques',
  sr: 'Régions maritimes',
  br: 'Régions biogéographiques',
  hb: 'Habitats et biotopes',
  sd: 'Répartition des espèces',
  er: "Sources d'énergie",
  mr: 'Ressources minérales',
};

/** EU data themes (code → French label), from the data-theme table (vocab.ts). */
export const EU_THEMES: Record<string, string> = Object.fromEntries(Object.entries(DATA_THEMES).map(([k, [, fr]]) => [k, fr]));

/** Resolve a theme given in config as a code ('tn', 'TRAN') or a URI. */
export function resolveTheme(v: string): Theme | null {
  const s = v.trim();
  if (!s) return null;
  const inspire = s.match(/^https?:\/\/inspire\.ec\.europa\.eu\/theme\/([a-z]{2})$/i);
  const code = inspire ? inspire[1].toLowerCase() : s.toLowerCase();
  if (INSPIRE_THEMES[code]) return { uri: `${INSPIRE_THEME_SCHEME}/${code}`, label: INSPIRE_THEMES[code], scheme: INSPIRE_THEME_SCHEME };
  const eu = s.match(/data-theme\/([A-Z_]+)$/);
  const ecode = eu ? eu[1] : s.toUpperCase();
  if (EU_THEMES[ecode]) return { uri: `${EU_THEME_SCHEME}/${ecode}`, label: EU_THEMES[ecode], scheme: EU_THEME_SCHEME };
  if (/^https?:\/\//.test(s)) return { uri: s, label: s.replace(/.*[/#]/, ''), scheme: s.replace(/[/#][^/#]*$/, '') };
  return null;
}

/** EU frequency codes (the frequency table, vocab.ts). */
export const EU_FREQUENCIES = FREQUENCIES;

/** EU frequency → ISO 19115 MD_MaintenanceFrequencyCode. */
export function isoFrequency(f: string | null | undefined): string {
  switch (f) {
    case 'DAILY':
      return 'daily';
    case 'WEEKLY':
      return 'weekly';
    case 'BIWEEKLY':
      return 'fortnightly';
    case 'MONTHLY':
      return 'monthly';
    case 'QUARTERLY':
      return 'quarterly';
    case 'ANNUAL':
      return 'annually';
    case 'BIENNIAL':
      return 'biannually';
    case 'CONT':
    case 'UPDATE_CONT':
      return 'continual';
    case 'IRREG':
      return 'irregular';
    case 'NEVER':
      return 'notPlanned';
    default:
      return 'unknown';
  }
}

/**
 * A language code (ISO 639-2/B or /T, ISO 639-1, EU code) → ISO 639-1 and EU language authority
 * code (vocab.ts). A language outside the embedded table keeps its own two-letter code when it has
 * one and has no EU code (the DCAT output then states no dct:language rather than a wrong one).
 */
export function languageCodes(l: string): { iso2: string; eu: string | null } {
  const b = LANGUAGE_ALIASES[l.toLowerCase()];
  if (b) return { iso2: LANGUAGES[b][0], eu: LANGUAGES[b][1] };
  return { iso2: /^[a-z]{2}$/i.test(l) ? l.toLowerCase() : 'fr', eu: null };
}

/**
 * Format metadata for links by EU file-type code: the formats this server writes come from the
 * format table (src/features/formats.ts); GML and JSON are file types other catalogues' records carry.
 */
export const FILE_TYPES: Record<string, { mediaType: string; label: string }> = {
  GML: { mediaType: 'application/gml+xml', label: 'GML' },
  JSON: { mediaType: 'application/json', label: 'JSON' },
  ...Object.fromEntries(
    FORMATS.filter((f) => f.euFileType && f.download?.listed).map((f) => [f.euFileType!, { mediaType: f.mediaType, label: f.title }]),
  ),
};
