/**
 * The format table: one entry per output format, and everything a front door needs to know about
 * it: its names (canonical media type, the aliases clients send, the URL extension), the file it
 * makes (extension, EU file type for DCAT), its CRS rule (forced, or the default when the client
 * names none), whether it streams, which writer or exporter produces it and which external tool
 * that needs. WFS capabilities and OUTPUTFORMAT, OGC API `f=` and its links, /downloads routes and
 * links, and the catalogue's distributions are all derived from FORMATS; adding a format is one
 * entry here (plus its writer or exporter, and tests).
 *
 * Pure data and lookups: no HTTP, no database. Which formats a running server offers is
 * FORMATS filtered by the tools found on the machine (offeredFormats; see ./tools.ts).
 */
import { CsvWriter, type CsvWriterOptions } from './writers/csv.js';
import { GeoJsonWriter } from './writers/geojson.js';
import { KmlWriter } from './writers/kml.js';
import { NdjsonWriter } from './writers/ndjson.js';
import type { FeatureWriter } from './writers/types.js';
import {
  exportFlatGeobuf,
  exportGeoPackage,
  exportShapefileZip,
  exportXlsx,
  XLSX_MAX_ROWS,
  type FileExport,
  type FileExportOptions,
} from './export/files.js';
import { TOOL_TITLES, type Tool, type ToolProbe, type ToolSet } from './tools.js';

export type { Tool, ToolSet } from './tools.js';

export type FormatId = 'gml32' | 'gml311' | 'geojson' | 'ndjson' | 'geojsonseq' | 'csv' | 'kml' | 'shp' | 'gpkg' | 'xlsx' | 'fgb';

/** Options a producer receives from the front door (CSV separator/BOM/geometry columns, also used by XLSX). */
export interface ProduceOptions {
  csv?: CsvWriterOptions;
}

/** How a format is produced. */
export type Producer =
  /** The protocol's own collection writer (GML: namespaces and schema locations belong to WFS). */
  | { kind: 'protocol' }
  /** A text writer fed from the engine's cursor: streamed, flat memory. */
  | { kind: 'stream'; writer: (o: ProduceOptions) => FeatureWriter }
  /** A file built in a capped temporary directory, then sent with Content-Length. */
  | { kind: 'file'; build: (fo: FileExportOptions, o: ProduceOptions) => Promise<FileExport> };

export interface FormatDef {
  id: FormatId;
  /** Display name (links, landing page, DCAT distribution titles). */
  title: string;
  /** Canonical media type: advertised first, used in links and catalogue records. */
  mediaType: string;
  /** Content-Type of a response in this format. */
  contentType: string;
  /** Other names clients send for it (media types, GeoServer/GDAL short names); matched ignoring case and spaces. */
  aliases: readonly string[];
  /** Aliases answered with a Content-Type of their own (WFS clients asking application/json expect it back). */
  aliasContentTypes?: Readonly<Record<string, string>>;
  /** Extension of the file sent (a Shapefile travels as a ZIP). */
  fileExt: string;
  /** /downloads/{layer}.{ext}: the URL extension, others accepted, and whether links list it. */
  download?: { ext: string; extAliases?: readonly string[]; listed: boolean };
  /** Offered by OGC API – Features items as `f={download.ext}` (JSON and HTML are the API's own). */
  ogcapi?: boolean;
  /** Names advertised in WFS GetCapabilities (2.0; `names11` for 1.1 when different). Absent: not offered by WFS. */
  wfs?: { names: readonly string[]; names11?: readonly string[] };
  /** Code in the EU Publications Office file-type table (DCAT dct:format), when it has one. */
  euFileType?: string;
  /**
   * CRS rule. forced: the format knows one CRS only (KML: WGS 84 lon/lat), a requested CRS is
   * checked but ignored. default: the CRS when the request names none — 'wgs84' (lon/lat, as
   * RFC 7946 requires of GeoJSON) or 'native' (the layer's storage CRS).
   */
  crs: { forced?: 4326; default: 'wgs84' | 'native' };
  /** Coordinates are always written x/y (easting/longitude first), whatever axis order the protocol uses on the wire. */
  xyOnly: boolean;
  /** Several feature types in one response (false: one type per file). */
  multiLayer: boolean;
  /** Bytes leave as rows arrive (false: built whole on the server before the first byte). */
  streams: boolean;
  /** Holds numberMatched (resultType=hits is possible). */
  carriesCount: boolean;
  /** Spatially indexed file (readers can fetch a window without reading it all). */
  spatialIndex?: boolean;
  /** Sent by the protocols as a file to save (Content-Disposition: attachment, named after layer and CRS). */
  attachment: boolean;
  /** Most features one response may hold (a format limit, checked with a count first). */
  maxFeatures?: number;
  produce: Producer;
  /** External programs needed; the format is offered only where they are found. */
  requires: readonly Tool[];
}

const EU_FILE_TYPE = 'http://publications.europa.eu/resource/authority/file-type/';

export function euFileTypeUri(code: string): string {
  return EU_FILE_TYPE + code;
}

const JSON_CT = 'application/json; charset=UTF-8';

/**
 * What an entry may leave out. The producer sets the rest by default: the protocol's own GML is
 * streamed, multi-type, holds numberMatched and follows the protocol's axis order; a streamed
 * writer is multi-type, x/y only, without a count; a file is one type, x/y only, sent as an
 * attachment. Defaults also: contentType = mediaType, no aliases, no external tool.
 */
type FormatEntry = Omit<
  FormatDef,
  'contentType' | 'aliases' | 'xyOnly' | 'multiLayer' | 'streams' | 'carriesCount' | 'attachment' | 'requires'
> &
  Partial<Pick<FormatDef, 'contentType' | 'aliases' | 'xyOnly' | 'multiLayer' | 'carriesCount' | 'attachment' | 'requires'>>;

function entry(e: FormatEntry): FormatDef {
  const kind = e.produce.kind;
  return {
    contentType: e.mediaType,
    aliases: [],
    xyOnly: kind !== 'protocol',
    multiLayer: kind !== 'file',
    carriesCount: kind === 'protocol',
    attachment: kind === 'file',
    requires: [],
    ...e,
    streams: kind !== 'file',
  };
}

/** Every output format, in the order capabilities and link lists show them. */
export const FORMATS: readonly FormatDef[] = [
  entry({
    id: 'gml32',
    title: 'GML 3.2',
    mediaType: 'application/gml+xml; version=3.2',
    contentType: 'application/gml+xml; version=3.2; charset=UTF-8',
    aliases: [
      'application/gml+xml;version=3.2.1',
      'application/gml+xml',
      'text/xml; subtype=gml/3.2',
      'text/xml; subtype=gml/3.2.1',
      'gml32',
      'gml3.2',
    ],
    fileExt: 'gml',
    wfs: { names: ['application/gml+xml; version=3.2'] },
    euFileType: 'GML',
    crs: { default: 'native' },
    produce: { kind: 'protocol' },
  }),
  entry({
    id: 'gml311',
    title: 'GML 3.1.1',
    mediaType: 'text/xml; subtype=gml/3.1.1',
    contentType: 'text/xml; subtype=gml/3.1.1; charset=UTF-8',
    aliases: ['application/gml+xml; version=3.1', 'gml3', 'gml311', 'gml3.1.1'],
    fileExt: 'gml',
    wfs: { names: ['text/xml; subtype=gml/3.1.1'] },
    euFileType: 'GML',
    crs: { default: 'native' },
    produce: { kind: 'protocol' },
  }),
  entry({
    id: 'geojson',
    title: 'GeoJSON',
    mediaType: 'application/geo+json',
    aliases: ['geojson', 'application/vnd.geo+json', 'application/json', 'json', 'application/json; subtype=geojson', 'text/javascript'],
    aliasContentTypes: {
      'application/json': JSON_CT,
      json: JSON_CT,
      'application/json; subtype=geojson': JSON_CT,
      'text/javascript': JSON_CT,
    },
    fileExt: 'geojson',
    download: { ext: 'geojson', extAliases: ['json'], listed: true },
    wfs: { names: ['application/json', 'application/geo+json'], names11: ['application/json'] },
    euFileType: 'GEOJSON',
    crs: { default: 'wgs84' },
    carriesCount: true,
    produce: { kind: 'stream', writer: () => new GeoJsonWriter() },
  }),
  entry({
    id: 'csv',
    title: 'CSV',
    mediaType: 'text/csv',
    contentType: 'text/csv; charset=UTF-8',
    aliases: ['csv'],
    fileExt: 'csv',
    download: { ext: 'csv', listed: true },
    ogcapi: true,
    wfs: { names: ['text/csv'] },
    euFileType: 'CSV',
    crs: { default: 'native' },
    multiLayer: false,
    produce: { kind: 'stream', writer: (o) => new CsvWriter(o.csv) },
    attachment: true,
  }),
  entry({
    id: 'ndjson',
    title: 'GeoJSON lines (NDJSON)',
    mediaType: 'application/x-ndjson',
    aliases: ['ndjson', 'application/ndjson', 'application/geojson-seq', 'geojsonl'],
    fileExt: 'ndjson',
    download: { ext: 'ndjson', extAliases: ['geojsonl'], listed: false },
    wfs: { names: ['application/x-ndjson'] },
    crs: { default: 'wgs84' },
    produce: { kind: 'stream', writer: () => new NdjsonWriter() },
  }),
  entry({
    id: 'geojsonseq',
    title: 'GeoJSON text sequence (RFC 8142)',
    mediaType: 'application/geo+json-seq',
    fileExt: 'geojsons',
    wfs: { names: ['application/geo+json-seq'], names11: [] },
    crs: { default: 'wgs84' },
    produce: { kind: 'stream', writer: () => new NdjsonWriter({ seq: true }) },
  }),
  entry({
    id: 'kml',
    title: 'KML (WGS 84)',
    mediaType: 'application/vnd.google-earth.kml+xml',
    aliases: ['application/vnd.google-earth.kml', 'kml'],
    fileExt: 'kml',
    download: { ext: 'kml', listed: true },
    ogcapi: true,
    wfs: { names: ['application/vnd.google-earth.kml+xml', 'KML'] },
    euFileType: 'KML',
    crs: { forced: 4326, default: 'wgs84' },
    produce: { kind: 'stream', writer: () => new KmlWriter() },
    attachment: true,
  }),
  entry({
    id: 'shp',
    title: 'ESRI Shapefile (ZIP)',
    mediaType: 'application/zip',
    aliases: ['SHAPE-ZIP', 'application/x-zipped-shp', 'application/x-shapefile', 'shp', 'ESRI Shapefile'],
    fileExt: 'zip',
    download: { ext: 'shp', extAliases: ['zip', 'shp.zip'], listed: true },
    ogcapi: true,
    wfs: { names: ['SHAPE-ZIP'] },
    euFileType: 'SHP',
    crs: { default: 'native' },
    produce: { kind: 'file', build: (fo) => exportShapefileZip(fo) },
    requires: ['ogr2ogr'],
  }),
  entry({
    id: 'gpkg',
    title: 'GeoPackage',
    mediaType: 'application/geopackage+sqlite3',
    aliases: ['application/x-gpkg', 'GPKG', 'geopackage', 'geopkg'],
    fileExt: 'gpkg',
    download: { ext: 'gpkg', listed: true },
    ogcapi: true,
    wfs: { names: ['application/geopackage+sqlite3', 'GPKG'] },
    euFileType: 'GPKG',
    crs: { default: 'native' },
    spatialIndex: true,
    produce: { kind: 'file', build: (fo) => exportGeoPackage(fo) },
    requires: ['ogr2ogr'],
  }),
  entry({
    id: 'fgb',
    title: 'FlatGeobuf',
    mediaType: 'application/flatgeobuf',
    aliases: ['flatgeobuf', 'application/x-flatgeobuf', 'fgb'],
    fileExt: 'fgb',
    download: { ext: 'fgb', listed: true },
    ogcapi: true,
    wfs: { names: ['application/flatgeobuf', 'FlatGeobuf'] },
    // the EU file-type table has no FlatGeobuf entry: DCAT carries the media type alone
    crs: { default: 'native' },
    spatialIndex: true,
    produce: { kind: 'file', build: (fo) => exportFlatGeobuf(fo) },
    requires: ['ogr2ogr'],
  }),
  entry({
    id: 'xlsx',
    title: 'Excel (XLSX)',
    mediaType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    aliases: ['excel2007', 'xlsx'],
    fileExt: 'xlsx',
    download: { ext: 'xlsx', listed: true },
    ogcapi: true,
    wfs: { names: ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'excel2007'] },
    euFileType: 'XLSX',
    crs: { default: 'native' },
    produce: { kind: 'file', build: (fo, o) => exportXlsx({ ...fo, geometry: o.csv?.geometry }) },
    maxFeatures: XLSX_MAX_ROWS - 1,
  }),
];

const BY_ID = new Map<FormatId, FormatDef>(FORMATS.map((f) => [f.id, f]));

export function formatById(id: FormatId): FormatDef {
  const f = BY_ID.get(id);
  if (!f) throw new Error(`no format '${id}'`);
  return f;
}

/**
 * A format name as clients write it, reduced to one spelling: lower case, no spaces or quotes,
 * and '+' restored where form decoding turned it into a space (application/geo json → geo+json).
 */
export function normaliseFormatName(s: string): string {
  return s
    .toLowerCase()
    .replace(/(gml|geo|kml|geopackage|json)\s+(xml|json|sqlite3|seq)/g, '$1+$2')
    .replace(/\s+/g, '')
    .replace(/"/g, '');
}

/** The format a name (media type, alias, id) designates, among `among` (default: all). */
export function formatByName(name: string, among: readonly FormatDef[] = FORMATS): { def: FormatDef; contentType: string } | undefined {
  const n = normaliseFormatName(name);
  for (const def of among) {
    if (normaliseFormatName(def.mediaType) === n || def.id === n) return { def, contentType: def.contentType };
    for (const a of def.aliases) {
      if (normaliseFormatName(a) !== n) continue;
      const ct = Object.entries(def.aliasContentTypes ?? {}).find(([k]) => normaliseFormatName(k) === n)?.[1];
      return { def, contentType: ct ?? def.contentType };
    }
    for (const w of [...(def.wfs?.names ?? []), ...(def.wfs?.names11 ?? [])]) {
      if (normaliseFormatName(w) === n) return { def, contentType: def.contentType };
    }
  }
  return undefined;
}

/** The format of a download URL extension (geojson, json, shp, zip, shp.zip, …). */
export function formatByExtension(ext: string, among: readonly FormatDef[] = FORMATS): FormatDef | undefined {
  const e = ext.toLowerCase();
  return among.find((f) => f.download && (f.download.ext === e || f.download.extAliases?.includes(e)));
}

/** Split `{name}.{ext}` on the longest download extension it ends with. */
export function splitDownloadFile(file: string, among: readonly FormatDef[] = FORMATS): { name: string; def: FormatDef } | undefined {
  const exts = among
    .flatMap((f) => (f.download ? [f.download.ext, ...(f.download.extAliases ?? [])] : []))
    .sort((a, b) => b.length - a.length);
  const lower = file.toLowerCase();
  for (const e of exts) {
    if (lower.endsWith('.' + e) && file.length > e.length + 1) {
      return { name: file.slice(0, -(e.length + 1)), def: formatByExtension(e, among)! };
    }
  }
  return undefined;
}

/**
 * The output CRS of a request in this format: the forced one, else the one asked, else the
 * format's default (WGS 84 for the GeoJSON family, the layer's storage CRS otherwise).
 */
export function outputCrsOf(def: FormatDef, requested: number | undefined, nativeSrid: number): number {
  if (def.crs.forced) return def.crs.forced;
  if (requested !== undefined) return requested;
  return def.crs.default === 'wgs84' ? 4326 : nativeSrid;
}

/** The formats that work here: those whose tools were found, minus the ones the configuration turns off. */
export function offeredFormats(tools: ToolSet, exclude: readonly string[] = []): FormatDef[] {
  const off = new Set(exclude.map((x) => x.toLowerCase()));
  return FORMATS.filter((f) => !off.has(f.id) && f.requires.every((t) => tools[t]));
}

/** The formats that exist but are not offered here, with the reason (for logs and the landing page). */
export function missingFormats(tools: ToolSet): Array<{ def: FormatDef; tools: Tool[] }> {
  return FORMATS.map((def) => ({ def, tools: def.requires.filter((t) => !tools[t]) })).filter((m) => m.tools.length > 0);
}

/** The external programs a format needs, as messages name them ('' for none): "GDAL's ogr2ogr". */
export function neededToolsText(def: FormatDef): string {
  return def.requires.map((t) => TOOL_TITLES[t]).join(', ');
}

/** Formats written by the shared export (everything but the protocols' own GML). */
export function isExportFormat(def: FormatDef): boolean {
  return def.produce.kind !== 'protocol';
}

/** WFS output format names to advertise for a version, the version's default GML first. */
export function wfsOutputFormatNames(version: string, offered: readonly FormatDef[]): string[] {
  const v20 = version.startsWith('2.');
  const first: FormatId = v20 ? 'gml32' : 'gml311';
  const ordered = [...offered.filter((f) => f.id === first), ...offered.filter((f) => f.id !== first)];
  return ordered.flatMap((f) => (f.wfs ? [...(v20 ? f.wfs.names : (f.wfs.names11 ?? f.wfs.names))] : []));
}

/** Formats OGC API – Features items offer besides JSON and HTML, keyed by their `f` value. */
export function ogcApiFileFormats(offered: readonly FormatDef[]): FormatDef[] {
  return offered.filter((f) => f.ogcapi && f.download);
}

/** The download formats listed in links (landing page, /downloads, catalogue distributions). */
export function listedDownloads(offered: readonly FormatDef[]): FormatDef[] {
  return offered.filter((f) => f.download?.listed);
}

/**
 * The formats this server offers: the format table filtered by the tools its runtime found
 * (ctx.runtime.tools) and the configuration's exclusions. Every front door lists and accepts these only.
 */
export function serverFormats(ctx: { config: { formats?: { exclude?: string[] } }; runtime: { tools: ToolProbe } }): FormatDef[] {
  return offeredFormats(ctx.runtime.tools.tools(), ctx.config.formats?.exclude ?? []);
}
