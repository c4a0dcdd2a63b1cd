/**
 * CSV (RFC 4180) with the geometry as WKT in the last column 'wkt' by default; options for
 * spreadsheets: x/y columns instead of (or besides) WKT, a ';' separator as French Excel
 * expects, and a UTF-8 byte order mark so Excel detects the encoding.
 */
import { selectedFields, type FeatureQuery, type FeatureRow, type SelectOptions } from '../query.js';
import type { FeatureWriter } from './types.js';

export interface CsvWriterOptions {
  /** Field separator, ',' (default) or ';'. */
  separator?: ',' | ';';
  /** Start with a UTF-8 BOM (U+FEFF). */
  bom?: boolean;
  /** Geometry columns: 'wkt' (default), 'xy' (x, y), 'both' (wkt, x, y) or 'none'. */
  geometry?: 'wkt' | 'xy' | 'both' | 'none';
}

export function csvField(v: string | null | undefined, sep = ','): string {
  if (v === null || v === undefined) return '';
  const special = sep === ',' ? /[",\r\n]/ : /[";\r\n]/;
  return special.test(v) || /^\s|\s$/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export class CsvWriter implements FeatureWriter {
  readonly format = 'csv' as const;
  readonly contentType = 'text/csv; charset=UTF-8';
  readonly selectOptions: SelectOptions;
  private names: string[] = [];
  private headerWritten = false;
  private readonly sep: ',' | ';';
  private readonly geomCols: string[];
  constructor(private readonly o: CsvWriterOptions = {}) {
    this.sep = o.separator ?? ',';
    const g = o.geometry ?? 'wkt';
    this.geomCols = g === 'wkt' ? ['wkt'] : g === 'xy' ? ['x', 'y'] : g === 'both' ? ['wkt', 'x', 'y'] : [];
    this.selectOptions = { xy: g === 'xy' || g === 'both' };
  }
  header(): string {
    return this.o.bom ? '\ufeff' : '';
  }
  beginQuery(q: FeatureQuery): string {
    this.names = selectedFields(q).map((f) => f.name);
    if (this.headerWritten) return '';
    this.headerWritten = true;
    return [...this.names, ...this.geomCols].map((v) => csvField(v, this.sep)).join(this.sep) + '\r\n';
  }
  feature(row: FeatureRow): string {
    const vals: string[] = [];
    for (const n of this.names) vals.push(csvField(row[n], this.sep));
    for (const n of this.geomCols) vals.push(csvField(row[n], this.sep));
    return vals.join(this.sep) + '\r\n';
  }
  footer(): string {
    return '';
  }
}
