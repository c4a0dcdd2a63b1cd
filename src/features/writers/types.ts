/** The common interface of feature collection writers (GeoJSON, GML, CSV, NDJSON). */
import type { Layer } from '../../registry/types.js';
import type { FeatureFormat, FeatureQuery, FeatureRow, SelectOptions } from '../query.js';

export interface CollectionLinks {
  self?: string;
  next?: string;
  previous?: string;
  /** Further links written as they are (e.g. OGC API alternate representations). */
  extra?: Array<{ href: string; rel: string; type?: string; title?: string }>;
}

/** What a writer knows about the collection before the first feature. */
export interface CollectionInfo {
  /** Exact count of matching features, or 'unknown' when it was not computed. */
  numberMatched: number | 'unknown';
  /** Features in this response when known in advance (computed from numberMatched and the page). */
  numberReturned?: number;
  /** ISO 8601 time of the response. */
  timeStamp: string;
  links: CollectionLinks;
  /** The layers the collection draws from, in order. */
  layers: Layer[];
  /** Output CRS (EPSG code). */
  outputEpsg: number;
}

export interface FeatureWriter {
  readonly format: FeatureFormat;
  readonly contentType: string;
  /** Options passed to the SQL builder (GML namespace prefix, CRS name style). */
  readonly selectOptions?: SelectOptions;
  header(info: CollectionInfo): string;
  /** Called before the first row of each query (CSV writes its header line here). */
  beginQuery?(q: FeatureQuery, index: number): string;
  /** One serialised feature; `index` counts features written so far in the whole response. */
  feature(row: FeatureRow, q: FeatureQuery, index: number): string;
  /** Closing text; `returned` is the number of features written. */
  footer(info: CollectionInfo, returned: number): string;
}
