#!/usr/bin/env node
/**
 * Region-scale GetMap latency through the HTTP server with and without overviews
 * (docs/rasteriser.md): starts the built server (dist/) twice on DATABASE_URL — once with
 * `overviews.enabled: false`, once with the defaults (an up-to-date overview is reused, else
 * built first) — and runs the bench's region request lists at a few concurrencies, A/B alternated.
 *
 *   DATABASE_URL=… node bench/overview-load.mjs [--requests 30] [--concurrency 1,2,4]
 */
import path from 'node:path';
import os from 'node:os';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requestList } from './lib/core.mjs';
import { runLoad } from './lib/load.mjs';
import { spawnLogged, freePort, waitFor, stopAll } from './lib/procs.mjs';

const arg = (k, d) => (process.argv.includes(`--${k}`) ? process.argv[process.argv.indexOf(`--${k}`) + 1] : d);
const n = Number(arg('requests', 30));
const concs = arg('concurrency', '1,2,4').split(',').map(Number);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'ov-load-'));
const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL');

async function start(name, overviews) {
  const port = await freePort();
  const cfg = path.join(dir, `${name}.yaml`);
  writeFileSync(
    cfg,
    `server:\n  port: ${port}\n  host: 127.0.0.1\ndatabase:\n  poolSize: 16\ndemo:\n  autoload: false\noverviews:\n  enabled: ${overviews}\n`,
  );
  spawnLogged(name, process.execPath, [path.join(root, 'dist/src/main.js'), 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      GEODATA_CONFIG: cfg,
    },
    logFile: path.join(dir, `${name}.log`),
    cwd: root,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok, 60000, name);
  return base;
}

const direct = await start('direct', false);
const overview = await start('overview', true);
// wait until the overview is in use (reused at once, or built in the background)
const t0 = Date.now();
await waitFor(
  async () => {
    const r = await fetch(`${overview}/metrics`)
      .then((x) => x.text())
      .catch(() => '');
    return /geodata_overview_ready\{layer="parcels"\} 1/.test(r);
  },
  600000,
  'the overview',
);
console.log(`overview ready ${Date.now() - t0} ms after the server`);
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
for (const crs of ['EPSG:2154', 'EPSG:3857']) {
  for (const layers of [['parcels'], ['parcels', 'roads', 'pois']]) {
    const list = requestList('wms', { scale: 'region', crs, layers }, n, 20260101);
    const q = (b) => (r) =>
      `${b}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=${r.layers.join(',')}&STYLES=&CRS=${r.crs}&BBOX=${r.bbox.join(',')}&WIDTH=256&HEIGHT=256&FORMAT=image/png`;
    for (const c of concs) {
      const out = {};
      for (const [name, base] of [
        ['direct', direct],
        ['overview', overview],
        ['direct', direct],
        ['overview', overview],
      ]) {
        const r = await runLoad({
          urls: list.map(q(base)),
          expect: 'png',
          concurrency: c,
          durationMs: 600000,
          once: true,
          timeoutMs: 120000,
        });
        (out[name] ??= []).push(...r.samples);
      }
      const line = Object.entries(out).map(([k, s]) => {
        const ms = s.map((x) => x.ms).sort((a, b) => a - b);
        return `${k} p50 ${pct(ms, 50).toFixed(0)} p95 ${pct(ms, 95).toFixed(0)} ms (${s.length} req, ${s.filter((x) => x.error).length} errors)`;
      });
      console.log(`${crs} ${layers.join('+')} c=${c}: ${line.join('; ')}`);
    }
  }
}
await stopAll();
rmSync(dir, { recursive: true, force: true });
