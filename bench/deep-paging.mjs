#!/usr/bin/env node
/**
 * Deep paging: the cost of the first page against the last page of a big collection, the way
 * QGIS and GDAL read a whole layer. Needs `npm run build` and BENCH_DATABASE_URL (the
 * 1,000,000-parcel bench database; nothing in it is modified).
 *
 *   BENCH_DATABASE_URL=postgres://… node bench/deep-paging.mjs [--layer parcels] [--limit 1000] [--reps 5] [--label X]
 *
 * Rows (median of --reps runs each, one request at a time, body read to the end over loopback):
 *  - OGC API items: first page; the last page by `offset` (what next links were before keyset
 *    paging); the last page by the `cursor` of a next link (what next links are now);
 *  - WFS 2.0 GetFeature (GeoJSON and GML 3.2): first page; last page by STARTINDEX asked out of the
 *    blue (keys-only skip); last page by STARTINDEX right after the page before it, as a client
 *    walking the layer asks it (remembered keyset). See docs/paging.md.
 * Target (issue 20): the last page within 1.5× the time of the first.
 * Result: bench/results/deep-paging-latest.md (and a dated copy).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startOurs } from './lib/servers.mjs';
import { stopAll, installSignalHandlers } from './lib/procs.mjs';
import { databaseUrl, opt, root } from './lib/cli.mjs';

const url = databaseUrl(['BENCH_DATABASE_URL'], 'the 1,000,000-parcel bench database');
const layer = opt('layer', 'parcels');
const limit = Number(opt('limit', '1000'));
const reps = Number(opt('reps', '5'));
const label = opt('label', '');
const log = (m) => console.log(`[deep-paging] ${m}`);
installSignalHandlers(log);

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET a URL, read the body to the end; milliseconds, status and body. */
function fetchTimed(u) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http
      .get(u, { agent, headers: { accept: 'application/geo+json, application/json;q=0.9, */*;q=0.1' } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          resolve({ ms, status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function median(u, before) {
  const times = [];
  let last;
  for (let i = 0; i < reps + 1; i++) {
    if (before) await fetchTimed(before); // untimed: the page a walking client asks first
    last = await fetchTimed(u);
    if (last.status !== 200) throw new Error(`${u}: HTTP ${last.status}: ${last.body.slice(0, 300)}`);
    if (i > 0) times.push(last.ms); // the first run warms the caches
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], bytes: Buffer.byteLength(last.body), body: last.body };
}

const work = path.join(root, 'bench', '.work', 'deep-paging');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

const rows = [];
try {
  const { base } = await startOurs({ root, url, workDir: work, log });
  const items = `${base}/collections/${layer}/items`;
  const first = await fetchTimed(`${items}?limit=1&f=json`);
  const matched = JSON.parse(first.body).numberMatched;
  const lastOffset = Math.max(0, Math.floor((matched - 1) / limit) * limit);
  log(`${layer}: ${matched} features, pages of ${limit}, last page at offset ${lastOffset}`);

  // the cursor of the last page: the next link of the page before it
  const before = JSON.parse((await fetchTimed(`${items}?limit=${limit}&offset=${Math.max(0, lastOffset - limit)}&f=json`)).body);
  const nextHref = before.links.find((l) => l.rel === 'next')?.href;
  if (!nextHref?.includes('cursor=')) throw new Error(`no cursor next link on the page before the last: ${nextHref}`);

  const cases = [
    ['OGC API items, first page', `${items}?limit=${limit}&f=json`, 'first'],
    ['OGC API items, last page by offset', `${items}?limit=${limit}&offset=${lastOffset}&f=json`, 'last'],
    ['OGC API items, last page by cursor (next link)', nextHref, 'last'],
    [
      'WFS 2.0 GeoJSON, first page',
      `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=${layer}&COUNT=${limit}&OUTPUTFORMAT=application/json`,
      'first',
    ],
    [
      'WFS 2.0 GeoJSON, last page by STARTINDEX',
      `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=${layer}&COUNT=${limit}&STARTINDEX=${lastOffset}&OUTPUTFORMAT=application/json`,
      'last',
    ],
    ['WFS 2.0 GML 3.2, first page', `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=${layer}&COUNT=${limit}`, 'first'],
    [
      'WFS 2.0 GML 3.2, last page by STARTINDEX',
      `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=${layer}&COUNT=${limit}&STARTINDEX=${lastOffset}`,
      'last',
    ],
    ['OGC API items sortby=idu, first page', `${items}?limit=${limit}&sortby=idu&f=json`, 'first'],
  ];
  // a walking client: the page before the last, then the last (same query, STARTINDEX where it ended)
  const wfs = (fmt, start) =>
    `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=${layer}&COUNT=${limit}&STARTINDEX=${start}${fmt}`;
  // after the cold rows, so that nothing is remembered for them (the memory is per query, not per format)
  cases.splice(
    7,
    0,
    [
      'WFS 2.0 GeoJSON, last page by STARTINDEX after the page before',
      wfs('&OUTPUTFORMAT=application/json', lastOffset),
      'last',
      wfs('&OUTPUTFORMAT=application/json', Math.max(0, lastOffset - limit)),
    ],
    [
      'WFS 2.0 GML 3.2, last page by STARTINDEX after the page before',
      wfs('', lastOffset),
      'last',
      wfs('', Math.max(0, lastOffset - limit)),
    ],
  );
  // each last page against the first page of its family (the name before the first comma)
  const firsts = new Map();
  const family = (name) => name.split(',')[0];
  for (const [name, u, kind, before] of cases) {
    const r = await median(u, before);
    if (kind === 'first') firsts.set(family(name), r.ms);
    const ratio = kind === 'last' ? r.ms / firsts.get(family(name)) : 1;
    rows.push({ name, ms: r.ms, bytes: r.bytes, ratio });
    log(`${name}: ${r.ms.toFixed(1)} ms, ${r.bytes} bytes${kind === 'last' ? `, ${ratio.toFixed(2)}× the first page` : ''}`);
  }
  const firstMs = firsts.get('OGC API items sortby=idu');
  // a deep page in sortby order, reached by following cursors from a page asked by offset
  const deepSorted = JSON.parse(
    (await fetchTimed(`${items}?limit=${limit}&sortby=idu&offset=${Math.max(0, lastOffset - limit)}&f=json`)).body,
  );
  const sortedNext = deepSorted.links.find((l) => l.rel === 'next')?.href;
  if (sortedNext) {
    const r = await median(sortedNext);
    rows.push({ name: 'OGC API items sortby=idu, last page by cursor', ms: r.ms, bytes: r.bytes, ratio: r.ms / firstMs });
    log(`sortby last page by cursor: ${r.ms.toFixed(1)} ms, ${(r.ms / firstMs).toFixed(2)}× the first page`);
  }

  const date = new Date().toISOString().slice(0, 10);
  const md = [
    `# Deep paging${label ? ` — ${label}` : ''}`,
    '',
    `${date}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, layer \`${layer}\` (${matched} features), pages of ${limit}, median of ${reps} runs after one warm-up.`,
    'Target: the last page within 1.5× the time of the first (issue 20).',
    '',
    '| request | ms | bytes | × first page |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.ms.toFixed(1)} | ${r.bytes} | ${r.ratio.toFixed(2)} |`),
    '',
  ].join('\n');
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'deep-paging-latest.md'), md);
  writeFileSync(path.join(root, 'bench', 'results', `deep-paging-${date}${label ? `-${label}` : ''}.md`), md);
  console.log(md);
} finally {
  agent.destroy();
  await stopAll(log);
}
