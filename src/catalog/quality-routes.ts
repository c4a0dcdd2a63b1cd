/**
 * The metadata quality of catalogue records (docs/catalogue-store.md, "Quality"):
 *  - GET /catalog/records/{id}/quality   one record's report: the one computed when the record was
 *    received (ISO 19139: INSPIRE TG MD 2.0; DCAT: EU vocabularies; computed from the source document
 *    for records stored before), else (records derived from the layers, Dublin Core) the INSPIRE
 *    checks of the record's ISO 19139 output (basis 'crosswalk');
 *  - GET /catalog/quality (admin)        every stored report: failures counted by check, the failing records.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { invalidParam, ServiceError } from '../errors/service-error.js';
import { baseUrlOf } from '../ows/service.js';
import { XmlWriter } from '../ows/xml.js';
import { parseXml } from '../ows/xmldom.js';
import { inspireReport } from './inspire.js';
import { writeIsoRecord } from './iso.js';
import type { CatalogRecord } from './model.js';
import type { QualityReport } from './quality.js';
import { getRecords } from './query.js';
import { NS } from './rdf.js';
import { TripleIndex, type RTriple } from './rdfparse.js';
import { dcatVocabularyReport } from './vocab.js';
import { schemaOf } from './store.js';
import { ensureCatalogReady } from './sync.js';

export interface RecordQuality {
  identifier: string;
  recordSchema: string;
  /** 'source': computed from the document as received; 'crosswalk': from this server's ISO 19139 output of the record. */
  basis: 'source' | 'crosswalk';
  report: QualityReport;
}

/** The quality report of a record: the stored one, else the INSPIRE checks of its ISO 19139 crosswalk. */
export function recordQuality(ctx: AppContext, r: CatalogRecord, base: string): RecordQuality {
  const common = { identifier: r.identifier, recordSchema: r.recordSchema ?? 'local' };
  if (r.quality) return { ...common, basis: 'source', report: r.quality };
  // a record stored before the checks existed: its source document is checked now
  if (r.recordSchema === 'iso19139' && r.sourceDoc)
    return { ...common, basis: 'source', report: inspireReport(parseXml(r.sourceDoc, 64 * 1024 * 1024)) };
  if (r.recordSchema === 'dcat' && r.sourceDoc) {
    const g = new TripleIndex(JSON.parse(r.sourceDoc) as RTriple[]);
    const node = [...g.subjectsOfType(`${NS.dcat}Dataset`), ...g.subjectsOfType(`${NS.dcat}DatasetSeries`)][0];
    if (node) return { ...common, basis: 'source', report: dcatVocabularyReport(g, node, r.type) };
  }
  const w = new XmlWriter();
  writeIsoRecord(w, r, {
    base,
    elementSet: 'full',
    fallbackOrganisation: ctx.config.service.contact.organisation || ctx.config.service.title,
  });
  return { ...common, basis: 'crosswalk', report: inspireReport(parseXml(w.toString(), 64 * 1024 * 1024)) };
}

function intParam(q: Record<string, unknown>, name: string, dflt: number, max: number): number {
  const v = q[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(String(v)) || Number(v) > max) throw invalidParam(name, `parameter '${name}' must be an integer in 0..${max}`);
  return Number(v);
}

export function registerQualityRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/catalog/records/:id/quality', async (req: FastifyRequest, reply: FastifyReply) => {
    const id = (req.params as { id: string }).id;
    await ensureCatalogReady(ctx);
    const [r] = await getRecords(ctx.pool, [id], schemaOf(ctx));
    if (!r) throw new ServiceError('not-found', `no catalogue record '${id}'`);
    return reply.type('application/json; charset=utf-8').send(recordQuality(ctx, r, baseUrlOf(req, ctx)));
  });

  // an admin route (config.admin): src/security/admin.ts checks the caller first
  app.get('/catalog/quality', { config: { admin: true } }, async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as Record<string, unknown>;
    const limit = intParam(q, 'limit', 100, 1000);
    const offset = intParam(q, 'offset', 0, 10_000_000);
    await ensureCatalogReady(ctx);
    const S = schemaOf(ctx);
    const [totals, byCheck, failing] = await Promise.all([
      ctx.pool.query<{ total: number; checked: number; failing: number }>(
        `SELECT count(*)::int AS total, count(quality)::int AS checked,
                count(*) FILTER (WHERE (quality->>'conformant')::boolean IS FALSE)::int AS failing FROM ${S}.records`,
      ),
      ctx.pool.query<{ profile: string; check: string; records: number }>(
        `SELECT quality->>'profile' AS profile, f AS check, count(*)::int AS records
           FROM ${S}.records, jsonb_array_elements_text(quality->'failed') f
          GROUP BY 1, 2 ORDER BY 3 DESC, 2`,
      ),
      ctx.pool.query<{ identifier: string; title: string; source: string; record_schema: string; profile: string; failed: string[] }>(
        `SELECT identifier, title, source, record_schema, quality->>'profile' AS profile,
                ARRAY(SELECT jsonb_array_elements_text(quality->'failed')) AS failed
           FROM ${S}.records WHERE (quality->>'conformant')::boolean IS FALSE
          ORDER BY identifier LIMIT $1 OFFSET $2`,
        [limit, offset],
      ),
    ]);
    return reply.type('application/json; charset=utf-8').send({
      ...totals.rows[0],
      failuresByCheck: byCheck.rows,
      offset,
      limit,
      records: failing.rows.map((x) => ({
        identifier: x.identifier,
        title: x.title,
        source: x.source,
        recordSchema: x.record_schema,
        profile: x.profile,
        failed: x.failed,
      })),
    });
  });
}
