/**
 * CSW-T Transaction (CSW 2.0.2 §10.11): Insert, Update (whole-record replacement, or csw:RecordProperty
 * on Dublin Core records) and Delete of
 * csw:Record, gmd:MD_Metadata and DCAT rdf:RDF records, admin-authenticated (Bearer
 * GEODATA_ADMIN_TOKEN). Published records get the source 'csw-t' and keep their document as sent.
 * Records derived from this server's layers ('local') can be deleted (they then stay deleted: table
 * `suppressed`) but not updated; harvested ones belong to their source. Every record is checked
 * before anything is written (identifier, case clash, dates, bounding box); all actions of one
 * request apply in one database transaction, or none.
 */
import { adminDenial } from '../../security/admin.js';
import type { OwsRequest } from '../../ows/service.js';
import { OwsException } from '../../ows/exceptions.js';
import { XmlWriter } from '../../ows/xml.js';
import { parseXml, resolveQName, type XmlElement } from '../../ows/xmldom.js';
import type pg from 'pg';
import { parseFesFilter } from '../../filter/fes.js';
import { FilterError } from '../../filter/errors.js';
import { toRecords, PUBLISHED_SOURCE, checkCaseClash } from '../../catalog/import.js';
import { checkFilterNs } from './filterns.js';
import { compileCatalogFilter } from '../../catalog/query.js';
import { inTransaction, schemaOf, upsertRecord } from '../../catalog/store.js';
import { ensureCatalogReady } from '../../catalog/sync.js';
import { writeDcRecord, readDc, CSW_NS, DC_NS, DCT_NS } from '../../catalog/dc.js';

const kid = (el: XmlElement, name: string) => el.children.find((c) => c.name === name);
import type { CatalogRecord } from '../../catalog/model.js';

const CSWT_SOURCE = PUBLISHED_SOURCE;

export function adminTokenConfigured(): boolean {
  return Boolean(process.env.GEODATA_ADMIN_TOKEN);
}

const DC_PREFIX: Record<string, string> = { [DC_NS]: 'dc', [DCT_NS]: 'dct' };

/** Apply csw:RecordProperty items (Name, optional Value) to a Dublin Core document. */
function applyProperties(doc: XmlElement, props: XmlElement[]): XmlElement {
  let children = [...doc.children];
  const nsmap = { ...doc.nsmap };
  for (const rp of props) {
    const name = kid(rp, 'Name')?.text.trim().replace(/^.*\//, ''); // an XPath such as /csw:Record/dc:title names its last step
    if (!name) throw new OwsException('MissingParameterValue', 'csw:RecordProperty without csw:Name', 'RecordProperty');
    const { ns, name: local } = resolveQName(rp, name);
    if (!DC_PREFIX[ns] || !/^[A-Za-z]+$/.test(local))
      throw new OwsException(
        'InvalidParameterValue',
        `RecordProperty '${name}' is not a Dublin Core element (dc:…, dct:…; an ISO or DCAT record is replaced whole)`,
        'RecordProperty',
      );
    const value = kid(rp, 'Value');
    const prefix = Object.entries(nsmap).find(([p, u]) => u === ns && p)?.[0] ?? DC_PREFIX[ns];
    nsmap[prefix] = ns;
    const at = children.findIndex((c) => c.ns === ns && c.name === local);
    children = children.filter((c, i) => !(c.ns === ns && c.name === local) || i === at);
    if (!value) {
      children = children.filter((c) => !(c.ns === ns && c.name === local));
      continue;
    }
    const el: XmlElement = { name: local, ns, qname: `${prefix}:${local}`, attrs: {}, children: [], text: value.text.trim(), nsmap };
    if (at >= 0) children[children.findIndex((c) => c.ns === ns && c.name === local)] = el;
    else {
      // new elements go before the bounding boxes (record.xsd: DCMI terms, then ows:BoundingBox)
      const bb = children.findIndex((c) => c.name === 'BoundingBox' || c.name === 'WGS84BoundingBox');
      children.splice(bb >= 0 ? bb : children.length, 0, el);
    }
  }
  return { ...doc, nsmap, children: children.map((c) => ({ ...c, nsmap: { ...nsmap, ...c.nsmap } })) };
}

/**
 * The SQL condition of an action's csw:Constraint (an ogc:Filter, FES 1.1), its values appended to
 * `params`; a missing filter or one that does not compile is the request's mistake.
 */
function constraintWhere(a: XmlElement, what: string, locator: string, params: unknown[], schema: string): string {
  const f = kid(kid(a, 'Constraint') ?? a, 'Filter');
  if (!f) throw new OwsException('MissingParameterValue', `${what} needs a csw:Constraint with an ogc:Filter`, locator);
  try {
    return compileCatalogFilter(parseFesFilter(checkFilterNs(f), { version: '1.1' }), params, schema);
  } catch (e) {
    if (e instanceof FilterError) throw new OwsException('InvalidParameterValue', e.message, 'Constraint');
    throw e;
  }
}

/**
 * Update with csw:RecordProperty (OGC 07-006r1 §10.11.3.4): set (Value) or remove (no Value) Dublin
 * Core elements of the published records the constraint selects; each result is checked as an
 * Insert would be. Returns the number of records updated.
 */
async function updateProperties(c: pg.PoolClient, schema: string, a: XmlElement, now: string): Promise<number> {
  const params: unknown[] = [];
  const where = constraintWhere(a, 'Update with RecordProperty', 'Update', params, schema);
  params.push(CSWT_SOURCE);
  const rows = await c.query<{ identifier: string; record_schema: string; source_doc: string | null }>(
    `SELECT identifier, record_schema, source_doc FROM ${schema}.records WHERE source = $${params.length} AND (${where}) FOR UPDATE`,
    params,
  );
  const props = a.children.filter((x) => x.name === 'RecordProperty');
  for (const row of rows.rows) {
    if (row.record_schema !== 'csw' || !row.source_doc)
      throw new OwsException(
        'OptionNotSupported',
        `record '${row.identifier}' is ${row.record_schema === 'iso19139' ? 'an ISO 19139' : 'a DCAT'} record: replace it whole (Update with the record)`,
        'RecordProperty',
      );
    const r = readDc(applyProperties(parseXml(row.source_doc, 64 * 1024 * 1024), props), CSWT_SOURCE, now, 'RecordProperty');
    if (r.identifier !== row.identifier)
      throw new OwsException(
        'InvalidParameterValue',
        'RecordProperty cannot change a record identifier (Delete and Insert)',
        'RecordProperty',
      );
    await upsertRecord(c, r, schema);
  }
  return rows.rowCount ?? 0;
}

export async function transactionOp(req: OwsRequest) {
  const denial = adminDenial(req.http, req.ctx.config.security.realm, 'Transaction');
  if (denial) throw denial;
  if (!req.xml)
    throw new OwsException('InvalidParameterValue', 'Transaction is an XML request: POST a csw:Transaction document', 'request');
  await ensureCatalogReady(req.ctx);
  const schema = schemaOf(req.ctx);
  const now = new Date().toISOString();
  const strict = { strict: req.ctx.config.catalog?.strictImport === true };
  const inserted: CatalogRecord[] = [];
  const actions = req.xml.children;
  if (!actions.length) throw new OwsException('MissingParameterValue', 'Transaction without Insert, Update or Delete', 'Transaction');
  const counts = await inTransaction(req.ctx.pool, async (c) => {
    let ins = 0;
    let upd = 0;
    let del = 0;
    for (const a of actions) {
      if (a.name === 'Insert') {
        for (const el of a.children) {
          for (const r of toRecords(el, now, undefined, strict)) {
            await checkCaseClash(c, schema, r.identifier, 'Insert');
            const exists = await c.query(`SELECT source FROM ${schema}.records WHERE identifier = $1`, [r.identifier]);
            if (exists.rowCount || inserted.some((x) => x.identifier === r.identifier))
              throw new OwsException('InvalidParameterValue', `a record '${r.identifier}' already exists (use Update)`, 'Insert');
            await upsertRecord(c, r, schema);
            inserted.push(r);
            ins++;
          }
        }
      } else if (a.name === 'Update') {
        if (kid(a, 'RecordProperty')) {
          upd += await updateProperties(c, schema, a, now);
          continue;
        }
        for (const el of a.children.filter((x) => x.name !== 'Constraint')) {
          for (const r of toRecords(el, now, undefined, strict)) {
            const exists = await c.query<{ source: string }>(`SELECT source FROM ${schema}.records WHERE identifier = $1`, [r.identifier]);
            if (!exists.rowCount) throw new OwsException('InvalidParameterValue', `no record '${r.identifier}' to update`, 'Update');
            if (exists.rows[0].source !== CSWT_SOURCE)
              throw new OwsException(
                'InvalidParameterValue',
                `record '${r.identifier}' comes from '${exists.rows[0].source}' and cannot be changed by a Transaction`,
                'Update',
              );
            await upsertRecord(c, r, schema);
            upd++;
          }
        }
      } else if (a.name === 'Delete') {
        const params: unknown[] = [];
        const where = constraintWhere(a, 'Delete', 'Delete', params, schema);
        params.push([CSWT_SOURCE, 'local']);
        const r = await c.query<{ identifier: string; source: string }>(
          `DELETE FROM ${schema}.records WHERE source = ANY($${params.length}::text[]) AND (${where}) RETURNING identifier, source`,
          params,
        );
        const derived = r.rows.filter((x) => x.source === 'local').map((x) => x.identifier);
        if (derived.length)
          await c.query(`INSERT INTO ${schema}.suppressed (identifier) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [derived]);
        del += r.rowCount ?? 0;
      } else {
        throw new OwsException('InvalidParameterValue', `unknown Transaction action '${a.qname}'`, 'Transaction');
      }
    }
    return { ins, upd, del };
  });
  const w = new XmlWriter();
  writeTransactionResponse(w, { inserted: counts.ins, updated: counts.upd, deleted: counts.del }, inserted, req.baseUrl, true);
  return req.reply.code(200).type('application/xml; charset=UTF-8').send(w.toString());
}

/**
 * csw:TransactionResponse (CSW-publication.xsd): the summary and a csw:BriefRecord per inserted
 * record; `root` writes the namespace declarations (false inside csw:HarvestResponse).
 */
export function writeTransactionResponse(
  w: XmlWriter,
  counts: { inserted: number; updated: number; deleted: number; requestId?: string },
  inserted: CatalogRecord[],
  baseUrl: string,
  root: boolean,
): void {
  w.start(
    'csw:TransactionResponse',
    root
      ? {
          ...TRANSACTION_NS,
          'xsi:schemaLocation': `${CSW_NS} http://schemas.opengis.net/csw/2.0.2/CSW-publication.xsd`,
          version: '2.0.2',
        }
      : { version: '2.0.2' },
  );
  w.start('csw:TransactionSummary', { requestId: counts.requestId })
    .el('csw:totalInserted', counts.inserted)
    .el('csw:totalUpdated', counts.updated)
    .el('csw:totalDeleted', counts.deleted)
    .end();
  if (inserted.length) {
    w.start('csw:InsertResult');
    for (const r of inserted) writeDcRecord(w, r, 'brief', baseUrl);
    w.end();
  }
  w.end();
}

/** Namespaces of a publication response (Transaction, Harvest). */
export const TRANSACTION_NS = {
  'xmlns:csw': CSW_NS,
  'xmlns:dc': 'http://purl.org/dc/elements/1.1/',
  'xmlns:dct': 'http://purl.org/dc/terms/',
  'xmlns:ows': 'http://www.opengis.net/ows',
  'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
};
