// Child processes of the benchmark: started here, recorded by PID, stopped by PID at the end
// (also on Ctrl-C and on errors). Nothing is killed by name.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, openSync } from 'node:fs';
import net from 'node:net';

const children = []; // { name, pid }
/** PIDs the harness is stopping (their exit is expected). */
export const stopping = new Set();

export function track(name, pid) {
  if (pid) children.push({ name, pid });
}

export function spawnLogged(name, cmd, args, { env, logFile, cwd } = {}) {
  const fd = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: ['ignore', fd, fd], detached: false });
  track(name, child.pid);
  child.on('error', () => {});
  return child;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function stopAll(log = () => {}) {
  const list = children.splice(0).reverse();
  for (const c of list) stopping.add(c.pid);
  for (const c of list) {
    if (alive(c.pid)) {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {}
    }
  }
  const deadline = Date.now() + 3000;
  for (const c of list) {
    while (alive(c.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(c.pid)) {
      log(`${c.name} (pid ${c.pid}) did not stop: SIGKILL`);
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {}
    }
  }
  if (list.length) log(`stopped ${list.length} process(es): ${list.map((c) => `${c.name}#${c.pid}`).join(', ')}`);
}

let installed = false;
export function installSignalHandlers(log) {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      log(`${sig}: stopping the benchmark processes`);
      stopAll(log).finally(() => process.exit(130));
    });
  }
}

/** PIDs written by spawn-fcgi into its pid file (one per forked worker). */
export function trackPidFile(name, file) {
  if (!existsSync(file)) return [];
  const pids = readFileSync(file, 'utf8')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => n > 0);
  for (const p of pids) track(name, p);
  return pids;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s${last ? `: ${last.message}` : ''}`);
}

export function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
}

export function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Install the Debian packages that are missing (root only); returns the list still missing. */
export function ensureDebianPackages(pkgs, log) {
  const missing = pkgs.filter(
    (p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout.indexOf('install ok installed') < 0,
  );
  if (missing.length === 0) return [];
  if (!isRoot()) {
    log(`missing Debian packages (run as root to install them): ${missing.join(' ')}`);
    return missing;
  }
  log(`installing ${missing.join(' ')} (apt-get)…`);
  // another apt run on the machine holds the dpkg lock for a while: wait for it rather than fail
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  spawnSync('apt-get', [...lock, 'update', '-qq'], { stdio: 'inherit' });
  const r = spawnSync('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) log(`apt-get install failed (exit ${r.status ?? r.signal}): the packages still missing are listed below`);
  return pkgs.filter(
    (p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout.indexOf('install ok installed') < 0,
  );
}
