/**
 * One way to answer a feature request as a downloadable file, shared by the three front doors
 * (/downloads, WFS GetFeature OUTPUTFORMAT, OGC API items f=): the caller builds the
 * FeatureQuery (filter, bbox, clip, CRS, paging) its own way; this sends it as GeoJSON, CSV,
 * KML, NDJSON (streamed from the engine's cursor) or Shapefile ZIP, GeoPackage, XLSX (built in a
 * capped temporary directory, sent with Content-Length, removed afterwards).
 *
 * Errors before the first byte are thrown: ExportError (too big, GDAL missing), FeatureQueryError /
 * FilterError (request mistakes), database errors; each front door maps them to its own form.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { addFeatures } from '../../ops/tags.js';
import {
  countFeatures,
  clientSignal,
  destroyOnClientClose,
  openFeatureStream,
  CsvWriter,
  GeoJsonWriter,
  KmlWriter,
  NdjsonWriter,
  ExportError,
  exportGeoPackage,
  exportShapefileZip,
  exportXlsx,
  outputEpsgOf,
  streamExport,
  XLSX_MAX_ROWS,
  type CsvWriterOptions,
  type FeatureQuery,
  type FeatureWriter,
  type FileExport,
} from '../../features/index.js';

export type ExportFormat = 'geojson' | 'csv' | 'kml' | 'shp' | 'gpkg' | 'xlsx' | 'ndjson';

/** The formats WFS (OUTPUTFORMAT) and OGC API (`f=`) hand to this export, with their media types. */
export const DOWNLOAD_MEDIA_TYPES = {
  csv: 'text/csv',
  kml: 'application/vnd.google-earth.kml+xml',
  shp: 'application/zip',
  gpkg: 'application/geopackage+sqlite3',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
} as const;
export type DownloadFormat = keyof typeof DOWNLOAD_MEDIA_TYPES;

export function isDownloadFormat(f: string): f is DownloadFormat {
  return Object.hasOwn(DOWNLOAD_MEDIA_TYPES, f);
}

export const XLSX_MEDIA_TYPE = DOWNLOAD_MEDIA_TYPES.xlsx;

/** Formats built as a file on the server before the first byte is sent. */
export function isFileFormat(f: ExportFormat): f is 'shp' | 'gpkg' | 'xlsx' {
  return f === 'shp' || f === 'gpkg' || f === 'xlsx';
}

/** Extension of the file sent for a format (a Shapefile travels as a ZIP). */
export function fileExtOf(f: ExportFormat): string {
  return f === 'shp' ? 'zip' : f;
}

/** Default byte cap of the temporary directory of a file-based export (Shapefile, GeoPackage, XLSX). */
export const DEFAULT_DOWNLOAD_TEMP_BYTES = 4 * 1024 ** 3;

export function tempBytes(ctx: AppContext): number {
  const v = ctx.config.limits.downloadTempBytes;
  return typeof v === 'number' && v > 0 ? v : DEFAULT_DOWNLOAD_TEMP_BYTES;
}

export function safeFilePart(s: string): string {
  return s.replace(/[^\w.-]+/g, '_');
}

/** `{layer}[_{label}]_EPSG{n}.{ext}` — what every front door names its files. */
export function exportFileName(layerNames: string[], epsg: number, format: ExportFormat, label?: string): string {
  const base = [...new Set(layerNames)].map(safeFilePart).join('_');
  return `${base}${label ? '_' + safeFilePart(label) : ''}_EPSG${epsg}.${fileExtOf(format)}`;
}

export function contentDisposition(filename: string, disposition: 'attachment' | 'inline' = 'attachment'): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/"/g, '_');
  return `${disposition}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * The queries as a file format expects them: KML is WGS 84 by definition, and files store x/y
 * (longitude, latitude) whatever axis order a protocol uses on the wire.
 */
export function queriesForFormat(queries: FeatureQuery[], format: ExportFormat): FeatureQuery[] {
  if (format === 'kml') return queries.map((q) => ({ ...q, outputEpsg: 4326, flipAxes: false, outputLatLon: false }));
  if (format === 'shp' || format === 'gpkg' || format === 'xlsx')
    return queries.map((q) => ({ ...q, flipAxes: false, outputLatLon: false }));
  return queries;
}

export interface SendExportOptions {
  format: ExportFormat;
  /** One per layer; file formats other than KML take exactly one (the caller checks). */
  queries: FeatureQuery[];
  filename: string;
  /** CSV options (separator, BOM, geometry columns); geometry also applies to XLSX. */
  csv?: CsvWriterOptions;
  disposition?: 'attachment' | 'inline';
  /** Response content type when the protocol names the format differently (WFS). */
  contentType?: string;
}

/**
 * Send the features of `queries` as a file. Resolves with the reply; throws (before any byte
 * is sent) for request mistakes and limits. A client that disconnects stops the cursor, kills
 * ogr2ogr and removes the temporary directory.
 */
export async function sendExport(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, o: SendExportOptions): Promise<FastifyReply> {
  const queries = queriesForFormat(o.queries, o.format);
  const epsg = outputEpsgOf(queries[0]);
  if (isFileFormat(o.format)) {
    const format = o.format;
    if (format === 'xlsx') {
      let n = 0;
      for (const q of queries) n = Math.max(n, await countFeatures(ctx.runtime.features, q));
      if (n + 1 > XLSX_MAX_ROWS)
        throw new ExportError(
          413,
          `${n} features do not fit in an Excel sheet (at most ${XLSX_MAX_ROWS - 1} rows of data); narrow the export or use CSV`,
        );
    }
    const ac = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) ac.abort(new Error('client closed the connection'));
    };
    req.raw.once('close', onClose);
    reply.raw.once('close', onClose);
    const fo = {
      pool: ctx.runtime.features,
      queries,
      baseName: safeFilePart(queries[0].layer.name),
      maxBytes: tempBytes(ctx),
      signal: ac.signal,
    };
    let out: FileExport;
    try {
      out =
        format === 'shp'
          ? await exportShapefileZip(fo)
          : format === 'gpkg'
            ? await exportGeoPackage(fo)
            : await exportXlsx({ ...fo, geometry: o.csv?.geometry });
    } catch (e) {
      // the client is gone: nothing to answer (the export removed its directory)
      if (ac.signal.aborted && !(e instanceof ExportError)) return reply;
      throw e;
    } finally {
      req.raw.off('close', onClose);
      reply.raw.off('close', onClose);
    }
    addFeatures(req, out.features);
    if (reply.raw.destroyed || ac.signal.aborted) {
      await out.cleanup();
      return reply;
    }
    const stream = streamExport(out);
    reply.raw.once('close', () => {
      if (!stream.destroyed) stream.destroy();
      void out.cleanup();
    });
    reply.header('Content-Type', o.contentType ?? out.contentType);
    reply.header('Content-Length', String(out.size));
    reply.header('Content-Disposition', contentDisposition(o.filename, o.disposition));
    return reply.send(stream);
  }

  let writer: FeatureWriter;
  switch (o.format) {
    case 'geojson':
      writer = new GeoJsonWriter();
      break;
    case 'ndjson':
      writer = new NdjsonWriter();
      break;
    case 'csv':
      writer = new CsvWriter(o.csv);
      break;
    case 'kml':
      writer = new KmlWriter();
      break;
  }
  let features = 0;
  const counting: FeatureWriter = {
    format: writer.format,
    contentType: writer.contentType,
    selectOptions: writer.selectOptions,
    header: (i) => writer.header(i),
    beginQuery: writer.beginQuery ? (qq, i) => writer.beginQuery!(qq, i) : undefined,
    feature: (row, qq, i) => {
      features++;
      return writer.feature(row, qq, i);
    },
    footer: (i, n) => {
      addFeatures(req, features);
      return writer.footer(i, n);
    },
  };
  const stream = await openFeatureStream(ctx.runtime.features, {
    queries,
    writer: counting,
    info: {
      numberMatched: 'unknown',
      timeStamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      links: {},
      layers: queries.map((q) => q.layer),
      outputEpsg: epsg,
    },
    signal: clientSignal(reply.raw),
  });
  destroyOnClientClose(reply.raw, stream);
  reply.header('Content-Type', o.contentType ?? writer.contentType);
  reply.header('Content-Disposition', contentDisposition(o.filename, o.disposition));
  return reply.send(stream);
}
