/**
 * The shared feature engine: query building, SQL-side serialisation, streaming, writers.
 * It knows nothing of HTTP, WFS or OGC API. Typical use by a front door:
 *
 *   const q: FeatureQuery = { layer, filter, bbox, properties, sortBy, limit, offset, outputEpsg };
 *   checkQuery(q);                                   // FeatureQueryError / FilterError → client error
 *   const matched = await countFeatures(db, q);      // numberMatched first (db: runtime.features, gated)
 *   const stream = await openFeatureStream(pool, { queries: [q], writer: new GeoJsonWriter(), info,
 *     signal: clientSignal(reply.raw) });            // client gone → cursor closed, connection back
 *   return reply.type(writer.contentType).send(stream);
 *
 * openFeatureStream resolves once the first chunk is ready, so database errors surface before any
 * byte is sent; the returned Readable must then be consumed or destroyed.
 */
export * from './query.js';
export * from './stream.js';
export * from './keyset.js';
export * from './plan.js';
export * from './writers/types.js';
export { GeoJsonWriter, geojsonLinks, type GeoJsonWriterOptions } from './writers/geojson.js';
export { GmlWriter, ncName, GML32_NS, GML311_NS, WFS20_NS, WFS11_NS, type GmlWriterOptions } from './writers/gml.js';
export { CsvWriter, csvField } from './writers/csv.js';
export { NdjsonWriter } from './writers/ndjson.js';
export { KmlWriter, kmlConfig, type KmlFieldConfig } from './writers/kml.js';
export type { CsvWriterOptions } from './writers/csv.js';
export * from './export/files.js';
export * from './formats.js';
export * from './tools.js';
