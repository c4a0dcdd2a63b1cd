/**
 * KML 2.2 document: one Placemark per feature, geometry from ST_AsKML (always WGS 84), name and
 * description from configured fields (layer.extra.metadata.kml = {name, description}) or
 * guessed (a 'nom'/'name'/'libelle'/'title' field, else the identifier); every attribute also
 * goes to ExtendedData so nothing is lost.
 */
import { escapeAttr, escapeText } from '../../ows/xml.js';
import type { Layer } from '../../registry/types.js';
import { selectedFields, type FeatureQuery, type FeatureRow } from '../query.js';
import type { CollectionInfo, FeatureWriter } from './types.js';

export interface KmlFieldConfig {
  /** Field giving the Placemark name. */
  name?: string;
  /** Field giving the description, or a template with {field} placeholders. */
  description?: string;
}

export function kmlConfig(layer: Layer): KmlFieldConfig {
  const meta = (layer.extra?.metadata ?? {}) as Record<string, unknown>;
  const k = meta.kml as KmlFieldConfig | undefined;
  const cfg: KmlFieldConfig = { ...(k ?? {}) };
  if (!cfg.name) {
    const names = ['nom', 'name', 'libelle', 'label', 'title', 'titre', 'idu'];
    cfg.name = layer.fields.find((f) => names.includes(f.name.toLowerCase()))?.name ?? layer.primaryKey ?? undefined;
  }
  return cfg;
}

export class KmlWriter implements FeatureWriter {
  readonly format = 'kml' as const;
  readonly contentType = 'application/vnd.google-earth.kml+xml';
  private names: string[] = [];
  private cfg: KmlFieldConfig = {};
  private open = false;
  header(info: CollectionInfo): string {
    const title = info.layers.map((l) => l.title || l.name).join(', ');
    return `<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>${escapeText(title)}</name>\n`;
  }
  beginQuery(q: FeatureQuery): string {
    this.names = selectedFields(q).map((f) => f.name);
    this.cfg = kmlConfig(q.layer);
    const close = this.open ? '</Folder>\n' : '';
    this.open = true;
    return `${close}<Folder><name>${escapeText(q.layer.title || q.layer.name)}</name>\n`;
  }
  feature(row: FeatureRow, q: FeatureQuery): string {
    let s = '<Placemark';
    const id = q.layer.primaryKey ? row[q.layer.primaryKey] : undefined;
    if (id != null) s += ` id="${escapeAttr(`${q.layer.name}.${id}`)}"`;
    s += '>';
    const name = this.cfg.name ? row[this.cfg.name] : undefined;
    if (name != null) s += `<name>${escapeText(name)}</name>`;
    const d = this.cfg.description;
    if (d) {
      const text = d.includes('{') ? d.replace(/\{([^}]+)\}/g, (_m, f: string) => row[f] ?? '') : (row[d] ?? '');
      if (text) s += `<description>${escapeText(text)}</description>`;
    }
    s += '<ExtendedData>';
    for (const n of this.names) {
      const v = row[n];
      if (v != null) s += `<Data name="${escapeAttr(n)}"><value>${escapeText(v)}</value></Data>`;
    }
    s += '</ExtendedData>';
    if (row.kml) s += row.kml;
    return s + '</Placemark>\n';
  }
  footer(): string {
    return (this.open ? '</Folder>' : '') + '</Document></kml>\n';
  }
}
