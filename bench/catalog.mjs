#!/usr/bin/env node
/**
 * Catalogue benchmark: 10,000 records generated from the real ISO 19139 samples of
 * ../shared/catalogue-samples (each sample record copied with its own fileIdentifier, a title with
 * varied words and a shifted extent, then read as CSW-T and catalog-import read them: kept as
 * received, ISO AP index), in a catalogue schema of its own (geodata_catalog_bench), then
 *   1. CSW GetRecords, in-process through Fastify inject (the server's own work, no network),
 *      sequential: AnyText = word (stemmed full text), AnyText LIKE '%word%', AnyText LIKE + BBOX,
 *      and paged GetRecords of the whole catalogue (25 per page, pages spread over it, the last page
 *      included): p50/p95/max, req/s, and every mode's answers compared (the same bytes, time stamp aside);
 *   2. the csw-getrecords row of `npm run bench` (bench/run.mjs: requestList('csw', …), the same
 *      seed, full records, AnyText LIKE) over HTTP with wrk at 8 connections, and its ratio to the
 *      row's 1,958 req/s on the demo catalogue (issue 17's target: not below it at 10,000 records);
 *   3. a DCAT walk (Turtle, 100 per page, hydra:next to the end or --walk-pages).
 * Each measurement runs in modes, alternated over --rounds rounds (A/B/C, B/C/A…) so that a busy
 * machine weighs on each alike: `uncached` (this build, search cache off: every answer computed),
 * `cached` (search cache on and warm), and with --baseline DIR `before` (the build in DIR/dist, e.g.
 * main's: `git archive main | tar -x -C DIR`, node_modules linked, `npx tsc -p .` there).
 * That these queries can use their indexes is a test (test/catalog-search-index.test.ts), not a timing.
 * Usage: npm run build && node bench/catalog.mjs [--quick] [--records 10000] [--queries 200] [--seconds 20]
 *   [--rounds 4] [--walk-pages N] [--baseline DIR] [--keep] [--reuse] [--load-only]
 *   --quick: 500 records, 10 queries, 2 s of HTTP load, one round, no DCAT walk (checks the script works).
 *   --keep leaves the catalogue for EXPLAIN ANALYZE or for --reuse (a catalogue of the same size is
 *   used as it is: no load); --load-only loads and stops.
 * Database: DATABASE_URL, else the embedded cluster (provisioned like `npm start`, database geodata_bench).
 */
import { readFileSync, readdirSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createPool } from '../dist/src/db/pool.js';
import { ensureEmbeddedCluster, ensureDatabase, stopEmbeddedCluster } from '../dist/src/db/embedded.js';
import { migrateCatalog, replaceSource } from '../dist/src/catalog/store.js';
import { parseXml } from '../dist/src/ows/xmldom.js';
import { serialiseElement } from '../dist/src/catalog/xmlser.js';
import { documentRecords } from '../dist/src/catalog/harvest.js';
import { readIso } from '../dist/src/catalog/iso.js';
import { requestList, cswGetRecordsQuery } from './lib/core.mjs';
import { runWrk, wrkAvailable, combineRuns } from './lib/wrk.mjs';

const QUICK = process.argv.includes('--quick');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('records', QUICK ? 500 : 10000);
const Q = arg('queries', QUICK ? 10 : 200);
const LOAD_S = arg('seconds', QUICK ? 2 : 20);
const ROUNDS = arg('rounds', QUICK ? 1 : 4);
const WALK_PAGES = arg('walk-pages', 1e9);
const bi = process.argv.indexOf('--baseline');
const BASELINE = bi > 0 ? process.argv[bi + 1] : null;
const SCHEMA = 'geodata_catalog_bench';
const SAMPLES = path.resolve(import.meta.dirname, '..', '..', 'shared', 'catalogue-samples');

const cluster = process.env.DATABASE_URL ? null : await ensureEmbeddedCluster((m) => console.error(m));
const url = process.env.DATABASE_URL ?? (await ensureDatabase(cluster, 'geodata_bench'));
const log = pino({ level: 'warn' });
const rawConfig = { catalog: { schema: SCHEMA, deriveFromLayers: false }, service: { onlineResource: 'http://bench.test' } };
const pool = createPool({ url, max: 8, statementTimeoutMs: 60000, log });
await pool.query('CREATE EXTENSION IF NOT EXISTS postgis');
await migrateCatalog(pool, SCHEMA);

// deterministic words and extents
let seed = 42;
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const words = [
  'réseau',
  'routier',
  'eau',
  'qualité',
  'commune',
  'parcelle',
  'cadastre',
  'bâtiment',
  'forêt',
  'rivière',
  'zone',
  'inondable',
  'plan',
  'urbanisme',
  'transport',
  'école',
  'santé',
  'énergie',
  'vélo',
  'piste',
];
const pick = () => words[Math.floor(rnd() * words.length)];

// the ISO 19139 records of the samples: standalone documents and those inside CSW responses
if (!existsSync(SAMPLES)) throw new Error(`catalogue samples not found at ${SAMPLES}`);
const templates = [];
for (const dir of ['iso19139', 'csw']) {
  for (const f of readdirSync(path.join(SAMPLES, dir))
    .filter((x) => x.endsWith('.xml'))
    .sort()) {
    const root = parseXml(readFileSync(path.join(SAMPLES, dir, f), 'utf8'), 64 * 1024 * 1024);
    for (const md of documentRecords(root)) if (md.name === 'MD_Metadata') templates.push(serialiseElement(md));
  }
}
if (!templates.length) throw new Error('no ISO 19139 record in the samples');
const shift = (xml, el, d) =>
  xml.replace(new RegExp(`(<gmd:${el}>\\s*<gco:Decimal>)\\s*(-?[\\d.]+)`), (_m, open, v) => `${open}${(Number(v) + d).toFixed(4)}`);
const now = new Date().toISOString();
let t0 = performance.now();
// --reuse: a catalogue left by --keep with the same number of records is used as it is (no load)
const REUSE =
  process.argv.includes('--reuse') &&
  Number((await pool.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.records WHERE source = 'bench'`)).rows[0].n) === N;
const records = REUSE
  ? []
  : Array.from({ length: N }, (_, i) => {
      let xml = templates[i % templates.length]
        .replace(/(<gmd:fileIdentifier>\s*<gco:CharacterString>)[^<]*/, `$1bench-${String(i).padStart(6, '0')}`)
        .replace(/(<gmd:title>\s*<gco:CharacterString>)([^<]*)/, (_m, open, title) => `${open}${title} — ${pick()} ${pick()} ${i}`);
      const dx = -3 + rnd() * 6;
      const dy = -2 + rnd() * 4;
      for (const [el, d] of [
        ['westBoundLongitude', dx],
        ['eastBoundLongitude', dx],
        ['southBoundLatitude', dy],
        ['northBoundLatitude', dy],
      ])
        xml = shift(xml, el, d);
      return readIso(parseXml(xml, 64 * 1024 * 1024), 'bench', now);
    });
const parseMs = performance.now() - t0;
t0 = performance.now();
if (!REUSE) {
  await replaceSource(pool, 'bench', records, SCHEMA);
  await pool.query(`ANALYZE ${SCHEMA}.records`);
}
const loadMs = performance.now() - t0;
seed = 7; // the queries are the same whether the catalogue was loaded now or reused
if (process.argv.includes('--load-only')) {
  console.log(JSON.stringify({ records: N, reused: REUSE, parseMs: Math.round(parseMs), loadMs: Math.round(loadMs) }));
  await pool.end();
  process.exit(0);
}

/** One server build on the bench's pool: this worktree's dist/, or --baseline DIR's (DIR/dist). */
async function server(dir, cache) {
  const m = async (f) => import(path.join(dir, 'src', f));
  const [{ buildApp: build }, { createContext: context }, { Registry: Reg }, { validateConfig: validate }] = await Promise.all([
    m('app.js'),
    m('context.js'),
    m('registry/registry.js'),
    m('config/index.js'),
  ]);
  const cfg = validate(rawConfig, 'bench');
  cfg.database.url = url;
  const reg = new Reg(pool, cfg);
  await reg.reload();
  const ctx = context({ config: cfg, pool, registry: reg, log });
  const app = await build(ctx);
  await app.ready();
  if (ctx.runtime.catalogCache) ctx.runtime.catalogCache.enabled = cache;
  return { app, ctx };
}
const DIST = path.resolve(import.meta.dirname, '..', 'dist');
const modes = {};
if (BASELINE) modes.before = await server(path.join(path.resolve(BASELINE), 'dist'), false);
modes.uncached = await server(DIST, false);
modes.cached = await server(DIST, true);
const MODES = Object.keys(modes);

const csw = (params) => `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&${params}`;
const cql = (c) => csw(`ELEMENTSETNAME=summary&MAXRECORDS=25&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent(c)}`);
const box = () => {
  const w = -4 + rnd() * 9;
  const s = 42 + rnd() * 6;
  return `${w.toFixed(3)}, ${s.toFixed(3)}, ${(w + 2).toFixed(3)}, ${(s + 2).toFixed(3)}`;
};
const pct = (lat, p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))].toFixed(1);
const stamp = (body) => body.replace(/timestamp="[^"]*"/, '');

/**
 * Q sequential requests of a list, for every mode, in ROUNDS alternating rounds (the order of the
 * modes turns each round: A/B/C, B/C/A…), so that a busy machine weighs on each alike. The cached
 * mode is warmed first (each distinct request asked once): its figures are those of a warm cache.
 * Every mode must answer each request with the same body (time stamp aside).
 */
async function timed(list) {
  const out = Object.fromEntries(MODES.map((m) => [m, { lat: [], ms: 0, matched: 0 }]));
  const bodies = new Map();
  for (const q of new Set(list)) await modes.cached.app.inject(q);
  const per = Math.ceil(list.length / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    const slice = list.slice(round * per, (round + 1) * per);
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(k + round) % MODES.length];
      const o = out[mode];
      for (const q of slice) {
        const t = performance.now();
        const r = await modes[mode].app.inject(q);
        const ms = performance.now() - t;
        o.lat.push(ms);
        o.ms += ms;
        if (r.statusCode !== 200) throw new Error(`${mode}: GetRecords failed (${q}): ${r.body.slice(0, 300)}`);
        o.matched += Number(/numberOfRecordsMatched="(\d+)"/.exec(r.body)[1]);
        const seen = bodies.get(q);
        if (seen === undefined) bodies.set(q, stamp(r.body));
        else if (seen !== stamp(r.body)) throw new Error(`${mode}: another answer than the other modes' to ${q}`);
      }
    }
  }
  const res = {};
  for (const m of MODES) {
    const { lat, ms, matched } = out[m];
    lat.sort((a, b) => a - b);
    res[m] = {
      queries: lat.length,
      p50ms: pct(lat, 50),
      p95ms: pct(lat, 95),
      maxms: lat[lat.length - 1].toFixed(1),
      reqPerSec: (lat.length / (ms / 1000)).toFixed(1),
      meanMatched: Math.round(matched / lat.length),
    };
  }
  return res;
}

const lists = {
  fullText: Array.from({ length: Q }, () => cql(`AnyText = '${pick()}'`)),
  fullTextLike: Array.from({ length: Q }, () => cql(`AnyText LIKE '%${pick()}%'`)),
  fullTextLikeBbox: Array.from({ length: Q }, () => cql(`AnyText LIKE '%${pick()}%' AND BBOX(ows:BoundingBox, ${box()})`)),
};
const pages = Math.ceil(N / 25);
lists.paged = Array.from({ length: Q }, (_, i) =>
  csw(`ELEMENTSETNAME=summary&MAXRECORDS=25&STARTPOSITION=${1 + 25 * (i === Q - 1 ? pages - 1 : Math.floor(rnd() * pages))}`),
);
const inProcess = {};
for (const [k, list] of Object.entries(lists)) inProcess[k] = await timed(list);

// the csw-getrecords row of `npm run bench` (bench/run.mjs: the same request list, seed and 8
// connections), over HTTP with wrk, each mode in turn over ROUNDS alternating rounds
const TARGET = 1958.5; // req/s of the row on the demo catalogue (bench/results/2026-11-23-full.md)
const SEED = 20260101;
const rowPaths = requestList('csw', {}, 100, SEED).map((r) => `/csw?${cswGetRecordsQuery(r)}`);
let wrkRow = 'skipped (wrk not installed)';
if (wrkAvailable()) {
  const bases = {};
  for (const m of MODES) bases[m] = (await modes[m].app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'catalog-bench-'));
  for (const p of new Set(rowPaths)) await modes.cached.app.inject(p); // a warm cache
  const runs = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let round = 0; round < ROUNDS; round++)
    for (let k = 0; k < MODES.length; k++) {
      const m = MODES[(k + round) % MODES.length];
      runs[m].push(
        await runWrk({ base: bases[m], paths: rowPaths, connections: 8, seconds: LOAD_S / ROUNDS, workDir, seed: SEED + round }),
      );
    }
  rmSync(workDir, { recursive: true, force: true });
  wrkRow = { connections: 8, secondsPerMode: LOAD_S, rounds: ROUNDS, targetReqPerSec: TARGET };
  for (const m of MODES) {
    const c = combineRuns(runs[m]);
    wrkRow[m] = {
      reqPerSec: c.reqPerSec.toFixed(1),
      ratioToTarget: (c.reqPerSec / TARGET).toFixed(3),
      p50ms: c.p50.toFixed(1),
      p95ms: c.p95.toFixed(1),
      meanBytes: Math.round(c.meanBytes),
      errors: c.errors.status + c.errors.socket,
      ...(c.refused ? { refused: c.refused } : {}),
    };
  }
}

// the DCAT walk (Turtle, 100 per page, hydra:next to the end), each mode in turn; `cached` walks twice (the second timed)
async function walk(app) {
  const t0 = performance.now();
  let next = '/catalog/dcat.ttl?pageSize=100';
  let n = 0;
  let bytes = 0;
  while (next && n < WALK_PAGES) {
    const r = await app.inject(next);
    if (r.statusCode !== 200) throw new Error(`DCAT page failed: ${r.statusCode}`);
    n++;
    bytes += r.rawPayload.length;
    const m = /hydra:next <([^>]+)>/.exec(r.body);
    next = m ? m[1].replace('http://bench.test', '') : null;
  }
  const ms = performance.now() - t0;
  return { pages: n, totalMs: Math.round(ms), perPageMs: (ms / n).toFixed(1), megabytes: (bytes / 1e6).toFixed(1) };
}
let dcatWalk = 'skipped (--quick)';
if (!QUICK) {
  dcatWalk = {};
  await walk(modes.cached.app);
  for (const m of MODES) dcatWalk[m] = await walk(modes[m].app);
}
const load = os.loadavg().map((x) => x.toFixed(2));
console.log(
  JSON.stringify(
    {
      records: N,
      templates: templates.length,
      parseMs: Math.round(parseMs),
      loadMs: Math.round(loadMs),
      reused: REUSE,
      modes: {
        ...(BASELINE ? { before: `the build in ${BASELINE}` } : {}),
        uncached: "this build, search cache off (every answer computed; the catalogue's version still read)",
        cached: 'this build, search cache on and warm (each distinct request asked once before timing)',
      },
      loadAverageAtEnd: load,
      getRecordsFullText: inProcess.fullText,
      getRecordsFullTextLike: inProcess.fullTextLike,
      getRecordsFullTextLikeBbox: inProcess.fullTextLikeBbox,
      getRecordsPaged: { pageSize: 25, pages, ...inProcess.paged },
      cswGetRecordsRowWrk: wrkRow,
      dcatWalk,
    },
    null,
    2,
  ),
);
for (const m of MODES) await modes[m].app.close();
// --keep: leave the catalogue (and the cluster) for EXPLAIN ANALYZE by hand
if (!process.argv.includes('--keep')) await pool.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
await pool.end();
if (cluster?.startedHere && !process.env.GEODATA_KEEP_DB && !process.argv.includes('--keep')) stopEmbeddedCluster(cluster);
