#!/usr/bin/env node
/**
 * Catalogue benchmark: 10,000 records in a catalogue schema of its own (geodata_catalog_bench),
 * then
 *   1. CSW GetRecords with full-text (AnyText) + BBOX constraints: latency p50/p95/max over N
 *      queries (sequential, in-process through Fastify inject — the server's own work, no network);
 *   2. a full DCAT walk (Turtle, 100 per page, hydra:next to the end): pages, total time, bytes.
 * Usage: npm run build && node bench/catalog.mjs [--records 10000] [--queries 200]
 * Database: DATABASE_URL, else the embedded cluster (provisioned like `npm start`, database geodata_bench).
 */
import { pino } from 'pino';
import { validateConfig } from '../dist/src/config/index.js';
import { createPool } from '../dist/src/db/pool.js';
import { ensureEmbeddedCluster, ensureDatabase, stopEmbeddedCluster } from '../dist/src/db/embedded.js';
import { Registry } from '../dist/src/registry/registry.js';
import { buildApp } from '../dist/src/app.js';
import { createContext } from '../dist/src/context.js';
import { migrateCatalog, replaceSource } from '../dist/src/catalog/store.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('records', 10000);
const Q = arg('queries', 200);
const SCHEMA = 'geodata_catalog_bench';

const cluster = process.env.DATABASE_URL ? null : await ensureEmbeddedCluster((m) => console.error(m));
const url = process.env.DATABASE_URL ?? (await ensureDatabase(cluster, 'geodata_bench'));
const log = pino({ level: 'warn' });
const config = validateConfig({ catalog: { schema: SCHEMA }, service: { onlineResource: 'http://bench.test' } }, 'bench');
config.database.url = url;
const pool = createPool({ url, max: 4, statementTimeoutMs: 60000, log });
await pool.query('CREATE EXTENSION IF NOT EXISTS postgis');
await migrateCatalog(pool, SCHEMA);

// deterministic synthetic records over France
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
const records = Array.from({ length: N }, (_, i) => {
  const w = -4 + rnd() * 11;
  const s = 42 + rnd() * 8;
  return {
    identifier: `bench-${String(i).padStart(6, '0')}`,
    type: 'dataset',
    title: `${pick()} ${pick()} ${i}`,
    abstract: Array.from({ length: 20 }, pick).join(' '),
    keywords: [pick(), pick()],
    themes: [],
    licence: { url: 'https://www.etalab.gouv.fr/licence-ouverte-open-licence/' },
    contact: { organisation: `Org ${i % 50}` },
    publisher: { organisation: `Org ${i % 50}` },
    modified: '2024-01-01',
    language: 'fre',
    bbox: [w, s, w + rnd() * 0.5, s + rnd() * 0.5],
    crs: [2154],
    links: [
      { url: `https://data.example/wfs?SERVICE=WFS&REQUEST=GetCapabilities`, protocol: 'OGC:WFS', name: `l${i}` },
      { url: `https://data.example/dl/${i}.geojson`, protocol: 'WWW:DOWNLOAD-1.0-http--download', function: 'download', format: 'GEOJSON' },
    ],
    operatesOn: [],
    source: 'bench',
    metadataModified: new Date().toISOString(),
  };
});
let t0 = performance.now();
await replaceSource(pool, 'bench', records, SCHEMA);
await pool.query(`ANALYZE ${SCHEMA}.records`);
const loadMs = performance.now() - t0;

const registry = new Registry(pool, config);
await registry.reload();
const app = await buildApp(createContext({ config, pool, registry, log }));
await app.ready();

const lat = [];
let matchedTotal = 0;
for (let i = 0; i < Q; i++) {
  const w = -4 + rnd() * 9;
  const s = 42 + rnd() * 6;
  const cql = `AnyText LIKE '%${pick()}%' AND BBOX(ows:BoundingBox, ${w.toFixed(3)}, ${s.toFixed(3)}, ${(w + 2).toFixed(3)}, ${(s + 2).toFixed(3)})`;
  const q = `/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&TYPENAMES=csw:Record&RESULTTYPE=results&ELEMENTSETNAME=summary&MAXRECORDS=25&CONSTRAINTLANGUAGE=CQL_TEXT&CONSTRAINT=${encodeURIComponent(cql)}`;
  t0 = performance.now();
  const r = await app.inject(q);
  lat.push(performance.now() - t0);
  if (r.statusCode !== 200) throw new Error(`GetRecords failed: ${r.body.slice(0, 300)}`);
  matchedTotal += Number(/numberOfRecordsMatched="(\d+)"/.exec(r.body)[1]);
}
lat.sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))].toFixed(1);

t0 = performance.now();
let next = '/catalog/dcat.ttl?pageSize=100';
let pages = 0;
let bytes = 0;
while (next) {
  const r = await app.inject(next);
  if (r.statusCode !== 200) throw new Error(`DCAT page failed: ${r.statusCode}`);
  pages++;
  bytes += r.rawPayload.length;
  const m = /hydra:next <([^>]+)>/.exec(r.body);
  next = m ? m[1].replace('http://bench.test', '') : null;
}
const walkMs = performance.now() - t0;
console.log(
  JSON.stringify(
    {
      records: N,
      loadMs: Math.round(loadMs),
      getRecordsFullTextBbox: {
        queries: Q,
        p50ms: pct(50),
        p95ms: pct(95),
        maxms: lat[lat.length - 1].toFixed(1),
        meanMatched: Math.round(matchedTotal / Q),
      },
      dcatWalk: { pages, totalMs: Math.round(walkMs), perPageMs: (walkMs / pages).toFixed(1), megabytes: (bytes / 1e6).toFixed(1) },
    },
    null,
    2,
  ),
);
await app.close();
await pool.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
await pool.end();
if (cluster?.startedHere && !process.env.GEODATA_KEEP_DB) stopEmbeddedCluster(cluster);
