// Starting the servers under test: ours (production mode), MapServer 8 under FastCGI behind nginx,
// MapCache (FastCGI) behind the same nginx, nginx serving static tiles. Loopback only.
import { mkdirSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { spawnLogged, trackPidFile, freePort, waitFor, which } from './procs.mjs';
import { mapfile, fontset, msConfig, mapcacheXml, nginxConf } from './mapfile.mjs';

async function httpOk(url) {
  const r = await fetch(url);
  await r.arrayBuffer();
  return r.status < 500;
}

/**
 * Our built server (dist/) in production mode on a free loopback port, with the database `url`.
 * `name` names its config and log files in `workDir` (so that two can run side by side); `extraConfig`
 * is YAML appended to the configuration (top-level sections other than server, database, limits, demo).
 */
export async function startOurs({ root, url, workDir, log, name = 'ours', extraConfig = '' }) {
  const port = await freePort();
  const cfgFile = path.join(workDir, `${name}.yaml`);
  // the default configuration publishes every spatial table; only the limits are raised for the bulk export
  writeFileSync(
    cfgFile,
    `server:\n  port: ${port}\n  host: 127.0.0.1\ndatabase:\n  poolSize: 16\n  statementTimeoutMs: 600000\nlimits:\n  maxFeatures: 100000000\ndemo:\n  autoload: false\n${extraConfig}`,
  );
  const env = {
    ...process.env,
    DATABASE_URL: url,
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    GEODATA_CONFIG: cfgFile,
  };
  const child = spawnLogged('geodata-server', process.execPath, [path.join(root, 'dist/src/main.js'), 'serve'], {
    env,
    logFile: path.join(workDir, `${name}.log`),
    cwd: root,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(() => httpOk(`${base}/`), 60000, `our server (${name})`);
  log(`our server (${name}): ${base} (pid ${child.pid})`);
  return { base, pid: child.pid };
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
    if (r.status !== 0 || pids.length === 0) out.notes.push(`spawn-fcgi mapcache failed: ${(r.stderr || '').trim()}`);
  } else out.notes.push('MapCache (mapcache-cgi) not installed');
  const ng = spawnLogged('nginx', 'nginx', ['-c', path.join(dir, 'nginx.conf')], { logFile: path.join(dir, 'nginx.out') });
  await waitFor(() => httpOk(`${base}/static/`).catch(() => false) || true, 15000, 'nginx');
  await waitFor(async () => (await fetch(`${base}/static/none.png`)).status === 404, 15000, 'nginx');
  log(`nginx: ${base} (pid ${ng.pid}) fronting mapserv ×${workers} and mapcache`);
  out.static = { base: `${base}/static` };
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
