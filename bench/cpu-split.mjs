#!/usr/bin/env node
/**
 * CPU per request, split by process, ours against MapServer on the same request list: on a
 * machine where client, servers and PostgreSQL share the cores, req/s under load is set by the
 * CPU each request costs in all of them together. For each WMS scenario, sends the same fixed
 * list (--n, default 300) at concurrency 8 to each server and reads /proc before and after:
 *   - ours: the node process (its threads: render workers, libuv pool included);
 *   - mapserver: the mapserv FastCGI workers, and nginx in front of them;
 *   - postgres: every backend of the bench cluster, plus what its postmaster reaped from ended ones;
 *   - client: this process.
 * Linux only. Uses the built code (npm run build) and BENCH_DATABASE_URL.
 *
 *   node bench/cpu-split.mjs [--n 300] [--only REGEX] [--concurrency 8] [--wait SECONDS]
 */
import { readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requestList, wmsGetMapQuery } from './lib/core.mjs';
import { startOurs, startReference } from './lib/servers.mjs';
import { ourLayers } from './lib/symbology.mjs';
import { installSignalHandlers, stopAll } from './lib/procs.mjs';
import { runLoad } from './lib/load.mjs';
import { childrenOf, groupCpu, postgresCpu, postmasterPid } from './lib/cpu.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k, d) => (process.argv.includes(k) ? process.argv[process.argv.indexOf(k) + 1] : d);
const N = Number(arg('--n', 300));
const CONC = Number(arg('--concurrency', 8));
const only = new RegExp(arg('--only', '^wms-(town|street)'));
const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('set BENCH_DATABASE_URL');
const SEED = 20260101;
const workDir = path.join(root, 'bench', '.work');
mkdirSync(workDir, { recursive: true });
const log = (m) => console.error(`[cpu-split] ${m}`);
installSignalHandlers(log);

// the cluster's postmaster (other clusters on the machine are not counted)
const postmaster = await postmasterPid(url);
// the bench layers with the styles the mapfile is generated from (lib/symbology.mjs): the same drawing work
const ours = await startOurs({ root, url, workDir, log, layers: ourLayers(), tilesDir: path.join(workDir, 'ours-tiles') });
const ref = await startReference({ url, workDir, workers: 4, log });
// region views read the overviews, which a fresh server may first have to (re)build in the background
const WAIT = Number(arg('--wait', /region/.test(only.source) ? 30 : 0));
if (WAIT) {
  log(`waiting ${WAIT} s for the overviews`);
  await new Promise((r) => setTimeout(r, WAIT * 1000));
}
const mapservPids = readFileSync(path.join(ref.dir, 'mapserv.pids'), 'utf8').split(/\s+/).filter(Boolean).map(Number);
const nginxPids = ref.nginxPid ? childrenOf(ref.nginxPid) : [];
const wmsQ = wmsGetMapQuery; // the same query for every server (lib/core.mjs)

console.log(`| scenario | server | req/s | CPU ms/req: server | postgres | client | total |`);
console.log(`|---|---|---:|---:|---:|---:|---:|`);
try {
  for (const crs of ['EPSG:2154', 'EPSG:3857']) {
    for (const scale of ['region', 'town', 'street']) {
      for (const layers of [['parcels'], ['parcels', 'roads', 'pois']]) {
        const id = `wms-${scale}-${crs.slice(5)}-${layers.length > 1 ? 'all' : 'parcels'}`;
        if (!only.test(id)) continue;
        const list = requestList('wms', { scale, crs, layers }, N, SEED);
        for (const [name, base, group] of [
          ['ours', `${ours.base}/wms`, () => groupCpu([ours.pid])],
          ['mapserver', ref.mapserver?.base, () => groupCpu(mapservPids) + groupCpu(nginxPids)],
        ]) {
          if (!base) continue;
          const urls = list.map((r) => `${base}?${wmsQ(r)}`);
          await runLoad({ urls: urls.slice(0, 40), expect: 'png', concurrency: CONC, durationMs: 60000, once: true }); // warm-up
          const [s0, p0, c0] = [group(), postgresCpu(postmaster), process.cpuUsage()];
          const r = await runLoad({ urls, expect: 'png', concurrency: CONC, durationMs: 600000, once: true });
          const c = process.cpuUsage(c0);
          const n = r.samples.length;
          const errors = r.samples.filter((x) => x.error).length;
          const ms = (sec) => ((sec * 1000) / n).toFixed(1);
          const server = group() - s0;
          const pgs = postgresCpu(postmaster) - p0;
          const client = (c.user + c.system) / 1e6;
          console.log(
            `| ${id} | ${name} | ${(n / r.wall).toFixed(1)} | ${ms(server)} | ${ms(pgs)} | ${ms(client)} | ${ms(server + pgs + client)} |${errors ? ` ${errors} errors` : ''}`,
          );
        }
      }
    }
  }
} finally {
  await stopAll(log);
}
