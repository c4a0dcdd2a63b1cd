/** Newline-delimited GeoJSON (one Feature per line), optionally RFC 8142 GeoJSON text sequences. */
import type { FeatureRow } from '../query.js';
import type { FeatureWriter } from './types.js';

export class NdjsonWriter implements FeatureWriter {
  readonly format = 'ndjson' as const;
  readonly contentType: string;
  private readonly rs: string;
  /** seq = true → application/geo+json-seq (each record prefixed with RS, U+001E). */
  constructor(opts: { seq?: boolean; contentType?: string } = {}) {
    this.rs = opts.seq ? '\u001e' : '';
    this.contentType = opts.contentType ?? (opts.seq ? 'application/geo+json-seq' : 'application/x-ndjson');
  }
  header(): string {
    return '';
  }
  feature(row: FeatureRow): string {
    return this.rs + row.f + '\n';
  }
  footer(): string {
    return '';
  }
}
