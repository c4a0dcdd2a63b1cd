/**
 * Publishing metadata for resources hosted elsewhere: records from ISO 19139 (gmd:MD_Metadata),
 * Dublin Core (csw:Record) and DCAT (rdf:RDF, Turtle, JSON-LD) documents, used by CSW-T
 * Transaction and by the `catalog-import` command. Published records have the source 'csw-t'.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { OwsException } from '../ows/exceptions.js';
import { parseXml, type XmlElement } from '../ows/xmldom.js';
import { isoToRecord, dcatToRecords } from './harvest.js';
import { parseRdf, parseRdfXmlElement, detectRdfFormat } from './rdfparse.js';
import { CSW_NS } from './dc.js';
import { CATALOG_SCHEMA, inTransaction, upsertRecord } from './store.js';
import type { CatalogRecord, Link } from './model.js';

export const PUBLISHED_SOURCE = 'csw-t';

const kids = (el: XmlElement, name: string) => el.children.filter((c) => c.name === name);
const kid = (el: XmlElement, name: string) => el.children.find((c) => c.name === name);

/** Dublin Core csw:Record → catalogue record. */
export function dcToRecord(el: XmlElement, now: string): CatalogRecord {
  const v = (name: string) => kid(el, name)?.text || undefined;
  const identifier = v('identifier');
  const title = v('title');
  if (!identifier || !title) throw new OwsException('InvalidParameterValue', 'a csw:Record needs dc:identifier and dc:title', 'Insert');
  let bbox: [number, number, number, number] | null = null;
  const bb = kid(el, 'BoundingBox') ?? kid(el, 'WGS84BoundingBox');
  if (bb) {
    const lo = (kid(bb, 'LowerCorner')?.text ?? '').split(/\s+/).map(Number);
    const up = (kid(bb, 'UpperCorner')?.text ?? '').split(/\s+/).map(Number);
    const latFirst = bb.name === 'BoundingBox' && /EPSG(::|:)4326$/.test(bb.attrs.crs ?? 'urn:ogc:def:crs:EPSG::4326');
    const b: number[] = latFirst ? [lo[1], lo[0], up[1], up[0]] : [lo[0], lo[1], up[0], up[1]];
    if (b.every(Number.isFinite)) bbox = b as [number, number, number, number];
  }
  const type = (v('type') ?? 'dataset') as CatalogRecord['type'];
  const links: Link[] = [...kids(el, 'references'), ...kids(el, 'URI')]
    .map((r) => ({ url: r.text, protocol: r.attrs.scheme || r.attrs.protocol || 'WWW:LINK', function: 'information' as const }))
    .filter((l) => l.url);
  return {
    identifier,
    type: ['dataset', 'series', 'nonGeographicDataset', 'service'].includes(type) ? type : 'dataset',
    title,
    abstract: v('abstract') ?? v('description') ?? '',
    keywords: kids(el, 'subject')
      .map((s) => s.text)
      .filter(Boolean),
    themes: [],
    licence: v('license') && /^https?:/.test(v('license')!) ? { url: v('license')! } : null,
    rights:
      kids(el, 'rights')
        .map((r) => r.text)
        .join(' — ') || null,
    contact: v('creator') ? { organisation: v('creator'), name: v('creator') } : null,
    publisher: v('publisher') ? { organisation: v('publisher'), name: v('publisher') } : null,
    modified: v('modified') ?? v('date') ?? null,
    language: v('language') ?? 'fre',
    bbox,
    crs: [],
    links,
    operatesOn: [],
    source: PUBLISHED_SOURCE,
    sourceId: identifier,
    harvestedAt: null,
    metadataModified: now,
  };
}

export function toRecords(el: XmlElement, now: string): CatalogRecord[] {
  if (el.name === 'MD_Metadata') {
    try {
      return [{ ...isoToRecord(el, PUBLISHED_SOURCE, now), harvestedAt: null }];
    } catch (e) {
      throw new OwsException('InvalidParameterValue', (e as Error).message, 'Insert');
    }
  }
  if (el.name === 'Record' && el.ns === CSW_NS) return [dcToRecord(el, now)];
  if (el.name === 'RDF') {
    const r = dcatToRecords(parseRdfXmlElement(el), PUBLISHED_SOURCE, now);
    if (!r.records.length)
      throw new OwsException('InvalidParameterValue', `no DCAT dataset with identifier and title (${r.errors.join('; ')})`, 'Insert');
    return r.records.map((x) => ({ ...x, harvestedAt: null }));
  }
  throw new OwsException('InvalidParameterValue', `cannot publish a ${el.qname} (csw:Record, gmd:MD_Metadata or DCAT rdf:RDF)`, 'Insert');
}

export interface ImportResult {
  file: string;
  imported: string[];
  errors: string[];
}

/** Import metadata files; each file in one transaction (all its records or none). */
export async function importMetadataFiles(pool: pg.Pool, files: string[], schema = CATALOG_SCHEMA): Promise<ImportResult[]> {
  const out: ImportResult[] = [];
  const now = new Date().toISOString();
  for (const file of files) {
    const res: ImportResult = { file, imported: [], errors: [] };
    out.push(res);
    try {
      const text = readFileSync(file, 'utf8');
      let records: CatalogRecord[] = [];
      const fmt = text.trimStart().startsWith('<') ? 'xml' : detectRdfFormat(undefined, `file://${file.startsWith('/') ? '' : '/'}${file}`);
      if (fmt === 'xml') {
        const root = parseXml(text, 64 * 1024 * 1024);
        const items =
          root.name === 'GetRecordsResponse' || root.name === 'GetRecordByIdResponse'
            ? (root.children.find((c) => c.name === 'SearchResults')?.children ?? root.children)
            : [root];
        for (const el of items) records.push(...toRecords(el, now));
      } else if (fmt) {
        const r = dcatToRecords(await parseRdf(text, fmt, `file://${file}`), PUBLISHED_SOURCE, now);
        records = r.records.map((x) => ({ ...x, harvestedAt: null }));
        res.errors.push(...r.errors);
      } else {
        throw new Error('unknown format (XML: ISO 19139, csw:Record, rdf:RDF; or .ttl, .nt, .jsonld)');
      }
      await inTransaction(pool, async (c) => {
        for (const r of records) {
          if (!(await upsertRecord(c, r, schema))) throw new Error(`identifier '${r.identifier}' belongs to another source`);
          res.imported.push(r.identifier);
        }
      });
    } catch (e) {
      res.imported = [];
      res.errors.push((e as Error).message);
    }
  }
  return out;
}
