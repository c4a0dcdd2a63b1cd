#!/usr/bin/env node
/**
 * Export throughput per format: our /downloads/parcels.{ext} against ogr2ogr from the same
 * PostGIS table to the same format, one run each, same machine. Needs `npm run build` and
 * BENCH_DATABASE_URL (the 1,000,000-parcel bench database; nothing in it is modified).
 *
 *   BENCH_DATABASE_URL=postgres://… node bench/downloads.mjs [--formats geojson,csv,…] [--label X]
 *
 * Ours: a fresh `node dist/src/main.js serve` (production mode) per format, so that its peak RSS
 * (VmHWM) is that format's; the body is read to the end over loopback (and kept on disk for the
 * binary formats, to check the feature count with ogrinfo). ogr2ogr: `ogr2ogr -f <driver>` from
 * `PG:` to a file, plus `zip` for the Shapefile (timed apart and included in the ratio).
 * Result: bench/results/downloads-latest.md (and a dated copy).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startOurs, memoryOf } from './lib/servers.mjs';
import { stopAll, installSignalHandlers } from './lib/procs.mjs';
import { fmt } from './lib/report.mjs';
import { databaseUrl, opt, root } from './lib/cli.mjs';

const url = databaseUrl(['BENCH_DATABASE_URL'], 'the 1,000,000-parcel bench database');
const log = (m) => console.log(`[downloads-bench] ${m}`);
installSignalHandlers(log);

const FORMATS = {
  geojson: { name: 'GeoJSON', driver: 'GeoJSON', out: 'parcels.geojson', lco: [] },
  csv: { name: 'CSV (WKT)', driver: 'CSV', out: 'parcels.csv', lco: ['-lco', 'GEOMETRY=AS_WKT'] },
  kml: { name: 'KML (WGS 84)', driver: 'KML', out: 'parcels.kml', lco: [] },
  shp: { name: 'Shapefile ZIP', driver: 'ESRI Shapefile', out: 'shp', lco: ['-lco', 'ENCODING=UTF-8'] },
  gpkg: { name: 'GeoPackage', driver: 'GPKG', out: 'parcels.gpkg', lco: [] },
  // GDAL's XLSX driver writes no geometry: the WKT column is selected explicitly, like ours
  xlsx: { name: 'XLSX (WKT)', driver: 'XLSX', out: 'parcels.xlsx', lco: [], sql: 'SELECT *, ST_AsText(geom) AS wkt FROM public.parcels' },
};
const formats = opt('formats', Object.keys(FORMATS).join(',')).split(',');
const label = opt('label', '');
const work = path.join(root, 'bench', '.work', 'downloads');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

function pgConn(u) {
  const x = new URL(u);
  const kv = {
    host: x.hostname,
    port: x.port || '5432',
    dbname: x.pathname.slice(1),
    user: decodeURIComponent(x.username),
    password: decodeURIComponent(x.password),
  };
  return (
    'PG:' +
    Object.entries(kv)
      .filter(([, v]) => v)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
  );
}

function run(cmd, argv, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} exit ${code}: ${err}`));
      else resolve(s);
    });
  });
}

function sizeOf(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0);
}

/** GET to the end, counting bytes and the marker of a feature for text formats; optionally kept in a file. */
function download(u, { marker, file } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.get(u, { agent: false }, (res) => {
      let ttfb;
      let bytes = 0;
      let count = 0;
      let tail = '';
      const out = file ? createWriteStream(file) : null;
      res.on('data', (c) => {
        ttfb ??= Number(process.hrtime.bigint() - t0) / 1e9;
        bytes += c.length;
        if (marker) {
          const s = tail + c.toString('latin1');
          let i = s.indexOf(marker);
          while (i !== -1) {
            count++;
            i = s.indexOf(marker, i + marker.length);
          }
          tail = marker.length > 1 ? s.slice(-(marker.length - 1)) : '';
        }
        if (out && !out.write(c)) {
          res.pause();
          out.once('drain', () => res.resume());
        }
      });
      res.on('end', () => {
        const done = () =>
          resolve({
            status: res.statusCode,
            type: res.headers['content-type'],
            bytes,
            count,
            ttfb,
            seconds: Number(process.hrtime.bigint() - t0) / 1e9,
          });
        if (out) out.end(done);
        else done();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function ogrCount(p) {
  const r = spawnSync('ogrinfo', ['-ro', '-so', '-al', p], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return [...r.stdout.matchAll(/Feature Count: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

const expected = Number(spawnSync('psql', [url, '-Atc', 'SELECT count(*) FROM public.parcels'], { encoding: 'utf8' }).stdout.trim() || NaN);
log(`parcels in the bench database: ${expected}`);
const MARKERS = { geojson: '"type":"Feature"', csv: '\n', kml: '<Placemark' };

const rows = [];
try {
  for (const f of formats) {
    const F = FORMATS[f];
    if (!F) throw new Error(`unknown format ${f}`);
    // ours: a fresh server per format, so that VmHWM is this export's peak
    const srv = await startOurs({ root, url, workDir: work, log });
    const keep = ['shp', 'gpkg', 'xlsx'].includes(f) ? path.join(work, `ours.${f === 'shp' ? 'zip' : f}`) : undefined;
    log(`${F.name}: ours…`);
    const o = await download(`${srv.base}/downloads/parcels.${f}`, { marker: MARKERS[f], file: keep });
    const mem = memoryOf(srv.pid);
    await stopAll(log);
    let oursCount = f === 'csv' ? o.count - 1 : o.count;
    if (f === 'shp') oursCount = ogrCount(`/vsizip/${keep}`);
    if (f === 'gpkg') oursCount = ogrCount(keep);
    if (f === 'xlsx') oursCount = NaN; // a 1M-row workbook is not re-read here (the tests read XLSX back)
    if (keep) rmSync(keep, { force: true });
    log(`${F.name}: ours ${o.status} ${fmt(o.seconds)} s, ${fmt(o.bytes / 1e6)} MB, ${oursCount} features, VmHWM ${fmt(mem.hwmMB)} MB`);

    // ogr2ogr from the same table to the same format
    const out = path.join(work, F.out);
    const argv = ['-f', F.driver, ...F.lco, out, pgConn(url)];
    if (F.sql) argv.push('-sql', F.sql);
    else argv.push('public.parcels');
    log(`${F.name}: ogr2ogr…`);
    const gSeconds = await run('ogr2ogr', argv);
    let zipSeconds = 0;
    let gBytes = sizeOf(out);
    const gCount = f === 'xlsx' ? NaN : ogrCount(out);
    if (f === 'shp') {
      const zip = path.join(work, 'parcels.zip');
      zipSeconds = await run('zip', ['-q', '-r', '-j', zip, out]);
      gBytes = sizeOf(zip);
      rmSync(zip, { force: true });
    }
    rmSync(out, { recursive: true, force: true });
    const gTotal = gSeconds + zipSeconds;
    log(
      `${F.name}: ogr2ogr ${fmt(gSeconds)} s${zipSeconds ? ` + zip ${fmt(zipSeconds)} s` : ''}, ${fmt(gBytes / 1e6)} MB, ${gCount} features`,
    );
    rows.push({ f, name: F.name, ours: o, oursCount, hwm: mem.hwmMB, gSeconds, zipSeconds, gTotal, gBytes, gCount });
  }
} finally {
  await stopAll(log);
  rmSync(work, { recursive: true, force: true });
}

// ---- report ----------------------------------------------------------------------------------
const gdal = spawnSync('ogr2ogr', ['--version'], { encoding: 'utf8' }).stdout.trim();
const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
const cpu = (os.cpus()[0]?.model ?? '?').trim();
const lines = [
  `# Downloads: our server vs ogr2ogr, ${expected.toLocaleString('en')} parcels`,
  '',
  `${new Date().toISOString()} · commit ${commit}${label ? ` · ${label}` : ''} · ${os.cpus().length} × ${cpu} · Node ${process.version} · ${gdal} · one run per cell, same machine, loopback`,
  '',
  'Ours: `GET /downloads/parcels.{ext}` (whole table, native EPSG:2154; KML in WGS 84) read to the end by a client on the same machine, a fresh server process per format; peak RSS = VmHWM of that process. ogr2ogr: `ogr2ogr -f <driver> <file> PG:… public.parcels` (CSV with `-lco GEOMETRY=AS_WKT`; XLSX with `-sql "SELECT *, ST_AsText(geom) AS wkt …"` since GDAL writes no geometry to XLSX), Shapefile then `zip -r -j` (timed apart, included in the ratio). MB/s = output bytes ÷ seconds. Ratio = ogr2ogr time ÷ our time (> 1: we are faster).',
  '',
  '| format | ours s | ours MB | ours MB/s | ours TTFB s | ours peak RSS MB | ours features | ogr2ogr s | ogr2ogr MB | ogr2ogr MB/s | ogr2ogr features | ratio ogr2ogr ÷ ours |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${fmt(r.ours.seconds)} | ${fmt(r.ours.bytes / 1e6)} | ${fmt(r.ours.bytes / 1e6 / r.ours.seconds)} | ${fmt(r.ours.ttfb, 2)} | ${fmt(r.hwm)} | ${Number.isFinite(r.oursCount) ? r.oursCount : 'not re-read'} | ${fmt(r.gTotal)}${r.zipSeconds ? ` (${fmt(r.gSeconds)} + zip ${fmt(r.zipSeconds)})` : ''} | ${fmt(r.gBytes / 1e6)} | ${fmt(r.gBytes / 1e6 / r.gTotal)} | ${Number.isFinite(r.gCount) ? r.gCount : 'not re-read'} | ${fmt(r.gTotal / r.ours.seconds, 2)} |`,
  ),
  '',
  'Statuses: ' + rows.map((r) => `${r.f} ${r.ours.status}`).join(', ') + '.',
  '',
];
const md = lines.join('\n');
const dir = path.join(root, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'downloads-latest.md'), md);
writeFileSync(path.join(dir, `${new Date().toISOString().slice(0, 10)}-downloads${label ? '-' + label : ''}.md`), md);
console.log(md);
