#!/usr/bin/env node
// The performance lab: `npm run bench [-- --quick | --full | --scaling] [--only REGEX]`.
// See bench/README.md for what each scenario sends and the fairness rules.
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { requestList, distinctTiles, prng, summarise, wmsGetMapQuery as wmsQ } from './lib/core.mjs';
import { benchDatabase, ensureDemoData, DEFAULT_SIZES } from './lib/provision.mjs';
import { startOurs, startReference, memoryOf, resetPeakMemory } from './lib/servers.mjs';
import { installSignalHandlers, stopAll, ensureDebianPackages } from './lib/procs.mjs';
import { runLoad, fetchOnce, makeAgent } from './lib/load.mjs';
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
const CONC = Number(opt('concurrency', 8));
const SLOT_MS = Number(opt('slot', QUICK ? 2 : 5)) * 1000; // per server per round
const ROUNDS = Number(opt('rounds', 2));
const WARM_MS = QUICK ? 800 : 2000;
const WORKERS = Number(opt('workers', Math.max(2, os.cpus().length * 2)));
const OURS_ROOT = path.resolve(opt('ours-root', root)); // benchmark another checkout's build (e.g. a branch)
const ONLY = opt('only') ? new RegExp(opt('only')) : null;
const workDir = path.join(root, 'bench', '.work');
mkdirSync(workDir, { recursive: true });

const t00 = Date.now();
const log = (m) => console.error(`[bench ${((Date.now() - t00) / 1000).toFixed(0).padStart(4)}s] ${m}`);
const Q = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');

// ---------------------------------------------------------------------------------------------
// URL adapters: one abstract request → each server's URL. Same request list for every server.
// ---------------------------------------------------------------------------------------------
const wfsQ = (r) =>
  Q({
    SERVICE: 'WFS',
    VERSION: '2.0.0',
    REQUEST: 'GetFeature',
    TYPENAMES: r.typeName,
    COUNT: r.count,
    OUTPUTFORMAT: 'application/json',
    // GeoJSON without SRSNAME is WGS 84 (RFC 7946): name the native CRS so that every server writes the same coordinates
    SRSNAME: 'urn:ogc:def:crs:EPSG::2154',
    BBOX: [...r.bbox, 'urn:ogc:def:crs:EPSG::2154'].join(','),
  });
const bulkQ = (r) =>
  Q({
    SERVICE: 'WFS',
    VERSION: '2.0.0',
    REQUEST: 'GetFeature',
    TYPENAMES: 'parcels',
    ...(r.count ? { COUNT: r.count } : {}),
    ...(r.format === 'geojson' ? { OUTPUTFORMAT: 'application/json', SRSNAME: 'urn:ogc:def:crs:EPSG::2154' } : {}),
  });
const itemsQ = (r) => Q({ f: 'json', limit: r.limit, bbox: r.bbox.join(',') });
const cswQ = (r) =>
  Q({
    SERVICE: 'CSW',
    VERSION: '2.0.2',
    REQUEST: 'GetRecords',
    TYPENAMES: 'csw:Record',
    ELEMENTSETNAME: 'full',
    RESULTTYPE: 'results',
    CONSTRAINTLANGUAGE: 'CQL_TEXT',
    CONSTRAINT_LANGUAGE_VERSION: '1.1.0',
    CONSTRAINT: `AnyText LIKE '%${r.q}%'`,
  });

function adapters(ours, ref, tileLayout) {
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
      'nginx-static':
        ref.static &&
        tileLayout &&
        ((t) => `${ref.static.base}/${t.layer}/${t.z}/${t.x}/${tileLayout === 'inv' ? 2 ** t.z - 1 - t.y : t.y}.png`),
    },
    csw: { ours: (r) => `${ours.base}/csw?${cswQ(r)}` },
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------
function scenarios(tileSets) {
  const list = [];
  const add = (s) => (!ONLY || ONLY.test(s.id)) && list.push(s);
  for (const [format, expect] of [
    ['geojson', 'geojson'],
    ['gml', 'gml'],
  ]) {
    if (QUICK && format === 'gml') continue;
    const count = QUICK ? 200000 : null;
    add({
      id: `wfs-export-${format}`,
      title: `WFS bulk export of ${count ? `${count / 1000}k` : 'all 1M'} parcels, ${format === 'gml' ? 'GML 3.2' : 'GeoJSON'}`,
      kind: 'bulk',
      list: [{ format, count }],
      expect,
      stream: true,
      bulk: true,
    });
  }
  for (const crs of ['EPSG:2154', 'EPSG:3857']) {
    for (const scale of ['region', 'town', 'street']) {
      for (const layers of [['parcels'], ['parcels', 'roads', 'pois']]) {
        const id = `wms-${scale}-${crs.slice(5)}-${layers.length > 1 ? 'all' : 'parcels'}`;
        // region renders take seconds each: quick mode keeps two of the four
        if (QUICK && scale === 'region' && id !== 'wms-region-2154-parcels' && id !== 'wms-region-3857-all') continue;
        add({
          id,
          title: `WMS GetMap 256² PNG, ${scale} scale, ${crs}, ${layers.join('+')}`,
          kind: 'wms',
          list: requestList('wms', { scale, crs, layers }, 500, SEED),
          expect: 'png',
        });
      }
    }
  }
  add({
    id: 'wfs-page-geojson',
    title: 'WFS GetFeature GeoJSON COUNT=1000, random town-scale bbox',
    kind: 'wfs-page',
    list: requestList('wfs-page', { count: 1000 }, 500, SEED),
    expect: 'geojson',
  });
  add({
    id: 'ogcapi-items',
    title: 'OGC API Features items, limit=100, random town-scale bbox',
    kind: 'items',
    list: requestList('items', { limit: 100 }, 500, SEED),
    expect: 'geojson',
  });
  add({
    id: 'tiles-same',
    title: 'Cached tile, always the same one',
    kind: 'tile',
    list: [tileSets.seeded[0]],
    expect: 'png',
    tiles: true,
  });
  const rnd = prng(SEED + 7);
  add({
    id: 'tiles-random',
    title: `Cached tiles, random among ${tileSets.seeded.length} seeded`,
    kind: 'tile',
    list: Array.from({ length: 2000 }, () => tileSets.seeded[Math.floor(rnd() * tileSets.seeded.length)]),
    expect: 'png',
    tiles: true,
  });
  add({
    id: 'tiles-cold',
    title: 'Cold tiles (each requested once, zoom 15–17)',
    kind: 'tile',
    list: tileSets.cold,
    expect: 'png',
    once: true,
    cold: true,
    servers: ['ours', 'mapcache'],
  });
  add({
    id: 'csw-getrecords',
    title: "CSW GetRecords full-text (AnyText LIKE '%word%')",
    kind: 'csw',
    list: requestList('csw', {}, 100, SEED),
    expect: 'xml',
  });
  if (!QUICK) {
    for (const c of [1, 4, 16, 64]) {
      add({
        id: `wms-town-2154-parcels-c${c}`,
        title: `WMS town scale, EPSG:2154, parcels, concurrency ${c}`,
        kind: 'wms',
        list: requestList('wms', { scale: 'town', crs: 'EPSG:2154', layers: ['parcels'] }, 500, SEED),
        expect: 'png',
        concurrency: c,
      });
      add({
        id: `wfs-page-geojson-c${c}`,
        title: `WFS GeoJSON page, concurrency ${c}`,
        kind: 'wfs-page',
        list: requestList('wfs-page', { count: 1000 }, 500, SEED),
        expect: 'geojson',
        concurrency: c,
      });
    }
  }
  return list;
}

/** Is the scenario's service implemented by our server? Probe with the first request of the list. */
async function probeOurs(url) {
  const r = await fetchOnce(url, { timeoutMs: 1800000, stream: true }); // head and tail only: a bulk export is not buffered
  const txt = r.body ? r.body.subarray(0, 2000).toString('utf8') : '';
  if (r.status === 501 || r.status === 404 || /OperationNotSupported/.test(txt)) {
    const m = txt.match(/<ows:ExceptionText>([^<]*)|"(?:detail|title|message)"\s*:\s*"([^"]*)"/);
    return { implemented: false, note: `HTTP ${r.status}${m ? `: ${(m[1] || m[2]).slice(0, 80)}` : ''}` };
  }
  return { implemented: true };
}

async function measure(s, targets, ctx) {
  const rows = [];
  const servers = Object.entries(targets).filter(([name]) => !s.servers || s.servers.includes(name));
  const active = [];
  for (const [name, toUrl] of servers) {
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
    active.push({ name, urls: s.list.map(toUrl), samples: [], wall: 0, cpu: [] });
  }
  if (active.length === 0) return rows;
  const conc = s.concurrency ?? (s.bulk ? 1 : CONC);
  const common = { expect: s.expect, concurrency: conc, stream: !!s.stream, timeoutMs: s.bulk ? 1800000 : 120000 };
  // warm-up (not measured): connections, caches, JIT
  if (!s.bulk && !s.cold)
    for (const a of active) await runLoad({ ...common, urls: a.urls, durationMs: WARM_MS, maxRequests: Math.max(conc, 1) * 20 });
  const rounds = s.cold ? 1 : s.bulk ? (QUICK ? 1 : ROUNDS) : ROUNDS;
  for (let round = 0; round < rounds; round++) {
    for (const a of active) {
      // bulk: reset the kernel's peak-RSS counter first, so that VmHWM afterwards is this export's peak
      const before = a.name === 'ours' ? (s.bulk ? resetPeakMemory(ctx.oursPid) : memoryOf(ctx.oursPid)) : null;
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
        const after = memoryOf(ctx.oursPid);
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
async function seedTiles(tiles, targets, log) {
  for (const [name, toUrl] of Object.entries(targets)) {
    if (!toUrl || name === 'nginx-static') continue;
    const urls = tiles.map(toUrl);
    const p = name === 'ours' ? await probeOurs(urls[0]) : { implemented: true };
    if (!p.implemented) continue;
    const t0 = Date.now();
    const r = await runLoad({ urls, expect: 'png', concurrency: 4, durationMs: 600000, once: true, timeoutMs: 120000 });
    const errs = r.samples.filter((x) => x.error).length;
    log(
      `seeded ${tiles.length} tiles on ${name} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(tiles.length / ((Date.now() - t0) / 1000)).toFixed(1)} tiles/s, ${errs} errors)`,
    );
  }
}

async function main() {
  installSignalHandlers(log);
  const notes = [];
  const missing = ensureDebianPackages(
    ['cgi-mapserver', 'mapserver-bin', 'spawn-fcgi', 'nginx', 'mapcache-cgi', 'mapcache-tools', 'fonts-dejavu-core'],
    log,
  );
  if (missing.length)
    notes.push(
      `Debian packages missing (not root?): ${missing.join(', ')} — the corresponding reference servers are reported unavailable.`,
    );
  const db = await benchDatabase(root, log);
  const prov = await ensureDemoData(root, db.url, DEFAULT_SIZES, log);
  notes.push(
    `Bench database: ${DEFAULT_SIZES.parcels.toLocaleString('en')} parcels, ${DEFAULT_SIZES.roads} roads, ${DEFAULT_SIZES.pois} pois, ${DEFAULT_SIZES.communes} communes (seed ${DEFAULT_SIZES.seed}); generation took ${prov.seconds.toFixed(0)} s${prov.generated ? ' (this run)' : ' (when first built; reused)'}.`,
  );
  const env = await environment(db.url);
  const rows = [];
  try {
    const ours = await startOurs({ root: OURS_ROOT, url: db.url, workDir, log });
    const ref = await startReference({ url: db.url, workDir, workers: WORKERS, log });
    const refNotes = ref.notes.join('; ');
    if (refNotes) notes.push(`Reference servers: ${refNotes}`);
    // tiles: seeded set (zoom 13–15 around the towns) and a cold set (zoom 15–17), disjoint
    const seeded = distinctTiles(requestList('tile', { layer: 'parcels', zooms: [13, 14, 15] }, QUICK ? 150 : 400, SEED));
    const seenKey = new Set(seeded.map((t) => `${t.z}/${t.x}/${t.y}`));
    const cold = distinctTiles(requestList('tile', { layer: 'parcels', zooms: [15, 16, 17], spread: 'town' }, 3000, SEED + 1)).filter(
      (t) => !seenKey.has(`${t.z}/${t.x}/${t.y}`),
    );
    let A = adapters(ours, ref, null);
    const ctx = { oursPid: ours.pid, refNotes };
    const all = scenarios({ seeded, cold });
    // the bulk exports run first, on a server that has rendered nothing yet: their memory figures are
    // then the export's own, not the tile cache's (its memory tier holds up to tiles.memoryBytes)
    const runScenario = async (s) => {
      log(`scenario ${s.id}: ${s.title}`);
      try {
        rows.push(...(await measure(s, A[s.kind], ctx)));
      } catch (e) {
        log(`  ${s.id} failed: ${e.stack || e}`);
        rows.push({ scenario: s.id, server: '(harness)', status: 'unavailable', note: `harness error: ${e.message}` });
      }
    };
    for (const s of all.filter((x) => x.bulk)) await runScenario(s);
    const wantTiles = !ONLY || ['tiles-same', 'tiles-random', 'tiles-cold'].some((id) => ONLY.test(id));
    if (wantTiles) await seedTiles(seeded, A.tile, log);
    // the static copy is MapCache's own disk cache, served by nginx: find its y layout
    let layout = null;
    if (ref.dir && wantTiles) {
      const t = seeded[0];
      if (existsSync(path.join(ref.dir, 'tiles', t.layer, String(t.z), String(t.x), `${t.y}.png`))) layout = 'xyz';
      else if (existsSync(path.join(ref.dir, 'tiles', t.layer, String(t.z), String(t.x), `${2 ** t.z - 1 - t.y}.png`))) layout = 'inv';
      if (!layout) notes.push('MapCache wrote no tile files: nginx static scenarios unavailable.');
    }
    A = adapters(ours, ref, layout);
    for (const s of all.filter((x) => !x.bulk)) await runScenario(s);
    if (mode !== 'quick') {
      await stopAll(log);
      rows.push(...(await dataScaling(mode === 'scaling' ? [100000, 5000000] : [100000])));
    }
  } finally {
    await stopAll(log);
  }
  const settings = `mode ${mode}; concurrency ${CONC} (unless stated); ${ROUNDS} alternating rounds of ${SLOT_MS / 1000} s per server (A/B/A/B) after a ${WARM_MS / 1000} s warm-up; MapServer under spawn-fcgi with ${WORKERS} workers behind nginx; seed ${SEED}; all on 127.0.0.1`;
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

/** Cost of WMS region render and of the bulk export as the data grows (other database sizes). */
async function dataScaling(sizes) {
  const rows = [];
  for (const n of sizes) {
    const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
    const db = await benchDatabase(root, log, `geodata_bench_${label.toLowerCase()}`);
    const prov = await ensureDemoData(root, db.url, { ...DEFAULT_SIZES, parcels: n }, log);
    log(`scaling database ${label}: generation ${prov.seconds.toFixed(0)} s`);
    try {
      const ours = await startOurs({ root: OURS_ROOT, url: db.url, workDir, log });
      const ref = await startReference({ url: db.url, workDir, workers: WORKERS, log });
      const A = adapters(ours, ref, null);
      const ctx = { oursPid: ours.pid, refNotes: ref.notes.join('; ') };
      const list = [
        {
          id: `scale-${label}-wms-region-2154-parcels`,
          kind: 'wms',
          list: requestList('wms', { scale: 'region', crs: 'EPSG:2154', layers: ['parcels'] }, 200, SEED),
          expect: 'png',
          concurrency: 4,
        },
        {
          id: `scale-${label}-wfs-export-geojson`,
          kind: 'bulk',
          list: [{ format: 'geojson', count: null }],
          expect: 'geojson',
          stream: true,
          bulk: true,
        },
      ];
      for (const s of list) {
        if (ONLY && !ONLY.test(s.id)) continue;
        log(`scenario ${s.id}`);
        rows.push(...(await measure(s, A[s.kind], ctx)));
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
