/** CSV (RFC 4180) with the geometry as WKT in the last column 'wkt'. */
import { selectedFields, type FeatureQuery, type FeatureRow } from '../query.js';
import type { FeatureWriter } from './types.js';

export function csvField(v: string | null | undefined): string {
  if (v === null || v === undefined) return '';
  return /[",\r\n]/.test(v) || /^\s|\s$/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export class CsvWriter implements FeatureWriter {
  readonly format = 'csv' as const;
  readonly contentType = 'text/csv; charset=UTF-8';
  private names: string[] = [];
  private headerWritten = false;
  header(): string {
    return '';
  }
  beginQuery(q: FeatureQuery): string {
    this.names = selectedFields(q).map((f) => f.name);
    if (this.headerWritten) return '';
    this.headerWritten = true;
    return [...this.names, 'wkt'].map(csvField).join(',') + '\r\n';
  }
  feature(row: FeatureRow): string {
    let s = '';
    for (const n of this.names) s += csvField(row[n]) + ',';
    return s + csvField(row.wkt) + '\r\n';
  }
  footer(): string {
    return '';
  }
}
