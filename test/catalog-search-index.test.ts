/**
 * The catalogue's full-text and paged queries are served by indexes: the statements GetRecords
 * sends (searchSql: the count and the page's identifiers in one statement) for AnyText = word (records_tsv_gin), AnyText LIKE '%fragment%'
 * (records_tsv_gin OR records_anytext_fold_trgm, accent- and case-insensitive), AnyText with BBOX, and
 * a plain page (records_pkey), checked with EXPLAIN with sequential scans priced out — the plan
 * must be able to use the index, whatever the table size. No timing. And the answers are right.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parseXml } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { testRecord } from './helpers/catalog.js';
import { migrateCatalog, replaceSource } from '../src/catalog/store.js';
import { compileCatalogFilter, searchSql } from '../src/catalog/query.js';
import { parseCql2Text } from '../src/filter/cql2.js';
import type { CatalogRecord } from '../src/catalog/model.js';

const S = 'geodata_catalog_indextest';
let t: TestApp;
const WORDS = ['réseau', 'routier', 'qualité', 'eau', 'parcelle', 'cadastre', 'forêt', 'rivière', 'école', 'énergie'];

beforeAll(async () => {
  t = await makeTestApp({ catalog: { schema: S, deriveFromLayers: false }, service: { onlineResource: 'http://geo.test' } });
  await migrateCatalog(t.ctx.pool, S);
  const records: CatalogRecord[] = Array.from({ length: 400 }, (_, i) =>
    testRecord(`idx-${String(i).padStart(4, '0')}`, {
      title: `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} ${i}`,
      abstract: `Jeu numéro ${i}`,
      keywords: [WORDS[(i * 3) % WORDS.length]],
      modified: '2024-01-01',
      bbox: [(i % 10) - 4, 42 + (i % 8), (i % 10) - 3.5, 42.5 + (i % 8)],
      source: 'harvest:index',
    }),
  );
  await replaceSource(t.ctx.pool, 'harvest:index', records, S);
  await t.ctx.pool.query(`ANALYZE ${S}.records`);
});
afterAll(async () => {
  await t?.ctx.pool.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`).catch(() => undefined);
  await t?.close();
});

/** Index names in the plan of `sql`, sequential scans priced out (so a usable index is taken). */
async function indexesOf(sql: string, params: unknown[]): Promise<string[]> {
  const c = await t.ctx.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SET LOCAL enable_seqscan = off');
    const r = await c.query(`EXPLAIN (FORMAT JSON) ${sql}`, params);
    await c.query('ROLLBACK');
    const names: string[] = [];
    const walk = (n: Record<string, unknown>) => {
      if (n['Node Type'] === 'Seq Scan') names.push(`seq:${n['Relation Name']}`);
      if (typeof n['Index Name'] === 'string') names.push(n['Index Name']);
      for (const k of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(k);
    };
    walk((r.rows[0]['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0].Plan);
    return names;
  } finally {
    c.release();
  }
}

function statements(cql: string | null) {
  const params: unknown[] = [];
  const where = cql ? [compileCatalogFilter(parseCql2Text(cql), params, S)] : [];
  return searchSql({ where, params, sort: [], offset: 200, limit: 25 }, S);
}

async function matched(cql: string): Promise<number> {
  const r = await t.app.inject(
    `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=hits&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent(cql)}`,
  );
  expect(r.statusCode, r.body).toBe(200);
  const sr = parseXml(r.body).children.find((c) => c.name === 'SearchResults')!;
  return Number(sr.attrs.numberOfRecordsMatched);
}

describe('GetRecords queries use the indexes', () => {
  it('AnyText = word: the full-text GIN index', async () => {
    const s = statements("AnyText = 'routier'");
    const used = await indexesOf(s.sql, s.params);
    expect(used).toContain('records_tsv_gin');
    expect(used).not.toContain(`seq:records`);
  });

  it("AnyText LIKE '%fragment%': the full-text and the trigram indexes", async () => {
    const s = statements("AnyText LIKE '%qualite%'");
    const used = await indexesOf(s.sql, s.params);
    expect(used).toEqual(expect.arrayContaining(['records_tsv_gin', 'records_anytext_fold_trgm']));
    expect(used).not.toContain('seq:records');
  });

  it('AnyText with BBOX: no sequential scan', async () => {
    const s = statements("AnyText LIKE '%eau%' AND S_INTERSECTS(ows:BoundingBox, BBOX(-2, 43, 1, 46))");
    expect(await indexesOf(s.sql, s.params)).not.toContain('seq:records');
  });

  it('a page of the whole catalogue: the primary key order', async () => {
    const s = statements(null);
    expect(await indexesOf(s.sql, s.params)).toContain('records_pkey');
  });

  it('the answers: stemmed words, accent- and case-insensitive fragments', async () => {
    const withWord = (w: string) =>
      Array.from({ length: 400 }, (_, i) => i).filter((i) => [i % 10, (i * 7) % 10, (i * 3) % 10].includes(WORDS.indexOf(w))).length;
    expect(await matched("AnyText = 'routier'")).toBe(withWord('routier'));
    expect(await matched("AnyText LIKE '%QUALITE%'")).toBe(withWord('qualité'));
    expect(await matched("AnyText LIKE '%rivi%'")).toBe(withWord('rivière'));
    expect(await matched("NOT AnyText LIKE '%rivi%'")).toBe(400 - withWord('rivière'));
  });
});
