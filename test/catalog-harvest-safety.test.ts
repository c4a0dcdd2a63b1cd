/**
 * Harvest safety (issue 15 items 2 and 5), against real local HTTP sources this test starts and
 * serves crafted CSW GetRecords and DCAT pages from:
 *  - reserved names ('local', 'csw-t', any case) are refused by the config schema, the admin route
 *    and harvest() itself; records are owned by their kind of source, so no harvest — whatever its
 *    name — replaces or deletes what CSW-T published or what the layers derive;
 *  - a run that does not end cleanly changes nothing: nextRecord pointing back, a hydra:next loop,
 *    more pages than maxPages, an identifier twice, counts that disagree with numberOfRecordsMatched
 *    / numberOfRecordsReturned / hydra:totalItems;
 *  - one empty (or much smaller) answer keeps the partner's records unless confirmed
 *    (minKeptShare, default 50 %; confirmDeletions); a record the run could not read blocks
 *    deletions but not updates.
 * The configured source runs through POST /catalog/harvest {name}, the path of scheduled runs.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { catalogConfig } from './helpers/catalog.js';
import { ensureCatalogReady } from '../src/catalog/sync.js';
import { harvest, harvestOwner, type HarvestReport } from '../src/catalog/harvest.js';
import { replaceSource } from '../src/catalog/store.js';
import { getRecords } from '../src/catalog/query.js';
import { ConfigError, validateConfig } from '../src/config/index.js';

const S = 'geodata_catalog_harvestsafety';
const TOKEN = 'harvest-safety-token';
const CSW = 'http://www.opengis.net/cat/csw/2.0.2';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

let t: TestApp;
let server: http.Server;
let base = '';

/** What the crafted CSW source answers (changed by each test). */
interface CswSource {
  records: { id: string; title?: string }[];
  pageSize: number;
  /** override of the attributes of the page starting at `start` */
  tweak?: (start: number, attrs: { matched: number; returned: number; next: number }) => void;
  /** records listed in the page starting at `start` (default: the slice) */
  slice?: (start: number) => { id: string; title?: string }[];
}
let csw: CswSource = { records: [], pageSize: 2 };
/** DCAT pages by number (Turtle bodies, `{base}` replaced). */
let dcat: Record<number, string> = {};
const requests: string[] = [];

const iso = (r: { id: string; title?: string }) =>
  `<gmd:MD_Metadata xmlns:gmd="http://www.isotc211.org/2005/gmd" xmlns:gco="http://www.isotc211.org/2005/gco">` +
  `<gmd:fileIdentifier><gco:CharacterString>${r.id}</gco:CharacterString></gmd:fileIdentifier>` +
  `<gmd:identificationInfo><gmd:MD_DataIdentification><gmd:citation><gmd:CI_Citation>` +
  (r.title === undefined ? '' : `<gmd:title><gco:CharacterString>${r.title}</gco:CharacterString></gmd:title>`) +
  `</gmd:CI_Citation></gmd:citation><gmd:abstract><gco:CharacterString>Fiche ${r.id}</gco:CharacterString></gmd:abstract>` +
  `</gmd:MD_DataIdentification></gmd:identificationInfo></gmd:MD_Metadata>`;

function cswPage(body: string): string {
  const start = Number(body.match(/startPosition="(\d+)"/)?.[1] ?? 1);
  const list = csw.slice ? csw.slice(start) : csw.records.slice(start - 1, start - 1 + csw.pageSize);
  const end = start - 1 + list.length;
  const attrs = { matched: csw.records.length, returned: list.length, next: end >= csw.records.length ? 0 : end + 1 };
  csw.tweak?.(start, attrs);
  return (
    `<csw:GetRecordsResponse xmlns:csw="${CSW}" version="2.0.2"><csw:SearchStatus timestamp="2025-01-01T00:00:00Z"/>` +
    `<csw:SearchResults numberOfRecordsMatched="${attrs.matched}" numberOfRecordsReturned="${attrs.returned}" nextRecord="${attrs.next}" elementSet="full">` +
    `${list.map(iso).join('')}</csw:SearchResults></csw:GetRecordsResponse>`
  );
}

/** A DCAT page in Turtle: datasets, hydra view with totalItems and next. */
function ttl(ids: string[], o: { total?: number; next?: number; page: number; suffix?: string }): string {
  return (
    `@prefix dcat: <http://www.w3.org/ns/dcat#>. @prefix dct: <http://purl.org/dc/terms/>. @prefix hydra: <http://www.w3.org/ns/hydra/core#>.\n` +
    `<http://partner.test/catalog> a dcat:Catalog, hydra:Collection${o.total === undefined ? '' : `; hydra:totalItems ${o.total}`};\n` +
    `  hydra:view <{base}/dcat/cat.ttl?page=${o.page}>.\n` +
    `<{base}/dcat/cat.ttl?page=${o.page}> a hydra:PartialCollectionView${o.next ? `; hydra:next <{base}/dcat/cat.ttl?page=${o.next}>` : ''}.\n` +
    ids
      .map(
        (i) =>
          `<http://partner.test/ds/${i}> a dcat:Dataset; dct:identifier "${i}"; dct:title "Jeu ${i}${o.suffix ?? ''}"@fr; dct:description "d"@fr.`,
      )
      .join('\n')
  );
}

beforeAll(async () => {
  process.env.GEODATA_ADMIN_TOKEN = TOKEN;
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      requests.push(u.pathname + u.search);
      if (u.pathname === '/csw' && req.method === 'POST') {
        res.writeHead(200, { 'content-type': 'application/xml' }).end(cswPage(Buffer.concat(chunks).toString('utf8')));
        return;
      }
      const page = u.pathname === '/dcat/cat.ttl' ? dcat[Number(u.searchParams.get('page') ?? 1)] : undefined;
      if (page === undefined) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/turtle' }).end(page.replaceAll('{base}', base));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await makeTestApp({
    ...catalogConfig,
    catalog: { schema: S, harvest: [{ name: 'partner', url: `${base}/csw`, type: 'csw' }] },
  });
  await ensureCatalogReady(t.ctx);
  await t.ctx.pool.query(`DELETE FROM ${S}.records WHERE source <> 'local'`);
});

afterAll(async () => {
  await t?.ctx.pool.query(`DELETE FROM ${S}.records WHERE source <> 'local'`).catch(() => undefined);
  await t?.close();
  await new Promise((r) => server?.close(r));
});

/** identifier → title of the records of one stored source */
async function stored(source: string): Promise<Record<string, string>> {
  const r = await t.ctx.pool.query<{ identifier: string; title: string }>(
    `SELECT identifier, title FROM ${S}.records WHERE source = $1 ORDER BY identifier`,
    [source],
  );
  return Object.fromEntries(r.rows.map((x) => [x.identifier, x.title]));
}

async function run(body: Record<string, unknown>): Promise<{ status: number; report: HarvestReport }> {
  const r = await t.app.inject({ method: 'POST', url: '/catalog/harvest', headers: auth, payload: JSON.stringify(body) });
  return { status: r.statusCode, report: r.json() };
}

async function cswT(xml: string) {
  const r = await t.app.inject({
    method: 'POST',
    url: '/csw',
    headers: { 'content-type': 'application/xml', authorization: `Bearer ${TOKEN}` },
    payload: `<csw:Transaction xmlns:csw="${CSW}" xmlns:dc="http://purl.org/dc/elements/1.1/" service="CSW" version="2.0.2">${xml}</csw:Transaction>`,
  });
  expect(r.statusCode, r.body).toBe(200);
}

const published = (id: string, title: string) =>
  `<csw:Insert><csw:Record><dc:identifier>${id}</dc:identifier><dc:title>${title}</dc:title><dc:type>dataset</dc:type></csw:Record></csw:Insert>`;

describe('reserved source names and ownership (issue 15 item 2)', () => {
  it("no harvest — ad hoc, configured or direct, named 'csw-t' or anything else — deletes or replaces CSW-T or local records", async () => {
    await cswT(published('pub-1', 'Publié 1') + published('pub-2', 'Publié 2') + published('pub-3', 'Publié 3'));
    const pub = await stored('csw-t');
    expect(Object.keys(pub)).toEqual(['pub-1', 'pub-2', 'pub-3']);
    const local = await stored('local');
    expect(Object.keys(local).length).toBeGreaterThan(4);
    dcat = { 1: ttl([], { page: 1, total: 0 }) }; // an empty catalogue: would delete everything of its source

    // the admin route refuses the reserved names, in any case, before anything runs
    for (const name of ['csw-t', 'CSW-T', 'Csw-T', 'local', 'LOCAL', ' local']) {
      const r = await run({ name, url: `${base}/dcat/cat.ttl`, type: 'dcat', confirmDeletions: true });
      expect(r.status, name).toBe(400);
      expect(JSON.stringify(r.report), name).toMatch(/reserved/);
    }
    // so does harvest() (a scheduled run goes through it) …
    for (const name of ['csw-t', 'LOCAL'])
      await expect(
        harvest(t.ctx.pool, { name, url: `${base}/dcat/cat.ttl`, type: 'dcat' }, { schema: S, confirmDeletions: true }),
      ).rejects.toThrow(/reserved/);
    // … and the configuration schema
    for (const name of ['csw-t', 'Local'])
      expect(() => validateConfig({ catalog: { harvest: [{ name, url: 'http://x.test/csw', type: 'csw' }] } }), name).toThrow(ConfigError);

    // records are owned by kind + name: a harvest whose source is empty, confirmed, deletes only its own
    const empty = await run({ name: 'csw-t2', url: `${base}/dcat/cat.ttl`, type: 'dcat', confirmDeletions: true });
    expect(empty.status).toBe(200);
    expect(empty.report.ok).toBe(true);
    expect(empty.report.deleted).toBe(0);
    // a partner record with the identifier of a published one is refused, not taken over
    dcat = { 1: ttl(['pub-2', 'partner-1'], { page: 1, total: 2 }) };
    const clash = await run({ name: 'partner-dcat', url: `${base}/dcat/cat.ttl`, type: 'dcat' });
    expect(clash.report.ok).toBe(true);
    expect(clash.report.failed).toBe(1);
    expect(clash.report.errors.join()).toMatch(/'pub-2' already belongs to source 'csw-t'/);
    expect(Object.keys(await stored(harvestOwner('partner-dcat')))).toEqual(['partner-1']);
    expect(await stored('csw-t')).toEqual(pub);
    expect(await stored('local')).toEqual(local);
    // and CSW-T cannot change harvested records either
    const upd = await t.app.inject({
      method: 'POST',
      url: '/csw',
      headers: { 'content-type': 'application/xml', authorization: `Bearer ${TOKEN}` },
      payload: `<csw:Transaction xmlns:csw="${CSW}" xmlns:dc="http://purl.org/dc/elements/1.1/" service="CSW" version="2.0.2"><csw:Update><csw:Record><dc:identifier>partner-1</dc:identifier><dc:title>pris</dc:title></csw:Record></csw:Update></csw:Transaction>`,
    });
    expect(upd.body).toMatch(/ExceptionReport/);
    expect(await stored(harvestOwner('partner-dcat'))).toEqual({ 'partner-1': 'Jeu partner-1' });
  });

  it('records stored by an older version under the bare source name are adopted by that harvest, and only by it', async () => {
    const [tmpl] = await getRecords(t.ctx.pool, [Object.keys(await stored('csw-t'))[0]], S);
    await replaceSource(
      t.ctx.pool,
      'legacy',
      [
        { ...tmpl, identifier: 'legacy-1', title: 'Ancien 1', source: 'legacy' },
        { ...tmpl, identifier: 'legacy-2', title: 'Ancien 2', source: 'legacy' },
      ],
      S,
    );
    dcat = { 1: ttl(['legacy-1'], { page: 1, total: 1, suffix: ' (v2)' }) };
    const r = await harvest(t.ctx.pool, { name: 'legacy', url: `${base}/dcat/cat.ttl`, type: 'dcat' }, { schema: S });
    expect([r.status, r.new, r.updated, r.deleted]).toEqual(['done', 0, 1, 1]);
    expect(await stored('legacy')).toEqual({});
    expect(await stored(harvestOwner('legacy'))).toEqual({ 'legacy-1': 'Jeu legacy-1 (v2)' });
  });
});

describe('a run that does not end cleanly changes nothing (issue 15 item 5)', () => {
  const five = () => ['a', 'b', 'c', 'd', 'e'].map((x) => ({ id: `p-${x}`, title: `Fiche ${x}` }));
  let before: Record<string, string> = {};

  async function expectUnchanged(r: { status: number; report: HarvestReport }, why: RegExp) {
    expect(r.status).toBe(200);
    expect(r.report.ok, JSON.stringify(r.report)).toBe(false);
    expect(r.report.status).toBe('failed');
    expect([r.report.new, r.report.updated, r.report.deleted]).toEqual([0, 0, 0]);
    expect(r.report.errors.join('\n')).toMatch(why);
    expect(await stored(harvestOwner('partner'))).toEqual(before);
  }

  it('the configured CSW source (the path of scheduled runs): a clean run of three pages applies', async () => {
    csw = { records: five(), pageSize: 2 };
    const r = await run({ name: 'partner' });
    expect(r.report.status, r.report.errors.join()).toBe('done');
    expect([r.report.pages, r.report.found, r.report.new]).toEqual([3, 5, 5]);
    before = await stored(harvestOwner('partner'));
    expect(Object.keys(before)).toEqual(['p-a', 'p-b', 'p-c', 'p-d', 'p-e']);
    csw = { records: five().map((x) => ({ ...x, title: `${x.title} (v2)` })), pageSize: 2 }; // what a run would bring
  });

  it('nextRecord pointing back (a loop)', async () => {
    csw.tweak = (start, a) => {
      if (start === 3) a.next = 1;
    };
    await expectUnchanged(await run({ name: 'partner' }), /nextRecord 1 points back .*a loop/);
    csw.tweak = (start, a) => {
      if (start === 3) a.next = 3; // the same page again
    };
    await expectUnchanged(await run({ name: 'partner' }), /points back/);
  });

  it('counts that disagree: numberOfRecordsMatched, numberOfRecordsReturned, a changing total, missing attributes', async () => {
    csw.tweak = (_s, a) => {
      a.matched = 6; // announces one more than it serves
    };
    await expectUnchanged(await run({ name: 'partner' }), /numberOfRecordsMatched=6 but 5 records/);
    csw.tweak = (s, a) => {
      if (s === 3) a.returned = 1;
    };
    await expectUnchanged(await run({ name: 'partner' }), /numberOfRecordsReturned=1 but the page at 3 holds 2 records/);
    csw.tweak = (s, a) => {
      if (s === 5) a.matched = 7;
    };
    await expectUnchanged(await run({ name: 'partner' }), /numberOfRecordsMatched changed from 5 to 7/);
    csw.tweak = (s, a) => {
      if (s === 1) (a as Record<string, unknown>).next = 'x';
    };
    await expectUnchanged(await run({ name: 'partner' }), /nextRecord is 'x'/);
    csw.tweak = undefined;
  });

  it('an identifier twice in the source', async () => {
    csw.slice = (start) => (start === 5 ? [{ id: 'p-a', title: 'doublon' }] : csw.records.slice(start - 1, start + 1));
    await expectUnchanged(await run({ name: 'partner' }), /identifier 'p-a' more than once in the source/);
    csw.slice = undefined;
  });

  it('more pages than maxPages', async () => {
    const r = await harvest(t.ctx.pool, { name: 'partner', url: `${base}/csw`, type: 'csw', maxPages: 2 }, { schema: S });
    await expectUnchanged({ status: 200, report: r }, /more than 2 pages/);
  });

  it('one empty answer keeps the records (minKeptShare 50 %) until confirmed', async () => {
    csw = { records: [], pageSize: 2 };
    await expectUnchanged(await run({ name: 'partner' }), /would delete 5 of the 5 records .*minKeptShare 50 %.*confirmDeletions/);
    csw = { records: five().slice(0, 2), pageSize: 2 }; // 2 of 5 kept: 40 %
    await expectUnchanged(await run({ name: 'partner' }), /would delete 3 of the 5 records of 'partner' \(keeping 40 %/);
    csw = { records: five().slice(0, 3), pageSize: 2 }; // 3 of 5: 60 %, applied
    const ok = await run({ name: 'partner' });
    expect([ok.report.status, ok.report.updated, ok.report.deleted]).toEqual(['done', 3, 2]);
    csw = { records: [], pageSize: 2 };
    const confirmed = await run({ name: 'partner', confirmDeletions: true });
    expect([confirmed.report.status, confirmed.report.deleted]).toEqual(['done', 3]);
    expect(await stored(harvestOwner('partner'))).toEqual({});
    expect((await run({ name: 'partner', confirmDeletions: 'yes' })).status).toBe(400);
  });

  it('a record the source sends but that cannot be read: the others are updated, nothing is deleted', async () => {
    csw = { records: five(), pageSize: 2 };
    expect((await run({ name: 'partner' })).report.new).toBe(5);
    csw = {
      records: [
        ...five()
          .slice(0, 3)
          .map((x) => ({ ...x, title: `${x.title} (v3)` })),
        { id: 'p-d' },
      ],
      pageSize: 2,
    }; // p-d has no title, p-e is gone
    const r = await run({ name: 'partner' });
    expect(r.report.ok).toBe(true);
    expect(r.report.status).toBe('done-errors');
    expect([r.report.updated, r.report.deleted, r.report.failed]).toEqual([3, 0, 1]);
    expect(await stored(harvestOwner('partner'))).toEqual({
      'p-a': 'Fiche a (v3)',
      'p-b': 'Fiche b (v3)',
      'p-c': 'Fiche c (v3)',
      'p-d': 'Fiche d',
      'p-e': 'Fiche e',
    });
  });

  it('DCAT: a hydra:next loop, a total that disagrees, then the safeguard with an ad-hoc minKeptShare', async () => {
    const src = { name: 'partner-ttl', url: `${base}/dcat/cat.ttl?page=1`, type: 'dcat' };
    dcat = { 1: ttl(['t1', 't2'], { page: 1, total: 4, next: 2 }), 2: ttl(['t3', 't4'], { page: 2, total: 4 }) };
    const first = await run(src);
    expect([first.report.status, first.report.pages, first.report.new]).toEqual(['done', 2, 4]);
    const owner = harvestOwner('partner-ttl');
    const kept = await stored(owner);
    dcat[2] = ttl(['t3', 't4'], { page: 2, total: 4, next: 1, suffix: ' (v2)' });
    requests.length = 0;
    let r = await run(src);
    expect(r.report.ok).toBe(false);
    expect(r.report.errors.join()).toMatch(/hydra:next leads back to a page already read: a loop/);
    expect(requests.filter((x) => x.startsWith('/dcat/'))).toHaveLength(2); // stopped at once, not after maxPages
    expect(await stored(owner)).toEqual(kept);
    // the first page again under another URL: stopped as soon as it repeats a dataset
    dcat[2] = ttl(['t3', 't4'], { page: 2, total: 4, next: 3 });
    dcat[3] = ttl(['t1', 't2'], { page: 3, total: 4, next: 4 });
    dcat[4] = ttl(['t1', 't2'], { page: 4, total: 4, next: 5 });
    requests.length = 0;
    r = await run(src);
    expect(r.report.errors.join()).toMatch(/identifier 't1' more than once in the source/);
    expect(requests.filter((x) => x.startsWith('/dcat/'))).toHaveLength(3);
    expect(await stored(owner)).toEqual(kept);
    dcat[2] = ttl(['t3'], { page: 2, total: 4 });
    r = await run(src);
    expect(r.report.errors.join()).toMatch(/hydra:totalItems=4 but 3 datasets/);
    expect(await stored(owner)).toEqual(kept);
    dcat = { 1: ttl(['t1'], { page: 1, total: 1 }) };
    r = await run(src);
    expect(r.report.errors.join()).toMatch(/would delete 3 of the 4 records/);
    expect(await stored(owner)).toEqual(kept);
    r = await run({ ...src, minKeptShare: 0.2 });
    expect([r.report.status, r.report.deleted]).toEqual(['done', 3]);
    expect(Object.keys(await stored(owner))).toEqual(['t1']);
    expect((await run({ ...src, minKeptShare: 2 })).status).toBe(400);
  });
});
