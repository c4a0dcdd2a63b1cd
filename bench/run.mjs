#!/usr/bin/env node
// The performance lab: `npm run bench [-- --quick | --full | --scaling] [--only REGEX]`.
// See bench/README.md for what each scenario sends and the fairness rules.
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  requestList,
  distinctTiles,
  summarise,
  checkResponse,
  TOWNS,
  queryString,
  wmsGetMapQuery,
  wfsPageQuery,
  cswGetRecordsQuery,
} from './lib/core.mjs';
import proj4 from 'proj4';
import { benchDatabase, ensureDemoData, DEFAULT_SIZES } from './lib/provision.mjs';
import {
  startOurs,
  startReference,
  largestProcessMemory,
  resetPeakMemoryTree,
  waitForOverviews,
  seedMapcache,
  seedOurs,
} from './lib/servers.mjs';
import { runWrk, combineRuns, wrkAvailable } from './lib/wrk.mjs';
import { comparePng, inkShare } from './lib/pixels.mjs';
import { ourLayers } from './lib/symbology.mjs';
import { childrenOf, groupCpu, postgresCpu, postmasterPid } from './lib/cpu.mjs';
import { installSignalHandlers, stopAll, ensureDebianPackages } from './lib/procs.mjs';
import { runLoad, fetchOnce } from './lib/load.mjs';
import { markdown, fmt } from './lib/report.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (n) => args.includes(`--${n}`);
const opt = (n, d) => {
  const i = args.findIndex((a) => a === `--${n}` || a.startsWith(`--${n}=`));
  if (i < 0) return d;
  return args[i].includes('=') ? args[i].split('=').slice(1).join('=') : args[i + 1];
};
const mode = flag('quick') ? 'quick' : flag('scaling') ? 'scaling' : 'full';
const QUICK = mode === 'quick';
const SEED = Number(opt('seed', 20260101));
// wrk's connections for every throughput row (issue 18: 1, 8 and 16; quick mode 16 only)
const CONCS = String(opt('concurrency', QUICK ? '16' : '1,8,16'))
  .split(',')
  .map(Number)
  .filter((n) => n >= 1);
const SLOT_MS = Number(opt('slot', QUICK ? 2 : 5)) * 1000; // per server per round
const PIXEL_TOL = Number(opt('pixel-tolerance', 48)); // channel difference (0–255) under which two pixels match (lib/pixels.mjs)
const MAX_DIFF = Number(opt('max-diff', 0.02)); // share of differing pixels above which a scenario is not timed
const FORCE_PIXELS = flag('force-pixels'); // time scenarios whose images differ anyway (rows flagged)
const CHECK_N = QUICK ? 3 : 8; // requests per scenario checked (validity, pixels) before timing
const PARCELS = Number(opt('parcels', DEFAULT_SIZES.parcels)); // a smaller database for a smoke run
const ROUNDS = Number(opt('rounds', 2));
const WARM_S = QUICK ? 1 : 2;
const WORKERS = Number(opt('workers', Math.max(2, os.cpus().length * 2)));
const OURS_ROOT = path.resolve(opt('ours-root', root)); // benchmark another checkout's build (e.g. a branch)
const ONLY = opt('only') ? new RegExp(opt('only')) : null;
const workDir = path.join(root, 'bench', '.work');
mkdirSync(workDir, { recursive: true });

const t00 = Date.now();
const log = (m) => console.error(`[bench ${((Date.now() - t00) / 1000).toFixed(0).padStart(4)}s] ${m}`);
// ---------------------------------------------------------------------------------------------
// URL adapters: one abstract request → each server's URL. Same request list for every server.
// ---------------------------------------------------------------------------------------------
// the same queries for every server (lib/core.mjs)
const wmsQ = wmsGetMapQuery;
const wfsQ = wfsPageQuery;
const bulkQ = (r) =>
  queryString({
    SERVICE: 'WFS',
    VERSION: '2.0.0',
    REQUEST: 'GetFeature',
    TYPENAMES: 'parcels',
    ...(r.count ? { COUNT: r.count } : {}),
    ...(r.format === 'geojson' ? { OUTPUTFORMAT: 'application/json', SRSNAME: 'urn:ogc:def:crs:EPSG::2154' } : {}),
  });
const itemsQ = (r) => queryString({ f: 'json', limit: r.limit, bbox: r.bbox.join(',') });
function adapters(ours, ref) {
  return {
    wms: { ours: (r) => `${ours.base}/wms?${wmsQ(r)}`, mapserver: ref.mapserver && ((r) => `${ref.mapserver.base}?${wmsQ(r)}`) },
    'wfs-page': { ours: (r) => `${ours.base}/wfs?${wfsQ(r)}`, mapserver: ref.mapserver && ((r) => `${ref.mapserver.base}?${wfsQ(r)}`) },
    bulk: { ours: (r) => `${ours.base}/wfs?${bulkQ(r)}`, mapserver: ref.mapserver && ((r) => `${ref.mapserver.base}?${bulkQ(r)}`) },
    items: {
      ours: (r) => `${ours.base}/collections/${r.collection}/items?${itemsQ(r)}`,
      'mapserver-ogcapi': ref.mapserver && ((r) => `${ref.mapserver.ogcapi}/collections/${r.collection}/items?${itemsQ(r)}`),
    },
    tile: {
      ours: (t) => `${ours.base}/tiles/${t.layer}/${t.z}/${t.x}/${t.y}.png`,
      mapcache: ref.mapcache && ((t) => `${ref.mapcache.base}/gmaps/${t.layer}@GoogleMapsCompatible/${t.z}/${t.x}/${t.y}.png`),
      // MapCache's own files (template {z}/{x}/{inv_y}: inv_y is the XYZ row), served by nginx: the ceiling
      'nginx-static': ref.static && ((t) => `${ref.static.base}/${t.layer}/${t.z}/${t.x}/${t.y}.png`),
    },
    csw: { ours: (r) => `${ours.base}/csw?${cswGetRecordsQuery(r)}` },
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios (issue 18's list)
// ---------------------------------------------------------------------------------------------
function scenarios(tileSets) {
  const list = [];
  const add = (s) => (!ONLY || ONLY.test(s.id)) && list.push(s);
  for (const format of ['geojson', 'gml']) {
    if (QUICK && format === 'gml') continue;
    const count = QUICK ? Math.min(200000, PARCELS) : null;
    add({
      id: `wfs-export-${format}`,
      title: `WFS bulk export of ${count ? `${count / 1000}k` : 'all'} parcels, ${format === 'gml' ? 'GML 3.2' : 'GeoJSON'} (one request at a time)`,
      kind: 'bulk',
      list: [{ format, count }],
      expect: format,
      stream: true,
      bulk: true,
    });
  }
  // quick mode: the town and street rows that decide the WMS target, one region row
  const QUICK_WMS = ['wms-town-2154-parcels', 'wms-town-2154-all', 'wms-street-3857-all', 'wms-region-3857-all'];
  for (const crs of ['EPSG:2154', 'EPSG:3857']) {
    for (const scale of ['region', 'town', 'street']) {
      for (const layers of [['parcels'], ['parcels', 'roads', 'pois']]) {
        const id = `wms-${scale}-${crs.slice(5)}-${layers.length > 1 ? 'all' : 'parcels'}`;
        if (QUICK && !QUICK_WMS.includes(id)) continue;
        add({
          id,
          title: `WMS GetMap 256² PNG, ${scale} scale, ${crs}, ${layers.join('+')}`,
          kind: 'wms',
          list: requestList('wms', { scale, crs, layers }, 500, SEED),
          expect: 'png',
          pixels: 'mapserver',
          // region renders take seconds each: longer slots, so that a run is not a handful of requests
          slotFactor: scale === 'region' ? 3 : 1,
        });
      }
    }
  }
  for (const format of ['geojson', 'gml']) {
    add({
      id: `wfs-page-${format}`,
      title: `WFS GetFeature ${format === 'gml' ? 'GML 3.2' : 'GeoJSON'} COUNT=1000, random town-scale bbox`,
      kind: 'wfs-page',
      list: requestList('wfs-page', { count: 1000 }, 500, SEED).map((r) => ({ ...r, format })),
      expect: format,
    });
  }
  if (!QUICK)
    add({
      id: 'ogcapi-items',
      title: 'OGC API Features items, limit=100, random town-scale bbox',
      kind: 'items',
      list: requestList('items', { limit: 100 }, 500, SEED),
      expect: 'geojson',
    });
  if (tileSets.seeded.length) {
    add({
      id: 'tiles-same',
      title: 'Cached tile, always the same one',
      kind: 'tile',
      list: [tileSets.seeded[Math.floor(tileSets.seeded.length / 2)]],
      expect: 'png',
      pixels: 'mapcache',
    });
    add({
      id: 'tiles-random',
      title: `Cached tiles, random among the ${tileSets.seeded.length} seeded by mapcache_seed (ours warmed with the same)`,
      kind: 'tile',
      list: tileSets.seeded,
      expect: 'png',
      pixels: 'mapcache',
    });
  }
  add({
    id: 'tiles-cold',
    title: 'Cold tiles, each requested once, one per 4×4 metatile (zoom 15–17)',
    kind: 'tile',
    list: tileSets.cold,
    expect: 'png',
    once: true,
    servers: ['ours', 'mapcache'],
    slotFactor: 5, // renders: a short run would end with most requests still in flight
  });
  if (!QUICK)
    add({
      id: 'csw-getrecords',
      title: "CSW GetRecords full-text (AnyText LIKE '%word%'), ours only",
      kind: 'csw',
      list: requestList('csw', {}, 100, SEED),
      expect: 'xml',
    });
  return list;
}

async function probeOurs(url) {
  const r = await fetchOnce(url, { timeoutMs: 1800000, stream: true }); // head and tail only: a bulk export is not buffered
  const txt = r.body ? r.body.subarray(0, 2000).toString('utf8') : '';
  if (r.status === 501 || r.status === 404 || /OperationNotSupported/.test(txt)) {
    const m = txt.match(/<ows:ExceptionText>([^<]*)|"(?:detail|title|message)"\s*:\s*"([^"]*)"/);
    return { implemented: false, note: `HTTP ${r.status}${m ? `: ${(m[1] || m[2]).slice(0, 80)}` : ''}` };
  }
  return { implemented: true };
}

/**
 * Before timing: the first CHECK_N requests of the list, from every server, checked as a client
 * would (status, type, decodable PNG / parsable JSON / complete XML). For images, each answer of
 * ours is compared pixel by pixel with the reference server's answer to the same request.
 * Returns { invalid: {server: reason}, pixels: {share, meanDiff, ink, bytes: {server: mean}} | null }.
 */
async function precheck(s, active) {
  const invalid = {};
  const bodies = {};
  for (const a of active) {
    bodies[a.name] = [];
    for (const u of a.urls.slice(0, s.once ? 0 : CHECK_N)) {
      const r = await fetchOnce(u, { timeoutMs: 120000 });
      const why = r.error ?? (await checkResponse(r.status, r.contentType, r.body, s.expect));
      if (why) {
        invalid[a.name] = `${why} (${u.replace(/^https?:\/\/[^/]+/, '').slice(0, 120)})`;
        break;
      }
      bodies[a.name].push(r.body);
    }
  }
  const ref = s.pixels;
  if (!ref || !bodies.ours?.length || !bodies[ref]?.length || invalid.ours || invalid[ref]) return { invalid, pixels: null };
  let share = 0;
  let strict = 0;
  let meanDiff = 0;
  let ink = 0;
  const n = Math.min(bodies.ours.length, bodies[ref].length);
  for (let i = 0; i < n; i++) {
    const c = await comparePng(bodies.ours[i], bodies[ref][i], PIXEL_TOL);
    share = Math.max(share, c.share);
    strict = Math.max(strict, c.strict);
    meanDiff = Math.max(meanDiff, c.meanDiff);
    ink = Math.max(ink, await inkShare(bodies[ref][i]));
  }
  const mean = (xs) => xs.reduce((a, b) => a + b.length, 0) / Math.max(1, xs.length);
  const bytes = Object.fromEntries(Object.entries(bodies).map(([k, v]) => [k, mean(v)]));
  return { invalid, pixels: { share, strict, meanDiff, ink, n, ref, bytes } };
}

/**
 * Before a timed slot: wait until no statement runs in PostgreSQL any more (at most 60 s). wrk
 * closes its connections at the end of a slot, but a server may still be working on what it had
 * accepted — region maps take seconds — and that work would be measured against the next server's
 * slot (each server's figures then carry the other's leftovers).
 */
async function quiesce(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const r = await c.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      );
      if (r.rows[0].n === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await c.end();
  }
}

/** CPU seconds of a server's processes so far (ours: the node process and its cluster workers; MapServer/MapCache: their FastCGI workers and nginx's workers). */
function serverCpu(name, ctx) {
  const nginx = ctx.nginxWorkers ?? [];
  switch (name) {
    case 'ours': // with BENCH_PROCESSES > 1, the cluster's workers are the primary's children
      return groupCpu([ctx.oursPid, ...childrenOf(ctx.oursPid)]);
    case 'mapserver':
    case 'mapserver-ogcapi':
      return groupCpu([...(ctx.ref.mapservPids ?? []), ...nginx]);
    case 'mapcache': // a cold MapCache tile is MapServer's work too
      return groupCpu([...(ctx.ref.mapcachePids ?? []), ...(ctx.ref.mapservPids ?? []), ...nginx]);
    case 'nginx-static':
      return groupCpu(nginx);
    default:
      return Number.NaN;
  }
}

/** The scenario's servers that can be measured; a row for each one that cannot (not started, or our service not implemented). */
async function serversOf(s, targets, ctx, rows) {
  const out = [];
  for (const [name, toUrl] of Object.entries(targets).filter(([n]) => !s.servers || s.servers.includes(n))) {
    if (!toUrl) {
      rows.push({ scenario: s.id, server: name, status: 'unavailable', note: ctx.refNotes || 'not started' });
      continue;
    }
    if (name === 'ours') {
      const p = await probeOurs(toUrl(s.list[0]));
      if (!p.implemented) {
        rows.push({ scenario: s.id, server: name, status: 'not-implemented', note: p.note });
        continue;
      }
    }
    out.push([name, toUrl]);
  }
  return out;
}

const pct = (x) => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)}%`;

/** One throughput scenario with wrk: pre-check, pixel check, then per concurrency A/B/A/B rounds. */
async function measureWrk(s, targets, ctx) {
  const rows = [];
  let active = [];
  for (const [name, toUrl] of await serversOf(s, targets, ctx, rows)) {
    const urls = s.list.map(toUrl);
    const u0 = new URL(urls[0]);
    active.push({ name, urls, base: u0.origin, paths: urls.map((u) => u.slice(u0.origin.length)) });
  }
  if (!active.length) return rows;
  const { invalid, pixels } = await precheck(s, active);
  for (const [name, why] of Object.entries(invalid)) {
    log(`  ${s.id} ${name}: invalid answer before timing: ${why}`);
    rows.push({ scenario: s.id, server: name, status: 'refused', note: `invalid answer before timing: ${why}` });
  }
  active = active.filter((a) => !invalid[a.name]);
  let pixelNote = '';
  if (pixels) {
    pixelNote = `pixels: ${pct(pixels.share)} without a match within 1 px and ${PIXEL_TOL}/255 in ${pixels.ref}'s image (worst of ${pixels.n}; same pixel only: ${pct(pixels.strict)}; ink ${pct(pixels.ink)}); PNG bytes ours ${fmt(pixels.bytes.ours, 0)} vs ${fmt(pixels.bytes[pixels.ref], 0)}`;
    log(`  ${s.id} ${pixelNote}`);
    if (pixels.share > MAX_DIFF && !FORCE_PIXELS) {
      for (const a of active)
        rows.push({
          scenario: s.id,
          server: a.name,
          status: 'refused',
          note: `refused: images differ (${pct(pixels.share)} of pixels unmatched, limit ${pct(MAX_DIFF)}): not the same work`,
        });
      return rows;
    }
    if (pixels.share > MAX_DIFF) pixelNote = `⚠ images differ (timed anyway: --force-pixels); ${pixelNote}`;
  }
  const concs = s.concurrencies ?? CONCS;
  const slot = (SLOT_MS / 1000) * (s.slotFactor ?? 1);
  for (const [ci, c] of concs.entries()) {
    // cold tiles: each concurrency gets its own slice of the list (same slice for every server)
    let paths = (a) => a.paths;
    if (s.once) {
      const per = Math.floor(s.list.length / concs.length);
      paths = (a) => a.paths.slice(ci * per, (ci + 1) * per);
    } else {
      for (const a of active)
        await runWrk({ base: a.base, paths: a.paths, connections: c, seconds: WARM_S, workDir, seed: SEED, timeoutS: 120 }).catch(
          () => null,
        );
    }
    const per = Object.fromEntries(active.map((a) => [a.name, { runs: [], server: 0, pg: 0, client: 0 }]));
    const rounds = s.once ? 1 : ROUNDS;
    for (let round = 0; round < rounds; round++) {
      for (const a of active) {
        await quiesce(ctx.url);
        const [s0, p0] = [serverCpu(a.name, ctx), postgresCpu(ctx.postmaster)];
        const r = await runWrk({
          base: a.base,
          paths: paths(a),
          connections: c,
          seconds: slot,
          workDir,
          seed: SEED + round,
          order: s.once ? 'once' : 'random',
          countStatus: s.kind !== 'tile' || !!s.once, // what the errors were (cached tiles: kept cheapest for the client)
          timeoutS: 120,
        });
        const acc = per[a.name];
        acc.runs.push(r);
        acc.server += serverCpu(a.name, ctx) - s0;
        acc.pg += postgresCpu(ctx.postmaster) - p0;
        acc.client += r.clientCpuS;
        if (a.name === 'ours') acc.mem = largestProcessMemory(ctx.oursPid);
      }
    }
    const sum = Object.fromEntries(Object.entries(per).map(([k, v]) => [k, combineRuns(v.runs)]));
    const ours = sum.ours;
    for (const a of active) {
      const m = sum[a.name];
      const acc = per[a.name];
      const id = `${s.id} c${c}`;
      const ms = (sec) => fmt((sec * 1000) / Math.max(1, m.requests), 2);
      const cpu = `CPU ms/req server ${ms(acc.server)} · PostgreSQL ${ms(acc.pg)} · client ${ms(acc.client)}`;
      const errs = m.errors.status + m.errors.socket;
      const notes = [cpu];
      if (acc.mem)
        notes.push(
          `our RSS ${fmt(acc.mem.rssMB, 0)} MB (peak ${fmt(acc.mem.hwmMB, 0)}; largest of ${acc.mem.processes} processes, ${fmt(acc.mem.sumRssMB, 0)} MB together)`,
        );
      if (pixelNote && a.name !== 'ours') notes.push(pixelNote);
      if (m.refused) {
        log(`  ${id} ${a.name}: ${m.refused}`);
        console.log(`${id} ${a.name}: ${m.refused}`);
        rows.push({ scenario: id, server: a.name, status: 'refused', note: `${m.refused}; ${cpu}` });
        continue;
      }
      let ratio = '';
      if (ours && a.name !== 'ours' && !ours.refused && errs === 0 && ours.errors.status + ours.errors.socket === 0)
        ratio = `${fmt(ours.reqPerSec / m.reqPerSec, 2)}×`;
      const summary = {
        requests: m.requests,
        errors: errs,
        reqPerSec: m.reqPerSec,
        p50: m.p50,
        p95: m.p95,
        p99: m.p99,
        meanBytes: m.meanBytes,
        mbPerSec: m.bytes / m.seconds / 1e6,
        firstErrors: errs
          ? [
              `non-2xx ${m.errors.status}${
                Object.keys(m.statuses).length
                  ? ` (${Object.entries(m.statuses)
                      .filter(([k]) => !/^2/.test(k))
                      .map(([k, v]) => `${k}: ${v}`)
                      .join(', ')})`
                  : ''
              }, socket errors/timeouts ${m.errors.socket}`,
            ]
          : [],
      };
      rows.push({ scenario: id, server: a.name, status: 'ok', summary, ratio, clientCore: m.clientCore, note: notes.join('; ') });
      log(
        `  ${id} ${a.name}: ${fmt(m.reqPerSec)} req/s p50 ${fmt(m.p50)} ms p99 ${fmt(m.p99)} ms errors ${errs}/${m.requests} client ${Math.round(m.clientCore * 100)}% of a core`,
      );
    }
  }
  return rows;
}

/** The bulk export (one streamed request at a time: MB/s, first byte, our peak RSS): the Node client, which reads the stream. */
async function measureBulk(s, targets, ctx) {
  const rows = [];
  const active = [];
  for (const [name, toUrl] of await serversOf(s, targets, ctx, rows)) {
    active.push({ name, urls: s.list.map(toUrl), samples: [], wall: 0, cpu: [] });
  }
  if (active.length === 0) return rows;
  const conc = 1;
  const common = { expect: s.expect, concurrency: conc, stream: !!s.stream, timeoutMs: s.bulk ? 1800000 : 120000 };
  const rounds = s.cold ? 1 : s.bulk ? (QUICK ? 1 : ROUNDS) : ROUNDS;
  for (let round = 0; round < rounds; round++) {
    for (const a of active) {
      // bulk: reset the kernel's peak-RSS counter first, so that VmHWM afterwards is this export's peak
      const before = a.name === 'ours' ? (s.bulk ? resetPeakMemoryTree(ctx.oursPid) : largestProcessMemory(ctx.oursPid)) : null;
      const r = await runLoad({
        ...common,
        urls: a.urls,
        durationMs: s.bulk ? 3600000 : s.cold ? SLOT_MS * ROUNDS : SLOT_MS,
        maxRequests: s.bulk ? 1 : Infinity,
        once: !!s.once,
      });
      a.samples.push(...r.samples);
      a.wall += r.wall;
      a.cpu.push(r.clientCpu);
      if (before) {
        const after = largestProcessMemory(ctx.oursPid);
        // the peak over all rounds; 'reset' says whether the counter could be reset before each export
        a.mem = {
          hwmMB: Math.max(a.mem?.hwmMB ?? 0, after.hwmMB),
          rssMB: after.rssMB,
          startMB: Math.max(a.mem?.startMB ?? 0, before.rssMB),
          reset: (a.mem?.reset ?? true) && !!before.reset,
        };
      }
      if (s.bulk) a.ttfb = [...(a.ttfb || []), ...r.samples.map((x) => x.ttfbMs)];
    }
  }
  const ours = active.find((a) => a.name === 'ours');
  const oursSum = ours && summarise(ours.samples, ours.wall);
  for (const a of active) {
    const summary = summarise(a.samples, a.wall);
    const notes = [];
    if (s.bulk) notes.push(`TTFB ${fmt(Math.min(...a.ttfb), 0)} ms, total ${fmt(summary.p50 / 1000, 1)} s`);
    if (a.mem && s.bulk)
      notes.push(
        a.mem.reset
          ? `our peak RSS during the export ${fmt(a.mem.hwmMB, 0)} MB (RSS before it ${fmt(a.mem.startMB, 0)} MB, after ${fmt(a.mem.rssMB, 0)} MB)`
          : `our VmHWM ${fmt(a.mem.hwmMB, 0)} MB (peak over the run so far: could not reset it), RSS ${fmt(a.mem.rssMB, 0)} MB`,
      );
    const cpu = Math.max(...a.cpu);
    if (cpu > 0.8) notes.push(`client CPU ${Math.round(cpu * 100)}% of a core: client may be the bottleneck`);
    let ratio = '';
    if (oursSum && a !== ours && summary.errors === 0)
      ratio = `${fmt(oursSum.reqPerSec / summary.reqPerSec, 2)}×${s.bulk ? ' (export speed: their time ÷ ours)' : ''}`;
    rows.push({ scenario: s.id, server: a.name, status: 'ok', summary, ratio, note: notes.join('; ') });
    log(
      `  ${s.id} ${a.name}: ${fmt(summary.reqPerSec)} req/s p50 ${fmt(summary.p50)} ms p99 ${fmt(summary.p99)} ms errors ${summary.errors}/${summary.requests}${summary.errors ? ` (${summary.firstErrors.join('; ')})` : ''}`,
    );
  }
  return rows;
}
async function environment(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const pgv = (await c.query('SHOW server_version')).rows[0].server_version;
  const pgis = (await c.query('SELECT postgis_lib_version() AS v')).rows[0].v;
  await c.end();
  const sh = (cmd, a) => {
    const r = spawnSync(cmd, a, { encoding: 'utf8' });
    return `${r.stdout || ''}${r.stderr || ''}`.trim();
  };
  const gitOf = (dir) =>
    sh('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']) +
    (sh('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : '');
  const git = gitOf(root) + (OURS_ROOT !== root ? `; server under test built from ${OURS_ROOT} at ${gitOf(OURS_ROOT)}` : '');
  const dirty = '';
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    commit: git + dirty,
    cpu: `${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}`,
    ram: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    postgresql: pgv,
    postgis: pgis,
    mapserver: (sh('mapserv', ['-v']).match(/MapServer version [\d.]+/) || ['not installed'])[0],
    mapcache: sh('dpkg-query', ['-W', '-f=${Version}', 'mapcache-cgi']) || 'not installed',
    nginx: (sh('nginx', ['-v']).match(/nginx\/[\d.]+/) || ['not installed'])[0],
    'load average at start (1/5/15 min)': os
      .loadavg()
      .map((v) => v.toFixed(1))
      .join(' / '),
  };
}

/** Seed the tile caches: every seeded tile requested once from each tile server. */
/** Envelope of a Lambert-93 box in EPSG:3857 (or another CRS). */
function box3857([x0, y0, x1, y1], crs = 'EPSG:3857') {
  const pts = [
    [x0, y0],
    [x0, y1],
    [x1, y0],
    [x1, y1],
  ].map((p) => proj4('EPSG:2154', crs, p));
  return [
    Math.min(...pts.map((p) => p[0])),
    Math.min(...pts.map((p) => p[1])),
    Math.max(...pts.map((p) => p[0])),
    Math.max(...pts.map((p) => p[1])),
  ];
}

const boxLonLat = (b) => box3857(b, 'EPSG:4326');

/**
 * The cached-tile set: MapCache's cache seeded by mapcache_seed (boxes around the towns, zoom 13–15;
 * full mode 13–16), then ours warmed with exactly the tiles found in MapCache's folder. Without
 * MapCache, the tiles of the same boxes are computed here and only ours is warmed.
 */
async function tileSet(ours, ref, A, notes) {
  const towns = QUICK ? TOWNS.slice(0, 2) : TOWNS;
  const half = QUICK ? 750 : 1500;
  const zmax = QUICK ? 15 : 16;
  const extents = towns.map(([x, y]) => box3857([x - half, y - half, x + half, y + half]));
  let seeded = [];
  let mapcacheSeconds = Number.NaN;
  if (ref.mapcache) {
    try {
      const r = await seedMapcache({ ref, layer: 'parcels', extents, zmin: 13, zmax, threads: 2, log });
      seeded = r.tiles;
      mapcacheSeconds = r.seconds;
      notes.push(
        `Tile set: mapcache_seed wrote ${r.tiles.length} parcels tiles (zoom 13–${zmax}, ${towns.length} boxes of ${(2 * half) / 1000} km around towns) in ${fmt(r.seconds)} s (${fmt(r.tiles.length / r.seconds)} tiles/s), mean ${fmt(r.bytes / Math.max(1, r.tiles.length), 0)} bytes per PNG; ours was warmed with exactly those tiles.`,
      );
    } catch (e) {
      notes.push(`mapcache_seed failed: ${e.message}`);
      log(`mapcache_seed failed: ${e.message}`);
    }
  }
  if (!seeded.length) {
    const R = 6378137 * Math.PI;
    for (const [x0, y0, x1, y1] of extents)
      for (let z = 13; z <= zmax; z++) {
        const n = 2 ** z;
        const tx = (x) => Math.floor(((x + R) / (2 * R)) * n);
        const ty = (y) => Math.floor(((R - y) / (2 * R)) * n);
        for (let x = tx(x0); x <= tx(x1); x++) for (let y = ty(y1); y <= ty(y0); y++) seeded.push({ layer: 'parcels', z, x, y });
      }
    seeded = distinctTiles(seeded);
  }
  // the seeding rate: our own command on the same boxes and zooms, same parallelism as mapcache_seed
  try {
    const boxes = towns.map(([x, y]) => boxLonLat([x - half, y - half, x + half, y + half]));
    const r = await seedOurs({ root: OURS_ROOT, ours, layer: 'parcels', boxes, zmin: 13, zmax, concurrency: 2, workDir });
    log(`geodata seed: ${r.tiles} tiles (${r.metatiles} metatiles) in ${fmt(r.seconds)} s (${fmt(r.tiles / r.seconds)} tiles/s)`);
    notes.push(
      `Seeding the same boxes and zooms with \`geodata seed --concurrency 2\`: ${r.tiles} tiles (${r.metatiles} metatiles) in ${fmt(r.seconds)} s, ${fmt(r.tiles / r.seconds)} tiles/s (the command's own time, start-up excluded; it counts the tiles of the area, mapcache_seed writes every tile of each metatile it renders)${Number.isFinite(mapcacheSeconds) ? `. The same area seeded: mapcache_seed ${fmt(mapcacheSeconds)} s, ours ${fmt(r.seconds)} s — **${fmt(mapcacheSeconds / r.seconds)}×** its rate in tiles of the area per second (${fmt(r.tiles / mapcacheSeconds)} vs ${fmt(r.tiles / r.seconds)})` : ''}.`,
    );
  } catch (e) {
    notes.push(`geodata seed failed: ${e.message}`);
    log(`geodata seed failed: ${e.message}`);
  }
  // warm ours with the same tiles, keeping each answer's size
  const urls = seeded.map(A.tile.ours);
  const t0 = Date.now();
  const r = await runLoad({ urls, expect: 'png', concurrency: 4, durationMs: 1800000, once: true, timeoutMs: 120000 });
  const secs = (Date.now() - t0) / 1000;
  const errs = r.samples.filter((x) => x.error).length;
  const bytes = r.samples.reduce((a, x) => a + x.bytes, 0) / Math.max(1, r.samples.length);
  log(`warmed our cache with ${seeded.length} tiles in ${fmt(secs)} s (${errs} errors)`);
  notes.push(
    `Our tile cache warmed over HTTP with the same ${seeded.length} tiles in ${fmt(secs)} s (${fmt(seeded.length / secs)} tiles/s, 4 connections; not comparable with mapcache_seed's rate, which renders whole metatiles), mean ${fmt(bytes, 0)} bytes per PNG${errs ? `, ⚠ ${errs} errors` : ''}.`,
  );
  // cold tiles: never seeded, one per 4×4 metatile (neither server gets a neighbour's render for free)
  const meta = (t) => `${t.z}/${t.x >> 2}/${t.y >> 2}`;
  const seenMeta = new Set(seeded.map(meta));
  const cold = [];
  for (const t of distinctTiles(requestList('tile', { layer: 'parcels', zooms: [15, 16, 17], spread: 'town' }, 8000, SEED + 1))) {
    if (seenMeta.has(meta(t))) continue;
    seenMeta.add(meta(t));
    cold.push(t);
  }
  return { seeded, cold };
}

async function main() {
  installSignalHandlers(log);
  const notes = [];
  const missing = ensureDebianPackages(
    ['wrk', 'cgi-mapserver', 'mapserver-bin', 'spawn-fcgi', 'nginx', 'mapcache-cgi', 'mapcache-tools', 'fonts-dejavu-core'],
    log,
  );
  if (missing.length)
    notes.push(
      `Debian packages missing (not root?): ${missing.join(', ')} — the corresponding reference servers are reported unavailable.`,
    );
  if (!wrkAvailable()) throw new Error('wrk is not installed (Debian package wrk; run the bench as root once to install it)');
  const sizes = { ...DEFAULT_SIZES, parcels: PARCELS };
  const dbName = PARCELS === DEFAULT_SIZES.parcels ? 'geodata_bench' : `geodata_bench_${PARCELS}`;
  const db = await benchDatabase(root, log, dbName);
  const prov = await ensureDemoData(root, db.url, sizes, log);
  notes.push(
    `Bench database: ${sizes.parcels.toLocaleString('en')} parcels, ${sizes.roads} roads, ${sizes.pois} pois, ${sizes.communes} communes (seed ${sizes.seed}); generation took ${prov.seconds.toFixed(0)} s${prov.generated ? ' (this run)' : ' (when first built; reused)'}. Both servers read the same tables through the same PostgreSQL.`,
  );
  const env = await environment(db.url);
  env.wrk = (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.match(/wrk [^\s]+/) || ['?'])[0];
  const rows = [];
  let peak = { rssMB: 0, hwmMB: 0, sumMB: 0, processes: 0 };
  try {
    const { ours, ref, A, ctx } = await startServers(db.url);
    if (ctx.refNotes) notes.push(`Reference servers: ${ctx.refNotes}`);
    const memo = () => {
      const m = largestProcessMemory(ours.pid);
      peak = {
        rssMB: Math.max(peak.rssMB, m.rssMB || 0),
        hwmMB: Math.max(peak.hwmMB, m.hwmMB || 0),
        sumMB: Math.max(peak.sumMB, m.sumRssMB || 0),
        processes: m.processes,
      };
    };
    const runScenario = async (s, fn) => {
      log(`scenario ${s.id}: ${s.title}`);
      try {
        rows.push(...(await fn(s, A[s.kind], ctx)));
      } catch (e) {
        log(`  ${s.id} failed: ${e.stack || e}`);
        rows.push({ scenario: s.id, server: '(harness)', status: 'unavailable', note: `harness error: ${e.message}` });
      }
      memo();
    };
    // the bulk exports first, on a server that has rendered nothing yet: their memory figures are the export's own
    const pre = scenarios({ seeded: [], cold: [] });
    for (const s of pre.filter((x) => x.bulk)) await runScenario(s, measureBulk);
    const wantTiles = !ONLY || ['tiles-same', 'tiles-random', 'tiles-cold'].some((id) => ONLY.test(id));
    const tiles = wantTiles ? await tileSet(ours, ref, A, notes) : { seeded: [], cold: [] };
    for (const s of scenarios(tiles).filter((x) => !x.bulk)) await runScenario(s, measureWrk);
    notes.push(
      `Our server's memory through the run (VmRSS / VmHWM of each of its processes from /proc/<pid>/status, read after every row; the figures are the largest process's): highest RSS ${fmt(peak.rssMB, 0)} MB, peak ${fmt(peak.hwmMB, 0)} MB; all its processes together at most ${fmt(peak.sumMB, 0)} MB (${peak.processes} processes).`,
    );
    await stopAll(log);
    if (!QUICK && (!ONLY || ONLY.test('downloads'))) notes.push(await downloads(db.url));
    if (!QUICK && (!ONLY || ONLY.test('mixed'))) {
      // issue 19: the mixed load side by side, and our scaling curve (bench/mixed.mjs, its own servers)
      log('mixed load (bench/mixed.mjs)…');
      const code = await child('mixed.mjs', ['--processes', '1,2,4', '--replica']);
      notes.push(
        code === 0
          ? 'Mixed load (80 % tiles / 15 % WMS / 5 % WFS) vs MapServer + MapCache, and our scaling curve: bench/results/mixed-latest.md (same run).'
          : `Mixed load: bench/mixed.mjs failed (exit ${code}).`,
      );
    }
    if (mode !== 'quick') rows.push(...(await dataScaling(mode === 'scaling' ? [100000, 5000000] : [100000])));
  } finally {
    await stopAll(log);
  }
  const settings = `mode ${mode}; wrk (${env.wrk}, 2 threads; 1 at one connection) at ${CONCS.join(', ')} connections, random paths from each scenario's list (bench/lib/wrk-list.lua); ${ROUNDS} alternating rounds of ${SLOT_MS / 1000} s per server (A/B/A/B; region rows ×3) after a ${WARM_S} s warm-up per server and concurrency; a run is refused when wrk used more than 90% of a core; images compared before timing (a pixel differs beyond ${PIXEL_TOL}/255, scenarios refused above ${pct(MAX_DIFF)}); MapServer under spawn-fcgi with ${WORKERS} workers behind nginx; our server ${process.env.BENCH_PROCESSES ? `with ${process.env.BENCH_PROCESSES} process(es) (BENCH_PROCESSES)` : 'as npm start runs it (one process per core)'}; seed ${SEED}; all on 127.0.0.1`;
  env['load average at end (1/5/15 min)'] = os
    .loadavg()
    .map((v) => v.toFixed(1))
    .join(' / ');
  const md = markdown({ env, mode, rows, notes, settings });
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const label = opt('label');
  const file = path.join(dir, `${env.date.slice(0, 10)}-${mode}${label ? `-${label.replace(/[^\w.-]+/g, '_')}` : ''}.md`);
  writeFileSync(file, md);
  if (!label) writeFileSync(path.join(dir, 'latest.md'), md); // a labelled run (e.g. another branch) leaves latest.md alone
  console.log(md);
  log(
    `results written to ${path.relative(root, file)}${label ? '' : ' and bench/results/latest.md'} (${((Date.now() - t00) / 1000).toFixed(0)} s in all)`,
  );
}

/** Our server (bench layers and styles, own tile folder) and the reference stack on one database, overviews built. */
async function startServers(url) {
  // our server as `npm start` runs it (one process per core) unless BENCH_PROCESSES says otherwise
  const ours = await startOurs({
    root: OURS_ROOT,
    url,
    workDir,
    log,
    layers: ourLayers(),
    tilesDir: path.join(workDir, 'ours-tiles'),
    processes: process.env.BENCH_PROCESSES ?? 'default',
  });
  const ref = await startReference({ url, workDir, workers: WORKERS, log });
  const refNotes = ref.notes.join('; ');
  if (refNotes) log(`reference servers: ${refNotes}`);
  await waitForOverviews(url, log);
  const ctx = {
    url,
    oursPid: ours.pid,
    refNotes,
    ref,
    postmaster: await postmasterPid(url).catch(() => null),
    nginxWorkers: ref.nginxPid ? childrenOf(ref.nginxPid) : [],
  };
  return { ours, ref, A: adapters(ours, ref), ctx };
}

/** A bench script of its own (its servers, its tables), run as a child; its exit code. */
function child(script, args = [], env = {}) {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(root, 'bench', script), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    c.on('close', resolve);
  });
}

/** Downloads vs ogr2ogr (bench/downloads.mjs, its own servers and table): run as a child, its table kept apart. */
async function downloads(url) {
  log('downloads vs ogr2ogr (bench/downloads.mjs)…');
  const code = await child('downloads.mjs', [], { BENCH_DATABASE_URL: url });
  return code === 0
    ? 'Downloads vs ogr2ogr: bench/results/downloads-latest.md (same run, same database).'
    : `Downloads vs ogr2ogr: bench/downloads.mjs failed (exit ${code}).`;
}

/** Cost of WMS region render and of the bulk export as the data grows (other database sizes). */
async function dataScaling(sizes) {
  const rows = [];
  for (const n of sizes) {
    const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
    if (ONLY && !ONLY.test(`scale-${label}-wms-region-2154-parcels`) && !ONLY.test(`scale-${label}-wfs-export-geojson`)) continue;
    const db = await benchDatabase(root, log, `geodata_bench_${label.toLowerCase()}`);
    const prov = await ensureDemoData(root, db.url, { ...DEFAULT_SIZES, parcels: n }, log);
    log(`scaling database ${label}: generation ${prov.seconds.toFixed(0)} s`);
    try {
      const { A, ctx } = await startServers(db.url);
      const wms = {
        id: `scale-${label}-wms-region-2154-parcels`,
        kind: 'wms',
        list: requestList('wms', { scale: 'region', crs: 'EPSG:2154', layers: ['parcels'] }, 200, SEED),
        expect: 'png',
        pixels: 'mapserver',
        concurrencies: [8],
        slotFactor: 3,
      };
      const bulk = {
        id: `scale-${label}-wfs-export-geojson`,
        kind: 'bulk',
        list: [{ format: 'geojson', count: null }],
        expect: 'geojson',
        stream: true,
        bulk: true,
      };
      for (const [s, fn] of [
        [wms, measureWrk],
        [bulk, measureBulk],
      ]) {
        if (ONLY && !ONLY.test(s.id)) continue;
        log(`scenario ${s.id}`);
        rows.push(...(await fn(s, A[s.kind], ctx)));
      }
    } finally {
      await stopAll(log);
    }
  }
  return rows;
}

main().catch(async (e) => {
  log(`failed: ${e.stack || e}`);
  await stopAll(log);
  process.exit(1);
});
