/**
 * CSW-T Transaction (CSW 2.0.2 §10.11): Insert, Update (whole-record replacement) and Delete of
 * csw:Record, gmd:MD_Metadata and DCAT rdf:RDF records, admin-authenticated (Bearer
 * GEODATA_ADMIN_TOKEN). Published records get the source 'csw-t' and keep their document as sent.
 * Records derived from this server's layers ('local') can be deleted (they then stay deleted: table
 * `suppressed`) but not updated; harvested ones belong to their source. Every record is checked
 * before anything is written (identifier, case clash, dates, bounding box); all actions of one
 * request apply in one database transaction, or none.
 */
import { isAdminRequest } from '../../security/auth.js';
import type { OwsRequest } from '../../ows/service.js';
import { OwsException } from '../../ows/exceptions.js';
import { XmlWriter } from '../../ows/xml.js';
import type { XmlElement } from '../../ows/xmldom.js';
import { parseFesFilter } from '../../filter/fes.js';
import { FilterError } from '../../filter/errors.js';
import { toRecords, PUBLISHED_SOURCE, checkCaseClash } from '../../catalog/import.js';
import { checkFilterNs } from './filterns.js';
import { compileCatalogFilter } from '../../catalog/query.js';
import { inTransaction, schemaOf, upsertRecord } from '../../catalog/store.js';
import { ensureCatalogReady } from '../../catalog/sync.js';
import { writeDcRecord, CSW_NS } from '../../catalog/dc.js';

const kid = (el: XmlElement, name: string) => el.children.find((c) => c.name === name);
import type { CatalogRecord } from '../../catalog/model.js';

const CSWT_SOURCE = PUBLISHED_SOURCE;

export function adminTokenConfigured(): boolean {
  return Boolean(process.env.GEODATA_ADMIN_TOKEN);
}

export async function transactionOp(req: OwsRequest) {
  if (!isAdminRequest(req.http)) {
    const e = new OwsException(
      'Unauthorized',
      'Transaction needs the admin role or the admin token (Authorization: Bearer <GEODATA_ADMIN_TOKEN>)',
      'Transaction',
      401,
    );
    e.headers['WWW-Authenticate'] = 'Bearer realm="geodata-admin"';
    throw e;
  }
  if (!req.xml)
    throw new OwsException('InvalidParameterValue', 'Transaction is an XML request: POST a csw:Transaction document', 'request');
  await ensureCatalogReady(req.ctx);
  const schema = schemaOf(req.ctx);
  const now = new Date().toISOString();
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
          for (const r of toRecords(el, now)) {
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
        if (kid(a, 'RecordProperty'))
          throw new OwsException('OptionNotSupported', 'Update by RecordProperty is not supported: send the whole new record', 'Update');
        for (const el of a.children.filter((x) => x.name !== 'Constraint')) {
          for (const r of toRecords(el, now)) {
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
        const f = kid(kid(a, 'Constraint') ?? a, 'Filter');
        if (!f) throw new OwsException('MissingParameterValue', 'Delete needs a csw:Constraint with an ogc:Filter', 'Delete');
        const params: unknown[] = [];
        let where: string;
        try {
          where = compileCatalogFilter(parseFesFilter(checkFilterNs(f), { version: '1.1' }), params, schema);
        } catch (e) {
          if (e instanceof FilterError) throw new OwsException('InvalidParameterValue', e.message, 'Constraint');
          throw e;
        }
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
  w.start('csw:TransactionResponse', {
    'xmlns:csw': CSW_NS,
    'xmlns:dc': 'http://purl.org/dc/elements/1.1/',
    'xmlns:dct': 'http://purl.org/dc/terms/',
    'xmlns:ows': 'http://www.opengis.net/ows',
    'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
    'xsi:schemaLocation': `${CSW_NS} http://schemas.opengis.net/csw/2.0.2/CSW-publication.xsd`,
    version: '2.0.2',
  });
  w.start('csw:TransactionSummary')
    .el('csw:totalInserted', counts.ins)
    .el('csw:totalUpdated', counts.upd)
    .el('csw:totalDeleted', counts.del)
    .end();
  if (inserted.length) {
    w.start('csw:InsertResult');
    for (const r of inserted) writeDcRecord(w, r, 'brief', req.baseUrl);
    w.end();
  }
  w.end();
  return req.reply.code(200).type('application/xml; charset=UTF-8').send(w.toString());
}
