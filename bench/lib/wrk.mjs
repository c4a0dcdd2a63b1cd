// Throughput rows are measured with wrk (C, Debian package `wrk`), not with a Node client: a load
// generator that shares the server's cores must cost far less than the server, and its cost must be
// known. Each run records wrk's own CPU time (user + system, read from /proc/<pid>/stat of the shell
// that waited for it: cutime + cstime are exactly the reaped wrk's), and a run in which wrk used more
// than `maxClientCore` of one core is refused: its figure would measure the client.
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from './procs.mjs';

const LUA = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wrk-list.lua');
const TICK = 100; // USER_HZ (clock ticks per second in /proc) on Linux
export const MAX_CLIENT_CORE = 0.9;
export const REFUSED_CLIENT = 'refused: client saturated a core';

export function wrkAvailable() {
  return !!which('wrk');
}

/** cutime + cstime (reaped children's CPU, seconds) from a /proc/<pid>/stat line. */
export function childCpuFromStat(line) {
  const f = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / TICK;
}

let listCount = 0;

/**
 * One wrk run against `base` (http://host:port) with request paths drawn from `paths`.
 * threads = min(2, connections) (wrk needs at least one connection per thread).
 * Returns { requests, seconds, reqPerSec, bytes, p50, p90, p95, p99, max (ms), errors, statuses,
 * non2xx, clientCpuS, clientCore (CPU seconds per wall second), refused (reason or null), exhausted }.
 */
export async function runWrk({
  base,
  paths,
  connections,
  seconds,
  workDir,
  seed = 1,
  order = 'random',
  countStatus = false,
  timeoutS = 60,
  maxClientCore = MAX_CLIENT_CORE,
}) {
  if (!paths.length) throw new Error('wrk: empty path list');
  mkdirSync(workDir, { recursive: true });
  const list = path.join(workDir, `wrk-paths-${process.pid}-${listCount++}.txt`);
  writeFileSync(list, `${paths.join('\n')}\n`);
  const threads = Math.max(1, Math.min(2, connections));
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', `${timeoutS}s`, '-s', LUA, base];
  // the shell raises its descriptor limit for wrk (1,000 connections), runs it, then prints its own
  // /proc stat: cutime/cstime hold the CPU of the child it has just waited for
  const script =
    'ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null; wrk "$@"; rc=$?; read -r s < /proc/$$/stat; echo "@@STAT $s" >&2; exit $rc';
  const env = {
    ...process.env,
    WRK_PATHS: list,
    WRK_ORDER: order,
    WRK_SEED: String(seed),
    WRK_THREADS: String(threads),
    WRK_STATUS: countStatus ? '1' : '0',
  };
  const t0 = process.hrtime.bigint();
  const { code, stdout, stderr } = await new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', script, 'sh', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  }).finally(() => rmSync(list, { force: true }));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = stdout.match(/^@@WRK (.*)$/m);
  if (code !== 0 || !m) throw new Error(`wrk failed (exit ${code}): ${(stderr.replace(/^@@STAT.*$/m, '') + stdout).trim().slice(0, 400)}`);
  const r = JSON.parse(m[1]);
  const st = stderr.match(/^@@STAT (.*)$/m);
  const clientCpuS = st ? childCpuFromStat(st[1]) : Number.NaN;
  const runSeconds = r.duration_us / 1e6;
  const clientCore = clientCpuS / runSeconds;
  const e = r.errors;
  const statuses = Object.fromEntries(Object.entries(r.statuses).map(([k, v]) => [Number(k), v]));
  const ms = (us) => us / 1000;
  let refused = null;
  if (!(clientCore <= maxClientCore)) refused = `${REFUSED_CLIENT} (wrk used ${Math.round(clientCore * 100)}% of one core)`;
  if (r.exhausted) refused = 'refused: the request list ran out before the end of the run (the rate would be wrong)';
  return {
    requests: r.requests,
    seconds: runSeconds,
    wall,
    reqPerSec: r.requests / runSeconds,
    bytes: r.bytes,
    p50: ms(r.latency_us.p50),
    p90: ms(r.latency_us.p90),
    p95: ms(r.latency_us.p95),
    p99: ms(r.latency_us.p99),
    max: ms(r.latency_us.max),
    mean: ms(r.latency_us.mean),
    errors: { ...e, socket: e.connect + e.read + e.write + e.timeout },
    statuses,
    clientCpuS,
    clientCore,
    refused,
    exhausted: !!r.exhausted,
    connections,
    threads,
  };
}

/**
 * Runs of one server over several rounds, combined: requests and seconds are summed (req/s over
 * the whole), p50 is the median of the rounds' p50s, p95 and p99 the worst round's (wrk gives percentiles
 * per run, not mergeable histograms), the client's CPU share the worst round's.
 */
export function combineRuns(runs) {
  const sum = (k) => runs.reduce((a, r) => a + r[k], 0);
  const med = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
  };
  const requests = sum('requests');
  const seconds = sum('seconds');
  const errors = { status: 0, socket: 0, timeout: 0 };
  const statuses = {};
  for (const r of runs) {
    errors.status += r.errors.status;
    errors.socket += r.errors.socket;
    errors.timeout += r.errors.timeout;
    for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  }
  return {
    requests,
    seconds,
    reqPerSec: requests / seconds,
    bytes: sum('bytes'),
    meanBytes: requests ? sum('bytes') / requests : 0,
    p50: med(runs.map((r) => r.p50)),
    p95: Math.max(...runs.map((r) => r.p95)),
    p99: Math.max(...runs.map((r) => r.p99)),
    errors,
    statuses,
    clientCore: Math.max(...runs.map((r) => r.clientCore)),
    refused: runs.map((r) => r.refused).find(Boolean) ?? null,
    rounds: runs.length,
  };
}
