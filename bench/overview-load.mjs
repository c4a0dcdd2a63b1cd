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
import { mkdtempSync, rmSync } from 'node:fs';
import { requestList } from './lib/core.mjs';
import { runLoad } from './lib/load.mjs';
import { waitFor, stopAll } from './lib/procs.mjs';
import { startOurs } from './lib/servers.mjs';
import { databaseUrl, opt, numOpt, root } from './lib/cli.mjs';

const n = numOpt('requests', 30);
const concs = opt('concurrency', '1,2,4').split(',').map(Number);
const dir = mkdtempSync(path.join(os.tmpdir(), 'ov-load-'));
const url = databaseUrl();

const start = async (name, overviews) =>
  (await startOurs({ root, url, workDir: dir, log: console.log, name, extraConfig: { overviews: { enabled: overviews } } })).base;

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
