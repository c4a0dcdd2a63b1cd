/**
 * One way to answer a feature request as a downloadable file, shared by the three front doors
 * (/downloads, WFS GetFeature OUTPUTFORMAT, OGC API items f=): the caller builds the
 * FeatureQuery (filter, bbox, clip, CRS, paging) its own way and picks an entry of the format
 * table (src/features/formats.ts); this sends it with the entry's writer (streamed from the
 * engine's cursor: GeoJSON, CSV, KML, NDJSON) or exporter (built in a capped temporary directory,
 * sent with Content-Length, removed afterwards: Shapefile ZIP, GeoPackage, FlatGeobuf, XLSX).
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
  openFeatureStream,
  ExportError,
  outputEpsgOf,
  streamExport,
  type CsvWriterOptions,
  type FeatureQuery,
  type FeatureWriter,
  type FileExport,
  type FormatDef,
} from '../../features/index.js';

/** Default byte cap of the temporary directory of a file-based export (Shapefile, GeoPackage, FlatGeobuf, XLSX). */
export const DEFAULT_DOWNLOAD_TEMP_BYTES = 4 * 1024 ** 3;

export function tempBytes(ctx: AppContext): number {
  const v = ctx.config.limits.downloadTempBytes;
  return typeof v === 'number' && v > 0 ? v : DEFAULT_DOWNLOAD_TEMP_BYTES;
}

export function safeFilePart(s: string): string {
  return s.replace(/[^\w.-]+/g, '_');
}

/** `{layer}[_{label}]_EPSG{n}.{ext}` — what every front door names its files. */
export function exportFileName(layerNames: string[], epsg: number, format: FormatDef, label?: string): string {
  const base = [...new Set(layerNames)].map(safeFilePart).join('_');
  return `${base}${label ? '_' + safeFilePart(label) : ''}_EPSG${format.crs.forced ?? epsg}.${format.fileExt}`;
}

export function contentDisposition(filename: string, disposition: 'attachment' | 'inline' = 'attachment'): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/"/g, '_');
  return `${disposition}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * The queries as the format's table entry says: a forced CRS (KML: WGS 84), and x/y (longitude,
 * latitude) in files whatever axis order a protocol uses on the wire.
 */
export function queriesForFormat(queries: FeatureQuery[], format: FormatDef): FeatureQuery[] {
  return queries.map((q) => ({
    ...q,
    ...(format.crs.forced ? { outputEpsg: format.crs.forced } : {}),
    ...(format.xyOnly ? { flipAxes: false, outputLatLon: false } : {}),
  }));
}

export interface SendExportOptions {
  /** An entry of the format table that the export writes (not a protocol's own GML). */
  format: FormatDef;
  /** One per layer; formats that are not multiLayer take exactly one (the caller checks). */
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
  const def = o.format;
  const queries = queriesForFormat(o.queries, def);
  const epsg = outputEpsgOf(queries[0]);
  const produce = def.produce;
  if (produce.kind === 'protocol') throw new Error(`${def.id} is written by its protocol, not by the export`);
  if (produce.kind === 'file') {
    if (def.maxFeatures !== undefined) {
      let n = 0;
      for (const q of queries) n = Math.max(n, await countFeatures(ctx.runtime.features, q));
      if (n > def.maxFeatures)
        throw new ExportError(
          413,
          `${n} features do not fit in one ${def.title} file (at most ${def.maxFeatures}); narrow the export or use CSV`,
        );
    }
    // the one mechanism every front door uses: aborted when the client leaves before the end
    const signal = clientSignal(reply.raw);
    const fo = {
      pool: ctx.runtime.features,
      queries,
      baseName: safeFilePart(queries[0].layer.name),
      maxBytes: tempBytes(ctx),
      signal,
      tools: ctx.runtime.tools,
    };
    let out: FileExport;
    try {
      out = await produce.build(fo, { csv: o.csv });
    } catch (e) {
      // the client is gone: nothing to answer (the export removed its directory)
      if (signal.aborted && !(e instanceof ExportError)) return reply;
      throw e;
    }
    addFeatures(req, out.features);
    if (reply.raw.destroyed || signal.aborted) {
      await out.cleanup();
      return reply;
    }
    const stream = streamExport(out);
    reply.raw.once('close', () => {
      if (!stream.destroyed) stream.destroy();
      void out.cleanup();
    });
    reply.header('Content-Type', o.contentType ?? def.contentType);
    reply.header('Content-Length', String(out.size));
    reply.header('Content-Disposition', contentDisposition(o.filename, o.disposition));
    return reply.send(stream);
  }

  const writer: FeatureWriter = produce.writer({ csv: o.csv });
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
  reply.header('Content-Type', o.contentType ?? writer.contentType);
  reply.header('Content-Disposition', contentDisposition(o.filename, o.disposition));
  return reply.send(stream);
}
