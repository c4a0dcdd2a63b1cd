/** The shared feature engine: query building, SQL-side serialisation, streaming, writers. */
export * from './query.js';
export * from './stream.js';
export * from './writers/types.js';
export { GeoJsonWriter, geojsonLinks, type GeoJsonWriterOptions } from './writers/geojson.js';
export { GmlWriter, ncName, GML32_NS, GML311_NS, WFS20_NS, WFS11_NS, type GmlWriterOptions } from './writers/gml.js';
export { CsvWriter, csvField } from './writers/csv.js';
export { NdjsonWriter } from './writers/ndjson.js';
export { KmlWriter, kmlConfig, type KmlFieldConfig } from './writers/kml.js';
export type { CsvWriterOptions } from './writers/csv.js';
export * from './export/files.js';
