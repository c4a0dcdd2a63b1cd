// Starting the servers under test: ours (production mode), MapServer 8 under FastCGI behind nginx,
// MapCache (FastCGI) behind the same nginx, nginx serving static tiles. Loopback only.
import { mkdirSync, writeFileSync, rmSync, readFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { spawnSync, spawn } from 'node:child_process';
import pg from 'pg';
import { spawnLogged, trackPidFile, freePort, waitFor, which, track, stopping } from './procs.mjs';
import { treeOf } from './cpu.mjs';
import { mapfile, fontset, msConfig, mapcacheXml, nginxConf } from './mapfile.mjs';

async function httpOk(url) {
  const r = await fetch(url);
  await r.arrayBuffer();
  return r.status < 500;
}

/**
 * Our built server (dist/) in production mode on a free loopback port, with the database `url`.
 * `name` names its config and log files in `workDir` (so that two can run side by side);
 * `extraConfig` holds further top-level sections of the configuration (overviews, tiles…).
 */
export async function startOurs({
  root,
  url,
  workDir,
  log,
  layers = null,
  tilesDir = null,
  name = 'ours',
  extraConfig = {},
  processes = process.env.BENCH_PROCESSES ?? '1',
  emptyTiles = true,
}) {
  const port = await freePort();
  const cfgFile = path.join(workDir, `${name}.yaml`);
  // the default configuration, except: raised limits for the bulk export, and (when given) the bench
  // layers with the styles generated from lib/symbology.mjs and a tile cache folder of the run's own
  // (emptied first, so that the only tiles in it are those the bench warms)
  const cfg = {
    server: { port, host: '127.0.0.1' },
    database: { poolSize: 16, statementTimeoutMs: 600000 },
    limits: { maxFeatures: 100000000 },
    demo: { autoload: false },
  };
  Object.assign(cfg, extraConfig, { database: { ...cfg.database, ...extraConfig.database } });
  if (layers) cfg.layers = layers;
  if (tilesDir) {
    if (emptyTiles) rmSync(tilesDir, { recursive: true, force: true });
    mkdirSync(tilesDir, { recursive: true });
    cfg.tiles = { diskDir: tilesDir };
  }
  writeFileSync(cfgFile, `${JSON.stringify(cfg, null, 2)}\n`); // JSON is YAML
  const env = {
    ...process.env,
    DATABASE_URL: url,
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    GEODATA_CONFIG: cfgFile,
    PROCESSES: String(processes),
  };
  // one process unless asked (BENCH_PROCESSES, or `processes`); 'default': the server's own default,
  // one per core (a PROCESSES inherited from the caller's environment is dropped too)
  if (processes === 'default') delete env.PROCESSES;
  const child = spawnLogged('geodata-server', process.execPath, [path.join(root, 'dist/src/main.js'), 'serve'], {
    env,
    logFile: path.join(workDir, `${name}.log`),
    cwd: root,
  });
  const base = `http://127.0.0.1:${port}`;
  let exited = null;
  let ready = false;
  child.on('exit', (code, sig) => {
    exited = `exit ${code ?? sig}`;
    // a server that stops during the run is a finding, not a harness error: say so where it happens
    if (ready)
      log(
        `our server (pid ${child.pid}) stopped during the run: ${code !== null ? `exit code ${code}` : `signal ${sig}`}; see ${path.join(workDir, `${name}.log`)}`,
      );
  });
  await waitFor(
    async () => {
      if (exited) throw new Error(`it stopped (${exited}); see ${path.join(workDir, `${name}.log`)}`);
      return httpOk(`${base}/`);
    },
    60000,
    `our server (${name})`,
  );
  ready = true;
  log(`our server: ${base} (pid ${child.pid})`);
  return { base, pid: child.pid, cfgFile, env };
}

/**
 * Wait until the server's background overview builds are done (region renders read them; a build
 * running during a measurement would load the machine): every table over `minRows` rows has a build
 * recorded, and no statement of the overview schema runs, twice in a row.
 */
export async function waitForOverviews(url, log, { minRows = 100000, timeoutMs = 1200000, schema = 'geodata_overview' } = {}) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const t0 = Date.now();
  try {
    const big = (
      await c.query(
        `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples > $1`,
        [minRows],
      )
    ).rows.map((r) => r.t);
    if (!big.length) return;
    let quiet = 0;
    let said = false;
    while (Date.now() - t0 < timeoutMs) {
      const built = await c
        .query(`SELECT DISTINCT source FROM ${schema}.builds WHERE source = ANY($1)`, [big])
        .then((r) => r.rowCount)
        .catch(() => 0);
      const busy = (
        await c.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
           AND pid <> pg_backend_pid() AND query ILIKE $1`,
          [`%${schema}%`],
        )
      ).rows[0].n;
      quiet = built === big.length && busy === 0 ? quiet + 1 : 0;
      if (quiet >= 2) {
        if (said) log(`overviews ready after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        return;
      }
      if (!said) log(`waiting for our server's overview builds (${big.join(', ')})…`);
      said = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
    log(`overviews not ready after ${timeoutMs / 1000} s: measuring anyway (region rows may include a build)`);
  } finally {
    await c.end();
  }
}

/**
 * Reset a process's peak resident set (Linux: writing 5 to /proc/<pid>/clear_refs sets VmHWM back to the
 * current RSS), then return memoryOf(pid) with reset = whether that worked.
 */
export function resetPeakMemory(pid) {
  let reset = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    reset = true;
  } catch {
    /* not Linux, or not allowed: the peak stays the process's lifetime peak */
  }
  return { ...memoryOf(pid), reset };
}

/**
 * Memory as an operator sees it for a server of several processes (a cluster's primary and its
 * workers; render workers are threads, inside their process's figure): each process's VmRSS and
 * VmHWM (MB) and their sums.
 */
export function memoryOfTree(pid) {
  const procs = treeOf(pid).map((p) => ({ pid: p, ...memoryOf(p) }));
  const sum = (k) => procs.reduce((a, p) => a + (Number.isFinite(p[k]) ? p[k] : 0), 0);
  return { rssMB: sum('rssMB'), hwmMB: sum('hwmMB'), procs };
}

/**
 * Memory of a server that may run several processes, per process as the issue's budget reads it:
 * the largest VmRSS and the largest VmHWM of the tree's processes (MB), their sums and the count.
 */
export function largestProcessMemory(pid) {
  const t = memoryOfTree(pid);
  const max = (k) => t.procs.reduce((a, p) => (Number.isFinite(p[k]) ? Math.max(a, p[k]) : a), 0);
  return { rssMB: max('rssMB'), hwmMB: max('hwmMB'), sumRssMB: t.rssMB, processes: t.procs.length };
}

/** resetPeakMemory for every process of a server's tree; largestProcessMemory afterwards. */
export function resetPeakMemoryTree(pid) {
  const reset = treeOf(pid).map((p) => resetPeakMemory(p).reset);
  return { ...largestProcessMemory(pid), reset: reset.length > 0 && reset.every(Boolean) };
}

/** Peak resident set (VmHWM) and current RSS (VmRSS) of a process, in MB. */
export function memoryOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || NaN);
    return { hwmMB: kb('VmHWM') / 1024, rssMB: kb('VmRSS') / 1024 };
  } catch {
    return { hwmMB: NaN, rssMB: NaN };
  }
}

/**
 * MapServer (spawn-fcgi, several workers) + MapCache (spawn-fcgi) + nginx in front of both and
 * serving the tile directory as static files. Returns what is available and why not otherwise.
 */
export async function startReference({ url, workDir, workers, log }) {
  const out = { mapserver: null, mapcache: null, static: null, notes: [] };
  const mapserv = existsSync('/usr/lib/cgi-bin/mapserv') ? '/usr/lib/cgi-bin/mapserv' : null;
  const mapcache = existsSync('/usr/lib/cgi-bin/mapcache') ? '/usr/lib/cgi-bin/mapcache' : null;
  if (!which('nginx') || !which('spawn-fcgi')) {
    out.notes.push('nginx or spawn-fcgi missing: no reference servers');
    return out;
  }
  const dir = path.join(workDir, 'ref');
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['tiles', 'locks', 'nginx-tmp']) mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, 'bench.map'), mapfile({ url, dir }));
  writeFileSync(path.join(dir, 'fonts.txt'), fontset());
  writeFileSync(path.join(dir, 'mapserver.conf'), msConfig({ dir }));
  const [msPort, mcPort, ngPort] = [await freePort(), await freePort(), await freePort()];
  const base = `http://127.0.0.1:${ngPort}`;
  writeFileSync(
    path.join(dir, 'mapcache.xml'),
    mapcacheXml({ dir, mapservUrl: `${base}/mapserv?MAP=bench`, layers: ['parcels', 'roads', 'pois'] }),
  );
  writeFileSync(path.join(dir, 'nginx.conf'), nginxConf({ dir, port: ngPort, mapservPort: msPort, mapcachePort: mcPort, workers: 2 }));

  const msEnv = {
    ...process.env,
    MAPSERVER_CONFIG_FILE: path.join(dir, 'mapserver.conf'),
    MS_MAPFILE: path.join(dir, 'bench.map'),
    MS_ERRORFILE: 'stderr',
  };
  if (mapserv) {
    const r = spawnSync(
      'spawn-fcgi',
      ['-a', '127.0.0.1', '-p', String(msPort), '-F', String(workers), '-P', path.join(dir, 'mapserv.pids'), '--', mapserv],
      { env: msEnv, encoding: 'utf8' },
    );
    const pids = trackPidFile('mapserv', path.join(dir, 'mapserv.pids'));
    out.mapservPids = pids;
    if (r.status !== 0 || pids.length === 0) out.notes.push(`spawn-fcgi mapserv failed: ${(r.stderr || '').trim()}`);
  } else out.notes.push('MapServer (cgi-mapserver) not installed');
  if (mapcache) {
    const r = spawnSync(
      'spawn-fcgi',
      [
        '-a',
        '127.0.0.1',
        '-p',
        String(mcPort),
        '-F',
        String(Math.max(2, Math.ceil(workers / 2))),
        '-P',
        path.join(dir, 'mapcache.pids'),
        '--',
        mapcache,
      ],
      { env: { ...process.env, MAPCACHE_CONFIG_FILE: path.join(dir, 'mapcache.xml') }, encoding: 'utf8' },
    );
    const pids = trackPidFile('mapcache', path.join(dir, 'mapcache.pids'));
    out.mapcachePids = pids;
    if (r.status !== 0 || pids.length === 0) out.notes.push(`spawn-fcgi mapcache failed: ${(r.stderr || '').trim()}`);
  } else out.notes.push('MapCache (mapcache-cgi) not installed');
  const ng = spawnLogged('nginx', 'nginx', ['-c', path.join(dir, 'nginx.conf')], { logFile: path.join(dir, 'nginx.out') });
  await waitFor(() => httpOk(`${base}/static/`).catch(() => false) || true, 15000, 'nginx');
  await waitFor(async () => (await fetch(`${base}/static/none.png`)).status === 404, 15000, 'nginx');
  log(`nginx: ${base} (pid ${ng.pid}) fronting mapserv ×${workers} and mapcache`);
  out.static = { base: `${base}/static` };
  out.nginxPid = ng.pid;
  if (mapserv) {
    const probe = await fetch(`${base}/mapserv?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0`);
    const txt = await probe.text();
    if (probe.ok && /WMS_Capabilities/.test(txt)) out.mapserver = { base: `${base}/mapserv`, ogcapi: `${base}/mapserv/bench/ogcapi` };
    else
      out.notes.push(
        `MapServer does not answer GetCapabilities: HTTP ${probe.status} ${txt
          .replace(/<[^>]*>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 400)}`,
      );
  }
  if (mapcache) {
    const probe = await fetch(`${base}/mapcache/wmts?SERVICE=WMTS&REQUEST=GetCapabilities`).catch((e) => ({
      ok: false,
      status: 0,
      text: async () => e.message,
    }));
    const txt = await probe.text();
    if (probe.ok && /Capabilities/.test(txt)) out.mapcache = { base: `${base}/mapcache` };
    else
      out.notes.push(
        `MapCache does not answer: HTTP ${probe.status} ${txt
          .replace(/<[^>]*>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 400)}`,
      );
  }
  out.dir = dir;
  return out;
}

/**
 * Seed MapCache's disk cache with mapcache_seed (the tool an operator uses): `extents` (EPSG:3857
 * boxes) at zooms zmin–zmax, whole metatiles. Returns { seconds, tiles (the files now on disk, as
 * {layer,z,x,y} with y from the top), bytes }.
 */
export async function seedMapcache({ ref, layer, extents, zmin, zmax, threads = 2, log }) {
  if (!which('mapcache_seed')) throw new Error('mapcache_seed not found (Debian package mapcache-tools)');
  const t0 = Date.now();
  for (const e of extents) {
    const args = ['-c', path.join(ref.dir, 'mapcache.xml'), '-t', layer, '-g', 'GoogleMapsCompatible', '-z', `${zmin},${zmax}`];
    args.push('-e', e.map((v) => v.toFixed(2)).join(','), '-n', String(threads), '-q', '-P', '0');
    const r = await new Promise((resolve) => {
      const c = spawn('mapcache_seed', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      track('mapcache_seed', c.pid);
      let err = '';
      c.stdout.on('data', () => {});
      c.stderr.on('data', (d) => (err += d));
      c.on('error', (e) => resolve({ code: -1, err: e.message }));
      c.on('close', (code) => resolve({ code, err }));
    });
    if (r.code !== 0) throw new Error(`mapcache_seed failed (exit ${r.code}): ${r.err.trim().slice(-400)}`);
  }
  const seconds = (Date.now() - t0) / 1000;
  const tiles = listMapcacheTiles(ref.dir, layer);
  log(
    `mapcache_seed: ${tiles.length} ${layer} tiles (z${zmin}–${zmax}) in ${seconds.toFixed(1)} s (${(tiles.length / seconds).toFixed(1)} tiles/s)`,
  );
  return { seconds, tiles, bytes: tiles.reduce((a, t) => a + t.bytes, 0) };
}

/**
 * Tiles in MapCache's disk cache (template {tileset}/{z}/{x}/{inv_y}.png). MapCache counts y from the
 * bottom (TMS) internally, so {inv_y} is the XYZ row (from the top) that the gmaps service and our
 * /tiles/{z}/{x}/{y} use.
 */
export function listMapcacheTiles(dir, layer) {
  const out = [];
  const base = path.join(dir, 'tiles', layer);
  if (!existsSync(base)) return out;
  for (const z of readdirSync(base)) {
    for (const x of readdirSync(path.join(base, z))) {
      for (const f of readdirSync(path.join(base, z, x))) {
        const m = f.match(/^(\d+)\.png$/);
        if (!m) continue;
        const zz = Number(z);
        out.push({ layer, z: zz, x: Number(x), y: Number(m[1]), bytes: statSync(path.join(base, z, x, f)).size });
      }
    }
  }
  return out.sort((a, b) => a.z - b.z || a.x - b.x || a.y - b.y);
}

/**
 * Seed our tile cache with our own command (`geodata seed`), box by box (lon/lat boxes), zooms
 * zmin–zmax, `concurrency` metatiles at a time, with the running server's configuration (same tile
 * folder). Returns { seconds (seeding only, the command's own figure: process start-up excluded),
 * tiles, metatiles }.
 */
export async function seedOurs({ root, ours, layer, boxes, zmin, zmax, concurrency = 2, workDir }) {
  let seconds = 0;
  let tiles = 0;
  let metatiles = 0;
  for (const [i, b] of boxes.entries()) {
    const args = [path.join(root, 'dist/src/main.js'), 'seed', '--config', ours.cfgFile, '--layer', layer, '--zoom', `${zmin}-${zmax}`];
    args.push('--bbox', b.map((v) => v.toFixed(6)).join(','), '--concurrency', String(concurrency));
    args.push('--progress-file', path.join(workDir, `seed-progress-${process.pid}-${i}.json`));
    const r = await new Promise((resolve) => {
      const c = spawn(process.execPath, args, { env: { ...ours.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
      track('geodata-seed', c.pid);
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('error', (e) => resolve({ code: -1, out, err: e.message }));
      c.on('close', (code) => resolve({ code, out, err }));
    });
    rmSync(path.join(workDir, `seed-progress-${process.pid}-${i}.json`), { force: true });
    const line = r.out
      .split('\n')
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return null;
        }
      })
      .find((j) => j && j.msg === 'seeding finished');
    if (r.code !== 0 || !line) throw new Error(`geodata seed failed (exit ${r.code}): ${(r.err + r.out).trim().slice(-400)}`);
    seconds += line.seconds;
    tiles += line.tiles;
    metatiles += line.metatiles;
  }
  return { seconds, tiles, metatiles };
}
