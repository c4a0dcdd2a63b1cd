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
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { requestList, wmsGetMapQuery } from './lib/core.mjs';
import { startOurs, startReference } from './lib/servers.mjs';
import { installSignalHandlers, stopAll } from './lib/procs.mjs';
import { runLoad } from './lib/load.mjs';
import { databaseUrl, numOpt, opt, root } from './lib/cli.mjs';

const N = numOpt('n', 300);
const CONC = numOpt('concurrency', 8);
const only = new RegExp(opt('only', '^wms-(town|street)'));
const url = databaseUrl(['BENCH_DATABASE_URL']);
const SEED = 20260101;
const TICK = 100; // USER_HZ on Linux
const workDir = path.join(root, 'bench', '.work');
mkdirSync(workDir, { recursive: true });
const log = (m) => console.error(`[cpu-split] ${m}`);
installSignalHandlers(log);

/** utime+stime (own) and cutime+cstime (reaped children) of a process, in seconds; null if gone. */
function cpuOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { own: (Number(f[11]) + Number(f[12])) / TICK, reaped: (Number(f[13]) + Number(f[14])) / TICK, ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

const pids = () =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);

/** CPU seconds of the bench cluster's postgres processes (live backends, plus what the postmaster reaped). */
function postgresCpu(postmaster) {
  let t = 0;
  const pm = cpuOf(postmaster);
  if (pm) t += pm.own + pm.reaped;
  for (const pid of pids()) {
    const c = cpuOf(pid);
    if (c && c.ppid === postmaster) t += c.own;
  }
  return t;
}

function groupCpu(list) {
  let t = 0;
  for (const pid of list) {
    const c = cpuOf(pid);
    if (c) t += c.own + c.reaped;
  }
  return t;
}

// the cluster's postmaster (other clusters on the machine are not counted)
const pgClient = new pg.Client({ connectionString: url });
await pgClient.connect();
const dataDir = (await pgClient.query('SHOW data_directory')).rows[0].data_directory;
await pgClient.end();
const postmaster = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
const ours = await startOurs({ root, url, workDir, log });
const ref = await startReference({ url, workDir, workers: 4, log });
// region views read the overviews, which a fresh server may first have to (re)build in the background
const WAIT = numOpt('wait', /region/.test(only.source) ? 30 : 0);
if (WAIT) {
  log(`waiting ${WAIT} s for the overviews`);
  await new Promise((r) => setTimeout(r, WAIT * 1000));
}
const mapservPids = readFileSync(path.join(ref.dir, 'mapserv.pids'), 'utf8').split(/\s+/).filter(Boolean).map(Number);
const nginxPids = pids().filter((p) => comm(p) === 'nginx');

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
          const urls = list.map((r) => `${base}?${wmsGetMapQuery(r)}`);
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
