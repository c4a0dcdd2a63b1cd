#!/usr/bin/env node
// Mixed load (issue 19): the traffic a regional platform sees, on one machine, client included —
// 80 % cached XYZ tiles (random over zoom 10–16 of the whole region, pre-seeded in both caches),
// 15 % WMS GetMap (town and street scale, EPSG:2154 and EPSG:3857, parcels alone and with every
// layer), 5 % WFS GetFeature pages (COUNT=1000, town-scale box, GeoJSON and GML 3.2) — against our
// server and, side by side on the same database and symbology, MapServer (FastCGI) + MapCache behind
// nginx (bench/lib/servers.mjs). wrk (C) drives both with the same request list.
//
//   npm run build && node bench/mixed.mjs [--seconds 300] [--connections 64] [--sweep 16,32,64,128]
//        [--sweep-seconds 20] [--tiles 2000] [--ours-processes N] [--processes 1,2,4] [--replica] [--quick] [--no-peer]
//
// What it reports (bench/results/<date>-mixed.md and mixed-latest.md):
//  - the sustained run: `--seconds` at `--connections` for each server in turn (ours — as `npm start`
//    runs it, one process per core unless `--ours-processes` — then the peer):
//    req/s, p50/p99, errors, the client's CPU (a run in which wrk used more than 90 % of a core is
//    refused), CPU per request by process (server / PostgreSQL / client), our resident memory
//    (every process of the server, sampled each second);
//  - the sweep: each server at each `--sweep` connection count for `--sweep-seconds`; a server's
//    "sustained rate at p99 < 100 ms" is its highest rate among the sweep points with p99 < 100 ms
//    and no error — the figure the issue compares (≥ 2× the peer's);
//  - the scaling curve (`--processes`): our server with server.processes = each value, and with
//    `--replica` once more with the embedded cluster's streaming replica (`cli replica`) in
//    database.replicas, each run at `--connections` for `--sweep-seconds`.
// The request list (one path per line, proportions exact, then drawn at random by wrk) and the tile
// set are the same for both servers; only the URL form differs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flag, numOpt, opt, root } from './lib/cli.mjs';
import { checkResponse, distinctTiles, prng, requestList, wfsPageQuery, wmsGetMapQuery } from './lib/core.mjs';
import { groupCpu, postgresCpu, postmasterPid, treeOf } from './lib/cpu.mjs';
import { runLoad, fetchOnce } from './lib/load.mjs';
import { comparePng } from './lib/pixels.mjs';
import { ensureDebianPackages, installSignalHandlers, stopAll } from './lib/procs.mjs';
import { benchDatabase, ensureDemoData, DEFAULT_SIZES } from './lib/provision.mjs';
import { fmt } from './lib/report.mjs';
import { listMapcacheTiles, memoryOfTree, startOurs, startReference, waitForOverviews } from './lib/servers.mjs';
import { ourLayers } from './lib/symbology.mjs';
import { runWrk, wrkAvailable } from './lib/wrk.mjs';

const QUICK = flag('quick');
const SECONDS = numOpt('seconds', QUICK ? 30 : 300);
const CONNS = numOpt('connections', 64);
const SWEEP = String(opt('sweep', QUICK ? '' : '16,32,64,128'))
  .split(',')
  .filter(Boolean)
  .map(Number);
const SWEEP_S = numOpt('sweep-seconds', 20);
const N_TILES = numOpt('tiles', QUICK ? 400 : 2000);
const PROCS = String(opt('processes', '')).split(',').filter(Boolean).map(Number);
const REPLICA = flag('replica');
// the demo's data by default (what `npm start` serves: 200,000 parcels and the same roads, pois and
// communes as the bench database); --parcels 1000000 runs on the side-by-side bench's database
const PARCELS = numOpt('parcels', 200000);
const PEER = !flag('no-peer');
// our server as `npm start` runs it: one process per core unless told
const OURS_PROCS = numOpt('ours-processes', os.availableParallelism());
const SEED = numOpt('seed', 20261207);
const WORKERS = numOpt('workers', Math.max(2, os.cpus().length * 2));
const P99_TARGET = 100;
const workDir = path.join(root, 'bench', '.work');
mkdirSync(workDir, { recursive: true });
const t00 = Date.now();
const log = (m) => console.error(`[mixed ${((Date.now() - t00) / 1000).toFixed(0).padStart(4)}s] ${m}`);

// ------------------------------------------------------------------------------------------------
// The request mix: abstract requests, the same for every server
// ------------------------------------------------------------------------------------------------
/** N distinct tiles, zoom uniform over 10–16, position uniform over the region. */
function tileSet(n) {
  const zooms = [10, 11, 12, 13, 14, 15, 16];
  return distinctTiles(requestList('tile', { layer: 'parcels', zooms, spread: 'region' }, Math.ceil(n * 1.5), SEED)).slice(0, n);
}

/** 2,000 entries in the exact proportions 80 / 15 / 5 (wrk then draws among them at random). */
function mix(tiles) {
  const out = [];
  const rnd = prng(SEED);
  for (let i = 0; i < 1600; i++) out.push({ kind: 'tile', r: tiles[Math.floor(rnd() * tiles.length)] });
  const wms = [];
  for (const scale of ['town', 'street'])
    for (const crs of ['EPSG:2154', 'EPSG:3857'])
      for (const layers of [['parcels'], ['parcels', 'roads', 'pois']]) wms.push(...requestList('wms', { scale, crs, layers }, 38, SEED));
  for (let i = 0; i < 300; i++) out.push({ kind: 'wms', r: wms[i % wms.length] });
  const pages = requestList('wfs-page', { count: 1000 }, 100, SEED);
  for (let i = 0; i < 100; i++) out.push({ kind: 'wfs', r: { ...pages[i], format: i % 2 ? 'gml' : 'geojson' } });
  return out;
}

/** Paths (wrk's list is relative to one base) for our server and for the peer behind nginx. */
const PATHS = {
  ours: {
    tile: (t) => `/tiles/${t.layer}/${t.z}/${t.x}/${t.y}.png`,
    wms: (r) => `/wms?${wmsGetMapQuery(r)}`,
    wfs: (r) => `/wfs?${wfsPageQuery(r)}`,
  },
  peer: {
    tile: (t) => `/mapcache/gmaps/${t.layer}@GoogleMapsCompatible/${t.z}/${t.x}/${t.y}.png`,
    wms: (r) => `/mapserv?${wmsGetMapQuery(r)}`,
    wfs: (r) => `/mapserv?${wfsPageQuery(r)}`,
  },
};
const EXPECT = { tile: 'png', wms: 'png', wfs: (r) => (r.format === 'gml' ? 'gml' : 'geojson') };
const pathsFor = (server, list) => list.map((e) => PATHS[server][e.kind](e.r));

// ------------------------------------------------------------------------------------------------
// Servers
// ------------------------------------------------------------------------------------------------
async function warm(base, server, tiles, what) {
  const t0 = Date.now();
  const urls = tiles.map((t) => base + PATHS[server].tile(t));
  const r = await runLoad({ urls, expect: 'png', concurrency: 4, durationMs: 3600000, once: true, timeoutMs: 300000 });
  const errs = r.samples.filter((x) => x.error);
  log(
    `${what}: ${tiles.length} tiles in ${fmt((Date.now() - t0) / 1000)} s${errs.length ? `, ${errs.length} errors (${errs[0].error})` : ''}`,
  );
  return { seconds: (Date.now() - t0) / 1000, errors: errs.length };
}

/** Before timing: a few requests of each kind from each server, checked as a client would; WMS images compared. */
async function precheck(bases, list, notes) {
  const byKind = {};
  for (const e of list) (byKind[e.kind] ??= []).length < 4 && byKind[e.kind].push(e);
  for (const [kind, entries] of Object.entries(byKind))
    for (const e of entries) {
      const answers = {};
      for (const [server, base] of Object.entries(bases)) {
        const res = await fetchOnce(base + PATHS[server][kind](e.r), { timeoutMs: 120000 });
        const expect = typeof EXPECT[kind] === 'function' ? EXPECT[kind](e.r) : EXPECT[kind];
        const bad = await checkResponse(res.status, res.contentType, res.body, expect);
        if (bad) throw new Error(`${server} answers a ${kind} request badly (${bad}): ${PATHS[server][kind](e.r)}`);
        answers[server] = res.body;
      }
      if (kind === 'wms' && answers.peer) {
        const d = await comparePng(answers.ours, answers.peer);
        notes.push(
          `Pixel check, ${PATHS.ours.wms(e.r).slice(0, 90)}…: ${(d.share * 100).toFixed(2)} % of pixels differ (strict ${(d.strict * 100).toFixed(1)} %).`,
        );
      }
    }
}

/**
 * One wrk run with the CPU split and our memory (every process of the server, each second).
 * `ctx.postmasters`: the PostgreSQL clusters the server reads (the primary, and a replica when there is one).
 */
async function timed(server, base, paths, connections, seconds, ctx) {
  const pgCpu = () => ctx.postmasters.reduce((a, pm) => a + postgresCpu(pm), 0);
  const tree = () => (ctx.pid ? treeOf(ctx.pid) : []);
  const serverPids = () => (server === 'ours' ? tree() : ctx.peerPids);
  const cpu0 = { s: groupCpu(serverPids()), pg: pgCpu() };
  let peakMB = 0;
  let peakProcs = [];
  const sampler = setInterval(() => {
    if (server !== 'ours') return;
    const m = memoryOfTree(ctx.pid);
    if (m.rssMB > peakMB) [peakMB, peakProcs] = [m.rssMB, m.procs.map((p) => p.rssMB || 0)];
  }, 1000);
  try {
    const r = await runWrk({ base, paths, connections, seconds, workDir, seed: SEED, timeoutS: 60, countStatus: true });
    const cpu1 = { s: groupCpu(serverPids()), pg: pgCpu() };
    const per = (v) => (r.requests ? (v * 1000) / r.requests : Number.NaN);
    return {
      ...r,
      errorsTotal: r.errors.status + r.errors.socket,
      cpuMs: { server: per(cpu1.s - cpu0.s), postgres: per(cpu1.pg - cpu0.pg), client: per(r.clientCpuS) },
      memMB: server === 'ours' ? { peak: peakMB, perProcess: peakProcs } : null,
    };
  } finally {
    clearInterval(sampler);
  }
}

function row(label, r) {
  const mem = r.memMB ? `${fmt(r.memMB.peak, 0)} MB (${r.memMB.perProcess.map((v) => fmt(v, 0)).join(' + ')})` : '–';
  const cpu = `${fmt(r.cpuMs.server, 2)} / ${fmt(r.cpuMs.postgres, 2)} / ${fmt(r.cpuMs.client, 2)}`;
  const st = Object.entries(r.statuses)
    .filter(([k]) => Number(k) >= 300)
    .map(([k, v]) => `${v}× ${k}`);
  const sock = r.errors.socket ? [`${r.errors.socket} socket/timeout`] : [];
  const ok = r.refused ? `**${r.refused}**` : r.errorsTotal ? `⚠ ${[...st, ...sock].join(', ') || `${r.errorsTotal}`}` : '0';
  return `| ${label} | ${r.connections} | ${fmt(r.seconds, 0)} | ${fmt(r.reqPerSec)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${ok} | ${Math.round(r.clientCore * 100)} % | ${cpu} | ${mem} |`;
}
const HEAD = [
  '| server | connections | s | req/s | p50 ms | p99 ms | max ms | errors | client core | CPU ms/req server / PostgreSQL / client | our RSS peak (per process) |',
  '|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|',
];

async function replicaUrl(primaryUrl) {
  const r = spawnSync(process.execPath, [path.join(root, 'dist/src/main.js'), 'replica'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'warn' },
    encoding: 'utf8',
    timeout: 1800000,
  });
  const m = `${r.stdout}`.match(/- (postgres(?:ql)?:\/\/\S+)/);
  if (r.status !== 0 || !m) throw new Error(`cli replica failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  const u = new URL(m[1]);
  u.pathname = new URL(primaryUrl).pathname; // the bench database on the replica
  return u.toString();
}

async function main() {
  installSignalHandlers(log);
  const notes = [];
  const missing = ensureDebianPackages(
    ['wrk', 'cgi-mapserver', 'mapserver-bin', 'spawn-fcgi', 'nginx', 'mapcache-cgi', 'mapcache-tools', 'fonts-dejavu-core'],
    log,
  );
  if (missing.length) notes.push(`Debian packages missing: ${missing.join(', ')}.`);
  if (!wrkAvailable()) throw new Error('wrk is not installed (Debian package wrk)');
  const db = await benchDatabase(root, log, PARCELS === DEFAULT_SIZES.parcels ? 'geodata_bench' : `geodata_bench_${PARCELS}`);
  await ensureDemoData(root, db.url, { ...DEFAULT_SIZES, parcels: PARCELS }, log);
  const loadStart = os.loadavg();
  const tiles = tileSet(N_TILES);
  const list = mix(tiles);
  const zooms = {};
  for (const t of tiles) zooms[t.z] = (zooms[t.z] ?? 0) + 1;
  notes.push(
    `Database: the demo generator's tables with ${PARCELS.toLocaleString('en')} parcels (seed ${DEFAULT_SIZES.seed}), read by both servers through the same PostgreSQL.`,
  );
  notes.push(
    `Request list: ${list.length} entries, exactly 1,600 cached tiles (drawn among ${tiles.length} distinct parcels tiles, zoom 10–16 uniform, anywhere in the region: ${Object.entries(
      zooms,
    )
      .map(([z, n]) => `z${z} ${n}`)
      .join(
        ', ',
      )}), 300 WMS GetMap 256² PNG (town and street, 2154 and 3857, parcels and parcels+roads+pois), 100 WFS GetFeature COUNT=1000 town boxes (half GeoJSON, half GML 3.2); wrk draws among them at random (seed ${SEED}).`,
  );
  const out = { sustained: [], sweep: [], scaling: [] };
  const tilesDir = path.join(workDir, 'mixed-tiles');
  try {
    // our server on the bench layers and this script's tile folder
    const startMixed = (name, processes, extra = {}) =>
      startOurs({ root, url: db.url, workDir, log, layers: ourLayers(), tilesDir, name, processes, ...extra });
    const ours = await startMixed('mixed-ours', OURS_PROCS);
    const ref = PEER ? await startReference({ url: db.url, workDir, workers: WORKERS, log }) : { notes: ['--no-peer'] };
    if (ref.notes.length) notes.push(`Peer: ${ref.notes.join('; ')}`);
    const peerOk = Boolean(ref.mapserver && ref.mapcache);
    await waitForOverviews(db.url, log);
    const postmaster = await postmasterPid(db.url).catch(() => null);
    const peerBase = peerOk ? ref.static.base.replace(/\/static$/, '') : null;
    // pre-seed both caches with the same tiles: MapCache through its own tile service (it renders
    // the 4×4 metatile through MapServer and stores it), ours through its XYZ endpoint
    if (peerOk) {
      const w = await warm(peerBase, 'peer', tiles, 'MapCache seeded');
      const files = listMapcacheTiles(ref.dir, 'parcels').length;
      notes.push(
        `MapCache seeded through its gmaps service: ${tiles.length} tiles requested in ${fmt(w.seconds)} s (4 connections), ${files} tile files on disk (whole metatiles).`,
      );
    }
    const w = await warm(ours.base, 'ours', tiles, 'our cache warmed');
    notes.push(`Our tile cache warmed through /tiles with the same ${tiles.length} tiles in ${fmt(w.seconds)} s (4 connections).`);
    const bases = { ours: ours.base, ...(peerOk ? { peer: peerBase } : {}) };
    await precheck(bases, list, notes);
    const nginxWorkers = ref.nginxPid ? treeOf(ref.nginxPid) : [];
    const peerPids = [...(ref.mapservPids ?? []), ...(ref.mapcachePids ?? []), ...nginxWorkers];
    const ctx = { pid: ours.pid, postmasters: [postmaster], peerPids };
    const servers = Object.keys(bases);
    const pathLists = Object.fromEntries(servers.map((s) => [s, pathsFor(s, list)]));
    for (const s of servers) await timed(s, bases[s], pathLists[s], CONNS, 5, ctx); // warm-up, not recorded
    for (const c of SWEEP)
      for (const s of servers) {
        log(`sweep: ${s} at ${c} connections, ${SWEEP_S} s`);
        out.sweep.push({ server: s, ...(await timed(s, bases[s], pathLists[s], c, SWEEP_S, ctx)) });
      }
    for (const s of servers) {
      log(`sustained: ${s} at ${CONNS} connections, ${SECONDS} s`);
      out.sustained.push({ server: s, ...(await timed(s, bases[s], pathLists[s], CONNS, SECONDS, ctx)) });
    }
    await stopAll(log);
    // scaling curve: our server alone, N processes, then with a replica
    const runs = PROCS.map((p) => ({ processes: p, replica: false }));
    if (REPLICA) runs.push({ processes: PROCS.at(-1) ?? 2, replica: true });
    let replica = null;
    for (const run of runs) {
      if (run.replica) {
        try {
          replica = await replicaUrl(db.url);
        } catch (e) {
          notes.push(`No replica run: ${e.message}`);
          log(`no replica: ${e.message}`);
          continue;
        }
        log(`replica: ${replica.replace(/:[^:@/]*@/, ':…@')}`);
      }
      const o = await startMixed(`mixed-p${run.processes}`, run.processes, {
        emptyTiles: false,
        extraConfig: run.replica ? { database: { replicas: [replica] } } : {},
      });
      await warm(o.base, 'ours', tiles, `warm (${run.processes} processes)`);
      const p = pathsFor('ours', list);
      // with a replica, its backends' CPU counts as PostgreSQL's too (reads go there)
      const postmasters = [postmaster, ...(run.replica ? [await postmasterPid(replica).catch(() => null)] : [])];
      const c2 = { pid: o.pid, postmasters, peerPids: [] };
      await timed('ours', o.base, p, CONNS, 5, c2);
      log(`scaling: ${run.processes} processes${run.replica ? ' + replica' : ''}, ${SWEEP_S} s`);
      out.scaling.push({ ...run, ...(await timed('ours', o.base, p, CONNS, SWEEP_S, c2)) });
      await stopAll(log);
    }
    if (replica)
      spawnSync(process.execPath, [path.join(root, 'dist/src/main.js'), 'replica', '--remove'], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: '' },
      });
  } finally {
    await stopAll(log);
  }

  // ----------------------------------------------------------------------------------------------
  const label = (s) => (s === 'ours' ? `ours (${OURS_PROCS} process${OURS_PROCS > 1 ? 'es' : ''})` : 'MapServer + MapCache (nginx)');
  const md = [];
  const git = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  md.push(`# Mixed load ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`, '');
  md.push(
    `Commit ${git}; ${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; load average at start ${loadStart.map((v) => v.toFixed(1)).join(' / ')}, at end ${os
      .loadavg()
      .map((v) => v.toFixed(1))
      .join(
        ' / ',
      )}. Client (wrk, 2 threads), servers and PostgreSQL share the same cores. \`node bench/mixed.mjs ${process.argv.slice(2).join(' ')}\`.`,
    '',
  );
  md.push(`## Sustained: ${SECONDS} s at ${CONNS} connections`, '', ...HEAD);
  for (const r of out.sustained) md.push(row(label(r.server), r));
  const best = (s) => {
    const ok = out.sweep.filter((r) => r.server === s && !r.refused && !r.errorsTotal && r.p99 < P99_TARGET);
    return ok.sort((a, b) => b.reqPerSec - a.reqPerSec)[0] ?? null;
  };
  if (out.sweep.length) {
    md.push('', `## Sweep: ${SWEEP_S} s per point`, '', ...HEAD);
    for (const r of out.sweep) md.push(row(label(r.server), r));
    md.push('');
    const b = Object.fromEntries(['ours', 'peer'].map((s) => [s, best(s)]));
    for (const [s, r] of Object.entries(b))
      if (out.sweep.some((x) => x.server === s))
        md.push(
          `- ${label(s)}: highest rate with p99 < ${P99_TARGET} ms and no error: ${r ? `${fmt(r.reqPerSec)} req/s (at ${r.connections} connections, p99 ${fmt(r.p99)} ms)` : 'none of the sweep points'}.`,
        );
    if (b.ours && b.peer) md.push(`- Ratio at p99 < ${P99_TARGET} ms: **${fmt(b.ours.reqPerSec / b.peer.reqPerSec, 2)}×**.`);
  }
  const [o, pr] = ['ours', 'peer'].map((s) => out.sustained.find((r) => r.server === s));
  if (o && pr)
    md.push(
      `- Sustained ratio at ${CONNS} connections: **${fmt(o.reqPerSec / pr.reqPerSec, 2)}×** (p99 ${fmt(o.p99)} vs ${fmt(pr.p99)} ms).`,
    );
  if (out.scaling.length) {
    md.push('', `## Scaling: our server, ${SWEEP_S} s at ${CONNS} connections`, '', ...HEAD);
    for (const r of out.scaling)
      md.push(row(`ours, ${r.processes} process${r.processes > 1 ? 'es' : ''}${r.replica ? ' + replica' : ''}`, r));
  }
  if (notes.length) md.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  md.push('');
  const text = md.join('\n');
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${new Date().toISOString().slice(0, 10)}-mixed${QUICK ? '-quick' : ''}.md`), text);
  writeFileSync(path.join(dir, 'mixed-latest.md'), text);
  console.log(text);
}

main().catch(async (e) => {
  log(`failed: ${e.stack || e}`);
  await stopAll(log);
  process.exit(1);
});
