#!/usr/bin/env node
/**
 * Catalogue benchmark: 10,000 records generated from the real ISO 19139 samples of
 * ../shared/catalogue-samples (each sample record copied with its own fileIdentifier, a title with
 * varied words and a shifted extent, then read as CSW-T and catalog-import read them: kept as
 * received, ISO AP index), in a catalogue schema of its own (geodata_catalog_bench), then
 *   1. CSW GetRecords, in-process through Fastify inject (the server's own work, no network),
 *      sequential: AnyText = word (stemmed full text), AnyText LIKE '%word%' (the request of
 *      `npm run bench`'s csw-getrecords row), AnyText LIKE + BBOX, and paged GetRecords of the whole
 *      catalogue (25 per page, pages spread over it, the last page included): p50/p95/max, req/s;
 *   2. AnyText LIKE over HTTP with 4 clients (bench/lib/load.mjs): throughput comparable to the
 *      csw-getrecords row of the bench report (issue 17's target: not below it at 10,000 records);
 *   3. a full DCAT walk (Turtle, 100 per page, hydra:next to the end): pages, total time, bytes.
 * That these queries can use their indexes is a test (test/catalog-search-index.test.ts), not a timing.
 * Usage: npm run build && node bench/catalog.mjs [--quick] [--records 10000] [--queries 200] [--seconds 20] [--keep]
 *   --quick: 500 records, 10 queries, 2 s of HTTP load, no DCAT walk (checks the script works).
 * Database: DATABASE_URL, else the embedded cluster (provisioned like `npm start`, database geodata_bench).
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { validateConfig } from '../dist/src/config/index.js';
import { createPool } from '../dist/src/db/pool.js';
import { ensureEmbeddedCluster, ensureDatabase, stopEmbeddedCluster } from '../dist/src/db/embedded.js';
import { Registry } from '../dist/src/registry/registry.js';
import { buildApp } from '../dist/src/app.js';
import { createContext } from '../dist/src/context.js';
import { migrateCatalog, replaceSource } from '../dist/src/catalog/store.js';
import { parseXml } from '../dist/src/ows/xmldom.js';
import { serialiseElement } from '../dist/src/catalog/xmlser.js';
import { documentRecords } from '../dist/src/catalog/harvest.js';
import { readIso } from '../dist/src/catalog/iso.js';
import { runLoad } from './lib/load.mjs';

const QUICK = process.argv.includes('--quick');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('records', QUICK ? 500 : 10000);
const Q = arg('queries', QUICK ? 10 : 200);
const LOAD_S = arg('seconds', QUICK ? 2 : 20);
const SCHEMA = 'geodata_catalog_bench';
const SAMPLES = path.resolve(import.meta.dirname, '..', '..', 'shared', 'catalogue-samples');

const cluster = process.env.DATABASE_URL ? null : await ensureEmbeddedCluster((m) => console.error(m));
const url = process.env.DATABASE_URL ?? (await ensureDatabase(cluster, 'geodata_bench'));
const log = pino({ level: 'warn' });
const config = validateConfig(
  { catalog: { schema: SCHEMA, deriveFromLayers: false }, service: { onlineResource: 'http://bench.test' } },
  'bench',
);
config.database.url = url;
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
const records = Array.from({ length: N }, (_, i) => {
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
await replaceSource(pool, 'bench', records, SCHEMA);
await pool.query(`ANALYZE ${SCHEMA}.records`);
const loadMs = performance.now() - t0;

const registry = new Registry(pool, config);
await registry.reload();
const app = await buildApp(createContext({ config, pool, registry, log }));
await app.ready();

const csw = (params) => `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&${params}`;
const cql = (c) => csw(`ELEMENTSETNAME=summary&MAXRECORDS=25&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent(c)}`);
const box = () => {
  const w = -4 + rnd() * 9;
  const s = 42 + rnd() * 6;
  return `${w.toFixed(3)}, ${s.toFixed(3)}, ${(w + 2).toFixed(3)}, ${(s + 2).toFixed(3)}`;
};
const pct = (lat, p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))].toFixed(1);

/** Q sequential requests of `make()`; latency percentiles, requests per second, mean matched. */
async function timed(make) {
  const lat = [];
  let matched = 0;
  const start = performance.now();
  for (let i = 0; i < Q; i++) {
    const q = make(i);
    const t = performance.now();
    const r = await app.inject(q);
    lat.push(performance.now() - t);
    if (r.statusCode !== 200) throw new Error(`GetRecords failed (${q}): ${r.body.slice(0, 300)}`);
    matched += Number(/numberOfRecordsMatched="(\d+)"/.exec(r.body)[1]);
  }
  const wall = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return {
    queries: Q,
    p50ms: pct(lat, 50),
    p95ms: pct(lat, 95),
    maxms: lat[lat.length - 1].toFixed(1),
    reqPerSec: (Q / wall).toFixed(1),
    meanMatched: Math.round(matched / Q),
  };
}

const fullText = await timed(() => cql(`AnyText = '${pick()}'`));
const fullTextLike = await timed(() => cql(`AnyText LIKE '%${pick()}%'`));
const fullTextBbox = await timed(() => cql(`AnyText LIKE '%${pick()}%' AND BBOX(ows:BoundingBox, ${box()})`));
const pages = Math.ceil(N / 25);
const paged = await timed((i) =>
  csw(`ELEMENTSETNAME=summary&MAXRECORDS=25&STARTPOSITION=${1 + 25 * (i === Q - 1 ? pages - 1 : Math.floor(rnd() * pages))}`),
);

// the same AnyText LIKE request over HTTP, 4 clients (the csw-getrecords row's request)
const address = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
const urls = Array.from(
  { length: 100 },
  () => `${address}${cql(`AnyText LIKE '%${pick()}%'`).replace('ELEMENTSETNAME=summary', 'ELEMENTSETNAME=full')}`,
);
const load = await runLoad({ urls, expect: 'xml', concurrency: 4, durationMs: LOAD_S * 1000 });
const okLat = load.samples
  .filter((x) => !x.error)
  .map((x) => x.ms)
  .sort((a, b) => a - b);
const http = {
  concurrency: 4,
  seconds: LOAD_S,
  requests: load.samples.length,
  errors: load.samples.filter((x) => x.error).length,
  reqPerSec: (load.samples.length / load.wall).toFixed(1),
  p50ms: okLat.length ? pct(okLat, 50) : null,
  p95ms: okLat.length ? pct(okLat, 95) : null,
};

t0 = performance.now();
let next = QUICK ? null : '/catalog/dcat.ttl?pageSize=100';
let walkPages = 0;
let bytes = 0;
while (next) {
  const r = await app.inject(next);
  if (r.statusCode !== 200) throw new Error(`DCAT page failed: ${r.statusCode}`);
  walkPages++;
  bytes += r.rawPayload.length;
  const m = /hydra:next <([^>]+)>/.exec(r.body);
  next = m ? m[1].replace('http://bench.test', '') : null;
}
const walkMs = performance.now() - t0;
const dcatWalk = QUICK
  ? 'skipped (--quick)'
  : { pages: walkPages, totalMs: Math.round(walkMs), perPageMs: (walkMs / walkPages).toFixed(1), megabytes: (bytes / 1e6).toFixed(1) };
console.log(
  JSON.stringify(
    {
      records: N,
      templates: templates.length,
      parseMs: Math.round(parseMs),
      loadMs: Math.round(loadMs),
      getRecordsFullText: fullText,
      getRecordsFullTextLike: fullTextLike,
      getRecordsFullTextLikeBbox: fullTextBbox,
      getRecordsPaged: { pageSize: 25, pages, ...paged },
      getRecordsFullTextLikeHttp: http,
      dcatWalk,
    },
    null,
    2,
  ),
);
await app.close();
// --keep: leave the catalogue (and the cluster) for EXPLAIN ANALYZE by hand
if (!process.argv.includes('--keep')) await pool.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
await pool.end();
if (cluster?.startedHere && !process.env.GEODATA_KEEP_DB && !process.argv.includes('--keep')) stopEmbeddedCluster(cluster);
