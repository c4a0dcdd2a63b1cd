/**
 * The controlled vocabularies DCAT-AP 3.0.1 expects (`mdr-vocabularies.shape.ttl`), as small tables.
 *
 * Source: the EU authority tables of the Publications Office of the European Union (EU Vocabularies,
 * http://publications.europa.eu/resource/authority/<table>, reuse under CC BY 4.0), the ADMS
 * publisher and licence types (http://purl.org/adms/…, SEMIC) and the INSPIRE theme register
 * (http://inspire.ec.europa.eu/theme). The tables are not reachable from here: the codes are written
 * out by hand from those tables (data-theme, frequency, access-right, planned-availability: the whole
 * table; file-type and language: the subset this server writes or meets in the records it reads).
 * A value of a table kept whole and absent from it is wrong; a file type or language absent from its
 * subset is only "not verified". Add codes here when a record needs one (the table is the only place).
 */
import type { QualityCheck, QualityReport } from './quality.js';
import type { Term } from './rdf.js';
import type { TripleIndex } from './rdfparse.js';

export const EU_AUTHORITY = 'http://publications.europa.eu/resource/authority';

/** EU data themes (data-theme table, 14 concepts): code → [English label, French label]. */
export const DATA_THEMES: Record<string, [string, string]> = {
  AGRI: ['Agriculture, fisheries, forestry and food', 'Agriculture, pêche, sylviculture et alimentation'],
  ECON: ['Economy and finance', 'Économie et finances'],
  EDUC: ['Education, culture and sport', 'Éducation, culture et sport'],
  ENER: ['Energy', 'Énergie'],
  ENVI: ['Environment', 'Environnement'],
  GOVE: ['Government and public sector', 'Gouvernement et secteur public'],
  HEAL: ['Health', 'Santé'],
  INTR: ['International issues', 'Questions internationales'],
  JUST: ['Justice, legal system and public safety', 'Justice, système juridique et sécurité publique'],
  OP_DATPRO: ['Provisional data', 'Données provisoires'],
  REGI: ['Regions and cities', 'Régions et villes'],
  SOCI: ['Population and society', 'Population et société'],
  TECH: ['Science and technology', 'Science et technologie'],
  TRAN: ['Transport', 'Transports'],
};

/** EU frequencies (frequency table). */
export const FREQUENCIES = [
  '1MIN',
  '5MIN',
  '10MIN',
  '15MIN',
  '30MIN',
  'HOURLY',
  'BIHOURLY',
  'TRIHOURLY',
  '12HRS',
  'CONT',
  'UPDATE_CONT',
  'DAILY',
  'DAILY_2',
  'WEEKLY',
  'WEEKLY_2',
  'WEEKLY_3',
  'BIWEEKLY',
  'MONTHLY',
  'MONTHLY_2',
  'MONTHLY_3',
  'BIMONTHLY',
  'QUARTERLY',
  'ANNUAL',
  'ANNUAL_2',
  'ANNUAL_3',
  'BIENNIAL',
  'TRIENNIAL',
  'QUADRENNIAL',
  'QUINQUENNIAL',
  'DECENNIAL',
  'BIDECENNIAL',
  'TRIDECENNIAL',
  'IRREG',
  'NEVER',
  'OTHER',
  'UNKNOWN',
  'OP_DATPRO',
];

/** EU access rights (access-right table). */
export const ACCESS_RIGHTS = ['PUBLIC', 'RESTRICTED', 'NON_PUBLIC', 'CONFIDENTIAL', 'NORMAL', 'SENSITIVE', 'OP_DATPRO'];

/** EU planned availability (planned-availability table). */
export const PLANNED_AVAILABILITY = ['AVAILABLE', 'EXPERIMENTAL', 'STABLE', 'TEMPORARY', 'OP_DATPRO'];

/**
 * EU file types (file-type table, subset): code → media type. The formats this server writes
 * (src/features/formats.ts names their codes), the OGC service pseudo-types, and the formats of
 * the French and INSPIRE records met in the wild.
 */
export const FILE_TYPE_SUBSET: Record<string, string | null> = {
  CSV: 'text/csv',
  DBF: 'application/dbase',
  DXF: 'image/vnd.dxf',
  GDB: null,
  GEOJSON: 'application/geo+json',
  GEOTIFF: 'image/tiff',
  GML: 'application/gml+xml',
  GPKG: 'application/geopackage+sqlite3',
  GPX: 'application/gpx+xml',
  HTML: 'text/html',
  JPEG: 'image/jpeg',
  JSON: 'application/json',
  JSON_LD: 'application/ld+json',
  KML: 'application/vnd.google-earth.kml+xml',
  KMZ: 'application/vnd.google-earth.kmz',
  MAP_PRVW: null,
  MAP_SRVC: null,
  ODS: 'application/vnd.oasis.opendocument.spreadsheet',
  PDF: 'application/pdf',
  PNG: 'image/png',
  RDF_TURTLE: 'text/turtle',
  RDF_XML: 'application/rdf+xml',
  SHP: null,
  TIFF: 'image/tiff',
  TXT: 'text/plain',
  WCS_SRVC: null,
  WFS_SRVC: null,
  WMS_SRVC: null,
  WMTS_SRVC: null,
  XLS: 'application/vnd.ms-excel',
  XLSX: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  XML: 'application/xml',
  ZIP: 'application/zip',
};

/** Format names as ISO records write them (gmd:MD_Format/gmd:name, lower-cased) → EU file type. */
export const FORMAT_NAMES: Record<string, string> = {
  'esri shapefile': 'SHP',
  shapefile: 'SHP',
  shp: 'SHP',
  geojson: 'GEOJSON',
  json: 'JSON',
  gml: 'GML',
  geopackage: 'GPKG',
  gpkg: 'GPKG',
  csv: 'CSV',
  kml: 'KML',
  kmz: 'KMZ',
  geotiff: 'GEOTIFF',
  tiff: 'TIFF',
  pdf: 'PDF',
  zip: 'ZIP',
  dxf: 'DXF',
  xlsx: 'XLSX',
  ods: 'ODS',
};

/**
 * Languages (language table, subset): ISO 639-2/B code → [ISO 639-1, EU code]. The EU code is the
 * ISO 639-2/T code in capitals: the 24 official languages of the EU and France's regional ones.
 */
export const LANGUAGES: Record<string, [string, string]> = {
  bul: ['bg', 'BUL'],
  cze: ['cs', 'CES'],
  dan: ['da', 'DAN'],
  ger: ['de', 'DEU'],
  gre: ['el', 'ELL'],
  eng: ['en', 'ENG'],
  spa: ['es', 'SPA'],
  est: ['et', 'EST'],
  fin: ['fi', 'FIN'],
  fre: ['fr', 'FRA'],
  gle: ['ga', 'GLE'],
  hrv: ['hr', 'HRV'],
  hun: ['hu', 'HUN'],
  ita: ['it', 'ITA'],
  lit: ['lt', 'LIT'],
  lav: ['lv', 'LAV'],
  mlt: ['mt', 'MLT'],
  dut: ['nl', 'NLD'],
  pol: ['pl', 'POL'],
  por: ['pt', 'POR'],
  rum: ['ro', 'RON'],
  slo: ['sk', 'SLK'],
  slv: ['sl', 'SLV'],
  swe: ['sv', 'SWE'],
  baq: ['eu', 'EUS'],
  bre: ['br', 'BRE'],
  cat: ['ca', 'CAT'],
  cos: ['co', 'COS'],
  oci: ['oc', 'OCI'],
};

/** Other spellings of the languages above (ISO 639-1, ISO 639-2/T, EU code) → ISO 639-2/B. */
export const LANGUAGE_ALIASES: Record<string, string> = Object.fromEntries(
  Object.entries(LANGUAGES).flatMap(([b, [one, eu]]) => [
    [one, b],
    [eu.toLowerCase(), b],
    [b, b],
  ]),
);

/** INSPIRE themes (theme register): code → English label (the French ones are INSPIRE_THEMES in model.ts). */
export const INSPIRE_THEMES_EN: Record<string, string> = {
  ad: 'Addresses',
  au: 'Administrative units',
  tn: 'Transport networks',
  hy: 'Hydrography',
  ps: 'Protected sites',
  cp: 'Cadastral parcels',
  gn: 'Geographical names',
  bu: 'Buildings',
  lu: 'Land use',
  lc: 'Land cover',
  el: 'Elevation',
  oi: 'Orthoimagery',
  us: 'Utility and governmental services',
  pd: 'Population distribution — demography',
  am: 'Area management/restriction/regulation zones and reporting units',
  nz: 'Natural risk zones',
  so: 'Soil',
  ge: 'Geology',
  rs: 'Coordinate reference systems',
  gg: 'Geographical grid systems',
  su: 'Statistical units',
  hh: 'Human health and safety',
  ef: 'Environmental monitoring facilities',
  pf: 'Production and industrial facilities',
  af: 'Agricultural and aquaculture facilities',
  ac: 'Atmospheric conditions',
  mf: 'Meteorological geographical features',
  of: 'Oceanographic geographical features',
  sr: 'Sea regions',
  br: 'Bio-geographical regions',
  hb: 'Habitats and biotopes',
  sd: 'Species distribution',
  er: 'Energy resources',
  mr: 'Mineral resources',
};

/**
 * EU data theme of each INSPIRE theme: this project's alignment (one theme each, the one the
 * INSPIRE theme's definition falls under), used when a record names INSPIRE themes but no EU one.
 */
export const INSPIRE_TO_EU_THEME: Record<string, string> = {
  ad: 'REGI',
  au: 'REGI',
  tn: 'TRAN',
  hy: 'ENVI',
  ps: 'ENVI',
  cp: 'REGI',
  gn: 'REGI',
  bu: 'REGI',
  lu: 'REGI',
  lc: 'ENVI',
  el: 'ENVI',
  oi: 'REGI',
  us: 'GOVE',
  pd: 'SOCI',
  am: 'ENVI',
  nz: 'ENVI',
  so: 'ENVI',
  ge: 'ENVI',
  rs: 'TECH',
  gg: 'TECH',
  su: 'REGI',
  hh: 'HEAL',
  ef: 'ENVI',
  pf: 'ECON',
  af: 'AGRI',
  ac: 'ENVI',
  mf: 'ENVI',
  of: 'ENVI',
  sr: 'ENVI',
  br: 'ENVI',
  hb: 'ENVI',
  sd: 'ENVI',
  er: 'ENER',
  mr: 'ECON',
};

/** EU data theme of each ISO 19115 topic category (MD_TopicCategoryCode): this project's alignment. */
export const TOPIC_TO_EU_THEME: Record<string, string> = {
  farming: 'AGRI',
  biota: 'ENVI',
  boundaries: 'REGI',
  climatologyMeteorologyAtmosphere: 'ENVI',
  economy: 'ECON',
  elevation: 'ENVI',
  environment: 'ENVI',
  geoscientificInformation: 'TECH',
  health: 'HEAL',
  imageryBaseMapsEarthCover: 'REGI',
  intelligenceMilitary: 'JUST',
  inlandWaters: 'ENVI',
  location: 'REGI',
  oceans: 'ENVI',
  planningCadastre: 'REGI',
  society: 'SOCI',
  structure: 'REGI',
  transportation: 'TRAN',
  utilitiesCommunication: 'ENER',
};

/** French (and English) keywords that name an EU data theme outright, unaccented and lower-cased. */
export const KEYWORD_TO_EU_THEME: Record<string, string> = {
  agriculture: 'AGRI',
  peche: 'AGRI',
  foret: 'AGRI',
  economie: 'ECON',
  education: 'EDUC',
  culture: 'EDUC',
  sport: 'EDUC',
  energie: 'ENER',
  energy: 'ENER',
  environnement: 'ENVI',
  environment: 'ENVI',
  gouvernement: 'GOVE',
  sante: 'HEAL',
  health: 'HEAL',
  justice: 'JUST',
  securite: 'JUST',
  regions: 'REGI',
  villes: 'REGI',
  urbanisme: 'REGI',
  population: 'SOCI',
  societe: 'SOCI',
  science: 'TECH',
  transport: 'TRAN',
  transports: 'TRAN',
  mobilite: 'TRAN',
};

/** INSPIRE LimitationsOnPublicAccess value → EU access right. */
export function accessRightOfInspire(uri: string): string | null {
  const m = uri.match(/LimitationsOnPublicAccess\/(\w+)$/);
  if (!m) return null;
  return m[1] === 'noLimitations' ? 'PUBLIC' : 'NON_PUBLIC';
}

export type VocabTable = 'data-theme' | 'file-type' | 'language' | 'frequency' | 'access-right' | 'planned-availability';

const WHOLE: Record<Exclude<VocabTable, 'file-type' | 'language'>, string[]> = {
  'data-theme': Object.keys(DATA_THEMES),
  frequency: FREQUENCIES,
  'access-right': ACCESS_RIGHTS,
  'planned-availability': PLANNED_AVAILABILITY,
};

/**
 * Where a value stands against an EU table: 'ok' (a term of the table), 'unverified' (an IRI of the
 * table's namespace missing from the embedded subset: file types, languages), 'bad' (anything else).
 */
export function checkVocab(table: VocabTable, value: string): 'ok' | 'unverified' | 'bad' {
  const prefix = `${EU_AUTHORITY}/${table}/`;
  if (!value.startsWith(prefix)) return 'bad';
  const code = value.slice(prefix.length);
  if (table === 'file-type') return code in FILE_TYPE_SUBSET ? 'ok' : /^[A-Z0-9_]+$/.test(code) ? 'unverified' : 'bad';
  if (table === 'language')
    return Object.values(LANGUAGES).some(([, eu]) => eu === code) ? 'ok' : /^[A-Z]{3}$/.test(code) ? 'unverified' : 'bad';
  return WHOLE[table].includes(code) ? 'ok' : 'bad';
}

/** Every term of the embedded tables as [table, code] (the vocabulary graph tests load beside the shapes). */
export function vocabularyTerms(): [VocabTable, string][] {
  return [
    ...Object.keys(DATA_THEMES).map((c) => ['data-theme', c] as [VocabTable, string]),
    ...FREQUENCIES.map((c) => ['frequency', c] as [VocabTable, string]),
    ...ACCESS_RIGHTS.map((c) => ['access-right', c] as [VocabTable, string]),
    ...PLANNED_AVAILABILITY.map((c) => ['planned-availability', c] as [VocabTable, string]),
    ...Object.keys(FILE_TYPE_SUBSET).map((c) => ['file-type', c] as [VocabTable, string]),
    ...Object.values(LANGUAGES).map(([, eu]) => ['language', eu] as [VocabTable, string]),
  ];
}

const DCT = 'http://purl.org/dc/terms/';
const DCAT = 'http://www.w3.org/ns/dcat#';
const DCATAP = 'http://data.europa.eu/r5r/';
const IANA_URI = /^https?:\/\/www\.iana\.org\/assignments\/media-types\//;

/**
 * The controlled values of one DCAT dataset received as RDF (its own triples), checked the way
 * DCAT-AP 3.0.1's `mdr-vocabularies.shape.ttl` does: frequency, language, format, availability and
 * media type from their tables ('fail', the shapes' violations); theme and access rights ('warn',
 * the shapes' warnings, as is a file type or language outside the embedded subset).
 */
export function dcatVocabularyReport(g: TripleIndex, node: Term, scope: string): QualityReport {
  const checks: QualityCheck[] = [];
  const iris = (s: Term, p: string) => g.all(s, p).map((o) => (o.t === 'lit' ? `"${o.v}"` : o.v));
  const check = (id: string, title: string, table: VocabTable, values: string[], severity: 'fail' | 'warn') => {
    if (!values.length) return;
    const res = values.map((v) => [v, v.startsWith('"') ? 'bad' : checkVocab(table, v)] as const);
    const bad = res.filter(([, r]) => r === 'bad').map(([v]) => v);
    const unverified = res.filter(([, r]) => r === 'unverified').map(([v]) => v);
    const status = bad.length ? severity : unverified.length ? 'warn' : 'pass';
    checks.push({
      id,
      title,
      status,
      ...(bad.length
        ? { detail: `not in ${EU_AUTHORITY}/${table}: ${bad.join(', ')}` }
        : unverified.length
          ? { detail: `not in the embedded subset of ${table} (not verified): ${unverified.join(', ')}` }
          : {}),
    });
  };
  check('frequency', 'dct:accrualPeriodicity from the EU frequency table', 'frequency', iris(node, `${DCT}accrualPeriodicity`), 'fail');
  check('language', 'dct:language from the EU language table', 'language', iris(node, `${DCT}language`), 'fail');
  const themes = iris(node, `${DCAT}theme`);
  if (themes.length && !themes.some((t) => checkVocab('data-theme', t) === 'ok'))
    checks.push({ id: 'theme', title: 'at least one dcat:theme from the EU data-theme table', status: 'warn', detail: 'no EU data theme' });
  else if (themes.length) checks.push({ id: 'theme', title: 'at least one dcat:theme from the EU data-theme table', status: 'pass' });
  check('access-rights', 'dct:accessRights from the EU access-right table', 'access-right', iris(node, `${DCT}accessRights`), 'warn');
  const dists = g.all(node, `${DCAT}distribution`);
  check(
    'format',
    'distribution dct:format from the EU file-type table',
    'file-type',
    dists.flatMap((d) => iris(d, `${DCT}format`)),
    'fail',
  );
  check(
    'availability',
    'distribution dcatap:availability from the EU planned-availability table',
    'planned-availability',
    dists.flatMap((d) => iris(d, `${DCATAP}availability`)),
    'fail',
  );
  check(
    'distribution-language',
    'distribution dct:language from the EU language table',
    'language',
    dists.flatMap((d) => iris(d, `${DCT}language`)),
    'fail',
  );
  const media = dists.flatMap((d) => iris(d, `${DCAT}mediaType`));
  if (media.length) {
    const bad = media.filter((m) => !IANA_URI.test(m));
    checks.push({
      id: 'media-type',
      title: 'distribution dcat:mediaType an IANA media type URI',
      status: bad.length ? 'fail' : 'pass',
      ...(bad.length ? { detail: `not an IANA media type URI: ${bad.join(', ')}` } : {}),
    });
  }
  const failed = checks.filter((c) => c.status === 'fail').map((c) => c.id);
  return { profile: 'DCAT-AP-3.0.1-vocabularies', scope, conformant: failed.length === 0, failed, checks };
}
