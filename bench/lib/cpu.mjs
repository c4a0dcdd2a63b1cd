// CPU time of the processes under test, read from /proc (Linux): the server's own process (all its
// threads), a group of worker processes (MapServer's FastCGI workers, nginx's workers), and the
// PostgreSQL cluster (its live backends plus what the postmaster reaped from ended ones). Used to
// give CPU milliseconds per request by process for each row (server / PostgreSQL / client).
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

const TICK = 100; // USER_HZ on Linux

/** utime+stime (own) and cutime+cstime (reaped children) of a process, in seconds; null if gone. */
export function cpuOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { own: (Number(f[11]) + Number(f[12])) / TICK, reaped: (Number(f[13]) + Number(f[14])) / TICK, ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

export function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export const pids = () =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);

/** Direct children of a process. */
export const childrenOf = (parent) => pids().filter((p) => cpuOf(p)?.ppid === parent);

/** A process and all its descendants (a clustered server: the primary and its worker processes). */
export function treeOf(root) {
  const all = pids().map((p) => [p, cpuOf(p)?.ppid]);
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of all) if (pp === out[i]) out.push(p);
  return out;
}

/** CPU seconds of a cluster's postgres processes (live backends, plus what the postmaster reaped). */
export function postgresCpu(postmaster) {
  if (!postmaster) return Number.NaN;
  let t = 0;
  const pm = cpuOf(postmaster);
  if (pm) t += pm.own + pm.reaped;
  for (const pid of pids()) {
    const c = cpuOf(pid);
    if (c && c.ppid === postmaster) t += c.own;
  }
  return t;
}

/** CPU seconds of a group of processes (own + reaped children). */
export function groupCpu(list) {
  let t = 0;
  for (const pid of list) {
    const c = cpuOf(pid);
    if (c) t += c.own + c.reaped;
  }
  return t;
}

/** PID of the postmaster of the cluster behind a connection URL (null when it is not on this machine). */
export async function postmasterPid(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const dataDir = (await c.query('SHOW data_directory')).rows[0].data_directory;
    return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
  } catch {
    const backend = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    return cpuOf(backend)?.ppid ?? null;
  } finally {
    await c.end();
  }
}
