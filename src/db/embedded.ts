/**
 * Embedded default database: a PostgreSQL 15 + PostGIS 3 cluster that the project provisions
 * itself under $GEODATA_HOME (default ./.data), listening on loopback only, on a free port,
 * with its own role and password. Idempotent: a second call reuses (and if needed restarts)
 * the same cluster. It also installs what the output formats need (gdal-bin) when root, or
 * prints the command when not.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, chownSync, statSync, appendFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import pg from 'pg';
import { projectRoot } from '../config/index.js';
import { hasOgr2ogr, TOOL_PACKAGES } from '../features/tools.js';

export const PG_MAJOR = 15;
export const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
const POSTGIS_CONTROL = `/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control`;
export const INSTALL_COMMAND = `apt-get update && apt-get install -y postgresql-${PG_MAJOR} postgresql-${PG_MAJOR}-postgis-3`;

export interface ClusterState {
  port: number;
  /** Where the cluster's files are (home/pg, or a fallback when the postgres user cannot reach home). */
  dataDir?: string;
  user: string;
  password: string;
  database: string;
}

export interface EmbeddedCluster extends ClusterState {
  home: string;
  dataDir: string;
  url: string;
  /** True when this call started the postmaster (so the caller may stop it). */
  startedHere: boolean;
}

export class ProvisionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProvisionError';
  }
}

type Log = (msg: string) => void;

export function geodataHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.GEODATA_HOME ?? path.join(projectRoot, '.data'));
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

export function postgisInstalled(): boolean {
  return existsSync(path.join(PG_BIN, 'postgres')) && existsSync(POSTGIS_CONTROL);
}

/** Install PostgreSQL 15 + PostGIS 3 from Debian when missing (root only). */
export function ensurePostgisPackages(log: Log): void {
  if (postgisInstalled()) return;
  if (!isRoot()) {
    throw new ProvisionError(
      `PostgreSQL ${PG_MAJOR} with PostGIS 3 is not installed and this process is not root, so it cannot install it.\n` +
        `Install it with:\n  sudo sh -c '${INSTALL_COMMAND}'\n` +
        `or set DATABASE_URL to an existing PostGIS database.`,
    );
  }
  log(`installing postgresql-${PG_MAJOR}-postgis-3 from Debian (first run only)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', `postgresql-${PG_MAJOR}`, `postgresql-${PG_MAJOR}-postgis-3`],
  ]) {
    const r = spawnSync('apt-get', args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0)
      throw new ProvisionError(`'apt-get ${args.join(' ')}' failed (exit ${r.status}); run it by hand: ${INSTALL_COMMAND}`);
  }
  if (!postgisInstalled()) throw new ProvisionError(`PostGIS still missing after install (${POSTGIS_CONTROL})`);
}

/** What installing the feature packages needs from the machine (injectable for tests). */
export interface FeaturePackageHost {
  isRoot: () => boolean;
  /** Is GDAL's ogr2ogr there (a fresh probe each call)? */
  hasOgr2ogr: () => boolean;
  /** Run apt-get with these arguments; exit status. */
  apt: (args: string[]) => number;
}

const realHost: FeaturePackageHost = {
  isRoot,
  hasOgr2ogr: () => hasOgr2ogr('ogr2ogr'),
  apt: (args) =>
    spawnSync('apt-get', args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: ['ignore', 'inherit', 'inherit'] })
      .status ?? 1,
};

/** The command that installs what the features need (GDAL's ogr2ogr for Shapefile, GeoPackage and FlatGeobuf). */
export const FEATURE_INSTALL_COMMAND = `apt-get update && apt-get install -y --no-install-recommends ${TOOL_PACKAGES.ogr2ogr}`;

/**
 * Install what the output formats need besides PostGIS (gdal-bin, for ogr2ogr), the way PostGIS
 * is installed: from Debian when root; otherwise say which formats stay off and the exact command.
 * Never fails the start: the formats that need a missing tool are simply not offered
 * (src/features/formats.ts serverFormats). Returns whether ogr2ogr is available afterwards.
 */
export function ensureFeaturePackages(log: Log, host: FeaturePackageHost = realHost): boolean {
  if (host.hasOgr2ogr()) return true;
  const formats = 'Shapefile, GeoPackage and FlatGeobuf';
  if (!host.isRoot()) {
    log(
      `GDAL's ogr2ogr is not installed and this process is not root, so ${formats} outputs are not offered.\n` +
        `Install it with:\n  sudo sh -c '${FEATURE_INSTALL_COMMAND}'\nthen restart the server.`,
    );
    return false;
  }
  log(`installing ${TOOL_PACKAGES.ogr2ogr} from Debian for the ${formats} outputs (first run only)…`);
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', TOOL_PACKAGES.ogr2ogr],
  ]) {
    const status = host.apt(args);
    if (status !== 0) {
      log(
        `'apt-get ${args.join(' ')}' failed (exit ${status}): ${formats} outputs are not offered; run it by hand: ${FEATURE_INSTALL_COMMAND}`,
      );
      return false;
    }
  }
  const ok = host.hasOgr2ogr();
  if (!ok) log(`ogr2ogr still missing after installing ${TOOL_PACKAGES.ogr2ogr}: ${formats} outputs are not offered`);
  return ok;
}

/** Run a PostgreSQL binary, as the 'postgres' OS user when we are root (postgres refuses root). */
function pgRun(bin: string, args: string[], opts: { allowFail?: boolean; env?: NodeJS.ProcessEnv } = {}): { status: number; out: string } {
  const exe = path.join(PG_BIN, bin);
  const [cmd, cmdArgs] = isRoot() ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', cwd: '/', env: opts.env ?? process.env });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0 && !opts.allowFail) throw new ProvisionError(`${bin} ${args.join(' ')} failed (exit ${r.status}):\n${out}`);
  return { status: r.status ?? 1, out };
}

function chownToPostgres(p: string): void {
  if (!isRoot()) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(p, uid, gid);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * The cluster lives in home/pg, unless we are root and the 'postgres' user cannot reach that
 * folder (a checkout under /root, say): then in /var/lib/geodata-server/<hash of home>/pg.
 */
function chooseDataDir(home: string): string {
  const preferred = path.join(home, 'pg');
  if (!isRoot()) return preferred;
  const r = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', home], { cwd: '/' });
  if (r.status === 0) {
    return preferred;
  }
  const hash = createHash('sha1').update(home).digest('hex').slice(0, 12);
  const alt = path.join('/var/lib/geodata-server', hash);
  mkdirSync(alt, { recursive: true });
  chownToPostgres(alt);
  return path.join(alt, 'pg');
}

/** A crude cross-process lock (mkdir is atomic) so concurrent starts don't race on initdb. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.provision.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // stale lock (older than 10 minutes) is removed
      try {
        if (Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone already */
      }
      if (Date.now() > deadline) throw new ProvisionError(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isRunning(dataDir: string): boolean {
  if (!existsSync(path.join(dataDir, 'postmaster.pid'))) return false;
  return pgRun('pg_ctl', ['status', '-D', dataDir], { allowFail: true }).status === 0;
}

/** Port the running postmaster listens on (line 4 of postmaster.pid). */
function runningPort(dataDir: string): number | null {
  try {
    const lines = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    const p = Number(lines[3]);
    return Number.isInteger(p) && p > 0 ? p : null;
  } catch {
    return null;
  }
}

export async function ensureEmbeddedCluster(log: Log = () => {}, env: NodeJS.ProcessEnv = process.env): Promise<EmbeddedCluster> {
  ensurePostgisPackages(log);
  ensureFeaturePackages(log);
  const home = geodataHome(env);
  mkdirSync(home, { recursive: true });
  return withLock(home, async () => {
    const stateFile = path.join(home, 'cluster.json');
    const saved = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterState) : undefined;
    const dataDir = saved?.dataDir ?? chooseDataDir(home);
    let state: ClusterState;
    let startedHere = false;
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      log(`initialising a PostgreSQL ${PG_MAJOR} cluster in ${dataDir}`);
      rmSync(dataDir, { recursive: true, force: true });
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      chownToPostgres(dataDir);
      state = { port: await freePort(), dataDir, user: 'geodata', password: randomBytes(18).toString('base64url'), database: 'geodata' };
      const pwfile = path.join(os.tmpdir(), `geodata-pw-${process.pid}-${Date.now()}`);
      writeFileSync(pwfile, state.password + '\n', { mode: 0o600 });
      chownToPostgres(pwfile);
      try {
        pgRun('initdb', [
          '-D',
          dataDir,
          '-U',
          state.user,
          '--pwfile',
          pwfile,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C.UTF-8',
          '--no-instructions',
        ]);
      } finally {
        rmSync(pwfile, { force: true });
      }
      appendFileSync(
        path.join(dataDir, 'postgresql.conf'),
        [
          '',
          '# geodata-server embedded cluster',
          "listen_addresses = '127.0.0.1'",
          `unix_socket_directories = '${dataDir.replace(/'/g, "''")}'`,
          'max_connections = 200',
          'shared_buffers = 256MB',
          'work_mem = 32MB',
          'maintenance_work_mem = 256MB',
          'synchronous_commit = off',
          'jit = off',
          'log_min_messages = warning',
          '',
        ].join('\n'),
      );
      writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
    } else {
      if (!saved)
        throw new ProvisionError(
          `${stateFile} is missing: the cluster in ${dataDir} cannot be reached without its password; remove ${dataDir} to start afresh`,
        );
      state = { ...saved, dataDir };
    }

    if (isRunning(dataDir)) {
      const p = runningPort(dataDir);
      if (p && p !== state.port) {
        state.port = p;
        writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
      }
    } else {
      if (!(await portIsFree(state.port))) {
        const old = state.port;
        state.port = await freePort();
        log(`port ${old} is taken by another program; the cluster moves to port ${state.port}`);
        writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
      }
      const logFile = path.join(path.dirname(dataDir), 'postgresql.log');
      if (!existsSync(logFile)) writeFileSync(logFile, '');
      chownToPostgres(logFile);
      log(`starting PostgreSQL on 127.0.0.1:${state.port}`);
      pgRun('pg_ctl', ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', `-p ${state.port}`]);
      startedHere = true;
    }

    const cluster: EmbeddedCluster = {
      ...state,
      home,
      dataDir,
      startedHere,
      url: `postgres://${state.user}:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/${state.database}`,
    };
    await ensureDatabase(cluster, state.database);
    return cluster;
  });
}

export function databaseUrl(cluster: ClusterState, database: string): string {
  return `postgres://${cluster.user}:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/${database}`;
}

/** Create a database in the cluster (if missing) with PostGIS enabled. */
export async function ensureDatabase(cluster: ClusterState, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: databaseUrl(cluster, 'postgres') });
  await admin.connect();
  try {
    const r = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (r.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(cluster, database);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('CREATE EXTENSION IF NOT EXISTS postgis');
  } finally {
    await c.end();
  }
  return url;
}

export function stopEmbeddedCluster(cluster: { dataDir: string }): void {
  if (isRunning(cluster.dataDir)) pgRun('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', cluster.dataDir], { allowFail: true });
}

/**
 * Restart the cluster (fast shutdown: sessions are cut, as in a real database restart).
 * Asynchronous, so that the process keeps serving while PostgreSQL goes down and up.
 */
export function restartEmbeddedCluster(cluster: { dataDir: string; port: number }): Promise<void> {
  const logFile = path.join(path.dirname(cluster.dataDir), 'postgresql.log');
  const args = ['restart', '-w', '-t', '60', '-m', 'fast', '-D', cluster.dataDir, '-l', logFile, '-o', `-p ${cluster.port}`];
  const exe = path.join(PG_BIN, 'pg_ctl');
  const [cmd, cmdArgs] = isRoot() ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { cwd: '/', stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new ProvisionError(`pg_ctl restart failed (exit ${code})`))));
  });
}

/** A streaming replica of the embedded cluster (`cli replica`, the replication tests). */
export interface EmbeddedReplica {
  dataDir: string;
  port: number;
  /** Physical replication slot on the primary that keeps the WAL the replica still needs, if any. */
  slot?: string;
  url: string;
}

/**
 * Provision a hot-standby replica of an embedded cluster in `dir` (pg_basebackup -R: a copy of
 * the primary that follows it by streaming replication) and start it on `port` (a free one by
 * default). Idempotent: an existing replica in `dir` is (re)started. With `slot`, a physical
 * replication slot of that name keeps on the primary the WAL the replica has not received yet
 * (drop it with removeReplica when the replica goes away, or the primary keeps WAL forever).
 */
export async function provisionReplica(
  primary: ClusterState & { url: string },
  dir: string,
  opts: { port?: number; slot?: string; log?: Log } = {},
): Promise<EmbeddedReplica> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(dir);
  const stateFile = replicaStateFile(dataDir);
  const saved = readReplicaState(dataDir);
  let port = opts.port ?? saved?.port ?? (await freePort());
  const slot = existsSync(path.join(dataDir, 'PG_VERSION')) ? saved?.slot : opts.slot;
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`copying the cluster on port ${primary.port} into ${dataDir} (pg_basebackup)`);
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chownToPostgres(dataDir);
    pgRun(
      'pg_basebackup',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(primary.port),
        '-U',
        primary.user,
        '-D',
        dataDir,
        '-R',
        '-X',
        'stream',
        '-c',
        'fast',
        ...(slot ? ['-C', '-S', slot] : []),
      ],
      { env: { ...process.env, PGPASSWORD: primary.password } },
    );
    appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        '# geodata-server: streaming replica of the embedded cluster',
        `unix_socket_directories = '${dataDir.replace(/'/g, "''")}'`,
        'hot_standby = on',
        // queries on the replica keep the rows they read from being vacuumed away on the primary,
        // rather than being cancelled by the replay of that vacuum (long exports)
        'hot_standby_feedback = on',
        '',
      ].join('\n'),
    );
  }
  if (!isRunning(dataDir)) {
    if (!(await portIsFree(port))) port = await freePort();
    const logFile = `${dataDir}.log`;
    if (!existsSync(logFile)) writeFileSync(logFile, '');
    chownToPostgres(logFile);
    log(`starting the replica on 127.0.0.1:${port}`);
    pgRun('pg_ctl', ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', `-p ${port}`]);
  } else port = runningPort(dataDir) ?? port;
  writeFileSync(stateFile, JSON.stringify({ port, ...(slot ? { slot } : {}) }, null, 2), { mode: 0o600 });
  const database = new URL(primary.url).pathname.slice(1) || primary.database;
  return { dataDir, port, slot, url: databaseUrl({ ...primary, port }, database) };
}

/** Stop a replica (fast shutdown), drop its replication slot on the primary, delete its files. */
export async function removeReplica(primary: ClusterState, replica: { dataDir: string; slot?: string }): Promise<void> {
  stopEmbeddedCluster(replica);
  if (replica.slot) {
    const c = new pg.Client({ connectionString: databaseUrl(primary, 'postgres') });
    await c.connect();
    try {
      await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [replica.slot]);
    } finally {
      await c.end();
    }
  }
  rmSync(replica.dataDir, { recursive: true, force: true });
  rmSync(`${replica.dataDir}.log`, { force: true });
  rmSync(replicaStateFile(replica.dataDir), { force: true });
}

const replicaStateFile = (dataDir: string) => path.join(path.dirname(path.resolve(dataDir)), `${path.basename(dataDir)}.json`);

/** What provisionReplica saved beside a replica's folder (its port, its slot), if anything. */
export function readReplicaState(dataDir: string): { port: number; slot?: string } | undefined {
  const f = replicaStateFile(dataDir);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { port: number; slot?: string }) : undefined;
}
